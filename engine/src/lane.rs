//! Lanes: the way into a shard from a thread that is not one of its runtime's shards.
//!
//! Each such thread gets, on its first send to a shard, a ring of its own into that shard
//! (the same SPSC ring the shards use between themselves), so a stream of tells from `main`
//! costs a slot write and a publish per message instead of a lock. The thread keeps its end in
//! a thread-local; the shard adopts the other end and drains it with its other inbound rings.
//!
//! # Protocol
//! - **Causal order across threads.** Every push carries a stamp from the shard's counter
//!   ([`LaneRegistry::stamp`]): a `fetch_add` while more than one lane is live, a plain read
//!   while the sender's lane is the only one (no locked instruction; the shard never reads the
//!   counter, so a lone sender keeps its line). A push that happened after another from a
//!   different thread carries a greater stamp, and the earlier one was published before it.
//!   Each pass the shard takes everything its lanes show; the latest stamp among them is the
//!   pass's bound. It then takes from every lane (adopting lanes registered meanwhile)
//!   what is stamped below the bound, in rounds until a round finds nothing (`take_due`), and
//!   delivers in stamp order. Every message sent by another thread before a taken one is
//!   stamped below it and was visible once the taken one was, so the round after finds it: a
//!   message is never delivered before one that was sent before it, as with the one shared
//!   queue this replaces (model-checked: `loom_a_message_sent_after_another_is_...`,
//!   `loom_a_lone_senders_stamps_...`).
//! - **Order within a lane.** One thread, one lane: its messages arrive in the order sent.
//!   When the ring is full, items go to the lane's overflow queue (under its lock) and
//!   `overflowing` is set; from then on every push goes there too, until the shard takes the
//!   queue. The shard reads
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
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;

/// A message and its stamp: the position its sender took in the shard's stamp counter.
pub(crate) type Stamped = (u64, Packet);

/// Slots per lane (128 bytes each: a stamp, a packet and the slot's sequence word do not fit
/// one line): 32 KiB per thread and shard it sends to.
pub(crate) const LANE_CAPACITY: usize = 256;

/// The largest overflow buffer (in messages) a lane keeps for reuse once emptied whatever it
/// last carried; a larger one is kept only while the queues it carries fill a quarter of it,
/// so a burst gives its memory back when it subsides.
const SPARE_MAX: usize = 1 << 16;

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
    /// An emptied overflow buffer, handed to the sender at the next take of its queue.
    spare: Vec<Stamped>,
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
    (
        LaneTx { tx, state: state.clone() },
        LaneRx { rx, state, pending: VecDeque::new(), held: None, spare: Vec::new() },
    )
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
            // The queue is swapped for the empty buffer a previous take left (both keep their
            // allocations), so a sender that keeps outrunning the shard reuses two buffers
            // instead of growing a fresh one each pass (page faults on fresh memory made such
            // a run several times slower).
            let mut queued = {
                let mut q = self.state.overflow.lock().unwrap();
                self.state.overflowing.store(false, Ordering::Relaxed);
                std::mem::replace(&mut *q, std::mem::take(&mut self.spare))
            };
            // A lane's stamps never decrease (`LaneRegistry::stamp`): the whole queue is below
            // the bound when its last one is, and goes in one copy.
            if queued.last().is_none_or(|it| it.0 < below) {
                let len = queued.len();
                n += len;
                out.append(&mut queued);
                // Kept while a backlog lasts (fresh memory for every take is what made a
                // backlog grow faster than the shard could work it off); given back once
                // the queues it carries shrink.
                if queued.capacity() <= SPARE_MAX || len * 4 >= queued.capacity() {
                    self.spare = queued;
                }
            } else {
                self.pending = VecDeque::from(queued);
                n += self.take_pending(below, out);
            }
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

