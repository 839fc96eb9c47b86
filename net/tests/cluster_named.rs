//! Named actors across the cluster, in one process: three members on the in-memory store
//! (the registry behaves as etcd's, checked in `cluster_registry.rs`). Unique names under
//! concurrent spawns from every member, placement by strategy and role, lookups from each
//! member's copy of the registry, names freed with their host, named actors relocated when
//! their host leaves or its lease ends.

mod common;

use common::members::{self, Member};
use common::{account_protocol, Account, AccountMsg, Balance, Deposit, GetBalance};
use corelane_net::cluster::{Cluster, MemoryProvider, Placement};
use corelane_net::{ErrorCode, Node, RemoteAskError, RemoteRef, RemoteSendError};
use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// A member whose node registered the actor kind "account" (unless `hosts` is false), with
/// `roles`.
fn member(store: &MemoryProvider, id: &str, hosts: bool, roles: &[&str]) -> Member {
    let setup = |node: &Node| {
        node.serve(account_protocol());
        if hosts {
            node.register_kind("account", account_protocol(), Account::default);
        }
    };
    members::join(store, "named", id, setup, |b| b.roles(roles.iter().copied()))
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
            // The name is claimed (its host known) before the actor's id is recorded with it:
            // wait for both.
            let found =
                || m.cluster.host_of(&name) == host && host.is_some() && m.cluster.actor_of(&name).is_some();
            assert!(until(found), "round {round}");
            let acc = m.cluster.actor_of(&name).expect("found");
            acc.tell(&Deposit { amount: 1, ..Default::default() }).unwrap();
            let b: Balance = acc.ask(&GetBalance {}).timeout(T).wait().expect("the named actor answers");
            assert_eq!(b.amount, i as u64 + 1, "round {round}: one actor got every deposit");
        }
    }
}

