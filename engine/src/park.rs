//! Park / wake protocol between a shard (the only sleeper) and everyone who publishes to it.
//!
//! # Protocol
//! One state word per shard, `RUNNING` or `SLEEPING`, written only by the shard itself (so while
//! the shard is awake, producers only read it and its cache line stays shared: no transfer per
//! message). The two sides meet through `SeqCst` fences (the store-buffering pattern):
//! - A **producer** first publishes its items (a `Release` store into a ring, or a locked queue
//!   and its `pending` flag), then calls [`Parker::notify`]: a `SeqCst` fence, then a load of
//!   the state. If it reads `SLEEPING`, it unparks the shard thread.
//! - The **shard**, with nothing found, calls [`Parker::park`]: it stores `SLEEPING`, a `SeqCst`
//!   fence, then checks its inbound sources once more (`has_work`). Work found: it stores
//!   `RUNNING` and runs another pass instead of sleeping.
//! - Both fences are in one total order. If the producer's comes first, the shard's check after
//!   its own fence sees the item. If the shard's comes first, the producer's load after its fence
//!   sees `SLEEPING` (or a later state: `RUNNING` again means the shard woke and will park only
//!   through another store and fence, whose check sees the item) and unparks. Thread unpark
//!   leaves a token, so an unpark that lands before the park is not lost; a stale `SLEEPING`
//!   read costs one spurious wake.
//!
//! Producers only call `notify` when the runtime may park (`Idle::Park` or
//! `Idle::SpinThenPark`); a runtime of `Idle::Spin` shards never sleeps and pays nothing.
//!
//! # Asymmetric fences
//! A `SeqCst` fence per message is a locked instruction on x86: the producer waits until its
//! stores (the ring slot, just read by the shard on another core) have left its store buffer.
//! A shard that spins before it parks (`Idle::SpinThenPark`) parks rarely, so it takes the
//! whole cost instead: on Linux it calls `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` in
//! place of its fence, which runs a full barrier on every core running a thread of this
//! process, and producers only keep the compiler from reordering (the pairing of Linux's RCU,
//! liburcu and folly's `asymmetricHeavyBarrier`). Why that is enough: if a producer's publish
//! had happened by the time the barrier reached its core, the shard's check after the call sees
//! it; otherwise the producer's load of the state comes after that barrier, which is after the
//! shard's `SLEEPING` store, and sees it (a thread that was not running passed a context
//! switch, a full barrier too). The call costs microseconds and interrupts the other cores, so
//! an `Idle::Park` shard, which parks whenever it runs dry, keeps the symmetric fences; so does
//! every shard where the kernel refuses the call (old kernels, seccomp filters), and the model
//! checker, which knows no `membarrier`.

