//! `router-rr`: the tell stream through a round-robin group router on shard 0 in front of one
//! sink per shard, so half the messages cross shards. Compare with `tell-cross`: each message
//! makes one extra same-shard hop (driver → router) plus the routing decision.

use crate::report::{fig, Figure};
use crate::tell::{driver, sink, stream};
use crate::{engine_runtime, Cores};
use corelane::{MailboxKind, Placement, Routing};

pub(crate) fn router_rr(cores: Cores, n: u64) -> Vec<Figure> {
    let rt = engine_runtime(cores, 2);
    let driver = driver(&rt);
    let sinks: Vec<_> = (0..2).map(|s| sink(&rt, &driver, s, MailboxKind::Unbounded)).collect();
    let router = rt.spawn_group_router(Routing::round_robin(), sinks.clone(), Placement::Shard(0)).unwrap();
    let t = stream(&driver, &router, &sinks, n);
    rt.shutdown().unwrap();
    vec![fig("router-rr", "msgs_per_sec", n as f64 / t.as_secs_f64(), "msg/s")]
}
