//! `corelane-perf`: runs engine workloads next to raw hardware baselines measured in the same
//! process, and reports the median over several runs with their range, each figure's ratio to
//! its baseline, and its target with a verdict.
//!
//! ```text
//! corelane-perf [WORKLOAD ...] [--quick] [--runs N] [--json FILE] [--plot DIR]
//!               [--cores 2,3,4] [--shards N] [--idle spin|park|spin-then-park:50us] [--list]
//! corelane-perf compare A.jsonl B.jsonl [--strict]
//! corelane-perf plot --out DIR FILE.jsonl ...
//! ```

mod ask;
mod baseline;
mod cli;
mod compare;
mod derived;
mod domain;
mod grain;
mod jsonl;
mod peers_table;
mod pingpong;
mod plot;
mod remote;
mod report;
mod router;
mod spawn;
mod spsc;
mod targets;
mod tell;
mod timers;
mod wake;

use clap::{Parser, ValueEnum};
use cli::{Cli, Command, RunArgs, Workload};
use corelane::{Idle, Runtime, Shards};
use indicatif::{ProgressBar, ProgressStyle};
use report::Results;
use std::sync::OnceLock;
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the command line chose for the runtimes the workloads build.
pub(crate) struct Setup {
    /// The cores in use, in order.
    cores: Vec<usize>,
    /// `--idle`, if given.
    pub(crate) idle: Option<Idle>,
    /// `--shards`, if given.
    shards: Option<usize>,
    /// Whether `--cores` chose the cores (then user-path runtimes are pinned to them).
    cores_given: bool,
}

static SETUP: OnceLock<Setup> = OnceLock::new();

pub(crate) fn setup() -> &'static Setup {
    SETUP.get_or_init(|| Setup { cores: available_cores(), idle: None, shards: None, cores_given: false })
}

