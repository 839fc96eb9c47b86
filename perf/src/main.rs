//! `corelane-perf`: runs engine workloads next to raw hardware baselines measured in the same
//! process, and reports medians over several runs plus each figure's ratio to its baseline.
//!
//! ```text
//! corelane-perf [WORKLOAD ...] [--quick] [--runs N] [--json FILE]
//! ```

mod ask;
mod baseline;
mod grain;
mod pingpong;
mod remote;
mod report;
mod router;
mod spawn;
mod tell;
mod timers;

use clap::Parser;
use corelane::{Idle, Runtime, Shards};
use indicatif::{ProgressBar, ProgressStyle};
use report::{fig, Results};
use std::path::PathBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every workload, in the order the default suite runs them.
const WORKLOADS: [&str; 24] = [
    "raw-c2c",
    "raw-spsc",
    "tell-local",
    "tell-cross",
    "pingpong-local",
    "pingpong-cross",
    "ask-external",
    "spawn",
    "spawn-external",
    "idle-memory",
    "tell-bounded",
    "tell-priority",
    "router-rr",
    "timers",
    "timer-memory",
    "raw-quic",
    "remote-pingpong",
    "remote-tell",
    "grain-ask",
    "client-grain-ask",
    "named-ask",
    "grain-tell",
    "grain-activate",
    "grain-memory",
];

#[derive(Parser)]
#[command(name = "corelane-perf", about = "corelane perf harness: workloads and raw baselines")]
struct Cli {
    /// Workloads to run (default: all). One of: raw-c2c, raw-spsc, tell-local, tell-cross,
    /// pingpong-local, pingpong-cross, ask-external, spawn, spawn-external, idle-memory, tell-bounded,
    /// tell-priority, router-rr, timers, timer-memory, raw-quic, remote-pingpong, remote-tell,
    /// grain-ask, client-grain-ask, named-ask, grain-tell, grain-activate, grain-memory.
    workloads: Vec<String>,
    /// Smaller runs: the whole suite in well under a minute.
    #[arg(long)]
    quick: bool,
    /// Runs per workload; the median is reported (default 3).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also write the medians as JSON Lines to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Internal: measure idle-actor memory in this (fresh) process and print the bytes.
    #[arg(long, hide = true)]
    child_idle_memory: Option<u64>,
    /// Internal: measure pending-timer memory in this (fresh) process and print the bytes.
    #[arg(long, hide = true)]
    child_timer_memory: Option<u64>,
    /// Internal: measure idle-grain memory in this (fresh) process and print the bytes.
    #[arg(long, hide = true)]
    child_grain_memory: Option<u64>,
}

/// Two cores to measure on: `a` for the initiating side, `b` for the other. `None` when the
/// process may not pin (fewer than two cores), in which case nothing is pinned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cores {
    pub(crate) a: Option<usize>,
    pub(crate) b: Option<usize>,
}

pub(crate) fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// A spinning runtime of `n` shards on cores a, b (pinned when there are two cores).
pub(crate) fn engine_runtime(cores: Cores, n: usize) -> Runtime {
    let b = Runtime::builder().idle(Idle::Spin).name("perf");
    match (cores.a, cores.b) {
        (Some(a), Some(c)) if n == 2 => b.shards(Shards::Cores(vec![a, c])).pin(true),
        _ => b.shards(Shards::Count(n)),
    }
    .build()
    .expect("perf runtime builds")
}

/// A spinning runtime of one shard, pinned to `core` when given.
pub(crate) fn engine_runtime_on(core: Option<usize>) -> Runtime {
    let b = Runtime::builder().idle(Idle::Spin).name("perf");
    match core {
        Some(c) => b.shards(Shards::Cores(vec![c])).pin(true),
        None => b.shards(Shards::Count(1)),
    }
    .build()
    .expect("perf runtime builds")
}

fn run_one(name: &str, cores: Cores, quick: bool) -> Vec<report::Figure> {
    let k = |full: u64, q: u64| if quick { q } else { full };
    match name {
        "raw-c2c" => baseline::raw_c2c(cores, k(2_000_000, 500_000)),
        "raw-spsc" => baseline::raw_spsc(cores, k(200_000_000, 50_000_000)),
        "tell-local" => tell::tell("tell-local", cores, false, k(50_000_000, 10_000_000)),
        "tell-cross" => tell::tell("tell-cross", cores, true, k(50_000_000, 10_000_000)),
        "pingpong-local" => pingpong::pingpong("pingpong-local", cores, false, k(20_000_000, 5_000_000)),
        "pingpong-cross" => pingpong::pingpong("pingpong-cross", cores, true, k(2_000_000, 500_000)),
        "ask-external" => ask::ask_external(cores, k(300_000, 100_000)),
        "spawn" => spawn::spawn(cores, k(2_000_000, 500_000)),
        "spawn-external" => spawn::spawn_external(k(100_000, 20_000)),
        "idle-memory" => spawn::idle_memory(1_000_000),
        "tell-bounded" => tell::tell_bounded(cores, k(50_000_000, 10_000_000)),
        "tell-priority" => tell::tell_priority(cores, k(20_000_000, 5_000_000)),
        "router-rr" => router::router_rr(cores, k(20_000_000, 5_000_000)),
        "timers" => timers::timers(cores, k(2_000_000, 500_000)),
        "timer-memory" => timers::timer_memory(1_000_000),
        "raw-quic" => remote::raw_quic(cores, k(50_000, 10_000)),
        "remote-pingpong" => remote::remote_pingpong(cores, k(50_000, 10_000)),
        "remote-tell" => remote::remote_tell(cores, k(2_000_000, 400_000)),
        "grain-ask" => grain::grain_ask(cores, k(50_000, 10_000)),
        "named-ask" => grain::named_ask(cores, k(50_000, 10_000)),
        "client-grain-ask" => grain::client_grain_ask(cores, k(50_000, 10_000)),
        "grain-tell" => grain::grain_tell(cores, k(2_000_000, 400_000)),
        "grain-activate" => grain::grain_activate(cores, k(20_000, 5_000)),
        "grain-memory" => grain::grain_memory(1_000_000),
        _ => unreachable!("validated"),
    }
}

