//! Peers side by side: the same workloads on corelane, actix, kameo and ractor, each written as
//! its own documentation shows, with the same counts and the same result checks; each run in a
//! process of its own, the frameworks interleaved round by round, each round starting one framework
//! later (so drift, and a process's place in the order, fall on all alike).
//! Prints each framework's median and range and corelane's ratio to the best peer; `--json FILE`
//! writes the same as JSON Lines (`corelane-perf compare` and `corelane-perf plot` read them).
//! Opt-in: `cargo run --release -p corelane-bench --features peers --bin peers`.
//!
//! ```text
//! peers [WORKLOAD ...] [--rounds N] [--scale F] [--json FILE] [--list]
//! ```
//!
//! A process repeats its workload until it has measured at least 300 ms, and reports items per
//! second over all its repetitions.
//!
//! corelane runs under the builder's defaults (`corelane`) and under `Idle::Spin`
//! (`corelane-spin`); on the user-path workloads also from `main`'s future on a shard
//! (`corelane-block-on`, as actix runs `main` in `System::block_on`). kameo and ractor run on
//! tokio's multi-threaded runtime (as `#[tokio::main]` gives), actix on its `System`. All of them
//! on mimalloc.

mod frameworks;
mod savina;
mod user_paths;

use frameworks::Fw;

/// Every framework runs on the same allocator (DESIGN: mimalloc in binaries and benches).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::Command;
use std::time::Duration;

/// One workload: its name, what it counts, its size at scale 1, and whether it is a user path
/// (then corelane also runs from `block_on`).
pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) metric: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) size: u64,
    pub(crate) user_path: bool,
    pub(crate) about: &'static str,
    /// Runs the workload at `size` on a framework: (items done, time taken). Panics when the
    /// result check fails.
    pub(crate) run: fn(Fw, u64) -> (u64, Duration),
}

/// Each process measures at least this long (repeating the workload), then reports the rate.
const MIN_TIME: Duration = Duration::from_millis(300);

/// ...unless its repeats have taken this long in all (building and dropping runtimes
/// included): a size scaled down to a few messages measures microseconds per run, and
/// repeating it until `MIN_TIME` was measured would take hours.
const MAX_WALL: Duration = Duration::from_secs(5);

pub(crate) const WORKLOADS: &[Workload] = &[
    user_paths::SPAWN_EXTERNAL,
    user_paths::TELL_EXTERNAL,
    savina::pingpong::WORKLOAD,
    savina::threadring::WORKLOAD,
    savina::counting::WORKLOAD,
    savina::forkjoin::THROUGHPUT,
    savina::forkjoin::CREATION,
    savina::chameneos::WORKLOAD,
    savina::big::WORKLOAD,
    savina::bank::WORKLOAD,
    savina::dictionary::WORKLOAD,
    savina::barber::WORKLOAD,
];

/// The command line.
#[derive(clap::Parser)]
#[command(name = "peers", version, about = "corelane next to actix, kameo and ractor: user paths and Savina")]
struct Cli {
    /// Workloads to run (default: all; `--list` names them).
    workloads: Vec<String>,
    /// List the workloads and exit.
    #[arg(long)]
    list: bool,
    /// Rounds: processes per framework and workload, interleaved (at least 1).
    #[arg(long, default_value_t = 5, value_parser = corelane_bench::parse_rounds)]
    rounds: usize,
    /// Multiplies every workload's size (a positive number; sizes round down, to 1 at least).
    #[arg(long, default_value_t = 1.0, value_parser = corelane_bench::parse_scale)]
    scale: f64,
    /// Also write the figures as JSON Lines to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Internal: run one workload on one framework in this process and print its rate.
    #[arg(long, hide = true, num_args = 3, value_names = ["FRAMEWORK", "WORKLOAD", "SIZE"])]
    child: Option<Vec<String>>,
}

