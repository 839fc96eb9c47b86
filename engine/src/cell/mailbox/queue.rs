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
/// came with one, by sequence number, in queue order; and the queued parts.
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
}

impl<M> Side<M> {
    pub(super) fn new() -> Box<Self> {
        Box::new(Side {
            popped: 0,
            runs: VecDeque::new(),
            #[cfg(feature = "tracing-spans")]
            traces: VecDeque::new(),
            parts: None,
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
        !self.has_senders() && self.parts.is_none()
    }
}

/// A run of queued messages kept where its sender wrote them: the part of a plain thread's run
/// that one take handed over (`crate::lane::RunPart`), which moves each message out as it is
/// popped and drops those it still holds with it.
pub(crate) type Part<M> = Box<dyn ExactSizeIterator<Item = M>>;

/// The parts queued in an unbounded mailbox, in order with the messages of `Queue::msgs`.
///
/// The queue's order is: the first part's `before` messages of `msgs`, that part's messages,
/// the next part's `before` messages of `msgs`, its messages, and so on; then the rest of
/// `msgs`. So a message pushed at the back goes after every part with no bookkeeping, a part
/// pushed at the back counts the messages of `msgs` not yet ahead of a part, and one pushed at
/// the front (unstash) adds one to the first part's count.
///
/// Why: a backlog of a stream from `main` used to be copied into `msgs`, whose buffer doubled
/// into fresh memory as it grew (the first touch of fresh memory is dear, on this project's
/// VMs several milliseconds per 2 MiB), holding the backlog twice; the shard fell further
/// behind as it paid for it.
pub(super) struct Parts<M> {
    /// Each part (never empty) after the messages of `msgs` that precede it, counted from the
    /// part before it (or the front).
    list: VecDeque<(usize, Part<M>)>,
    /// The messages of `msgs` ahead of the last part: the counts in `list`, summed.
    covered: usize,
    /// Messages left in the parts.
    pub(super) items: usize,
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

impl<M> Queue<M> {
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
        let n = part.len();
        debug_assert!(n > 0, "an empty part would stay at the front for ever");
        let side = self.side.get_or_insert_with(Side::new);
        let parts = side.parts.get_or_insert_with(|| Parts { list: VecDeque::new(), covered: 0, items: 0 });
        let before = self.msgs.len() - parts.covered;
        parts.covered += before;
        parts.items += n;
        parts.list.push_back((before, part));
    }

    /// Takes the front message while parts are queued. A part that gives its last message is
    /// handed back to be dropped by the caller once it no longer uses the queue: the drop may
    /// release the sender's run, and with it messages the sender appended after the shard's
    /// last take, whose `Drop` is user code that may send to this very actor.
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
        let m = part.next();
        debug_assert!(m.is_some(), "a queued part is never empty");
        parts.items -= 1;
        if part.len() > 0 {
            return (m, None);
        }
        let done = parts.list.pop_front().map(|(_, p)| p);
        if parts.list.is_empty() {
            side.parts = None;
            if side.is_empty() {
                self.side = None;
            }
        }
        (m, done)
    }

    /// Room for one more message in a full queue: an actor's first message gets room for one
    /// (most actors of a large population hold one message at a time: a request, a tick), where
    /// a `VecDeque`'s first growth makes room for four; later growth doubles as usual.
    /// Queues `m` at the back (every push of the user queue goes through here or
    /// [`Queue::push_front`], so the first buffer is sized for one whatever the mailbox's kind).
    #[inline(always)]
    pub(super) fn push_back(&mut self, m: M) {
        if self.msgs.len() == self.msgs.capacity() {
            self.make_room();
        }
        self.msgs.push_back(m);
    }

    #[cold]
    #[inline(never)]
    fn make_room(&mut self) {
        if self.msgs.capacity() == 0 {
            self.msgs.reserve_exact(1);
        } else {
            self.msgs.reserve(1);
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
        if self.msgs.len() == self.msgs.capacity() {
            self.make_room();
        }
        self.msgs.push_front(m);
        if let Some(side) = self.side.as_deref_mut() {
            side.popped = side.popped.wrapping_sub(1);
            if let Some(parts) = side.parts.as_mut() {
                parts.covered += 1;
                if let Some((before, _)) = parts.list.front_mut() {
                    *before += 1;
                }
            }
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
