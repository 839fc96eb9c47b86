//! Lanes: the way into a shard from a thread that is not one of its runtime's shards.
//!
//! Each such thread gets, on its first send to a shard, a ring of its own into that shard
//! (the same SPSC ring the shards use between themselves), so a stream of tells from `main`
//! costs a slot write and a publish per message instead of a lock. The thread keeps its end in
//! a thread-local; the shard adopts the other end and drains it with its other inbound rings.
//!
//! # Protocol
//! - **Causal order across threads.** Every push takes a stamp from the shard's counter (one
//!   relaxed `fetch_add`; a line only the sending threads write, read by the shard once per
//!   pass). A push that happened after another (same thread, or a thread that was joined or
//!   signalled by the first) takes a later stamp, and the earlier one was published before it.
//!   Each pass the shard reads a bound from the counter, takes from every lane what is stamped
//!   below it, in rounds until a round finds nothing (`take_due`), and delivers in stamp order:
//!   so a message is never delivered before one that was sent before it, as with the one shared
//!   queue this replaces (model-checked: `loom_a_message_sent_after_another_is_...`).
//! - **Order within a lane.** One thread, one lane: its messages arrive in the order sent. When the ring is
//!   full, items go to the lane's overflow queue (under its lock) and `overflowing` is set;
//!   from then on every push goes there too, until the shard takes the queue. The shard reads
//!   `overflowing` first, then drains the ring to empty (everything older), and only then takes
//!   the queue and clears the flag under the lock. Pushes to the queue always set the flag
//!   again, so a push racing the take is seen by the next pass.
//! - **Closing.** When the shard stops it sets `closed` under the overflow lock, drains ring and
//!   queue one last time (those items are counted as dead letters by the shard) and sets
//!   `drained`. A push that sees `closed` fails and gives the message back. A push that read
//!   `closed` too early lands in the ring after the last drain: the thread counts what is left
//!   in its ring (`Producer::unconsumed`) as dead letters when it drops the lane, which it does
//!   on its next send to that runtime or when it exits.
//! - **Departure.** A thread that exits marks its lanes `gone`; the shard drops a gone lane once
//!   it is empty (what the thread sent is still delivered, in stamp order).

use crate::packet::Packet;
use crate::ring::{ring, Consumer, Producer};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};
use std::collections::VecDeque;

/// A message and its stamp: the position its sender took in the shard's stamp counter.
pub(crate) type Stamped = (u64, Packet);

/// Slots per lane (64 bytes each): 16 KiB per thread and shard it sends to.
pub(crate) const LANE_CAPACITY: usize = 256;

/// What both ends of one lane share.
#[derive(Default)]
pub(crate) struct LaneState {
    /// The shard takes nothing more (set under `overflow`'s lock).
    closed: AtomicBool,
    /// The shard's last drain is done: what is left in the ring was never delivered.
    drained: AtomicBool,
    /// The sending thread is gone: the shard drops the lane once it is empty.
    gone: AtomicBool,
    /// Items the ring had no room for, in order.
    overflow: Mutex<Vec<Stamped>>,
    /// `overflow` may hold items; they are younger than everything in the ring.
    overflowing: AtomicBool,
}

/// The shard's end of a lane.
pub(crate) struct LaneRx {
    rx: Consumer<Stamped>,
    state: Arc<LaneState>,
    /// Taken from the overflow queue, not due yet (stamped at or after the pass's bound).
    pending: VecDeque<Stamped>,
    /// Taken from the ring, not due yet; older than everything still in the ring.
    held: Option<Stamped>,
}

/// The sending thread's end of a lane.
pub(crate) struct LaneTx {
    tx: Producer<Stamped>,
    state: Arc<LaneState>,
}

/// A new lane's two ends.
pub(crate) fn lane() -> (LaneTx, LaneRx) {
    let (tx, rx) = ring(LANE_CAPACITY);
    let state = Arc::new(LaneState::default());
    (LaneTx { tx, state: state.clone() }, LaneRx { rx, state, pending: VecDeque::new(), held: None })
}

/// Why a push failed: the message comes back.
pub(crate) struct Closed(pub(crate) Packet);

