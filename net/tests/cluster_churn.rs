//! Churn (`scripts/churn.sh`; `#[ignore]`, about five minutes: `CHURN_SECONDS`): a real etcd,
//! member processes that are killed (SIGKILL), leave gracefully, join, and one that is frozen
//! (SIGSTOP) past its lease, while this process (a client member) tells and asks 40 grains from
//! four threads, and every member process from one thread of its own (each sender sees the
//! topology change at its own moment). Every member writes a ledger of its activations and
//! handled messages.
//!
//! Checked at the end: no two activations of any grain ever served at the same time (the
//! ledger), and every ask either answered or failed with a clear error (none lost: each
//! returned within its timeout, and the failures are counted by kind).

mod common;

use common::grains::{Add, Count, Counter, Get};
use common::ledger;
use common::processes::{Etcd, MemberProcess};
use corelane_net::RemoteAskError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TTL_MS: u64 = 2000;
const GRAINS: u64 = 40;

/// A small deterministic generator (xorshift), seeded from the clock; the seed is printed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
#[ignore = "churn run of minutes: scripts/churn.sh"]
fn churn_finds_no_overlapping_activations_and_loses_no_ask() {
    let seconds: u64 = std::env::var("CHURN_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("churn: {seconds} s, seed {seed}");
    let mut rng = Rng(seed);
    let etcd = Etcd::start();
    let dir = std::env::temp_dir().join(format!("corelane-churn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut ledgers: Vec<PathBuf> = Vec::new();
    let mut n = 0;
    let mut start = |ledgers: &mut Vec<PathBuf>| {
        n += 1;
        let id = format!("m{n}");
        let path = dir.join(format!("{id}.ledger"));
        ledgers.push(path.clone());
        let mut m = MemberProcess::start(&etcd, "churn", &id, TTL_MS, Some(&path));
        // Members send too: more senders, each with its own view of the topology.
        m.command(&format!("load {GRAINS} 1"));
        m
    };
    let mut members: Vec<MemberProcess> = (0..4).map(|_| start(&mut ledgers)).collect();

    let rt = common::runtime();
    let node = common::node(&rt);
    let client = common::processes::join_as_client(&etcd, "churn", &node, TTL_MS);
    assert!(client.wait_for(Duration::from_secs(30), |v| v.member_ids().len() == 5));

    // Load: four threads, each a stream of tells and asks to random grains.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let load: Vec<_> = (0..4)
        .map(|t| {
            let (client, stop, outcomes) = (client.clone(), stop.clone(), outcomes.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_add(t + 1) | 1);
                let mut asked = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let g = client.grain::<Counter>(format!("c{}", rng.below(GRAINS)));
                    let _ = g.tell(&Add { amount: 1 });
                    let began = Instant::now();
                    let r = g.ask::<Get, Count>(&Get {}).timeout(Duration::from_secs(3)).wait();
                    assert!(began.elapsed() < Duration::from_secs(5), "an ask returned within its timeout");
                    let key = match r {
                        Ok(_) => "answered".to_string(),
                        Err(RemoteAskError::Refused { code, .. }) => format!("refused {code:?}"),
                        Err(e) => format!("{e:?}"),
                    };
                    *outcomes.lock().unwrap().entry(key).or_default() += 1;
                    asked += 1;
                }
                asked
            })
        })
        .collect();

    // Chaos: every 2-5 s one of kill, leave, join; one freeze past the lease halfway through.
    let began = Instant::now();
    let mut froze = false;
    let mut actions: BTreeMap<&str, u64> = BTreeMap::new();
    while began.elapsed() < Duration::from_secs(seconds) {
        std::thread::park_timeout(Duration::from_millis(2000 + rng.below(3000)));
        if !froze && began.elapsed() > Duration::from_secs(seconds / 2) && members.len() >= 3 {
            froze = true;
            let i = rng.below(members.len() as u64) as usize;
            members[i].freeze();
            std::thread::park_timeout(Duration::from_millis(TTL_MS + 1500));
            members[i].thaw();
            *actions.entry("freeze").or_default() += 1;
            continue;
        }
        match rng.below(3) {
            0 if members.len() > 2 => {
                let i = rng.below(members.len() as u64) as usize;
                members.remove(i).kill();
                *actions.entry("kill").or_default() += 1;
            }
            1 if members.len() > 2 => {
                let i = rng.below(members.len() as u64) as usize;
                let mut m = members.remove(i);
                m.leave();
                *actions.entry("leave").or_default() += 1;
            }
            _ if members.len() < 6 => {
                members.push(start(&mut ledgers));
                *actions.entry("join").or_default() += 1;
            }
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let asked: u64 = load.into_iter().map(|h| h.join().unwrap()).sum();
    let outcomes = outcomes.lock().unwrap().clone();
    drop(members);

    let paths: Vec<&std::path::Path> = ledgers.iter().map(|p| p.as_path()).collect();
    let ledger = ledger::read(&paths);
    let activations: usize = ledger.values().map(Vec::len).sum();
    let handled: u64 = ledger.values().flatten().map(|i| i.handled).sum();
    let bad = ledger::overlaps(&ledger);
    eprintln!(
        "churn: actions {actions:?}; {asked} asks: {outcomes:?}; ledger: {} grains, {activations} activations, {handled} messages handled, {} overlaps",
        ledger.len(),
        bad.len()
    );
    assert!(bad.is_empty(), "overlapping activations: {bad:#?}");
    assert_eq!(outcomes.values().sum::<u64>(), asked, "every ask has an outcome");
    assert!(
        outcomes.get("answered").copied().unwrap_or(0) * 10 >= asked * 9,
        "most asks answered: {outcomes:?}"
    );
    assert!(
        froze && actions.contains_key("kill") && actions.contains_key("join"),
        "the churn did churn: {actions:?}"
    );
}
