//! Cluster members in one process, for the in-memory cluster tests: a runtime, a node on
//! loopback, and the member joined to a store.
#![allow(dead_code, unreachable_pub)]

use corelane::Runtime;
use corelane_net::cluster::{Cluster, ClusterBuilder, MemoryProvider};
use corelane_net::Node;
use std::time::Duration;

/// A member and what it runs on (kept alive with it).
pub struct Member {
    pub cluster: Cluster,
    pub node: Node,
    _rt: Runtime,
}

/// Member `id` of cluster `name` on `store` (TTL 2 s): `setup` prepares its node (kinds,
/// protocols), `build` its builder (grains, roles) before it joins.
pub fn join(
    store: &MemoryProvider,
    name: &str,
    id: &str,
    setup: impl FnOnce(&Node),
    build: impl FnOnce(ClusterBuilder) -> ClusterBuilder,
) -> Member {
    let rt = super::runtime();
    let node = super::node(&rt);
    setup(&node);
    let builder = Cluster::builder(name).ttl(Duration::from_secs(2)).member_id(id);
    let cluster = build(builder).join(&node, store.clone()).expect("join");
    Member { cluster, node, _rt: rt }
}
