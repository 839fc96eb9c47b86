//! corelane remoting: nodes that reach each other's actors over QUIC.
//!
//! A [`Node`] is a runtime plus one QUIC endpoint (quinn, TLS 1.3 always) on a dedicated net
//! thread. Other nodes reach its actors through [`RemoteRef`]s: `tell`, `ask`, batches,
//! `forward`, `stop`, `watch`, remote scheduling; and the node itself through [`RemoteNode`]:
//! `lookup` by name, `spawn` of registered kinds, `respawn`. Messages travel as prost
//! envelopes (`corelane-proto`) carrying payloads of any [`RemoteMessage`] type; a
//! [`Protocol`] says which wire messages an actor type accepts and how each becomes one of its
//! messages. See `docs/remoting.md` for addressing, guarantees and failure behaviour.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
mod codec;
pub mod config;
mod dispatch;
mod error;
mod node;
#[cfg(feature = "ops")]
pub mod ops;
mod protocol;
mod remote_node;
mod remote_ref;
mod remote_schedule;
mod remote_watch;
#[cfg(feature = "rkyv")]
mod rkyv_codec;
mod spawn;
mod target;
pub mod tls;
mod transport;
mod typed;

pub use codec::{CodecError, RemoteMessage};
pub use config::{Limits, RemoteConfig};
pub use error::{ErrorCode, RemoteAskError, RemoteSendError, StartError};
pub use node::{Node, NodeStats};
pub use protocol::Protocol;
pub use remote_node::RemoteNode;
pub use remote_ref::{RemoteAsk, RemoteBatchAsk, RemoteRef};
pub use remote_schedule::RemoteScheduled;
#[cfg(feature = "rkyv")]
pub use rkyv_codec::{Rkyv, RkyvMessage};
pub use tls::{Crypto, Tls, TlsError, TlsPem};
pub use transport::{quic_configs, udp_socket, SocketBuffers};
pub use typed::{Accepts, Answers, Destination, Typed, TypedGrainRef, TypedRemoteRef};

#[cfg(test)]
mod transport_tests;
