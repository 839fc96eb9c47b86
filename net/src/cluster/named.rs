//! Named actors across the cluster: an actor of a kind some members' nodes registered, spawned
//! on a member chosen by a [`Placement`] (and role), under a name unique cluster-wide.
//!
//! The host spawns the actor, then claims the name in the cluster's registry under its own
//! lease (create-if-absent, one store request): the first claim wins, every other spawn of the
//! name is stopped and answered `NAME_TAKEN`; a host that dies frees its names with its lease.
//! Every member follows the registry (a snapshot, then a watch), so [`Cluster::actor_of`] is a
//! read of a local map: a steady sender makes no store request per message.

use super::provider::{Claimed, NameChange, NameRecord};
use super::schedule::RUNNER_KIND;
use super::{Cluster, ClusterInner, Member};
use crate::dispatch::{expose, fail, found};
use crate::error::{ErrorCode, RemoteAskError};
use crate::node::Inner;
use crate::remote_ref::{RemoteAsk, RemoteRef};
use crate::target::Target;
use corelane_proto::cluster_v1::{NamedActor, NamedSpec};
use corelane_proto::v1::Spawn;
use parking_lot::{Mutex, RwLock};
use prost::Message;
use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How a member is chosen to host a named actor, among those whose node registered its kind
/// (and that have the role asked for, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Placement {
    /// Each candidate in turn (the default).
    #[default]
    RoundRobin,
    /// A candidate at random.
    Random,
    /// The candidate hosting the fewest named actors (as the registry says).
    LeastLoad,
    /// This member (it must be a candidate).
    Local,
}

impl Placement {
    /// As `Spawn.placement` and `NamedSpec.placement` carry it.
    pub(crate) fn number(self) -> u32 {
        match self {
            Placement::RoundRobin => 0,
            Placement::Random => 1,
            Placement::LeastLoad => 2,
            Placement::Local => 3,
        }
    }

    /// From its number (unknown numbers: round-robin).
    pub(crate) fn from_number(n: u32) -> Self {
        match n {
            1 => Placement::Random,
            2 => Placement::LeastLoad,
            3 => Placement::Local,
            _ => Placement::RoundRobin,
        }
    }
}

/// The registry as this member follows it (name → where the actor runs), and the named
/// actors this member hosts.
pub(crate) struct Names {
    pub(super) map: RwLock<HashMap<String, NamedActor>>,
    /// Hosted here, under the name this member holds in the registry.
    pub(super) hosted: Mutex<HashMap<String, Hosted>>,
    /// Told when names may need relocating (a name went, the registry was read again, the
    /// member set changed).
    pub(crate) orphaned: tokio::sync::Notify,
    /// Told when a name is claimed (for those waiting to find it).
    pub(super) claimed: tokio::sync::Notify,
    /// Claims in flight at once (many spawns at once would otherwise queue in the store past
    /// the request timeout).
    claiming: tokio::sync::Semaphore,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            map: Default::default(),
            hosted: Default::default(),
            orphaned: Default::default(),
            claimed: Default::default(),
            claiming: tokio::sync::Semaphore::new(CLAIMS_AT_ONCE),
        }
    }
}

/// The longest a spawn from this member waits for its copy of the registry to show the actor
/// it spawned on another member (the store's watch is normally milliseconds behind).
const CATCH_UP: Duration = Duration::from_secs(1);

/// How many claims a member has in flight at once.
const CLAIMS_AT_ONCE: usize = 32;

/// A named actor hosted here.
pub(super) struct Hosted {
    pub(super) target: Arc<dyn Target>,
    /// It stops because this member goes (fenced, leaving): its spec stays, so a survivor
    /// spawns it again. Otherwise it stopped for good and its spec goes with its name.
    pub(super) moving: bool,
    /// The store revision of this member's claim on the name: a change the registry's watch
    /// reports at or below it is about an earlier holder (the watch can lag behind the claim).
    pub(super) since: u64,
}

impl Names {
    /// Applies a change the watch reported at `revision`. A change older than this member's
    /// own claim on the name (the earlier holder's record or its release, reported late) is
    /// skipped: it must neither stop the actor hosted here under the name nor replace its record.
    fn apply(&self, change: NameChange, revision: u64) {
        let name = match &change {
            NameChange::Put(r) => &r.name,
            NameChange::Delete { name } => name,
        };
        if self.hosted.lock().get(name).is_some_and(|h| revision <= h.since) {
            return;
        }
        match change {
            NameChange::Put(r) => {
                if let Some(a) = decode(&r) {
                    self.map.write().insert(r.name, a);
                    self.claimed.notify_waiters();
                }
            }
            NameChange::Delete { name } => {
                let gone = self.map.write().remove(&name);
                // The name went from under an actor hosted here (this member's lease ended):
                // it stops, so that whoever takes the name next is the only one.
                if let Some(h) = self.hosted.lock().remove(&name) {
                    drop(h.target.stop());
                }
                // Only a name that relocates can leave an orphan (a relocation pass reads
                // every spec).
                if gone.is_none_or(|a| a.relocate) {
                    self.orphaned.notify_one();
                }
            }
        }
    }

