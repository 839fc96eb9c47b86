//! The cluster in one process: three members (each a runtime and a node on loopback) sharing
//! the in-memory membership store. The same behaviours are checked against a real etcd and
//! real processes in `cluster_etcd.rs`.

mod common;

use common::grains::{
    counter_protocol, counters, Activity, Add, Count, Counter, Deactivate, Fail, Get, Panic,
};
use corelane::{Event, EventKind, LeftReason, Runtime};
use corelane_net::cluster::{Cluster, MemoryProvider};
use corelane_net::{ErrorCode, Node, RemoteAskError};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

struct Member {
    cluster: Cluster,
    stats: Arc<Activity>,
    _node: Node,
    _rt: Runtime,
}

/// Member `id`; `c` has the roles feed and risk, `b` risk, the others none.
fn member(store: &MemoryProvider, id: &str, ttl: Duration) -> Member {
    let rt = common::runtime();
    let node = common::node(&rt);
    let stats = Arc::new(Activity::default());
    let roles: &[&str] = match id {
        "b" => &["risk"],
        "c" => &["risk", "feed"],
        _ => &[],
    };
    let cluster = Cluster::builder("test")
        .ttl(ttl)
        .member_id(id)
        .roles(roles.iter().copied())
        .grain::<Counter, _>(counter_protocol(), counters(id, stats.clone()))
        .join(&node, store.clone())
        .expect("join");
    Member { cluster, stats, _node: node, _rt: rt }
}

fn three(store: &MemoryProvider, ttl: Duration) -> Vec<Member> {
    let ms: Vec<Member> = ["a", "b", "c"].iter().map(|id| member(store, id, ttl)).collect();
    for m in &ms {
        assert!(
            m.cluster.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c"]),
            "{} sees all three",
            m.cluster.member_id()
        );
    }
    ms
}

fn get(c: &Cluster, id: &str) -> Result<Count, RemoteAskError> {
    c.grain::<Counter>(id).ask::<Get, Count>(&Get {}).timeout(Duration::from_secs(5)).wait()
}

/// Waits until every member follows the same topology (one epoch). Right after members rejoin,
/// a member whose view still lags a change can name another owner for a moment, so an owner read
/// from one member is compared with where another member's ask lands only after this.
fn converged(ms: &[Member]) -> bool {
    until(|| ms.iter().all(|m| m.cluster.epoch() == ms[0].cluster.epoch()))
}

/// Waits for `cond`, checking every millisecond, at most `WAIT`.
fn until(cond: impl Fn() -> bool) -> bool {
    common::until(WAIT, cond)
}

#[test]
fn members_see_joins_and_leaves_with_their_reasons() {
    let store = MemoryProvider::new();
    let a = member(&store, "a", Duration::from_secs(2));
    let (_sub, events) = a.cluster.node().runtime().subscribe_channel(|e: &Event| {
        matches!(e.kind(), EventKind::NodeJoined | EventKind::NodeLeft | EventKind::TopologyChanged)
    });
    let b = member(&store, "b", Duration::from_secs(2));
    let c = member(&store, "c", Duration::from_secs(2));
    for m in [&a, &b, &c] {
        assert!(m.cluster.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c"]));
    }
    let mut joined = Vec::new();
    let mut epochs = Vec::new();
    while joined.len() < 2 {
        match events.recv_timeout(WAIT).expect("an event") {
            Event::NodeJoined { member, roles, .. } => joined.push((member, roles)),
            Event::TopologyChanged { epoch, .. } => epochs.push(epoch),
            e => panic!("unexpected {e:?}"),
        }
    }
    joined.sort();
    let roles = |r: &[&str]| r.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    assert_eq!(joined, [("b".to_string(), roles(&["risk"])), ("c".to_string(), roles(&["feed", "risk"]))]);
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "epochs increase: {epochs:?}");

    assert!(c.cluster.in_cluster() && c.cluster.running());
    assert!(c.cluster.leave(WAIT));
    assert!(!c.cluster.in_cluster() && !c.cluster.running(), "a member that left is neither ready nor live");
    for m in [&a, &b] {
        assert!(m.cluster.wait_for(WAIT, |v| v.member_ids() == ["a", "b"]));
    }
    let left = loop {
        if let Event::NodeLeft { member, reason, roles: r, .. } = events.recv_timeout(WAIT).expect("an event")
        {
            break (member, reason, r);
        }
    };
    assert_eq!(left, ("c".to_string(), LeftReason::Left, roles(&["feed", "risk"])));
    // The epoch is the same on every member.
    assert_eq!(a.cluster.epoch(), b.cluster.epoch());

    store.expire("test", "b");
    let left = loop {
        if let Event::NodeLeft { member, reason, .. } = events.recv_timeout(WAIT).expect("an event") {
            break (member, reason);
        }
    };
    assert_eq!(left, ("b".to_string(), LeftReason::LeaseExpired));
}

