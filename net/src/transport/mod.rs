//! The net thread: one QUIC endpoint on a current-thread tokio runtime, one connection per peer,
//! frames in and out.
//!
//! Any thread hands an envelope for a peer to [`Transport::send_with`]: encoded in place at the
//! end of the peer's queue (`outbox`), never a wait on the network. On the net thread each peer
//! has a writer task that takes all that is queued at once (the envelopes a shard produced in
//! one turn go out together) and hands its buffers to the connection's single outbound stream,
//! so the order of a sender's messages to a peer is kept. Connections are opened on the first message
//! (with backoff between failed attempts) or adopted from the peer when it dialed first, kept
//! alive while open, and closed by their dialer after `idle_timeout` without messages.
//!
//! What arrives is read by `corelane_proto::stream::StreamReader` (frames, the `Hello` that
//! opens each stream, checked envelopes) and handed to the [`Inbound`] with the address the
//! peer's `Hello` gave. Bad input is reported and costs at most its connection: a malformed
//! envelope is skipped (its frame is intact); an oversized frame, a stream that does not begin
//! with `Hello`, a connection that speaks for a second node (or, under mutual TLS, for a node
//! another certificate speaks for), a frame left unfinished past `frame_timeout`, or unfinished
//! frames past the byte limits close the connection; a stream cut inside a frame loses that
//! frame. Connections from others are admitted within `max_connections` (and per IP address),
//! with at most `max_streams_per_connection` streams each.
//!
//! Submodules: `outbox` (a peer's queue of frames), `writer` (that queue onto its connection,
//! dialing), `reader` (admission, streams, byte and time bounds), `socket` (the UDP socket and
//! its buffers).

mod outbox;
mod reader;
mod socket;
mod writer;

pub use socket::{udp_socket, SocketBuffers};

use crate::config::{Limits, RemoteConfig};
use crate::tls::{self, TlsError};
use bytes::{Bytes, BytesMut};
use corelane_proto::frame::FrameError;
use corelane_proto::stream::PeerHello;
use corelane_proto::tell::PlainTell;
use corelane_proto::v1::Envelope;
use corelane_proto::EnvelopeError;
pub(crate) use outbox::TellTo;
use outbox::{Outbox, Refused};
use parking_lot::Mutex;
use quinn::{Connection, Endpoint, VarInt};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Application close codes.
pub(crate) mod close {
    use quinn::VarInt;
    /// The dialer closed an idle connection.
    pub(crate) const IDLE: VarInt = VarInt::from_u32(1);
    /// The node is shutting down.
    pub(crate) const SHUTDOWN: VarInt = VarInt::from_u32(2);
    /// The peer sent a frame over the maximum.
    pub(crate) const OVERSIZED: VarInt = VarInt::from_u32(3);
    /// The peer broke the protocol (a stream that does not begin with `Hello`, or a
    /// connection that speaks for another node than it did, or than its certificate does).
    pub(crate) const PROTOCOL: VarInt = VarInt::from_u32(4);
    /// The peer passed a limit (unfinished frames too large or too slow).
    pub(crate) const LIMIT: VarInt = VarInt::from_u32(5);
}

/// Input that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadInput {
    /// A frame that is not a usable envelope; skipped.
    Envelope(EnvelopeError),
    /// A broken stream: an oversized frame (the connection is closed) or a stream that ended
    /// inside a frame (that frame is lost).
    Frame(FrameError),
    /// A stream that did not begin with `Hello` (the connection is closed).
    NoHello,
    /// A connection that spoke for a second node, or for a node another certificate speaks
    /// for (the connection is closed).
    Identity,
    /// A connection refused or closed at a limit: which one.
    Limit(&'static str),
}

