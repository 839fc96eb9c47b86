//! The typed mailbox: user messages in a growable ring buffer (`VecDeque`, unallocated until
//! the first message), their senders on the side, and the policy of a bounded or priority
//! mailbox.
//!
//! An unbounded mailbox (the default) has no policy: a push is one `push_back`. The header's
//! gate byte is zero exactly while the actor accepts messages and has no policy, so the sender's
//! fast path tests one byte (the same test it makes for "still running") and everything else
//! takes [`Mailbox::offer`], out of line.
//!
//! A priority mailbox keeps its best message at the front of the ordinary queue (the only one
//! there) and the rest in a [`PriorityHeap`], so the turn's loop pops the same way for every
//! kind; the header's `PRIORITY` flag sends each popped message through the slow path, which
//! takes its sender and moves the next best to the front.
//!
//! A custom mailbox keeps its messages in the user's [`MailboxQueue`], counted here; the turn's
//! loop pulls one into the ordinary queue when that runs dry, just before it is handled (so a
//! message that arrives meanwhile competes with everything still in the user's queue), and
//! unstashed messages go to the ordinary queue, ahead of the user's. The header's `CUSTOM` gate
//! bit makes `is_empty` look at the count.
//!
//! An unbounded mailbox also queues runs of messages where they are ([`Parts`]): what a plain
//! thread streamed to the actor faster than the shard took it stays in the thread's run buffer
//! (`crate::lane::run`) until the actor's turns take it, a few kilobytes at a time
//! ([`queue::PartIter`]), instead of being copied whole into the mailbox's own buffer. Its own
//! buffer grows up to `queue::CHUNK_BYTES` of messages; a deeper backlog is queued the same
//! way, as full buffers of that size (`Queue::make_room`).
//!
//! Every call into user code (a comparator, a custom queue) holds a [`Busy`] guard and catches
//! panics: the message it held becomes a dead letter and the actor fails (`Phase::Mailbox`),
//! the shard goes on.

use super::priority::{Entry, PriorityHeap};
use super::{Header, SystemMsg, PRIORITY, SENDERS, SHAPED};
use crate::id::ActorId;
use crate::mailbox::{MailboxKind, MailboxQueue, Overflow, Push, Queued};
use crate::supervision::{Cause, Phase};
use crate::trace::MsgTrace;
#[cfg(feature = "tracing-spans")]
use crate::trace::TraceContext;
use std::any::Any;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod queue;
use queue::{Part, Queue, Side};

/// What a bounded or priority mailbox does differently.
enum Shape<M> {
    Bounded {
        capacity: usize,
        overflow: Overflow,
    },
    /// The message at the front of the queue (if any) goes before every one in `heap`;
    /// `front` is its arrival number and sender.
    Priority {
        heap: PriorityHeap<M>,
        front: (u64, u64),
    },
    /// The user's queue, and how many messages it holds by the runtime's count.
    Custom {
        queue: Box<dyn MailboxQueue<M>>,
        waiting: usize,
    },
}

/// A mailbox's policy and the messages it has dropped.
struct Policy<M> {
    shape: Shape<M>,
    dropped: u64,
}

/// Marks a mailbox busy while an operation on its queue may run user code (a priority
/// comparator). That code can send to the same actor from the same thread; such a message
/// finds the `BUSY` gate bit, is not offered to the queue under operation (that would be a
/// second `&mut` to it, and the heap could reallocate under the comparator's references), and
/// waits in the shard's deferred queue instead. When the operation ends, the deferred messages
/// are delivered, in order, before the caller goes on; if it ends by a panic they are delivered
/// on the shard's next pass.
struct Busy<'a>(&'a Header);

impl<'a> Busy<'a> {
    fn enter(h: &'a Header) -> Self {
        debug_assert!(!h.busy(), "a busy mailbox was entered again");
        h.set_busy(true);
        Busy(h)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set_busy(false);
        if !std::thread::panicking() {
            crate::shard::with_current(|s| {
                if let Some(s) = s {
                    s.deliver_deferred();
                }
            });
        }
    }
}

