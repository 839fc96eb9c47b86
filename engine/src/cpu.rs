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
//! - **A pinned shard's core, with other cores allowed.** The two above make the best of a
//!   thread that sits where it should not. A runtime that pins its shards leaves the other
//!   cores to the threads that drive it, but the scheduler does not know that: with another
//!   process keeping the free core busy, it settles `main` beside the shard `main` asks (the
//!   two take turns and look like one busy thread), and every ask then costs two context
//!   switches — `spawn-external` under load ran at 0.16 × its quiet rate. So a blocking waiter
//!   that finds itself on a pinned shard's core, and whose own affinity allows a core with no
//!   pinned shard, moves there ([`step_off`], [`Pinned`]) and gives itself its own affinity
//!   back at once: nothing the application set changes, the scheduler only learns where the
//!   thread runs best. At most once per [`STEP_OFF_EVERY`] per thread, so a scheduler that keeps putting
//!   it back costs two system calls and a migration per period, not per ask.
//!
//! Shards publish their seat at each idle pass and vacate it while asleep (a woken thread may
//! run anywhere, so an asker counts a sleeping shard as company); a thread with a lane
//! publishes its seat every 64th push. The CPU comes from `sched_getcpu`, which glibc answers
//! from the thread's restartable-sequence area (about a nanosecond). A seat is a hint, never
//! a correctness condition: a stale one costs a yield or a spin window, nothing more, so plain
//! atomics with relaxed ordering serve, and the model checker need not see them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

/// The least time between two moves of one thread off a pinned shard's core.
pub(crate) const STEP_OFF_EVERY: Duration = Duration::from_millis(1);

/// Moves the calling thread off the cores in `pinned` (the pinned shards' cores, `None` for an
/// unpinned shard) when it runs on one of them and its affinity mask allows a core outside
/// them, then restores its mask. Returns the core it left. Does nothing (returns `None`) when
/// the thread runs elsewhere, when every core it may use is pinned to a shard (a thread the
/// application placed there itself stays), within [`STEP_OFF_EVERY`] of this thread's last
/// move, and where the platform cannot tell.
pub(crate) fn step_off(pinned: &[Option<usize>]) -> Option<usize> {
    let here = current()?;
    if !pinned.contains(&Some(here as usize)) {
        return None;
    }
    thread_local! {
        static LAST: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = Instant::now();
    if LAST.with(|l| l.get()).is_some_and(|t| now.duration_since(t) < STEP_OFF_EVERY) {
        return None;
    }
    LAST.with(|l| l.set(Some(now)));
    move_off(pinned, here).then_some(here as usize)
}

#[cfg(all(target_os = "linux", not(corelane_loom)))]
fn move_off(pinned: &[Option<usize>], here: u32) -> bool {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `cpu_set_t` is a plain bit array, valid all zeroes.
    let mut own: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `own` is a writable `cpu_set_t` of `size` bytes; pid 0 is the calling thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut own) } != 0 {
        return false;
    }
    let mut elsewhere = own;
    for &c in pinned.iter().flatten().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: `c` is below `CPU_SETSIZE`, the number of bits in a `cpu_set_t`.
        unsafe { libc::CPU_CLR(c, &mut elsewhere) };
    }
    // SAFETY: `elsewhere` is an initialized `cpu_set_t`.
    if unsafe { libc::CPU_COUNT(&elsewhere) } == 0 {
        return false;
    }
    // SAFETY: `elsewhere` is an initialized `cpu_set_t` of `size` bytes; pid 0 is this thread.
    // The kernel moves the thread onto a CPU of the set before the call returns.
    if unsafe { libc::sched_setaffinity(0, size, &elsewhere) } != 0 {
        return false;
    }
    let moved = current().is_some_and(|c| c != here);
    // SAFETY: as above, with the mask read at the start: the thread's own affinity again.
    unsafe { libc::sched_setaffinity(0, size, &own) };
    moved
}

#[cfg(not(all(target_os = "linux", not(corelane_loom))))]
fn move_off(_: &[Option<usize>], _: u32) -> bool {
    false
}

/// The cores a runtime pinned its shards to (`None` for an unpinned shard), and how many times
/// a thread waiting for an answer moved off each ([`step_off`]).
#[derive(Debug)]
pub(crate) struct Pinned {
    cores: Box<[Option<usize>]>,
    moved_off: Box<[AtomicU64]>,
}

impl Pinned {
    /// Shard `i` pinned to `cores[i]`.
    pub(crate) fn new(cores: &[Option<usize>]) -> Self {
        Self { cores: cores.into(), moved_off: cores.iter().map(|_| AtomicU64::new(0)).collect() }
    }

    /// Moves the calling thread off a pinned shard's core where it may ([`step_off`]), and
    /// counts the move on that shard. Returns whether it moved.
    #[inline]
    pub(crate) fn step_off(&self) -> bool {
        let Some(left) = step_off(&self.cores) else { return false };
        if let Some(i) = self.cores.iter().position(|&c| c == Some(left)) {
            self.moved_off[i].fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// The core each shard is pinned to, by shard index.
    pub(crate) fn cores(&self) -> &[Option<usize>] {
        &self.cores
    }

    /// Times a thread moved off shard `i`'s core.
    pub(crate) fn moved_off(&self, i: usize) -> u64 {
        self.moved_off.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }
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
    fn a_thread_stays_off_pinned_cores_or_where_it_has_nowhere_else_to_go() {
        let Some(allowed) = core_affinity::get_core_ids() else { return };
        let allowed: Vec<Option<usize>> = allowed.into_iter().map(|c| Some(c.id)).collect();
        assert_eq!(step_off(&[]), None, "no pinned shard: nothing to step off");
        assert_eq!(step_off(&[None, None]), None, "unpinned shards: nothing to step off");
        // Every core it may use has a pinned shard: it stays (whoever placed it there chose so).
        assert_eq!(step_off(&allowed), None);
        assert_eq!(core_affinity::get_core_ids().map(|c| c.len()), Some(allowed.len()), "mask untouched");
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
