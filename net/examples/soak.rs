//! Soak: a node under a mix of abuse and legitimate traffic, for a bounded time, on loopback.
//!
//! ```text
//! cargo run --release -p corelane-net --example soak -- [SECONDS]     (default 600)
//! ```
//!
//! The node runs in a child process (this binary with `serve`), so its resident memory is its
//! own. The parent, for SECONDS: asks the node's echo actor without pause from a well-behaved
//! client node (every ask is a latency sample), and runs attackers, each paced and bounded:
//! - partial frames: a connection announces a 4 MiB frame on each of its streams, sends part
//!   of it and stalls (the node closes it at its byte or time bound);
//! - abandoned peers: connections whose `Hello` claims a new address each time, then close;
//! - schedule floods: a client node makes as many fast schedules as the node allows, then goes
//!   away (its schedules must end with it);
//! - spawn floods: spawns past the quota (refused), then stops what it got;
//! - echoes: lookups of a 1 MiB name, garbage frames and forged answers.
//!
//! It samples the node's resident memory every second and prints it, with the legitimate asks'
//! latency, per interval and overall. Memory swings with what the attacks hold at the moment
//! (unfinished frames are up to a few MiB at a time), so growth compares like with like: the
//! highest sample of the last third of the run against the highest of the first third after
//! warm-up (the first fifth). Pass: that growth at most 10 %, legitimate ask p99 at most 10 ms,
//! the node alive and answering at the end. The exit status says which.

use bytes::{Bytes, BytesMut};
use corelane::{Actor, ActorError, Ctx, Reply, Runtime, Shards};
use corelane_net::{quic_configs, Node, Protocol, RemoteConfig};
use corelane_proto::frame::encode_message;
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Envelope, Hello};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request and the answer.
#[derive(Clone, PartialEq, prost::Message)]
struct Ping {
    #[prost(bytes = "bytes", tag = "1")]
    data: Bytes,
}
impl prost::Name for Ping {
    const NAME: &'static str = "Ping";
    const PACKAGE: &'static str = "soak.v1";
}

struct Echo;
impl Actor for Echo {
    type Msg = (Ping, Reply<Ping>);
    fn receive(&mut self, _: &mut Ctx<Self>, (ping, reply): (Ping, Reply<Ping>)) -> Result<(), ActorError> {
        reply.send(ping);
        Ok(())
    }
}

fn runtime() -> Runtime {
    Runtime::builder().shards(Shards::Count(1)).build().expect("runtime")
}

fn protocol() -> Protocol<(Ping, Reply<Ping>)> {
    Protocol::new().ask(|p: Ping, r: Reply<Ping>| (p, r))
}

/// The child: a node with the default limits, an echo actor named "echo" and a spawnable
/// kind "echo"; prints its address, serves until its stdin closes.
fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let rt = runtime();
    let node = Node::start(&rt, RemoteConfig::dev())?;
    node.serve(protocol());
    node.register_kind("echo", protocol(), || Echo);
    let echo = rt.spawn(|| Echo)?;
    rt.register("echo", &echo)?;
    node.expose(&echo, protocol());
    println!("{}", node.addr());
    std::io::stdout().flush()?;
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line)? > 0 {
        line.clear();
    }
    node.shutdown();
    Ok(())
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn frame(env: &Envelope) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode_message(env, &mut b, usize::MAX).expect("frame");
    b.to_vec()
}

fn hello(node: &str) -> Vec<u8> {
    frame(&Envelope::system(
        0,
        0,
        Body::Hello(Hello { node: node.into(), version: 1, incarnation: 1, addressed: 0 }),
    ))
}

/// A raw QUIC connection to `to` on its own small runtime.
struct Raw {
    rt: tokio::runtime::Runtime,
    conn: Option<quinn::Connection>,
    _ep: quinn::Endpoint,
}

impl Raw {
    fn connect(to: SocketAddr) -> Option<Raw> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        let crypto = quic_configs(&RemoteConfig::dev()).ok()?;
        let (ep, conn) = rt.block_on(async {
            let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).ok()?;
            ep.set_default_client_config(crypto.client);
            let c = tokio::time::timeout(Duration::from_secs(5), ep.connect(to, &crypto.server_name).ok()?);
            let conn = c.await.ok()?.ok()?;
            Some((ep, conn))
        })?;
        Some(Raw { rt, conn: Some(conn), _ep: ep })
    }

    /// Writes `bytes` on a new stream; finishes it when `finish`.
    fn stream(&self, bytes: &[u8], finish: bool) -> Option<quinn::SendStream> {
        let conn = self.conn.as_ref()?;
        self.rt.block_on(async {
            let mut s = tokio::time::timeout(Duration::from_secs(2), conn.open_uni()).await.ok()?.ok()?;
            tokio::time::timeout(Duration::from_secs(5), s.write_all(bytes)).await.ok()?.ok()?;
            if finish {
                let _ = s.finish();
            }
            Some(s)
        })
    }

    /// Waits up to `d` for the node to close the connection.
    fn wait_closed(&self, d: Duration) {
        if let Some(c) = &self.conn {
            let _ = self.rt.block_on(async { tokio::time::timeout(d, c.closed()).await });
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close(9u32.into(), b"bye");
        }
    }
}

