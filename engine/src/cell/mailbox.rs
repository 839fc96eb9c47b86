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

use super::priority::{Entry, PriorityHeap};
use super::{Header, PRIORITY, SENDERS, SHAPED};
use crate::id::ActorId;
use crate::mailbox::{MailboxKind, Overflow};
use std::cell::UnsafeCell;
use std::collections::VecDeque;

/// Senders of queued messages that have one: runs `(first, end, sender)` of queue sequence
/// numbers (`first..end`), in queue order, and the sequence number of the message at the front.
#[derive(Default)]
struct Side {
    popped: u64,
    runs: VecDeque<(u64, u64, u64)>,
}

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
}

/// A mailbox's policy and the messages it has dropped.
struct Policy<M> {
    shape: Shape<M>,
    dropped: u64,
}

/// Queued user messages. Most messages have no sender (a plain `tell`); the few that do
/// (`Ctx::tell`, `forward`, probes) are recorded on the side by sequence number, so the common
/// path stores nothing but the message.
struct Queue<M> {
    msgs: VecDeque<M>,
    /// Exists while a queued message has a sender.
    senders: Option<Box<Side>>,
    /// `None` for an unbounded mailbox.
    policy: Option<Box<Policy<M>>>,
}

impl<M> Queue<M> {
    #[cold]
    fn note_sender_back(&mut self, sender: u64, n: usize) {
        let back = self.msgs.len() as u64;
        let side = self.senders.get_or_insert_with(Default::default);
        let first = side.popped.wrapping_add(back);
        match side.runs.back_mut() {
            Some((_, end, s)) if *end == first && *s == sender => *end += n as u64,
            _ => side.runs.push_back((first, first.wrapping_add(n as u64), sender)),
        }
    }

    /// The sender of the message just taken from the front.
    #[cold]
    fn take_sender(&mut self) -> u64 {
        let Some(side) = self.senders.as_deref_mut() else { return 0 };
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
        if side.runs.is_empty() {
            self.senders = None;
        }
        sender
    }

    /// Puts a message back at the front (unstash).
    fn push_front(&mut self, m: M, sender: u64) {
        self.msgs.push_front(m);
        if let Some(side) = self.senders.as_deref_mut() {
            side.popped = side.popped.wrapping_sub(1);
        }
        if sender != 0 {
            // A new side list numbers the new front message 0.
            let side = self.senders.get_or_insert_with(Default::default);
            let seq = side.popped;
            match side.runs.front_mut() {
                Some((first, _, s)) if *first == seq.wrapping_add(1) && *s == sender => *first = seq,
                _ => side.runs.push_front((seq, seq.wrapping_add(1), sender)),
            }
        }
    }
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
    pub(super) fn new(id: ActorId, kind: Option<&MailboxKind>) -> Self {
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
        };
        let hdr = Header::new(id);
        hdr.set_shaped(shape.is_some());
        hdr.set_flag(PRIORITY, matches!(shape, Some(Shape::Priority { .. })));
        let policy = shape.map(|shape| Box::new(Policy { shape, dropped: 0 }));
        Self { hdr, user: UnsafeCell::new(Queue { msgs: VecDeque::new(), senders: None, policy }) }
    }
}