/// Where the net thread hands what arrives. Called on the net thread: must not block.
pub(crate) trait Inbound: Send + Sync + 'static {
    /// A stream's `Hello`: who speaks on it. Comes before that stream's envelopes.
    fn hello(&self, peer: PeerHello);
    /// A checked envelope from `peer` (its advertised address), on a stream meant for this
    /// node's incarnation `addressed` (0: the peer did not know it).
    fn envelope(&self, peer: SocketAddr, addressed: u64, env: Envelope);
    /// A plain tell (no sender, no trace; to an actor or a grain) as it lies in its frame; the
    /// same as `envelope` with [`PlainTell::to_envelope`], without building the envelope.
    fn tell(&self, peer: SocketAddr, addressed: u64, t: PlainTell<'_>) {
        self.envelope(peer, addressed, t.to_envelope())
    }
    /// `peer` is lost: it could not be reached, or its connection failed (not an idle or
    /// orderly close; and only the connection this node uses for `peer` counts).
    fn peer_down(&self, peer: SocketAddr);
    /// Input that could not be used, from `peer` if it had said who it is.
    fn bad_input(&self, peer: Option<SocketAddr>, what: BadInput);
    /// `count` envelopes for `peer` were not sent (unreachable peer, full queue, broken
    /// connection, or too big to frame).
    fn dropped(&self, peer: SocketAddr, count: usize);
    /// `count` envelopes for `peer` were not sent: they were meant for an incarnation of it
    /// that is gone (it restarted).
    fn stale(&self, peer: SocketAddr, count: usize) {
        self.dropped(peer, count)
    }
    /// Runs `f`, which hands over several envelopes: deliveries it makes may be batched.
    fn batch(&self, f: &mut dyn FnMut()) {
        f()
    }
}

/// A transport that could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The endpoint could not bind its address.
    #[error("cannot bind {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The net thread or its runtime could not start.
    #[error("cannot start the net thread")]
    Io(#[source] std::io::Error),
    /// `CORELANE_NET_CORE` holds something other than a core number.
    #[error("CORELANE_NET_CORE={0:?}: not a core number")]
    Environment(String),
    /// `RemoteConfig::max_frame` is below what every node must accept.
    #[error("max_frame {0} is below {min}: every node accepts frames of that length (a batch of tells may reach it)", min = corelane_proto::frame::MIN_MAX_FRAME)]
    FrameLimit(usize),
}

/// The handle other threads hold.
pub(crate) struct Transport {
    net: Arc<Net>,
    /// Tells the net thread to stop.
    stop: Arc<tokio::sync::Notify>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Transport {
    /// Binds the endpoint and starts the net thread.
    pub(crate) fn start(
        cfg: &RemoteConfig,
        incarnation: u64,
        inbound: Arc<dyn Inbound>,
    ) -> Result<Self, StartError> {
        let crypto = quic_configs(cfg)?;
        let (up_tx, up_rx) = std::sync::mpsc::channel();
        let stop = Arc::new(tokio::sync::Notify::new());
        let net = NetCfg {
            max_queued: cfg.max_queued_bytes,
            bind: cfg.bind,
            advertise: cfg.advertise,
            max_frame: cfg.max_frame,
            idle: cfg.idle_timeout,
            backoff: (cfg.backoff_min, cfg.backoff_max),
            attempts: cfg.connect_attempts.max(1),
            core: cfg.net_core,
            socket_buffer: cfg.socket_buffer,
            limits: cfg.limits.clone(),
            incarnation,
        };
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("corelane-net".into())
            .spawn(move || net_thread(net, crypto, inbound, stopped, up_tx))
            .map_err(StartError::Io)?;
        let net = match up_rx.recv() {
            Ok(Ok(net)) => net,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(StartError::Io(std::io::Error::other("the net thread died while starting")))
            }
        };
        Ok(Self { net, stop, thread: Mutex::new(Some(thread)) })
    }

    /// The address this node gives itself on the wire.
    pub(crate) fn advertised(&self) -> SocketAddr {
        self.net.me
    }

    /// Queues one frame of about `size` bytes for `peer`, written in place by `encode` (prefix
    /// included, within the maximum), meant for its incarnation `incarnation` (0: any; the
    /// frame then says itself, if it matters). Never waits. A frame over the peer's queue limit, or sent after shutdown, is
    /// dropped and reported (`Inbound::dropped`); only an `encode` failure is returned (nothing
    /// is queued then).
    ///
    /// The incarnation travels once per stream, in its `Hello`, not in every frame: the
    /// writer opens a new stream when frames for a newly learned incarnation come, and drops
    /// (as stale) frames for one the peer no longer has.
    pub(crate) fn send_with<E>(
        &self,
        peer: SocketAddr,
        incarnation: u64,
        size: usize,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        // Under the peers lock, so a writer cannot forget its peer in between (its task is
        // started on first use): no reference counts move.
        let pushed = self.net.with_peer(peer, |p| p.outbox.push(incarnation, size, encode));
        self.queued(peer, pushed)
    }

