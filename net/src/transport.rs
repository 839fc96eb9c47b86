//! The net thread: one QUIC endpoint on a current-thread tokio runtime, one connection per peer,
//! frames in and out.
//!
//! Any thread hands an envelope for a peer to [`Transport::send`]: a push onto the net thread's
//! command queue, never a wait on the network. On the net thread each peer has a writer task
//! that drains its queue into one buffer (all that is queued: the envelopes a shard produced in
//! one turn go out together) and writes it to the connection's single outbound stream, so the
//! order of a sender's messages to a peer is kept. Connections are opened on the first message
//! (with backoff between failed attempts) or adopted from the peer when it dialed first, kept
//! alive while open, and closed by their dialer after `idle_timeout` without messages.
//!
//! What arrives is framed (`corelane_proto::frame`), checked (`decode_envelope`) and handed to
//! the [`Inbound`] with the peer's advertised address (from its `Hello`, the first frame of each
//! stream). Bad input is reported and costs at most its connection: a malformed envelope is
//! skipped (its frame is intact), an oversized frame or a stream that does not begin with
//! `Hello` closes the connection, a stream cut inside a frame loses that frame.

use crate::config::RemoteConfig;
use crate::tls::{self, TlsError};
use bytes::{Bytes, BytesMut};
use corelane_proto::frame::{encode_message, FrameDecoder, FrameError};
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Envelope, Hello, Kind};
use corelane_proto::{decode_envelope, decode_system, EnvelopeError, WIRE_VERSION};
use parking_lot::Mutex;
use quinn::{Connection, ConnectionError, Endpoint, SendStream, VarInt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Application close codes.
pub(crate) mod close {
    use quinn::VarInt;
    /// The dialer closed an idle connection.
    pub(crate) const IDLE: VarInt = VarInt::from_u32(1);
    /// The node is shutting down.
    pub(crate) const SHUTDOWN: VarInt = VarInt::from_u32(2);
    /// The peer sent a frame over the maximum.
    pub(crate) const OVERSIZED: VarInt = VarInt::from_u32(3);
    /// The peer broke the protocol (a stream that does not begin with `Hello`).
    pub(crate) const PROTOCOL: VarInt = VarInt::from_u32(4);
}

/// Flush a writer's buffer once it holds this much, even if more is queued.
const BATCH_BYTES: usize = 256 << 10;

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
}

/// Where the net thread hands what arrives. Called on the net thread: must not block.
pub(crate) trait Inbound: Send + Sync + 'static {
    /// A checked envelope from `peer` (its advertised address).
    fn envelope(&self, peer: SocketAddr, env: Envelope);
    /// `peer` is lost: it could not be reached, or its connection failed (not an idle or
    /// orderly close).
    fn peer_down(&self, peer: SocketAddr);
    /// Input that could not be used, from `peer` if it had said who it is.
    fn bad_input(&self, peer: Option<SocketAddr>, what: BadInput);
    /// `count` envelopes for `peer` were not sent (unreachable peer, full queue, broken
    /// connection, or too big to frame).
    fn dropped(&self, peer: SocketAddr, count: usize);
    /// Runs `f`, which hands over several envelopes: deliveries it makes may be batched.
    fn batch(&self, f: &mut dyn FnMut()) {
        f()
    }
}

/// A transport that could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The endpoint could not bind, or the net thread could not start.
    #[error("cannot start the net thread: {0}")]
    Io(String),
}

/// The handle other threads hold.
pub(crate) struct Transport {
    net: Arc<Net>,
    /// Tells the net thread to stop.
    stop: Arc<tokio::sync::Notify>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    max_queued: usize,
}

impl Transport {
    /// Binds the endpoint and starts the net thread.
    pub(crate) fn start(cfg: &RemoteConfig, inbound: Arc<dyn Inbound>) -> Result<Self, StartError> {
        let crypto = quic_configs(cfg)?;
        let (up_tx, up_rx) = std::sync::mpsc::channel();
        let stop = Arc::new(tokio::sync::Notify::new());
        let net = NetCfg {
            bind: cfg.bind,
            advertise: cfg.advertise,
            max_frame: cfg.max_frame,
            idle: cfg.idle_timeout,
            backoff: (cfg.backoff_min, cfg.backoff_max),
            attempts: cfg.connect_attempts.max(1),
            core: cfg.net_core,
        };
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("corelane-net".into())
            .spawn(move || net_thread(net, crypto, inbound, stopped, up_tx))
            .map_err(|e| StartError::Io(e.to_string()))?;
        let net = match up_rx.recv() {
            Ok(Ok(net)) => net,
            Ok(Err(e)) => return Err(StartError::Io(e)),
            Err(_) => return Err(StartError::Io("the net thread died while starting".into())),
        };
        Ok(Self { net, stop, thread: Mutex::new(Some(thread)), max_queued: cfg.max_queued_bytes })
    }

