//! The typed mailbox: user messages in a growable ring buffer (`VecDeque`, unallocated until
//! the first message), their senders on the side, and the policy of a bounded or priority
//! mailbox.
//!
//! An unbounded mailbox (the default) has no policy: a push is one `push_back`. The header's
//! gate byte is zero exactly while the actor accepts messages and has no policy, so the sender's
//! fast path tests one byte (the same test it makes for "still running") and everything else
//! takes [`Mailbox::offer`], out of line. Popping never looks at the policy: a priority mailbox
//! keeps its queue in handling order (insertion by binary search), so the turn's loop is the same
//! for every kind.

use super::{Header, SENDERS};
use crate::id::ActorId;
use crate::mailbox::{MailboxKind, Order, Overflow};
use std::cell::UnsafeCell;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;

/// Senders of queued messages that have one: runs `(first, end, sender)` of queue sequence
/// numbers (`first..end`), in queue order, and the sequence number of the message at the front.
#[derive(Default)]
struct Side {
    popped: u64,
    runs: VecDeque<(u64, u64, u64)>,
}

impl Side {
    /// A message was inserted at sequence number `seq` (its position plus `popped`): the ones
    /// from `seq` on move back by one, and the new one has `sender` (0: none).
    fn insert(&mut self, seq: u64, sender: u64) {
        let mut at = self.runs.len();
        let mut split = None;
        for (i, (first, end, s)) in self.runs.iter_mut().enumerate() {
            let (f, e) = (first.wrapping_sub(seq) as i64, end.wrapping_sub(seq) as i64);
            if f >= 0 {
                at = at.min(i);
                *first = first.wrapping_add(1);
                *end = end.wrapping_add(1);
            } else if e > 0 {
                // The run spans the insertion point: it splits around the new message.
                split = Some((i, seq.wrapping_add(1), end.wrapping_add(1), *s));
                *end = seq;
                at = i + 1;
            }
        }
        if let Some((i, first, end, s)) = split {
            self.runs.insert(i + 1, (first, end, s));
        }
        if sender != 0 {
            self.runs.insert(at, (seq, seq.wrapping_add(1), sender));
        }
    }
}

/// What a bounded or priority mailbox does differently.
enum Shape<M> {
    Bounded { capacity: usize, overflow: Overflow },
    Priority(Arc<Order<M>>),
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

    /// Inserts at position `pos` (a priority mailbox).
    fn insert(&mut self, pos: usize, m: M, sender: u64) {
        if pos == self.msgs.len() {
            if sender != 0 {
                self.note_sender_back(sender, 1);
            }
            self.msgs.push_back(m);
            return;
        }
        self.msgs.insert(pos, m);
        if sender != 0 || self.senders.is_some() {
            let side = self.senders.get_or_insert_with(Default::default);
            side.insert(side.popped.wrapping_add(pos as u64), sender);
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
            Some(MailboxKind::Priority(p)) => p.0.typed::<M>().map(Shape::Priority),
        };
        let hdr = Header::new(id);
        hdr.set_shaped(shape.is_some());
        let policy = shape.map(|shape| Box::new(Policy { shape, dropped: 0 }));
        Self { hdr, user: UnsafeCell::new(Queue { msgs: VecDeque::new(), senders: None, policy }) }
    }
}

impl<M> Mailbox<M> {
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn q(&self) -> &mut Queue<M> {
        // SAFETY: owner-thread only; every caller uses the reference within one call and
        // nothing holds a reference into the queue while handlers run (messages are moved out
        // by value), so it is unique while it lives.
        unsafe { &mut *self.user.get() }
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

    /// Queues a user message under the mailbox's policy; the caller checked `accepts`.
    #[inline(never)]
    pub(crate) fn offer(&self, m: M, sender: u64) -> Offer<M> {
        let q = self.q();
        let Some(policy) = q.policy.as_deref() else {
            self.push_unchecked(m, sender);
            return Offer::Queued;
        };
        match &policy.shape {
            Shape::Bounded { capacity, overflow } if q.msgs.len() >= *capacity => match overflow {
                Overflow::DropNewest => Offer::Dropped(m),
                Overflow::Reject => Offer::Refused(m),
                Overflow::DropOldest => {
                    let Some(old) = q.msgs.pop_front() else { return Offer::Refused(m) };
                    q.take_sender();
                    self.push_unchecked(m, sender);
                    Offer::Evicted(old)
                }
            },
            Shape::Bounded { .. } => {
                self.push_unchecked(m, sender);
                Offer::Queued
            }
            Shape::Priority(order) => {
                // After every queued message that is not of lower priority: FIFO among equals.
                // Arrivals of the lowest priority so far (the usual case) go straight to the back.
                let pos = match q.msgs.back() {
                    Some(last) if order(last, &m) == Ordering::Less => {
                        q.msgs.partition_point(|x| order(x, &m) != Ordering::Less)
                    }
                    _ => q.msgs.len(),
                };
                q.insert(pos, m, sender);
                if sender != 0 {
                    self.hdr.set_flag(SENDERS, true);
                }
                Offer::Queued
            }
        }
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
        if q.senders.is_some() {
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
    /// so they go back whatever the kind: ahead of any priority, even past a bound.
    pub(super) fn push_front_all(&self, msgs: impl DoubleEndedIterator<Item = (M, u64)>) {
        let q = self.q();
        for (m, sender) in msgs.rev() {
            if sender != 0 {
                self.hdr.set_flag(SENDERS, true);
            }
            q.push_front(m, sender);
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.q().msgs.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn mailbox(kind: MailboxKind) -> Mailbox<(u8, u32)> {
        Mailbox::new(ActorId::new(0, 1, 1), Some(&kind))
    }

    fn drain(mb: &Mailbox<(u8, u32)>) -> Vec<((u8, u32), u64)> {
        std::iter::from_fn(|| mb.pop()).collect()
    }

    /// Random arrivals (three priorities, senders shared by runs of messages so that side runs
    /// split) and pops, against a model that keeps each message with its sender.
    #[test]
    fn priority_inserts_keep_every_sender_with_its_message() {
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
            let mut model: Vec<((u8, u32), u64)> = Vec::new();
            for serial in 0..60u32 {
                if next() % 4 == 0 {
                    let want = (!model.is_empty()).then(|| model.remove(0));
                    assert_eq!(mb.pop(), want);
                }
                let m = ((next() % 3) as u8, serial);
                let sender = [0, 0, 7, 8][(next() % 4) as usize];
                assert!(matches!(mb.offer(m, sender), Offer::Queued));
                let pos = model.iter().position(|(x, _)| x.0 < m.0).unwrap_or(model.len());
                model.insert(pos, (m, sender));
            }
            assert_eq!(drain(&mb), model);
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
