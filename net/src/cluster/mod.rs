//! The cluster: membership in a store with leases (etcd), partitions and their owners, and
//! grains (virtual actors) that live on the owner of their partition and move when members
//! come and go, never running twice at once.
//!
//! A member joins with [`Cluster::builder`]: it writes its record under a lease it renews
//! itself, watches the member set, and computes from each member set (each *topology epoch*)
//! which member owns each of the 271 partitions of each grain kind. A grain message goes
//! straight to the owner; no lookup is made per message. See `docs/cluster.md` for the
//! guarantees and the failure timeline.
//!
//! - **Fencing**: a member serves grains only until the send time of its last acknowledged
//!   renewal plus the TTL minus a margin. The store starts the TTL when it receives a renewal,
//!   so the member stops serving before the store can expire its record and let another
//!   member take its partitions.
//! - **Handover**: a member that gains a partition activates its grains only after every
//!   member of the new epoch has applied it (stopped its grains of partitions it lost) or left.
//! - **Refusals** (`NotOwner`, `NotReady`, `Fenced`) mean the message was not handled: the
//!   sender refreshes its topology and retries within the caller's timeout.

mod by_name;
mod client;
mod config;
mod gate;
mod grain;
mod grain_ref;
mod handover;
mod held;
mod host;
mod membership;
mod memory;
pub(crate) mod named;
pub mod partitions;
mod provider;
mod relocate;
mod schedule;
pub(crate) mod serve;
mod singleton;
mod topology;

#[cfg(feature = "etcd")]
mod etcd;

pub use by_name::ByName;
pub use client::ClusterClient;
pub use config::{ClusterBuilder, ClusterConfig, ClusterError};
#[cfg(feature = "etcd")]
pub use etcd::EtcdProvider;
pub(crate) use gate::Gate;
pub use grain::{Grain, GrainCtx};
pub use grain_ref::{GrainAsk, GrainRef};
pub(crate) use handover::applied_from;
pub use memory::MemoryProvider;
pub use named::{Placement, SpawnNamed};
pub use provider::{
    BoxFuture, Claimed, ClusterProvider, Member, MemberChange, MemberWatch, NameChange, NameRecord,
    NameWatch, ProviderError, Snapshot, Spec, Versioned,
};
pub use schedule::{ClusterSchedule, NewSchedule, ScheduleState, CATCH_UP, MIN_INTERVAL};
pub use singleton::SpawnSingleton;

use crate::error::{ErrorCode, RemoteAskError};
use crate::node::Node;
use crate::remote_ref::RemoteAsk;
use host::{GrainKind, HostRef};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use topology::Topology;
use xxhash_rust::xxh3::Xxh3Builder;

/// Counters of a member's cluster work ([`Cluster::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClusterStats {
    /// The current topology epoch.
    pub epoch: u64,
    /// Members in it.
    pub members: usize,
    /// Whether this member serves grains now (not fenced).
    pub serving: bool,
    /// Requests made of the membership store so far, by everyone using the same provider
    /// object (the in-memory store is shared by its members).
    pub store_requests: u64,
    /// Lease renewals this member made (acknowledged).
    pub renewals: u64,
    /// Requests this member made of the store other than renewals: joining (grant, register),
    /// reading and watching the member set, leaving. None of them per message: they happen
    /// when joining, when a watch must be made again, and when leaving.
    pub membership_requests: u64,
    /// Grain activations live on this member.
    pub activations: usize,
    /// Activations started here so far.
    pub activated: u64,
    /// Times this member fenced itself.
    pub fenced: u64,
    /// Grain messages this member refused to their senders (not owner, not ready, fenced). A
    /// message held while its partition is handed over, and served after, is not refused.
    pub refused: u64,
    /// Asks sent again after a refusal (grain asks, and asks by name whose actor had gone).
    pub retries: u64,
    /// Grain messages held now for partitions being handed over.
    pub held: usize,
    /// Activations passivated (idle past the grain idle timeout) so far.
    pub passivated: u64,
    /// Named actors hosted here now.
    pub named: usize,
    /// Named actors this member spawned again after their host went, so far.
    pub relocated: u64,
    /// Requests relocation made of the store (reading the specs, claiming in batches), so far;
    /// not counted in `membership_requests`.
    pub relocation_requests: u64,
    /// Ticks of cluster-wide schedules this member fired (each recorded once in the store).
    pub ticks_fired: u64,
}

