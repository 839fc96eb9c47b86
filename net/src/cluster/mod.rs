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

mod grain;
mod grain_ref;
mod held;
mod membership;
mod memory;
pub mod partitions;
mod provider;
pub(crate) mod serve;
mod topology;

#[cfg(feature = "etcd")]
mod etcd;

#[cfg(feature = "etcd")]
pub use etcd::EtcdProvider;
pub use grain::{Grain, GrainActor, GrainCtx};
pub use grain_ref::{GrainAsk, GrainBatchAsk, GrainRef};
pub(crate) use membership::applied_from;
pub use memory::MemoryProvider;
pub use provider::{BoxFuture, ClusterProvider, Member, MemberChange, MemberWatch, ProviderError, Snapshot};

use crate::node::Node;
use crate::protocol::Protocol;
use grain::GrainKind;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use topology::Topology;
use xxhash_rust::xxh3::Xxh3Builder;

/// How a member behaves in its cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The cluster's name: its records live under `/<name>/`.
    pub name: String,
    /// This member's id, unique in the cluster (default: its node's advertised address).
    pub member_id: Option<String>,
    /// The lease's time to live (default 5 s; etcd counts whole seconds). A member that dies
    /// is noticed by the others after this (plus up to half a second of the store's own
    /// expiry check).
    pub ttl: Duration,
    /// How long before the lease could expire a member stops serving (default a tenth of the
    /// TTL, at least 100 ms): covers clock rate differences and the time to stop.
    pub fence_margin: Duration,
    /// Grains activate only once this many members are in the cluster (default 1) ...
    pub min_members: usize,
    /// ... or this long after joining (default 30 s).
    pub min_members_timeout: Duration,
    /// A grain that handled no message for this long is passivated (default 5 minutes).
    pub grain_idle: Duration,
    /// This member's roles (placement, part 2).
    pub roles: Vec<String>,
    /// How long [`ClusterBuilder::join`] waits for the first registration (default 10 s).
    pub join_timeout: Duration,
}

impl ClusterConfig {
    /// The defaults for cluster `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            member_id: None,
            ttl: Duration::from_secs(5),
            fence_margin: Duration::from_millis(500),
            min_members: 1,
            min_members_timeout: Duration::from_secs(30),
            grain_idle: Duration::from_secs(300),
            roles: Vec::new(),
            join_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a member could not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The membership store did not accept the registration in time.
    #[error("could not join the cluster: {0}")]
    Join(String),
    /// The configuration is not usable.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
}

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
    /// Grain messages this member refused (not owner, not ready, fenced).
    pub refused: u64,
    /// Grain asks sent again after a refusal.
    pub retries: u64,
    /// Grain messages held now for partitions being handed over.
    pub held: usize,
    /// Activations passivated (idle past the grain idle timeout) so far.
    pub passivated: u64,
}

/// The grain kinds a member hosts, by name (xxh3: looked up per message).
pub(crate) type Kinds = HashMap<Arc<str>, KindEntry, Xxh3Builder>;

/// What every grain message checks, in one place shared by the member, its activations and its
/// receivers' caches (no lock, no reference count on the way).
pub(crate) struct Gate {
    pub(crate) base: Instant,
    /// Until when this member may serve: the send time of its last acknowledged renewal plus
    /// the TTL minus the margin, as nanoseconds after `base`; 0 once fenced.
    pub(crate) until: AtomicU64,
    /// Partitions gained and waiting for their handover.
    pub(crate) pending: AtomicUsize,
    /// Grain messages held.
    pub(crate) held: AtomicUsize,
    /// The current topology's epoch (as `topology` says, without its lock).
    pub(crate) epoch: AtomicU64,
    /// Bumped with every new topology (after it is published): what was looked up under an
    /// older one is looked up again.
    pub(crate) generation: AtomicU64,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            until: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// Whether serving a grain message needs no more than an activation that is still alive:
    /// not fenced, no handover in progress, nothing held, the sender not ahead.
    pub(crate) fn quiet(&self, sender_epoch: u64) -> bool {
        self.not_fenced()
            && self.pending.load(Ordering::Acquire) == 0
            && self.held.load(Ordering::Acquire) == 0
            && sender_epoch <= self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn not_fenced(&self) -> bool {
        self.until.load(Ordering::Acquire) != 0
    }

    /// Whether the deadline has not passed (reads the clock).
    pub(crate) fn may_serve(&self) -> bool {
        self.serving_now().is_some()
    }

    /// Now, as nanoseconds after `base`, if the deadline has not passed.
    pub(crate) fn serving_now(&self) -> Option<u64> {
        let until = self.until.load(Ordering::Acquire);
        let now = self.base.elapsed().as_nanos() as u64;
        (until != 0 && now < until).then_some(now)
    }

    /// A time as passivation stamps it: units of 2^26 ns (about 67 ms) after `base`.
    pub(crate) fn tick(nanos: u64) -> u32 {
        (nanos >> 26) as u32
    }
}

/// A registered kind and its live activations, by identity.
pub(crate) struct KindEntry {
    pub(crate) make: Arc<dyn GrainKind>,
    pub(crate) activations: Mutex<HashMap<Arc<str>, Activation, Xxh3Builder>>,
}

pub(crate) struct Activation {
    pub(crate) target: Arc<dyn crate::target::Target>,
    pub(crate) partition: u16,
    pub(crate) id: u64,
    /// When it last handled a message ([`Gate::tick`]).
    pub(crate) last: Arc<std::sync::atomic::AtomicU32>,
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
}

impl ClusterInner {
    /// Whether this member is not fenced: the cheap check of routing and activation (the
    /// membership task fences when the deadline passes). An activation checks the deadline
    /// itself ([`ClusterInner::may_serve`]) before each message.
    pub(crate) fn not_fenced(&self) -> bool {
        self.gate.not_fenced()
    }

