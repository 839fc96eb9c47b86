//! Park / wake protocol between a shard (the only sleeper) and everyone who publishes to it.
//!
//! # Protocol
//! One state word per shard: `RUNNING`, `NOTIFIED` or `SLEEPING`. Only read-modify-write
//! operations move it, so every change is totally ordered (no reliance on store/load fences).
//! - A **producer** first publishes its items (a `Release` store into a ring or a locked queue),
//!   then calls [`Parker::notify`]: `swap(NOTIFIED)`. If the old value was `SLEEPING`, it unparks
//!   the shard thread.
//! - The **shard**, at the start of a pass, resets a `NOTIFIED` state with `swap(RUNNING)`;
//!   that swap reads the latest producer swap, so every item published before it is visible to
//!   the drain that follows.
//! - With nothing found, the shard calls [`Parker::park`]: `swap(SLEEPING)`. If that returns
//!   `NOTIFIED`, something was published after the reset and the shard runs another pass instead
//!   of sleeping. Otherwise every later publication's `swap(NOTIFIED)` comes after ours in the
//!   state's modification order, so it reads `SLEEPING` and unparks. Thread unpark leaves a
//!   token, so an unpark that lands before the park is not lost.
//!
//! Producers only call `notify` when the runtime may park (`Idle::Park` or
//! `Idle::SpinThenPark`); a runtime of `Idle::Spin` shards never sleeps and pays nothing.

use crate::sync::{park_timeout, AtomicU8, Mutex, Ordering, Thread};
use crossbeam_utils::CachePadded;
use std::time::{Duration, Instant};

/// How long a waiter that may sleep later (a `SpinThenPark` shard, a plain thread waiting for
/// an answer) spins on the pause instruction before it spins by yielding its core.
pub(crate) const PURE_SPIN: Duration = Duration::from_micros(1);

