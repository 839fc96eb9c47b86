//! Named actors against a real etcd with members in real processes (the `cluster` example,
//! which registers the actor kind `desk`): one winner among concurrent spawns of a name from
//! three processes; relocation after a SIGKILL and after a graceful leave; a singleton never
//! running twice across a SIGSTOP, a SIGKILL and a leave of its host (every instance writes a
//! ledger, checked for overlaps as the grains' is); placement by role; a cluster cron schedule
//! firing once per second through a SIGSTOP and a SIGKILL of the member running it; a client
//! that is not a member reaching grains in one hop and balancing spawns. This test process joins
//! as a member that hosts nothing (or as a client) and finds the actors through its copy of the
//! registry.
#![cfg(feature = "etcd")]

mod common;

use common::grains::{counter_protocol, desks, Add, Count, Counter, Get};
use common::ledger;
use common::processes::{Etcd, MemberProcess};
use corelane::Runtime;
use corelane_net::cluster::{Cluster, ClusterClient, EtcdProvider, Placement};
use corelane_net::{ErrorCode, Node, RemoteAskError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL_MS: u64 = 2000;
const WAIT: Duration = Duration::from_secs(30);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Setup {
    members: Vec<MemberProcess>,
    ledgers: Vec<std::path::PathBuf>,
    client: Cluster,
    _node: Node,
    _rt: Runtime,
    _etcd: Etcd,
}

fn setup(name: &str) -> Setup {
    let etcd = Etcd::start();
    let (members, ledgers) = common::processes::three_members(&etcd, name, TTL_MS);
    let rt = common::runtime();
    let node = common::node(&rt);
    let client = common::processes::join_as_client(&etcd, name, &node, TTL_MS);
    assert!(client.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c", "client"]), "all four registered");
    Setup { members, ledgers, client, _node: node, _rt: rt, _etcd: etcd }
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

#[test]
fn a_singleton_never_runs_twice_across_a_freeze_a_kill_and_a_leave_of_its_host() {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = setup("singleton");
    // Every member asks for it at start: one runs, and each is told where.
    for m in &mut s.members {
        m.command("singleton risk").expect("command sent");
    }
    let hosts: Vec<String> = s
        .members
        .iter_mut()
        .map(|m| m.expect("singleton ").expect("answer").trim_start_matches("singleton ").to_string())
        .collect();
    assert!(hosts.iter().all(|h| *h == hosts[0]) && !hosts[0].contains("failed"), "{hosts:?}");

    // Load: tell and ask the singleton wherever the registry says it is, all along.
    let answers: Arc<std::sync::Mutex<HashMap<String, u64>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (c, answers, stop) = (s.client.clone(), answers.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Some(r) = c.actor_of("risk") else { continue };
                let _ = r.tell(&Add { amount: 1 });
                if let Ok(a) = r.ask::<Get, Count>(&Get {}).timeout(Duration::from_millis(300)).wait() {
                    *answers.lock().unwrap().entry(a.member).or_default() += 1;
                }
            }
        })
    };
    let answered_by = |id: &str| answers.lock().unwrap().get(id).copied().unwrap_or(0);
    let index = |id: &str| ["a", "b", "c"].iter().position(|x| *x == id).unwrap();
    // Waits until the singleton answers from someone other than `gone`, `n` more times.
    let moved_from = |s: &Setup, gone: &str| -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "the singleton answers again away from {gone}");
            if let Some(h) = s.client.host_of("risk").filter(|h| h != gone) {
                let seen = answered_by(&h);
                while answered_by(&h) < seen + 20 {
                    assert!(Instant::now() < deadline, "{h} answers");
                    std::thread::park_timeout(Duration::from_millis(5));
                }
                return h;
            }
            std::thread::park_timeout(Duration::from_millis(5));
        }
    };
    let first = hosts[0].clone();
    let seen = answered_by(&first);
    let deadline = Instant::now() + WAIT;
    while answered_by(&first) < seen + 20 {
        assert!(Instant::now() < deadline, "{first} answers the client: {:?}", answers.lock().unwrap());
        std::thread::park_timeout(Duration::from_millis(5));
    }
    eprintln!("singleton on {first}");

    // SIGSTOP its host past the TTL: a survivor runs it; the frozen one thaws with messages
    // queued for it, and handles none of them.
    s.members[index(&first)].freeze();
    let second = moved_from(&s, &first);
    eprintln!("moved to {second}");
    s.members[index(&first)].thaw();
    let deadline = Instant::now() + WAIT;
    while s.members[index(&first)].stat("fenced") == "0" {
        assert!(Instant::now() < deadline, "{first} noticed it was fenced");
    }
    let seen = answered_by(&second);
    while answered_by(&second) < seen + 20 {
        assert!(Instant::now() < deadline, "{second} answers after {first} thawed");
        std::thread::park_timeout(Duration::from_millis(5));
    }

    // SIGKILL the next host, then make the one after leave.
    s.members[index(&second)].kill();
    let third = moved_from(&s, &second);
    eprintln!("moved to {third}");
    assert!(s.members[index(&third)].leave(), "{third} left");
    let fourth = moved_from(&s, &third);
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    let paths: Vec<&std::path::Path> = s.ledgers.iter().map(|p| p.as_path()).collect();
    let book = ledger::read(&paths);
    let desk = book.get("desk").expect("the singleton wrote its ledger");
    let served: Vec<_> = desk.iter().filter(|i| i.handled > 0).collect();
    assert!(served.len() >= 4, "{first} → {second} → {third} → {fourth}: {desk:#?}");
    let bad = ledger::overlaps(&book);
    assert!(bad.is_empty(), "two instances of the singleton served at once: {bad:#?}");
}