    /// Stops every named actor hosted here (this member is fenced or leaving); their stops.
    /// Their names go with the lease, or, if the lease survives a fence, are released once
    /// the actors have stopped ([`release_stopped`]); their specs stay, for a survivor.
    pub(crate) fn stop_hosted(&self) -> Vec<corelane::Pending<()>> {
        self.hosted
            .lock()
            .values_mut()
            .map(|h| {
                h.moving = true;
                h.target.stop()
            })
            .collect()
    }

    /// Waits, at most `patience`, until this member's copy of the registry shows `name` as
    /// actor `id` on `member` (a claim's first record, with no actor yet, is not enough).
    async fn shown(&self, name: &str, member: &str, id: u64, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let claimed = self.claimed.notified();
            tokio::pin!(claimed);
            // Registered before the look, so a claim applied right after it is not missed.
            claimed.as_mut().enable();
            if self.map.read().get(name).is_some_and(|a| a.member == member && a.id == id) {
                return;
            }
            if tokio::time::timeout_at(deadline, claimed).await.is_err() {
                return;
            }
        }
    }

    fn reset(&self, records: Vec<NameRecord>) {
        let fresh = records.into_iter().filter_map(|r| decode(&r).map(|a| (r.name, a))).collect();
        *self.map.write() = fresh;
        self.claimed.notify_waiters();
        self.orphaned.notify_one();
    }
}

fn decode(r: &NameRecord) -> Option<NamedActor> {
    NamedActor::decode(r.value.as_slice()).ok()
}