#[test]
fn a_member_is_ready_once_in_the_member_set_serving_and_past_its_minimum_of_members() {
    let store = MemoryProvider::new();
    let join = |id: &str| {
        let rt = common::runtime();
        let node = common::node(&rt);
        let cluster = Cluster::builder("ready")
            .ttl(Duration::from_secs(2))
            .member_id(id)
            .min_members(2, Duration::from_secs(60))
            .join(&node, store.clone())
            .expect("join");
        (cluster, node, rt)
    };
    let (a, _na, _ra) = join("a");
    assert!(a.running());
    assert!(!a.in_cluster(), "alone, below its minimum of members: live, not ready");
    let (b, _nb, _rb) = join("b");
    assert!(until(|| a.in_cluster() && b.in_cluster()), "two members: both ready");
    // Fenced (its store unreachable past the lease): live, not ready.
    store.set_available(false);
    assert!(until(|| !a.in_cluster()), "fenced: not ready");
    assert!(a.running());
    store.set_available(true);
    assert!(until(|| a.in_cluster()), "back");
    assert!(a.leave(WAIT));
    assert!(!a.running());
}

#[test]
fn a_grain_activates_once_and_answers_from_its_owner_whoever_asks() {
    let store = MemoryProvider::new();
    let ms = three(&store, Duration::from_secs(2));
    for i in 0..30 {
        let id = format!("g{i}");
        let owner = ms[0].cluster.owner_of("counter", &id).unwrap().id;
        for (n, m) in ms.iter().enumerate() {
            m.cluster.grain::<Counter>(&id).tell(&Add { amount: n as u64 + 1 }).unwrap();
            let c = get(&m.cluster, &id).unwrap();
            assert_eq!(c.member, owner, "{id} answers from its owner");
            assert_eq!(c.identity, id);
            assert_eq!(c.epoch, m.cluster.epoch());
        }
        // Tells and asks from one sender stay in order: all three tells are counted by the
        // last ask (each sender's tell came before its own ask).
        assert_eq!(get(&ms[0].cluster, &id).unwrap().value, 1 + 2 + 3);
    }
    let activated: u64 = ms.iter().map(|m| m.stats.activated.load(std::sync::atomic::Ordering::SeqCst)).sum();
    assert_eq!(activated, 30, "one activation per identity");
    // Batches: in order, under one timeout.
    let g = ms[1].cluster.grain::<Counter>("g0");
    g.batch_tell(&[Add { amount: 10 }, Add { amount: 20 }]).unwrap();
    let answers = g.batch_ask::<Get, Count>(&[Get {}, Get {}]).timeout(Duration::from_secs(5)).wait();
    let values: Vec<u64> = answers.into_iter().map(|a| a.unwrap().value).collect();
    assert_eq!(values, [36, 36]);
    // Typed: the answer's type comes from `CounterMsg: Answers<Get>`.
    let typed = ms[2].cluster.typed_grain::<Counter>("g0");
    typed.tell(&Add { amount: 4 }).unwrap();
    let c = typed.ask(&Get {}).timeout(Duration::from_secs(5)).retry_on_node_down(true).wait().unwrap();
    assert_eq!((c.value, c.identity.as_str()), (40, "g0"));
    // No store request per message: none but renewals happened meanwhile.
    let before: Vec<u64> = ms.iter().map(|m| m.cluster.stats().membership_requests).collect();
    assert!(before.iter().all(|n| *n >= 4), "joining counted: {before:?}");
    for i in 0..300 {
        get(&ms[i % 3].cluster, &format!("g{}", i % 30)).unwrap();
    }
    for (m, req) in ms.iter().zip(before) {
        assert_eq!(m.cluster.stats().membership_requests, req, "only renewals reached the store");
    }
}