    /// The address this node gives itself on the wire.
    pub(crate) fn advertised(&self) -> SocketAddr {
        self.net.me
    }

    /// Queues one frame (prefix included, within the maximum) for `peer`. Never waits. A
    /// frame over the peer's queue limit, or sent after shutdown, is dropped and reported
    /// (`Inbound::dropped`).
    pub(crate) fn send(&self, peer: SocketAddr, frame: Bytes) {
        let len = frame.len();
        // Straight into the peer's writer queue (its task is started on first use), under the
        // peers lock: no reference counts move.
        let queued = self.net.with_peer(peer, |p| {
            if p.queued.fetch_add(len, Ordering::Relaxed) + len > self.max_queued {
                p.queued.fetch_sub(len, Ordering::Relaxed);
                return false;
            }
            if p.tx.send(frame).is_err() {
                p.queued.fetch_sub(len, Ordering::Relaxed);
                return false;
            }
            true
        });
        if queued != Some(true) {
            self.net.inbound.dropped(peer, 1);
        }
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
        .send_window(16 << 20);
    let transport = Arc::new(transport);
    crypto.server.transport_config(transport.clone());
    crypto.client.transport_config(transport);
    Ok(crypto)
}

struct NetCfg {
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
    max_frame: usize,
    idle: Duration,
    backoff: (Duration, Duration),
    attempts: u32,
    core: Option<usize>,
}

/// What the net thread's tasks (and the senders) share.
struct Net {
    endpoint: Endpoint,
    me: SocketAddr,
    server_name: String,
    cfg: NetCfg,
    inbound: Arc<dyn Inbound>,
    peers: Mutex<HashMap<SocketAddr, Peer>>,
    /// The net thread's runtime, where writers are started from any thread.
    rt: tokio::runtime::Handle,
    /// Set at shutdown: no new writers.
    closed: std::sync::atomic::AtomicBool,
}

/// A peer: its writer's queue, the bytes queued there, and the connection to use.
#[derive(Clone)]
struct Peer {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    conn: Arc<Mutex<Option<Live>>>,
}

/// An open connection and its count of reads that brought frames, for the idle check.
#[derive(Clone)]
struct Live {
    conn: Connection,
    received: Arc<AtomicU64>,
}

impl Live {
    fn is_open(&self) -> bool {
        self.conn.close_reason().is_none()
    }
}

type Up = std::sync::mpsc::Sender<Result<Arc<Net>, String>>;

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
            let _ = up.send(Err(e.to_string()));
            return;
        }
    };
    rt.block_on(async move {
        let mut endpoint = match Endpoint::server(crypto.server, cfg.bind) {
            Ok(e) => e,
            Err(e) => {
                let _ = up.send(Err(format!("cannot bind {}: {e}", cfg.bind)));
                return;
            }
        };
        endpoint.set_default_client_config(crypto.client);
        let local = match endpoint.local_addr() {
            Ok(a) => a,
            Err(e) => {
                let _ = up.send(Err(e.to_string()));
                return;
            }
        };
        let me = cfg.advertise.unwrap_or(local);
        let net = Arc::new(Net {
            endpoint: endpoint.clone(),
            me,
            server_name: crypto.server_name,
            cfg,
            inbound,
            peers: Mutex::new(HashMap::new()),
            rt: tokio::runtime::Handle::current(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        let _ = up.send(Ok(net.clone()));
        loop {
            tokio::select! {
                () = stop.notified() => break,
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => { tokio::spawn(accept(net.clone(), incoming)); }
                    None => break,
                },
            }
        }
        // Writers end with their queues.
        net.peers.lock().clear();
        endpoint.close(close::SHUTDOWN, b"shutdown");
        // Let the close frames go out; the peers see an orderly close, not a loss.
        let _ = tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle()).await;
    });
}

