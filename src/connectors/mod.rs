//! Connectors to the systems Sluice reads from and writes to.

pub mod hdfs;
pub mod kafka;
pub mod postgres;
pub mod source;