#[test]
fn named_actors_placed_by_role_land_only_on_members_with_it_as_the_strategy_spreads_them() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("named-roles");
    // Spawned, then seen in this member's copy of the registry (which the next least-load
    // placement counts).
    let spawn = |name: &str, role: &str, p: Placement| {
        let r = s.client.spawn_named(name, "desk").role(role).placement(p).timeout(WAIT).wait();
        if r.is_ok() {
            let deadline = Instant::now() + WAIT;
            while s.client.host_of(name).is_none() {
                assert!(Instant::now() < deadline, "{name} registered");
                std::thread::park_timeout(Duration::from_millis(1));
            }
        }
        r
    };
    // Round-robin over the members with role "risk" (a and c; b has only "worker").
    for i in 0..6 {
        spawn(&format!("risk-{i}"), "risk", Placement::RoundRobin).expect("spawned");
    }
    let hosts = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| s.client.host_of(&format!("{prefix}{i}")).expect("registered")).collect()
    };
    let risk = hosts("risk-", 6);
    assert_eq!(risk.iter().filter(|h| *h == "a").count(), 3, "{risk:?}");
    assert_eq!(risk.iter().filter(|h| *h == "c").count(), 3, "{risk:?}");
    // Least load among the "worker"s: b, which hosts none yet, takes the next three.
    for i in 0..3 {
        spawn(&format!("work-{i}"), "worker", Placement::LeastLoad).expect("spawned");
    }
    assert_eq!(hosts("work-", 3), ["b", "b", "b"]);
    // Answering from where the registry says.
    for name in ["risk-0", "work-0"] {
        let c = ask(&s.client, name).expect("answers");
        assert_eq!(Some(c.member), s.client.host_of(name));
    }
    // A role nobody has: refused, nothing spawned.
    let none = spawn("nobody", "audit", Placement::RoundRobin);
    assert!(matches!(none, Err(RemoteAskError::Refused { code: ErrorCode::UnknownKind, .. })), "{none:?}");
    assert!(!s.client.actor_exists("nobody"));
}

#[test]
fn a_cluster_cron_schedule_fires_once_per_tick_through_a_freeze_and_a_kill_of_the_member_running_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let etcd = Etcd::start();
    let (mut members, _ledgers) = common::processes::three_members(&etcd, "schedule-fail", TTL_MS);
    // This process is a member too: it hosts the target (so no tick is lost with a killed
    // target) and takes no role (so it never runs the schedule).
    let rt = common::runtime();
    let node = common::node(&rt);
    node.register_kind("desk", counter_protocol(), desks("client", None));
    let client = common::processes::join_as_client(&etcd, "schedule-fail", &node, TTL_MS);
    assert!(client.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c", "client"]), "all four registered");
    client.spawn_named("till", "desk").placement(Placement::Local).timeout(WAIT).wait().expect("target");
    let every_second = client
        .schedule_cron("ticker", "* * * * * *", "till", &Add { amount: 1 })
        .role("worker")
        .timeout(WAIT)
        .wait()
        .expect("scheduled");
    let index = |id: &str| ["a", "b", "c"].iter().position(|x| *x == id).unwrap();
    let fired = || every_second.state().timeout(WAIT).wait().expect("state").expect("scheduled").fired;
    let ticks = |n: u64| {
        let (deadline, from) = (Instant::now() + WAIT, fired());
        while fired() < from + n {
            assert!(Instant::now() < deadline, "{n} more ticks");
            std::thread::park_timeout(Duration::from_millis(50));
        }
    };
    let moved_from = |gone: &str| -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(h) = every_second.host().filter(|h| h != gone) {
                return h;
            }
            assert!(Instant::now() < deadline, "the runner moves from {gone}");
            std::thread::park_timeout(Duration::from_millis(5));
        }
    };
    let deadline = Instant::now() + WAIT;
    let first = loop {
        if let Some(h) = every_second.host() {
            break h;
        }
        assert!(Instant::now() < deadline, "a runner starts");
    };
    ticks(3);

    // SIGSTOP past the TTL: a survivor runs it; the frozen runner thaws fenced and sends
    // nothing (its writes would lose to the survivor's anyway).
    let frozen = Instant::now();
    members[index(&first)].freeze();
    let second = moved_from(&first);
    eprintln!("schedule runner moved from frozen {first} to {second} in {:?}", frozen.elapsed());
    ticks(2);
    members[index(&first)].thaw();
    let deadline = Instant::now() + WAIT;
    while members[index(&first)].stat("fenced") == "0" {
        assert!(Instant::now() < deadline, "{first} noticed it was fenced");
    }
    ticks(2);

    // SIGKILL the next one.
    let killed = Instant::now();
    members[index(&second)].kill();
    let third = moved_from(&second);
    eprintln!("schedule runner moved from killed {second} to {third} in {:?}", killed.elapsed());
    ticks(3);

    let last = every_second.cancel().timeout(WAIT).wait().expect("cancelled").expect("it existed");
    let ms = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let (first_ms, last_ms) = (ms(last.first.unwrap()), ms(last.last.unwrap()));
    assert_eq!(first_ms % 1000, 0, "on whole seconds");
    assert_eq!(
        (last_ms - first_ms) / 1000 + 1,
        last.fired,
        "every second from first to last, each once: {last:?}"
    );
    assert_eq!(last.skipped, 0);
    // Sent at most once each: the target never counts more than the ticks recorded. A tick
    // recorded by a runner frozen or killed before its message left is lost with it (one per
    // failure at most: the runner sends right after its write wins).
    let till = || ask(&client, "till").map(|c| c.value);
    let deadline = Instant::now() + WAIT;
    while till().is_none_or(|n| n + 2 < last.fired) {
        assert!(Instant::now() < deadline, "till got {:?} ticks of {}", till(), last.fired);
        std::thread::park_timeout(Duration::from_millis(20));
    }
    let got = till().unwrap();
    assert!(got <= last.fired, "till got {got} ticks, more than the {} recorded", last.fired);
    eprintln!("{got} of {} recorded ticks delivered", last.fired);
}