/// The grain kinds a member hosts, by name (xxh3: looked up per message).
pub(crate) type Kinds = HashMap<Arc<str>, KindEntry, Xxh3Builder>;

/// A registered kind, the hosts of its partitions served here, and its activations.
pub(crate) struct KindEntry {
    pub(crate) name: &'static str,
    pub(crate) make: Arc<dyn GrainKind>,
    pub(crate) hosts: Mutex<HashMap<u16, Host>>,
    /// Activations live in all its hosts.
    pub(crate) live: Arc<AtomicUsize>,
}

/// The actor hosting the activations of one partition of a kind (see `host.rs`).
pub(crate) struct Host {
    pub(crate) target: Arc<dyn HostRef>,
    pub(crate) id: u64,
    /// This member told it to stop: until it has stopped (and left the map), the partition
    /// gets no new host (the old one's drain and the new one's grains would overlap).
    pub(crate) stopping: bool,
}

impl Host {
    /// Stops it gracefully (it handles what it had queued, then deactivates its grains) and
    /// marks it stopping; the stop's completion, for those who wait for it.
    pub(crate) fn stop(&mut self) -> corelane::Pending<()> {
        self.stopping = true;
        self.target.stop()
    }
}

/// Partitions gained at an epoch and not yet released by every member of it.
#[derive(Default)]
pub(crate) struct Handover {
    /// The epoch the pending partitions wait for.
    pub(crate) epoch: u64,
    pub(crate) pending: HashSet<(Arc<str>, u16)>,
    /// The latest epoch each member (by address) said it applied.
    pub(crate) applied: HashMap<SocketAddr, u64>,
}

pub(crate) struct ClusterInner {
    pub(crate) node: Node,
    pub(crate) cfg: ClusterConfig,
    pub(crate) id: String,
    pub(crate) provider: Arc<dyn ClusterProvider>,
    pub(crate) kinds: Kinds,
    /// The kinds' names, sorted, as this member's record lists them: a sender may name a kind
    /// by 1 + its position here.
    pub(crate) kind_names: Vec<&'static str>,
    pub(crate) topology: RwLock<Arc<Topology>>,
    pub(crate) epoch: tokio::sync::watch::Sender<u64>,
    /// What every grain message checks (shared with the activations and the receivers' caches).
    pub(crate) gate: Arc<Gate>,
    pub(crate) handover: Mutex<Handover>,
    /// Set once the cluster had its minimum of members (or the wait for it ended).
    pub(crate) open: AtomicBool,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) stats: Counters,
    /// The latest epoch this member has applied (stopped its grains of lost partitions).
    pub(crate) applied: AtomicU64,
    /// Notified when the topology changes (for waiting threads).
    pub(crate) changed: (Mutex<()>, parking_lot::Condvar),
    /// Set when this member has left: it routes and serves nothing more.
    pub(crate) gone: AtomicBool,
    /// Grain messages held while their partition is not ready.
    pub(crate) held: held::Held,
    /// Grain asks from other members whose answer has not been sent yet.
    pub(crate) answering: AtomicUsize,
    /// The lease this member's records are held under now (0: none).
    pub(crate) lease: std::sync::atomic::AtomicI64,
    /// The registry of named actors, as this member follows it.
    pub(crate) names: named::Names,
    /// Named actors placed round-robin so far (the next candidate).
    pub(crate) placed: AtomicUsize,

    /// Dropped with this state: ends the cluster thread.
    pub(crate) _thread: Mutex<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) renewals: AtomicU64,
    pub(crate) activated: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) passivated: AtomicU64,
    pub(crate) membership_requests: AtomicU64,
    pub(crate) relocated: AtomicU64,
    pub(crate) relocation_requests: AtomicU64,
    pub(crate) ticks_fired: AtomicU64,
}

