//! Routers: each strategy's distribution, routee death, the router stopping with its last
//! routee, pool placement.

use corelane::testkit::{Probe, TestKit};
use corelane::{
    Actor, ActorError, ActorId, ActorRef, Ctx, Event, EventKind, Placement, PoolPlacement, Routing,
    SpawnOptions, StopReason,
};
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// Reports (its own id, the message) for every message.
struct Collector(ActorRef<(ActorId, u32)>);
impl Actor for Collector {
    type Msg = u32;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: u32) -> Result<(), ActorError> {
        let _ = self.0.tell((ctx.id(), m));
        Ok(())
    }
}

/// `n` collectors, alternating between the two shards, or all on `shard`.
fn collectors(kit: &TestKit, p: &Probe, n: usize, shard: Option<usize>) -> Vec<ActorRef<u32>> {
    let out = p.actor_ref::<(ActorId, u32)>();
    (0..n)
        .map(|i| {
            let o = out.clone();
            kit.spawn_on(shard.unwrap_or(i % 2), move || Collector(o.clone())).unwrap()
        })
        .collect()
}

fn receive(p: &Probe, n: usize) -> Vec<(ActorId, u32)> {
    (0..n).map(|_| p.expect_of_type::<(ActorId, u32)>()).collect()
}

fn counts(got: &[(ActorId, u32)]) -> HashMap<ActorId, usize> {
    let mut c = HashMap::new();
    for (id, _) in got {
        *c.entry(*id).or_insert(0) += 1;
    }
    c
}

#[test]
fn round_robin_is_exact() {
    let kit = TestKit::new();
    let p = kit.probe();
    let cs = collectors(&kit, &p, 4, None);
    let r = kit.spawn_group_router(Routing::round_robin(), cs.clone(), Placement::Shard(0)).unwrap();
    r.batch_tell(0..400).unwrap();
    let got = receive(&p, 400);
    // Message i went to routee i mod 4.
    let mut by_msg = got.clone();
    by_msg.sort_by_key(|(_, m)| *m);
    for (id, m) in by_msg {
        assert_eq!(id, cs[m as usize % 4].id(), "message {m}");
    }
    assert!(counts(&got).values().all(|&n| n == 100));
}

#[test]
fn random_stays_within_bounds() {
    let kit = TestKit::new();
    let p = kit.probe();
    let cs = collectors(&kit, &p, 4, None);
    let r = kit.spawn_group_router(Routing::random(), cs, Placement::Shard(1)).unwrap();
    r.batch_tell(0..4000).unwrap();
    let c = counts(&receive(&p, 4000));
    assert_eq!(c.len(), 4);
    // Binomial(4000, 1/4): mean 1000, sd 27; 800..1200 is more than 7 sd either way.
    assert!(c.values().all(|&n| (800..=1200).contains(&n)), "{c:?}");
}

#[test]
fn broadcast_reaches_every_routee() {
    let kit = TestKit::new();
    let p = kit.probe();
    let cs = collectors(&kit, &p, 3, None);
    let r = kit.spawn_group_router(Routing::broadcast(), cs, Placement::Local).unwrap();
    r.batch_tell(0..10).unwrap();
    let c = counts(&receive(&p, 30));
    assert_eq!(c.len(), 3);
    assert!(c.values().all(|&n| n == 10));
}

