//! A cluster on etcd: member processes hosting `counter` grains, and a client process that
//! uses them. Run by `scripts/cluster-demo.sh` (three members and a client), and by the
//! cluster tests as real processes to kill and freeze.
//!
//! ```text
//! cluster node   <etcd> <cluster> <member-id> <ttl-ms> [ledger-file]
//! cluster client <etcd> <cluster> <grains> [members to wait for]
//! ```
//!
//! A node hosts `counter` grains and the actor kind `desk` (for named actors), with the roles
//! listed in the environment variable `CLUSTER_ROLES` (comma-separated; none if unset). It prints
//! `ready <addr> <epoch>` once it has joined, then answers commands on stdin:
//! `members` (prints `members <id,id,...> <epoch>`), `stats` (prints `stats serving=<bool>
//! fenced=<n> activations=<n> epoch=<n> named=<n> relocated=<n> relocation_requests=<n>
//! refused=<n> ticks_fired=<n>`),
//! `load <grains> <threads>` (starts threads that tell and ask random grains `c0`..: more
//! senders, each with its own view of the topology), `spawn <prefix> <from> <to>` (spawns named
//! desks `<prefix><i>` here, all at once; prints `spawned <won> <refused> <ms>`), `race <name>`
//! (spawns desk `<name>` round-robin; prints `race won` or `race refused <code>`),
//! `singleton <name>` (makes sure desk `<name>` runs once in the cluster; prints `singleton
//! <member hosting it>`), `leave`
//! (leaves gracefully, prints `left`, exits).
//! The client joins as a member that hosts no grains, tells and asks each grain, prints where
//! each answered from, and leaves.

#[path = "../tests/common/grains.rs"]
mod grains;

use clap::Parser;
use corelane::{Runtime, Shards};
use corelane_net::cluster::{Cluster, EtcdProvider, Placement};
use corelane_net::{Node, RemoteAskError, RemoteConfig};
use grains::{counter_protocol, counters, desks, Activity, Add, Count, Counter, Get, Ledger};
use std::future::IntoFuture;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

