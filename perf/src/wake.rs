//! Wake latency: how long a message takes one way from one shard to another under each idle
//! policy, and how long a parked shard takes to wake, each next to its raw floor measured in
//! the same run.
//!
//! - `raw-oneway`: a thread on core a writes a timestamp into a cache line that a thread on
//!   core b spins on; b records now − stamp. The floor for any one-way cross-core delivery.
//! - `raw-futex-wake`: the thread on b sleeps in the kernel (`thread::park`, a futex); a writes a
//!   timestamp and unparks it; b records now − stamp when it runs. The floor for waking a
//!   sleeping thread (what a parked shard costs at best).
//! - `oneway-spin`, `oneway-park`, `oneway-spin-then-park`: an actor on shard 0 (core a)
//!   stamps and tells an actor on shard 1 (core b), which records now − stamp on arrival, under
//!   `Idle::Spin`, `Idle::Park` and the builder's default `Idle::SpinThenPark(50 µs)`. A driver
//!   thread starts each message once the last one arrived, after a gap: none for spin and
//!   spin-then-park (the receiver is still spinning), `PARKED_GAP` for park (it sleeps).
//! - `wake-parked`: as `oneway-spin-then-park`, with `PARKED_GAP` between messages, longer than
//!   the spin window: every message wakes a parked shard.
//!
//! Each sample is one message; percentiles come from HDR histograms. Both sides read the same
//! monotonic clock (an invariant TSC on current x86 hosts, so the stamps compare across cores).

use crate::report::{fig, percentiles, Figure};
use crate::{pin, Cores};
use corelane::{Actor, ActorError, ActorRef, Ctx, Idle, Reply, Runtime, Shards};
use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Between messages meant to find the receiver asleep: well past the default spin window
/// (50 µs) and the time to fall asleep.
const PARKED_GAP: Duration = Duration::from_micros(300);

/// Nanoseconds since `epoch` (never 0, so 0 can mean "nothing yet").
fn stamp(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64 + 1
}

fn histogram() -> Histogram<u64> {
    Histogram::new(3).unwrap()
}

