//! A node: a runtime reachable from other nodes over QUIC.

use crate::codec::RemoteMessage;
use crate::error::{ErrorCode, RemoteAskError, RemoteSendError, StartError};
use crate::protocol::Protocol;
use crate::remote_ref::{RemoteAsk, RemoteRef};
use crate::target::{Exposed, Target};
use crate::transport::{TellTo, Transport};
use crate::RemoteConfig;
use bytes::{Bytes, BytesMut};
use corelane::{
    Actor, ActorRef, DeadLetterReason, Handle, Reply, Runtime, Scheduled, SpawnError, SpawnOptions,
};
use corelane_proto::frame::{append_more, encode_envelope, encode_message, Head};
use corelane_proto::v1::Envelope;
use parking_lot::{Mutex, RwLock};
use std::any::TypeId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A runtime reachable from other nodes: one QUIC endpoint on its own net thread.
///
/// Cheap to clone; the node stops with [`Node::shutdown`] or when the last clone (and every
/// [`RemoteRef`] made from it) is dropped.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("addr", &self.addr()).finish()
    }
}

/// An actor kind other nodes may spawn here: spawns one with the options, to be registered
/// under the name given (empty: none).
pub(crate) type Kind =
    Arc<dyn Fn(&Handle, SpawnOptions, &str) -> Result<Arc<dyn Target>, SpawnError> + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) rt: Handle,
    transport: OnceLock<Transport>,
    me: OnceLock<SocketAddr>,
    /// Chosen at random at start: ids of this node's actors are only valid with it.
    pub(crate) incarnation: u64,
    /// What peers can make this node hold.
    pub(crate) limits: crate::config::Limits,
    /// The incarnation each peer said in its latest `Hello`.
    pub(crate) peer_incarnations: Mutex<HashMap<SocketAddr, u64>>,
    /// Live actors each peer spawned here.
    pub(crate) spawns: Mutex<HashMap<SocketAddr, Vec<corelane::AnyRef>>>,
    pub(crate) max_frame: usize,
    /// How long a remote ask may wait for a local actor's answer before it is answered with an
    /// error.
    pub(crate) serve_timeout: Duration,
    /// The protocols served, by actor message type; each can look its actors up by name.
    pub(crate) protocols: RwLock<HashMap<TypeId, Arc<dyn Lookup>>>,
    /// Kinds other nodes may spawn.
    pub(crate) kinds: RwLock<HashMap<String, Kind>>,
    /// Names given by remote spawns, with their kinds (for respawn).
    pub(crate) spawned: Mutex<HashMap<String, String>>,
    /// Actors other nodes may address, by id: those they found (lookup, spawn) or were given.
    pub(crate) exposed: RwLock<HashMap<u64, Arc<dyn Target>, foldhash::fast::RandomState>>,
    /// Schedules other nodes made here, by (node, schedule id), with when a one-shot ends.
    pub(crate) schedules: Mutex<HashMap<(SocketAddr, u64), RemoteSchedule>>,
    /// Local stand-ins for remote actors watched from here.
    pub(crate) standins: Mutex<crate::remote_watch::Standins>,
    /// The actor that watches local actors for remote watchers (spawned on first use).
    pub(crate) relay: Mutex<Option<ActorRef<crate::remote_watch::RelayMsg>>>,
    /// Asks waiting for an answer from another node, by correlation id.
    pub(crate) pending: Mutex<HashMap<u64, Waiting>>,
    next_correlation: AtomicU64,
    /// Keys the hash that turns the counter into correlation ids.
    correlation_key: std::collections::hash_map::RandomState,
    /// The cluster this node is a member of, if any (grain messages and handovers go to it).
    /// Set once.
    cluster: OnceLock<std::sync::Weak<crate::cluster::ClusterInner>>,
}

/// A snapshot of what other nodes make a node hold ([`Node::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Peers remembered, each with a send queue and a writer task.
    pub peers: usize,
    /// Connections other nodes opened to this one.
    pub connections: usize,
    /// Bytes of unfinished frames held for all connections.
    pub buffered_bytes: usize,
    /// Schedules other nodes keep here.
    pub remote_schedules: usize,
    /// Live actors other nodes spawned here.
    pub remote_spawns: usize,
    /// Asks of this node waiting for another node's answer.
    pub pending_asks: usize,
    /// The UDP socket's buffers as the kernel granted them (none once shut down).
    pub socket: Option<crate::SocketBuffers>,
}

