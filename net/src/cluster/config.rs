//! A member's configuration, the builder that joins it, and why joining can fail.

use super::host::{self, GrainKind};
use super::provider::ClusterProvider;
use super::{Cluster, Grain, KindEntry, Kinds};
use crate::node::Node;
use crate::protocol::Protocol;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
    /// Connected as a [`ClusterClient`](super::ClusterClient): no record, no lease, no hosting.
    pub(crate) client: bool,
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
            client: false,
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

/// Builds a member: its configuration and the grain kinds it hosts.
pub struct ClusterBuilder {
    cfg: ClusterConfig,
    kinds: Kinds,
}

impl ClusterBuilder {
    pub(crate) fn new(name: String) -> Self {
        ClusterBuilder { cfg: ClusterConfig::new(name), kinds: Kinds::default() }
    }

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
        F: Fn(&str) -> G + Send + Sync + 'static,
    {
        let make: Arc<dyn GrainKind> =
            Arc::new(host::KindOf::<G> { protocol: Arc::new(protocol), make: Arc::new(factory) });
        let (hosts, live) = (Mutex::new(HashMap::new()), Arc::default());
        self.kinds.insert(G::KIND.into(), KindEntry { name: G::KIND, make, hosts, live });
        self
    }

    /// Joins through `provider` as a member running on `node`: registers, reads the member
    /// set and starts watching it. Returns once registered (the topology includes this
    /// member), or fails after the join timeout.
    ///
    /// # Errors
    /// The store did not accept the registration in time, or the configuration is unusable.
    pub fn join(self, node: &Node, provider: impl ClusterProvider) -> Result<Cluster, ClusterError> {
        super::membership::start(self.cfg, self.kinds, node, Arc::new(provider))
    }

    /// Connects through `provider` as a client that is not a member (see [`ClusterClient`]):
    /// reads the member set and the registry and follows them, registers nothing, hosts
    /// nothing. Returns once it has read the member set, or fails after the join timeout.
    ///
    /// # Errors
    /// The store could not be read in time, grain kinds were given (a client hosts none), or
    /// the configuration is unusable.
    ///
    /// [`ClusterClient`]: super::ClusterClient
    pub fn connect(
        mut self,
        node: &Node,
        provider: impl ClusterProvider,
    ) -> Result<super::ClusterClient, ClusterError> {
        if !self.kinds.is_empty() {
            return Err(ClusterError::Config("a cluster client hosts no grains".into()));
        }
        self.cfg.client = true;
        let cluster = super::membership::start(self.cfg, self.kinds, node, Arc::new(provider))?;
        Ok(super::ClusterClient::new(cluster))
    }
}