impl ClusterInner {
    /// An ask answered by `work`, run on the cluster's thread (where the store's client runs).
    pub(crate) fn answer<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, RemoteAskError>> + Send + 'static,
    ) -> RemoteAsk<T> {
        let (reply, pending) =
            corelane::integration::request::<Result<T, RemoteAskError>>(self.node.runtime());
        self.rt.spawn(async move { reply.send(work.await) });
        RemoteAsk::new(pending)
    }

    /// An ask refused at once.
    pub(crate) fn refused_ask<T: Send + 'static>(&self, code: ErrorCode, detail: String) -> RemoteAsk<T> {
        let (reply, pending) =
            corelane::integration::request::<Result<T, RemoteAskError>>(self.node.runtime());
        reply.send(Err(RemoteAskError::Refused { code, detail }));
        RemoteAsk::new(pending)
    }

    /// Whether this member is not fenced: the cheap check of routing and activation (the
    /// membership task fences when the deadline passes). An activation checks the deadline
    /// itself ([`ClusterInner::may_serve`]) before each message.
    pub(crate) fn not_fenced(&self) -> bool {
        self.gate.not_fenced()
    }

    /// Whether this member may serve grains now: its lease was renewed recently enough.
    /// See [`Cluster::running`].
    pub(crate) fn running(&self) -> bool {
        !self.gone.load(Ordering::Acquire)
    }

    /// See [`Cluster::in_cluster`].
    pub(crate) fn in_cluster(&self) -> bool {
        self.running() && self.may_serve() && self.current().me.is_some() && self.open.load(Ordering::Relaxed)
    }

    pub(crate) fn may_serve(&self) -> bool {
        self.gate.may_serve()
    }

    /// Serving is allowed until `at` (from a renewal sent then acknowledged), never moved back.
    pub(crate) fn serve_until(&self, at: Instant) {
        let n = at.saturating_duration_since(self.gate.base).as_nanos() as u64;
        self.gate.until.fetch_max(n.max(1), Ordering::AcqRel);
    }

    /// When serving ends (None: fenced).
    pub(crate) fn serving_deadline(&self) -> Option<Instant> {
        match self.gate.until.load(Ordering::Acquire) {
            0 => None,
            n => Some(self.gate.base + Duration::from_nanos(n)),
        }
    }

    /// Stops serving at once; whether it was serving until now (its deadline may have passed
    /// already).
    pub(crate) fn fence(&self) -> bool {
        self.gate.fence()
    }

    pub(crate) fn current(&self) -> Arc<Topology> {
        self.topology.read().clone()
    }

    /// Runs `f` with the current topology, as this thread last saw it while the gate's
    /// generation has not moved since (no lock per message: a sender's route).
    pub(crate) fn with_topology<R>(self: &Arc<Self>, f: impl FnOnce(&Topology) -> R) -> R {
        /// The member (held weakly, so its address is not reused while cached), the generation
        /// and the topology this thread saw last.
        type Seen = Option<(std::sync::Weak<ClusterInner>, u64, Arc<Topology>)>;
        thread_local! {
            static SEEN: std::cell::RefCell<Seen> = const { std::cell::RefCell::new(None) };
        }
        let generation = self.gate.generation.load(Ordering::Acquire);
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            match &*seen {
                Some((c, g, t)) if std::ptr::eq(c.as_ptr(), Arc::as_ptr(self)) && *g == generation => f(t),
                _ => {
                    // Read after the generation: a newer topology published meanwhile is
                    // cached under the older generation, and read again next time.
                    let t = self.current();
                    let r = f(&t);
                    *seen = Some((Arc::downgrade(self), generation, t));
                    r
                }
            }
        })
    }

    /// Host `id` of `partition` of `kind` stopped: it is forgotten (unless another took its
    /// place), and what waited for it goes on.
    pub(crate) fn host_stopped(self: &Arc<Self>, kind: &str, partition: u16, id: u64) {
        if let Some(k) = self.kinds.get(kind) {
            let mut hosts = k.hosts.lock();
            if hosts.get(&partition).is_some_and(|h| h.id == id) {
                hosts.remove(&partition);
            }
        }
        self.gate.generation.fetch_add(1, Ordering::AcqRel);
        if self.held() > 0 {
            // Messages may wait for this host to be gone (on the cluster's thread: this runs
            // on a shard, inside the host's `stopped`).
            let c = self.clone();
            self.rt.spawn(async move { c.release_held() });
        }
    }

    /// Grain activations live on this member.
    pub(crate) fn activations(&self) -> usize {
        self.kinds.values().map(|k| k.live.load(Ordering::Relaxed)).sum()
    }

    /// Hosts not yet stopped.
    pub(crate) fn hosts(&self) -> usize {
        self.kinds.values().map(|k| k.hosts.lock().len()).sum()
    }

    /// Asks every host to passivate its grains idle for the grain idle timeout. Called by the
    /// membership task a few times per timeout.
    pub(crate) fn sweep_idle(&self) {
        for k in self.kinds.values() {
            for h in k.hosts.lock().values().filter(|h| !h.stopping) {
                h.target.sweep();
            }
        }
    }

    /// Stops every host (each handles what it had queued first); their completions.
    pub(crate) fn stop_hosts(&self, keep: impl Fn(&str, u16) -> bool) -> Vec<corelane::Pending<()>> {
        let mut stopping = Vec::new();
        for (kind, k) in &self.kinds {
            for (p, h) in k.hosts.lock().iter_mut() {
                if !h.stopping && !keep(kind, *p) {
                    stopping.push(h.stop());
                }
            }
        }
        if !stopping.is_empty() {
            // Receivers' caches must not hand messages to a host that is stopping.
            self.gate.generation.fetch_add(1, Ordering::AcqRel);
        }
        stopping
    }
}

