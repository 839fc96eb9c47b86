//! - `ask-external`: a plain thread (pinned to its own core) asks an actor on a spinning shard
//!   and blocks for each answer. Every ask is one histogram sample.
//! - `ask-same-core`: the same, with the plain thread pinned to the shard's core and the shard
//!   under the builder's default idle policy: what a user's `main` meets when the scheduler
//!   puts it next to the shard (another process keeps the other core busy). Its floor is
//!   `raw-same-core`.

use crate::report::{fig, percentiles, Figure};
use crate::{engine_runtime_on, pin, setup, Cores};
use corelane::{Runtime, Shards};
use corelane_bench::workload::{Echo, EchoMsg};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

pub(crate) fn ask_external(cores: Cores, n: u64) -> Vec<Figure> {
    asks("ask-external", engine_runtime_on(cores.b), cores.a, n)
}

pub(crate) fn ask_same_core(cores: Cores, n: u64) -> Vec<Figure> {
    let b = Runtime::builder()
        .idle(setup().idle.unwrap_or_else(crate::wake::default_spin_then_park))
        .name("perf");
    let rt = match cores.b {
        Some(c) => b.shards(Shards::Cores(vec![c])).pin(true),
        None => b.shards(Shards::Count(1)),
    }
    .build()
    .expect("perf runtime builds");
    asks("ask-same-core", rt, cores.b, n)
}

/// `n` asks from a thread pinned to `asker_core`, one histogram sample each.
fn asks(workload: &str, rt: Runtime, asker_core: Option<usize>, n: u64) -> Vec<Figure> {
    let echo = rt.spawn_on(0, || Echo).unwrap();
    let asker = std::thread::spawn(move || {
        pin(asker_core);
        let mut h = Histogram::<u64>::new(3).unwrap();
        let timeout = Duration::from_secs(5);
        for i in 0..n / 10 {
            echo.ask(|r| EchoMsg::Echo(i, r)).timeout(timeout).wait().unwrap();
        }
        let start = Instant::now();
        for i in 0..n {
            let t = Instant::now();
            let v = echo.ask(|r| EchoMsg::Echo(i, r)).timeout(timeout).wait().unwrap();
            h.record(t.elapsed().as_nanos() as u64).unwrap();
            assert_eq!(v, i + 1);
        }
        (start.elapsed(), h)
    });
    let (total, h) = asker.join().unwrap();
    rt.shutdown().unwrap();
    let mut out = percentiles(workload, &h);
    out.push(fig(workload, "asks_per_sec", n as f64 / total.as_secs_f64(), "ask/s"));
    out
}
