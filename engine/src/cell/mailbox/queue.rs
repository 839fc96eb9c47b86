//! The mailbox's queue of user messages: the messages in a growable ring buffer, the parts
//! queued where a plain thread's run left them, and on the side the senders (and trace
//! contexts) of the messages that came with one.

use super::Policy;
use crate::trace::MsgTrace;
#[cfg(feature = "tracing-spans")]
use crate::trace::TraceContext;
use std::collections::VecDeque;

/// What the queue keeps besides its messages, boxed (one pointer in every mailbox), present
/// while any of it is: the senders of queued messages that have one, as runs `(first, end,
/// sender)` of queue sequence numbers (`first..end`) in queue order, with the sequence number
/// of the message at the front; with `tracing-spans`, the trace contexts of queued messages that
/// came with one, by sequence number, in queue order; the queued parts; and the buffers a
/// backlog emptied, kept for the next (`Queue::make_room`).
///
/// Sequence numbers count from `popped` at the time the first run was recorded: while runs are
/// recorded, every pop advances `popped` (the `SENDERS` flag sends each message through
/// `take_meta`); while there are none, `popped` may lag, which nothing reads.
pub(super) struct Side<M> {
    pub(super) popped: u64,
    pub(super) runs: VecDeque<(u64, u64, u64)>,
    #[cfg(feature = "tracing-spans")]
    pub(super) traces: VecDeque<(u64, TraceContext)>,
    pub(super) parts: Option<Parts<M>>,
    /// Emptied buffers of a backlog (`Queue::make_room`), kept for the next buffers it fills:
    /// a mailbox holds on to the room its backlogs needed, as a buffer that grew used to, and a
    /// steady backlog allocates nothing. The emptied list of the last parts goes with them.
    spares: Vec<VecDeque<M>>,
    spare_list: VecDeque<(usize, Piece<M>)>,
}

impl<M> Side<M> {
    pub(super) fn new() -> Box<Self> {
        Box::new(Side {
            popped: 0,
            runs: VecDeque::new(),
            #[cfg(feature = "tracing-spans")]
            traces: VecDeque::new(),
            parts: None,
            spares: Vec::new(),
            spare_list: VecDeque::new(),
        })
    }

    /// Whether a queued message has a sender (or, with `tracing-spans`, a trace context).
    pub(super) fn has_senders(&self) -> bool {
        #[cfg(feature = "tracing-spans")]
        if !self.traces.is_empty() {
            return true;
        }
        !self.runs.is_empty()
    }

    /// Whether nothing is kept: the box may go.
    fn is_empty(&self) -> bool {
        !self.has_senders() && self.parts.is_none() && self.spares.is_empty()
    }

    /// The parts are done (nothing left in them): their list is kept for the next.
    fn parts_done(&mut self) {
        if let Some(p) = self.parts.take() {
            debug_assert!(p.front.is_empty() && p.list.is_empty());
            self.spare_list = p.list;
        }
    }
}

/// A run of queued messages kept where its sender wrote them: the part of a plain thread's run
/// that one take handed over (`crate::lane::RunPart`), which moves each message out as it is
/// taken and drops those it still holds with it.
pub(crate) type Part<M> = Box<dyn PartIter<M>>;

/// A queued part's messages, taken a few at a time: pops move the next [`REFILL_BYTES`] of a
/// part's messages into [`Parts::front`] with one call through the part's `dyn` pointer, and
/// pop them from there as from any buffer. (Popped one by one through the part, every message
/// cost two dynamic calls, `next` and `len`, and a call out of line: two fifths of a shard's
/// time under a plain thread's stream to one actor.)
pub(crate) trait PartIter<M>: ExactSizeIterator<Item = M> {
    /// Moves the next `max` messages (all, if it holds fewer) to the back of `out`, in order.
    fn move_into(&mut self, out: &mut VecDeque<M>, max: usize);
}

impl<M, I: ExactSizeIterator<Item = M>> PartIter<M> for I {
    fn move_into(&mut self, out: &mut VecDeque<M>, max: usize) {
        // `Take` of an exact-size iterator reports its length, which `extend` reserves from.
        out.extend(self.by_ref().take(max));
    }
}

/// How many message bytes one refill of `Parts::front` moves out of a part: a few pages that
/// stay in the cache from the copy to the pops, enough that the call is paid once per
/// hundreds of small messages.
const REFILL_BYTES: usize = 4 * 1024;

/// Messages of type `M` in one refill (at least one).
pub(super) const fn refill<M>() -> usize {
    let size = std::mem::size_of::<M>();
    if size == 0 || size >= REFILL_BYTES {
        1
    } else {
        REFILL_BYTES / size
    }
}

