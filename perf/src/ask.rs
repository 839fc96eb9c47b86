//! `ask-external`: a plain thread (pinned to its own core) asks an actor on a spinning shard
//! and blocks for each answer. Every ask is one histogram sample.

use crate::report::{fig, percentiles, Figure};
use crate::{engine_runtime_on, pin, Cores};
use corelane_bench::workload::{Echo, EchoMsg};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

pub(crate) fn ask_external(cores: Cores, n: u64) -> Vec<Figure> {
    let rt = engine_runtime_on(cores.b);
    let echo = rt.spawn_on(0, || Echo).unwrap();
    let asker = std::thread::spawn(move || {
        pin(cores.a);
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
    let mut out = percentiles("ask-external", &h);
    out.push(fig("ask-external", "asks_per_sec", n as f64 / total.as_secs_f64(), "ask/s"));
    out
}
