//! The command line: workloads by name, the cores, shards and idle policy to run them with, the
//! outputs (table, JSON Lines, plots), and the `compare` and `plot` subcommands.

use clap::{Args, Parser, Subcommand, ValueEnum};
use corelane::Idle;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "corelane-perf",
    version,
    about = "corelane perf harness: engine workloads next to raw baselines measured in the same run",
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Compare two JSON Lines files: every figure's ratio (B / A) with each side's spread,
    /// flagged where the two runs' ranges do not overlap.
    Compare {
        /// The reference (before).
        a: PathBuf,
        /// The candidate (after).
        b: PathBuf,
        /// Exit with status 1 when a figure got worse beyond its spread.
        #[arg(long)]
        strict: bool,
    },
    /// Merge JSON Lines files of the same workloads from separate processes: each figure's
    /// runs become the files' medians (one per process), so the table's spread is max / min
    /// across processes.
    Merge {
        /// Where the merged JSON Lines go.
        #[arg(long)]
        out: PathBuf,
        /// The files to merge.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the peers binary's figures as Markdown tables: frameworks side by side, and
    /// loaded against quiet when a second file (the same workloads under load) is given.
    PeersTable {
        /// The peers' JSON Lines (quiet machine).
        quiet: PathBuf,
        /// The same workloads with another process keeping a core busy.
        loaded: Option<PathBuf>,
    },
    /// Plot JSON Lines files (from `--json` or the peers binary) into a directory: SVG charts
    /// and an `index.md` page with the table.
    Plot {
        /// Where the charts and the page go.
        #[arg(long)]
        out: PathBuf,
        /// The files to plot.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Workloads to run (default: all, in this order; `--list` describes them).
    #[arg(value_enum)]
    pub(crate) workloads: Vec<Workload>,
    /// List the workloads with what each measures, and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Smaller runs: the whole suite in well under a minute.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Runs per workload (at least 1); the median is reported with the range of all runs.
    #[arg(long, default_value_t = 3, value_parser = parse_runs)]
    pub(crate) runs: usize,
    /// Write every figure (every run's value, with the run's metadata) as JSON Lines to this
    /// file, each workload as it finishes.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Write charts and a page showing them with the table into this directory.
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
    /// Cores to run on, e.g. `2,3,4` or `2-5` (isolated cores on bare metal). The first two
    /// carry the two-core workloads; runtimes sized by the harness get one shard per core.
    /// Default: the first cores this process may use.
    #[arg(long, value_parser = parse_cores)]
    pub(crate) cores: Option<CoreList>,
    /// Shards for the workloads that size their runtime like a user would (spawn-external):
    /// default one per core.
    #[arg(long)]
    pub(crate) shards: Option<usize>,
    /// Idle policy: `spin`, `park` or `spin-then-park:DURATION` (`50us`, `1ms`). Default: spin
    /// for the engine workloads, the builder's default for the user-path ones.
    #[arg(long, value_parser = parse_idle)]
    pub(crate) idle: Option<Idle>,
    /// A figure whose runs' max / min exceeds this is flagged unstable instead of reported as a
    /// clean median (a number of at least 1: max / min is never below it).
    #[arg(long, default_value_t = 1.5, value_parser = parse_max_spread)]
    pub(crate) max_spread: f64,
    /// Internal: measure idle-actor memory in this (fresh) process and print the bytes.
    #[arg(long, hide = true)]
    pub(crate) child_idle_memory: Option<u64>,
    /// Internal: measure pending-timer memory in this (fresh) process and print the bytes.
    #[arg(long, hide = true)]
    pub(crate) child_timer_memory: Option<u64>,
    /// Internal: measure idle-grain memory in this (fresh) process and print the bytes.
    #[arg(long, hide = true)]
    pub(crate) child_grain_memory: Option<u64>,
    /// Internal: measure the telemetry fleet's memory in this (fresh) process.
    #[arg(long, hide = true)]
    pub(crate) child_telemetry_memory: Option<u64>,
}

/// Every workload, in the order the default suite runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// Raw baseline: a cache line bounced between two pinned threads (round trip).
    RawC2c,
    /// Raw baseline: a round trip over two cache lines, one written by each thread.
    RawC2cPair,
    /// Raw baseline: a bare SPSC ring between two pinned threads (items/s).
    RawSpsc,
    /// Raw baseline: a timestamp one way from a pinned thread to one spinning on another core.
    RawOneway,
    /// Raw baseline: a thread asleep in a futex woken by a pinned thread on another core.
    RawFutexWake,
    /// Raw baseline: two threads pinned to one core hand a word back and forth, yielding (round trip).
    RawSameCore,
    /// Tell to an actor on the sender's shard (msg/s).
    TellLocal,
    /// Tell to an actor on the other shard (msg/s).
    TellCross,
    /// Two actors bounce a message on one shard (round trip).
    PingpongLocal,
    /// Two actors bounce a message across two shards (round trip).
    PingpongCross,
    /// A plain thread asks an actor and blocks for each answer (latency).
    AskExternal,
    /// A plain thread on the shard's own core asks an actor (defaults; latency).
    AskSameCore,
    /// One way from shard to shard, both spinning (`Idle::Spin`; latency).
    OnewaySpin,
    /// One way from shard to shard, the receiver asleep (`Idle::Park`; latency).
    OnewayPark,
    /// One way from shard to shard under the default `Idle::SpinThenPark(50us)`, back to back.
    OnewaySpinThenPark,
    /// One way to a shard parked after its spin window (`Idle::SpinThenPark(50us)`): its wake.
    WakeParked,
    /// An actor spawns idle actors on its shard (actors/s).
    Spawn,
    /// `main` spawns, tells and asks actors under the builder's defaults (actors/s).
    SpawnExternal,
    /// Resident memory per idle actor (a million, in a fresh process).
    IdleMemory,
    /// Tell into a bounded mailbox (msg/s).
    TellBounded,
    /// Tell into a priority mailbox (msg/s).
    TellPriority,
    /// Tell through a round-robin router across shards (msg/s).
    RouterRr,
    /// Timers armed by an actor (ns per schedule, next to a bare binary heap).
    Timers,
    /// Resident memory per pending timer (a million, in a fresh process).
    TimerMemory,
    /// Raw baseline: a bare quinn stream round trip on loopback (latency).
    RawQuic,
    /// Raw baseline: bare quinn streaming records of a remote tell's size on one stream (msg/s).
    RawQuicStream,
    /// Ask between two nodes over QUIC (latency).
    RemotePingpong,
    /// Tell between two nodes over one QUIC connection (msg/s).
    RemoteTell,
    /// A grain's ask across members (latency; etcd-free memory provider).
    GrainAsk,
    /// A cluster client's grain ask, alternating with a member's (latency).
    ClientGrainAsk,
    /// A named actor's ask across members (latency, store requests per message).
    NamedAsk,
    /// Tells to grains across members (msg/s).
    GrainTell,
    /// First message to grains that are not active yet (latency).
    GrainActivate,
    /// Resident memory per idle grain (a million, in a fresh process).
    GrainMemory,
    /// Ticks → books → strategy → risk → gateway as actors, over bare rings, and as plain calls.
    TradingPipeline,
    /// 100 000 sensor actors → per-shard aggregators → a roll-up (throughput, delay, memory).
    TelemetryIngest,
}

