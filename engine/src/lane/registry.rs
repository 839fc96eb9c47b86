//! A shard's lane registry: the lanes it has not adopted yet, how many are live, and the
//! stamps of what comes from outside (see the protocol in `crate::lane`).

use super::LaneRx;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use crossbeam_utils::CachePadded;

/// One shard's lanes: those not adopted yet, whether it still adopts any, how many are live,
/// and the stamps of what comes from outside.
#[derive(Default)]
pub(crate) struct LaneRegistry {
    new: Mutex<(Vec<LaneRx>, bool)>,
    added: AtomicBool,
    /// Lanes registered and not yet dropped by the shard (read by every push).
    live: CachePadded<AtomicUsize>,
    /// The stamp counter: written by senders only (the shard never reads it).
    next: CachePadded<AtomicU64>,
}

impl LaneRegistry {
    /// Offers a new lane to the shard; `false` (the lane dropped) when the shard has stopped.
    pub(crate) fn register(&self, rx: LaneRx) -> bool {
        let mut new = self.new.lock().unwrap();
        if new.1 {
            return false;
        }
        self.live.fetch_add(1, Ordering::Relaxed);
        new.0.push(rx);
        self.added.store(true, Ordering::Release);
        true
    }

    /// Lanes registered and not dropped yet (read by `shard::rings`'s tests, which the model
    /// checker's build leaves out).
    #[cfg(all(test, not(corelane_loom)))]
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The shard dropped `n` finished lanes.
    pub(crate) fn dropped(&self, n: usize) {
        if n > 0 {
            self.live.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// A stamp for a message about to be pushed down one of this shard's lanes by its thread.
    ///
    /// Stamps are `2·v + 1` for a value `v` taken from the counter (`fetch_add`: unique, and
    /// later than every stamp taken before it), except while the sender's lane is the only one
    /// live: then `2·v` for the counter's current value, read without writing. Read without a
    /// locked instruction, a lone sender keeps the counter's line in its own cache and pays
    /// nothing for causal order, which only matters between threads. Why the order still holds:
    /// - A message sent after an earlier one from another thread (joined, signalled) reads the
    ///   counter after that one's `fetch_add` (or the later read of a lone sender) happened, so
    ///   its `v` is at least the earlier's `v` plus one, or the same for two reads: `2·v ≥
    ///   2·v' + 2 > 2·v' + 1`, and `2·v + 1 > 2·v'`.
    /// - Two reads with no `fetch_add` between them tie, and two lone senders never follow one
    ///   another: the later one saw only its own lane live, so the earlier one's lane had been
    ///   dropped, which the shard does once that lane is gone and empty, after it took (and,
    ///   being a lane's, delivered in that pass) every message of it. A sender that is not
    ///   alone sees the other lane live: the registration happened before it heard from that
    ///   thread.
    /// - Messages of one lane are in lane order whatever their stamps (the sort is stable and
    ///   each lane gives its messages in order).
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        if self.live.load(Ordering::Relaxed) == 1 {
            2 * self.next.load(Ordering::Relaxed)
        } else {
            self.fresh_stamp()
        }
    }

    /// A stamp taken from the counter, for a message that goes by the injector (no lane).
    #[inline]
    pub(crate) fn fresh_stamp(&self) -> u64 {
        2 * self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether lanes wait to be adopted (a look).
    #[inline]
    pub(crate) fn has_new(&self) -> bool {
        self.added.load(Ordering::Acquire)
    }

    /// Adopts the lanes waiting, if any (a look first).
    #[inline]
    pub(crate) fn adopt_new(&self, into: &mut Vec<LaneRx>) {
        if self.has_new() {
            self.adopt_into(into);
        }
    }

    /// Moves the lanes waiting to be adopted into `into`.
    pub(crate) fn adopt_into(&self, into: &mut Vec<LaneRx>) {
        let mut new = self.new.lock().unwrap();
        into.append(&mut new.0);
        self.added.store(false, Ordering::Relaxed);
    }

    /// Refuses later lanes; hands back those never adopted.
    pub(crate) fn close(&self) -> Vec<LaneRx> {
        let mut new = self.new.lock().unwrap();
        new.1 = true;
        self.added.store(false, Ordering::Relaxed);
        std::mem::take(&mut new.0)
    }
}
