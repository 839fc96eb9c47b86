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
//!   When the ring is full, items go to the lane's overflow queue (under its lock, in blocks
//!   of a bounded size: `overflow`) and `overflowing` is set; from then on every push goes
//!   there too, until the shard takes the queue. The shard reads
//!   `overflowing` first, then drains the ring to empty (everything older), and only then takes
//!   the queue and clears the flag under the lock. Pushes to the queue always set the flag
//!   again, so a push racing the take is seen by the next pass.
//! - **Runs.** When a take finds `RUN_AFTER` messages or more waiting, the shard marks the lane
//!   `behind`; a lone sender (its stamps repeat) whose next user message goes to the same actor
//!   as its last then opens a run (`run`): a ring slot announces it, and the messages that
//!   follow for that actor at that stamp are appended to the run's buffer, packed, without
//!   taking slots, until anything else goes into the lane. The shard hands over what a run
//!   holds, as one packet, before anything the lane carries after the run's announcement, and
//!   takes the rest of a run once it sees something later; a take of at most one message
//!   clears `behind`.
//! - **Closing.** When the shard stops it sets `closed` under the overflow lock, drains ring and
//!   queue one last time (those items are counted as dead letters by the shard) and sets
//!   `drained`. A push that sees `closed` fails and gives the message back. A push that read
//!   `closed` too early lands in the ring (or a run) after the last drain: once the shard has
//!   let go of its end, the thread takes back what is left in its ring (`Producer::orphaned`)
//!   and counts it, with what runs held untaken, as dead letters when it drops the lane, which
//!   it does on its next send to that runtime or when it exits.
//! - **Departure.** A thread that exits marks its lanes `gone`; the shard drops a gone lane once
//!   it is empty (what the thread sent is still delivered, in stamp order).

use crate::cpu::Seat;
use crate::packet::{Deliver, Packet};
use crate::ring::{ring, Consumer, Producer};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};
pub(crate) use overflow::Blocks;
use overflow::Overflow;
use run::{ReadRun, RunHome, RunOpen, RunTx};
use std::any::Any;
use std::collections::VecDeque;

/// A message and its stamp: the position its sender took in the shard's stamp counter.
pub(crate) type Stamped = (u64, Packet);

/// Slots per lane (128 bytes each: a stamp, a packet and the slot's sequence word do not fit
/// one line, but a packet with a payload of up to 32 bytes, or a boxed one, uses only the
/// first: `take_stamped`): 32 KiB per thread and shard it sends to.
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
    overflow: Mutex<Overflow>,
    /// `overflow` may hold items; they are younger than everything in the ring.
    overflowing: AtomicBool,
    /// Messages appended to runs after the shard's last drain (`run`), counted as the runs go,
    /// and the buffers of runs that are done.
    runs: Arc<RunHome>,
    /// The shard's last take from this lane found a backlog (`RUN_AFTER` messages or more): a
    /// lone sender's stream to one actor then travels in runs (`run`). Stored only on change.
    behind: AtomicBool,
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

/// Messages one take from a lane must find for the shard to count itself behind the sender
/// (`LaneState::behind`); a take of at most one clears it.
const RUN_AFTER: usize = 8;

/// The shard's end of a lane.
pub(crate) struct LaneRx {
    rx: Consumer<Stamped>,
    state: Arc<LaneState>,
    /// Taken from the overflow queue, not due yet (stamped at or after the pass's bound).
    pending: VecDeque<Stamped>,
    /// Taken from the ring and held back (not due yet, or left by `take_lone` for the rounds);
    /// older than everything still in the ring.
    held: Option<Stamped>,
    /// The overflow queue's blocks between the lock and the pass (kept empty, with its
    /// allocation, in between).
    taken: Vec<Vec<Stamped>>,
    /// The run the sender announced last, while nothing later from the lane was seen.
    run: Option<Box<dyn ReadRun>>,
}

/// The sending thread's end of a lane.
pub(crate) struct LaneTx {
    tx: Producer<Stamped>,
    state: Arc<LaneState>,
    /// Pushes since the seat was last published.
    since_seat: u32,
    /// The run open for appends: a `RunTx<P>`, type-erased, with its type id.
    run: Option<(std::any::TypeId, Box<dyn Any + Send>)>,
    /// The target of the last message that could have travelled in a run: a run opens only for
    /// a stream to one actor (a message to each of many actors would open a run each).
    last_target: u64,
}

/// A new lane's two ends.
pub(crate) fn lane() -> (LaneTx, LaneRx) {
    lane_of(LANE_CAPACITY)
}

/// A lane of `capacity` slots (the model checker's are tiny).
fn lane_of(capacity: usize) -> (LaneTx, LaneRx) {
    let (tx, rx) = ring(capacity);
    let state = Arc::new(LaneState::default());
    (
        LaneTx { tx, state: state.clone(), since_seat: 0, run: None, last_target: 0 },
        LaneRx { rx, state, pending: VecDeque::new(), held: None, taken: Vec::new(), run: None },
    )
}

/// Why a push failed: the message comes back.
pub(crate) struct Closed(pub(crate) Packet);

