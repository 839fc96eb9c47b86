//! Which CPU a thread runs on, and where the runtime's threads were last seen running.
//!
//! Waiting well depends on who shares the waiter's CPU:
//! - **The thread that is to answer.** On a 2-core host with another process keeping one core
//!   busy, the scheduler often puts `main` and the shard it asks on the other core. Spinning
//!   then only takes the CPU from the shard, and the answer comes after the scheduler switches
//!   threads anyway. So a blocking asker that finds the answering shard's [`Seat`] on its own
//!   CPU yields at once, and raises the seat's guest flag: the shard, once it has answered,
//!   yields at its next idle pass instead of spinning first. An ask then costs two context
//!   switches (`ask-same-core` ≈ 1.2 × `raw-same-core` in the harness) instead of two spin
//!   windows and two switches (2.4–2.6 × before).
//! - **Another thread of the runtime** (a shard, a thread with a lane into the shard): it may be
//!   about to send, so an idle shard or a waiter spins briefly and then yields to it.
//! - **Nobody of ours.** A yield would hand the CPU to another process for the rest of that
//!   process's slice (milliseconds) while our senders on other CPUs wait: an idle
//!   `SpinThenPark` shard holds its CPU until its spin window ends and then parks; a blocking
//!   asker spins until its spin window ends and then parks. Under a busy process sharing the
//!   shard's core, this took `pingpong-cross` under the default idle policy from 0.5–3.7 µs to
//!   ~0.4 µs per round trip (`docs/benchmarks.md`, "Session 5 of issue 14").
//!
//! Shards publish their seat at each idle pass and vacate it while asleep (a woken thread may
//! run anywhere, so an asker counts a sleeping shard as company); a thread with a lane
//! publishes its seat every 64th push. The CPU comes from `sched_getcpu`, which glibc answers
//! from the thread's restartable-sequence area (about a nanosecond). A seat is a hint, never
//! a correctness condition: a stale one costs a yield or a spin window, nothing more, so plain
//! atomics with relaxed ordering serve, and the model checker need not see them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// No CPU known (not published yet, or this platform cannot tell).
const UNKNOWN: u32 = u32::MAX;

/// The CPU the calling thread runs on now, if the platform can tell.
#[inline]
pub(crate) fn current() -> Option<u32> {
    #[cfg(all(target_os = "linux", not(corelane_loom)))]
    {
        // SAFETY: `sched_getcpu` takes no arguments and touches no memory of ours; it returns
        // -1 on failure, which `try_from` turns into `None`.
        let c = unsafe { libc::sched_getcpu() };
        u32::try_from(c).ok()
    }
    #[cfg(not(all(target_os = "linux", not(corelane_loom))))]
    None
}

/// Where a shard thread was last seen running, and whether a thread on that CPU waits for it.
/// The shard writes the CPU (only when it changed, so the line stays shared between the shard
/// and the waiters that read it); a co-located waiter raises the guest flag, on a line its own
/// CPU already holds.
#[derive(Debug)]
pub(crate) struct Seat {
    cpu: AtomicU32,
    guest: AtomicBool,
}

impl Default for Seat {
    fn default() -> Self {
        Self { cpu: AtomicU32::new(UNKNOWN), guest: AtomicBool::new(false) }
    }
}

impl Seat {
    /// Records the CPU the calling thread (the seat's owner) runs on now, and returns it.
    #[inline]
    pub(crate) fn publish(&self) -> Option<u32> {
        let c = current()?;
        if self.cpu.load(Ordering::Relaxed) != c {
            self.cpu.store(c, Ordering::Relaxed);
        }
        Some(c)
    }

    /// The owner is about to sleep: once woken, the kernel may run it on any CPU, so until it
    /// publishes again it counts as beside every waiter.
    #[inline]
    pub(crate) fn vacate(&self) {
        self.cpu.store(UNKNOWN, Ordering::Relaxed);
    }

    /// The CPU the owner was last seen on, or `None` while that is unknown (not published yet,
    /// asleep, or the platform cannot tell).
    #[inline]
    pub(crate) fn cpu(&self) -> Option<u32> {
        Some(self.cpu.load(Ordering::Relaxed)).filter(|&c| c != UNKNOWN)
    }

    /// Waiter side: a thread on the shard's CPU waits for it (call right before yielding).
    #[inline]
    pub(crate) fn guest_waits(&self) {
        if !self.guest.load(Ordering::Relaxed) {
            self.guest.store(true, Ordering::Relaxed);
        }
    }

    /// Shard side, on an idle pass: whether a waiter on its CPU asked it to give the CPU up
    /// (and clears the request).
    #[inline]
    pub(crate) fn take_guest(&self) -> bool {
        self.guest.load(Ordering::Relaxed) && self.guest.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_shows_the_cpu_its_owner_published() {
        let seat = Seat::default();
        assert_eq!(seat.cpu(), None, "an unpublished seat is nobody's");
        let Some(here) = seat.publish() else {
            return; // this platform cannot tell: seats stay unknown, waiters yield as before
        };
        assert_eq!(seat.cpu(), Some(here));
        // The thread may migrate between the two calls; a few tries find it in place.
        assert!((0..100).any(|_| seat.publish() == current()));
    }

    #[test]
    fn a_guest_request_is_taken_once() {
        let seat = Seat::default();
        assert!(!seat.take_guest());
        seat.guest_waits();
        seat.guest_waits();
        assert!(seat.take_guest());
        assert!(!seat.take_guest(), "taken: cleared");
    }
}
