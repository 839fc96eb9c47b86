//! A node's remoting configuration, and the limits on what peers can make it hold.

use crate::tls::Tls;
use std::net::SocketAddr;
use std::time::Duration;

/// How a node listens, proves itself and treats its connections.
///
/// There is no usable default TLS: `RemoteConfig::dev()` leaves [`Tls::Unset`], which
/// [`Node::start`](crate::Node::start) refuses. Give PEM files ([`Tls::Pem`]) in production, or
/// start from [`RemoteConfig::dev`] to choose, visibly, a self-signed development certificate
/// that accepts any peer.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// Where the QUIC endpoint binds (default `127.0.0.1:0`: loopback, any free port).
    pub bind: SocketAddr,
    /// The address peers reach this node at, as it names itself on the wire (default: the
    /// bound address).
    pub advertise: Option<SocketAddr>,
    /// TLS: PEM files, or the development certificate of [`RemoteConfig::dev`]. Unset by
    /// default (the node refuses to start).
    pub tls: Tls,
    /// Largest frame accepted or sent (default 8 MiB; at least 4 KiB,
    /// `corelane_proto::frame::MIN_MAX_FRAME`, which every node accepts and a batch of tells
    /// may reach). A peer announcing more loses its connection; a local message encoding to
    /// more is refused at send.
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
    /// Pin the net thread to this core (default: `CORELANE_NET_CORE` if set, else unpinned).
    /// A core the host does not keep free, that shares a physical core with a shard, or that
    /// sits on another NUMA node than the network card (`CORELANE_NIC`, else the default
    /// route's interface) is warned about at start.
    pub net_core: Option<usize>,
    /// Bytes asked of the kernel for the UDP socket's receive and send buffers (default 8 MiB).
    /// Datagrams that arrive while the net thread is busy wait there; a buffer too small for
    /// a burst drops datagrams, which QUIC resends after cutting its sending rate. Linux grants
    /// at most `net.core.rmem_max` / `net.core.wmem_max` (208 KiB unless raised); a smaller
    /// grant is warned about at start. See `docs/deployment.md`.
    pub socket_buffer: usize,
    /// What peers can make this node hold.
    pub limits: Limits,
}

/// Bounds on everything a peer can make a node hold: connections, streams, buffered bytes,
/// peers remembered, schedules, spawns. Past a bound, the node refuses with a clear error (an
/// `ERROR_CODE_LIMIT` answer to a request) or closes the offending connection; it never grows.
/// The defaults suit a node with a few hundred peers; see `docs/remoting.md`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections other nodes opened to this one, at once (default 512). More are refused
    /// at the handshake.
    pub max_connections: usize,
    /// Of those, from one IP address (default 64).
    pub max_connections_per_ip: usize,
    /// Streams a peer may have open at once on one connection (default 4; the protocol uses
    /// one each way).
    pub max_streams_per_connection: u32,
    /// Bytes of unfinished frames one connection may hold here (default 16 MiB). A peer past
    /// it loses that connection.
    pub max_buffered_per_connection: usize,
    /// Bytes of unfinished frames all connections together may hold (default 256 MiB). The
    /// connection that passes it is closed.
    pub max_buffered: usize,
    /// A frame that has begun must be complete within this (default 10 s), or the connection
    /// is closed: a peer cannot park memory in a frame it never finishes.
    pub frame_timeout: Duration,
    /// Peers remembered at once, each with its queue and writer (default 1024). An entry goes
    /// when its peer has no connection and nothing queued; a connection that would add one
    /// past the bound is served, but its peer is not remembered (answers are dialed back).
    pub max_peers: usize,
    /// Schedules one peer may keep on this node (default 256), and all peers together (default
    /// 4096).
    pub max_schedules_per_peer: usize,
    /// Schedules all peers together may keep on this node.
    pub max_schedules: usize,
    /// Shortest interval of a remote fixed-rate schedule (default 10 ms).
    pub min_schedule_interval: Duration,
    /// Longest delay or interval of a remote schedule (default 7 days).
    pub max_schedule_delay: Duration,
    /// Live actors one peer may have spawned here (default 1024), and all peers together
    /// (default 16 384).
    pub max_spawns_per_peer: usize,
    /// Live actors all peers together may have spawned here.
    pub max_spawns: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_connections_per_ip: 64,
            max_streams_per_connection: 4,
            max_buffered_per_connection: 16 << 20,
            max_buffered: 256 << 20,
            frame_timeout: Duration::from_secs(10),
            max_peers: 1024,
            max_schedules_per_peer: 256,
            max_schedules: 4096,
            min_schedule_interval: Duration::from_millis(10),
            max_schedule_delay: Duration::from_secs(7 * 24 * 3600),
            max_spawns_per_peer: 1024,
            max_spawns: 16 * 1024,
        }
    }
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            tls: Tls::Unset,
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
            socket_buffer: 8 << 20,
            limits: Limits::default(),
        }
    }
}

impl RemoteConfig {
    /// The defaults with a self-signed development certificate ([`Tls::DevSelfSigned`]):
    /// connections are encrypted, but peers are not authenticated, so any peer can claim to be
    /// any node. The node says so when it starts (on stderr when no `tracing` subscriber is
    /// installed). For development and tests, never for production; with the `dev-certs`
    /// feature.
    #[cfg(feature = "dev-certs")]
    pub fn dev() -> Self {
        Self { tls: Tls::DevSelfSigned, ..Self::default() }
    }
}
