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

use crate::cpu::Seat;
use crate::packet::{Deliver, Packet};
use crate::ring::{ring, Consumer, Producer};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};
use std::collections::VecDeque;

/// A message and its stamp: the position its sender took in the shard's stamp counter.
pub(crate) type Stamped = (u64, Packet);

/// Slots per lane (128 bytes each: a stamp, a packet and the slot's sequence word do not fit
/// one line, but a packet with a payload of up to 32 bytes, or a boxed one, uses only the
/// first: `take_stamped`): 32 KiB per thread and shard it sends to.
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
    /// Where the sending thread runs (sampled every `SEAT_EVERY` pushes): an idle shard on
    /// the same CPU hands it the core instead of spinning against it.
    seat: Seat,
}

/// Moves a stamped message out of a lane slot, reading only what it uses.
///
/// A lane's slot is two cache lines (the slot's sequence word, the stamp and a 56-byte packet
/// make 72 bytes), and the last word of the packet's storage is on the second line. A payload
/// of up to 32 bytes, or a boxed one, never needs that word: the sender does not write it
/// (`Packet::move_to`) and the shard does not read it, so one cache line per message crosses
/// from the sending thread's core to the shard's instead of two.
///
/// # Safety
/// `src` must hold a live stamped message, which the caller owns and does not read again.
unsafe fn take_stamped(src: *const Stamped) -> Stamped {
    // SAFETY: per the contract; field pointers stay inside `src`.
    unsafe { (std::ptr::addr_of!((*src).0).read(), Packet::move_from(std::ptr::addr_of!((*src).1))) }
}

// The first line of a lane slot (its sequence word, then the stamp and the packet) holds the
// packet's first `Packet::HEAD` bytes.
#[cfg(not(corelane_loom))]
const _: () = assert!(
    std::mem::size_of::<usize>() + std::mem::offset_of!(Stamped, 1) + Packet::HEAD <= 64,
    "a short packet in a lane slot must fit the slot's first cache line"
);

/// Pushes between two looks at the sending thread's CPU (about a nanosecond each).
const SEAT_EVERY: u32 = 64;

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
    /// Pushes since the seat was last published.
    since_seat: u32,
}