#[test]
fn a_client_that_is_not_a_member_reaches_grains_in_one_hop_and_balances_spawns() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let etcd = Etcd::start();
    let (mut members, _ledgers) = common::processes::three_members(&etcd, "client-etcd", TTL_MS);
    let rt = common::runtime();
    let node = common::node(&rt);
    let client = ClusterClient::builder("client-etcd")
        .connect(&node, EtcdProvider::new([etcd.endpoint()]))
        .expect("connects");
    assert!(
        client.wait_for(WAIT, |v| v.member_ids() == ["a", "b", "c"]),
        "three members, the client not one"
    );
    assert_eq!(client.grain_kinds(), ["counter"]);
    assert_eq!(client.kinds(), ["desk"]);
    // Grains: each answered by the owner the client computed; nothing refused, nothing resent.
    let requests = client.stats().store_requests;
    for i in 0..60 {
        let id = format!("g{i}");
        let owner = client.owner_of("counter", &id).expect("an owner").id;
        let g = client.grain::<Counter>(&id);
        g.tell(&Add { amount: 1 }).unwrap();
        let c: Count = g.ask(&Get {}).timeout(Duration::from_secs(5)).wait().expect("answered");
        assert_eq!((c.member.as_str(), c.value), (owner.as_str(), 1), "{id}: answered by its owner");
    }
    assert_eq!(client.stats().retries, 0, "one hop each");
    assert_eq!(client.stats().store_requests, requests, "no store request per message");
    for m in &mut members {
        assert_eq!(m.stat("refused"), "0", "{} refused nothing", m.id);
    }
    // Spawns, round-robin over the three processes.
    for i in 0..9 {
        client.spawn(format!("desk-{i}"), "desk").timeout(WAIT).wait().expect("spawned");
    }
    let deadline = Instant::now() + WAIT;
    while (0..9).any(|i| client.host_of(&format!("desk-{i}")).is_none()) {
        assert!(Instant::now() < deadline, "the client's registry shows all nine");
        std::thread::park_timeout(Duration::from_millis(1));
    }
    let mut per: std::collections::HashMap<String, usize> = Default::default();
    for i in 0..9 {
        *per.entry(client.host_of(&format!("desk-{i}")).expect("held")).or_default() += 1;
    }
    assert!(per.len() == 3 && per.values().all(|n| *n == 3), "{per:?}");
    client.tell("desk-0", &Add { amount: 4 }).unwrap();
    let c: Count = client.ask("desk-0", &Get {}, WAIT).wait().unwrap();
    assert_eq!(c.value, 4);
    let fresh = client.respawn("desk-0").timeout(WAIT).wait().expect("respawned");
    assert_eq!(fresh.ask::<Get, Count>(&Get {}).timeout(WAIT).wait().unwrap().value, 0, "a fresh desk");

    // A member dies: the client routes to the new owners.
    let owned_by_a: Vec<String> = (0..60)
        .map(|i| format!("g{i}"))
        .filter(|id| client.owner_of("counter", id).unwrap().id == "a")
        .collect();
    members[0].kill();
    assert!(client.wait_for(WAIT, |v| v.member_ids() == ["b", "c"]));
    for id in &owned_by_a {
        let c: Count =
            client.grain::<Counter>(id).ask(&Get {}).timeout(Duration::from_secs(5)).wait().unwrap();
        assert_eq!(c.member, client.owner_of("counter", id).unwrap().id);
    }
    assert!(client.close(WAIT));
}