/// One pass of such a waiter, `waited` into its wait: the pause instruction at first (an answer
/// within a few microseconds is seen at once), then a yield of its core. On a machine with more
/// runnable threads than cores (the usual case on a 2-core host: two shards and the thread that
/// drives them) a thread that spins holds a core the thread making its answer needs, until the
/// scheduler's slice ends; a yield hands it over at once, and costs one system call when nobody
/// else wants the core.
pub(crate) fn pause(waited: Duration) {
    if waited < PURE_SPIN {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// When a spinning shard (`Idle::Spin`) hands its core to another thread. A shard that never
/// does starves every thread that shares its core: with as many spinning shards as cores, the
/// thread that drives them from `main` waits for the end of a scheduler slice (milliseconds) at
/// each step, so a plain thread that spawns and asks ran at ~300 actors/s. So an idle spinning
/// shard yields now and then, and learns from the yield whether anyone wanted the core: a
/// yield that came back late (the core ran someone else) keeps the interval at its minimum, one
/// that came back at once doubles it, up to `MAX`. On a quiet core that is one system call per
/// `MAX` of idleness; with a thread waiting for the core, it gets it within `MIN`.
pub(crate) struct SpinYield {
    interval: Duration,
    next: Option<Instant>,
}

impl SpinYield {
    /// Shortest interval between yields, while others want the core.
    pub(crate) const MIN: Duration = Duration::from_micros(1);
    /// Longest interval, on a core nobody else wants.
    pub(crate) const MAX: Duration = Duration::from_micros(100);
    /// A yield that took longer than this ran another thread.
    pub(crate) const RAN_OTHERS: Duration = Duration::from_micros(3);

    pub(crate) fn new() -> Self {
        SpinYield { interval: Self::MIN, next: None }
    }

    /// The shard found work: the next idle stretch starts counting afresh.
    #[inline]
    pub(crate) fn busy(&mut self) {
        self.next = None;
    }

    /// An idle pass at `now`: yields the core when the interval has passed.
    #[inline]
    pub(crate) fn idle(&mut self, now: Instant) {
        let next = *self.next.get_or_insert(now + self.interval);
        if now >= next {
            std::thread::yield_now();
            let after = Instant::now();
            self.yielded(after - now, after);
        }
    }

    /// Learns from a yield that took `took` and ended at `now`.
    pub(crate) fn yielded(&mut self, took: Duration, now: Instant) {
        self.interval = if took > Self::RAN_OTHERS { Self::MIN } else { (self.interval * 2).min(Self::MAX) };
        self.next = Some(now + self.interval);
    }
}

const RUNNING: u8 = 0;
const NOTIFIED: u8 = 1;
const SLEEPING: u8 = 2;

/// The shard's side of the protocol, shared with every producer.
pub(crate) struct Parker {
    state: CachePadded<AtomicU8>,
    /// The shard thread, set once it starts; read only on the slow path of a wake.
    thread: Mutex<Option<Thread>>,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Self { state: CachePadded::new(AtomicU8::new(RUNNING)), thread: Mutex::new(None) }
    }

    /// Records the calling thread as the one that parks. Call once, on the shard thread, before
    /// its first `park`.
    pub(crate) fn register_current(&self) {
        *self.thread.lock().unwrap() = Some(crate::sync::current_thread());
    }

    /// Producer side, after publishing: wakes the shard if it sleeps. Returns whether it did.
    #[inline]
    pub(crate) fn notify(&self) -> bool {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == SLEEPING {
            if let Some(t) = self.thread.lock().unwrap().as_ref() {
                t.unpark();
            }
            return true;
        }
        false
    }

    /// Shard side, before draining: consumes a pending notification so that everything published
    /// before it is visible to the drain.
    #[inline]
    pub(crate) fn begin_pass(&self) {
        if self.state.load(Ordering::Relaxed) != RUNNING {
            self.state.swap(RUNNING, Ordering::AcqRel);
        }
    }

    /// Shard side, after a pass that found nothing: sleeps until notified or until `timeout`.
    /// Returns `false` without sleeping when something was published since `begin_pass`.
    pub(crate) fn park(&self, timeout: Option<Duration>) -> bool {
        if self.state.swap(SLEEPING, Ordering::AcqRel) == NOTIFIED {
            self.state.swap(RUNNING, Ordering::AcqRel);
            return false;
        }
        park_timeout(timeout);
        self.state.swap(RUNNING, Ordering::AcqRel);
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_spinning_shard_yields_often_while_others_want_its_core_and_rarely_otherwise() {
        let t0 = Instant::now();
        let mut y = SpinYield::new();
        // Quiet core: every yield comes straight back, so the interval doubles up to MAX.
        for _ in 0..20 {
            y.yielded(Duration::from_nanos(300), t0);
        }
        assert_eq!(y.interval, SpinYield::MAX);
        assert_eq!(y.next, Some(t0 + SpinYield::MAX));
        // A yield that ran someone else: back to MIN at once.
        y.yielded(Duration::from_micros(40), t0);
        assert_eq!(y.interval, SpinYield::MIN);
        // Work resets the stretch; the next idle pass only arms the interval.
        y.busy();
        y.idle(t0);
        assert_eq!(y.next, Some(t0 + SpinYield::MIN));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::ring::ring;
    use crate::sync::Arc;

    /// Two producers publish into their own rings and notify; the shard drains and parks. A lost
    /// wake-up would leave the shard parked forever, which loom reports as a deadlock.
    #[test]
    fn loom_no_lost_wakeup_with_two_producers() {
        loom::model(|| {
            let parker = Arc::new(Parker::new());
            parker.register_current();
            let (mut p1, mut c1) = ring::<u8>(2);
            let (mut p2, mut c2) = ring::<u8>(2);
            let (a, b) = (parker.clone(), parker.clone());
            let t1 = loom::thread::spawn(move || {
                p1.push(1).unwrap();
                p1.publish();
                a.notify();
            });
            let t2 = loom::thread::spawn(move || {
                p2.push(2).unwrap();
                p2.publish();
                b.notify();
            });
            let mut got = 0;
            loop {
                parker.begin_pass();
                while let Some(v) = c1.pop() {
                    got += v;
                }
                while let Some(v) = c2.pop() {
                    got += v;
                }
                if got == 3 {
                    break;
                }
                parker.park(None);
            }
            t1.join().unwrap();
            t2.join().unwrap();
        });
    }

    /// A producer that publishes twice, racing a shard that parks between the two items.
    #[test]
    fn loom_no_lost_wakeup_across_batches() {
        loom::model(|| {
            let parker = Arc::new(Parker::new());
            parker.register_current();
            let (mut p, mut c) = ring::<u8>(2);
            let a = parker.clone();
            let t = loom::thread::spawn(move || {
                for v in [1, 2] {
                    p.push(v).unwrap();
                    p.publish();
                    a.notify();
                }
            });
            let mut got = 0;
            loop {
                parker.begin_pass();
                while let Some(v) = c.pop() {
                    got += v;
                    c.release();
                }
                if got == 3 {
                    break;
                }
                parker.park(None);
            }
            t.join().unwrap();
        });
    }
}
