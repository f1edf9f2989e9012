//! Polling devices, sans I/O: the walk of one device through the model's
//! plan ([`walk`]). Discovery over address ranges and the multi-device
//! poller build on it.

pub mod walk;

pub use walk::{Sink, WalkConfig, WalkError, WalkState, WalkStats, Walker};