impl Workload {
    /// The workload's name on the command line and in the figures.
    pub(crate) fn name(self) -> String {
        self.to_possible_value().expect("no skipped variants").get_name().to_string()
    }
}

/// Core ids as `--cores` lists them, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CoreList(pub(crate) Vec<usize>);

/// `2,3,4`, `2-5`, or a mix (`0,2-3`).
pub(crate) fn parse_cores(s: &str) -> Result<CoreList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| t.trim().parse::<usize>().map_err(|_| format!("{t:?} is not a core number"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{part:?}: the range runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    if out.is_empty() {
        return Err("no cores given".into());
    }
    let mut seen = out.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != out.len() {
        return Err(format!("{s:?} names a core twice"));
    }
    Ok(CoreList(out))
}

/// A count of runs: a whole number of at least 1.
pub(crate) fn parse_runs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("at least one run is needed".into()),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// The spread beyond which a figure is flagged: a finite number of at least 1 (a max / min
/// ratio is never below 1, so a smaller threshold would flag every figure, and NaN none).
pub(crate) fn parse_max_spread(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 1.0 => Ok(x),
        Ok(_) => Err(format!("{s}: a spread is max / min, a finite number of at least 1 (e.g. 1.5)")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// `spin`, `park`, `spin-then-park:50us` (the engine's own text form of `Idle`).
pub(crate) fn parse_idle(s: &str) -> Result<Idle, String> {
    s.parse().map_err(|e: corelane::ParseIdleError| e.to_string())
}

/// How an idle policy is written on the command line (and in the metadata).
pub(crate) fn idle_name(idle: Idle) -> String {
    idle.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cores_take_lists_and_ranges_and_refuse_nonsense() {
        assert_eq!(parse_cores("2,3,4").unwrap().0, vec![2, 3, 4]);
        assert_eq!(parse_cores("0,2-4").unwrap().0, vec![0, 2, 3, 4]);
        assert!(parse_cores("3-1").is_err());
        assert!(parse_cores("1,1").is_err());
        assert!(parse_cores("a").is_err());
        assert!(parse_cores("").is_err());
    }

    #[test]
    fn the_command_line_parses_every_flag() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "corelane-perf",
            "raw-c2c",
            "pingpong-cross",
            "--cores",
            "2-3",
            "--shards",
            "2",
            "--idle",
            "park",
            "--runs",
            "5",
        ])
        .unwrap();
        assert_eq!(cli.run.workloads, [Workload::RawC2c, Workload::PingpongCross]);
        assert_eq!(cli.run.cores, Some(CoreList(vec![2, 3])));
        assert_eq!((cli.run.shards, cli.run.idle, cli.run.runs), (Some(2), Some(Idle::Park), 5));
        assert!(Cli::try_parse_from(["corelane-perf", "no-such-workload"]).is_err());
        let cmp =
            Cli::try_parse_from(["corelane-perf", "compare", "a.jsonl", "b.jsonl", "--strict"]).unwrap();
        assert!(matches!(cmp.command, Some(Command::Compare { strict: true, .. })));
    }

    #[test]
    fn runs_and_the_spread_threshold_refuse_what_cannot_be_meant() {
        assert_eq!(parse_runs("1"), Ok(1));
        assert_eq!(parse_runs("7"), Ok(7));
        assert!(parse_runs("0").is_err());
        assert!(parse_runs("-1").is_err());
        assert!(parse_runs("two").is_err());
        assert_eq!(parse_max_spread("1.5"), Ok(1.5));
        assert_eq!(parse_max_spread("1"), Ok(1.0));
        for bad in ["0.5", "0", "-2", "nan", "inf", "wide"] {
            assert!(parse_max_spread(bad).is_err(), "{bad}");
        }
        use clap::Parser;
        assert!(Cli::try_parse_from(["corelane-perf", "--runs", "0", "raw-c2c"]).is_err());
        assert!(Cli::try_parse_from(["corelane-perf", "--max-spread", "nan", "raw-c2c"]).is_err());
    }

    #[test]
    fn idle_policies_parse_and_print_back() {
        assert_eq!(parse_idle("spin").unwrap(), Idle::Spin);
        assert_eq!(parse_idle("park").unwrap(), Idle::Park);
        let d = parse_idle("spin-then-park:50us").unwrap();
        assert_eq!(d, Idle::SpinThenPark(Duration::from_micros(50)));
        assert_eq!(parse_idle(&idle_name(d)).unwrap(), d);
        assert_eq!(parse_idle("spin-then-park:1ms").unwrap(), Idle::SpinThenPark(Duration::from_millis(1)));
        assert!(parse_idle("spin-then-park:50").is_err());
        assert!(parse_idle("nap").is_err());
    }

    #[test]
    fn workload_names_are_the_documented_ones() {
        let names: Vec<String> = Workload::value_variants().iter().map(|w| w.name()).collect();
        for n in ["raw-c2c", "raw-spsc", "pingpong-cross", "router-rr", "raw-quic", "client-grain-ask"] {
            assert!(names.iter().any(|m| m == n), "{n} in {names:?}");
        }
    }
}