impl Net {
    /// The peer's entry, with a writer task started for it on first use (from any thread);
    /// `None` once the transport is shut down.
    fn peer(self: &Arc<Self>, addr: SocketAddr) -> Option<Peer> {
        self.with_peer(addr, Peer::clone)
    }

    /// Runs `f` on the peer's entry (started on first use) under the peers lock.
    fn with_peer<R>(self: &Arc<Self>, addr: SocketAddr, f: impl FnOnce(&Peer) -> R) -> Option<R> {
        let mut peers = self.peers.lock();
        if let Some(p) = peers.get(&addr).filter(|p| !p.tx.is_closed()) {
            return Some(f(p));
        }
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let p = Peer { tx, queued: Arc::default(), conn: Arc::new(Mutex::new(None)) };
        self.rt.spawn(writer(self.clone(), addr, rx, p.conn.clone(), p.queued.clone()));
        let r = f(&p);
        peers.insert(addr, p);
        Some(r)
    }

    /// Adopts a connection the peer dialed, unless one to it is open already.
    fn adopt(self: &Arc<Self>, addr: SocketAddr, live: &Live) {
        let Some(peer) = self.peer(addr) else { return };
        let mut slot = peer.conn.lock();
        if !slot.as_ref().is_some_and(Live::is_open) {
            *slot = Some(live.clone());
        }
    }

    /// Dials `peer`, retrying with backoff; `None` after the last attempt.
    async fn dial(self: &Arc<Self>, peer: SocketAddr) -> Option<Live> {
        let (mut delay, max) = self.cfg.backoff;
        for attempt in 1..=self.cfg.attempts {
            let connecting = self.endpoint.connect(peer, &self.server_name);
            match connecting {
                Ok(c) => match c.await {
                    Ok(conn) => {
                        let live = Live { conn, received: Arc::new(AtomicU64::new(0)) };
                        tokio::spawn(read_connection(self.clone(), live.clone(), Some(peer)));
                        return Some(live);
                    }
                    Err(e) => tracing::debug!(%peer, attempt, "connection failed: {e}"),
                },
                Err(e) => tracing::debug!(%peer, attempt, "cannot connect: {e}"),
            }
            if attempt < self.cfg.attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(max);
            }
        }
        None
    }
}

/// One peer's writer: batches its queue onto the connection's outbound stream.
async fn writer(
    net: Arc<Net>,
    peer: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    slot: Arc<Mutex<Option<Live>>>,
    queued: Arc<AtomicUsize>,
) {
    let mut out: Option<(Live, SendStream, bool)> = None; // (connection, stream, dialed by us)
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut seen = 0u64;
    loop {
        let first = match tokio::time::timeout(net.cfg.idle, rx.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(_) => {
                // Idle: the dialer closes the connection unless messages came in meanwhile.
                if let Some((live, _, true)) = &out {
                    let now = live.received.load(Ordering::Relaxed);
                    if now == seen {
                        live.conn.close(close::IDLE, b"idle");
                        out = None;
                    }
                    seen = now;
                }
                continue;
            }
        };
        // Everything queued goes out in one write (what a shard sent in one turn included),
        // copied into one buffer: quinn packs one large chunk far faster than many small ones.
        buf.extend_from_slice(&first);
        let mut count = 1;
        while buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(f) => {
                    buf.extend_from_slice(&f);
                    count += 1;
                }
                Err(_) => break,
            }
        }
        queued.fetch_sub(buf.len(), Ordering::Relaxed);
        if !out.as_ref().is_some_and(|(live, _, _)| live.is_open()) {
            out = open(&net, peer, &slot).await;
            if out.is_none() {
                buf.clear();
                net.inbound.peer_down(peer);
                net.inbound.dropped(peer, count);
                continue;
            }
        }
        let Some((_, stream, _)) = out.as_mut() else { continue };
        if stream.write_all(&buf).await.is_err() {
            // At most once: what was in this write is lost, not sent again.
            net.inbound.dropped(peer, count);
            out = None;
        }
        buf.clear();
    }
}

