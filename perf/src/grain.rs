//! Grains (virtual actors), measured as `remote.rs` measures remoting, in the same run:
//! - `grain-ask`: node A (a cluster member hosting no grains) asks an echo grain that lives on
//!   member B, 64 bytes each way, blocking for each answer: `remote-pingpong`'s shape, plus the
//!   routing (partition, owner from the topology) and the owner's check and activation lookup.
//!   Also counts the membership store's requests the asking member made during the run other
//!   than lease renewals (`store_requests_per_msg`, zero when routing needs no lookup).
//! - `grain-tell`: `remote-tell`'s shape through a grain reference.
//! - `grain-activate`: asks to grains never asked before (each activates one on B): the cold
//!   ask, next to `grain-ask`'s warm one.
//! - `client-grain-ask`: `grain-ask` from a `ClusterClient` (not a member: it computes the
//!   owner from the member set it follows) to the grain on member B, in rounds alternating
//!   with the same asks from member A, both on core a; its ratio to the member's.
//! - `named-ask`: `grain-ask`'s shape to a named actor (spawned by A on B, the only member
//!   whose node registered the kind), through the reference A's copy of the registry gives;
//!   also counts store requests per message.
//! - `grain-memory`: resident memory of 1 000 000 idle grain activations on one member (in a
//!   fresh child process, activated from an actor on its shard), per grain.
//!
//! Membership is the in-memory store (the perf harness needs no etcd): the message path is
//! the same; the store only decides the topology.

use crate::remote::{node_on, on_core, protocol, timed_asks, windowed_tells, Count, EchoMsg, Payload, Ping};
use crate::report::{fig, percentiles, Figure};
use crate::spawn::{child_reading, resident_bytes};
use crate::{pin, Cores};
use corelane::{Actor, ActorError, Ctx, Reply, Runtime};
use corelane_net::cluster::{Cluster, ClusterClient, Grain, GrainCtx, GrainRef, MemoryProvider};
use corelane_net::Node;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// The grain measured: echoes, and counts what it is told.
pub(crate) struct Echo(u64);

impl Grain for Echo {
    const KIND: &'static str = "perf-echo";
    type Msg = EchoMsg;
    fn receive(&mut self, _: &mut GrainCtx<'_, Self>, msg: EchoMsg) -> Result<(), ActorError> {
        msg.handle(&mut self.0);
        Ok(())
    }
}

struct Pair {
    a: Cluster,
    _b: Cluster,
    nodes: [Node; 2],
    _rts: [Runtime; 2],
}

/// Member A on core a (hosts nothing), member B on core b (hosts the echo grains).
fn pair(cores: Cores) -> Pair {
    let store = MemoryProvider::new();
    let (rt_a, node_a) = node_on(cores.a);
    let (rt_b, node_b) = node_on(cores.b);
    let b = Cluster::builder("perf")
        .member_id("b")
        .grain::<Echo, _>(protocol(), |_: &str| Echo(0))
        .join(&node_b, store.clone())
        .expect("b joins");
    let a = Cluster::builder("perf").member_id("a").join(&node_a, store).expect("a joins");
    assert!(a.wait_for(Duration::from_secs(10), |v| v.member_ids() == ["a", "b"]));
    assert!(b.wait_for(Duration::from_secs(10), |v| v.member_ids() == ["a", "b"]));
    Pair { a, _b: b, nodes: [node_a, node_b], _rts: [rt_a, rt_b] }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for n in &self.nodes {
            n.shutdown();
        }
    }
}

fn ask(g: &GrainRef, p: &Ping) -> Ping {
    g.ask::<_, Ping>(p).timeout(Duration::from_secs(10)).wait().expect("grain ask")
}

pub(crate) fn grain_ask(cores: Cores, n: u64) -> Vec<Figure> {
    let pair = pair(cores);
    let a = pair.a.clone();
    grain_asks("grain-ask", pair.a.grain::<Echo>("echo-1"), cores, n, move || a.stats().membership_requests)
}

