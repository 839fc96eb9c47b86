//! `spawn` and `idle-memory`: an actor spawns idle actors on its own shard; the run is over when
//! the last one's `started` has run (the run queue is FIFO, so every earlier one has too).
//! `idle-memory` reads the process's resident memory before and after a million of them.

use crate::report::{fig, Figure};
use crate::{engine_runtime_on, Cores};
use corelane::{Actor, ActorError, Ctx, Placement, Reply};
use corelane_bench::workload::{CountMsg, Counter};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Idler {
    done: Option<Reply<()>>,
}
impl Actor for Idler {
    type Msg = ();
    fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
        if let Some(d) = self.done.take() {
            d.send(());
        }
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
        Ok(())
    }
}

enum SpawnerMsg {
    Spawn { n: u64, done: Reply<()> },
}
struct Spawner;
impl Actor for Spawner {
    type Msg = SpawnerMsg;
    fn receive(
        &mut self,
        ctx: &mut Ctx<Self>,
        SpawnerMsg::Spawn { n, done }: SpawnerMsg,
    ) -> Result<(), ActorError> {
        let rt = ctx.runtime();
        for _ in 1..n {
            rt.spawn_with(Placement::Local, || Idler { done: None })?;
        }
        // A factory may run again (restarts), so the reply travels in a shared slot.
        let done = Arc::new(Mutex::new(Some(done)));
        rt.spawn_with(Placement::Local, move || Idler { done: done.lock().unwrap().take() })?;
        Ok(())
    }
}

fn spawn_n(rt: &corelane::Runtime, n: u64) -> Duration {
    let s = rt.spawn_on(0, || Spawner).unwrap();
    let start = Instant::now();
    s.ask(|done| SpawnerMsg::Spawn { n, done }).timeout(Duration::from_secs(300)).wait().unwrap();
    start.elapsed()
}

pub(crate) fn spawn(cores: Cores, n: u64) -> Vec<Figure> {
    let rt = engine_runtime_on(cores.b);
    spawn_n(&rt, n / 10);
    let t = spawn_n(&rt, n);
    rt.shutdown().unwrap();
    vec![fig("spawn", "actors_per_sec", n as f64 / t.as_secs_f64(), "actor/s")]
}

/// `spawn-external`: what a user's `main` does first, under the builder's defaults (a shard per
/// core, `SpinThenPark`, unpinned): spawn `n` actors from the plain thread, tell each, then ask
/// each and wait for the answer; actors per second over the three steps (checked: every answer
/// counts its tell). The driving thread and the shards share the cores.
pub(crate) fn spawn_external(n: u64) -> Vec<Figure> {
    let rt = crate::user_runtime();
    let start = Instant::now();
    let actors: Vec<_> = (0..n).map(|_| rt.spawn(|| Counter(0)).expect("spawn")).collect();
    for a in &actors {
        a.tell(CountMsg::Add(1)).expect("tell");
    }
    let mut sum = 0;
    for a in &actors {
        sum += a.ask(CountMsg::Get).timeout(Duration::from_secs(30)).wait().expect("ask");
    }
    let t = start.elapsed();
    assert_eq!(sum, n, "every actor counted its tell");
    drop(actors);
    rt.shutdown().unwrap();
    vec![fig("spawn-external", "actors_per_sec", n as f64 / t.as_secs_f64(), "actor/s")]
}

/// The process's resident memory, in bytes (0 where it cannot be read).
pub(crate) fn resident_bytes() -> u64 {
    memory_stats::memory_stats().map_or(0, |m| m.physical_mem as u64)
}

/// Runs in a fresh child process (`corelane-perf --child-idle-memory N`): resident memory of a
/// process that has freed nothing yet is the only honest reading, since an allocator keeps
/// pages it got back from earlier workloads.
pub(crate) fn idle_memory(n: u64) -> Vec<Figure> {
    let bytes = child_reading("--child-idle-memory", n);
    vec![
        fig("idle-memory", "bytes_per_actor", bytes / n as f64, "B"),
        fig("idle-memory", "actors", n as f64, "actors"),
    ]
}

/// Runs this binary again with `flag n` and reads the number it prints (a memory growth).
pub(crate) fn child_reading(flag: &str, n: u64) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe).arg(flag).arg(n.to_string()).output().expect("child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("child said {text:?}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The child's side: spawn `n` idle actors on one shard and print the resident-memory growth.
pub(crate) fn idle_memory_child(cores: Cores, n: u64) {
    let rt = engine_runtime_on(cores.b);
    spawn_n(&rt, 1000);
    let before = resident_bytes();
    spawn_n(&rt, n);
    let after = resident_bytes();
    assert!(rt.metrics().actors >= n, "all actors are alive");
    println!("{}", after.saturating_sub(before));
    std::process::exit(0);
}