/// Takes the messages of one pass from `lanes` and from `more` (the injector), and appends
/// those due to `due`, sorted by stamp:
/// 1. The first round takes everything the lanes show and everything `more` hands over (all
///    of it: a backlog for one actor left in a lane would hold up the messages behind it for
///    other actors). The latest stamp among them is the pass's bound.
/// 2. Each later round takes from every lane what is stamped below the bound, until a round
///    finds nothing. A message sent before a taken one, from another thread, is stamped below
///    it (see [`LaneRegistry::stamp`]) and was visible once the taken one was, so the round
///    after finds it; one from the same thread is ahead of it in its lane.
/// 3. Due are the messages stamped up to the bound; `out` keeps the later ones (only `more`
///    hands those over). The sort is stable, so one lane's messages keep their order.
///
/// The later rounds end: the stamps below the bound were handed out before it, and a lone
/// sender's stamps (read, not taken) stop being below it once its reads see the counter move.
/// Both buffers are the caller's, so a pass allocates nothing once they have grown.
pub(crate) fn take_due(
    registry: &LaneRegistry,
    lanes: &mut Vec<LaneRx>,
    out: &mut Vec<Stamped>,
    due: &mut Vec<Stamped>,
    mut more: impl FnMut(&mut Vec<Stamped>),
) {
    // Every round adopts the lanes registered since: a message sent before a taken one may be
    // in a lane registered after the round began (its registration happened before that
    // message, so the next round sees it).
    registry.adopt_new(lanes);
    for l in lanes.iter_mut() {
        l.take_below(u64::MAX, out);
    }
    let from_lanes = out.len();
    more(out);
    let Some(bound) = out.iter().map(|(stamp, _)| *stamp).max() else { return };
    // One lane, none registered since, nothing new from the injector: whatever was sent before
    // a message of that lane is ahead of it in the lane, or was in the injector before the
    // first round took from it (`more` runs after the lanes), so later rounds would find
    // nothing a taken message needs. (A message the injector hands over may have been sent
    // after a lane's message the first round missed: then the rounds run.)
    let alone = lanes.len() <= 1 && !registry.has_new() && out.len() == from_lanes;
    if !alone {
        loop {
            let before = out.len();
            registry.adopt_new(lanes);
            for l in lanes.iter_mut() {
                l.take_below(bound, out);
            }
            more(out);
            if out.len() == before {
                break;
            }
        }
    }
    out.sort_by_key(|(stamp, _)| *stamp);
    let n = out.partition_point(|(stamp, _)| *stamp <= bound);
    if n == out.len() && due.is_empty() {
        std::mem::swap(out, due);
    } else {
        due.extend(out.drain(..n));
    }
}

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
            let n = rx.take_below(below, &mut out);
            assert_eq!(n, out.len());
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
    fn a_backlog_is_taken_whole_in_order_and_its_overflow_buffer_goes_back_to_the_sender() {
        let (mut tx, rx) = lane();
        let reg = LaneRegistry::default();
        let mut lanes = vec![rx];
        let (mut out, mut due) = (Vec::new(), Vec::new());
        let total = 5 * LANE_CAPACITY as u64;
        for cycle in 0..2 {
            let first = cycle * total;
            for v in first..first + total {
                // A lone sender's stamps are all one (first backlog), others' all differ.
                let stamp = if cycle == 0 { 0 } else { v };
                assert!(tx.push(stamp, packet(v)).is_ok());
            }
            // One pass takes all of it (what stayed in the lane would hold up the messages
            // behind it, whatever actor they are for).
            take_due(&reg, &mut lanes, &mut out, &mut due, |_| {});
            let got: Vec<u64> = due.drain(..).map(|(_, p)| value(p)).collect();
            assert_eq!(got, (first..first + total).collect::<Vec<_>>());
            assert!(out.is_empty());
        }
        // The second backlog's queue was taken whole, and the buffer the first one had filled
        // went back to the sender: one more overflowing message lands in room already there.
        for v in 0..=(LANE_CAPACITY as u64) {
            assert!(tx.push(2 * total + v, packet(v)).is_ok());
        }
        let q = tx.state.overflow.lock().unwrap();
        assert_eq!(q.len(), 1);
        assert!(q.capacity() >= 4 * LANE_CAPACITY, "reused, not fresh: {}", q.capacity());
    }

    #[test]
    fn a_large_overflow_buffer_is_kept_while_backlogs_fill_it_and_given_back_after() {
        let (mut tx, rx) = lane();
        let (reg, mut lanes) = (LaneRegistry::default(), vec![rx]);
        let (mut out, mut due) = (Vec::new(), Vec::new());
        let mut next = 0u64;
        let mut backlog = |tx: &mut LaneTx, n: usize, lanes: &mut Vec<LaneRx>| {
            for _ in 0..LANE_CAPACITY + n {
                assert!(tx.push(next, packet(next)).is_ok());
                next += 1;
            }
            take_due(&reg, lanes, &mut out, &mut due, |_| {});
            assert_eq!(due.len(), LANE_CAPACITY + n);
            due.clear();
        };
        let big = 2 * SPARE_MAX;
        // Two large backlogs: the first's buffer is kept and handed to the sender at the second.
        backlog(&mut tx, big, &mut lanes);
        backlog(&mut tx, 8, &mut lanes);
        assert!(tx.state.overflow.lock().unwrap().capacity() >= big, "kept while backlogs fill it");
        // That buffer carried only 8: it is given back, and the sender's next is small.
        backlog(&mut tx, 8, &mut lanes);
        backlog(&mut tx, 8, &mut lanes);
        assert!(tx.state.overflow.lock().unwrap().capacity() <= SPARE_MAX, "given back after");
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
            let mut rx = LaneRx { rx, state, pending: VecDeque::new(), held: None, spare: Vec::new() };
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

    /// One pass of a shard: adopt new lanes, take what is due, deliver it (into `got`), drop
    /// the lanes that are finished.
    fn pass(reg: &LaneRegistry, lanes: &mut Vec<LaneRx>, held: &mut Vec<Stamped>, got: &mut Vec<u64>) {
        let mut due = Vec::new();
        take_due(reg, lanes, held, &mut due, |_| {});
        got.extend(due.into_iter().map(|(_, p)| p.take::<V>().ok().expect("a V").0));
        let live = lanes.len();
        lanes.retain(|l| !l.is_finished());
        reg.dropped(live - lanes.len());
    }

    fn delivered_in_order(got: &[u64], first: u64, then: u64) {
        if let Some(i) = got.iter().position(|&v| v == then) {
            assert!(got[..i].contains(&first), "{then} was delivered before {first}: {got:?}");
        }
    }

    /// Thread A sends `1` down its lane and then tells thread B (a flag), which sends `2` down
    /// its own: a shard that delivers `2` has delivered `1` before it, whatever it sees when.
    /// Both lanes are live, so both take stamps from the counter.
    #[test]
    fn loom_a_message_sent_after_another_is_delivered_after_it_across_lanes() {
        loom::model(|| {
            let reg = Arc::new(LaneRegistry::default());
            let said = Arc::new(AtomicBool::new(false));
            let (mut ta, ra) = lane_of(2);
            let (mut tb, rb) = lane_of(2);
            assert!(reg.register(ra) && reg.register(rb));
            let (r1, said1) = (reg.clone(), said.clone());
            let a = loom::thread::spawn(move || {
                assert!(ta.push(r1.stamp(), Packet::new(0, V(1))).is_ok());
                said1.store(true, Ordering::Release);
            });
            let (r2, said2) = (reg.clone(), said.clone());
            let b = loom::thread::spawn(move || {
                if said2.load(Ordering::Acquire) {
                    assert!(tb.push(r2.stamp(), Packet::new(0, V(2))).is_ok());
                }
            });
            let (mut lanes, mut held, mut got) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..2 {
                pass(&reg, &mut lanes, &mut held, &mut got);
            }
            a.join().unwrap();
            b.join().unwrap();
            delivered_in_order(&got, 1, 2);
        });
    }

    /// The stamps of a lone sender (read, not taken): B's lane is live, B sends `2`, leaves
    /// and tells A, whose lane may be the only one left by then (the shard dropped B's); A's
    /// `1` is delivered after `2`. And A alone sends `3` before B's lane is registered: `3`
    /// comes before `2`.
    #[test]
    fn loom_a_lone_senders_stamps_keep_causal_order_as_lanes_come_and_go() {
        loom::model(|| {
            let reg = Arc::new(LaneRegistry::default());
            let said = Arc::new(AtomicBool::new(false));
            let (mut ta, ra) = lane_of(4);
            let (mut tb, rb) = lane_of(4);
            assert!(reg.register(ra));
            let (r1, said1) = (reg.clone(), said.clone());
            let b = loom::thread::spawn(move || {
                if said1.load(Ordering::Acquire) {
                    assert!(r1.register(rb));
                    assert!(tb.push(r1.stamp(), Packet::new(0, V(2))).is_ok());
                    tb.leave();
                    said1.store(false, Ordering::Release);
                }
            });
            let (r2, said2) = (reg.clone(), said.clone());
            let a = loom::thread::spawn(move || {
                assert!(ta.push(r2.stamp(), Packet::new(0, V(3))).is_ok());
                said2.store(true, Ordering::Release);
                loom::thread::yield_now();
                // B answered (set the flag back): what A sends now follows B's `2`.
                if !said2.load(Ordering::Acquire) {
                    assert!(ta.push(r2.stamp(), Packet::new(0, V(1))).is_ok());
                }
            });
            let (mut lanes, mut held, mut got) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..2 {
                pass(&reg, &mut lanes, &mut held, &mut got);
            }
            a.join().unwrap();
            b.join().unwrap();
            pass(&reg, &mut lanes, &mut held, &mut got);
            delivered_in_order(&got, 2, 1);
            delivered_in_order(&got, 3, 2);
        });
    }

    /// A lone sender A sends `1` down its lane and tells thread X, which sends `2` through a
    /// locked queue (the injector's shape, with a stamp taken from the counter): `2` is never
    /// delivered before `1`, although the pass's first round may scan the lane before `1`
    /// lands and find `2` in the queue after (then the rounds must run, one lane or not).
    #[test]
    fn loom_a_message_from_the_injector_after_a_lone_senders_is_delivered_after_it() {
        loom::model(|| {
            let reg = Arc::new(LaneRegistry::default());
            let queue = Arc::new(Mutex::new(Vec::<Stamped>::new()));
            let said = Arc::new(AtomicBool::new(false));
            let (mut ta, ra) = lane_of(2);
            assert!(reg.register(ra));
            let (r1, said1) = (reg.clone(), said.clone());
            let a = loom::thread::spawn(move || {
                assert!(ta.push(r1.stamp(), Packet::new(0, V(1))).is_ok());
                said1.store(true, Ordering::Release);
            });
            let (r2, q2, said2) = (reg.clone(), queue.clone(), said.clone());
            let x = loom::thread::spawn(move || {
                if said2.load(Ordering::Acquire) {
                    q2.lock().unwrap().push((r2.fresh_stamp(), Packet::new(0, V(2))));
                }
            });
            let (mut lanes, mut held, mut got) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..2 {
                let mut due = Vec::new();
                take_due(&reg, &mut lanes, &mut held, &mut due, |o| o.append(&mut queue.lock().unwrap()));
                got.extend(due.into_iter().map(|(_, p)| p.take::<V>().ok().expect("a V").0));
            }
            a.join().unwrap();
            x.join().unwrap();
            delivered_in_order(&got, 1, 2);
        });
    }

    fn lane_of(cap: usize) -> (LaneTx, LaneRx) {
        let (tx, rx) = ring::<Stamped>(cap);
        let state = Arc::new(LaneState::default());
        (
            LaneTx { tx, state: state.clone() },
            LaneRx { rx, state, pending: VecDeque::new(), held: None, spare: Vec::new() },
        )
    }
}