/// A schedule another node made here, and when it ends if it is a one-shot.
pub(crate) type RemoteSchedule = (Scheduled, Option<Instant>);

/// Finds an actor of one message type by name, exposed for other nodes.
pub(crate) trait Lookup: Send + Sync {
    fn lookup(&self, rt: &Handle, name: &str) -> Option<Arc<dyn Target>>;
}

struct ByName<M>(Arc<Protocol<M>>);
impl<M: Send + 'static> Lookup for ByName<M> {
    fn lookup(&self, rt: &Handle, name: &str) -> Option<Arc<dyn Target>> {
        let actor = rt.lookup::<M>(name)?;
        Some(Arc::new(Exposed::new(actor, self.0.clone())))
    }
}

/// An ask waiting for a remote answer: whom it went to, and how to finish it.
pub(crate) struct Waiting {
    pub(crate) peer: SocketAddr,
    /// The incarnation of `peer` the request was meant for (0: not known when it was sent).
    pub(crate) incarnation: u64,
    pub(crate) finish: Box<dyn Finish>,
}

/// Completes a waiting ask with the answer's envelope or a failure.
pub(crate) trait Finish: Send {
    fn finish(self: Box<Self>, outcome: Result<Envelope, RemoteAskError>);
    /// Whether the asker gave up.
    fn abandoned(&self) -> bool;
}

impl Node {
    /// Starts a node for `runtime`: binds the endpoint and starts the net thread.
    ///
    /// # Errors
    /// TLS material that does not work, an address that cannot be bound, or a frame limit
    /// below `corelane_proto::frame::MIN_MAX_FRAME`.
    pub fn start(runtime: &Runtime, mut config: RemoteConfig) -> Result<Node, StartError> {
        if config.max_frame < corelane_proto::frame::MIN_MAX_FRAME {
            return Err(StartError::FrameLimit(config.max_frame));
        }
        if config.net_core.is_none() {
            config.net_core = net_core_from_env()?;
        }
        if let Some(core) = config.net_core {
            warn_about_net_core(runtime, core);
        }
        let inner = Arc::new(Inner {
            rt: runtime.handle().clone(),
            transport: OnceLock::new(),
            me: OnceLock::new(),
            incarnation: new_incarnation(),
            limits: config.limits.clone(),
            peer_incarnations: Mutex::new(HashMap::new()),
            spawns: Mutex::new(HashMap::new()),
            max_frame: config.max_frame,
            serve_timeout: config.serve_timeout,
            protocols: RwLock::new(HashMap::new()),
            kinds: RwLock::new(HashMap::new()),
            spawned: Mutex::new(HashMap::new()),
            schedules: Mutex::new(HashMap::new()),
            standins: Mutex::new(Default::default()),
            relay: Mutex::new(None),
            exposed: RwLock::new(HashMap::default()),
            pending: Mutex::new(HashMap::new()),
            next_correlation: AtomicU64::new(1),
            correlation_key: std::collections::hash_map::RandomState::new(),
            cluster: OnceLock::new(),
        });
        let dispatch = Arc::new(crate::dispatch::Dispatch(Arc::downgrade(&inner)));
        let transport = Transport::start(&config, inner.incarnation, dispatch)?;
        let _ = inner.me.set(transport.advertised());
        let _ = inner.transport.set(transport);
        Ok(Node { inner })
    }

    /// The address other nodes reach this one at (the advertised address).
    pub fn addr(&self) -> SocketAddr {
        self.inner.me()
    }

    /// This node's incarnation: chosen at random when it started, carried by the addresses of
    /// its actors, so that a node restarted on the same address refuses what was meant for
    /// its predecessor.
    pub fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    /// The runtime this node serves.
    pub fn runtime(&self) -> &Handle {
        &self.inner.rt
    }