    /// Whether this member may serve grains now: its lease was renewed recently enough.
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
        self.gate.until.swap(0, Ordering::AcqRel) != 0
    }

    pub(crate) fn current(&self) -> Arc<Topology> {
        self.topology.read().clone()
    }

    /// An activation ended: it is forgotten (unless another took its place).
    pub(crate) fn deactivated(&self, kind: &str, identity: &str, id: u64) {
        if let Some(k) = self.kinds.get(kind) {
            let mut a = k.activations.lock();
            if a.get(identity).is_some_and(|x| x.id == id) {
                a.remove(identity);
            }
        }
    }

    pub(crate) fn activations(&self) -> usize {
        self.kinds.values().map(|k| k.activations.lock().len()).sum()
    }

    /// Stops the activations that handled no message for the idle timeout (gracefully: what
    /// they have queued is handled first). Called by the membership task a few times per
    /// timeout; each kind's activations are scanned under its lock.
    pub(crate) fn passivate_idle(&self) -> usize {
        let now = Gate::tick(self.gate.base.elapsed().as_nanos() as u64);
        let idle = Gate::tick(self.cfg.grain_idle.as_nanos() as u64).max(1);
        let mut stopped = 0;
        for k in self.kinds.values() {
            for a in k.activations.lock().values() {
                if now.wrapping_sub(a.last.load(Ordering::Relaxed)) >= idle && a.target.is_alive() {
                    drop(a.target.stop());
                    stopped += 1;
                }
            }
        }
        self.stats.passivated.fetch_add(stopped as u64, Ordering::Relaxed);
        stopped
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

/// Builds a member: its configuration and the grain kinds it hosts.
pub struct ClusterBuilder {
    cfg: ClusterConfig,
    kinds: Kinds,
}

impl Cluster {
    /// A member of cluster `name`, with the defaults of [`ClusterConfig::new`].
    pub fn builder(name: impl Into<String>) -> ClusterBuilder {
        ClusterBuilder { cfg: ClusterConfig::new(name), kinds: Kinds::default() }
    }

    /// A reference to grain `identity` of kind `G`.
    pub fn grain<G: Grain>(&self, identity: impl Into<String>) -> GrainRef {
        self.grain_of(G::KIND, identity)
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

impl ClusterBuilder {
    /// The whole configuration at once (the grain kinds stay).
    pub fn config(mut self, cfg: ClusterConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// The lease's time to live.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.cfg.ttl = ttl;
        self.cfg.fence_margin = (ttl / 10).max(Duration::from_millis(100));
        self
    }

    /// Grains activate only once `n` members are in the cluster, or `timeout` after joining.
    pub fn min_members(mut self, n: usize, timeout: Duration) -> Self {
        self.cfg.min_members = n;
        self.cfg.min_members_timeout = timeout;
        self
    }

    /// Grains idle this long are passivated.
    pub fn grain_idle(mut self, d: Duration) -> Self {
        self.cfg.grain_idle = d;
        self
    }

    /// This member's id (default: its node's advertised address).
    pub fn member_id(mut self, id: impl Into<String>) -> Self {
        self.cfg.member_id = Some(id.into());
        self
    }

    /// This member's roles.
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.cfg.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Hosts grains of kind `G` here: made by `factory` from their identity, reached through
    /// `protocol`. This member becomes a candidate owner of the kind's partitions.
    pub fn grain<G, F>(mut self, protocol: Protocol<G::Msg>, factory: F) -> Self
    where
        G: Grain,
        F: Fn(&str) -> G + Send + Sync + Clone + 'static,
    {
        let make: Arc<dyn GrainKind> =
            Arc::new(grain::KindOf::<G, F> { protocol: Arc::new(protocol), factory });
        let activations = Mutex::new(HashMap::with_hasher(Xxh3Builder::new()));
        self.kinds.insert(G::KIND.into(), KindEntry { make, activations });
        self
    }

    /// Joins through `provider` as a member running on `node`: registers, reads the member
    /// set and starts watching it. Returns once registered (the topology includes this
    /// member), or fails after the join timeout.
    ///
    /// # Errors
    /// The store did not accept the registration in time, or the configuration is unusable.
    pub fn join(self, node: &Node, provider: impl ClusterProvider) -> Result<Cluster, ClusterError> {
        membership::start(self.cfg, self.kinds, node, Arc::new(provider))
    }
}