impl<M> Mailbox<M> {
    /// The queue, mutably. Unique while it lives: owner-thread only; every caller uses it
    /// within one call; nothing holds a reference into the queue while handlers run (messages
    /// are moved out by value). The only user code that runs while a caller holds it is a
    /// priority comparator, and the operations that call one (`offer`, `priority_popped`,
    /// `push_front_all`) hold a `Busy` guard: the shard defers every message that arrives at a
    /// busy mailbox instead of calling into it, and nothing else reaches the queue from a
    /// comparator (it gets no context).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn q(&self) -> &mut Queue<M> {
        // SAFETY: unique for as long as it lives, as the comment above argues (owner thread,
        // one call, comparators fenced off by `Busy`).
        unsafe { &mut *self.user.get() }
    }

    /// Whether the queue is ordered by a user comparator.
    fn priority(&self) -> bool {
        self.hdr.flag(PRIORITY)
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
    pub(crate) fn extend(&self, msgs: Vec<M>) {
        self.q().msgs.extend(msgs);
    }

    /// Queues a user message; the caller checked `open`.
    #[inline(always)]
    pub(crate) fn push_unchecked(&self, m: M, sender: u64) {
        let q = self.q();
        if sender != 0 {
            q.note_sender_back(sender, 1);
            self.hdr.set_flag(SENDERS, true);
        }
        q.msgs.push_back(m);
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
        let _busy = self.priority().then(|| Busy::enter(&self.hdr));
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
                        q.msgs.push_back(e.msg);
                    }
                    // Only a strictly higher priority overtakes the front (it arrived earlier).
                    Some(f) if heap.outranks(&e.msg, f) => {
                        let old = q.msgs.pop_front().expect("front");
                        heap.push(Entry { msg: old, seq: front.0, sender: front.1 });
                        *front = (e.seq, e.sender);
                        q.msgs.push_back(e.msg);
                    }
                    Some(_) => heap.push(e),
                }
                Offer::Queued
            }
        }
    }

    /// A priority mailbox, after its front message was popped: that message's sender, and the
    /// next best message moved to the front.
    pub(super) fn priority_popped(&self) -> u64 {
        let _busy = Busy::enter(&self.hdr);
        let q = self.q();
        let Some(Policy { shape: Shape::Priority { heap, front }, .. }) = q.policy.as_deref_mut() else {
            return 0;
        };
        let sender = front.1;
        if let Some(e) = heap.pop() {
            *front = (e.seq, e.sender);
            q.msgs.push_back(e.msg);
        }
        sender
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
        self.q().msgs.pop_front()
    }
    /// The sender of the message just popped (0: none).
    pub(super) fn take_sender(&self) -> u64 {
        let q = self.q();
        if self.hdr.flag(PRIORITY) {
            self.priority_popped()
        } else if q.senders.is_some() {
            q.take_sender()
        } else {
            0
        }
    }
    /// Takes the front message with its sender.
    pub(super) fn pop(&self) -> Option<(M, u64)> {
        let m = self.pop_msg()?;
        Some((m, self.take_sender()))
    }
    /// Between turns: the `SENDERS` flag follows whether a queued message has a sender.
    pub(super) fn settle_senders_flag(&self) {
        if self.q().senders.is_none() {
            self.hdr.set_flag(SENDERS, false);
        }
    }
    /// Puts messages back at the front, keeping their order (unstash). They were accepted once,
    /// so they go back even past a bound. In a priority mailbox they go ahead of the queued
    /// messages of their own priority, in their order.
    pub(super) fn push_front_all(&self, msgs: impl DoubleEndedIterator<Item = (M, u64)>) {
        let _busy = self.priority().then(|| Busy::enter(&self.hdr));
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
                q.msgs.push_back(e.msg);
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
            _ => q.msgs.len(),
        }
    }
    /// Whether no user message is queued (a priority mailbox's best is always at the front).
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.q().msgs.is_empty()
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests {
    use super::*;

    fn mailbox(kind: MailboxKind) -> Mailbox<(u8, u32)> {
        Mailbox::new(ActorId::new(0, 1, 1), Some(&kind))
    }

    fn drain(mb: &Mailbox<(u8, u32)>) -> Vec<((u8, u32), u64)> {
        std::iter::from_fn(|| mb.pop()).collect()
    }

    /// Random arrivals (three priorities, some with senders), pops, and stash-unstash rounds,
    /// against a model: highest priority first, then by arrival, where unstashed messages
    /// count as arriving before everything queued, in their order.
    #[test]
    fn priority_order_is_by_priority_then_arrival_and_keeps_senders() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _round in 0..200 {
            let mb = mailbox(MailboxKind::priority(|a: &(u8, u32), b: &(u8, u32)| a.0.cmp(&b.0)));
            assert!(!mb.open(), "a priority mailbox takes the gated path");
            // (message, sender, arrival rank)
            let mut model: Vec<((u8, u32), u64, i64)> = Vec::new();
            let take = |model: &mut Vec<((u8, u32), u64, i64)>| {
                let best =
                    (0..model.len()).min_by_key(|&i| (std::cmp::Reverse(model[i].0 .0), model[i].2))?;
                let (m, s, _) = model.remove(best);
                Some((m, s))
            };
            let mut stash = Vec::new();
            for serial in 0..60u32 {
                match next() % 8 {
                    0 | 1 => assert_eq!(mb.pop(), take(&mut model)),
                    2 => {
                        let popped = mb.pop();
                        assert_eq!(popped, take(&mut model));
                        stash.extend(popped);
                    }
                    3 if !stash.is_empty() => {
                        let first = model.iter().map(|e| e.2).min().unwrap_or(0) - stash.len() as i64;
                        for (i, (m, s)) in stash.iter().enumerate() {
                            model.push((*m, *s, first + i as i64));
                        }
                        mb.push_front_all(std::mem::take(&mut stash).into_iter());
                    }
                    _ => {}
                }
                let m = ((next() % 3) as u8, serial);
                let sender = [0, 0, 7, 8][(next() % 4) as usize];
                assert!(matches!(mb.offer(m, sender), Offer::Queued));
                model.push((m, sender, serial as i64 + 1_000));
                assert_eq!(mb.len(), model.len());
            }
            let mut out = Vec::new();
            while let Some(x) = take(&mut model) {
                out.push(x);
            }
            assert_eq!(drain(&mb), out);
        }
    }

    #[test]
    fn drop_oldest_drops_the_oldest_message_and_its_sender() {
        let mb = mailbox(MailboxKind::bounded(2, Overflow::DropOldest));
        assert!(matches!(mb.offer((0, 1), 11), Offer::Queued));
        assert!(matches!(mb.offer((0, 2), 0), Offer::Queued));
        assert!(matches!(mb.offer((0, 3), 13), Offer::Evicted((0, 1))));
        assert_eq!(drain(&mb), vec![((0, 2), 0), ((0, 3), 13)]);
    }
}