#[test]
fn consistent_hash_is_stable_per_key_and_when_an_unrelated_routee_dies() {
    let kit = TestKit::new();
    let p = kit.probe();
    // Router and routees share a shard, so a routee's `Terminated` reaches the router before
    // the kill completes.
    let cs = collectors(&kit, &p, 5, Some(0));
    // Options for a group router as for any spawn: a name and a placement.
    let opts = SpawnOptions::new().name("by-key").placement(Placement::Shard(0));
    let r = kit.spawn_group_router(Routing::consistent_hash(|m: &u32| m % 50), cs.clone(), opts).unwrap();
    assert_eq!(kit.lookup::<u32>("by-key"), Some(r.clone()));
    assert_eq!(r.id().shard(), 0);
    let w = kit.probe();
    w.watch(&r);
    r.batch_tell(0..100).unwrap();
    let first: HashMap<u32, ActorId> = receive(&p, 100).into_iter().map(|(id, m)| (m % 50, id)).collect();
    // Same key, same routee (m and m + 50 share a key).
    r.batch_tell(0..100).unwrap();
    for (id, m) in receive(&p, 100) {
        assert_eq!(first[&(m % 50)], id, "key {}", m % 50);
    }
    // Kill one routee: only its keys move.
    let victim = cs[2].id();
    cs[2].kill().timeout(WAIT).wait().unwrap();
    r.batch_tell(0..100).unwrap();
    for (id, m) in receive(&p, 100) {
        let before = first[&(m % 50)];
        assert_ne!(id, victim);
        if before != victim {
            assert_eq!(before, id, "key {} moved although its routee lives", m % 50);
        }
    }
    w.expect_no_message(Duration::from_millis(20));
}

#[test]
fn dead_routees_are_removed_and_the_router_stops_with_the_last() {
    let kit = TestKit::new();
    let p = kit.probe();
    // One shard, so each routee's `Terminated` reaches the router before its stop completes.
    let cs = collectors(&kit, &p, 3, Some(1));
    let emptied = kit.event_probe(|e| e.kind() == EventKind::RouterEmptied);
    let r = kit.spawn_group_router(Routing::round_robin(), cs.clone(), Placement::Shard(1)).unwrap();
    let w = kit.probe();
    w.watch(&r);
    cs[0].stop().timeout(WAIT).wait().unwrap();
    r.batch_tell(0..30).unwrap();
    let c = counts(&receive(&p, 30));
    assert_eq!(c.get(&cs[0].id()), None);
    assert_eq!((c[&cs[1].id()], c[&cs[2].id()]), (15, 15));
    assert_eq!(kit.metrics().dead_letters, 0);
    cs[1].stop().timeout(WAIT).wait().unwrap();
    cs[2].stop().timeout(WAIT).wait().unwrap();
    emptied.expect_message(Event::RouterEmptied { id: r.id() });
    assert_eq!(w.expect_terminated(&r), StopReason::Stopped);
}

#[test]
fn pool_routees_are_children_placed_as_asked() {
    let kit = TestKit::new();
    let p = kit.probe();
    let out = p.actor_ref::<(ActorId, u32)>();
    let o = out.clone();
    let spread = kit
        .spawn_pool_router(
            Routing::round_robin(),
            4,
            PoolPlacement::PerShard,
            SpawnOptions::new().placement(Placement::Shard(0)),
            move || Collector(o.clone()),
        )
        .unwrap();
    spread.batch_tell(0..4).unwrap();
    let shards: Vec<usize> = receive(&p, 4).iter().map(|(id, _)| id.shard()).collect();
    assert_eq!(shards.iter().filter(|&&s| s == 0).count(), 2);
    assert_eq!(shards.iter().filter(|&&s| s == 1).count(), 2);
    let local = kit
        .spawn_pool_router(
            Routing::round_robin(),
            3,
            PoolPlacement::Local,
            // A placement alone is options too, as for every spawn.
            Placement::Shard(1),
            move || Collector(out.clone()),
        )
        .unwrap();
    assert_eq!(local.id().shard(), 1);
    local.batch_tell(0..3).unwrap();
    assert!(receive(&p, 3).iter().all(|(id, _)| id.shard() == 1));
    // Stopping a pool router stops its routees (its children).
    let w = kit.probe();
    w.watch(&local);
    local.stop().timeout(WAIT).wait().unwrap();
    assert_eq!(w.expect_terminated(&local), StopReason::Stopped);
}