fn available_cores() -> Vec<usize> {
    core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect()
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

/// A runtime of `n` shards (spinning unless `--idle` says otherwise) on cores a, b (pinned when there are two cores).
pub(crate) fn engine_runtime(cores: Cores, n: usize) -> Runtime {
    let b = Runtime::builder().idle(setup().idle.unwrap_or(Idle::Spin)).name("perf");
    match (cores.a, cores.b) {
        (Some(a), Some(c)) if n == 2 => b.shards(Shards::Cores(vec![a, c])).pin(true),
        _ => b.shards(Shards::Count(n)),
    }
    .build()
    .expect("perf runtime builds")
}

/// A runtime of one shard (spinning unless `--idle` says otherwise), pinned to `core` when given.
pub(crate) fn engine_runtime_on(core: Option<usize>) -> Runtime {
    let b = Runtime::builder().idle(setup().idle.unwrap_or(Idle::Spin)).name("perf");
    match core {
        Some(c) => b.shards(Shards::Cores(vec![c])).pin(true),
        None => b.shards(Shards::Count(1)),
    }
    .build()
    .expect("perf runtime builds")
}

/// A runtime as a user builds it: the builder's defaults, except what `--cores`, `--shards`
/// and `--idle` chose.
pub(crate) fn user_runtime() -> Runtime {
    let s = setup();
    let mut b = Runtime::builder();
    if let Some(idle) = s.idle {
        b = b.idle(idle);
    }
    b = match (s.shards, s.cores_given) {
        (Some(n), true) => {
            b.shards(Shards::Cores(s.cores.iter().copied().cycle().take(n).collect())).pin(n <= s.cores.len())
        }
        (None, true) => b.shards(Shards::Cores(s.cores.clone())).pin(true),
        (Some(n), false) => b.shards(Shards::Count(n)),
        (None, false) => b,
    };
    b.build().expect("a runtime with the defaults")
}

fn run_one(w: Workload, cores: Cores, quick: bool) -> Vec<report::Figure> {
    let k = |full: u64, q: u64| if quick { q } else { full };
    match w.name().as_str() {
        "raw-c2c" => baseline::raw_c2c(cores, k(2_000_000, 500_000)),
        "raw-c2c-pair" => baseline::raw_c2c_pair(cores, k(2_000_000, 500_000)),
        "raw-spsc" => baseline::raw_spsc(cores, k(200_000_000, 50_000_000)),
        "tell-local" => tell::tell("tell-local", cores, false, k(50_000_000, 10_000_000)),
        "tell-cross" => tell::tell("tell-cross", cores, true, k(50_000_000, 10_000_000)),
        "pingpong-local" => pingpong::pingpong("pingpong-local", cores, false, k(20_000_000, 5_000_000)),
        "pingpong-cross" => pingpong::pingpong("pingpong-cross", cores, true, k(2_000_000, 500_000)),
        "ask-external" => ask::ask_external(cores, k(300_000, 100_000)),
        "ask-same-core" => ask::ask_same_core(cores, k(100_000, 20_000)),
        "raw-same-core" => baseline::raw_same_core(cores, k(100_000, 20_000)),
        "raw-oneway" => wake::raw_oneway(cores, k(200_000, 50_000)),
        "raw-futex-wake" => wake::raw_futex_wake(cores, k(10_000, 2_000)),
        "oneway-spin" => wake::oneway("oneway-spin", cores, Idle::Spin, Duration::ZERO, k(100_000, 20_000)),
        "oneway-park" => wake::oneway("oneway-park", cores, Idle::Park, wake::PARK_GAP, k(10_000, 2_000)),
        "oneway-spin-then-park" => wake::oneway(
            "oneway-spin-then-park",
            cores,
            wake::default_spin_then_park(),
            Duration::ZERO,
            k(100_000, 20_000),
        ),
        "wake-parked" => wake::oneway(
            "wake-parked",
            cores,
            wake::default_spin_then_park(),
            wake::PARK_GAP,
            k(10_000, 2_000),
        ),
        "spawn" => spawn::spawn(cores, k(2_000_000, 500_000)),
        "spawn-external" => spawn::spawn_external(k(100_000, 20_000)),
        "idle-memory" => spawn::idle_memory(1_000_000),
        "tell-bounded" => tell::tell_bounded(cores, k(50_000_000, 10_000_000)),
        "tell-priority" => tell::tell_priority(cores, k(20_000_000, 5_000_000)),
        "router-rr" => router::router_rr(cores, k(20_000_000, 5_000_000)),
        "timers" => timers::timers(cores, k(2_000_000, 500_000)),
        "timer-memory" => timers::timer_memory(1_000_000),
        "raw-quic" => remote::raw_quic(cores, k(50_000, 10_000)),
        "raw-quic-stream" => remote::raw_quic_stream(cores, k(4_000_000, 1_000_000)),
        "remote-pingpong" => remote::remote_pingpong(cores, k(50_000, 10_000)),
        "remote-tell" => remote::remote_tell(cores, k(2_000_000, 400_000)),
        "grain-ask" => grain::grain_ask(cores, k(50_000, 10_000)),
        "named-ask" => grain::named_ask(cores, k(50_000, 10_000)),
        "client-grain-ask" => grain::client_grain_ask(cores, k(50_000, 10_000)),
        "grain-tell" => grain::grain_tell(cores, k(2_000_000, 400_000)),
        "grain-activate" => grain::grain_activate(cores, k(20_000, 5_000)),
        "grain-memory" => grain::grain_memory(1_000_000),
        "trading-pipeline" => domain::trading::trading_pipeline(cores, k(400_000, 100_000)),
        "telemetry-ingest" => domain::telemetry::telemetry_ingest(cores, k(2_000_000, 500_000)),
        other => unreachable!("every workload has a runner: {other}"),
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Compare { a, b, strict }) => match compare::run(&a, &b) {
            Ok(worse) => std::process::exit(if worse && strict { 1 } else { 0 }),
            Err(e) => fail(&format!("cannot compare: {e}")),
        },
        Some(Command::Merge { out, files }) => match jsonl::merge(&files, &out) {
            Ok(series) => print!("{}", report::table(&series, 1.5)),
            Err(e) => fail(&format!("cannot merge into {}: {e}", out.display())),
        },
        Some(Command::PeersTable { quiet, loaded }) => {
            let read = |p: &std::path::Path| match jsonl::read(p) {
                Ok(l) => l.records,
                Err(e) => fail(&format!("cannot read {}: {e}", p.display())),
            };
            let quiet = read(&quiet);
            let loaded = loaded.as_deref().map(read);
            print!("{}", peers_table::tables(&quiet, loaded.as_deref()));
        }
        Some(Command::Plot { out, files }) => {
            let mut records = Vec::new();
            for f in &files {
                match jsonl::read(f) {
                    Ok(l) => records.extend(l.records),
                    Err(e) => fail(&format!("cannot read {}: {e}", f.display())),
                }
            }
            match plot::plot(&records, &out) {
                Ok(files) => eprintln!("wrote {} in {}", files.join(", "), out.display()),
                Err(e) => fail(&format!("cannot plot into {}: {e}", out.display())),
            }
        }
        None => run(cli.run),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("corelane-perf: {msg}");
    std::process::exit(1)
}

fn run(args: RunArgs) {
    if args.list {
        for w in Workload::value_variants() {
            let help =
                w.to_possible_value().and_then(|p| p.get_help().map(|h| h.to_string())).unwrap_or_default();
            println!("{:<18} {help}", w.name());
        }
        return;
    }
    let available = available_cores();
    let cores_list = match &args.cores {
        Some(cli::CoreList(list)) => {
            if let Some(c) = list.iter().find(|c| !available.contains(c)) {
                fail(&format!("core {c} is not one this process may run on (it may use {available:?})"));
            }
            list.clone()
        }
        None => available,
    };
    if args.shards == Some(0) {
        fail("--shards must be at least 1");
    }
    let cores = if cores_list.len() >= 2 {
        Cores { a: Some(cores_list[0]), b: Some(cores_list[1]) }
    } else {
        // Two spinning threads pinned to one core would take turns by the scheduler's slice.
        eprintln!("corelane-perf: one core only: the two-thread workloads run unpinned");
        Cores { a: None, b: None }
    };
    let _ = SETUP.set(Setup {
        cores: cores_list.clone(),
        idle: args.idle,
        shards: args.shards,
        cores_given: args.cores.is_some(),
    });
    if let Some(n) = args.child_idle_memory {
        spawn::idle_memory_child(cores, n);
    }
    if let Some(n) = args.child_timer_memory {
        timers::timer_memory_child(cores, n);
    }
    if let Some(n) = args.child_grain_memory {
        grain::grain_memory_child(cores, n);
    }
    if let Some(n) = args.child_telemetry_memory {
        domain::telemetry::telemetry_memory_child(cores, n);
    }
    let workloads: Vec<Workload> =
        if args.workloads.is_empty() { Workload::value_variants().to_vec() } else { args.workloads.clone() };
    let runs = args.runs;
    let info = jsonl::RunInfo {
        cores: &cores_list,
        shards: args.shards,
        idle: args.idle.map(cli::idle_name),
        runs,
        quick: args.quick,
        max_spread: args.max_spread,
    };
    let mut out = args.json.as_ref().map(|p| {
        let mut w =
            jsonl::Writer::create(p).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", p.display())));
        w.line(&jsonl::meta(&info)).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", p.display())));
        w
    });
    eprintln!(
        "corelane-perf {}: {} workload(s) x {runs} run(s){}, cores {cores_list:?}, idle {}",
        env!("CARGO_PKG_VERSION"),
        workloads.len(),
        if args.quick { " (quick)" } else { "" },
        info.idle.as_deref().unwrap_or("default"),
    );
    let bar = ProgressBar::new((workloads.len() * runs) as u64);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]").unwrap());
    let mut results = Results::default();
    for &w in &workloads {
        let mut touched = Vec::new();
        let baselines: Vec<Workload> = derived::paired_baselines(&w.name())
            .into_iter()
            .map(|b| Workload::from_str(b, false).expect("a ratio names a known baseline"))
            .collect();
        for run in 0..runs {
            bar.set_message(format!("{} (run {})", w.name(), run + 1));
            let base: Vec<report::Figure> =
                baselines.iter().flat_map(|&b| run_one(b, cores, args.quick)).collect();
            let mut figs = run_one(w, cores, args.quick);
            figs.extend(derived::paired_ratios(&w.name(), &figs, &base));
            for i in results.add(figs) {
                if !touched.contains(&i) {
                    touched.push(i);
                }
            }
            bar.inc(1);
        }
        for d in derived::new_ratios(&results) {
            touched.push(results.add_series(d));
        }
        if let Some(out) = out.as_mut() {
            for &i in &touched {
                if let Err(e) = out.line(&jsonl::record(results.series(i), args.max_spread)) {
                    fail(&format!("cannot write the JSON Lines: {e}"));
                }
            }
        }
    }
    bar.finish_and_clear();
    results.print_table(args.max_spread);
    if let Some(p) = &args.json {
        eprintln!("wrote {}", p.display());
    }
    if let Some(dir) = &args.plot {
        let records: Vec<jsonl::Record> =
            results.all().iter().map(|s| jsonl::Record { framework: None, series: s.clone() }).collect();
        match plot::plot(&records, dir) {
            Ok(files) => eprintln!("wrote {} in {}", files.join(", "), dir.display()),
            Err(e) => fail(&format!("cannot plot into {}: {e}", dir.display())),
        }
    }
}