/// What a queued part is: a run's part, or a full buffer of the queue's own (`Queue::make_room`).
enum Piece<M> {
    Run(Part<M>),
    Buffer(VecDeque<M>),
}

impl<M> Piece<M> {
    fn len(&self) -> usize {
        match self {
            Piece::Run(p) => p.len(),
            Piece::Buffer(b) => b.len(),
        }
    }
}

/// The parts queued in an unbounded mailbox, in order with the messages of `Queue::msgs`.
///
/// The queue's order is: `front`; the first part's `before` messages of `msgs`, that part's
/// messages, the next part's `before` messages of `msgs`, its messages, and so on; then the
/// rest of `msgs`. So a message pushed at the back goes after every part with no bookkeeping, a
/// part pushed at the back counts the messages of `msgs` not yet ahead of a part, and one
/// pushed at the front (unstash) goes into `front` if it holds any, or adds one to the first
/// part's count.
///
/// Why: a backlog of a stream from `main` used to be copied into `msgs`, whose buffer doubled
/// into fresh memory as it grew (the first touch of fresh memory is dear, on this project's
/// VMs several milliseconds per 2 MiB), holding the backlog twice; the shard fell further
/// behind as it paid for it. For the same reason a backlog of single messages beyond
/// [`CHUNK_BYTES`] is queued as full buffers (`Queue::make_room`).
pub(super) struct Parts<M> {
    /// Messages ahead of everything else: a full buffer that pops reached at the front of
    /// `list`, moved here so that each pop from it is a plain buffer pop
    /// (`Queue::pop_front_buffer`); the next messages of a part that pops reached (a refill,
    /// [`PartIter`]); and messages unstashed while it holds any.
    front: VecDeque<M>,
    /// Each part (never empty) after the messages of `msgs` that precede it, counted from the
    /// part before it (or `front`).
    list: VecDeque<(usize, Piece<M>)>,
    /// The messages of `msgs` ahead of the last part: the counts in `list`, summed.
    covered: usize,
    /// Messages left in `front` and the parts.
    pub(super) items: usize,
}

impl<M> Parts<M> {
    /// Messages in `front` (for tests).
    #[cfg(test)]
    pub(super) fn front_len(&self) -> usize {
        self.front.len()
    }

    fn new(list: VecDeque<(usize, Piece<M>)>) -> Self {
        Parts { front: VecDeque::new(), list, covered: 0, items: 0 }
    }

    /// After `front` gave its last message: the next part goes there if it is a buffer that
    /// nothing precedes, and the emptied one into `spares` if it was a full buffer (one that
    /// held refills keeps its room for the next). Returns whether anything is left (`front` or
    /// a part).
    fn front_emptied(&mut self, spares: &mut Vec<VecDeque<M>>) -> bool {
        if !self.front.is_empty() {
            return true;
        }
        if chunk_sized(&self.front) {
            spares.push(std::mem::take(&mut self.front));
        }
        if let Some((0, Piece::Buffer(_))) = self.list.front() {
            let Some((_, Piece::Buffer(next))) = self.list.pop_front() else { unreachable!("just matched") };
            self.front = next;
        }
        !self.front.is_empty() || !self.list.is_empty()
    }
}

/// Queued user messages. Most messages have no sender (a plain `tell`); the few that do
/// (`Ctx::tell`, `forward`, probes) are recorded on the side by sequence number, so the common
/// path stores nothing but the message.
pub(super) struct Queue<M> {
    pub(super) msgs: VecDeque<M>,
    /// Exists while a queued message has a sender or a part is queued (unbounded mailboxes only).
    pub(super) side: Option<Box<Side<M>>>,
    /// `None` for an unbounded mailbox.
    pub(super) policy: Option<Box<Policy<M>>>,
}

/// The most message bytes an unbounded queue's buffer grows to (see `Queue::make_room`).
pub(super) const CHUNK_BYTES: usize = 64 * 1024;

/// Whether `buffer` has room for [`CHUNK_BYTES`] of messages: a buffer the queue stops growing
/// (`Queue::make_room`), worth keeping for the next backlog once emptied (`Side::spares`).
fn chunk_sized<M>(buffer: &VecDeque<M>) -> bool {
    buffer.capacity().saturating_mul(std::mem::size_of::<M>()) >= CHUNK_BYTES
}

