//! Relocation of named actors, measured (`scripts/relocation.sh`): a throwaway etcd, three
//! member processes (the `cluster` example, TTL 2 s) and this process as a member that hosts
//! nothing.
//!
//! Each member spawns `ACTORS / 3` named desks on itself (default `ACTORS` 10 000). Then,
//! `ROUNDS` times (default 3), the member hosting the most is SIGKILLed, and the time from the
//! kill until every one of its desks has answered from a survivor is one sample; the survivors'
//! counters give the etcd requests made per relocated actor. A fresh member replaces the dead
//! one before the next round.
//!
//! Prints one `relocation ...` line per round and a summary.

#[path = "../tests/common/grains.rs"]
mod grains;
#[path = "../tests/common/processes.rs"]
mod processes;

use corelane::{Runtime, Shards};
use corelane_net::cluster::{Cluster, EtcdProvider};
use corelane_net::{Node, RemoteConfig};
use grains::{Count, Get};
use processes::{Etcd, MemberProcess};
use std::time::{Duration, Instant};

const TTL_MS: u64 = 2000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Waits until every one of `names` answers from a member other than `gone` (asked in waves:
/// every name the registry shows elsewhere, all at once).
fn all_answer_elsewhere(c: &Cluster, names: &[String], gone: &str, since: Instant) -> Duration {
    let mut left: Vec<&String> = names.iter().collect();
    while !left.is_empty() {
        assert!(since.elapsed() < Duration::from_secs(120), "{} never answered again", left.len());
        let asks: Vec<_> = left
            .iter()
            .map(|n| {
                let moved = c.host_of(n).is_some_and(|h| h != gone);
                let r = if moved { c.actor_of(n) } else { None };
                r.map(|r| r.ask::<Get, Count>(&Get {}).timeout(Duration::from_secs(2)))
            })
            .collect();
        let answered: Vec<bool> =
            asks.into_iter().map(|a| a.is_some_and(|a| a.wait().is_ok_and(|c| c.member != gone))).collect();
        let mut i = 0;
        left.retain(|_| {
            i += 1;
            !answered[i - 1]
        });
        if !left.is_empty() {
            std::thread::park_timeout(Duration::from_millis(2));
        }
    }
    since.elapsed()
}

fn stat(m: &mut MemberProcess, key: &str) -> u64 {
    m.stat(key).parse().unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (actors, rounds) = (env("ACTORS", 10_000), env("ROUNDS", 3));
    let etcd = Etcd::start();
    let rt = Runtime::builder().shards(Shards::Count(1)).build()?;
    let node = Node::start(&rt, RemoteConfig::dev())?;
    let mut next = 0;
    let start = |n: &mut usize| {
        *n += 1;
        MemberProcess::start(&etcd, "relocation", &format!("m{n}"), TTL_MS, None)
    };
    let mut members: Vec<MemberProcess> = (0..3).map(|_| start(&mut next)).collect();
    let client = Cluster::builder("relocation")
        .ttl(Duration::from_millis(TTL_MS))
        .member_id("client")
        .join(&node, EtcdProvider::new([etcd.endpoint()]))?;
    let names: Vec<String> = (0..actors).map(|i| format!("desk-{i}")).collect();
    let share = actors.div_ceil(3);
    for (i, m) in members.iter_mut().enumerate() {
        m.command(&format!("spawn desk- {} {}", i * share, ((i + 1) * share).min(actors)))
            .ok_or("command")?;
    }
    for m in &mut members {
        let line = m.expect("spawned ").ok_or("spawn answer")?;
        eprintln!("{}: {line}", m.id);
    }
    let t = Instant::now();
    while !names.iter().all(|n| client.actor_exists(n)) {
        assert!(t.elapsed() < Duration::from_secs(60), "the client sees every named actor");
        std::thread::park_timeout(Duration::from_millis(10));
    }

    let mut samples = Vec::new();
    for round in 0..rounds {
        let hosted = |id: &str| names.iter().filter(|n| client.host_of(n).as_deref() == Some(id)).count();
        let victim = (0..members.len()).max_by_key(|i| hosted(&members[*i].id)).unwrap_or(0);
        let gone = members[victim].id.clone();
        let moved: Vec<String> =
            names.iter().filter(|n| client.host_of(n).as_deref() == Some(gone.as_str())).cloned().collect();
        let before: Vec<(u64, u64)> = members
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, m)| (stat(m, "relocated"), stat(m, "relocation_requests")))
            .collect();
        let killed = Instant::now();
        members[victim].kill();
        let took = all_answer_elsewhere(&client, &moved, &gone, killed);
        let after: Vec<(u64, u64)> = members
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, m)| (stat(m, "relocated"), stat(m, "relocation_requests")))
            .collect();
        let relocated: u64 = after.iter().zip(&before).map(|(a, b)| a.0 - b.0).sum();
        let requests: u64 = after.iter().zip(&before).map(|(a, b)| a.1 - b.1).sum();
        println!(
            "relocation {}: {} named actors of {gone} (of {actors}) answering again {:.2} s after SIGKILL (TTL {:.1} s); \
             {relocated} spawned again with {requests} etcd requests ({:.4} per actor)",
            round + 1,
            moved.len(),
            took.as_secs_f64(),
            TTL_MS as f64 / 1e3,
            requests as f64 / relocated.max(1) as f64
        );
        samples.push((took, requests as f64 / relocated.max(1) as f64));
        members[victim] = start(&mut next);
        let want: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        assert!(client.wait_for(Duration::from_secs(30), |v| want.iter().all(|w| v.has(w))));
    }
    samples.sort_by_key(|s| s.0);
    if let Some(mid) = samples.get(samples.len() / 2) {
        println!(
            "relocation after SIGKILL, {} rounds: median {:.2} s (max {:.2} s), {:.4} etcd requests per relocated actor",
            samples.len(),
            mid.0.as_secs_f64(),
            samples.last().map_or(0.0, |s| s.0.as_secs_f64()),
            mid.1
        );
    }
    client.leave(Duration::from_secs(5));
    Ok(())
}
