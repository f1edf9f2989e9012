//! Polling devices, sans I/O: the walk of one device through the model's
//! plan ([`walk`]), scan targets ([`targets`]), and discovery and polling of
//! many devices over one socket ([`scan`]).

pub mod credentials;
mod envelope;
pub mod scan;
pub mod targets;
pub mod walk;

pub use credentials::Credentials;
pub use scan::{Event, Scan, ScanConfig, ScanStats, WalkSlot};
pub use targets::{Target, TargetError, addresses};
pub use walk::{Sink, WalkConfig, WalkError, WalkState, WalkStats, Walker};