    /// Serves actors of message type `M` to other nodes with `protocol`: those registered by
    /// name in the runtime can be looked up, and kinds of that type spawned. Replaces an
    /// earlier protocol for `M`.
    pub fn serve<M: Send + 'static>(&self, protocol: Protocol<M>) -> &Self {
        let p: Arc<dyn Lookup> = Arc::new(ByName(Arc::new(protocol)));
        self.inner.protocols.write().insert(TypeId::of::<M>(), p);
        self
    }

    /// Lets other nodes spawn actors of kind `kind` here (`RemoteNode::spawn`), made by
    /// `factory` and reached through `protocol`.
    pub fn register_kind<A, F>(&self, kind: &str, protocol: Protocol<A::Msg>, factory: F) -> &Self
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + Clone + 'static,
    {
        let protocol = Arc::new(protocol);
        // Actors of the kind can be found by name (for lookup and respawn) even if `serve` was
        // not called for their type.
        let by_name: Arc<dyn Lookup> = Arc::new(ByName(protocol.clone()));
        self.inner.protocols.write().entry(TypeId::of::<A::Msg>()).or_insert(by_name);
        let make: Kind = Arc::new(move |rt: &Handle, opts: SpawnOptions, _name: &str| {
            let actor = rt.spawn_with(opts, factory.clone())?;
            Ok(Arc::new(Exposed::new(actor, protocol.clone())) as Arc<dyn Target>)
        });
        self.inner.kinds.write().insert(kind.to_string(), make);
        self
    }

    /// Makes a local actor reachable from other nodes through `protocol`, and returns its
    /// address as they would use it (to hand to them in a message).
    pub fn expose<M: Send + 'static>(&self, actor: &ActorRef<M>, protocol: Protocol<M>) -> RemoteRef {
        let id = actor.id().as_u64();
        let target: Arc<dyn Target> = Arc::new(Exposed::new(actor.clone(), Arc::new(protocol)));
        self.inner.exposed.write().insert(id, target);
        RemoteRef::new(self.clone(), self.addr(), id, self.inner.incarnation)
    }

    /// A reference to actor `id` on the node at `node` (an id learned from that node, without
    /// its incarnation: not checked there). Prefer [`Node::remote_ref_to`] with a full address.
    pub fn remote_ref(&self, node: SocketAddr, id: u64) -> RemoteRef {
        RemoteRef::new(self.clone(), node, id, 0)
    }

    /// A reference to the actor at `address` (as [`RemoteRef::address`] gives it, incarnation
    /// included). `None` when its node address does not parse.
    pub fn remote_ref_to(&self, address: &corelane_proto::v1::ActorAddress) -> Option<RemoteRef> {
        let node = address.node.parse().ok()?;
        Some(RemoteRef::new(self.clone(), node, address.id, address.incarnation))
    }

    /// The node at `node`, for operations that address the node itself (lookup, spawn, ...).
    pub fn remote(&self, node: SocketAddr) -> crate::RemoteNode {
        crate::RemoteNode::new(self.clone(), node)
    }

    /// What other nodes make this node hold now (each is bounded by [`crate::config::Limits`]).
    pub fn stats(&self) -> NodeStats {
        let inner = &self.inner;
        let (peers, connections, buffered_bytes) =
            inner.transport.get().map_or((0, 0, 0), |t| (t.peers(), t.connections(), t.buffered()));
        let now = Instant::now();
        let remote_schedules = {
            let mut all = inner.schedules.lock();
            all.retain(|_, (h, ends)| !h.is_cancelled() && ends.is_none_or(|e| e > now));
            all.len()
        };
        let remote_spawns = inner.spawns.lock().values().flatten().filter(|a| a.is_alive()).count();
        let socket = inner.transport.get().filter(|t| !t.is_closed()).map(Transport::socket_buffers);
        NodeStats {
            peers,
            connections,
            buffered_bytes,
            remote_schedules,
            remote_spawns,
            pending_asks: inner.pending.lock().len(),
            socket,
        }
    }

    /// Closes every connection and stops the net thread; asks still waiting fail with
    /// `Send(Closed)`. The runtime is not stopped. Idempotent.
    pub fn shutdown(&self) {
        if let Some(t) = self.inner.transport.get() {
            t.shutdown();
        }
        let waiting: Vec<Waiting> = self.inner.pending.lock().drain().map(|(_, w)| w).collect();
        for w in waiting {
            w.finish.finish(Err(RemoteAskError::Send(RemoteSendError::Closed)));
        }
    }
}

impl Inner {
    /// Whether the node still serves (its transport has not been shut down).
    #[cfg(feature = "ops")]
    pub(crate) fn is_open(&self) -> bool {
        self.transport.get().is_some_and(|t| !t.is_closed())
    }

    /// The cluster this node is a member of.
    pub(crate) fn cluster(&self) -> Option<Arc<crate::cluster::ClusterInner>> {
        self.cluster.get().and_then(std::sync::Weak::upgrade)
    }

    /// The cluster's identity (the address of its state), without taking a reference to it.
    pub(crate) fn cluster_key(&self) -> Option<usize> {
        self.cluster.get().map(|w| w.as_ptr() as usize)
    }