/// What [`Mailbox::offer`] did with a message.
pub(crate) enum Offer<M> {
    /// Queued.
    Queued,
    /// Queued, and the oldest message was dropped to make room (`DropOldest`): a dead letter.
    Evicted(M),
    /// Not queued: the mailbox is full and drops the newest (`DropNewest`): a dead letter.
    Dropped(M),
    /// Not queued: the mailbox is full and rejects (`Reject`): back to a same-shard `try_tell`,
    /// a dead letter otherwise.
    Refused(M),
    /// The user code of the mailbox (a comparator, a custom queue) panicked with the message in
    /// its hands: the message is lost (a dead letter) and the actor fails.
    Failed(Box<dyn Any + Send>),
}

/// A message a mailbox did not take, given back.
pub(crate) enum Refused<M> {
    /// The actor no longer accepts messages.
    Stopped(M),
    /// The bounded mailbox is full and rejects.
    Full(M),
}

/// The typed mailbox. `#[repr(C)]` with the header first, so a pointer to the cell is also a
/// pointer to its mailbox and to its header.
#[repr(C)]
pub(crate) struct Mailbox<M> {
    pub(crate) hdr: Header,
    user: UnsafeCell<Queue<M>>,
}

impl<M: 'static> Mailbox<M> {
    /// A mailbox of the given kind. Builds a custom kind's queue: user code, which the caller
    /// runs under `catch_unwind`.
    pub(crate) fn new(id: ActorId, kind: Option<&MailboxKind>) -> Self {
        let shape = match kind {
            None | Some(MailboxKind::Unbounded) => None,
            Some(MailboxKind::Bounded { capacity, overflow }) => {
                Some(Shape::Bounded { capacity: (*capacity).max(1), overflow: *overflow })
            }
            // The spawn checked the message type.
            Some(MailboxKind::Priority(p)) => {
                p.0.typed::<M>()
                    .map(|order| Shape::Priority { heap: PriorityHeap::new(order), front: (0, 0) })
            }
            Some(MailboxKind::Custom(c)) => {
                c.typed::<M>().map(|make| Shape::Custom { queue: make(), waiting: 0 })
            }
        };
        let hdr = Header::new(id);
        hdr.set_shaped(shape.is_some());
        hdr.set_flag(PRIORITY, matches!(shape, Some(Shape::Priority { .. })));
        hdr.set_custom(matches!(shape, Some(Shape::Custom { .. })));
        let policy = shape.map(|shape| Box::new(Policy { shape, dropped: 0 }));
        Self { hdr, user: UnsafeCell::new(Queue { msgs: VecDeque::new(), side: None, policy }) }
    }
}