use crate::sync::{fence, park_timeout, AtomicU8, Mutex, Ordering, Thread};
use crossbeam_utils::CachePadded;
use std::sync::atomic::compiler_fence;
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
///
/// Returns whether the core is contended: a yield that came back late ran another thread. Then
/// the waiter should park now rather than yield on: a yielding thread waits behind whatever
/// holds the core for the rest of its slice (milliseconds, with another process busy there),
/// while a parked one that is woken is run at once (the scheduler favours a thread that slept).
pub(crate) fn pause(waited: Duration) -> bool {
    if waited < PURE_SPIN {
        std::hint::spin_loop();
        false
    } else {
        let before = Instant::now();
        std::thread::yield_now();
        before.elapsed() > SpinYield::RAN_OTHERS
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
const SLEEPING: u8 = 1;

/// The shard's side of the protocol, shared with every producer.
pub(crate) struct Parker {
    state: CachePadded<AtomicU8>,
    /// The shard thread, set once it starts; read only on the slow path of a wake.
    thread: Mutex<Option<Thread>>,
    /// The shard pays for both sides with `membarrier` (see the module docs).
    asymmetric: bool,
}

impl Parker {
    /// A parker whose shard parks rarely (`Idle::SpinThenPark`) when `rarely` is true: then it
    /// uses asymmetric fences where the kernel offers them.
    pub(crate) fn new(rarely: bool) -> Self {
        Self {
            state: CachePadded::new(AtomicU8::new(RUNNING)),
            thread: Mutex::new(None),
            asymmetric: rarely && heavy_barrier::available(),
        }
    }

    /// Records the calling thread as the one that parks. Call once, on the shard thread, before
    /// its first `park`.
    pub(crate) fn register_current(&self) {
        *self.thread.lock().unwrap() = Some(crate::sync::current_thread());
    }

    /// Producer side, after publishing: wakes the shard if it sleeps. Returns whether it did.
    /// Inlined into every send from outside the runtime: the look is a fence and a load, and
    /// the wake-up itself is out of line.
    #[inline(always)]
    pub(crate) fn notify(&self) -> bool {
        if self.asymmetric {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        if self.state.load(Ordering::Relaxed) == SLEEPING {
            self.wake();
            return true;
        }
        false
    }

    /// Unparks the shard thread.
    #[cold]
    #[inline(never)]
    fn wake(&self) {
        if let Some(t) = self.thread.lock().unwrap().as_ref() {
            t.unpark();
        }
    }

    /// Shard side, after a pass that found nothing: sleeps until notified or until `timeout`.
    /// `has_work` looks at every inbound source once more (after the state says `SLEEPING`);
    /// returns `false` without sleeping when it finds something.
    pub(crate) fn park(&self, timeout: Option<Duration>, has_work: impl FnOnce() -> bool) -> bool {
        self.state.store(SLEEPING, Ordering::Relaxed);
        // A heavy barrier that failed proves nothing about the producers: look again instead.
        let fenced = if self.asymmetric {
            heavy_barrier::run()
        } else {
            fence(Ordering::SeqCst);
            true
        };
        if !fenced || has_work() {
            self.state.store(RUNNING, Ordering::Relaxed);
            return false;
        }
        park_timeout(timeout);
        self.state.store(RUNNING, Ordering::Relaxed);
        true
    }
}

/// The heavy side of the asymmetric fences: Linux's `membarrier`, for this process.
mod heavy_barrier {
    /// Registers this process for expedited private barriers (once); whether they work here.
    pub(super) fn available() -> bool {
        #[cfg(all(target_os = "linux", not(corelane_loom)))]
        {
            static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            *REGISTERED.get_or_init(|| membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED))
        }
        #[cfg(not(all(target_os = "linux", not(corelane_loom))))]
        false
    }

    /// A full barrier on every core running a thread of this process; whether it ran.
    pub(super) fn run() -> bool {
        #[cfg(all(target_os = "linux", not(corelane_loom)))]
        return membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        #[cfg(not(all(target_os = "linux", not(corelane_loom))))]
        false
    }

    #[cfg(all(target_os = "linux", not(corelane_loom)))]
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    #[cfg(all(target_os = "linux", not(corelane_loom)))]
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    #[cfg(all(target_os = "linux", not(corelane_loom)))]
    fn membarrier(cmd: libc::c_long) -> bool {
        // SAFETY: `membarrier(cmd, flags = 0, cpu_id = 0)` takes no pointers and touches no
        // memory of ours; it only orders memory accesses, and it fails cleanly (-1, errno) on a
        // kernel or a filter that refuses it.
        unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_long, 0 as libc::c_long) == 0 }
    }
}

#[cfg(all(test, not(corelane_loom)))]
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

#[cfg(all(test, corelane_loom))]
mod loom_tests {
    use super::*;
    use crate::ring::{ring, Consumer};
    use crate::sync::Arc;

    /// The shard's side, on a thread of its own (so that a late, spurious unpark lands on a
    /// thread that is finished, not on one blocked in `join`, which loom would wake): drain,
    /// stop at `total`, otherwise park with the check the protocol requires.
    fn shard(parker: Arc<Parker>, mut inbound: Vec<Consumer<u8>>, total: u8) -> loom::thread::JoinHandle<()> {
        loom::thread::spawn(move || {
            parker.register_current();
            let mut got = 0;
            loop {
                for c in inbound.iter_mut() {
                    while let Some(v) = c.pop() {
                        got += v;
                    }
                    c.release();
                }
                if got == total {
                    return;
                }
                parker.park(None, || inbound.iter().any(|c| c.has_next()));
            }
        })
    }

    /// Two producers publish into their own rings and notify; the shard drains and parks. A lost
    /// wake-up would leave the shard parked forever, which loom reports as a deadlock.
    #[test]
    fn loom_no_lost_wakeup_with_two_producers() {
        loom::model(|| {
            let parker = Arc::new(Parker::new(false));
            let (mut p1, c1) = ring::<u8>(2);
            let (mut p2, c2) = ring::<u8>(2);
            let s = shard(parker.clone(), vec![c1, c2], 3);
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
            t1.join().unwrap();
            t2.join().unwrap();
            s.join().unwrap();
        });
    }

    /// A producer that publishes twice, racing a shard that parks between the two items.
    #[test]
    fn loom_no_lost_wakeup_across_batches() {
        loom::model(|| {
            let parker = Arc::new(Parker::new(false));
            let (mut p, c) = ring::<u8>(2);
            let s = shard(parker.clone(), vec![c], 3);
            let a = parker.clone();
            let t = loom::thread::spawn(move || {
                for v in [1, 2] {
                    p.push(v).unwrap();
                    p.publish();
                    a.notify();
                }
            });
            t.join().unwrap();
            s.join().unwrap();
        });
    }
}