impl<M: 'static> Queue<M> {
    /// The queued parts, if any.
    #[inline(always)]
    pub(super) fn parts(&self) -> Option<&Parts<M>> {
        self.side.as_deref().and_then(|s| s.parts.as_ref())
    }

    /// Queued messages, in `msgs` and in parts.
    pub(super) fn len(&self) -> usize {
        self.msgs.len() + self.parts().map_or(0, |p| p.items)
    }

    /// Queues `part` at the back; it holds at least one message.
    pub(super) fn push_part(&mut self, part: Part<M>) {
        self.push_piece(Piece::Run(part));
    }

    /// Queues `part` at the back; it holds at least one message.
    fn push_piece(&mut self, part: Piece<M>) {
        let n = part.len();
        debug_assert!(n > 0, "an empty part would stay at the front for ever");
        let side = self.side.get_or_insert_with(Side::new);
        let spare_list = &mut side.spare_list;
        let parts = side.parts.get_or_insert_with(|| Parts::new(std::mem::take(spare_list)));
        let before = self.msgs.len() - parts.covered;
        parts.covered += before;
        parts.items += n;
        parts.list.push_back((before, part));
    }

    /// Takes the front message from `front` while parts are queued, if it holds any (the common
    /// case while a backlog of single messages is worked off); `None` otherwise.
    #[inline(always)]
    pub(super) fn pop_front_buffer(&mut self) -> Option<M> {
        let parts = self.side.as_deref_mut()?.parts.as_mut()?;
        let m = parts.front.pop_front()?;
        parts.items -= 1;
        if parts.front.is_empty() {
            self.front_emptied();
        }
        Some(m)
    }

    /// `front` gave its last message: the next full buffer moves there, or the parts' bookkeeping
    /// goes if nothing is left in them.
    #[cold]
    #[inline(never)]
    fn front_emptied(&mut self) {
        let Some(side) = self.side.as_deref_mut() else { return };
        if side.parts.as_mut().is_some_and(|p| !p.front_emptied(&mut side.spares)) {
            side.parts_done();
            if side.is_empty() {
                self.side = None;
            }
        }
    }

    /// Takes the front message while parts are queued and `front` is empty. A part that gives
    /// its last message is handed back to be dropped by the caller once it no longer uses the
    /// queue: the drop may release the sender's run, and with it messages the sender appended
    /// after the shard's last take, whose `Drop` is user code that may send to this very actor.
    #[inline(never)]
    pub(super) fn pop_with_parts(&mut self) -> (Option<M>, Option<Part<M>>) {
        let Some(side) = self.side.as_deref_mut() else { return (self.msgs.pop_front(), None) };
        let Some(parts) = side.parts.as_mut() else { return (self.msgs.pop_front(), None) };
        let Some((before, part)) = parts.list.front_mut() else {
            unreachable!("`parts` is dropped with its last part")
        };
        if *before > 0 {
            *before -= 1;
            parts.covered -= 1;
            return (self.msgs.pop_front(), None);
        }
        let p = match part {
            Piece::Buffer(_) => {
                // The buffer's first pop moves it into `front`, where later pops take from it
                // directly.
                parts.front_emptied(&mut side.spares);
                return (self.pop_front_buffer(), None);
            }
            Piece::Run(p) => p,
        };
        // The part's next messages go into `front` (empty: pops take from it first), where
        // later pops take them directly. `items` counts them there as in the part.
        debug_assert!(parts.front.is_empty() && p.len() > 0, "a queued part is never empty");
        p.move_into(&mut parts.front, refill::<M>());
        let done = if p.len() == 0 {
            // Spent: off the list (a buffer that is next goes into `front` once the refill is
            // popped), and back to the caller to be dropped.
            match parts.list.pop_front() {
                Some((_, Piece::Run(p))) => Some(p),
                _ => None,
            }
        } else {
            None
        };
        (self.pop_front_buffer(), done)
    }

    /// Queues `m` at the back (every push of the user queue goes through here,
    /// [`Queue::extend`] or [`Queue::push_front`], so the first buffer is sized for one whatever
    /// the mailbox's kind).
    #[inline(always)]
    pub(super) fn push_back(&mut self, m: M) {
        if self.msgs.len() == self.msgs.capacity() {
            self.make_room(1);
        }
        self.msgs.push_back(m);
    }

    /// Queues `msgs` at the back, in order.
    pub(super) fn extend(&mut self, msgs: impl ExactSizeIterator<Item = M>) {
        let n = msgs.len();
        if self.msgs.capacity() - self.msgs.len() < n {
            self.make_room(n);
        }
        self.msgs.extend(msgs);
    }

    /// Room for `n` more messages in a queue that has less. An actor's first message gets room
    /// for one (most actors of a large population hold one message at a time: a request, a
    /// tick), where a `VecDeque`'s first growth makes room for four; later growth doubles as
    /// usual, up to [`CHUNK_BYTES`] of messages. An unbounded queue whose buffer holds that
    /// much and comes after every queued part is not grown further: the buffer, full, is queued
    /// whole as a part and a new one of the same size takes the messages that follow.
    ///
    /// Why: a backlog in one buffer that doubles is copied at every doubling into memory never
    /// touched before, and at its largest is one allocation that the allocator hands back to
    /// the kernel once it is freed; the first touch of fresh memory is dear (several
    /// milliseconds per 2 MiB on this project's VMs), so an actor that fell behind by a million
    /// messages made its shard slower still, by an amount that changed from process to
    /// process, and stalled it for the copy. Buffers of a bounded size are never copied and
    /// come from the allocator's ordinary pages, which it reuses; emptied, they are kept for
    /// the mailbox's next backlog (`Side::spares`), so a recurring backlog allocates nothing,
    /// as the grown buffer it replaces did not.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, n: usize) {
        let cap = self.msgs.capacity();
        let covered = self.parts().map_or(0, |p| p.covered);
        let full = chunk_sized(&self.msgs);
        if full && self.policy.is_none() && covered == 0 && !self.msgs.is_empty() {
            let size = cap.max(n);
            let spare = self.side.as_deref_mut().and_then(|s| s.spares.pop());
            let next =
                spare.filter(|b| b.capacity() >= size).unwrap_or_else(|| VecDeque::with_capacity(size));
            let sealed = std::mem::replace(&mut self.msgs, next);
            self.push_piece(Piece::Buffer(sealed));
        } else {
            self.grow(n);
        }
    }

    /// Makes room for `n` more messages in the buffer itself: room for exactly one in an empty
    /// one (see `make_room`), doubling otherwise.
    fn grow(&mut self, n: usize) {
        if self.msgs.capacity() == 0 && n == 1 {
            self.msgs.reserve_exact(1);
        } else {
            self.msgs.reserve(n);
        }
    }

    #[cold]
    pub(super) fn note_sender_back(&mut self, sender: u64, n: usize) {
        let back = self.len() as u64;
        let side = self.side.get_or_insert_with(Side::new);
        let first = side.popped.wrapping_add(back);
        match side.runs.back_mut() {
            Some((_, end, s)) if *end == first && *s == sender => *end += n as u64,
            _ => side.runs.push_back((first, first.wrapping_add(n as u64), sender)),
        }
    }

    /// The sender of the message just taken from the front.
    pub(super) fn take_sender(&mut self) -> u64 {
        self.take_meta().0
    }

    /// The sender and the trace context of the message just taken from the front.
    #[cold]
    pub(super) fn take_meta(&mut self) -> (u64, MsgTrace) {
        #[allow(unused_mut, clippy::let_unit_value)]
        let mut trace = MsgTrace::default();
        let Some(side) = self.side.as_deref_mut() else { return (0, trace) };
        let seq = side.popped;
        side.popped = seq.wrapping_add(1);
        let mut sender = 0;
        if let Some((first, end, s)) = side.runs.front_mut() {
            if *first == seq {
                sender = *s;
                *first = first.wrapping_add(1);
                if *first == *end {
                    side.runs.pop_front();
                }
            }
        }
        #[cfg(feature = "tracing-spans")]
        if side.traces.front().is_some_and(|(at, _)| *at == seq) {
            trace = side.traces.pop_front().map(|(_, t)| t);
        }
        if side.is_empty() {
            self.side = None;
        }
        (sender, trace)
    }

    /// Puts a message back at the front (unstash).
    pub(super) fn push_front(&mut self, m: M, sender: u64) {
        if let Some(parts) = self.side.as_deref_mut().and_then(|s| s.parts.as_mut()) {
            if !parts.front.is_empty() {
                parts.front.push_front(m);
                parts.items += 1;
                self.pushed_front(sender);
                return;
            }
        }
        if self.msgs.len() == self.msgs.capacity() {
            // Not `make_room`: this message goes ahead of the buffer, which must stay in front.
            self.grow(1);
        }
        self.msgs.push_front(m);
        if let Some(parts) = self.side.as_deref_mut().and_then(|s| s.parts.as_mut()) {
            parts.covered += 1;
            if let Some((before, _)) = parts.list.front_mut() {
                *before += 1;
            }
        }
        self.pushed_front(sender);
    }

    /// The sequence numbers after a push at the front: one less for the front, and `sender`
    /// recorded for it.
    fn pushed_front(&mut self, sender: u64) {
        if let Some(side) = self.side.as_deref_mut() {
            side.popped = side.popped.wrapping_sub(1);
        }
        if sender != 0 {
            // A new side list numbers the new front message 0.
            let side = self.side.get_or_insert_with(Side::new);
            let seq = side.popped;
            match side.runs.front_mut() {
                Some((first, _, s)) if *first == seq.wrapping_add(1) && *s == sender => *first = seq,
                _ => side.runs.push_front((seq, seq.wrapping_add(1), sender)),
            }
        }
    }
}
