//! The servers of one service: which are alive, which holds each task, and which should run it.
//!
//! Every server publishes a heartbeat ([`membership`]); the servers alive are dealt the tasks
//! (persistent queries) in a fixed order ([`assignment`]); a server runs a task only while the
//! holders log says it holds it ([`holders`]), so two servers never run one task at once, and a
//! task moves only when its holder lets it go or stops beating.

pub mod assignment;
mod follower;
pub mod holders;
pub mod membership;

pub use holders::{Hold, Holders};
pub use membership::{Heartbeat, Membership};