fn main() {
    let cli = <Cli as clap::Parser>::parse();
    if let Some(c) = &cli.child {
        let fw = Fw::parse(&c[0]).unwrap_or_else(|| panic!("unknown framework {:?}", c[0]));
        let w = WORKLOADS.iter().find(|w| w.name == c[1]).expect("known workload");
        let size: u64 = c[2].parse().expect("size");
        // Runs again until `MIN_TIME` is measured: a run of a few milliseconds would report a
        // hiccup of the host as the framework's speed.
        let (mut items, mut t) = (0, Duration::ZERO);
        let wall = std::time::Instant::now();
        while t < MIN_TIME && (items == 0 || wall.elapsed() < MAX_WALL) {
            let (i, d) = (w.run)(fw, size);
            (items, t) = (items + i, t + d);
        }
        println!("{}", items as f64 / t.as_secs_f64());
        return;
    }
    if cli.list {
        for w in WORKLOADS {
            println!("{:<20} {} (size {})", w.name, w.about, w.size);
        }
        return;
    }
    let (rounds, scale, json) = (cli.rounds, cli.scale, cli.json);
    let mut chosen = Vec::new();
    for a in &cli.workloads {
        match WORKLOADS.iter().find(|w| w.name == a) {
            Some(w) => chosen.push(w),
            None => {
                let known: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
                eprintln!("unknown workload {a:?}; known: {}", known.join(", "));
                std::process::exit(2);
            }
        }
    }
    if chosen.is_empty() {
        chosen = WORKLOADS.iter().collect();
    }
    let exe = std::env::current_exe().expect("own path");
    let mut out = json.map(|p| std::io::BufWriter::new(std::fs::File::create(&p).expect("--json file")));
    if let Some(f) = out.as_mut() {
        use std::io::Write;
        let meta = serde_json::json!({
            "kind": "meta", "tool": "peers", "rounds": rounds, "scale": scale,
            "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "args": std::env::args().skip(1).collect::<Vec<_>>(),
        });
        writeln!(f, "{meta}").and_then(|_| f.flush()).expect("write --json");
    }
    let mut failed = false;
    for w in chosen {
        let size = ((w.size as f64 * scale) as u64).max(1);
        let fws: Vec<Fw> = Fw::ALL.iter().copied().filter(|f| w.user_path || !f.block_on()).collect();
        let mut values: Vec<Vec<f64>> = vec![Vec::new(); fws.len()];
        let mut broken: Vec<Option<String>> = vec![None; fws.len()];
        for round in 0..rounds {
            // Each round starts one framework later: a process's place in the order (right
            // after one that freed much memory, which a VM's host may have taken back, or
            // after a quiet one) falls on every framework alike.
            for k in 0..fws.len() {
                let (i, fw) = ((k + round) % fws.len(), &fws[(k + round) % fws.len()]);
                if broken[i].is_some() {
                    continue;
                }
                let out = Command::new(&exe)
                    .args(["--child", fw.name(), w.name, &size.to_string()])
                    .output()
                    .expect("child runs");
                let text = String::from_utf8_lossy(&out.stdout);
                match text.trim().parse::<f64>() {
                    Ok(v) if out.status.success() => values[i].push(v),
                    _ => {
                        let err = String::from_utf8_lossy(&out.stderr);
                        let line = err
                            .lines()
                            .find(|l| l.contains("panicked") || l.contains("assert"))
                            .unwrap_or("");
                        broken[i] = Some(format!("{} {}", out.status, line.trim()));
                    }
                }
            }
        }
        println!("\n{} ({}), size {size}, {rounds} rounds: {} (median, min-max)", w.name, w.about, w.metric);
        let mut medians = vec![f64::NAN; fws.len()];
        for (i, fw) in fws.iter().enumerate() {
            if let Some(why) = &broken[i] {
                println!("  {:<18} FAILED: {why}", fw.name());
                failed = true;
                continue;
            }
            let v = &mut values[i];
            medians[i] = corelane_bench::median(v);
            // Each round is a process of its own: max / min is the spread across processes.
            let spread = v[v.len() - 1] / v[0];
            let flag = if spread > 1.5 { "  (max/min > 1.5: bimodal?)" } else { "" };
            println!(
                "  {:<18} {:>14.0}   {:.0}-{:.0}   max/min {spread:.2}{flag}",
                fw.name(),
                medians[i],
                v[0],
                v[v.len() - 1]
            );
        }
        let best_peer = fws
            .iter()
            .zip(&medians)
            .filter(|(f, m)| !f.ours() && m.is_finite())
            .map(|(_, m)| *m)
            .fold(0.0, f64::max);
        let mut lines = Vec::new();
        for (i, fw) in fws.iter().enumerate() {
            if !values[i].is_empty() {
                lines.push(serde_json::json!({
                    "kind": "figure", "framework": fw.name(), "workload": w.name, "metric": w.metric,
                    "unit": w.unit, "size": size, "runs": values[i],
                }));
            }
            if fw.ours() && medians[i].is_finite() && best_peer > 0.0 {
                let ratio = medians[i] / best_peer;
                let verdict = if ratio >= 2.0 { "pass" } else { "below target 2.0" };
                println!("  {} / best peer: {ratio:.2} ({verdict})", fw.name());
                let per_round: Vec<f64> = values[i].iter().map(|v| v / best_peer).collect();
                lines.push(serde_json::json!({
                    "kind": "figure", "framework": fw.name(), "workload": w.name, "metric": "x_best_peer",
                    "unit": "ratio", "runs": per_round,
                }));
            }
        }
        if let Some(f) = out.as_mut() {
            use std::io::Write;
            for l in lines {
                writeln!(f, "{l}").expect("write --json");
            }
            f.flush().expect("write --json");
        }
    }
    if failed {
        std::process::exit(1);
    }
}