    /// Makes this node a member of a cluster; false if it already is (of this or another:
    /// a node is a member of one cluster in its life).
    pub(crate) fn set_cluster(&self, c: std::sync::Weak<crate::cluster::ClusterInner>) -> bool {
        self.cluster.set(c).is_ok()
    }

    /// Whether `start` has finished (the transport may hand over envelopes a moment before).
    pub(crate) fn started(&self) -> bool {
        self.transport.get().is_some()
    }

    pub(crate) fn me(&self) -> SocketAddr {
        *self.me.get().expect("set at start")
    }

    /// The address of this node's actor `id`, as it travels.
    pub(crate) fn address(&self, id: u64) -> corelane_proto::v1::ActorAddress {
        corelane_proto::v1::ActorAddress { node: self.me().to_string(), id, incarnation: self.incarnation }
    }

    /// `peer` (its incarnation known so far) is gone: asks waiting for it fail with
    /// `NodeDown`, watchers of its actors get `Terminated(NodeDown)`, its schedules here end.
    pub(crate) fn peer_lost(&self, peer: SocketAddr) {
        self.fail_pending(peer, RemoteAskError::NodeDown);
        crate::remote_watch::node_down(self, peer);
        crate::remote_schedule::peer_lost(self, peer);
    }

    /// Asks waiting for `peer` fail now with `err` (it will not answer them).
    pub(crate) fn fail_pending(&self, peer: SocketAddr, err: RemoteAskError) {
        let lost: Vec<_> = {
            let mut pending = self.pending.lock();
            let ids: Vec<u64> = pending.iter().filter(|(_, w)| w.peer == peer).map(|(id, _)| *id).collect();
            ids.into_iter().filter_map(|id| pending.remove(&id)).collect()
        };
        for w in lost {
            w.finish.finish(Err(err.clone()));
        }
    }

    /// A peer's `Hello`: a new incarnation on a known address means the old one is gone.
    pub(crate) fn peer_hello(&self, peer: SocketAddr, incarnation: u64) {
        let before = {
            let mut known = self.peer_incarnations.lock();
            if known.len() >= self.limits.max_peers && !known.contains_key(&peer) {
                // Bounded: forget the others (they are learned again from their next Hello).
                known.clear();
            }
            known.insert(peer, incarnation)
        };
        if let Some(old) = before.filter(|b| *b != incarnation) {
            tracing::info!(%peer, "peer restarted (new incarnation)");
            self.peer_restarted(peer, old);
        }
    }