/// The attacker threads: each runs its attack until told to stop, paced, counting rounds.
#[derive(Default)]
struct Attackers {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Attackers {
    /// Runs `attack` (given the round number) until `stop`, pausing `pace` between rounds.
    fn spawn(&mut self, pace: Duration, mut attack: impl FnMut(u64) + Send + 'static) {
        let (stop, rounds) = (self.stop.clone(), self.rounds.clone());
        self.threads.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                attack(i);
                i += 1;
                rounds.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(pace);
            }
        }));
    }

    fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Ask latencies, in nanoseconds.
fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new(3).expect("3 significant digits")
}

fn percentile(h: &hdrhistogram::Histogram<u64>, q: f64) -> Duration {
    Duration::from_nanos(h.value_at_quantile(q))
}

fn run(seconds: u64) -> Result<bool, Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line)?;
    let addr: SocketAddr = line.trim().parse()?;
    println!("node {addr} (pid {pid}), {seconds} s of abuse and legitimate asks");

    let mut attackers = Attackers::default();
    // Partial frames: 4 MiB announced on each of two streams, 1 MiB sent, then a stall.
    attackers.spawn(Duration::from_millis(50), move |_| {
        if let Some(raw) = Raw::connect(addr) {
            let mut bytes = hello("127.0.0.3:1");
            bytes.extend_from_slice(&(4u32 << 20).to_le_bytes());
            bytes.extend(vec![0u8; 1 << 20]);
            let _a = raw.stream(&bytes, false);
            let _b = raw.stream(&bytes, false);
            raw.wait_closed(Duration::from_secs(12));
        }
    });
    // Abandoned peers, each claiming a new address.
    attackers.spawn(Duration::from_millis(5), move |i| {
        if let Some(raw) = Raw::connect(addr) {
            let claim =
                format!("127.0.{}.{}:{}", 4 + (i / 60_000) % 200, 1 + (i / 250) % 250, 1000 + i % 250);
            let _ = raw.stream(&hello(&claim), true);
        }
    });
    // Garbage, forged answers and a lookup of a 1 MiB name on one connection.
    attackers.spawn(Duration::from_millis(20), move |i| {
        if let Some(raw) = Raw::connect(addr) {
            let mut bytes = hello("127.0.0.5:1");
            bytes.extend(frame(&Envelope::reply(i + 1, "soak.v1.Ping", Bytes::from_static(b"forged"))));
            bytes.extend_from_slice(&8u32.to_le_bytes());
            bytes.extend_from_slice(&[0xff; 8]);
            let name = "n".repeat(1 << 20);
            let lookup = corelane_proto::v1::Lookup { name };
            bytes.extend(frame(&Envelope::system(0, i + 1, Body::Lookup(lookup))));
            let _ = raw.stream(&bytes, true);
        }
    });
    // Schedule floods from a node that then goes away.
    attackers.spawn(Duration::from_millis(200), move |_| {
        let rt = runtime();
        let Ok(n) = Node::start(&rt, RemoteConfig::dev()) else { return };
        if let Ok(echo) = n.remote(addr).lookup("echo").timeout(Duration::from_secs(5)).wait() {
            let ping = Ping { data: Bytes::from_static(b"tick") };
            for _ in 0..300 {
                let r = echo.schedule(Duration::ZERO, Duration::from_millis(10), &ping);
                if r.timeout(Duration::from_secs(5)).wait().is_err() {
                    break; // the per-peer limit
                }
            }
        }
        n.shutdown();
    });
    // Spawn floods past the quota.
    attackers.spawn(Duration::from_millis(200), move |_| {
        let rt = runtime();
        let Ok(n) = Node::start(&rt, RemoteConfig::dev()) else { return };
        let there = n.remote(addr);
        let mut got = vec![];
        for _ in 0..1100 {
            match there.spawn("echo", "").timeout(Duration::from_secs(5)).wait() {
                Ok(r) => got.push(r),
                Err(_) => break,
            }
        }
        for r in got {
            let _ = r.stop().timeout(Duration::from_secs(5)).wait();
        }
        n.shutdown();
    });

    // The legitimate client.
    let rt = runtime();
    let client = Node::start(&rt, RemoteConfig::dev())?;
    let echo = client.remote(addr).lookup("echo").timeout(Duration::from_secs(5)).wait()?;
    let ping = Ping { data: Bytes::from(vec![7u8; 64]) };
    let start = Instant::now();
    let total = Duration::from_secs(seconds);
    let warm = total / 5;
    let interval = (total / 10).max(Duration::from_secs(1));
    let mut all = histogram();
    let mut window = histogram();
    let mut failures = 0u64;
    let mut next_report = start + interval;
    let mut next_sample = start + Duration::from_secs(1);
    // (seconds since start, KiB) after warm-up.
    let mut samples: Vec<(f64, u64)> = vec![];
    let rss_start = rss_kib(pid).unwrap_or(0);
    println!("rss at start: {rss_start} KiB");
    while start.elapsed() < total {
        let t = Instant::now();
        match echo.ask::<_, Ping>(&ping).timeout(Duration::from_secs(2)).wait() {
            Ok(_) => {
                let d = t.elapsed().as_nanos() as u64;
                window.saturating_record(d);
                if start.elapsed() >= warm {
                    all.saturating_record(d);
                }
            }
            Err(_) => failures += 1,
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(1);
            if start.elapsed() >= warm {
                samples.push((start.elapsed().as_secs_f64(), rss_kib(pid).unwrap_or(0)));
            }
        }
        if Instant::now() >= next_report {
            let rss = rss_kib(pid).unwrap_or(0);
            println!(
                "{:>5.0} s  asks {:>7}  p50 {:>8.1?}  p99 {:>8.1?}  rss {rss} KiB  attack rounds {}",
                start.elapsed().as_secs_f64(),
                window.len(),
                percentile(&window, 0.5),
                percentile(&window, 0.99),
                attackers.rounds(),
            );
            window.reset();
            next_report += interval;
        }
    }
    attackers.stop();
    let end_rss = rss_kib(pid).unwrap_or(0);
    let alive = echo.ask::<_, Ping>(&ping).timeout(Duration::from_secs(5)).wait().is_ok();
    let p99 = percentile(&all, 0.99);
    let (warm_s, total_s) = (warm.as_secs_f64(), total.as_secs_f64());
    let third = (total_s - warm_s) / 3.0;
    let max_in = |from: f64, to: f64| {
        samples.iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, r)| *r).max().unwrap_or(0)
    };
    let early = max_in(warm_s, warm_s + third).max(1);
    let late = max_in(total_s - third, total_s + 1.0);
    let rss_max = samples.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let growth = late as f64 / early as f64 - 1.0;
    println!(
        "legitimate asks after warm-up: {} (failed {failures}), p50 {:?}, p99 {:?}, max {:?}",
        all.len(),
        percentile(&all, 0.5),
        p99,
        Duration::from_nanos(all.max())
    );
    println!(
        "rss (max per third after warm-up) first {early} KiB, last {late} KiB (growth {:+.1} %); \
         max {rss_max} KiB; after the attacks stopped {end_rss} KiB",
        growth * 100.0
    );
    client.shutdown();
    drop(child.stdin.take());
    let status = child.wait()?;
    let pass = growth <= 0.10 && p99 <= Duration::from_millis(10) && alive && status.success();
    println!(
        "{}: growth {:+.1} % (<= 10 %), p99 {:?} (<= 10 ms), node alive {alive}, exit {status}",
        if pass { "PASS" } else { "FAIL" },
        growth * 100.0,
        p99
    );
    Ok(pass)
}

/// Soak a node on loopback for a bounded time (see the example's doc comment).
#[derive(clap::Parser)]
#[command(name = "soak", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    child: Option<Child>,
    /// How long to run, in seconds.
    #[arg(default_value_t = 600)]
    seconds: u64,
}

#[derive(clap::Subcommand)]
enum Child {
    /// The node under test (the child process this binary starts).
    Serve,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The attackers' nodes use the development certificate: their warnings would flood the
    // output (errors still show).
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::ERROR).init();
    let cli = <Cli as clap::Parser>::parse();
    if let Some(Child::Serve) = cli.child {
        return serve();
    }
    if run(cli.seconds)? {
        Ok(())
    } else {
        std::process::exit(1)
    }
}
