//! The cluster client: a process that uses the cluster without being a member of it.
//!
//! It reads the member set and the registry of names from the same store the members use and
//! follows both (a snapshot, then a watch), so it computes every grain's owner itself, as the
//! members do: a grain message goes straight to its owner (one hop, no gateway, no lookup per
//! message), and a named actor's through the registry's copy here. It registers no record and
//! holds no lease, hosts no grain and no named actor, and is never an owner or a candidate.

use super::by_name::ByName;
use super::named::SpawnNamed;
use super::{Cluster, ClusterBuilder, ClusterStats, ClusterView, Grain, GrainRef, Member, Placement};
use crate::codec::RemoteMessage;
use crate::error::{ErrorCode, RemoteAskError, RemoteSendError};
use crate::remote_ref::{RemoteAsk, RemoteRef};
use crate::typed::{Typed, TypedGrainRef};
use corelane_proto::v1::Done;
use std::future::IntoFuture;
use std::time::{Duration, Instant};

/// A client of a cluster (GoAkt's cluster client): `kinds`, `spawn` (balanced round-robin,
/// random or by least load), `stop`, `tell`, `ask`, `whereis`, `respawn` for named actors, and
/// grains by kind and identity, routed to their owners by this process.
///
/// ```
/// use corelane::Runtime;
/// use corelane_net::cluster::{Cluster, ClusterClient, MemoryProvider};
/// use corelane_net::{Node, RemoteConfig};
/// # #[derive(Clone, PartialEq, prost::Message)] pub struct Ping {}
/// # impl prost::Name for Ping { const NAME: &'static str = "Ping"; const PACKAGE: &'static str = "doc.v1"; }
///
/// let store = MemoryProvider::new(); // in production: EtcdProvider (feature `etcd`)
/// let rt = Runtime::builder().build()?;
/// let member_node = Node::start(&rt, RemoteConfig::dev())?;
/// let member = Cluster::builder("shop").join(&member_node, store.clone())?;
///
/// let client_node = Node::start(&rt, RemoteConfig::dev())?;
/// let client = ClusterClient::builder("shop").connect(&client_node, store)?;
/// assert_eq!(client.members().len(), 1, "the client is not a member");
/// assert!(client.whereis("nobody").is_none());
/// client.close(std::time::Duration::from_secs(5));
/// member.leave(std::time::Duration::from_secs(5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClusterClient {
    cluster: Cluster,
}