/// A member that spawned a named actor on another member finds it in its own copy of the
/// registry as soon as the spawn returns (the store's watch may lag behind the host's answer).
#[test]
fn a_member_that_spawned_a_named_actor_elsewhere_finds_it_as_soon_as_the_spawn_returns() {
    let store = MemoryProvider::new();
    let ms = three(&store, [&["risk"], &[], &["risk"]]);
    // Every member's watch runs behind the store, as etcd's can.
    store.set_watch_lag(Duration::from_millis(50));
    for i in 0..10 {
        let name = format!("ryw-{i}");
        let r = ms[1].cluster.spawn_named(&name, "account").role("risk").timeout(T).wait().expect("spawned");
        let host = ms[1].cluster.host_of(&name);
        assert!(matches!(host.as_deref(), Some("a" | "c")), "spawn {i}: the spawner sees its host: {host:?}");
        let found = ms[1].cluster.actor_of(&name).expect("the spawner finds it");
        assert_eq!(found.id(), r.id(), "spawn {i}: the actor the spawn returned");
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
    ms[0]
        .cluster
        .spawn_named("book", "account")
        .placement(Placement::Local)
        .relocate(false)
        .timeout(T)
        .wait()
        .unwrap();
    // Claimed first (exists), then completed with its actor (found).
    assert!(until(|| ms[2].cluster.actor_of("book").is_some()));

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

/// The names whose host is `id`, as member `m` sees them.
fn hosted_by(m: &Cluster, names: &[String], id: &str) -> Vec<String> {
    // A name is claimed, its host known, before the actor's id is recorded with it: count the
    // ones this member can address.
    names.iter().filter(|n| m.host_of(n).as_deref() == Some(id) && m.actor_of(n).is_some()).cloned().collect()
}

#[test]
fn named_actors_of_a_host_that_leaves_or_expires_come_back_on_survivors_and_stopped_ones_do_not() {
    let store = MemoryProvider::new();
    let ms = three(&store, [&[], &[], &[]]);
    let desks: Vec<String> = (0..30).map(|i| format!("desk-{i:02}")).collect();
    for d in &desks {
        ms[1].cluster.spawn_named(d, "account").placement(Placement::Local).timeout(T).wait().unwrap();
    }
    ms[1]
        .cluster
        .spawn_named("fixed", "account")
        .placement(Placement::Local)
        .relocate(false)
        .timeout(T)
        .wait()
        .unwrap();
    let retired = ms[1]
        .cluster
        .spawn_named("retired", "account")
        .placement(Placement::Local)
        .timeout(T)
        .wait()
        .unwrap();
    retired.stop().timeout(T).wait().expect("stopped");
    assert!(until(|| !ms[0].cluster.actor_exists("retired") && ms[0].cluster.actor_exists("fixed")));
    assert!(until(|| hosted_by(&ms[0].cluster, &desks, "b").len() == 30));
    let before: Vec<_> = desks.iter().map(|d| ms[0].cluster.actor_of(d).unwrap()).collect();
    for (d, r) in desks.iter().zip(&before) {
        r.tell(&Deposit { amount: 7, ..Default::default() }).unwrap();
        let b: Balance = r.ask(&GetBalance {}).timeout(T).wait().unwrap();
        assert_eq!(b.amount, 7, "{d}");
    }

    // b leaves: its relocatable named actors come back on a and c, spread between them, each
    // a fresh actor (state is not carried) that answers.
    assert!(ms[1].cluster.leave(T));
    let m = &ms[0].cluster;
    assert!(until(|| hosted_by(m, &desks, "a").len() + hosted_by(m, &desks, "c").len() == 30));
    let (on_a, on_c) = (hosted_by(m, &desks, "a"), hosted_by(m, &desks, "c"));
    assert!(on_a.len() >= 5 && on_c.len() >= 5, "spread over the survivors: a {on_a:?}, c {on_c:?}");
    for (d, old) in desks.iter().zip(&before) {
        let r = m.actor_of(d).unwrap();
        assert_ne!(r, *old, "{d} is a new actor");
        let b: Balance = r.ask(&GetBalance {}).timeout(T).wait().expect("relocated and answering");
        assert_eq!(b.amount, 0, "{d}");
    }
    let relocated = |ms: &[Member]| ms.iter().map(|m| m.cluster.stats().relocated).sum::<u64>();
    assert_eq!(relocated(&ms), 30, "each desk was spawned again once");
    // Neither the one spawned without relocation nor the one stopped for good came back.
    assert!(!m.actor_exists("fixed") && !m.actor_exists("retired"));
    assert!(!ms[2].cluster.actor_exists("fixed") && !ms[2].cluster.actor_exists("retired"));

    // c's lease ends (as when its process dies): its share comes back too (on a, or on c once
    // it has joined again under a new lease).
    // Each of c's is a third actor: neither b's first one nor the one c spawned after b left
    // (until the registry says so, this member still sees the latter).
    let moved: Vec<(String, RemoteRef)> = on_c.iter().map(|d| (d.clone(), m.actor_of(d).unwrap())).collect();
    store.expire("named", "c");
    assert!(until(|| moved.iter().all(|(d, second)| {
        m.actor_of(d).is_some_and(|r| r != *second && before.iter().all(|o| *o != r))
    })));
    assert!(until(|| relocated(&ms) == 30 + moved.len() as u64), "each of c's spawned again once");
    for (d, _) in &moved {
        let r = m.actor_of(d).unwrap();
        let b: Balance = r.ask(&GetBalance {}).timeout(T).wait().expect("relocated again and answering");
        assert_eq!(b.amount, 0, "{d}");
    }
}

#[test]
fn a_singleton_asked_for_by_every_member_runs_once_and_moves_when_its_host_leaves() {
    let store = MemoryProvider::new();
    let ms = Arc::new(three(&store, [&["risk"], &["risk"], &[]]));
    let start = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (ms, start) = (ms.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                ms[i].cluster.spawn_singleton("monitor", "account").role("risk").timeout(T).wait()
            })
        })
        .collect();
    let refs: Vec<_> =
        threads.into_iter().map(|t| t.join().unwrap().expect("each gets the singleton")).collect();
    assert!(refs.iter().all(|r| *r == refs[0]), "one singleton for all: {refs:?}");
    let host = ms[0].cluster.host_of("monitor").expect("registered");
    assert!(host == "a" || host == "b", "a member with the role hosts it: {host}");
    assert!(until(|| ms.iter().filter(|m| m.cluster.is_host_of("monitor")).count() == 1));
    // One actor behind every reference (each sender's tell is ordered before its own ask).
    for (i, r) in refs.iter().enumerate() {
        r.tell(&Deposit { amount: 1, ..Default::default() }).unwrap();
        let b: Balance = r.ask(&GetBalance {}).timeout(T).wait().unwrap();
        assert_eq!(b.amount, i as u64 + 1);
    }

    // Its host leaves: the other member with the role runs it (not c, which lacks the role).
    let (leaver, other) = if host == "a" { (0, "b") } else { (1, "a") };
    assert!(ms[leaver].cluster.leave(T));
    let m = &ms[2].cluster;
    assert!(until(|| m.host_of("monitor").as_deref() == Some(other)));
    let r = m.actor_of("monitor").unwrap();
    let b: Balance = r.ask(&GetBalance {}).timeout(T).wait().expect("moved and answering");
    assert_eq!(b.amount, 0);
    // Asked for again, it is the one that runs.
    let again = m.spawn_singleton("monitor", "account").role("risk").timeout(T).wait().unwrap();
    assert_eq!(again, r);
}