/// Waits about `d` without a system call when it is short (a sleep's own wake-up would blur a
/// gap of a few microseconds).
fn gap(d: Duration) {
    if d >= Duration::from_micros(100) {
        std::thread::sleep(d);
    } else {
        let until = Instant::now() + d;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

pub(crate) fn raw_oneway(cores: Cores, n: u64) -> Vec<Figure> {
    let epoch = Instant::now();
    let line = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let acked = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let (l2, a2) = (line.clone(), acked.clone());
    let receiver = std::thread::spawn(move || {
        pin(cores.b);
        let mut h = histogram();
        for i in 1..=n {
            let sent = loop {
                let v = l2.load(Ordering::Acquire);
                if v != 0 {
                    break v;
                }
                std::hint::spin_loop();
            };
            let now = stamp(epoch);
            l2.store(0, Ordering::Relaxed);
            if i > n / 10 {
                h.record(now.saturating_sub(sent).max(1)).unwrap();
            }
            a2.store(i, Ordering::Release);
        }
        h
    });
    // The sender is a thread of its own, as every baseline's ends are: pinning the harness's
    // own thread would leave it pinned for the workloads after (a runtime built with the
    // defaults from a one-core mask sizes itself to one unpinned shard beside it).
    std::thread::spawn(move || {
        pin(cores.a);
        for i in 1..=n {
            line.store(stamp(epoch), Ordering::Release);
            while acked.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            gap(Duration::from_micros(1));
        }
    })
    .join()
    .unwrap();
    let h = receiver.join().unwrap();
    percentiles("raw-oneway", &h)
}

pub(crate) fn raw_futex_wake(cores: Cores, n: u64) -> Vec<Figure> {
    let epoch = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let asleep = Arc::new(AtomicBool::new(false));
    let (s2, z2) = (sent.clone(), asleep.clone());
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::thread::Thread>(1);
    let receiver = std::thread::spawn(move || {
        pin(cores.b);
        tx.send(std::thread::current()).unwrap();
        let mut h = histogram();
        for i in 1..=n {
            z2.store(true, Ordering::Release);
            let at = loop {
                std::thread::park();
                let v = s2.swap(0, Ordering::Acquire);
                if v != 0 {
                    break v;
                }
            };
            let now = stamp(epoch);
            if i > n / 10 {
                h.record(now.saturating_sub(at).max(1)).unwrap();
            }
        }
        h
    });
    let thread = rx.recv().unwrap();
    // A thread of its own for the waker, as in `raw_oneway`.
    std::thread::spawn(move || {
        pin(cores.a);
        for _ in 0..n {
            while !asleep.swap(false, Ordering::Acquire) {
                std::hint::spin_loop();
            }
            // Long enough for the receiver to be in the kernel, asleep.
            gap(PARKED_GAP);
            sent.store(stamp(epoch), Ordering::Release);
            thread.unpark();
        }
    })
    .join()
    .unwrap();
    let h = receiver.join().unwrap();
    percentiles("raw-futex-wake", &h)
}

enum Probe {
    /// Stamp now and tell the receiver; `done` answers when it arrived.
    Fire(ActorRef<Probe>, Reply<()>),
    /// Arrived: record now − the stamp, then answer.
    Stamp(u64, Reply<()>),
}

/// Sends on `Fire`, records on `Stamp` (its histogram shared with the caller).
struct End {
    epoch: Instant,
    hist: Arc<Mutex<Histogram<u64>>>,
    recording: Arc<AtomicBool>,
}

impl Actor for End {
    type Msg = Probe;
    fn receive(&mut self, _: &mut Ctx<Self>, m: Probe) -> Result<(), ActorError> {
        match m {
            Probe::Fire(to, done) => {
                let _ = to.tell(Probe::Stamp(stamp(self.epoch), done));
            }
            Probe::Stamp(at, done) => {
                let now = stamp(self.epoch);
                if self.recording.load(Ordering::Relaxed) {
                    self.hist.lock().unwrap().record(now.saturating_sub(at).max(1)).unwrap();
                }
                done.send(());
            }
        }
        Ok(())
    }
}

/// One way from shard 0 to shard 1 under `idle`, `n` messages `spacing` apart.
pub(crate) fn oneway(name: &str, cores: Cores, idle: Idle, spacing: Duration, n: u64) -> Vec<Figure> {
    let b = Runtime::builder().idle(idle).name("perf-wake");
    let rt = match (cores.a, cores.b) {
        (Some(a), Some(c)) => b.shards(Shards::Cores(vec![a, c])).pin(true),
        _ => b.shards(Shards::Count(2)),
    }
    .build()
    .expect("perf runtime builds");
    let epoch = Instant::now();
    let hist = Arc::new(Mutex::new(histogram()));
    let recording = Arc::new(AtomicBool::new(false));
    let end = |shard| {
        let (hist, recording) = (hist.clone(), recording.clone());
        rt.spawn_on(shard, move || End { epoch, hist: hist.clone(), recording: recording.clone() }).unwrap()
    };
    let (from, to) = (end(0), end(1));
    let wait = Duration::from_secs(30);
    // The driver sits beside the sending shard, never beside the receiving one whose wake is
    // measured: a thread of its own pinned to the sender's core.
    let rec = recording.clone();
    std::thread::spawn(move || {
        pin(cores.a);
        for i in 0..n + n / 10 {
            if i == n / 10 {
                rec.store(true, Ordering::Relaxed);
            }
            from.ask(|done| Probe::Fire(to.clone(), done)).timeout(wait).wait().expect("delivered");
            gap(spacing);
        }
    })
    .join()
    .unwrap();
    rt.shutdown().unwrap();
    let h = hist.lock().unwrap().clone();
    let mut out = percentiles(name, &h);
    out.push(fig(name, "samples", h.len() as f64, "n"));
    out
}

/// The default policy's spin window.
pub(crate) fn default_spin_then_park() -> Idle {
    Idle::SpinThenPark(Duration::from_micros(50))
}

/// Gap for `oneway-park`: the receiver parks as soon as it runs dry, so any gap finds it
/// asleep; this one lets it get there.
pub(crate) const PARK_GAP: Duration = PARKED_GAP;

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw baselines pin threads of their own: the harness's thread keeps its affinity, so
    /// the workloads after them (`spawn-external` builds a runtime with the defaults, which
    /// sizes itself from the caller's mask) see the whole machine.
    #[test]
    fn the_raw_baselines_leave_the_callers_affinity_alone() {
        let Some(all) = core_affinity::get_core_ids() else { return };
        let (Some(a), Some(b)) = (all.first(), all.get(1)) else { return };
        let cores = Cores { a: Some(a.id), b: Some(b.id) };
        let mask = || core_affinity::get_core_ids().map(|c| c.len());
        raw_oneway(cores, 100);
        assert_eq!(mask(), Some(all.len()), "raw-oneway left the caller pinned");
        raw_futex_wake(cores, 10);
        assert_eq!(mask(), Some(all.len()), "raw-futex-wake left the caller pinned");
    }
}
