//! Named actors against a real etcd with members in real processes (the `cluster` example,
//! which registers the actor kind `desk`): one winner among concurrent spawns of a name from
//! three processes; relocation after a SIGKILL and after a graceful leave. This test process
//! joins as a member that hosts nothing and finds the actors through its copy of the registry.
#![cfg(feature = "etcd")]

mod common;

use common::grains::{Count, Get};
use common::processes::{Etcd, MemberProcess};
use corelane::Runtime;
use corelane_net::cluster::{Cluster, EtcdProvider};
use corelane_net::Node;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL_MS: u64 = 2000;
const WAIT: Duration = Duration::from_secs(30);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Setup {
    members: Vec<MemberProcess>,
    client: Cluster,
    _node: Node,
    _rt: Runtime,
    _etcd: Etcd,
}

fn setup(name: &str) -> Setup {
    let etcd = Etcd::start();
    let members: Vec<MemberProcess> =
        ["a", "b", "c"].iter().map(|id| MemberProcess::start(&etcd, name, id, TTL_MS, None)).collect();
    let rt = common::runtime();
    let node = common::node(&rt);
    let client = Cluster::builder(name)
        .ttl(Duration::from_millis(TTL_MS))
        .member_id("client")
        .join(&node, EtcdProvider::new([etcd.endpoint()]))
        .expect("the client joins");
    assert!(client.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c", "client"]), "all four registered");
    Setup { members, client, _node: node, _rt: rt, _etcd: etcd }
}

/// Asks named actor `name` where it runs (it answers with its member).
fn ask(c: &Cluster, name: &str) -> Option<Count> {
    c.actor_of(name)?.ask::<Get, Count>(&Get {}).timeout(Duration::from_secs(2)).wait().ok()
}

/// Waits until every one of `names` answers from a member other than `gone`.
fn all_answer_elsewhere(c: &Cluster, names: &[String], gone: &str) {
    let deadline = Instant::now() + WAIT;
    for n in names {
        loop {
            assert!(Instant::now() < deadline, "{n} never answered again away from {gone}");
            // The registry names a new host first; then it answers.
            if c.host_of(n).is_some_and(|h| h != gone) && ask(c, n).is_some_and(|a| a.member != gone) {
                break;
            }
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }
}

#[test]
fn concurrent_spawns_of_one_name_from_three_processes_leave_exactly_one() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = setup("named-race");
    for round in 0..5 {
        let name = format!("ledger-{round}");
        for m in &mut s.members {
            m.command(&format!("race {name}")).expect("command sent");
        }
        let answers: Vec<String> =
            s.members.iter_mut().map(|m| m.expect("race ").expect("each process answers")).collect();
        let won = answers.iter().filter(|a| *a == "race won").count();
        assert_eq!(won, 1, "round {round}: exactly one spawn wins: {answers:?}");
        assert!(
            answers.iter().filter(|a| *a != "race won").all(|a| a == "race refused NameTaken"),
            "round {round}: the others are told the name is taken: {answers:?}"
        );
        let deadline = Instant::now() + WAIT;
        while ask(&s.client, &name).is_none() {
            assert!(Instant::now() < deadline, "round {round}: the winner answers");
        }
    }
}

#[test]
fn named_actors_come_back_on_survivors_after_a_sigkill_and_after_a_leave() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = setup("named-move");
    let names: Vec<String> = (0..200).map(|i| format!("desk-{i}")).collect();
    let spawned = s.members[0].ask("spawn desk- 0 200", "spawned ").expect("spawned");
    assert!(spawned.starts_with("spawned 200 0 "), "{spawned}");
    let deadline = Instant::now() + WAIT;
    while !names.iter().all(|n| s.client.host_of(n).as_deref() == Some("a")) {
        assert!(Instant::now() < deadline, "the client sees all 200 on a");
    }
    for n in names.iter().take(5) {
        assert_eq!(ask(&s.client, n).expect("answers").member, "a");
    }

    // SIGKILL: a's lease ends after the TTL, its names go, b and c spawn them again.
    let killed = Instant::now();
    s.members[0].kill();
    all_answer_elsewhere(&s.client, &names, "a");
    eprintln!("200 named actors of a killed member answered again after {:?}", killed.elapsed());
    let on_b: Vec<String> =
        names.iter().filter(|n| s.client.host_of(n).as_deref() == Some("b")).cloned().collect();
    assert!(on_b.len() >= 50 && on_b.len() <= 150, "spread over b and c: {} on b", on_b.len());
    let relocated = |m: &mut MemberProcess| m.stat("relocated").parse::<u64>().unwrap();
    let (rb, rc) = (relocated(&mut s.members[1]), relocated(&mut s.members[2]));
    assert_eq!(rb + rc, 200, "each spawned again once (b {rb}, c {rc})");

    // Graceful leave: b's actors stop, then c spawns them again.
    assert!(s.members[1].leave(), "b left");
    all_answer_elsewhere(&s.client, &on_b, "b");
    assert!(names.iter().all(|n| s.client.host_of(n).as_deref() == Some("c")));
    assert_eq!(relocated(&mut s.members[2]), rc + on_b.len() as u64);
}