    /// [`Transport::send_with`] for a tell to an actor or a grain (`to`), which may join the
    /// tell queued last for `peer` (see `Outbox::push_tell`): `encode` then gets where that
    /// frame starts and appends its payload there, or writes a frame of its own when given
    /// `None`.
    pub(crate) fn send_tell<E>(
        &self,
        peer: SocketAddr,
        incarnation: u64,
        size: usize,
        to: &TellTo<'_>,
        encode: impl FnOnce(&mut BytesMut, Option<usize>) -> Result<(), E>,
    ) -> Result<(), E> {
        let pushed = self.net.with_peer(peer, |p| p.outbox.push_tell(incarnation, size, to, encode));
        self.queued(peer, pushed)
    }

    /// What a push to `peer`'s queue came to (`None`: no queue, after shutdown): an encoding
    /// error is returned; a message refused for room or after shutdown is reported dropped.
    fn queued<E>(&self, peer: SocketAddr, pushed: Option<Result<(), Refused<E>>>) -> Result<(), E> {
        match pushed {
            Some(Ok(())) => Ok(()),
            Some(Err(Refused::Encode(e))) => Err(e),
            Some(Err(Refused::Full | Refused::Closed)) | None => {
                self.net.inbound.dropped(peer, 1);
                Ok(())
            }
        }
    }

