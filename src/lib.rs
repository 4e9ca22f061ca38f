//! Sluice: a streaming SQL engine for Kafka that speaks ksqlDB's dialect and REST API.

pub mod broker;
pub mod catalog;
pub mod cluster;
pub mod connectors;
pub mod config;
pub mod error;
pub mod fault;
pub mod format;
pub mod handler;
pub mod functions;
pub mod import;
pub mod java_number;
pub mod java_time;
#[cfg(test)]
mod fuzzing;
pub mod parser;
pub mod planner;
pub mod properties;
pub mod runtime;
pub mod server;

pub use error::{Result, SluiceError};