/// This member of a cluster. Cheap to clone; it leaves gracefully with [`Cluster::leave`] or
/// when its last handle (including those inside [`GrainRef`]s) is dropped, and otherwise when
/// its process ends (its lease expires).
///
/// ```
/// use corelane::{ActorError, Reply, Runtime};
/// use corelane_net::cluster::{Cluster, Grain, GrainCtx, MemoryProvider};
/// use corelane_net::{Node, Protocol, RemoteConfig};
/// use std::time::Duration;
/// # #[derive(Clone, PartialEq, prost::Message)] pub struct Deposit { #[prost(uint64, tag = "1")] pub amount: u64 }
/// # impl prost::Name for Deposit { const NAME: &'static str = "Deposit"; const PACKAGE: &'static str = "bank.v1"; }
/// # #[derive(Clone, PartialEq, prost::Message)] pub struct GetBalance {}
/// # impl prost::Name for GetBalance { const NAME: &'static str = "GetBalance"; const PACKAGE: &'static str = "bank.v1"; }
/// # #[derive(Clone, PartialEq, prost::Message)] pub struct Balance { #[prost(uint64, tag = "1")] pub amount: u64 }
/// # impl prost::Name for Balance { const NAME: &'static str = "Balance"; const PACKAGE: &'static str = "bank.v1"; }
///
/// enum AccountMsg {
///     Deposit(u64),
///     Balance(Reply<Balance>),
/// }
///
/// /// One account per identity, wherever in the cluster it lives now.
/// struct Account(u64);
///
/// impl Grain for Account {
///     const KIND: &'static str = "account";
///     type Msg = AccountMsg;
///     fn receive(&mut self, _: &mut GrainCtx<'_, Self>, msg: AccountMsg) -> Result<(), ActorError> {
///         match msg {
///             AccountMsg::Deposit(n) => self.0 += n,
///             AccountMsg::Balance(r) => r.send(Balance { amount: self.0 }),
///         }
///         Ok(())
///     }
/// }
///
/// let rt = Runtime::builder().build()?;
/// let node = Node::start(&rt, RemoteConfig::dev())?;
/// let protocol = Protocol::new()
///     .tell(|d: Deposit| AccountMsg::Deposit(d.amount))
///     .ask(|_: GetBalance, r| AccountMsg::Balance(r));
/// // In production: EtcdProvider::new(["127.0.0.1:2379"]) (feature `etcd`).
/// let cluster = Cluster::builder("bank")
///     .grain::<Account, _>(protocol, |_identity: &str| Account(0))
///     .join(&node, MemoryProvider::new())?;
///
/// let alice = cluster.grain::<Account>("alice");
/// alice.tell(&Deposit { amount: 5 })?;
/// let b: Balance = alice.ask(&GetBalance {}).timeout(Duration::from_secs(5)).wait()?;
/// assert_eq!(b.amount, 5);
/// cluster.leave(Duration::from_secs(5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Cluster {
    pub(crate) inner: Arc<ClusterInner>,
    control: Arc<membership::Control>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("name", &self.inner.cfg.name).field("id", &self.inner.id).finish()
    }
}

impl Cluster {
    /// A member of cluster `name`, with the defaults of [`ClusterConfig::new`].
    pub fn builder(name: impl Into<String>) -> ClusterBuilder {
        ClusterBuilder::new(name.into())
    }

    /// A reference to grain `identity` of kind `G`.
    pub fn grain<G: Grain>(&self, identity: impl Into<String>) -> GrainRef {
        self.grain_of(G::KIND, identity)
    }

