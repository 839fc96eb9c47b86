//! corelane remoting.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod tls;
mod transport;

pub use config::RemoteConfig;
pub use tls::{Tls, TlsError, TlsPem};
pub use transport::StartError;

#[cfg(test)]
mod transport_tests;
