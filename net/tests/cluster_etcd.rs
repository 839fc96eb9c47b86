//! The cluster against a real etcd (started by `scripts/etcd.sh run`) with members in real
//! processes (the `cluster` example), frozen with SIGSTOP and killed with SIGKILL. This test
//! process joins as one more member that hosts no grains (a client), and every grain
//! activation and handled message is written to a ledger per member, checked for overlaps.
//! The tests run one at a time (each starts its own etcd and three processes).

mod common;

use common::grains::{Add, Count, Counter, Get, Park};
use common::ledger;
use common::processes::{Etcd, MemberProcess};
use corelane::Runtime;
use corelane_net::cluster::Cluster;
use corelane_net::{ErrorCode, Node, RemoteAskError};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TTL_MS: u64 = 2000;
const WAIT: Duration = Duration::from_secs(30);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Setup {
    members: Vec<MemberProcess>,
    client: Cluster,
    ledgers: Vec<PathBuf>,
    _node: Node,
    _rt: Runtime,
    // Last: etcd stops after the members.
    etcd: Etcd,
}

fn setup(name: &str) -> Setup {
    setup_with(name, corelane_net::RemoteConfig::dev())
}

fn setup_with(name: &str, remote: corelane_net::RemoteConfig) -> Setup {
    let etcd = Etcd::start();
    let (members, ledgers) = common::processes::three_members(&etcd, name, TTL_MS);
    let rt = common::runtime();
    let node = common::node_with(&rt, remote);
    let client = common::processes::join_as_client(&etcd, name, &node, TTL_MS);
    assert!(client.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c", "client"]), "all four registered");
    Setup { members, client, ledgers, _node: node, _rt: rt, etcd }
}

impl Setup {
    fn ledger(&self) -> std::collections::HashMap<String, Vec<ledger::Interval>> {
        let paths: Vec<&std::path::Path> = self.ledgers.iter().map(|p| p.as_path()).collect();
        ledger::read(&paths)
    }

    fn assert_no_overlap(&self) {
        let bad = ledger::overlaps(&self.ledger());
        assert!(bad.is_empty(), "overlapping activations: {bad:#?}");
    }

    fn owner(&self, id: &str) -> String {
        self.client.owner_of("counter", id).expect("an owner").id
    }
}

fn ask(c: &Cluster, id: &str) -> Result<Count, RemoteAskError> {
    c.grain::<Counter>(id).ask::<Get, Count>(&Get {}).timeout(Duration::from_secs(5)).wait()
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn joins_and_leaves_are_seen_by_every_member() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = setup("joins");
    let deadline = Instant::now() + WAIT;
    for m in &mut s.members {
        while m.members() != ["a", "b", "c", "client"] {
            assert!(Instant::now() < deadline, "{} sees everyone", m.id);
        }
    }
    assert!(s.members[2].leave());
    assert!(s.client.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "client"]));
    for m in &mut s.members[..2] {
        while m.members() != ["a", "b", "client"] {
            assert!(Instant::now() < deadline, "{} sees c leave", m.id);
        }
    }
}

#[test]
fn grains_activate_once_and_answer_from_their_owner() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("once");
    for i in 0..50 {
        let id = format!("g{i}");
        s.client.grain::<Counter>(&id).tell(&Add { amount: 2 }).unwrap();
        let c = ask(&s.client, &id).unwrap();
        assert_eq!(c.member, s.owner(&id));
        assert_eq!(c.value, 2);
        assert_eq!(ask(&s.client, &id).unwrap().value, 2);
    }
    let ledger = s.ledger();
    assert_eq!(ledger.len(), 50);
    for (id, acts) in &ledger {
        assert_eq!(acts.len(), 1, "{id} activated once: {acts:?}");
        assert_eq!(acts[0].handled, 3, "{id}: one tell and two asks");
    }
    let before = s.client.stats();
    for i in 0..500 {
        ask(&s.client, &format!("g{}", i % 50)).unwrap();
    }
    let after = s.client.stats();
    assert_eq!(
        after.membership_requests, before.membership_requests,
        "500 asks made no etcd request (only lease renewals happened meanwhile)"
    );
    // The provider's own count agrees: whatever it did meanwhile was renewing (one request
    // each, counted when sent; the count of acknowledged renewals may trail by the one in
    // flight).
    let (sent, acked) = (after.store_requests - before.store_requests, after.renewals - before.renewals);
    assert!(sent <= acked + 1 && acked <= sent + 1, "{sent} requests, {acked} renewals");
}

/// Activates `n` grains; those owned by member `victim`.
fn activate_on(s: &Setup, n: usize, victim: &str) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    for id in &ids {
        assert_eq!(ask(&s.client, id).unwrap().member, s.owner(id));
    }
    ids.into_iter().filter(|id| s.owner(id) == victim).collect()
}