impl LaneTx {
    /// Sends `p`, stamped `stamp`, down the lane; see [`LaneTx::push_stamped`].
    #[inline]
    pub(crate) fn push(&mut self, stamp: u64, p: Packet) -> Result<(), Closed> {
        self.push_stamped((stamp, p)).map_err(|(_, p)| Closed(p))
    }
}

impl LaneTx {
    /// Sends a stamped message down the lane (visible to the shard at once), or gives it back
    /// when the shard has stopped.
    #[inline]
    fn push_stamped(&mut self, it: Stamped) -> Result<(), Stamped> {
        if self.state.closed.load(Ordering::Acquire) {
            return Err(it);
        }
        if self.state.overflowing.load(Ordering::Acquire) {
            return self.overflow(it);
        }
        match self.tx.push(it) {
            Ok(()) => {
                self.tx.publish();
                Ok(())
            }
            Err(it) => self.overflow(it),
        }
    }

    fn overflow(&mut self, it: Stamped) -> Result<(), Stamped> {
        let mut q = self.state.overflow.lock().unwrap();
        if self.state.closed.load(Ordering::Relaxed) {
            return Err(it);
        }
        q.push(it);
        self.state.overflowing.store(true, Ordering::Release);
        Ok(())
    }

    /// The shard stopped taking (its last drain may still be under way).
    pub(crate) fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::Acquire)
    }

    /// The shard stopped and drained for the last time: this lane is of no more use.
    pub(crate) fn is_dead(&self) -> bool {
        self.state.drained.load(Ordering::Acquire)
    }

    /// Messages sent that the shard never took: exact once `is_dead`.
    pub(crate) fn undelivered(&self) -> usize {
        self.tx.unconsumed()
    }

    /// The thread lets go of the lane: the shard drops it once empty.
    pub(crate) fn leave(&self) {
        self.state.gone.store(true, Ordering::Release);
    }
}

impl LaneRx {
    /// Whether anything waits in the lane (a look; nothing is taken).
    #[inline]
    pub(crate) fn has_next(&self) -> bool {
        !self.pending.is_empty()
            || self.held.is_some()
            || self.rx.has_next()
            || self.state.overflowing.load(Ordering::Relaxed)
    }

    /// Moves every waiting message stamped below `below` into `out`, oldest first; stops at the
    /// first one stamped later (kept for a later pass). Returns how many.
    pub(crate) fn take_below(&mut self, below: u64, out: &mut Vec<Stamped>) -> usize {
        let mut n = self.take_pending(below, out);
        if !self.pending.is_empty() {
            return n;
        }
        if let Some(h) = self.held.take() {
            if h.0 >= below {
                self.held = Some(h);
                return n;
            }
            out.push(h);
            n += 1;
        }
        // Read the flag before draining the ring: whatever the ring held when the queue began
        // is older than the queue and must come out first.
        let overflowing = self.state.overflowing.load(Ordering::Acquire);
        while let Some(it) = self.rx.pop() {
            if it.0 >= below {
                self.held = Some(it);
                self.rx.release();
                return n;
            }
            out.push(it);
            n += 1;
        }
        self.rx.release();
        if overflowing {
            let queued = {
                let mut q = self.state.overflow.lock().unwrap();
                self.state.overflowing.store(false, Ordering::Relaxed);
                std::mem::take(&mut *q)
            };
            self.pending.extend(queued);
            n += self.take_pending(below, out);
        }
        n
    }

    fn take_pending(&mut self, below: u64, out: &mut Vec<Stamped>) -> usize {
        let mut n = 0;
        while self.pending.front().is_some_and(|it| it.0 < below) {
            out.extend(self.pending.pop_front());
            n += 1;
        }
        n
    }

    /// The sending thread is gone and nothing is left: the shard may drop the lane.
    pub(crate) fn is_finished(&self) -> bool {
        self.state.gone.load(Ordering::Acquire) && !self.has_next()
    }

