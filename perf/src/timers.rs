//! `timers`: the cost of scheduling a one-shot delivery from an actor on the target's shard
//! (the timer is armed in that shard's heap; it is due in an hour, so none fires during the
//! run), next to the raw baseline of pushing `(Instant, Box<_>)` onto a `BinaryHeap`.
//! `timer-memory`: resident memory of one million pending timers, read in a fresh process.

use crate::report::{fig, Figure};
use crate::{engine_runtime_on, Cores};
use corelane::{Actor, ActorError, ActorRef, Ctx, Reply, Runtime};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

const FAR: Duration = Duration::from_secs(3600);

struct Target;
impl Actor for Target {
    type Msg = ();
    fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
        Ok(())
    }
}

enum ArmMsg {
    /// Schedule `n` timers to the target, then answer (every one is in the heap by then: a
    /// same-shard timer is armed on the spot).
    Arm { n: u64, done: Reply<()> },
}
struct Armer(ActorRef<()>);
impl Actor for Armer {
    type Msg = ArmMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, ArmMsg::Arm { n, done }: ArmMsg) -> Result<(), ActorError> {
        let rt = ctx.runtime();
        for _ in 0..n {
            // The handle is dropped: the timer stays armed.
            rt.schedule_once(FAR, &self.0, ());
        }
        done.send(());
        Ok(())
    }
}

fn arm(rt: &Runtime, n: u64) -> Duration {
    let target = rt.spawn_on(0, || Target).unwrap();
    let armer = rt.spawn_on(0, move || Armer(target.clone())).unwrap();
    let start = Instant::now();
    armer.ask(|done| ArmMsg::Arm { n, done }).timeout(Duration::from_secs(300)).wait().unwrap();
    start.elapsed()
}

/// The raw baseline: a binary heap of (due time, boxed task), what a timer needs at least.
fn raw_heap(n: u64) -> Duration {
    let now = Instant::now();
    let mut heap = BinaryHeap::with_capacity(1024);
    let start = Instant::now();
    for i in 0..n {
        heap.push(Reverse((now + FAR + Duration::from_nanos(i % 1000), i, Box::new(i))));
    }
    let t = start.elapsed();
    std::hint::black_box(&heap);
    t
}

pub(crate) fn timers(cores: Cores, n: u64) -> Vec<Figure> {
    let rt = engine_runtime_on(cores.b);
    arm(&rt, n / 10);
    let t = arm(&rt, n);
    rt.shutdown().unwrap();
    let raw = raw_heap(n);
    let per = t.as_nanos() as f64 / n as f64;
    let raw_per = raw.as_nanos() as f64 / n as f64;
    vec![
        fig("timers", "ns_per_schedule", per, "ns"),
        fig("timers", "raw_heap_ns_per_push", raw_per, "ns"),
        fig("timers", "x_raw_heap", per / raw_per, "ratio"),
    ]
}

/// Runs in a fresh child process (`corelane-perf --child-timer-memory N`), like idle-memory.
pub(crate) fn timer_memory(n: u64) -> Vec<Figure> {
    let bytes = crate::spawn::child_reading("--child-timer-memory", n);
    vec![
        fig("timer-memory", "bytes_per_timer", bytes / n as f64, "B"),
        fig("timer-memory", "mib_per_million", bytes / n as f64 * 1e6 / (1u64 << 20) as f64, "MiB"),
    ]
}

/// The child's side: arm `n` pending timers on one shard and print the resident-memory growth.
pub(crate) fn timer_memory_child(cores: Cores, n: u64) {
    let rt = engine_runtime_on(cores.b);
    arm(&rt, 1000);
    let before = crate::spawn::resident_bytes();
    arm(&rt, n);
    let after = crate::spawn::resident_bytes();
    println!("{}", after.saturating_sub(before));
    std::process::exit(0);
}
