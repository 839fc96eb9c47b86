//! A node's remoting configuration.

use crate::tls::Tls;
use std::net::SocketAddr;
use std::time::Duration;

/// How a node listens, proves itself and treats its connections.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// Where the QUIC endpoint binds (default `127.0.0.1:0`: loopback, any free port).
    pub bind: SocketAddr,
    /// The address peers reach this node at, as it names itself on the wire (default: the
    /// bound address).
    pub advertise: Option<SocketAddr>,
    /// TLS: a dev self-signed certificate (default, with a warning) or PEM files.
    pub tls: Tls,
    /// Largest frame accepted or sent (default 8 MiB). A peer announcing more loses its
    /// connection; a local message encoding to more is refused at send.
    pub max_frame: usize,
    /// A connection without messages either way for this long (to twice this long: it is
    /// checked once per period) is closed by the node that opened it (default 30 s); the next
    /// message opens a new one. Not a node loss.
    pub idle_timeout: Duration,
    /// Keep-alive interval on open connections (default 500 ms).
    pub keep_alive: Duration,
    /// A peer silent (not even keep-alives) for this long is lost: its connection closes and
    /// watchers of its actors get `Terminated` with `NodeDown` (default 3 s).
    pub dead_after: Duration,
    /// Reconnection: first delay, doubled per failed attempt up to `backoff_max`, at most
    /// `connect_attempts` attempts before the queued messages to that peer become dead letters.
    pub backoff_min: Duration,
    /// The longest delay between connection attempts.
    pub backoff_max: Duration,
    /// Attempts before giving up on a peer (until the next message to it).
    pub connect_attempts: u32,
    /// Bytes queued for one peer beyond which new messages to it become dead letters (a peer
    /// that stops reading cannot grow this node's memory without bound). Default 64 MiB.
    pub max_queued_bytes: usize,
    /// How long a remote ask may wait for the local actor's answer before the asker is sent
    /// `Failed` (default 60 s; the asker's own timeout usually ends it sooner).
    pub serve_timeout: Duration,
    /// Pin the net thread to this core.
    pub net_core: Option<usize>,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            tls: Tls::DevSelfSigned,
            max_frame: corelane_proto::frame::DEFAULT_MAX_FRAME,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_millis(500),
            dead_after: Duration::from_secs(3),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(2),
            connect_attempts: 8,
            max_queued_bytes: 64 << 20,
            serve_timeout: Duration::from_secs(60),
            net_core: None,
        }
    }
}