/// A new lane's two ends.
pub(crate) fn lane() -> (LaneTx, LaneRx) {
    let (tx, rx) = ring(LANE_CAPACITY);
    let state = Arc::new(LaneState::default());
    (
        LaneTx { tx, state: state.clone(), since_seat: 0 },
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
    /// Sends `payload` for `target`, stamped `stamp`, building its packet in the ring's next
    /// slot, when the ring has room and nothing is queued behind it; otherwise gives the
    /// payload back untouched (the caller sends it as a packet, by [`LaneTx::push`]).
    ///
    /// Inlined into the sender's own code, the payload goes from its registers into the slot:
    /// a packet built first and then moved is loaded back right after it was stored, and
    /// such a load, split across the stores that wrote it, waits until they reach the cache,
    /// behind the previous message's slot writes, whose line the shard took to read them.
    /// The sending thread then stood for a cross-core transfer on every message.
    #[inline(always)]
    pub(crate) fn push_new<P: Deliver>(&mut self, stamp: u64, target: u64, payload: P) -> Result<(), P> {
        if self.state.closed.load(Ordering::Acquire) || !self.ring_open() {
            return Err(payload);
        }
        self.note_seat();
        // SAFETY: `ring_open` just returned true; the closure initializes the item (the stamp,
        // then the packet, written field by field: see `Packet::write`).
        unsafe {
            self.write_slot(|dst| {
                std::ptr::addr_of_mut!((*dst).0).write(stamp);
                Packet::write(std::ptr::addr_of_mut!((*dst).1), target, payload);
            })
        };
        Ok(())
    }

    /// Whether the next message may go into the ring: it has room, and nothing is queued behind
    /// it (a message that went to the queue keeps every later one out of the ring until the
    /// shard takes the queue).
    #[inline(always)]
    fn ring_open(&mut self) -> bool {
        !self.state.overflowing.load(Ordering::Acquire) && self.tx.has_room()
    }

    /// Publishes where the sending thread runs, every `SEAT_EVERY` pushes.
    #[inline(always)]
    fn note_seat(&mut self) {
        if self.since_seat == 0 {
            self.state.seat.publish();
        }
        self.since_seat = (self.since_seat + 1) % SEAT_EVERY;
    }

    /// Writes the ring's next slot through `write` and publishes it.
    ///
    /// # Safety
    /// `ring_open` must have returned `true` since the last push, and `write` must initialize
    /// the stamped item it is given.
    #[inline(always)]
    unsafe fn write_slot(&mut self, write: impl FnOnce(*mut Stamped)) {
        // SAFETY: per the contract, there is room and `write` initializes the slot's item.
        unsafe { self.tx.push_in_place(write) };
        self.tx.publish();
    }

    /// Sends a stamped message down the lane (visible to the shard at once), or gives it back
    /// when the shard has stopped.
    #[inline]
    fn push_stamped(&mut self, it: Stamped) -> Result<(), Stamped> {
        if self.state.closed.load(Ordering::Acquire) {
            return Err(it);
        }
        self.note_seat();
        if !self.ring_open() {
            return self.overflow(it);
        }
        let (stamp, p) = it;
        // SAFETY: `ring_open` just returned true; the closure initializes the item (the stamp,
        // then the packet, moved in without the storage words its payload leaves unused: see
        // `take_stamped`).
        unsafe {
            self.write_slot(|dst| {
                std::ptr::addr_of_mut!((*dst).0).write(stamp);
                p.move_to(std::ptr::addr_of_mut!((*dst).1));
            })
        };
        Ok(())
    }

    /// Queues `it` behind the ring (which is full, or has items queued behind it already).
    ///
    /// A message stamped the same as the one queued last joins its packet when both are for
    /// the same actor (`Packet::join`: a batch of up to `BATCH_CAP`), so a thread that outruns
    /// the shard hands it one packet per run of messages instead of one per message, and the
    /// further behind the shard is, the cheaper its way out. Equal stamps are what keeps the
    /// order exactly as it was: the shard takes this queue whole or up to a bound, which
    /// treats equal stamps alike, and sorts what it takes by stamp, stably; no other packet can
    /// sort between two equal stamps of this lane (the injector's stamps are odd, a lane's
    /// even stamps are a lone sender's, and two lone senders are never live together:
    /// `LaneRegistry::stamp`). So one packet at that stamp is delivered where the separate
    /// ones would have been, one after another.
    fn overflow(&mut self, it: Stamped) -> Result<(), Stamped> {
        let mut q = self.state.overflow.lock().unwrap();
        if self.state.closed.load(Ordering::Relaxed) {
            return Err(it);
        }
        let (stamp, p) = it;
        let p = match q.last_mut() {
            Some((s, last)) if *s == stamp => last.join(p).err(),
            _ => Some(p),
        };
        if let Some(p) = p {
            q.push((stamp, p));
        }
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
        while let Some(it) = self.pop() {
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
                if out.is_empty() {
                    // The queue becomes `out` itself (no copy); `out`'s buffer is the spare.
                    std::mem::swap(out, &mut queued);
                } else {
                    out.append(&mut queued);
                }
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

    /// Takes the next message from the ring (see `take_stamped`).
    #[inline]
    fn pop(&mut self) -> Option<Stamped> {
        // SAFETY: `pop_by` hands the reader a live item that is ours to move out, once; the
        // reader moves it out (`take_stamped`'s contract) and the slot is not read again.
        unsafe { self.rx.pop_by(|src| take_stamped(src)) }
    }

    fn take_pending(&mut self, below: u64, out: &mut Vec<Stamped>) -> usize {
        let mut n = 0;
        while self.pending.front().is_some_and(|it| it.0 < below) {
            out.extend(self.pending.pop_front());
            n += 1;
        }
        n
    }

    /// Whether the shard has anything to do with this lane: a message waits, or the sending
    /// thread is gone (the lane is to be dropped once empty). Loads only.
    #[inline]
    pub(crate) fn needs_pass(&self) -> bool {
        self.has_next() || self.state.gone.load(Ordering::Relaxed)
    }

    /// The CPU the sending thread was last seen on when it sent, while it lives.
    pub(crate) fn sender_cpu(&self) -> Option<u32> {
        self.state.seat.cpu().filter(|_| !self.state.gone.load(Ordering::Relaxed))
    }

    /// The sending thread is gone and nothing is left: the shard may drop the lane.
    pub(crate) fn is_finished(&self) -> bool {
        self.state.gone.load(Ordering::Acquire) && !self.has_next()
    }

    /// The shard stops: refuses later pushes, hands everything still waiting to `dead` (in
    /// order), and marks the lane drained. Returns how many messages (a batch counts each).
    pub(crate) fn close(&mut self, mut dead: impl FnMut(Packet)) -> usize {
        let queued = {
            let mut q = self.state.overflow.lock().unwrap();
            self.state.closed.store(true, Ordering::Release);
            std::mem::take(&mut *q)
        };
        let mut n = 0;
        let mut dead = |p: Packet| {
            n += p.messages();
            dead(p)
        };
        self.pending.drain(..).for_each(|(_, p)| dead(p));
        if let Some((_, p)) = self.held.take() {
            dead(p);
        }
        while let Some((_, p)) = self.pop() {
            dead(p);
        }
        self.rx.release();
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
    let left_over = out.len();
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
    if !alone || left_over > 0 {
        // A lone lane hands its messages over in stamp order already; what an earlier pass
        // left over (from the injector) may be stamped after them.
        out.sort_by_key(|(stamp, _)| *stamp);
    }
    let n = out.partition_point(|(stamp, _)| *stamp <= bound);
    if n == out.len() && due.is_empty() {
        std::mem::swap(out, due);
    } else {
        due.extend(out.drain(..n));
    }
}

mod registry;
pub(crate) use registry::LaneRegistry;

#[cfg(all(test, not(corelane_loom)))]
mod tests;

#[cfg(all(test, corelane_loom))]
mod loom_tests;