#[test]
fn tells_to_grains_on_another_member_arrive_whole_and_before_what_follows_them() {
    // Runs of tells to two grains another member owns travel joined (`Envelope::more`); each
    // ask right behind them must find every one.
    let store = MemoryProvider::new();
    let ms = three(&store, Duration::from_secs(2));
    let me = ms[0].cluster.member_id().to_string();
    let ids: Vec<String> = (0..)
        .map(|i| format!("s{i}"))
        .filter(|id| ms[0].cluster.owner_of("counter", id).unwrap().id != me)
        .take(2)
        .collect();
    let grains = [ms[0].cluster.grain::<Counter>(&ids[0]), ms[0].cluster.grain::<Counter>(&ids[1])];
    let mut sums = [0u64; 2];
    for round in 1..=20u64 {
        for i in 0..100u64 {
            let k = usize::from(i % 50 >= 25);
            grains[k].tell(&Add { amount: round * 1000 + i }).unwrap();
            sums[k] += round * 1000 + i;
        }
        // The last run went to the second grain: its ask is right behind its tells.
        assert_eq!(get(&ms[0].cluster, &ids[1]).unwrap().value, sums[1], "round {round}");
        assert_eq!(get(&ms[0].cluster, &ids[0]).unwrap().value, sums[0], "round {round}");
    }
}

#[test]
fn a_grain_handles_an_ask_in_the_askers_trace_on_whichever_member_owns_it() {
    use corelane::trace::{self, TraceContext};
    let store = MemoryProvider::new();
    let ms = three(&store, Duration::from_secs(2));
    let (mut local, mut remote) = (0, 0);
    for i in 0..12 {
        let id = format!("t{i}");
        let owner = ms[0].cluster.owner_of("counter", &id).unwrap().id;
        if owner == ms[0].cluster.member_id() {
            local += 1
        } else {
            remote += 1
        }
        let root = TraceContext::root();
        let c = trace::scope(root, || get(&ms[0].cluster, &id)).unwrap();
        assert_eq!(c.trace_id, format!("{:032x}", root.trace_id()), "{id} on {owner}");
        assert_eq!(get(&ms[0].cluster, &id).unwrap().trace_id, "", "untraced stays untraced");
    }
    assert!(local > 0 && remote > 0, "both routes taken: {local} local, {remote} remote");
}