/// The outbound stream to `peer`: on its open connection (dialed or adopted), or on a new one.
async fn open(
    net: &Arc<Net>,
    peer: SocketAddr,
    slot: &Mutex<Option<Live>>,
) -> Option<(Live, SendStream, bool)> {
    let existing = slot.lock().clone().filter(Live::is_open);
    let (live, dialed) = match existing {
        Some(l) => (l, false),
        None => {
            let l = net.dial(peer).await?;
            *slot.lock() = Some(l.clone());
            (l, true)
        }
    };
    let mut stream = live.conn.open_uni().await.ok()?;
    let hello =
        Envelope::system(0, 0, Body::Hello(Hello { node: net.me.to_string(), version: WIRE_VERSION }));
    let mut buf = BytesMut::new();
    encode_message(&hello, &mut buf, net.cfg.max_frame).ok()?;
    stream.write_all(&buf).await.ok()?;
    Some((live, stream, dialed))
}

async fn accept(net: Arc<Net>, incoming: quinn::Incoming) {
    match incoming.await {
        Ok(conn) => read_connection(net, Live { conn, received: Arc::new(AtomicU64::new(0)) }, None).await,
        Err(e) => tracing::debug!("incoming connection failed: {e}"),
    }
}

/// Reads every stream the peer opens on `live`; reports the peer lost when the connection
/// fails (not when it is closed in order).
async fn read_connection(net: Arc<Net>, live: Live, dialed: Option<SocketAddr>) {
    let known = Arc::new(Mutex::new(dialed));
    let err = loop {
        match live.conn.accept_uni().await {
            Ok(stream) => {
                tokio::spawn(read_stream(net.clone(), live.clone(), stream, known.clone()));
            }
            Err(e) => break e,
        }
    };
    let peer = *known.lock();
    if let Some(peer) = peer {
        let orderly = match &err {
            ConnectionError::ApplicationClosed(c) => c.error_code == close::IDLE,
            ConnectionError::LocallyClosed => true,
            _ => false,
        };
        if !orderly {
            net.inbound.peer_down(peer);
        }
    }
}

async fn read_stream(
    net: Arc<Net>,
    live: Live,
    mut stream: quinn::RecvStream,
    known: Arc<Mutex<Option<SocketAddr>>>,
) {
    let mut dec = FrameDecoder::new(net.cfg.max_frame);
    let mut peer: Option<SocketAddr> = None;
    loop {
        let chunk = match stream.read_chunk(usize::MAX, true).await {
            Ok(Some(c)) => c.bytes,
            Ok(None) | Err(_) => break,
        };
        dec.push(chunk);
        // Something arrived: the connection is not idle (one count per read, not per frame).
        live.received.fetch_add(1, Ordering::Relaxed);
        // Everything one read brought is handed over in one batch (one wake-up per shard).
        let mut closed = None;
        net.inbound.batch(&mut || closed = frames(&net, &live, &mut dec, &mut peer, &known));
        if let Some((code, why)) = closed {
            live.conn.close(code, why);
            return;
        }
    }
    if let Err(e) = dec.finish() {
        net.inbound.bad_input(peer, BadInput::Frame(e));
    }
}

/// Hands over the complete frames `dec` holds; the close code and reason when the stream broke
/// the protocol.
fn frames(
    net: &Arc<Net>,
    live: &Live,
    dec: &mut FrameDecoder,
    peer: &mut Option<SocketAddr>,
    known: &Mutex<Option<SocketAddr>>,
) -> Option<(VarInt, &'static [u8])> {
    loop {
        let frame = match dec.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => return None,
            Err(e) => {
                net.inbound.bad_input(*peer, BadInput::Frame(e));
                return Some((close::OVERSIZED, b"oversized frame"));
            }
        };
        let env = match decode_envelope(frame) {
            Ok(env) => env,
            Err(e) => {
                if peer.is_none() {
                    net.inbound.bad_input(None, BadInput::NoHello);
                    return Some((close::PROTOCOL, b"no hello"));
                }
                net.inbound.bad_input(*peer, BadInput::Envelope(e));
                continue;
            }
        };
        match *peer {
            Some(p) => net.inbound.envelope(p, env),
            None => match hello(&env) {
                Some(p) => {
                    *peer = Some(p);
                    *known.lock() = Some(p);
                    net.adopt(p, live);
                }
                None => {
                    net.inbound.bad_input(None, BadInput::NoHello);
                    return Some((close::PROTOCOL, b"no hello"));
                }
            },
        }
    }
}

/// The advertised address in a `Hello`.
fn hello(env: &Envelope) -> Option<SocketAddr> {
    if env.kind() != Kind::System {
        return None;
    }
    match decode_system(env.payload.clone()) {
        Ok(Body::Hello(h)) if h.version == WIRE_VERSION => h.node.parse().ok(),
        _ => None,
    }
}
