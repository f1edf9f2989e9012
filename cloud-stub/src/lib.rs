//! OpenDCA's minimal cloud receiver, as a library for its binary, its tests
//! and its benchmark: the HTTPS server, the SQLite store, the sync exchange,
//! the web page and the operator's reports.

pub mod audit;
pub mod channel;
pub mod exchange;
pub mod guard;
mod integrity;
pub mod limits;
pub mod logline;
pub mod report;
pub mod secret;
pub mod server;
pub mod store;
pub mod tls;
pub mod totp;
pub mod web;
pub mod web_access;