    /// Queues one whole frame for `peer`: [`Transport::send_with`] copying `frame`.
    pub(crate) fn send(&self, peer: SocketAddr, frame: &[u8], incarnation: u64) {
        let _ = self.send_with(peer, incarnation, frame.len(), |b| {
            b.extend_from_slice(frame);
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// Peers remembered now (each with its queue and writer task).
    pub(crate) fn peers(&self) -> usize {
        self.net.peer_count()
    }

    /// Connections other nodes opened to this one, admitted now.
    pub(crate) fn connections(&self) -> usize {
        self.net.incoming.lock().values().sum()
    }

    /// The endpoint socket's buffers, as the kernel granted them.
    pub(crate) fn socket_buffers(&self) -> SocketBuffers {
        self.net.socket
    }

    /// Bytes of unfinished frames held for all connections.
    pub(crate) fn buffered(&self) -> usize {
        self.net.buffered.load(Ordering::Relaxed)
    }

    /// Whether `shutdown` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.net.closed.load(Ordering::Acquire)
    }

    /// Closes every connection and stops the net thread. Idempotent.
    pub(crate) fn shutdown(&self) {
        self.net.closed.store(true, Ordering::Release);
        self.stop.notify_one();
        if let Some(t) = self.thread.lock().take() {
            // The last handle may be dropped on the net thread itself (a task held the node
            // when the user let go): it is stopping already, and cannot wait for itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The quinn server and client configurations of a node with `cfg` (its TLS, and the
/// transport parameters every node uses: keep-alive, loss timeout, flow-control windows), and
/// the name servers must prove. For tools that speak QUIC next to nodes, such as the perf
/// harness's raw baseline, so they measure the same transport.
///
/// # Errors
/// TLS material that does not work.
pub fn quic_configs(cfg: &RemoteConfig) -> Result<tls::Crypto, TlsError> {
    let mut crypto = tls::crypto(&cfg.tls)?;
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(cfg.keep_alive))
        .max_idle_timeout(cfg.dead_after.try_into().ok())
        // Room for bursts on one stream: 8 MiB in flight per stream, 16 MiB per connection.
        .stream_receive_window(VarInt::from_u32(8 << 20))
        .receive_window(VarInt::from_u32(16 << 20))
        .send_window(16 << 20)
        // Nodes speak on unidirectional streams only, one each way per connection.
        .max_concurrent_uni_streams(VarInt::from_u32(cfg.limits.max_streams_per_connection))
        .max_concurrent_bidi_streams(VarInt::from_u32(0));
    // A peer acknowledges every 11th packet (or after its ack delay), not every 2nd. Two nodes
    // that have each dialed the other use one connection each way, so the packets on each are
    // all one way and none can carry an acknowledgement back: every 2nd request, or answer,
    // cost the other side a packet of its own, and its net thread a wake-up (grain and named
    // asks, 1.11-1.16 x a remote ask of the same run, against 0.94-1.01 with this).
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(VarInt::from_u32(10));
    transport.ack_frequency_config(Some(acks));
    let transport = Arc::new(transport);
    crypto.server.transport_config(transport.clone());
    crypto.client.transport_config(transport);
    Ok(crypto)
}

struct NetCfg {
    max_queued: usize,
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
    max_frame: usize,
    idle: Duration,
    backoff: (Duration, Duration),
    attempts: u32,
    core: Option<usize>,
    socket_buffer: usize,
    limits: Limits,
    incarnation: u64,
}

/// What the net thread's tasks (and the senders) share.
struct Net {
    endpoint: Endpoint,
    /// The endpoint socket's buffers, as granted.
    socket: SocketBuffers,
    me: SocketAddr,
    incarnation: u64,
    server_name: String,
    cfg: NetCfg,
    inbound: Arc<dyn Inbound>,
    peers: Mutex<HashMap<SocketAddr, Peer, foldhash::fast::RandomState>>,
    /// Admitted connections from others, by IP address.
    incoming: Mutex<HashMap<IpAddr, usize>>,
    /// Bytes of unfinished frames held for all connections.
    buffered: AtomicUsize,
    /// The net thread's runtime, where writers are started from any thread.
    rt: tokio::runtime::Handle,
    /// Set at shutdown: no new writers.
    closed: std::sync::atomic::AtomicBool,
}

/// A peer: its writer's queue, the connection to use, and (under mutual TLS) the certificate
/// that speaks for it.
#[derive(Clone)]
struct Peer {
    outbox: Arc<Outbox>,
    /// The peer's incarnation, as its connection in use last said (0: not known yet).
    incarnation: Arc<AtomicU64>,
    conn: Arc<Mutex<Option<Live>>>,
    cert: Arc<Mutex<Option<Bytes>>>,
}

/// An open connection: its count of reads that brought frames (for the idle check), the bytes
/// of unfinished frames it holds here, and the peer's certificate if it presented one.
#[derive(Clone)]
struct Live {
    conn: Connection,
    received: Arc<AtomicU64>,
    buffered: Arc<AtomicUsize>,
    cert: Option<Bytes>,
}

impl Live {
    fn new(conn: Connection) -> Self {
        let cert = conn
            .peer_identity()
            .and_then(|id| id.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok())
            .and_then(|chain| chain.first().map(|c| Bytes::copy_from_slice(c.as_ref())));
        Self { conn, received: Arc::default(), buffered: Arc::default(), cert }
    }

    fn is_open(&self) -> bool {
        self.conn.close_reason().is_none()
    }

    fn is(&self, other: &Live) -> bool {
        self.conn.stable_id() == other.conn.stable_id()
    }
}

type Up = std::sync::mpsc::Sender<Result<Arc<Net>, StartError>>;

fn net_thread(
    cfg: NetCfg,
    crypto: tls::Crypto,
    inbound: Arc<dyn Inbound>,
    stop: Arc<tokio::sync::Notify>,
    up: Up,
) {
    if let Some(core) = cfg.core {
        core_affinity::set_for_current(core_affinity::CoreId { id: core });
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = up.send(Err(StartError::Io(e)));
            return;
        }
    };
    rt.block_on(async move {
        let bound = socket::bind(cfg.bind, cfg.socket_buffer).and_then(|(socket, buffers)| {
            socket::warn_if_short(&buffers);
            let runtime = quinn::default_runtime().ok_or_else(|| io::Error::other("no async runtime"))?;
            Endpoint::new(quinn::EndpointConfig::default(), Some(crypto.server), socket, runtime)
                .map(|e| (e, buffers))
        });
        let (mut endpoint, socket) = match bound {
            Ok(e) => e,
            Err(e) => {
                let _ = up.send(Err(StartError::Bind { addr: cfg.bind, source: e }));
                return;
            }
        };
        endpoint.set_default_client_config(crypto.client);
        let local = match endpoint.local_addr() {
            Ok(a) => a,
            Err(e) => {
                let _ = up.send(Err(StartError::Io(e)));
                return;
            }
        };
        let me = cfg.advertise.unwrap_or(local);
        let net = Arc::new(Net {
            endpoint: endpoint.clone(),
            socket,
            me,
            incarnation: cfg.incarnation,
            server_name: crypto.server_name,
            cfg,
            inbound,
            peers: Mutex::new(HashMap::default()),
            incoming: Mutex::new(HashMap::new()),
            buffered: AtomicUsize::new(0),
            rt: tokio::runtime::Handle::current(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        let _ = up.send(Ok(net.clone()));
        loop {
            tokio::select! {
                () = stop.notified() => break,
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => { tokio::spawn(reader::accept(net.clone(), incoming)); }
                    None => break,
                },
            }
        }
        // Writers end with their queues.
        for p in net.peers.lock().drain() {
            p.1.outbox.close();
        }
        endpoint.close(close::SHUTDOWN, b"shutdown");
        // Let the close frames go out; the peers see an orderly close, not a loss.
        let _ = tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle()).await;
    });
}

impl Net {
    /// Runs `f` on the peer's entry (made, with its writer task, on first use; from any thread)
    /// under the peers lock; `None` once the transport is shut down.
    fn with_peer<R>(self: &Arc<Self>, addr: SocketAddr, f: impl FnOnce(&Peer) -> R) -> Option<R> {
        let mut peers = self.peers.lock();
        if let Some(p) = peers.get(&addr).filter(|p| !p.outbox.is_closed()) {
            return Some(f(p));
        }
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let p = self.new_peer(addr);
        let r = f(&p);
        peers.insert(addr, p);
        Some(r)
    }

    fn new_peer(self: &Arc<Self>, addr: SocketAddr) -> Peer {
        let p = Peer {
            outbox: Arc::new(Outbox::new(self.cfg.max_queued, self.cfg.max_frame)),
            incarnation: Arc::default(),
            conn: Arc::new(Mutex::new(None)),
            cert: Arc::new(Mutex::new(None)),
        };
        let w = writer::Writer {
            peer: addr,
            slot: p.conn.clone(),
            outbox: p.outbox.clone(),
            incarnation: p.incarnation.clone(),
        };
        self.rt.spawn(writer::writer(self.clone(), w));
        p
    }

    /// A connection's `Hello` says it speaks for `addr`. Refused (`None`) when, under mutual
    /// TLS, another certificate speaks for `addr`. Otherwise the connection is adopted for
    /// `addr` unless one is open already, and `addr` is remembered unless `max_peers` are;
    /// `Some(true)` when the connection is the one in use for `addr` (only then may what it
    /// says about the node itself, such as its incarnation, be believed).
    fn bind(self: &Arc<Self>, hello: &PeerHello, live: &Live) -> Option<bool> {
        let addr = hello.node;
        let mut peers = self.peers.lock();
        let known = peers.get(&addr).filter(|p| !p.outbox.is_closed()).cloned();
        let peer = match known {
            Some(p) => p,
            None if self.closed.load(Ordering::Acquire) || peers.len() >= self.cfg.limits.max_peers => {
                // Served, not remembered: answers to it are dialed.
                return Some(false);
            }
            None => {
                let p = self.new_peer(addr);
                peers.insert(addr, p.clone());
                p
            }
        };
        drop(peers);
        if let Some(cert) = &live.cert {
            let mut bound = peer.cert.lock();
            match &*bound {
                Some(b) if b != cert => return None,
                Some(_) => {}
                None => *bound = Some(cert.clone()),
            }
        }
        let mut slot = peer.conn.lock();
        if !slot.as_ref().is_some_and(Live::is_open) {
            *slot = Some(live.clone());
        }
        let current = slot.as_ref().is_some_and(|l| l.is(live));
        if current {
            peer.incarnation.store(hello.incarnation, Ordering::Release);
        }
        Some(current)
    }

    /// A connection that spoke for `addr` ended: whether it was the one in use for `addr`.
    /// A peer left with no connection and nothing queued is forgotten.
    fn connection_ended(&self, addr: SocketAddr, live: &Live) -> bool {
        let mut peers = self.peers.lock();
        let Some(p) = peers.get(&addr) else { return false };
        let current = {
            let mut slot = p.conn.lock();
            let current = slot.as_ref().is_some_and(|l| l.is(live));
            if current {
                *slot = None;
            }
            current
        };
        if current && p.outbox.queued() == 0 {
            p.outbox.close();
            peers.remove(&addr);
        }
        current
    }

    /// Forgets `addr` if its entry is still the one with `outbox` (the writer asking is that
    /// entry's) and nothing is queued there; closes the queue. Whether it did.
    fn forget(&self, addr: SocketAddr, outbox: &Arc<Outbox>) -> bool {
        let mut peers = self.peers.lock();
        match peers.get(&addr) {
            Some(p) if Arc::ptr_eq(&p.outbox, outbox) => {
                if outbox.queued() != 0 {
                    return false;
                }
                outbox.close();
                peers.remove(&addr);
                true
            }
            Some(_) => true, // replaced: this writer's entry is gone already
            None => true,
        }
    }

    /// Peers remembered.
    fn peer_count(&self) -> usize {
        self.peers.lock().len()
    }
}
