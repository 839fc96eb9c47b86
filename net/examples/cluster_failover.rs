//! Failover, measured (`scripts/failover.sh`): a throwaway etcd, three member processes (the
//! `cluster` example, TTL 2 s) and this process as a client member.
//!
//! - **SIGKILL**, `KILLS` times (default 20): grains are activated, the owner of some is
//!   killed, and every grain it owned is asked again and again (100 ms timeouts) until each has
//!   answered from a survivor; the time from the kill to the last such answer is one sample. A
//!   fresh member replaces the dead one before the next round.
//! - **Graceful leave**, `LEAVES` times (default 10): a member is told to leave (as soon as the
//!   previous round's replacement has joined and every grain answered); each grain it owned is
//!   asked until it answers from its new owner; the time from the leave command to each
//!   grain's first answer is one sample.
//!
//! Prints the percentiles as `failover ...` and `leave ...` lines.

#[path = "../tests/common/grains.rs"]
mod grains;
#[path = "../tests/common/processes.rs"]
mod processes;

use corelane::{Runtime, Shards};
use corelane_net::cluster::{Cluster, EtcdProvider};
use corelane_net::{Node, RemoteConfig};
use grains::{Count, Counter, Get};
use processes::{Etcd, MemberProcess};
use std::time::{Duration, Instant};

const TTL_MS: u64 = 2000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ask(c: &Cluster, id: &str, timeout: Duration) -> Option<Count> {
    c.grain::<Counter>(id).ask::<Get, Count>(&Get {}).timeout(timeout).wait().ok()
}

/// Asks each grain until it answers from a member other than `gone`; when each first did.
fn answered_again(c: &Cluster, ids: &[String], gone: &str, since: Instant) -> Vec<Duration> {
    let mut times = Vec::new();
    for id in ids {
        loop {
            assert!(since.elapsed() < Duration::from_secs(60), "{id} never answered again");
            if ask(c, id, Duration::from_millis(100)).is_some_and(|a| a.member != gone) {
                times.push(since.elapsed());
                break;
            }
        }
    }
    times
}

/// The grains among `ids` that `member` owns now.
fn owned_by(c: &Cluster, ids: &[String], member: &str) -> Vec<String> {
    ids.iter().filter(|id| c.owner_of("counter", id).is_some_and(|m| m.id == member)).cloned().collect()
}

/// The `p` quantile of `v` (an HDR histogram in microseconds: 3 significant digits).
fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut h = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits");
    for d in v {
        h.saturating_record(d.as_micros() as u64);
    }
    Duration::from_micros(h.value_at_quantile(p))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (kills, leaves) = (env("KILLS", 20), env("LEAVES", 10));
    let etcd = Etcd::start();
    let rt = Runtime::builder().shards(Shards::Count(1)).build()?;
    let node = Node::start(&rt, RemoteConfig::dev())?;
    let mut next = 0;
    let start = |n: &mut usize| {
        *n += 1;
        MemberProcess::start(&etcd, "failover", &format!("m{n}"), TTL_MS, None)
    };
    let mut members: Vec<MemberProcess> = (0..3).map(|_| start(&mut next)).collect();
    let client = Cluster::builder("failover")
        .ttl(Duration::from_millis(TTL_MS))
        .member_id("client")
        .join(&node, EtcdProvider::new([etcd.endpoint()]))?;
    let ids: Vec<String> = (0..60).map(|i| format!("f{i}")).collect();
    let settle = |client: &Cluster, members: &[MemberProcess]| {
        let want: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        assert!(client.wait_for(Duration::from_secs(30), |v| want.iter().all(|w| v.has(w))
            && v.member_ids().len() == 4));
        for id in &ids {
            while ask(client, id, Duration::from_secs(1)).is_none() {}
        }
    };

    let mut failovers = Vec::new();
    for round in 0..kills {
        settle(&client, &members);
        let victim = round % members.len();
        let gone = members[victim].id.clone();
        let owned = owned_by(&client, &ids, &gone);
        let killed = Instant::now();
        members[victim].kill();
        let t = answered_again(&client, &owned, &gone, killed);
        let last = *t.iter().max().expect("the victim owned grains");
        eprintln!("kill {}: {} grains of {gone} answered again after {last:?}", round + 1, owned.len());
        failovers.push(last);
        members[victim] = start(&mut next);
    }

    let mut moved_times = Vec::new();
    for round in 0..leaves {
        settle(&client, &members);
        let leaver = round % members.len();
        let gone = members[leaver].id.clone();
        let owned = owned_by(&client, &ids, &gone);
        let t0 = Instant::now();
        members[leaver].command("leave").expect("the leave command is sent");
        let t = answered_again(&client, &owned, &gone, t0);
        assert!(members[leaver].expect("left").is_some(), "{gone} left");
        members[leaver].wait();
        eprintln!(
            "leave {}: {} grains of {gone}, last answered again after {:?}",
            round + 1,
            owned.len(),
            t.iter().max()
        );
        moved_times.extend(t);
        members[leaver] = start(&mut next);
    }

    if !failovers.is_empty() {
        let (p50, max) = (percentile(&failovers, 0.5), percentile(&failovers, 1.0));
        println!(
            "failover after SIGKILL (TTL {TTL_MS} ms), {} kills: p50 {:.2} s, max {:.2} s",
            failovers.len(),
            p50.as_secs_f64(),
            max.as_secs_f64()
        );
    }
    if !moved_times.is_empty() {
        let (p50, p99) = (percentile(&moved_times, 0.5), percentile(&moved_times, 0.99));
        println!(
            "graceful leave, {} leaves, {} moved grains: answered again p50 {:.1} ms, p99 {:.1} ms",
            leaves,
            moved_times.len(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    client.leave(Duration::from_secs(5));
    Ok(())
}