/// Ratios of engine figures to the raw baselines measured in this same run.
fn derived(r: &Results) -> Vec<report::Figure> {
    let mut v = vec![];
    if let (Some(pp), Some(c2c)) =
        (r.median("pingpong-cross", "ns_per_roundtrip"), r.median("raw-c2c", "ns_per_roundtrip"))
    {
        v.push(fig("pingpong-cross", "x_raw_c2c", pp / c2c, "ratio"));
    }
    if let (Some(t), Some(s)) = (r.median("tell-cross", "msgs_per_sec"), r.median("raw-spsc", "msgs_per_sec"))
    {
        v.push(fig("tell-cross", "share_of_raw_spsc", t / s, "ratio"));
    }
    if let (Some(t), Some(s)) = (r.median("tell-local", "msgs_per_sec"), r.median("raw-spsc", "msgs_per_sec"))
    {
        v.push(fig("tell-local", "share_of_raw_spsc", t / s, "ratio"));
    }
    for (w, base) in
        [("tell-bounded", "tell-local"), ("tell-priority", "tell-local"), ("router-rr", "tell-cross")]
    {
        if let (Some(a), Some(b)) = (r.median(w, "msgs_per_sec"), r.median(base, "msgs_per_sec")) {
            v.push(fig(w, &format!("share_of_{}", base.replace('-', "_")), a / b, "ratio"));
        }
    }
    for q in ["p50_ns", "p99_ns"] {
        if let (Some(a), Some(raw)) = (r.median("remote-pingpong", q), r.median("raw-quic", q)) {
            v.push(fig("remote-pingpong", &format!("{}_x_raw_quic", &q[..3]), a / raw, "ratio"));
        }
    }
    for q in ["p50_ns", "p99_ns"] {
        for w in ["grain-ask", "named-ask"] {
            if let (Some(g), Some(rp)) = (r.median(w, q), r.median("remote-pingpong", q)) {
                v.push(fig(w, &format!("{}_x_remote_pingpong", &q[..3]), g / rp, "ratio"));
            }
        }
    }
    if let (Some(g), Some(rt)) =
        (r.median("grain-tell", "msgs_per_sec"), r.median("remote-tell", "msgs_per_sec"))
    {
        v.push(fig("grain-tell", "share_of_remote_tell", g / rt, "ratio"));
    }
    if let (Some(cold), Some(warm)) = (r.median("grain-activate", "p50_ns"), r.median("grain-ask", "p50_ns"))
    {
        v.push(fig("grain-activate", "p50_x_grain_ask", cold / warm, "ratio"));
    }
    if let (Some(a), Some(c2c)) =
        (r.median("ask-external", "p50_ns"), r.median("raw-c2c", "ns_per_roundtrip"))
    {
        v.push(fig("ask-external", "p50_x_raw_c2c", a / c2c, "ratio"));
    }
    v
}

fn main() {
    let cli = Cli::parse();
    let ids: Vec<usize> =
        core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
    let cores =
        if ids.len() >= 2 { Cores { a: Some(ids[0]), b: Some(ids[1]) } } else { Cores { a: None, b: None } };
    if let Some(n) = cli.child_idle_memory {
        spawn::idle_memory_child(cores, n);
    }
    if let Some(n) = cli.child_timer_memory {
        timers::timer_memory_child(cores, n);
    }
    if let Some(n) = cli.child_grain_memory {
        grain::grain_memory_child(cores, n);
    }
    let names: Vec<String> = if cli.workloads.is_empty() {
        WORKLOADS.iter().map(|s| s.to_string()).collect()
    } else {
        cli.workloads.clone()
    };
    for n in &names {
        if !WORKLOADS.contains(&n.as_str()) {
            eprintln!("unknown workload {n:?}; known: {}", WORKLOADS.join(", "));
            std::process::exit(2);
        }
    }
    let ids: Vec<usize> =
        core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
    let cores =
        if ids.len() >= 2 { Cores { a: Some(ids[0]), b: Some(ids[1]) } } else { Cores { a: None, b: None } };
    let runs = cli.runs.max(1);
    eprintln!(
        "corelane-perf: {} workload(s) x {runs} run(s){}, cores {:?}",
        names.len(),
        if cli.quick { " (quick)" } else { "" },
        ids
    );
    let bar = ProgressBar::new((names.len() * runs) as u64);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]").unwrap());
    let mut results = Results::default();
    for name in &names {
        for run in 0..runs {
            bar.set_message(format!("{name} (run {})", run + 1));
            results.add(run_one(name, cores, cli.quick));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let d = derived(&results);
    results.add(d);
    results.print_table();
    if let Some(path) = cli.json {
        if let Err(e) = results.write_json(&path) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        eprintln!("wrote {}", path.display());
    }
}
