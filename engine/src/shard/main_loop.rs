//! The shard thread's main loop: passes (inbound, timers, ready actors, outbound) and, between
//! them when there is nothing to do, the idle policy (spin, park, or spin then park).

use super::{Shard, CURRENT};
use crate::executor;
use crate::metrics::bump;
use crate::park::{Parker, PURE_SPIN};
use crate::runtime::Idle;
use std::time::{Duration, Instant};

/// Idle passes between yields to the executor while spinning.
const SPIN_YIELD_EVERY: u32 = 64;
/// Longest park while local tasks we spawned are pending (they may wait on executor timers or
/// I/O, which cannot wake a parked shard).
const TASK_PARK_CAP: Duration = Duration::from_millis(1);

impl Shard {
    /// The shard thread's main loop. Returns after shutdown, when every shard has quiesced.
    pub(crate) async fn run(&self) {
        CURRENT.with(|c| c.set(self as *const Shard));
        let parker = &self.mine().parker;
        let seat = &self.mine().seat;
        parker.register_current();
        seat.publish();
        let idle = self.shared.cfg.idle;
        let mut spin_since: Option<Instant> = None;
        let mut spin_yield = crate::park::SpinYield::new();
        // A yield of this idle stretch came back late: the core is contended, so park now.
        let mut contended = false;
        // Whether a thread of ours (another shard, a thread sending to us) shares this CPU,
        // looked up once per idle stretch.
        let mut ours_beside: Option<bool> = None;
        let mut idle_passes: u32 = 0;
        // How long this idle stretch has lasted, as of the last idle pass that read the clock.
        let mut waited = Duration::ZERO;
        // The clock as the last pass read it when idle (`None` if it did not), for the timers.
        let mut sampled: Option<Instant> = None;
        // Idle accounting: the first and the latest sampled instant of the current idle stretch.
        let mut idle_mark: Option<(Instant, Instant)> = None;
        loop {
            let mut work = self.drain_inbound();
            // Timers: after a busy pass, at a clock read of their own; in an idle stretch, only
            // after a pass that read the clock anyway (every 8th while spinning), at that reading.
            // An idle shard's timer fires at most 8 passes after its deadline, and a pending one
            // costs its passes no clock read.
            let at = std::mem::take(&mut sampled);
            // The read after a busy pass also serves this pass's idle sample, if it is idle.
            let fresh = (idle_passes == 0 && !self.timers.borrow().is_empty()).then(Instant::now);
            if let Some(now) = fresh.or(at) {
                if !self.timers.borrow().is_empty() {
                    work += self.fire_timers(now);
                }
            }
            work += self.run_ready();
            self.flush_outbound();
            // Yield when a local task was woken, or when tasks of ours exist and the executor's
            // time slice is over. With no tasks, a busy shard does not enter the executor's
            // reactor at all (it would allocate timer sources there every time slice).
            if self.local_woken.replace(false) || (self.tasks.get() > 0 && executor::should_yield()) {
                executor::yield_now().await;
            }
            if self.quiesced.get() && self.shared.all_quiesced() {
                break;
            }
            if work > 0 || self.has_local_work() {
                if let Some((first, last)) = idle_mark.take() {
                    self.add_idle(last - first);
                }
                spin_since = None;
                spin_yield.busy();
                contended = false;
                ours_beside = None;
                idle_passes = 0;
                waited = Duration::ZERO;
                continue;
            }
            idle_passes = idle_passes.wrapping_add(1);
            // A clock read (~25 ns) and the CPU's (~10 ns) are most of an idle pass: a shard that
            // spins samples them every 8th idle pass only, so it sees a message that much sooner
            // (its spin window ends, and its idle time is counted, to within 8 passes). One that
            // yields its core between passes (a system call each), or parks, reads every pass.
            let yielding =
                matches!(idle, Idle::SpinThenPark(_)) && ours_beside == Some(true) && waited >= PURE_SPIN;
            let now = (idle == Idle::Park || yielding || idle_passes % 8 == 1)
                .then(|| fresh.unwrap_or_else(Instant::now));
            if let Some(now) = now {
                idle_mark = Some((idle_mark.map_or(now, |(first, _)| first), now));
                self.clock.set(now);
                let cpu = seat.publish();
                // Where the CPU cannot be told, assume company (yield, as before seats).
                ours_beside.get_or_insert_with(|| cpu.is_none_or(|c| self.ours_on(c)));
                waited = now - *spin_since.get_or_insert(now);
                sampled = Some(now);
            }
            let park = match idle {
                Idle::Spin => false,
                Idle::Park => true,
                Idle::SpinThenPark(d) => waited >= d || contended,
            };
            if park {
                seat.vacate();
                self.park(parker).await;
                seat.publish();
                spin_since = None;
                waited = Duration::ZERO;
                contended = false;
                // Parked time counts as idle, up to the wake.
                let now = Instant::now();
                self.clock.set(now);
                sampled = Some(now);
                if let Some((first, _)) = idle_mark {
                    self.add_idle(now - first);
                }
                idle_mark = Some((now, now));
            } else if idle_passes.is_multiple_of(SPIN_YIELD_EVERY) {
                executor::yield_now().await;
            } else if seat.take_guest() {
                // A thread on this CPU waits for us (we may have just answered it): spinning
                // would only keep it from running.
                bump(&self.mine().stats.yields_to_waiters, 1);
                std::thread::yield_now();
            } else if idle == Idle::Spin {
                if let Some(now) = now {
                    spin_yield.idle(now);
                }
            } else if ours_beside == Some(true) {
                // Spin briefly, then hand the CPU to the thread of ours that may be about to
                // send (parking once a yield comes back late).
                contended = crate::park::pause(waited);
            } else {
                // Nobody of ours runs on this CPU: a yield would only hand it to another
                // process for the rest of its slice (milliseconds) while our senders on other
                // CPUs wait. Hold it until the spin window ends, then park.
                std::hint::spin_loop();
            }
        }
        self.exit();
        CURRENT.with(|c| c.set(std::ptr::null()));
    }

    fn add_idle(&self, d: Duration) {
        bump(&self.mine().stats.idle_nanos, d.as_nanos() as u64);
    }

    async fn park(&self, parker: &Parker) {
        // Local tasks that are ready run first; if they made work, do not sleep.
        executor::yield_now().await;
        if self.local_woken.get() || self.has_local_work() {
            return;
        }
        let mut timeout =
            self.timers.borrow_mut().next_deadline().map(|at| at.saturating_duration_since(Instant::now()));
        if self.tasks.get() > 0 {
            timeout = Some(timeout.map_or(TASK_PARK_CAP, |t| t.min(TASK_PARK_CAP)));
        }
        if timeout == Some(Duration::ZERO) {
            return;
        }
        if parker.park(timeout, || self.has_inbound() || (self.quiesced.get() && self.shared.all_quiesced()))
        {
            bump(&self.mine().stats.wakes, 1);
        }
    }
}