/// `grain-ask` from a [`ClusterClient`] (not a member) next to the same from a member, both
/// on core a, to the grain on member B: the two ask in alternating rounds of one run, so drift
/// falls on both alike. Reports the client's figures and its ratio to the member's.
pub(crate) fn client_grain_ask(cores: Cores, n: u64) -> Vec<Figure> {
    let store = MemoryProvider::new();
    let (rt_a, node_a) = node_on(cores.a);
    let (rt_b, node_b) = node_on(cores.b);
    let (rt_c, node_c) = node_on(cores.a);
    let b = Cluster::builder("perf-client")
        .member_id("b")
        .grain::<Echo, _>(protocol(), |_: &str| Echo(0))
        .join(&node_b, store.clone())
        .expect("b joins");
    let a = Cluster::builder("perf-client").member_id("a").join(&node_a, store.clone()).expect("a joins");
    let client = ClusterClient::builder("perf-client").connect(&node_c, store).expect("the client connects");
    assert!(client.wait_for(Duration::from_secs(10), |v| v.member_ids() == ["a", "b"]));
    let (from_member, from_client) = (a.grain::<Echo>("echo-1"), client.grain::<Echo>("echo-1"));
    let c = client.clone();
    let asker = std::thread::spawn(move || {
        pin(cores.a);
        let p = Ping { data: bytes::Bytes::from(vec![7u8; 64]) };
        let before = c.stats().membership_requests;
        let (mut member, mut client) = (Histogram::<u64>::new(3).unwrap(), Histogram::<u64>::new(3).unwrap());
        let mut client_total = Duration::ZERO;
        const ROUNDS: u64 = 20;
        for round in 0..ROUNDS {
            // Each goes first in every other round.
            for client_now in [round % 2 == 1, round % 2 == 0] {
                let g = if client_now { &from_client } else { &from_member };
                let (t, h) = timed_asks(n / ROUNDS, || assert_eq!(ask(g, &p).data.len(), 64));
                if client_now {
                    client.add(&h).unwrap();
                    client_total += t;
                } else {
                    member.add(&h).unwrap();
                }
            }
        }
        (client_total, member, client, c.stats().membership_requests - before)
    });
    let (total, member, h, lookups) = asker.join().unwrap();
    drop((client, a, b));
    for node in [&node_a, &node_b, &node_c] {
        node.shutdown();
    }
    drop((rt_a, rt_b, rt_c));
    let name = "client-grain-ask";
    let mut v = vec![
        fig(name, "ns_per_roundtrip", total.as_nanos() as f64 / n as f64, "ns"),
        fig(name, "store_requests_per_msg", lookups as f64 / n as f64, "req"),
    ];
    v.extend(percentiles(name, &h));
    for (q, at) in [("p50", 0.5), ("p99", 0.99)] {
        let ratio = h.value_at_quantile(at) as f64 / member.value_at_quantile(at).max(1) as f64;
        v.push(fig(name, &format!("{q}_x_member"), ratio, "ratio"));
    }
    v
}

/// `n` timed asks of grain `g` from a thread on core a: round trip, percentiles, and the store
/// requests (as `requests` counts them) made meanwhile per message.
fn grain_asks(
    name: &'static str,
    g: GrainRef,
    cores: Cores,
    n: u64,
    requests: impl Fn() -> u64 + Send + 'static,
) -> Vec<Figure> {
    let asker = std::thread::spawn(move || {
        pin(cores.a);
        let p = Ping { data: bytes::Bytes::from(vec![7u8; 64]) };
        let before = requests();
        let (total, h) = timed_asks(n, || assert_eq!(ask(&g, &p).data.len(), 64));
        (total, h, requests() - before)
    });
    let (total, h, lookups) = asker.join().unwrap();
    let mut v = vec![
        fig(name, "ns_per_roundtrip", total.as_nanos() as f64 / n as f64, "ns"),
        fig(name, "store_requests_per_msg", lookups as f64 / n as f64, "req"),
    ];
    v.extend(percentiles(name, &h));
    v
}

pub(crate) fn named_ask(cores: Cores, n: u64) -> Vec<Figure> {
    let store = MemoryProvider::new();
    let (rt_a, node_a) = node_on(cores.a);
    let (rt_b, node_b) = node_on(cores.b);
    node_b.register_kind("perf-echo", protocol(), || crate::remote::Echo(0));
    let b = Cluster::builder("perf-named").member_id("b").join(&node_b, store.clone()).expect("b joins");
    let a = Cluster::builder("perf-named").member_id("a").join(&node_a, store).expect("a joins");
    assert!(a.wait_for(Duration::from_secs(10), |v| v.member_ids() == ["a", "b"]));
    a.spawn_named("echo", "perf-echo").timeout(Duration::from_secs(10)).wait().expect("spawned on b");
    let echo = a.actor_of("echo").expect("a's registry has it");
    let asker = {
        let a = a.clone();
        std::thread::spawn(move || {
            pin(cores.a);
            let p = Ping { data: bytes::Bytes::from(vec![7u8; 64]) };
            let before = a.stats();
            let (total, h) = timed_asks(n, || {
                let r: Ping = echo.ask(&p).timeout(Duration::from_secs(10)).wait().expect("named ask");
                assert_eq!(r.data.len(), 64);
            });
            (total, h, a.stats().membership_requests - before.membership_requests)
        })
    };
    let (total, h, lookups) = asker.join().unwrap();
    drop((a, b));
    for node in [&node_a, &node_b] {
        node.shutdown();
    }
    drop((rt_a, rt_b));
    let mut v = vec![
        fig("named-ask", "ns_per_roundtrip", total.as_nanos() as f64 / n as f64, "ns"),
        fig("named-ask", "store_requests_per_msg", lookups as f64 / n as f64, "req"),
    ];
    v.extend(percentiles("named-ask", &h));
    v
}