    /// `peer` restarted: what was meant for its incarnation `old` is gone. Asks to `old` are
    /// refused (`NodeRestarted`), watchers of its actors get `Terminated(NodeDown)`, the
    /// schedules it made here end.
    fn peer_restarted(&self, peer: SocketAddr, old: u64) {
        let lost: Vec<_> = {
            let mut pending = self.pending.lock();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, w)| w.peer == peer && w.incarnation == old)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter().filter_map(|id| pending.remove(&id)).collect()
        };
        for w in lost {
            w.finish.finish(Err(restarted(peer)));
        }
        crate::remote_watch::node_down(self, peer);
        crate::remote_schedule::peer_lost(self, peer);
    }

    /// The transport, unless the node is shut down (or not yet started).
    fn open_transport(&self) -> Result<&Transport, RemoteSendError> {
        self.transport.get().filter(|t| !t.is_closed()).ok_or(RemoteSendError::Closed)
    }

    /// Sends an envelope, refusing one that cannot be framed.
    pub(crate) fn send(&self, peer: SocketAddr, mut env: Envelope) -> Result<(), RemoteSendError> {
        if env.trace.is_empty() {
            if let Some(t) = outgoing_trace(env.kind()) {
                env.trace = t.to_vec();
            }
        }
        let mut buf = BytesMut::new();
        let transport = self.open_transport()?;
        encode_message(&env, &mut buf, self.max_frame).map_err(|_| RemoteSendError::TooLarge {
            len: prost::Message::encoded_len(&env),
            max: self.max_frame,
        })?;
        // An envelope built whole says its target's incarnation itself, if it has one.
        transport.send(peer, &buf, 0);
        Ok(())
    }

    /// Sends an envelope built in place from `head` and a payload of type `P` (the fast path
    /// of tell and ask: one buffer, no intermediate allocation).
    pub(crate) fn send_message<P: RemoteMessage>(
        &self,
        peer: SocketAddr,
        head: &Head<'_>,
        msg: &P,
    ) -> Result<(), RemoteSendError> {
        self.send_parts(peer, head, msg.encoded_len(), |b| msg.encode(b))
    }

    /// Sends a tell of `msg` to actor `target` (of the peer's incarnation `incarnation`), one
    /// that may join the tell queued last for `peer` ([`Inner::send_joining`]).
    pub(crate) fn send_tell<P: RemoteMessage>(
        &self,
        peer: SocketAddr,
        target: u64,
        incarnation: u64,
        msg: &P,
    ) -> Result<(), RemoteSendError> {
        let kind = corelane_proto::v1::Kind::Tell;
        let head = Head { target, kind, manifest: P::manifest(), incarnation, ..Head::default() };
        self.send_joining(peer, &head, &TellTo::actor(target, P::manifest()), msg)
    }

    /// Sends the tell `head` says with `msg` as its payload: joined to the tell queued last for
    /// `peer` when that one is for the same actor or grain (`to`) with the same manifest and
    /// nothing was queued after it (`Envelope::more`), so a stream of tells travels as a few
    /// envelopes. A traced tell travels on its own.
    pub(crate) fn send_joining<P: RemoteMessage>(
        &self,
        peer: SocketAddr,
        head: &Head<'_>,
        to: &TellTo<'_>,
        msg: &P,
    ) -> Result<(), RemoteSendError> {
        if outgoing_trace(head.kind).is_some() {
            return self.send_message(peer, head, msg);
        }
        let transport = self.open_transport()?;
        let len = msg.encoded_len();
        let wire = Head { incarnation: 0, ..*head };
        transport
            .send_tell(peer, head.incarnation, wire.max_len(len), to, |buf, joins| match joins {
                Some(at) => append_more(buf, at, len, |b| msg.encode(b), self.max_frame),
                None => encode_envelope(&wire, len, |b| msg.encode(b), buf, self.max_frame),
            })
            .map_err(|_| RemoteSendError::TooLarge { len, max: self.max_frame })
    }

    /// Sends an envelope built in place from `head` and a payload of `len` bytes that `write`
    /// appends. The target's incarnation (`head.incarnation`) is not written into the frame:
    /// the stream it goes on addresses it (see `Transport::send`).
    pub(crate) fn send_parts(
        &self,
        peer: SocketAddr,
        head: &Head<'_>,
        len: usize,
        write: impl FnOnce(&mut BytesMut),
    ) -> Result<(), RemoteSendError> {
        let transport = self.open_transport()?;
        let trace = if head.trace.is_empty() { outgoing_trace(head.kind) } else { None };
        // Encoded straight into the peer's queue.
        let wire = Head { incarnation: 0, trace: trace.as_ref().map_or(head.trace, |t| &t[..]), ..*head };
        transport
            .send_with(peer, head.incarnation, wire.max_len(len), |buf| {
                encode_envelope(&wire, len, write, buf, self.max_frame)
            })
            .map_err(|_| RemoteSendError::TooLarge { len, max: self.max_frame })
    }

    /// A fresh correlation id: a keyed hash (SipHash, random key) of a counter, so a peer
    /// cannot guess the ids of asks sent to others and answer them. Never 0.
    pub(crate) fn correlation(&self) -> u64 {
        use std::hash::BuildHasher;
        let n = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        self.correlation_key.hash_one(n).max(1)
    }

    /// Registers a waiting ask and sends its request (`send` gets the correlation id); the
    /// answer (or failure) finishes it.
    pub(crate) fn request(
        &self,
        peer: SocketAddr,
        incarnation: u64,
        send: impl FnOnce(&Inner, SocketAddr, u64) -> Result<(), RemoteSendError>,
        finish: Box<dyn Finish>,
    ) {
        // Meant for an incarnation that is known to be gone: refused at once.
        let known = self.peer_incarnations.lock().get(&peer).copied();
        let incarnation = match (incarnation, known) {
            (0, k) => k.unwrap_or(0),
            (i, Some(k)) if i != k => return finish.finish(Err(restarted(peer))),
            (i, _) => i,
        };
        let id = {
            let mut pending = self.pending.lock();
            let mut id = self.correlation();
            while pending.contains_key(&id) {
                id = self.correlation();
            }
            // Asks whose askers gave up are swept now and then (their answers may never come).
            if id.is_multiple_of(1024) {
                pending.retain(|_, w| !w.finish.abandoned());
            }
            pending.insert(id, Waiting { peer, incarnation, finish });
            id
        };
        if let Err(e) = send(self, peer, id) {
            if let Some(w) = self.pending.lock().remove(&id) {
                w.finish.finish(Err(RemoteAskError::Send(e)));
            }
        }
    }

    pub(crate) fn dead_letter(&self, reason: DeadLetterReason, what: &'static str) {
        self.dead_letters(reason, what, 1);
    }

    /// `n` messages that arrived and are not delivered (a batch's, `Envelope::more`).
    pub(crate) fn dead_letters(&self, reason: DeadLetterReason, what: &'static str, n: usize) {
        corelane::integration::record_dead_letters(&self.rt, reason, what, n as u64);
    }
}