    /// The shard stops: refuses later pushes, hands everything still waiting to `dead` (in
    /// order), and marks the lane drained. Returns how many.
    pub(crate) fn close(&mut self, mut dead: impl FnMut(Packet)) -> usize {
        let queued = {
            let mut q = self.state.overflow.lock().unwrap();
            self.state.closed.store(true, Ordering::Release);
            std::mem::take(&mut *q)
        };
        let mut n = self.pending.len();
        self.pending.drain(..).for_each(|(_, p)| dead(p));
        if let Some((_, p)) = self.held.take() {
            dead(p);
            n += 1;
        }
        while let Some((_, p)) = self.rx.pop() {
            dead(p);
            n += 1;
        }
        self.rx.release();
        n += queued.len();
        queued.into_iter().for_each(|(_, p)| dead(p));
        self.state.drained.store(true, Ordering::Release);
        n
    }
}

/// Takes from `lanes` (and from `more`, the injector) every message stamped below `below`, in
/// rounds until a round finds nothing, and appends the due ones to `due` sorted by stamp; `out`
/// keeps what is stamped later (only `more` hands those over). Both buffers are the caller's,
/// so a pass allocates nothing once they have grown. A message taken late in a round makes
/// everything pushed before it visible (it was published before that message was stamped), and
/// the next round collects those; after a round that finds nothing, whatever was pushed before
/// a taken message is taken too, so sorting by stamp keeps causal order across senders.
pub(crate) fn take_due(
    lanes: &mut [LaneRx],
    below: u64,
    out: &mut Vec<Stamped>,
    due: &mut Vec<Stamped>,
    mut more: impl FnMut(&mut Vec<Stamped>),
) {
    loop {
        let before = out.len();
        for l in lanes.iter_mut() {
            l.take_below(below, out);
        }
        more(out);
        if out.len() == before {
            break;
        }
    }
    // Stable: one lane's messages keep their order.
    out.sort_by_key(|(stamp, _)| *stamp);
    let n = out.partition_point(|(stamp, _)| *stamp < below);
    due.extend(out.drain(..n));
}

/// The lanes a shard has not adopted yet, and whether it still adopts any.
#[derive(Default)]
pub(crate) struct LaneRegistry {
    new: Mutex<(Vec<LaneRx>, bool)>,
    added: AtomicBool,
}

impl LaneRegistry {
    /// Offers a new lane to the shard; `false` (the lane dropped) when the shard has stopped.
    pub(crate) fn register(&self, rx: LaneRx) -> bool {
        let mut new = self.new.lock().unwrap();
        if new.1 {
            return false;
        }
        new.0.push(rx);
        self.added.store(true, Ordering::Release);
        true
    }