pub(crate) fn grain_tell(cores: Cores, n: u64) -> Vec<Figure> {
    let pair = pair(cores);
    let g = pair.a.grain::<Echo>("counter-1");
    let p = Payload { data: bytes::Bytes::from(vec![7u8; 64]) };
    let t = Duration::from_secs(30);
    let elapsed = on_core(cores.a, || {
        windowed_tells(
            n,
            || g.tell(&p).expect("tell"),
            || g.ask::<_, Count>(&Count { n: 0 }).timeout(t),
            |ask| ask.wait().expect("count").n,
        )
    });
    vec![fig("grain-tell", "msgs_per_sec", n as f64 / elapsed.as_secs_f64(), "msg/s")]
}

pub(crate) fn grain_activate(cores: Cores, n: u64) -> Vec<Figure> {
    let pair = pair(cores);
    let a = pair.a.clone();
    let asker = std::thread::spawn(move || {
        pin(cores.a);
        let p = Ping { data: bytes::Bytes::from(vec![7u8; 64]) };
        for i in 0..n / 10 {
            ask(&a.grain::<Echo>(format!("warm-up-{i}")), &p);
        }
        let mut h = Histogram::<u64>::new(3).unwrap();
        for i in 0..n {
            let g = a.grain::<Echo>(format!("cold-{i}"));
            let t0 = Instant::now();
            ask(&g, &p);
            h.record(t0.elapsed().as_nanos() as u64).unwrap();
        }
        h
    });
    let h = asker.join().unwrap();
    percentiles("grain-activate", &h)
}

pub(crate) fn grain_memory(n: u64) -> Vec<Figure> {
    let bytes = child_reading("--child-grain-memory", n);
    vec![
        fig("grain-memory", "bytes_per_grain", bytes / n as f64, "B"),
        fig("grain-memory", "grains", n as f64, "grains"),
    ]
}

enum ActivatorMsg {
    /// Activates grains `from..to`.
    Activate { from: u64, to: u64, done: Reply<()> },
}

/// Activates grains from its shard (as grains usually are: by messages that arrive there).
struct Activator(Cluster);
impl Actor for Activator {
    type Msg = ActivatorMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, msg: ActivatorMsg) -> Result<(), ActorError> {
        let ActivatorMsg::Activate { from, to, done } = msg;
        let p = Payload { data: bytes::Bytes::new() };
        for i in from..to {
            self.0.grain::<Echo>(format!("idle-{i}")).tell(&p).expect("tell");
        }
        done.send(());
        Ok(())
    }
}

/// The child's side: one member on one shard, `n` idle grains activated; prints the resident
/// memory growth.
pub(crate) fn grain_memory_child(cores: Cores, n: u64) {
    let (rt, node) = node_on(cores.b);
    let c = Cluster::builder("perf-memory")
        .member_id("only")
        .grain::<Echo, _>(protocol(), |_: &str| Echo(0))
        .join(&node, MemoryProvider::new())
        .expect("joins");
    let c2 = c.clone();
    let act = rt.spawn(move || Activator(c2.clone())).expect("activator");
    // A few thousand at a time, each batch handled before the next is sent (as when messages
    // come from the network: the hosts' mailboxes stay short, and what is measured is the
    // grains, not messages in flight).
    let run = |from: u64, to: u64| {
        for start in (from..to).step_by(4096) {
            let end = to.min(start + 4096);
            act.ask(|done| ActivatorMsg::Activate { from: start, to: end, done })
                .timeout(Duration::from_secs(60))
                .wait()
                .expect("activated");
            let settle = Instant::now() + Duration::from_secs(60);
            while (c.stats().activations as u64) < end && Instant::now() < settle {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    };
    run(0, 1000);
    let before = resident_bytes();
    let t = Instant::now();
    // Every activation stays live (none passivated: the idle timeout is minutes).
    run(1000, n + 1000);
    let live = c.stats().activations as u64;
    let after = resident_bytes();
    assert!(live >= n, "{live} of {n} grains live");
    eprintln!("activated {n} grains in {:?}", t.elapsed());
    println!("{}", after.saturating_sub(before));
    std::process::exit(0);
}