/// Asks each grain until it answers from a member other than `gone`; the time it took.
fn answered_elsewhere(s: &Setup, ids: &[String], gone: &str) -> Duration {
    let t = Instant::now();
    for id in ids {
        loop {
            assert!(t.elapsed() < WAIT, "{id} answers again");
            match ask(&s.client, id) {
                Ok(c) if c.member != gone => break,
                _ => {}
            }
        }
    }
    t.elapsed()
}

#[test]
fn after_a_sigkill_the_dead_members_grains_answer_from_the_survivors() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The transport alone would notice the dead node after 30 s: what fails the ask in flight
    // sooner is the member's record going.
    let remote = corelane_net::RemoteConfig {
        dead_after: Duration::from_secs(30),
        ..corelane_net::RemoteConfig::dev()
    };
    let mut s = setup_with("kill", remote);
    let moved = activate_on(&s, 60, "b");
    assert!(!moved.is_empty());
    let in_flight =
        s.client.grain::<Counter>(&moved[0]).ask::<Park, Count>(&Park {}).timeout(Duration::from_secs(25));
    let killed = Instant::now();
    s.members[1].kill();
    assert_eq!(in_flight.wait().unwrap_err(), RemoteAskError::NodeDown);
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "the ask in flight failed when b's record went ({:?})",
        killed.elapsed()
    );
    let took = answered_elsewhere(&s, &moved, "b");
    assert!(took < Duration::from_millis(TTL_MS) * 3, "failover took {took:?}");
    assert!(s.client.wait_for(WAIT, |v| !v.has("b")));
    s.assert_no_overlap();
}

#[test]
fn a_member_frozen_past_its_lease_fences_itself_and_after_thawing_serves_no_grain_that_moved() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = setup("freeze");
    let moved = activate_on(&s, 60, "c");
    assert!(!moved.is_empty());
    // Once every thread of it is stopped: what it handled before then was its to handle.
    s.members[2].freeze();
    let frozen_at = now_nanos();
    answered_elsewhere(&s, &moved, "c");
    assert!(s.client.wait_for(WAIT, |v| !v.has("c")), "its record expired");
    s.members[2].thaw();
    // It rejoins; its old activations handled nothing after the freeze.
    assert!(s.client.wait_for(WAIT, |v| v.has("c")), "it joined again");
    assert!(s.members[2].stat("fenced").parse::<u64>().unwrap() >= 1, "it fenced itself");
    for id in &moved {
        // Moved back (the same member set gives the same table): a new activation there,
        // only after the interim owner released it.
        assert_eq!(ask(&s.client, id).unwrap().member, "c");
    }
    let ledger = s.ledger();
    for (id, acts) in &ledger {
        for a in acts.iter().filter(|a| a.member == "c" && a.start < frozen_at) {
            assert!(
                a.end < frozen_at,
                "{id}: an activation from before the freeze handled a message after it"
            );
        }
    }
    s.assert_no_overlap();
}

#[test]
fn etcd_frozen_for_less_than_the_lease_fences_nothing_and_fails_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = setup("short-outage");
    let ids: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    for id in &ids {
        ask(&s.client, id).unwrap();
    }
    let epoch = s.client.epoch();
    s.etcd.freeze();
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_millis(700) {
        ask(&s.client, &ids[n % ids.len()]).expect("asks go on while etcd is frozen");
        n += 1;
    }
    s.etcd.thaw();
    for m in &mut s.members {
        assert_eq!(m.stat("fenced"), "0", "{} did not fence", m.id);
    }
    assert_eq!(s.client.stats().fenced, 0);
    for id in &ids {
        ask(&s.client, id).unwrap();
    }
    assert_eq!(s.client.epoch(), epoch, "the member set did not change");
    s.assert_no_overlap();
}

#[test]
fn with_etcd_gone_grain_asks_fail_fast_and_recover_when_it_is_back() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = setup("gone");
    ask(&s.client, "x").unwrap();
    s.etcd.kill();
    let t = Instant::now();
    while s.client.is_serving() {
        assert!(t.elapsed() < WAIT, "the client fences itself");
        std::thread::park_timeout(Duration::from_millis(5));
    }
    let t = Instant::now();
    match ask(&s.client, "x") {
        Err(RemoteAskError::Refused { code: ErrorCode::Fenced, detail }) => {
            assert!(detail.contains("membership store"), "a clear error: {detail}")
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_millis(500), "it fails fast ({:?})", t.elapsed());
    s.etcd.restart();
    let t = Instant::now();
    loop {
        assert!(t.elapsed() < WAIT, "asks recover after etcd is back");
        if let Ok(c) = ask(&s.client, "x") {
            assert_eq!(c.member, s.owner("x"));
            break;
        }
    }
    assert!(s.client.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c", "client"]));
    s.assert_no_overlap();
}