    /// Whether lanes wait to be adopted (a look).
    #[inline]
    pub(crate) fn has_new(&self) -> bool {
        self.added.load(Ordering::Acquire)
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::packet::Deliver;
    use crate::shard::Shard;

    struct V(u64);
    impl Deliver for V {
        fn deliver(self, _: &Shard, _: u64) {}
    }

    fn packet(v: u64) -> Packet {
        Packet::new(0, V(v))
    }

    fn value(p: Packet) -> u64 {
        p.take::<V>().ok().expect("a V").0
    }

    #[test]
    fn a_lane_keeps_order_through_its_overflow_and_refuses_after_closing() {
        let (mut tx, mut rx) = lane();
        let total = 3 * LANE_CAPACITY as u64;
        for v in 0..total {
            assert!(tx.push(v, packet(v)).is_ok());
        }
        let mut got = Vec::new();
        // Bounds that stop inside the ring and inside the queue.
        let mut below = 0;
        while got.len() < total as usize {
            below += 100;
            let mut out = Vec::new();
            rx.take_below(below, &mut out);
            assert!(out.iter().all(|(s, _)| *s < below), "nothing stamped past the bound");
            got.extend(out.into_iter().map(|(_, p)| value(p)));
        }
        assert_eq!(got, (0..total).collect::<Vec<_>>());
        assert!(!rx.has_next());
        for v in 0..5 {
            assert!(tx.push(total + v, packet(v)).is_ok());
        }
        let mut dead = Vec::new();
        assert_eq!(rx.close(|p| dead.push(value(p))), 5);
        assert_eq!(dead, [0, 1, 2, 3, 4]);
        assert!(tx.is_dead());
        assert!(matches!(tx.push(0, packet(9)), Err(Closed(_))));
        assert_eq!(tx.undelivered(), 0);
    }

    #[test]
    fn a_gone_lane_is_finished_once_empty_and_a_closed_registry_refuses() {
        let (mut tx, mut rx) = lane();
        assert!(tx.push(0, packet(1)).is_ok());
        tx.leave();
        assert!(!rx.is_finished(), "one message still waits");
        assert_eq!(rx.take_below(1, &mut Vec::new()), 1);
        assert!(rx.is_finished());
        let reg = LaneRegistry::default();
        let (_, rx2) = lane();
        assert!(reg.register(rx2));
        assert!(reg.has_new());
        assert_eq!(reg.close().len(), 1);
        let (_, rx3) = lane();
        assert!(!reg.register(rx3));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::packet::Deliver;
    use crate::shard::Shard;

    struct V(u64);
    impl Deliver for V {
        fn deliver(self, _: &Shard, _: u64) {}
    }

    /// A thread sends five messages down a lane of two slots (so most go through the queue)
    /// while the shard drains one at a time: they arrive in order, none lost.
    #[test]
    fn loom_a_lane_keeps_order_across_its_queue() {
        loom::model(|| {
            let (tx, rx) = ring::<Stamped>(2);
            let state = Arc::new(LaneState::default());
            let mut tx = LaneTx { tx, state: state.clone() };
            let mut rx = LaneRx { rx, state, pending: VecDeque::new(), held: None };
            let t = loom::thread::spawn(move || {
                for v in 0..5u64 {
                    assert!(tx.push(v, Packet::new(0, V(v))).is_ok());
                }
            });
            let mut got = Vec::new();
            while got.len() < 5 {
                let mut out = Vec::new();
                rx.take_below(u64::MAX, &mut out);
                got.extend(out.into_iter().map(|(_, p)| p.take::<V>().ok().expect("a V").0));
                loom::thread::yield_now();
            }
            t.join().unwrap();
            assert_eq!(got, [0, 1, 2, 3, 4]);
        });
    }

    /// Thread A sends `a` down its lane and then tells thread B (a flag), which sends `b` down
    /// its own: a shard that delivers `b` has delivered `a` before it, whatever it sees when.
    #[test]
    fn loom_a_message_sent_after_another_is_delivered_after_it_across_lanes() {
        use crate::sync::AtomicUsize;
        loom::model(|| {
            let stamps = Arc::new(AtomicUsize::new(0));
            let said = Arc::new(AtomicBool::new(false));
            let (mut ta, ra) = lane_of(2);
            let (mut tb, rb) = lane_of(2);
            let (s1, said1) = (stamps.clone(), said.clone());
            let a = loom::thread::spawn(move || {
                let st = s1.fetch_add(1, Ordering::Relaxed) as u64;
                assert!(ta.push(st, Packet::new(0, V(1))).is_ok());
                said1.store(true, Ordering::Release);
            });
            let (s2, said2) = (stamps.clone(), said.clone());
            let b = loom::thread::spawn(move || {
                if said2.load(Ordering::Acquire) {
                    let st = s2.fetch_add(1, Ordering::Relaxed) as u64;
                    assert!(tb.push(st, Packet::new(0, V(2))).is_ok());
                }
            });
            let mut lanes = vec![ra, rb];
            let mut held = Vec::new();
            let mut got = Vec::new();
            for _ in 0..2 {
                let below = stamps.load(Ordering::Acquire) as u64;
                let mut due = Vec::new();
                take_due(&mut lanes, below, &mut held, &mut due, |_| {});
                for (_, p) in due {
                    got.push(p.take::<V>().ok().expect("a V").0);
                }
            }
            a.join().unwrap();
            b.join().unwrap();
            if let Some(i) = got.iter().position(|&v| v == 2) {
                assert!(got[..i].contains(&1), "b was delivered before a: {got:?}");
            }
        });
    }

    fn lane_of(cap: usize) -> (LaneTx, LaneRx) {
        let (tx, rx) = ring::<Stamped>(cap);
        let state = Arc::new(LaneState::default());
        (LaneTx { tx, state: state.clone() }, LaneRx { rx, state, pending: VecDeque::new(), held: None })
    }
}