/// A cluster member or client on etcd (see the example's doc comment for the commands a
/// member answers on stdin).
#[derive(Parser)]
#[command(name = "cluster")]
enum Cli {
    /// A member hosting `counter` grains and `desk` actors; prints `ready <addr> <epoch>` once
    /// joined, then answers commands on stdin.
    Node {
        /// etcd's client URL.
        etcd: String,
        /// The cluster's name (its key prefix in etcd).
        cluster: String,
        /// This member's id.
        member_id: String,
        /// The membership lease's TTL, in milliseconds.
        ttl_ms: u64,
        /// A file to record activations and deactivations in (the tests' ledger).
        ledger: Option<String>,
    },
    /// Joins without hosting grains, tells and asks each grain, prints where each answered
    /// from, and leaves.
    Client {
        /// etcd's client URL.
        etcd: String,
        /// The cluster's name.
        cluster: String,
        /// How many grains (`account-0`..) to use.
        grains: usize,
        /// Wait until more than this many other members are in the cluster.
        #[arg(default_value_t = 0)]
        members: usize,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let rt = Runtime::builder().shards(Shards::Count(1)).build()?;
    let node = Node::start(&rt, RemoteConfig::dev())?;
    match cli {
        Cli::Node { etcd, cluster: name, member_id: id, ttl_ms, ledger: path } => {
            let ttl = Duration::from_millis(ttl_ms);
            let ledger = match &path {
                Some(path) => Some(Ledger::open(path, &id)?),
                None => None,
            };
            let desk_ledger = match &path {
                Some(path) => Some(Arc::new(Ledger::open(path, &id)?)),
                None => None,
            };
            node.register_kind("desk", counter_protocol(), desks(&id, desk_ledger));
            let stats = Arc::new(Activity { ledger, ..Default::default() });
            let roles = std::env::var("CLUSTER_ROLES").unwrap_or_default();
            let cluster = Cluster::builder(name)
                .ttl(ttl)
                .member_id(&id)
                .roles(roles.split(',').filter(|r| !r.is_empty()))
                .grain::<Counter, _>(counter_protocol(), counters(&id, stats))
                .join(&node, EtcdProvider::new([etcd]))?;
            println!("ready {} {}", node.addr(), cluster.epoch());
            for line in std::io::stdin().lock().lines() {
                match line?.trim() {
                    "members" => {
                        let ids: Vec<String> = cluster.members().into_iter().map(|m| m.id).collect();
                        println!("members {} {}", ids.join(","), cluster.epoch());
                    }
                    "stats" => {
                        let s = cluster.stats();
                        println!(
                            "stats serving={} fenced={} activations={} epoch={} named={} relocated={} relocation_requests={} refused={} ticks_fired={}",
                            s.serving, s.fenced, s.activations, s.epoch, s.named, s.relocated, s.relocation_requests, s.refused, s.ticks_fired
                        );
                    }
                    cmd if cmd.starts_with("load ") => {
                        let n: Vec<u64> =
                            cmd.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                        let (grains, threads) =
                            (n.first().copied().unwrap_or(40), n.get(1).copied().unwrap_or(1));
                        for t in 0..threads {
                            let c = cluster.clone();
                            std::thread::spawn(move || {
                                let mut x = (std::process::id() as u64) << 8 | (t + 1);
                                loop {
                                    x ^= x << 13;
                                    x ^= x >> 7;
                                    x ^= x << 17;
                                    let g = c.grain::<Counter>(format!("c{}", x % grains));
                                    let _ = g.tell(&Add { amount: 1 });
                                    let _ =
                                        g.ask::<Get, Count>(&Get {}).timeout(Duration::from_secs(3)).wait();
                                }
                            });
                        }
                    }
                    cmd if cmd.starts_with("spawn ") => {
                        let a: Vec<&str> = cmd.split_whitespace().skip(1).collect();
                        let (prefix, from, to): (&str, usize, usize) = (
                            a.first().copied().unwrap_or("d"),
                            a.get(1).map_or(Ok(0), |x| x.parse())?,
                            a.get(2).map_or(Ok(0), |x| x.parse())?,
                        );
                        let t0 = std::time::Instant::now();
                        let spawns: Vec<_> = (from..to)
                            .map(|i| {
                                cluster
                                    .spawn_named(format!("{prefix}{i}"), "desk")
                                    .placement(Placement::Local)
                                    .timeout(Duration::from_secs(30))
                                    .into_future()
                            })
                            .collect();
                        let won = spawns.into_iter().map(|s| s.wait()).filter(Result::is_ok).count();
                        println!("spawned {won} {} {}", (to - from) - won, t0.elapsed().as_millis());
                    }
                    cmd if cmd.starts_with("race ") => {
                        let name = cmd.trim_start_matches("race ").trim();
                        match cluster.spawn_named(name, "desk").timeout(Duration::from_secs(10)).wait() {
                            Ok(_) => println!("race won"),
                            Err(RemoteAskError::Refused { code, .. }) => println!("race refused {code:?}"),
                            Err(e) => println!("race failed {e}"),
                        }
                    }
                    cmd if cmd.starts_with("singleton ") => {
                        let name = cmd.trim_start_matches("singleton ").trim();
                        match cluster.spawn_singleton(name, "desk").timeout(Duration::from_secs(10)).wait() {
                            Ok(r) => {
                                let c: Result<Count, _> =
                                    r.ask(&Get {}).timeout(Duration::from_secs(5)).wait();
                                println!(
                                    "singleton {}",
                                    c.map_or_else(|e| format!("unanswered: {e}"), |c| c.member)
                                );
                            }
                            Err(e) => println!("singleton failed {e}"),
                        }
                    }
                    "leave" => {
                        cluster.leave(Duration::from_secs(10));
                        println!("left");
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        Cli::Client { etcd, cluster: name, grains, members: others } => {
            let cluster = Cluster::builder(name)
                .ttl(Duration::from_secs(2))
                .member_id(format!("client-{}", std::process::id()))
                .join(&node, EtcdProvider::new([etcd]))?;
            cluster.wait_for(Duration::from_secs(30), |v| v.member_ids().len() > others);
            let ids: Vec<String> = cluster.members().into_iter().map(|m| m.id).collect();
            println!("members {} epoch {}", ids.join(","), cluster.epoch());
            for i in 0..grains {
                let g = cluster.grain::<Counter>(format!("account-{i}"));
                g.tell(&Add { amount: i as u64 })?;
                let c: Count = g.ask(&Get {}).timeout(Duration::from_secs(5)).wait()?;
                println!(
                    "{} answered from {} (value {}, activated at epoch {})",
                    c.identity, c.member, c.value, c.epoch
                );
            }
            cluster.leave(Duration::from_secs(5));
        }
    }
    Ok(())
}
