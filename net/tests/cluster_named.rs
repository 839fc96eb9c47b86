//! Named actors across the cluster, in one process: three members on the in-memory store
//! (the registry behaves as etcd's, checked in `cluster_registry.rs`). Unique names under
//! concurrent spawns from every member, placement by strategy and role, lookups from each
//! member's copy of the registry, names freed with their host.

mod common;

use common::{account_protocol, Account, Balance, Deposit, GetBalance};
use corelane::Runtime;
use corelane_net::cluster::{Cluster, MemoryProvider, Placement};
use corelane_net::{ErrorCode, Node, RemoteAskError};
use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

struct Member {
    cluster: Cluster,
    _node: Node,
    _rt: Runtime,
}

/// A member whose node registered the actor kind "account" (unless `hosts` is false), with
/// `roles`.
fn member(store: &MemoryProvider, id: &str, hosts: bool, roles: &[&str]) -> Member {
    let rt = common::runtime();
    let node = common::node(&rt);
    node.serve(account_protocol());
    if hosts {
        node.register_kind("account", account_protocol(), Account::default);
    }
    let cluster = Cluster::builder("named")
        .ttl(Duration::from_secs(2))
        .member_id(id)
        .roles(roles.iter().copied())
        .join(&node, store.clone())
        .expect("join");
    Member { cluster, _node: node, _rt: rt }
}

fn three(store: &MemoryProvider, roles: [&[&str]; 3]) -> Vec<Member> {
    let ms: Vec<Member> =
        ["a", "b", "c"].iter().zip(roles).map(|(id, r)| member(store, id, true, r)).collect();
    for m in &ms {
        assert!(m.cluster.wait_for(T, |v| v.member_ids() == ["a", "b", "c"]));
    }
    ms
}

/// Waits for `cond`, checking every millisecond, at most `T`.
fn until(cond: impl Fn() -> bool) -> bool {
    common::until(T, cond)
}