#[test]
fn a_named_actor_is_reached_by_name_with_typed_messages_wherever_it_runs_and_after_it_moved() {
    let store = MemoryProvider::new();
    let ms = three(&store, [&[], &[], &[]]);
    let (a, b, c) = (&ms[0].cluster, &ms[1].cluster, &ms[2].cluster);
    // An ask by a name nobody holds yet waits for it (within its timeout) and is then sent.
    let early = a.named::<AccountMsg>("vault").ask(&GetBalance {}).timeout(T);
    b.spawn_named("vault", "account").placement(Placement::Local).timeout(T).wait().unwrap();
    assert_eq!(early.wait().expect("answered once the name was held").amount, 0);

    let vault = a.named::<AccountMsg>("vault");
    for seq in 1..=10 {
        vault.tell(&Deposit { amount: 1, from: 0, seq }).unwrap();
    }
    vault
        .batch_tell(&[Deposit { amount: 1, from: 0, seq: 11 }, Deposit { amount: 1, from: 0, seq: 12 }])
        .unwrap();
    // The answer's type comes from `AccountMsg: Answers<GetBalance>`.
    let balance = vault.ask(&GetBalance {}).timeout(T).wait().unwrap();
    assert_eq!((balance.amount, balance.deposits, balance.out_of_order), (12, 12, 0));
    let both = vault.batch_ask(&[GetBalance {}, GetBalance {}]).timeout(T).wait();
    assert!(both.iter().all(|b| b.as_ref().is_ok_and(|b| b.amount == 12)), "{both:?}");
    // The untyped one-off forms, from another member.
    c.send("vault", &Deposit { amount: 5, from: 1, seq: 1 }).unwrap();
    let balance: Balance = c.request("vault", &GetBalance {}, T).wait().unwrap();
    assert_eq!(balance.amount, 17);
    // A name nobody holds: a tell fails at once, an ask when its timeout ends.
    let unreachable = || {
        a.node()
            .runtime()
            .metrics()
            .dead_letters_for(corelane::DeadLetterReason::Remote(corelane::RemoteReason::Unreachable))
    };
    let dead = unreachable();
    assert!(matches!(a.send("nobody", &Deposit::default()), Err(RemoteSendError::Unavailable { .. })));
    assert_eq!(unreachable(), dead + 1, "counted");
    let r = a.request::<_, Balance>("nobody", &GetBalance {}, Duration::from_millis(100)).wait();
    assert_eq!(r, Err(RemoteAskError::Timeout));

    // b leaves; the same reference reaches the vault on its new member (a fresh actor).
    let old = a.actor_of("vault").unwrap();
    assert!(b.leave(T));
    assert!(until(|| a.actor_of("vault").is_some_and(|r| r != old)));
    let balance = vault.ask(&GetBalance {}).timeout(T).wait().expect("answered where it runs now");
    assert_eq!(balance.amount, 0);
    vault.tell(&Deposit { amount: 3, from: 9, seq: 1 }).unwrap();
    assert_eq!(vault.ask(&GetBalance {}).timeout(T).wait().unwrap().amount, 3);
}

#[test]
fn an_ask_by_name_that_reached_an_actor_already_gone_is_sent_to_the_next_holder() {
    let store = MemoryProvider::new();
    let ms = three(&store, [&[], &[], &[]]);
    let (a, b) = (&ms[0].cluster, &ms[1].cluster);
    let first = b.spawn_named("clerk", "account").placement(Placement::Local).timeout(T).wait().unwrap();
    assert!(until(|| a.actor_of("clerk").is_some()));
    let gone = a.actor_of("clerk").unwrap();
    // The store is away for a moment: the clerk stops, but its name cannot be given back, so
    // a still sees it where it was. An ask by name reaches b, which no longer has the actor
    // (unknown target: not handled), and waits for the name's next holder.
    store.set_available(false);
    first.stop().timeout(T).wait().unwrap();
    let retries = a.stats().retries;
    let ask = a.named::<AccountMsg>("clerk").ask(&GetBalance {}).timeout(T);
    assert!(until(|| a.stats().retries > retries), "the ask found the actor gone");
    assert_eq!(a.actor_of("clerk"), Some(gone.clone()), "a still sees the stopped one");
    store.set_available(true);
    // b's lease ends (as when its process dies): its names go, and the clerk (relocatable, its
    // stop never reached the store) is spawned again on a survivor, which gets the ask.
    store.expire("named", "b");
    assert_eq!(ask.wait().expect("answered by the next holder").amount, 0);
    assert!(a.actor_of("clerk").is_some_and(|r| r != gone));
}