/// Takes the messages of one pass from `lanes` and from `more` (the injector), and appends
/// those due to `due`, sorted by stamp; the lanes' overflow queues are taken in whole blocks
/// into `blocks`, due after `due` (`Blocks::deliver`):
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
/// A pass with one lane and nothing else needs no sort: its queue's blocks, younger than
/// everything else the lane handed over, stay whole and are delivered after `due`. Any other
/// pass copies each take's blocks into `out` right after that take, where the separate
/// messages would have been, so the stable sort keeps each lane's order.
///
/// The later rounds end: the stamps below the bound were handed out before it, and a lone
/// sender's stamps (read, not taken) stop being below it once its reads see the counter move.
/// The buffers are the caller's, so a pass allocates nothing once they have grown.
pub(crate) fn take_due(
    registry: &LaneRegistry,
    lanes: &mut Vec<LaneRx>,
    out: &mut Vec<Stamped>,
    due: &mut Vec<Stamped>,
    blocks: &mut Blocks,
    mut more: impl FnMut(&mut Vec<Stamped>),
) {
    debug_assert!(blocks.taken.is_empty(), "the previous pass delivered its blocks");
    // Every round adopts the lanes registered since: a message sent before a taken one may be
    // in a lane registered after the round began (its registration happened before that
    // message, so the next round sees it).
    let left_over = out.len();
    registry.adopt_new(lanes);
    for l in lanes.iter_mut() {
        l.take_below(u64::MAX, out, blocks);
    }
    let from_lanes = out.len();
    more(out);
    let in_out = out.iter().map(|(stamp, _)| *stamp).max();
    let Some(bound) = in_out.max(blocks.last_stamp()) else { return };
    // One lane, none registered since, nothing new from the injector: whatever was sent before
    // a message of that lane is ahead of it in the lane, or was in the injector before the
    // first round took from it (`more` runs after the lanes), so later rounds would find
    // nothing a taken message needs. (A message the injector hands over may have been sent
    // after a lane's message the first round missed: then the rounds run.)
    let alone = lanes.len() <= 1 && !registry.has_new() && out.len() == from_lanes;
    // A pass that sorts copies each take's blocks into `out` before anything the lanes hand
    // over later: a lone sender's stamps repeat, so its queue and what it sent after the queue
    // was taken may carry one stamp, and only their places in `out` keep them in order.
    let sorts = !alone || left_over > 0;
    if sorts {
        blocks.copy_into(out);
    }
    if !alone {
        loop {
            let mut found = 0;
            registry.adopt_new(lanes);
            for l in lanes.iter_mut() {
                found += l.take_below(bound, out, blocks);
                blocks.copy_into(out);
            }
            let before = out.len();
            more(out);
            if found == 0 && out.len() == before {
                break;
            }
        }
    }
    if sorts {
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

/// [`take_due`], with the blocks it took whole appended to `due` (where the shard delivers them:
/// after it), for tests that look at one list.
#[cfg(test)]
pub(crate) fn take_due_flat(
    registry: &LaneRegistry,
    lanes: &mut Vec<LaneRx>,
    out: &mut Vec<Stamped>,
    due: &mut Vec<Stamped>,
    more: impl FnMut(&mut Vec<Stamped>),
) {
    let mut blocks = Blocks::default();
    take_due(registry, lanes, out, due, &mut blocks, more);
    blocks.copy_into(due);
}

/// The common pass, taken without [`take_due`]'s rounds: one message in all the lanes, plain
/// (not a run's announcement) and alone in its lane (nothing held over, queued or overflowing
/// there), nothing held over by the shard (`outside`, the caller's to check) and no lane
/// waiting to be adopted. The looks that matter come after the message is taken: once it is
/// visible, so is whatever another thread sent before it (in its lane, a lane it registered,
/// or the injector, which `more_waits` looks at). If any shows anything, or the message's lane
/// holds more, the message is held back in its lane (`LaneRx::held`, which `take_due` takes
/// first) and `None` sends the pass to `take_due`. Returns the message, due now: a plain
/// thread's ask or lone tell reaches its actor without the stamps being sorted or the message
/// copied through the pass's buffers, however many other threads have a lane here.
#[inline]
pub(crate) fn take_lone(
    registry: &LaneRegistry,
    lanes: &mut [LaneRx],
    more_waits: impl FnOnce() -> bool,
) -> Option<Packet> {
    if registry.has_new() {
        return None;
    }
    let mut with_one = None;
    for (i, l) in lanes.iter().enumerate() {
        if !l.is_plain() || (l.rx.has_next() && with_one.replace(i).is_some()) {
            return None;
        }
    }
    let i = with_one?;
    let it = lanes[i].pop()?;
    let more = |(j, l): (usize, &LaneRx)| if j == i { l.rx.has_next() } else { l.has_next() };
    if it.1.opens_run() || lanes.iter().enumerate().any(more) || registry.has_new() || more_waits() {
        lanes[i].held = Some(it);
        return None;
    }
    let lane = &mut lanes[i];
    lane.rx.release();
    lane.note_backlog(1);
    Some(it.1)
}

mod overflow;
mod registry;
mod rx;
mod tx;
pub(crate) use registry::LaneRegistry;
pub(crate) mod run;
pub(crate) use run::RunPart;

#[cfg(all(test, not(corelane_loom)))]
mod tests;

#[cfg(all(test, not(corelane_loom)))]
mod run_tests;

#[cfg(all(test, corelane_loom))]
mod loom_tests;