#[test]
fn concurrent_spawns_of_one_name_from_every_member_leave_exactly_one() {
    let store = MemoryProvider::new();
    let ms = Arc::new(three(&store, [&[], &[], &[]]));
    for round in 0..5 {
        let name = format!("ledger-{round}");
        let start = Arc::new(Barrier::new(6));
        // Two spawns from each member, each placed on a member chosen by its own strategy.
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let (ms, start, name) = (ms.clone(), start.clone(), name.clone());
                std::thread::spawn(move || {
                    let p = [Placement::Local, Placement::RoundRobin, Placement::Random][i % 3];
                    start.wait();
                    ms[i / 2].cluster.spawn_named(name, "account").placement(p).timeout(T).wait()
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one spawn wins: {outcomes:?}");
        for o in &outcomes {
            if let Err(e) = o {
                assert!(
                    matches!(e, RemoteAskError::Refused { code: ErrorCode::NameTaken, .. }),
                    "round {round}: the others are told the name is taken: {e}"
                );
            }
        }
        // Every member finds the one actor (the host itself too), and it serves: each member's
        // deposit, then its ask (ordered after it: same sender), sees the earlier ones.
        let host = ms[0].cluster.host_of(&name);
        for (i, m) in ms.iter().enumerate() {
            assert!(until(|| m.cluster.host_of(&name) == host && host.is_some()), "round {round}");
            let acc = m.cluster.actor_of(&name).expect("found");
            acc.tell(&Deposit { amount: 1, ..Default::default() }).unwrap();
            let b: Balance = acc.ask(&GetBalance {}).timeout(T).wait().expect("the named actor answers");
            assert_eq!(b.amount, i as u64 + 1, "round {round}: one actor got every deposit");
        }
    }
}

#[test]
fn placement_follows_the_strategy_and_the_role() {
    let store = MemoryProvider::new();
    let ms = three(&store, [&["risk"], &[], &["risk"]]);
    // Round-robin takes the candidates in turn; a role narrows them.
    let mut hosts: HashMap<String, usize> = HashMap::new();
    for i in 0..6 {
        let name = format!("rr-{i}");
        ms[1].cluster.spawn_named(&name, "account").role("risk").timeout(T).wait().expect("spawned");
        *hosts.entry(ms[1].cluster.host_of(&name).expect("registered")).or_default() += 1;
    }
    assert_eq!(hosts, HashMap::from([("a".to_string(), 3), ("c".to_string(), 3)]), "risk members in turn");

    // Least load picks the member hosting the fewest: b (none yet), then spreads evenly.
    ms[0].cluster.spawn_named("ll-0", "account").placement(Placement::LeastLoad).timeout(T).wait().unwrap();
    assert_eq!(ms[0].cluster.host_of("ll-0").as_deref(), Some("b"));
    for i in 1..7 {
        let m = &ms[i % 3].cluster;
        // Each member's copy of the registry has every earlier spawn before the next choice.
        assert!(until(|| (0..i).all(|j| m.actor_exists(&format!("ll-{j}")))));
        m.spawn_named(format!("ll-{i}"), "account")
            .placement(Placement::LeastLoad)
            .timeout(T)
            .wait()
            .unwrap();
    }
    let mut load: HashMap<String, usize> = HashMap::new();
    for i in 0..7 {
        *load.entry(ms[0].cluster.host_of(&format!("ll-{i}")).unwrap_or_default()).or_default() += 1;
    }
    // 6 round-robin (a, c) + 7 least-load: 13 over three members, at most one apart.
    let total = |id: &str| hosts.get(id).copied().unwrap_or(0) + load.get(id).copied().unwrap_or(0);
    let (most, least) = (
        ["a", "b", "c"].map(total).into_iter().max().unwrap(),
        ["a", "b", "c"].map(total).into_iter().min().unwrap(),
    );
    assert!(most - least <= 1, "least load evens them out: {hosts:?} + {load:?}");

    // Local: on the caller, which must be a candidate.
    ms[1].cluster.spawn_named("here", "account").placement(Placement::Local).timeout(T).wait().unwrap();
    assert_eq!(ms[1].cluster.host_of("here").as_deref(), Some("b"));
    let e = ms[1]
        .cluster
        .spawn_named("there", "account")
        .role("risk")
        .placement(Placement::Local)
        .timeout(T)
        .wait();
    assert!(matches!(e, Err(RemoteAskError::Refused { code: ErrorCode::UnknownKind, .. })), "{e:?}");
    let e = ms[0].cluster.spawn_named("nothing", "missile").timeout(T).wait();
    assert!(matches!(e, Err(RemoteAskError::Refused { code: ErrorCode::UnknownKind, .. })), "{e:?}");
    assert_eq!(ms[2].cluster.kinds(), ["account"]);
}

#[test]
fn a_hosts_names_free_themselves_when_it_goes_and_lookups_cost_no_store_request() {
    let store = MemoryProvider::new();
    let ms = three(&store, [&[], &[], &[]]);
    ms[0].cluster.spawn_named("book", "account").placement(Placement::Local).timeout(T).wait().unwrap();
    assert!(until(|| ms[2].cluster.actor_exists("book")));

    // Steady lookups and messages: no store request (the registry is followed, not asked).
    let before = ms[2].cluster.stats().membership_requests;
    for _ in 0..1000 {
        ms[2].cluster.actor_of("book").unwrap().tell(&Deposit { amount: 1, ..Default::default() }).unwrap();
    }
    let b: Balance = ms[2].cluster.actor_of("book").unwrap().ask(&GetBalance {}).timeout(T).wait().unwrap();
    assert_eq!(b.amount, 1000);
    assert_eq!(ms[2].cluster.stats().membership_requests, before, "no store request per message");

    // Its host's lease ends: the name is free on every member, and can be taken again; the
    // actor that held it stopped (no orphan keeps running beside the next holder).
    let old = ms[2].cluster.actor_of("book").unwrap();
    store.expire("named", "a");
    assert!(until(|| !ms[1].cluster.actor_exists("book") && !ms[2].cluster.actor_exists("book")));
    assert!(
        until(|| old.ask::<_, Balance>(&GetBalance {}).timeout(T).wait().is_err()),
        "the old holder stopped with its name"
    );
    ms[1]
        .cluster
        .spawn_named("book", "account")
        .placement(Placement::Local)
        .timeout(T)
        .wait()
        .expect("free again");
    assert!(until(|| ms[2].cluster.host_of("book").as_deref() == Some("b")));
}

#[test]
fn a_named_actor_that_stops_gives_its_name_back() {
    let store = MemoryProvider::new();
    let ms = three(&store, [&[], &[], &[]]);
    let acc =
        ms[0].cluster.spawn_named("desk", "account").placement(Placement::Local).timeout(T).wait().unwrap();
    assert!(until(|| ms[1].cluster.actor_exists("desk")));
    acc.stop().timeout(T).wait().expect("stopped");
    assert!(until(|| !ms[1].cluster.actor_exists("desk")), "the name is released once it stopped");
    ms[1].cluster.spawn_named("desk", "account").timeout(T).wait().expect("the name is free again");
}