/// A random, non-zero incarnation (std's hasher keys are random per process, and the clock
/// and process id are mixed in).
fn new_incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() | 1
}

/// Finishes a typed ask: decodes the answer as `R`.
pub(crate) struct Answer<R: Send + 'static>(pub(crate) Reply<Result<R, RemoteAskError>>);

impl<R: RemoteMessage> Finish for Answer<R> {
    fn finish(self: Box<Self>, outcome: Result<Envelope, RemoteAskError>) {
        let r = outcome.and_then(|env| R::decode(env.payload).map_err(RemoteAskError::Decode));
        self.0.send(r);
    }
    fn abandoned(&self) -> bool {
        self.0.is_canceled()
    }
}

/// A typed ask to `peer`, as `RemoteAsk`.
pub(crate) fn ask<R: RemoteMessage>(
    inner: &Inner,
    peer: SocketAddr,
    incarnation: u64,
    send: impl FnOnce(&Inner, SocketAddr, u64) -> Result<(), RemoteSendError>,
) -> RemoteAsk<R> {
    let (reply, pending) = corelane::integration::request::<Result<R, RemoteAskError>>(&inner.rt);
    inner.request(peer, incarnation, send, Box::new(Answer(reply)));
    RemoteAsk::new(pending)
}

/// The refusal of a request meant for an incarnation of `peer` that is gone.
fn restarted(peer: SocketAddr) -> RemoteAskError {
    RemoteAskError::Refused {
        code: ErrorCode::NodeRestarted,
        detail: format!("the node at {peer} restarted: the actor belonged to its earlier incarnation"),
    }
}

/// An error envelope's code and detail as the asker sees them.
pub(crate) fn refused(payload: Bytes) -> RemoteAskError {
    match corelane_proto::decode_error(payload) {
        Ok(e) => RemoteAskError::Refused { code: e.code(), detail: e.detail },
        Err(e) => RemoteAskError::Refused { code: ErrorCode::Malformed, detail: e.to_string() },
    }
}

/// The trace context a tell or an ask sent from this thread carries: a child of the current one
/// (the message being handled, or a `corelane::trace::scope`). Always `None` without the
/// `tracing-spans` feature.
#[inline]
fn outgoing_trace(kind: corelane_proto::v1::Kind) -> Option<[u8; corelane::trace::TraceContext::BYTES]> {
    let t = corelane::trace::current()?;
    use corelane_proto::v1::Kind::{Ask, Tell};
    matches!(kind, Tell | Ask).then(|| t.child().to_bytes())
}

/// `CORELANE_NET_CORE`: the core to pin the net thread to, when the configuration names none
/// (operators place a node without a rebuild, as `CORELANE_CORES` places its shards).
fn net_core_from_env() -> Result<Option<usize>, StartError> {
    match std::env::var("CORELANE_NET_CORE") {
        Ok(v) => v.trim().parse().map(Some).map_err(|_| StartError::Environment(v)),
        Err(_) => Ok(None),
    }
}

/// Warns about what the host does against the net thread's core, beyond what the runtime's
/// start already said about its shards' cores. The network card is `CORELANE_NIC`, or else
/// the default route's interface (what traffic takes unless a bind address says otherwise).
fn warn_about_net_core(runtime: &Runtime, core: usize) {
    use corelane::host;
    let shards: Vec<usize> = runtime.shard_cores().iter().flatten().copied().collect();
    let topology = host::Topology::read();
    let nic = std::env::var("CORELANE_NIC").ok().or_else(host::default_route_interface);
    let nic_node = nic.as_deref().and_then(host::nic_node);
    let already = topology.placement_warnings(&shards, None);
    for w in topology.placement_warnings(&shards, Some((core, nic_node))) {
        if !already.contains(&w) {
            tracing::warn!("placement: net thread: {w}");
        }
    }
}