/// Follows the registry for the member (a snapshot, then the changes after it; again after a
/// failure), as long as the member lives.
pub(crate) async fn follow(inner: Weak<ClusterInner>) {
    loop {
        let Some(c) = inner.upgrade() else { return };
        let (provider, name) = (c.provider.clone(), c.cfg.name.clone());
        drop(c);
        let watch = async {
            let (records, revision) = provider.names(&name).await?;
            let mut w = provider.watch_names(&name, revision).await?;
            match inner.upgrade() {
                Some(c) => c.names.reset(records),
                None => return Ok(()),
            }
            loop {
                let changes = w.next().await?;
                let Some(c) = inner.upgrade() else { return Ok(()) };
                for (change, revision) in changes {
                    c.names.apply(change, revision);
                }
            }
        };
        if let Err::<(), super::ProviderError>(e) = watch.await {
            tracing::debug!(error = %e, "cluster: following the registry again");
        }
        if inner.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl ClusterInner {
    /// Named actor `name`, as this member's copy of the registry says.
    pub(crate) fn actor_of(&self, name: &str) -> Option<RemoteRef> {
        // Read in place (no copy of the record's strings: by-name sends come here per message).
        let (addr, id, incarnation) = {
            let map = self.names.map.read();
            let a = map.get(name).filter(|a| a.id != 0)?;
            (a.address.parse().ok()?, a.id, a.incarnation)
        };
        Some(RemoteRef::new(self.node.clone(), addr, id, incarnation))
    }

    /// The members that may host a named actor of `kind` (with `role`), sorted by id. Every
    /// member runs schedules.
    pub(super) fn hosts_of(&self, kind: &str, role: Option<&str>) -> Vec<Member> {
        let any = kind == RUNNER_KIND;
        self.current()
            .members
            .iter()
            .filter(|m| any || m.actor_kinds.iter().any(|k| k == kind))
            .filter(|m| role.is_none_or(|r| m.roles.iter().any(|x| x == r)))
            .cloned()
            .collect()
    }

    /// The member `placement` picks among `candidates` (not empty).
    fn pick(&self, placement: Placement, candidates: &[Member]) -> Option<Member> {
        let n = candidates.len();
        let i = match placement {
            Placement::RoundRobin => self.placed.fetch_add(1, Ordering::Relaxed) % n,
            Placement::Random => {
                use std::hash::BuildHasher;
                let r = std::collections::hash_map::RandomState::new()
                    .hash_one(self.placed.load(Ordering::Relaxed));
                (r % n as u64) as usize
            }
            Placement::LeastLoad => {
                let names = self.names.map.read();
                let load = |m: &Member| names.values().filter(|a| a.member == m.id).count();
                (0..n).min_by_key(|i| load(&candidates[*i])).unwrap_or(0)
            }
            Placement::Local => candidates.iter().position(|m| m.id == self.id)?,
        };
        Some(candidates[i].clone())
    }

    /// Hosts a named actor here: claims its name under this member's lease (with its spec when
    /// it relocates; the record names no actor yet), then spawns it (for `peer`, within its
    /// quota; unmetered for this member itself), then completes the record with the actor. A
    /// spawn whose name is taken spawns nothing: no second instance ever starts.
    async fn host_named(
        self: &Arc<Self>,
        peer: Option<SocketAddr>,
        s: &Spawn,
    ) -> Result<Arc<dyn Target>, (ErrorCode, String)> {
        let lease = self.lease.load(Ordering::Acquire);
        if lease == 0 || !self.may_serve() {
            return Err((ErrorCode::Fenced, "this member holds no lease now".into()));
        }
        if s.name.is_empty() {
            return Err((ErrorCode::Malformed, "a named actor needs a name".into()));
        }
        if s.kind != RUNNER_KIND && !self.node.inner.kinds.read().contains_key(&s.kind) {
            return Err((ErrorCode::UnknownKind, format!("kind {:?} is not registered here", s.kind)));
        }
        let spec = s.relocate.then(|| {
            NamedSpec { kind: s.kind.clone(), role: s.role.clone(), placement: s.placement }.encode_to_vec()
        });
        let placeholder = self.record(0, &s.kind, s.relocate).encode_to_vec();
        let claimed = match self.names.claiming.acquire().await {
            Ok(_permit) => {
                self.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
                self.provider.claim(&self.cfg.name, &s.name, &placeholder, lease, spec.as_deref()).await
            }
            Err(_) => Err(super::ProviderError::Unavailable("the member is closing".into())),
        };
        let since = match claimed {
            Ok(Claimed::Won { revision }) => revision,
            Ok(Claimed::Taken(held)) => return Err(taken(&s.name, &held)),
            Err(e) => return Err((ErrorCode::Failed, format!("the registry did not take the name: {e}"))),
        };
        let t = match self.spawn_named_here(peer, &s.kind, &s.name) {
            Ok(t) => t,
            Err(e) => {
                // Nothing runs under the name: it goes, with its spec.
                self.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
                let _ = self.provider.release(&self.cfg.name, &s.name, lease, true).await;
                return Err(e);
            }
        };
        // Reachable before the registry names it: whoever reads the completed record may send
        // at once.
        expose(&self.node.inner, t.clone());
        let record = self.record(t.untyped().id().as_u64(), &s.kind, s.relocate);
        let done = [(s.name.clone(), record.encode_to_vec())];
        self.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
        match self.provider.update_all(&self.cfg.name, &done, lease).await.as_deref() {
            Ok([true]) => {
                self.hold(&s.name, record, t.clone(), since);
                Ok(t)
            }
            _ => {
                drop(t.stop());
                Err((ErrorCode::Fenced, "this member lost its lease while spawning".into()))
            }
        }
    }

    /// Spawns named actor `name` of `kind` here, under this member's lease (for `peer`, within
    /// its quota).
    pub(super) fn spawn_named_here(
        self: &Arc<Self>,
        peer: Option<SocketAddr>,
        kind: &str,
        name: &str,
    ) -> Result<Arc<dyn Target>, (ErrorCode, String)> {
        match kind {
            RUNNER_KIND => super::schedule::spawn_runner(self, name),
            _ => crate::spawn::spawn(&self.node.inner, peer, kind, name, Some(self.lease_of_named())),
        }
    }

    /// What a named actor hosted here from now on handles messages under: this member's right
    /// to serve, in its current session (`super::gate::SessionLease`).
    pub(super) fn lease_of_named(&self) -> Arc<dyn corelane::Lease> {
        Arc::new(super::gate::SessionLease::now(&self.gate))
    }

    /// What this member writes in the registry for actor `id` (0: being spawned) of `kind`.
    pub(super) fn record(&self, id: u64, kind: &str, relocate: bool) -> NamedActor {
        NamedActor {
            member: self.id.clone(),
            address: self.node.addr().to_string(),
            incarnation: self.node.incarnation(),
            id,
            kind: kind.to_string(),
            relocate,
        }
    }

    /// Name `name` is held here now, by actor `t` (exposed to other nodes before its record was
    /// completed).
    /// Records named actor `name`, hosted here under a claim made at store revision `since`.
    pub(super) fn hold(&self, name: &str, record: NamedActor, t: Arc<dyn Target>, since: u64) {
        self.names.map.write().insert(name.to_string(), record);
        self.names.hosted.lock().insert(name.to_string(), Hosted { target: t, moving: false, since });
    }
}

/// The refusal of a spawn whose name `held` holds.
pub(super) fn taken(name: &str, held: &NameRecord) -> (ErrorCode, String) {
    let by = decode(held).map_or_else(|| "another member".to_string(), |a| a.member);
    (ErrorCode::NameTaken, format!("{name:?} is held cluster-wide by {by}"))
}

/// Releases the names of actors hosted here that stopped by themselves (called a few times a
/// second by the membership task).
pub(crate) fn release_stopped(inner: &Arc<ClusterInner>) {
    let stopped: Vec<(String, bool)> = {
        let mut hosted = inner.names.hosted.lock();
        let gone: Vec<(String, bool)> = hosted
            .iter()
            .filter(|(_, h)| !h.target.is_alive())
            .map(|(n, h)| (n.clone(), !h.moving))
            .collect();
        for (n, _) in &gone {
            hosted.remove(n);
        }
        gone
    };
    let lease = inner.lease.load(Ordering::Acquire);
    if stopped.is_empty() || lease == 0 {
        return;
    }
    let c = inner.clone();
    inner.rt.spawn(async move {
        for (name, forget) in stopped {
            c.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = c.provider.release(&c.cfg.name, &name, lease, forget).await {
                tracing::warn!(name, error = %e, "cluster: a stopped named actor's name stays until the lease ends");
            }
        }
    });
}

/// A `Spawn` with `cluster` set, from `peer`: hosted here and answered when the registry has
/// decided.
pub(crate) fn spawn_requested(node: &Arc<Inner>, peer: SocketAddr, corr: u64, s: Spawn) {
    let Some(c) = node.cluster() else {
        return fail(node, peer, corr, ErrorCode::NotOwner, "this node is not a cluster member".into());
    };
    let rt = c.rt.clone();
    rt.spawn(async move {
        match c.host_named(Some(peer), &s).await {
            Ok(t) => found(&c.node.inner, peer, corr, t),
            Err((code, detail)) => fail(&c.node.inner, peer, corr, code, detail),
        }
    });
}

/// A named actor being spawned somewhere in the cluster ([`Cluster::spawn_named`]): set its
/// placement, role and relocation, then [`wait`](SpawnNamed::wait) or await it.
#[must_use = "nothing is spawned until it is awaited or waited on"]
pub struct SpawnNamed {
    cluster: Cluster,
    name: String,
    kind: String,
    placement: Placement,
    role: Option<String>,
    relocate: bool,
    timeout: Option<Duration>,
    /// Placed by its name's hash; a spawn that finds it running answers with it.
    pub(super) singleton: bool,
}

impl SpawnNamed {
    /// How the host is chosen (default [`Placement::RoundRobin`]).
    pub fn placement(mut self, p: Placement) -> Self {
        self.placement = p;
        self
    }

    /// Only members with this role are candidates.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Whether the actor is spawned again on a survivor when its host goes (default true).
    pub fn relocate(mut self, yes: bool) -> Self {
        self.relocate = yes;
        self
    }

    /// How long to wait for the spawn (the runtime's ask timeout unless set).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Blocks until the actor runs under its name (or the spawn failed). On a shard thread it
    /// fails with `WouldBlock`: await it there.
    ///
    /// # Errors
    /// `Refused(NameTaken)` when the name is held cluster-wide; `Refused(UnknownKind)` when no
    /// member is a candidate; what a remote spawn fails with otherwise.
    pub fn wait(self) -> Result<RemoteRef, RemoteAskError> {
        self.into_future().wait()
    }

    /// The request a host receives.
    fn spawn(&self) -> Spawn {
        Spawn {
            kind: self.kind.clone(),
            name: self.name.clone(),
            cluster: true,
            relocate: self.relocate,
            role: self.role.clone().unwrap_or_default(),
            placement: self.placement.number(),
        }
    }

    fn start(self) -> RemoteAsk<RemoteRef> {
        let c = self.cluster.inner.clone();
        let (reply, pending) =
            corelane::integration::request::<Result<RemoteRef, RemoteAskError>>(c.node.runtime());
        let ask = RemoteAsk::new(pending);
        let ask = match self.timeout {
            Some(d) => ask.timeout(d),
            None => ask,
        };
        let candidates = c.hosts_of(&self.kind, self.role.as_deref());
        let host = match (candidates.is_empty(), self.singleton) {
            (true, _) => None,
            (false, true) => super::relocate::by_name(&self.name, &candidates).cloned(),
            (false, false) => c.pick(self.placement, &candidates),
        };
        let Some(host) = host else {
            let role = self.role.map_or_else(String::new, |r| format!(" with role {r:?}"));
            let detail = match self.placement {
                Placement::Local => format!("this member{role} does not host actor kind {:?}", self.kind),
                _ => format!("no member{role} hosts actor kind {:?}", self.kind),
            };
            reply.send(Err(RemoteAskError::Refused { code: ErrorCode::UnknownKind, detail }));
            return ask;
        };
        let spawned: super::BoxFuture<'static, Result<RemoteRef, RemoteAskError>> = if host.id == c.id {
            let (c, s) = (c.clone(), self.spawn());
            Box::pin(async move {
                let node = c.node.clone();
                match c.host_named(None, &s).await {
                    Ok(t) => {
                        let id = expose(&node.inner, t);
                        Ok(RemoteRef::new(node.clone(), node.addr(), id, node.incarnation()))
                    }
                    Err((code, detail)) => Err(RemoteAskError::Refused { code, detail }),
                }
            })
        } else {
            let remote = crate::RemoteNode::new(c.node.clone(), host.addr);
            let spawn = remote.spawn_claimed(self.spawn()).into_future();
            let (c, name, member) = (c.clone(), self.name.clone(), host.id.clone());
            let budget = self.timeout.unwrap_or_else(|| corelane::integration::ask_timeout(c.node.runtime()));
            let started = std::time::Instant::now();
            Box::pin(async move {
                let r = spawn.await;
                if let Ok(actor) = &r {
                    // Read-your-writes on this member: its copy of the registry follows the
                    // store's watch, which may lag behind the host's answer. Wait for it to
                    // show the actor at its host, within half of what is left of the spawn's
                    // time (a spawn that succeeded is never reported as timed out for this).
                    let left = budget.saturating_sub(started.elapsed());
                    c.names.shown(&name, &member, actor.id(), (left / 2).min(CATCH_UP)).await;
                }
                r
            })
        };
        // A singleton that runs already is what its spawn asked for.
        let singleton = self.singleton.then(|| (self.cluster.clone(), self.name.clone()));
        c.rt.clone().spawn(async move {
            let r = match (spawned.await, singleton) {
                (Err(RemoteAskError::Refused { code: ErrorCode::NameTaken, .. }), Some((cluster, name))) => {
                    super::singleton::running(&cluster, &name).await
                }
                (r, _) => r,
            };
            reply.send(r);
        });
        ask
    }
}

impl IntoFuture for SpawnNamed {
    type Output = Result<RemoteRef, RemoteAskError>;
    type IntoFuture = RemoteAsk<RemoteRef>;
    fn into_future(self) -> Self::IntoFuture {
        self.start()
    }
}

impl Cluster {
    /// Spawns an actor of `kind` (registered on members' nodes with
    /// [`Node::register_kind`](crate::Node::register_kind) before they joined) under `name`,
    /// unique cluster-wide, on a member chosen by its placement.
    pub fn spawn_named(&self, name: impl Into<String>, kind: impl Into<String>) -> SpawnNamed {
        SpawnNamed {
            cluster: self.clone(),
            name: name.into(),
            kind: kind.into(),
            placement: Placement::default(),
            role: None,
            relocate: true,
            timeout: None,
            singleton: false,
        }
    }

    /// The named actor `name`, wherever it runs, from this member's copy of the registry (no
    /// store request).
    pub fn actor_of(&self, name: &str) -> Option<RemoteRef> {
        self.inner.actor_of(name)
    }

    /// Whether a named actor `name` runs somewhere in the cluster (as this member's copy of
    /// the registry says).
    pub fn actor_exists(&self, name: &str) -> bool {
        self.inner.names.map.read().contains_key(name)
    }

    /// The member hosting named actor `name`, if it runs.
    pub fn host_of(&self, name: &str) -> Option<String> {
        self.inner.names.map.read().get(name).map(|a| a.member.clone())
    }

    /// The actor kinds the members' nodes registered (candidates for named actors), sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> =
            self.inner.current().members.iter().flat_map(|m| m.actor_kinds.clone()).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}