#[test]
fn after_a_graceful_leave_its_grains_answer_from_the_others_and_never_ran_twice() {
    let store = MemoryProvider::new();
    let ms = three(&store, Duration::from_secs(2));
    let ids: Vec<String> = (0..60).map(|i| format!("h{i}")).collect();
    for id in &ids {
        ms[0].cluster.grain::<Counter>(id).tell(&Add { amount: 1 }).unwrap();
        get(&ms[0].cluster, id).unwrap();
    }
    let on_c: Vec<&String> =
        ids.iter().filter(|id| ms[0].cluster.owner_of("counter", id).unwrap().id == "c").collect();
    assert!(!on_c.is_empty());
    assert!(ms[2].stats.live() > 0);
    assert!(ms[2].cluster.leave(WAIT));
    assert_eq!(ms[2].stats.live(), 0, "the leaver's grains are deactivated before it goes");
    for id in &on_c {
        let c = get(&ms[0].cluster, id).unwrap();
        assert_ne!(c.member, "c");
        assert_eq!(c.value, 0, "a new activation (the counter keeps no storage)");
    }
    // Asking the leaver fails fast and clearly.
    match get(&ms[2].cluster, "h0") {
        Err(RemoteAskError::Refused { code: ErrorCode::ShuttingDown, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_member_whose_record_goes_fences_at_once_and_joins_again() {
    let store = MemoryProvider::new();
    let ms = three(&store, Duration::from_secs(2));
    let fenced_before = ms[1].cluster.stats().fenced;
    store.expire("test", "b");
    assert!(until(|| ms[1].cluster.stats().fenced > fenced_before), "b fenced itself");
    for m in &ms {
        assert!(m.cluster.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c"]), "b is back");
    }
    assert!(until(|| ms[1].cluster.is_serving()));
    assert!(converged(&ms), "the members follow one topology");
    for i in 0..20 {
        let id = format!("r{i}");
        let owner = ms[0].cluster.owner_of("counter", &id).unwrap().id;
        assert_eq!(get(&ms[1].cluster, &id).unwrap().member, owner);
    }
}

#[test]
fn a_store_outage_shorter_than_the_lease_fences_nothing() {
    let store = MemoryProvider::new();
    let ms = three(&store, Duration::from_secs(2));
    get(&ms[0].cluster, "x").unwrap();
    let epoch = ms[0].cluster.epoch();
    store.set_available(false);
    let out = Instant::now();
    // About a quarter of the lease: renewals fail meanwhile, serving continues.
    while out.elapsed() < Duration::from_millis(500) {
        assert!(ms.iter().all(|m| m.cluster.is_serving()));
        get(&ms[1].cluster, "x").unwrap();
    }
    store.set_available(true);
    assert!(ms.iter().all(|m| m.cluster.stats().fenced == 0));
    assert_eq!(ms[0].cluster.epoch(), epoch, "the member set did not change");
}

#[test]
fn when_the_store_is_gone_asks_fail_fast_and_recover_when_it_is_back() {
    let store = MemoryProvider::new();
    let ms = three(&store, Duration::from_secs(1));
    get(&ms[0].cluster, "y").unwrap();
    store.set_available(false);
    assert!(until(|| ms.iter().all(|m| !m.cluster.is_serving())), "every member fences itself");
    let t = Instant::now();
    match get(&ms[0].cluster, "y") {
        Err(RemoteAskError::Refused { code: ErrorCode::Fenced, detail }) => {
            assert!(detail.contains("membership"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_millis(500), "fails fast: {:?}", t.elapsed());
    store.set_available(true);
    assert!(until(|| ms.iter().all(|m| m.cluster.is_serving())), "every member serves again");
    for m in &ms {
        assert!(m.cluster.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c"]));
    }
    assert!(converged(&ms), "the members follow one topology");
    let owner = ms[0].cluster.owner_of("counter", "y").unwrap().id;
    assert_eq!(get(&ms[2].cluster, "y").unwrap().member, owner);
}

#[test]
fn an_idle_grain_is_passivated_and_the_next_message_activates_it_again() {
    let store = MemoryProvider::new();
    let rt = common::runtime();
    let node = common::node(&rt);
    let stats = Arc::new(Activity::default());
    let cluster = Cluster::builder("idle")
        .ttl(Duration::from_secs(2))
        .member_id("solo")
        .grain_idle(Duration::from_secs(1))
        .grain::<Counter, _>(counter_protocol(), counters("solo", stats.clone()))
        .join(&node, store)
        .unwrap();
    cluster.grain::<Counter>("p").tell(&Add { amount: 5 }).unwrap();
    assert_eq!(get(&cluster, "p").unwrap().value, 5);
    // Kept alive while used: asked every 50 ms for longer than the idle timeout.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(2000) {
        assert_eq!(get(&cluster, "p").unwrap().value, 5, "not passivated while in use");
        std::thread::park_timeout(Duration::from_millis(50));
    }
    assert!(until(|| stats.live() == 0), "passivated once idle");
    assert!(cluster.stats().passivated >= 1);
    assert_eq!(get(&cluster, "p").unwrap().value, 0, "a fresh activation");
    assert_eq!(stats.activated.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn dropping_every_handle_leaves_the_cluster() {
    let store = MemoryProvider::new();
    let a = member(&store, "a", Duration::from_secs(2));
    let b = member(&store, "b", Duration::from_secs(2));
    assert!(a.cluster.wait_for(WAIT, |v| v.member_ids() == ["a", "b"]));
    drop(b);
    assert!(a.cluster.wait_for(WAIT, |v| v.member_ids() == ["a"]), "b left when its handles went");
    // And it stays gone: no rejoin loop.
    let epoch = a.cluster.epoch();
    assert!(!a.cluster.wait_for(Duration::from_millis(300), |v| v.epoch() != epoch));
}

fn member_with_minimum(store: &MemoryProvider, id: &str, min: usize, wait: Duration) -> Member {
    let rt = common::runtime();
    let node = common::node(&rt);
    let stats = Arc::new(Activity::default());
    let cluster = Cluster::builder("barrier")
        .ttl(Duration::from_secs(2))
        .member_id(id)
        .min_members(min, wait)
        .grain::<Counter, _>(counter_protocol(), counters(id, stats.clone()))
        .join(&node, store.clone())
        .unwrap();
    Member { cluster, stats, _node: node, _rt: rt }
}

#[test]
fn grains_do_not_activate_before_the_minimum_of_members() {
    let store = MemoryProvider::new();
    let a = member_with_minimum(&store, "a", 2, Duration::from_secs(60));
    // Alone: the message is held, not served, and the grain is not activated.
    let early = a.cluster.grain::<Counter>("m").ask::<Get, Count>(&Get {}).timeout(Duration::from_secs(10));
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        assert_eq!(a.stats.activated.load(std::sync::atomic::Ordering::SeqCst), 0, "no activation yet");
        assert!(a.cluster.stats().held >= 1, "the ask waits at its owner");
        std::thread::park_timeout(Duration::from_millis(20));
    }
    let b = member_with_minimum(&store, "b", 2, Duration::from_secs(60));
    assert!(b.cluster.wait_for(WAIT, |v| v.member_ids() == ["a", "b"]));
    // The second member opens the barrier: the held ask is served.
    let c = early.wait().expect("served once the minimum is reached");
    assert_eq!(c.member, b.cluster.owner_of("counter", "m").unwrap().id);
}

#[test]
fn the_minimum_of_members_is_waited_for_at_most_its_timeout() {
    let store = MemoryProvider::new();
    let t = Instant::now();
    let a = member_with_minimum(&store, "a", 3, Duration::from_millis(500));
    let c = get(&a.cluster, "n").expect("served after the wait for more members ended");
    assert_eq!(c.member, "a");
    assert!(t.elapsed() >= Duration::from_millis(500), "not before the timeout ({:?})", t.elapsed());
}

#[test]
fn a_grain_that_deactivates_loses_no_ask_and_is_activated_again_after_it_stopped() {
    let store = MemoryProvider::new();
    // Two shards: the grain's host runs on one of them, its sender on either.
    let rt = corelane::Runtime::builder().shards(corelane::Shards::Count(2)).build().unwrap();
    let node = common::node(&rt);
    let stats = Arc::new(Activity::default());
    let cluster = Cluster::builder("deactivate")
        .ttl(Duration::from_secs(2))
        .member_id("solo")
        .grain::<Counter, _>(counter_protocol(), counters("solo", stats.clone()))
        .join(&node, store)
        .unwrap();
    let m = Member { cluster, stats, _node: node, _rt: rt };
    let g = m.cluster.grain::<Counter>("d");
    for round in 1..=20u64 {
        g.tell(&Add { amount: 1 }).unwrap();
        g.tell(&Deactivate {}).unwrap();
        // The old activation drains these over several turns.
        for _ in 0..300 {
            g.tell(&Add { amount: 1 }).unwrap();
        }
        // Sent while the activation may be stopping: drained by it (it ends after what it has
        // queued), or held and served by the next one. Never two activations at once.
        g.tell(&Add { amount: 5 }).unwrap();
        get(&m.cluster, "d").unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    assert_eq!(
        m.stats.max_live.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "never two activations at once"
    );
    assert!(m.stats.deactivated.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(m.stats.activated.load(std::sync::atomic::Ordering::SeqCst) >= 2, "activated again");
}

/// Two identities of `Counter` in one partition (so in one host).
fn same_partition_pair() -> (String, String) {
    use corelane_net::cluster::partitions::partition_of;
    let first = "x-0".to_string();
    let p = partition_of("counter", &first);
    let second = (1..).map(|i| format!("x-{i}")).find(|id| partition_of("counter", id) == p).unwrap();
    (first, second)
}

#[test]
fn a_grain_that_fails_or_panics_ends_only_its_own_activation() {
    let store = MemoryProvider::new();
    let m = member(&store, "solo", Duration::from_secs(2));
    let (x, y) = same_partition_pair();
    let (gx, gy) = (m.cluster.grain::<Counter>(x.as_str()), m.cluster.grain::<Counter>(y.as_str()));
    gx.tell(&Add { amount: 5 }).unwrap();
    gy.tell(&Add { amount: 7 }).unwrap();
    assert_eq!(get(&m.cluster, &x).unwrap().value, 5);
    assert_eq!(get(&m.cluster, &y).unwrap().value, 7);

    // An error ends x's activation; the next message activates it afresh. y is untouched.
    gx.tell(&Fail {}).unwrap();
    assert_eq!(get(&m.cluster, &x).unwrap().value, 0, "x starts over");
    assert_eq!(get(&m.cluster, &y).unwrap().value, 7, "y keeps its state");

    // A panic likewise, caught where the grain runs.
    gx.tell(&Add { amount: 3 }).unwrap();
    gy.tell(&Panic {}).unwrap();
    assert_eq!(get(&m.cluster, &y).unwrap().value, 0, "y starts over");
    assert_eq!(get(&m.cluster, &x).unwrap().value, 3, "x keeps its state");

    let ended = m.stats.deactivated.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ended, 2, "each failed activation was deactivated once");
    assert_eq!(m.cluster.stats().activations, 2);
    assert_eq!(m.stats.max_live.load(std::sync::atomic::Ordering::SeqCst), 2, "x and y, once each");
}

#[test]
fn a_raw_peer_names_grains_by_kind_name_or_number_and_bad_names_are_refused() {
    use bytes::Bytes;
    use common::raw::{frame, hello, Raw};
    use corelane_proto::decode_error;
    use corelane_proto::v1::{Envelope, Kind};
    use prost::{Message, Name};

    let store = MemoryProvider::new();
    let m = member(&store, "solo", Duration::from_secs(2));
    m.cluster.grain::<Counter>("n").tell(&Add { amount: 4 }).unwrap();
    assert_eq!(get(&m.cluster, "n").unwrap().value, 4);
    let ask = |corr: u64, kind: &[u8], number: u32, identity: &[u8]| {
        let mut e = Envelope::ask(0, corr, Get::full_name(), Bytes::new());
        e.grain = Some(identity.to_vec());
        e.grain_kind = kind.to_vec();
        e.grain_kind_number = number;
        frame(&e)
    };
    let raw = Raw::connect(m.cluster.node().addr());
    let mut bytes = hello();
    bytes.extend(ask(1, b"counter", 0, b"n"));
    // The member hosts one kind: number 1.
    bytes.extend(ask(2, b"", 1, b"n"));
    bytes.extend(ask(3, b"", 2, b"n"));
    bytes.extend(ask(4, b"nothing", 0, b"n"));
    bytes.extend(ask(5, b"counter", 0, &[0xff, 0xfe]));
    raw.stream(bytes);
    let mut got = raw.read(5);
    got.sort_by_key(|e| e.correlation_id);
    for e in &got[..2] {
        assert_eq!(e.kind(), Kind::Reply, "{e:?}");
        let c = Count::decode(e.payload.clone()).unwrap();
        assert_eq!((c.identity.as_str(), c.value), ("n", 4));
    }
    let code = |e: &Envelope| {
        assert_eq!(e.kind(), Kind::Error, "{e:?}");
        decode_error(e.payload.clone()).unwrap().code()
    };
    assert_eq!(code(&got[2]), ErrorCode::NotOwner, "an unknown kind number");
    assert_eq!(code(&got[3]), ErrorCode::NotOwner, "an unknown kind name");
    assert_eq!(code(&got[4]), ErrorCode::Malformed, "an identity that is not UTF-8");
    assert_eq!(get(&m.cluster, "n").unwrap().value, 4, "still served");
}