impl ClusterClient {
    pub(crate) fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }

    /// A client of cluster `name`: configure it (the TTL is unused; the join timeout bounds
    /// the first read), then [`connect`](ClusterBuilder::connect).
    pub fn builder(name: impl Into<String>) -> ClusterBuilder {
        Cluster::builder(name)
    }

    /// The members now (the client is not one of them).
    pub fn members(&self) -> Vec<Member> {
        self.cluster.members()
    }

    /// The topology epoch this client routes by.
    pub fn epoch(&self) -> u64 {
        self.cluster.epoch()
    }

    /// Waits until the member set satisfies `f`, at most `timeout`; whether it did.
    pub fn wait_for(&self, timeout: Duration, f: impl Fn(&ClusterView<'_>) -> bool) -> bool {
        self.cluster.wait_for(timeout, f)
    }

    /// The actor kinds the members registered (what [`spawn`](ClusterClient::spawn) can make).
    pub fn kinds(&self) -> Vec<String> {
        self.cluster.kinds()
    }

    /// The grain kinds the members host.
    pub fn grain_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.members().into_iter().flat_map(|m| m.kinds).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Grain `identity` of kind `G`, routed to its owner by this client.
    pub fn grain<G: Grain>(&self, identity: impl Into<String>) -> GrainRef {
        self.cluster.grain::<G>(identity)
    }

    /// Grain `identity` of kind `kind` (for a client without the grain's type).
    pub fn grain_of(&self, kind: &str, identity: impl Into<String>) -> GrainRef {
        self.cluster.grain_of(kind, identity)
    }

    /// Grain `identity` of kind `G`, typed by its messages.
    pub fn typed_grain<G: Grain>(&self, identity: impl Into<String>) -> TypedGrainRef<G> {
        self.cluster.typed_grain::<G>(identity)
    }

    /// The member that owns grain `identity` of `kind` now, as this client computes it.
    pub fn owner_of(&self, kind: &str, identity: &str) -> Option<Member> {
        self.cluster.owner_of(kind, identity)
    }

    /// Spawns a named actor of `kind` on a member the placement picks (round-robin unless
    /// set; `Local` is refused: the client hosts nothing).
    pub fn spawn(&self, name: impl Into<String>, kind: impl Into<String>) -> SpawnNamed {
        self.cluster.spawn_named(name, kind).placement(Placement::RoundRobin)
    }

    /// Stops named actor `name` for good (it is not relocated); answered once it stopped.
    pub fn stop(&self, name: &str) -> RemoteAsk<Done> {
        match self.whereis(name) {
            Some(r) => r.stop(),
            None => self
                .cluster
                .inner
                .refused_ask(ErrorCode::NotFound, format!("no actor holds the name {name:?}")),
        }
    }

    /// Where named actor `name` runs now (`None`: nobody holds the name).
    pub fn whereis(&self, name: &str) -> Option<RemoteRef> {
        self.cluster.actor_of(name)
    }

    /// The member hosting named actor `name` now.
    pub fn host_of(&self, name: &str) -> Option<String> {
        self.cluster.host_of(name)
    }

    /// Sends `msg` to named actor `name`, wherever it runs.
    ///
    /// # Errors
    /// As [`Cluster::send`].
    pub fn tell<P: RemoteMessage>(&self, name: &str, msg: &P) -> Result<(), RemoteSendError> {
        self.cluster.send(name, msg)
    }

    /// Asks named actor `name` with `msg`, waiting at most `timeout`.
    pub fn ask<P: RemoteMessage, R: RemoteMessage>(
        &self,
        name: &str,
        msg: &P,
        timeout: Duration,
    ) -> RemoteAsk<R> {
        self.cluster.request(name, msg, timeout)
    }

    /// Named actor `name` by name, typed by its message type `M`.
    pub fn named<M>(&self, name: impl Into<String>) -> Typed<ByName, M> {
        self.cluster.named(name)
    }

    /// Stops named actor `name` and spawns its kind again under the name (round-robin, any
    /// member that registered the kind): a fresh actor; the answer is where it runs.
    pub fn respawn(&self, name: &str) -> RemoteAsk<RemoteRef> {
        let Some(kind) = self.cluster.inner.names.map.read().get(name).map(|a| a.kind.clone()) else {
            return self
                .cluster
                .inner
                .refused_ask(ErrorCode::NotFound, format!("no actor holds the name {name:?}"));
        };
        let (cluster, name) = (self.cluster.clone(), name.to_string());
        self.cluster.inner.answer(async move {
            if let Some(old) = cluster.actor_of(&name) {
                old.stop().await?;
            }
            // Its name goes once its host has seen it stop; until then a spawn finds it taken.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut wait = corelane::Backoff::new(Duration::from_millis(10), Duration::from_millis(200));
            loop {
                match cluster.spawn_named(&name, &kind).into_future().await {
                    Err(RemoteAskError::Refused { code: ErrorCode::NameTaken, .. })
                        if Instant::now() < deadline =>
                    {
                        tokio::time::sleep(wait.next_delay()).await;
                    }
                    r => return r,
                }
            }
        })
    }

    /// Whether the client follows the cluster (from connecting until it closed).
    pub fn running(&self) -> bool {
        self.cluster.running()
    }

    /// What this client did: retries (asks sent again after a refusal: none while the
    /// topology holds), store requests (reading and watching the member set and the registry).
    pub fn stats(&self) -> ClusterStats {
        self.cluster.stats()
    }

    /// Disconnects: stops following the store. Waits at most `timeout`; whether it finished.
    pub fn close(&self, timeout: Duration) -> bool {
        self.cluster.leave(timeout)
    }
}