    /// A typed reference to grain `identity` of kind `G`: it lets through only the messages
    /// `G::Msg` [`Accepts`](crate::Accepts) and [`Answers`](crate::Answers).
    pub fn typed_grain<G: Grain>(&self, identity: impl Into<String>) -> crate::TypedGrainRef<G> {
        self.grain::<G>(identity).typed()
    }

    /// A reference to grain `identity` of kind `kind` (for senders that do not have the
    /// grain's type).
    pub fn grain_of(&self, kind: &str, identity: impl Into<String>) -> GrainRef {
        GrainRef::new(self.clone(), kind, identity.into())
    }

    /// This member's id.
    pub fn member_id(&self) -> &str {
        &self.inner.id
    }

    /// The node this member runs on.
    pub fn node(&self) -> &Node {
        &self.inner.node
    }

    /// The current topology epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.current().epoch
    }

    /// The members of the current topology.
    pub fn members(&self) -> Vec<Member> {
        self.inner.current().members.clone()
    }

    /// The member owning grain `identity` of `kind` now, if any member hosts the kind.
    pub fn owner_of(&self, kind: &str, identity: &str) -> Option<Member> {
        let p = partitions::partition_of(kind, identity);
        self.inner.current().owner(kind, p).cloned()
    }

    /// Whether this member serves grains now (false while it is fenced).
    pub fn is_serving(&self) -> bool {
        self.inner.may_serve()
    }

    /// Liveness: this member's cluster machinery runs (from joining until it left). A fenced
    /// member still runs: it is trying to renew or to join again.
    pub fn running(&self) -> bool {
        self.inner.running()
    }

    /// Readiness: this member is in the member set it follows, may serve (not fenced), and
    /// the cluster reached its minimum of members (or the wait for it ended). For a health
    /// probe's "ready".
    pub fn in_cluster(&self) -> bool {
        self.inner.in_cluster()
    }

    /// Counters of this member's cluster work.
    pub fn stats(&self) -> ClusterStats {
        let i = &self.inner;
        let t = i.current();
        ClusterStats {
            epoch: t.epoch,
            members: t.members.len(),
            serving: i.may_serve(),
            store_requests: i.provider.requests(),
            renewals: i.stats.renewals.load(Ordering::Relaxed),
            membership_requests: i.stats.membership_requests.load(Ordering::Relaxed),
            activations: i.activations(),
            activated: i.stats.activated.load(Ordering::Relaxed),
            fenced: i.stats.fenced.load(Ordering::Relaxed),
            refused: i.stats.refused.load(Ordering::Relaxed),
            retries: i.stats.retries.load(Ordering::Relaxed),
            held: i.held(),
            passivated: i.stats.passivated.load(Ordering::Relaxed),
            named: i.names.hosted.lock().len(),
            relocated: i.stats.relocated.load(Ordering::Relaxed),
            relocation_requests: i.stats.relocation_requests.load(Ordering::Relaxed),
            ticks_fired: i.stats.ticks_fired.load(Ordering::Relaxed),
        }
    }

    /// Blocks until the topology satisfies `f` (true) or `timeout` passed (false). For plain
    /// threads (tests, tools); not on a shard.
    pub fn wait_for(&self, timeout: Duration, f: impl Fn(&ClusterView<'_>) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.inner.changed.0.lock();
        loop {
            if f(&ClusterView(&self.inner.current())) {
                return true;
            }
            if self.inner.changed.1.wait_until(&mut guard, deadline).timed_out() {
                return f(&ClusterView(&self.inner.current()));
            }
        }
    }

    /// Leaves the cluster gracefully: stops serving, deactivates this member's grains (each
    /// drains what it had queued), then deletes its record and ends its lease, so the others
    /// take its partitions at once instead of after the TTL. Blocks until done (or `timeout`).
    pub fn leave(&self, timeout: Duration) -> bool {
        self.control.leave(&self.inner, timeout)
    }
}

/// A topology as [`Cluster::wait_for`] shows it.
pub struct ClusterView<'a>(&'a Topology);

impl ClusterView<'_> {
    /// Its epoch.
    pub fn epoch(&self) -> u64 {
        self.0.epoch
    }
    /// Its members' ids, sorted.
    pub fn member_ids(&self) -> Vec<&str> {
        self.0.members.iter().map(|m| m.id.as_str()).collect()
    }
    /// Whether member `id` is in it.
    pub fn has(&self, id: &str) -> bool {
        self.0.member(id).is_some()
    }
}