impl<M: 'static> Mailbox<M> {
    /// The queue, mutably. Unique while it lives: owner-thread only; every caller uses it
    /// within one call; nothing holds a reference into the queue while handlers run (messages
    /// are moved out by value). The only user code that runs while a caller holds it is a
    /// priority comparator or a custom queue, and the operations that call one (`offer`,
    /// `priority_popped`, `push_front_all`, `pull`) hold a `Busy` guard: the shard defers every
    /// message that arrives at a busy mailbox instead of calling into it, and nothing else
    /// reaches the queue from that code (it gets no context).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn q(&self) -> &mut Queue<M> {
        // SAFETY: unique for as long as it lives, as the comment above argues (owner thread,
        // one call, comparators and custom queues fenced off by `Busy`).
        unsafe { &mut *self.user.get() }
    }

    /// Whether operations on the queue run user code (a comparator, a custom queue).
    fn runs_user_code(&self) -> bool {
        self.hdr.flag(PRIORITY) || self.hdr.custom()
    }

    /// Whether an operation on the queue is under way: a message must not be offered now.
    #[inline(always)]
    pub(crate) fn busy(&self) -> bool {
        self.hdr.busy()
    }

    /// Whether the actor still accepts user messages (it has not begun stopping).
    #[inline(always)]
    pub(crate) fn accepts(&self) -> bool {
        self.hdr.accepts()
    }

    /// Whether a message may take the fast path: the actor accepts messages and the mailbox is
    /// unbounded. One byte tested.
    #[inline(always)]
    pub(crate) fn open(&self) -> bool {
        self.hdr.open()
    }

    /// Queues a run of user messages without senders, in order; the caller checked `open`.
    pub(crate) fn extend(&self, msgs: impl ExactSizeIterator<Item = M>) {
        self.q().extend(msgs);
    }

    /// Queues a part of a plain thread's run (at least one message, none with a sender) where
    /// it is; the caller checked `open`.
    pub(crate) fn push_part(&self, part: Part<M>) {
        self.q().push_part(part);
    }

    /// Queues a user message; the caller checked `open`.
    #[inline(always)]
    pub(crate) fn push_unchecked(&self, m: M, sender: u64) {
        let q = self.q();
        if sender != 0 {
            q.note_sender_back(sender, 1);
            self.hdr.set_flag(SENDERS, true);
        }
        q.push_back(m);
    }

    /// Records the trace context of the message just queued at the back (by `push_unchecked`).
    #[cfg(feature = "tracing-spans")]
    pub(crate) fn attach_trace_to_back(&self, trace: TraceContext) {
        let q = self.q();
        let back = (q.len() as u64).wrapping_sub(1);
        let side = q.side.get_or_insert_with(Side::new);
        side.traces.push_back((side.popped.wrapping_add(back), trace));
        self.hdr.set_flag(SENDERS, true);
    }

    /// Whether this is a bounded mailbox of a running actor with room for one more message
    /// (which may then be pushed without [`Mailbox::offer`]).
    #[inline(always)]
    pub(crate) fn bounded_with_room(&self) -> bool {
        // Only a running actor's shaped mailbox that no operation holds (then `q` is unique).
        if self.hdr.gate.get() != SHAPED {
            return false;
        }
        let q = self.q();
        match q.policy.as_deref() {
            Some(Policy { shape: Shape::Bounded { capacity, .. }, .. }) => q.msgs.len() < *capacity,
            _ => false,
        }
    }

    /// Queues a user message under the mailbox's policy; the caller checked `accepts` and that
    /// the mailbox is not busy.
    #[inline(never)]
    pub(crate) fn offer(&self, m: M, sender: u64) -> Offer<M> {
        if !self.runs_user_code() {
            return self.offer_inner(m, sender);
        }
        catch_unwind(AssertUnwindSafe(|| {
            let _busy = Busy::enter(&self.hdr);
            self.offer_inner(m, sender)
        }))
        .unwrap_or_else(Offer::Failed)
    }

    fn offer_inner(&self, m: M, sender: u64) -> Offer<M> {
        let q = self.q();
        let Some(policy) = q.policy.as_deref_mut() else {
            self.push_unchecked(m, sender);
            return Offer::Queued;
        };
        match &mut policy.shape {
            Shape::Bounded { capacity, overflow } => {
                if q.msgs.len() < *capacity {
                    self.push_unchecked(m, sender);
                    return Offer::Queued;
                }
                match overflow {
                    Overflow::DropNewest => Offer::Dropped(m),
                    Overflow::Reject => Offer::Refused(m),
                    Overflow::DropOldest => {
                        let Some(old) = q.msgs.pop_front() else { return Offer::Refused(m) };
                        q.take_sender();
                        self.push_unchecked(m, sender);
                        Offer::Evicted(old)
                    }
                }
            }
            Shape::Priority { heap, front } => {
                let e = heap.entry(m, sender);
                match q.msgs.front() {
                    None => {
                        *front = (e.seq, e.sender);
                        q.push_back(e.msg);
                    }
                    // Only a strictly higher priority overtakes the front (it arrived earlier).
                    Some(f) if heap.outranks(&e.msg, f) => {
                        let old = q.msgs.pop_front().expect("front");
                        heap.push(Entry { msg: old, seq: front.0, sender: front.1 });
                        *front = (e.seq, e.sender);
                        q.push_back(e.msg);
                    }
                    Some(_) => heap.push(e),
                }
                Offer::Queued
            }
            Shape::Custom { queue, waiting } => match queue.push(Queued { msg: m, sender }) {
                Push::Queued => {
                    *waiting += 1;
                    Offer::Queued
                }
                Push::Dropped(old) => Offer::Evicted(old.msg),
                Push::Refused(back) => Offer::Refused(back.msg),
            },
        }
    }

    /// A custom mailbox whose ordinary queue ran dry: moves the user queue's next message into
    /// it (with its sender, for `take_sender`). False when there is none: not a custom mailbox,
    /// the user queue has nothing, or it panicked (then the actor's system lane gets the
    /// failure).
    #[cold]
    #[inline(never)]
    pub(super) fn pull(&self) -> bool {
        if !self.hdr.custom() {
            return false;
        }
        let popped = catch_unwind(AssertUnwindSafe(|| {
            let _busy = Busy::enter(&self.hdr);
            let Some(Policy { shape: Shape::Custom { queue, waiting }, .. }) = self.q().policy.as_deref_mut()
            else {
                return None;
            };
            if *waiting == 0 {
                return None;
            }
            let item = queue.pop();
            match item {
                Some(_) => *waiting -= 1,
                None => {
                    tracing::warn!(actor = %self.hdr.id, waiting = *waiting, "a custom mailbox queue lost messages it had queued");
                    *waiting = 0;
                }
            }
            item
        }));
        match popped {
            Ok(Some(Queued { msg, sender })) => {
                self.push_unchecked(msg, sender);
                true
            }
            Ok(None) => false,
            Err(p) => {
                self.fail(p);
                false
            }
        }
    }

    /// The mailbox's user code panicked outside an offer: the actor fails.
    #[cold]
    fn fail(&self, p: Box<dyn Any + Send>) {
        self.hdr.push_system(SystemMsg::ClosureFailed(Phase::Mailbox, Cause::Panic(p)));
    }

    /// Drops what a custom mailbox's queue still holds (the actor is gone); returns how many
    /// messages that was by the runtime's count.
    pub(super) fn discard_queue(&self) -> usize {
        let _busy = self.hdr.custom().then(|| Busy::enter(&self.hdr));
        let Some(Policy { shape: Shape::Custom { queue, waiting }, .. }) = self.q().policy.as_deref_mut()
        else {
            return 0;
        };
        let n = std::mem::take(waiting);
        // Dropping user messages runs their `Drop`: contained like the queue's own code.
        let old = std::mem::replace(queue, Box::new(Empty));
        if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(old))) {
            tracing::error!(actor = %self.hdr.id, panic = super::panic_text(&p), "dropping a custom mailbox queue panicked");
        }
        n
    }

    /// A priority mailbox, after its front message was popped: that message's sender, and the
    /// next best message moved to the front.
    pub(super) fn priority_popped(&self) -> u64 {
        let popped = catch_unwind(AssertUnwindSafe(|| {
            let _busy = Busy::enter(&self.hdr);
            let q = self.q();
            let Some(Policy { shape: Shape::Priority { heap, front }, .. }) = q.policy.as_deref_mut() else {
                return 0;
            };
            let sender = front.1;
            if let Some(e) = heap.pop() {
                *front = (e.seq, e.sender);
                q.push_back(e.msg);
            }
            sender
        }));
        popped.unwrap_or_else(|p| {
            self.fail(p);
            0
        })
    }

    /// Counts a message this mailbox's policy turned into a dead letter (for the actor's
    /// metrics).
    pub(crate) fn count_dropped(&self) {
        if let Some(p) = self.q().policy.as_deref_mut() {
            p.dropped += 1;
        }
    }

    /// Messages the policy dropped so far.
    pub(super) fn dropped(&self) -> u64 {
        self.q().policy.as_deref().map_or(0, |p| p.dropped)
    }

    /// Takes the front message; while the `SENDERS` flag is set, the caller then takes its
    /// sender with `take_sender`.
    #[inline(always)]
    pub(super) fn pop_msg(&self) -> Option<M> {
        let q = self.q();
        if q.parts().is_none() {
            return q.msgs.pop_front();
        }
        if let Some(m) = q.pop_front_buffer() {
            return Some(m);
        }
        let (m, done) = q.pop_with_parts();
        // After the last use of `q` (see `Queue::pop_with_parts`).
        drop(done);
        m
    }
    /// The sender of the message just popped (0: none).
    pub(super) fn take_sender(&self) -> u64 {
        self.take_meta().0
    }
    /// The sender and the trace context of the message just popped.
    pub(super) fn take_meta(&self) -> (u64, MsgTrace) {
        let q = self.q();
        if self.hdr.flag(PRIORITY) {
            (self.priority_popped(), MsgTrace::default())
        } else if q.side.is_some() {
            q.take_meta()
        } else {
            (0, MsgTrace::default())
        }
    }
    /// Takes the next message with its sender (from the user's queue too).
    pub(super) fn pop(&self) -> Option<(M, u64)> {
        let m = self.pop_msg().or_else(|| self.pull().then(|| self.pop_msg()).flatten())?;
        Some((m, self.take_sender()))
    }
    /// Between turns: the `SENDERS` flag follows whether a queued message has a sender.
    pub(super) fn settle_senders_flag(&self) {
        if !self.q().side.as_deref().is_some_and(Side::has_senders) {
            self.hdr.set_flag(SENDERS, false);
        }
    }
    /// Puts messages back at the front, keeping their order (unstash). They were accepted once,
    /// so they go back even past a bound. In a priority mailbox they go ahead of the queued
    /// messages of their own priority, in their order.
    pub(super) fn push_front_all(&self, msgs: impl DoubleEndedIterator<Item = (M, u64)>) {
        let _busy = self.hdr.flag(PRIORITY).then(|| Busy::enter(&self.hdr));
        let q = self.q();
        if let Some(Policy { shape: Shape::Priority { heap, front }, .. }) = q.policy.as_deref_mut() {
            if let Some(old) = q.msgs.pop_front() {
                heap.push(Entry { msg: old, seq: front.0, sender: front.1 });
            }
            let mut seq = heap.lowest_seq();
            for (m, sender) in msgs.rev() {
                heap.push(Entry { msg: m, seq, sender });
                seq = seq.wrapping_sub(1);
            }
            if let Some(e) = heap.pop() {
                *front = (e.seq, e.sender);
                q.push_back(e.msg);
            }
            return;
        }
        for (m, sender) in msgs.rev() {
            if sender != 0 {
                self.hdr.set_flag(SENDERS, true);
            }
            q.push_front(m, sender);
        }
    }
    /// Queued user messages.
    pub(crate) fn len(&self) -> usize {
        let q = self.q();
        match q.policy.as_deref() {
            Some(Policy { shape: Shape::Priority { heap, .. }, .. }) => q.msgs.len() + heap.len(),
            Some(Policy { shape: Shape::Custom { waiting, .. }, .. }) => q.msgs.len() + waiting,
            _ => q.len(),
        }
    }
    /// Whether no user message is queued (a priority mailbox's best is always at the front; a
    /// custom mailbox's queue is counted).
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        let q = self.q();
        q.msgs.is_empty() && q.parts().is_none() && (!self.hdr.custom() || self.custom_empty())
    }
    /// Whether a custom mailbox's queue holds nothing, by the count.
    #[cold]
    #[inline(never)]
    fn custom_empty(&self) -> bool {
        !matches!(self.q().policy.as_deref(), Some(Policy { shape: Shape::Custom { waiting, .. }, .. }) if *waiting > 0)
    }
}

/// What a custom mailbox holds once its actor is gone.
struct Empty;
impl<M> MailboxQueue<M> for Empty {
    fn push(&mut self, item: Queued<M>) -> Push<M> {
        Push::Refused(item)
    }
    fn pop(&mut self) -> Option<Queued<M>> {
        None
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests;
