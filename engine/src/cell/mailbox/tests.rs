//! The typed mailbox's queue alone: priority order against a model, drop-oldest.

use super::*;
use std::collections::VecDeque;

fn mailbox(kind: MailboxKind) -> Mailbox<(u8, u32)> {
    Mailbox::new(ActorId::new(0, 1, 1), Some(&kind))
}

fn drain(mb: &Mailbox<(u8, u32)>) -> Vec<((u8, u32), u64)> {
    std::iter::from_fn(|| mb.pop()).collect()
}

/// A reproducible stream of pseudo-random numbers (xorshift64) from a nonzero seed.
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// Random arrivals (three priorities, some with senders), pops, and stash-unstash rounds,
/// against a model: highest priority first, then by arrival, where unstashed messages
/// count as arriving before everything queued, in their order.
#[test]
fn priority_order_is_by_priority_then_arrival_and_keeps_senders() {
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
    for _round in 0..200 {
        let mb = mailbox(MailboxKind::priority(|a: &(u8, u32), b: &(u8, u32)| a.0.cmp(&b.0)));
        assert!(!mb.open(), "a priority mailbox takes the gated path");
        // (message, sender, arrival rank)
        let mut model: Vec<((u8, u32), u64, i64)> = Vec::new();
        let take = |model: &mut Vec<((u8, u32), u64, i64)>| {
            let best = (0..model.len()).min_by_key(|&i| (std::cmp::Reverse(model[i].0 .0), model[i].2))?;
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

/// A queue that takes everything and gives nothing back.
struct Hole;
impl MailboxQueue<(u8, u32)> for Hole {
    fn push(&mut self, _lost: Queued<(u8, u32)>) -> Push<(u8, u32)> {
        Push::Queued
    }
    fn pop(&mut self) -> Option<Queued<(u8, u32)>> {
        None
    }
}

#[test]
fn a_custom_queue_that_loses_messages_is_believed_not_waited_for() {
    let mb = mailbox(MailboxKind::custom(|| Hole));
    assert!(matches!(mb.offer((0, 1), 0), Offer::Queued));
    assert!(matches!(mb.offer((0, 2), 0), Offer::Queued));
    assert!(!mb.is_empty(), "two counted");
    assert_eq!(mb.len(), 2);
    assert_eq!(mb.pop(), None);
    assert!(mb.is_empty(), "the count follows the queue once it says it is empty");
    assert_eq!(mb.discard_queue(), 0);
}

/// An unbounded mailbox's first message gets room for one (most actors of a large population
/// hold one message at a time), and a stream grows it as usual, keeping order.
#[test]
fn a_first_message_gets_room_for_one_and_a_stream_grows_the_queue_in_order() {
    let mb: Mailbox<(u8, u32)> = Mailbox::new(ActorId::new(0, 1, 1), None);
    assert_eq!(mb.q().msgs.capacity(), 0, "an idle actor's mailbox holds no buffer");
    mb.push_unchecked((0, 0), 0);
    assert_eq!(mb.q().msgs.capacity(), 1);
    assert_eq!(mb.pop(), Some(((0, 0), 0)));
    mb.push_unchecked((0, 1), 0);
    assert_eq!(mb.q().msgs.capacity(), 1, "a message at a time fits the first buffer");
    for i in 2..100 {
        mb.push_unchecked((0, i), if i % 7 == 0 { 9 } else { 0 });
    }
    let got: Vec<u32> = drain(&mb).into_iter().map(|((_, i), _)| i).collect();
    assert_eq!(got, (1..100).collect::<Vec<_>>());
}

/// A priority mailbox keeps one message in its queue (the front; the rest in its heap): that
/// queue's buffer is sized for one too.
#[test]
fn a_priority_mailboxs_front_queue_holds_room_for_one() {
    let mb = mailbox(MailboxKind::priority(|a: &(u8, u32), b: &(u8, u32)| a.0.cmp(&b.0)));
    for i in 0..10 {
        assert!(matches!(mb.offer((i as u8 % 3, i), 0), Offer::Queued));
    }
    assert_eq!(mb.q().msgs.capacity(), 1);
    assert_eq!(drain(&mb).len(), 10);
}

/// Parts of plain threads' runs queued where they are, mixed at random with single messages
/// (some with senders), pops and unstashes, against a model queue: every message comes out in
/// queue order with its own sender, and the count and emptiness follow throughout.
#[test]
fn parts_keep_their_place_among_single_messages_senders_and_unstashed_messages() {
    let mut next = xorshift(0x2545_F491_4F6C_DD1D);
    for _round in 0..300 {
        let mb: Mailbox<(u8, u32)> = Mailbox::new(ActorId::new(0, 1, 1), None);
        let mut model: VecDeque<((u8, u32), u64)> = VecDeque::new();
        let (mut serial, mut stash) = (0u32, Vec::new());
        for _ in 0..80 {
            match next() % 8 {
                0 | 1 => {
                    // Some parts are longer than a refill (`queue::refill`: 512 of these), so
                    // pops also meet a part that is partly in the front buffer.
                    let len = if next().is_multiple_of(4) { 1 + next() % 1500 } else { 1 + next() % 20 };
                    let part: Vec<(u8, u32)> = (0..len)
                        .map(|_| {
                            serial += 1;
                            (1, serial)
                        })
                        .collect();
                    model.extend(part.iter().map(|m| (*m, 0)));
                    mb.push_part(Box::new(part.into_iter()));
                }
                2 | 3 => assert_eq!(mb.pop(), model.pop_front()),
                4 => {
                    let popped = mb.pop();
                    assert_eq!(popped, model.pop_front());
                    stash.extend(popped);
                }
                5 if !stash.is_empty() => {
                    for m in stash.iter().rev() {
                        model.push_front(*m);
                    }
                    mb.push_front_all(std::mem::take(&mut stash).into_iter());
                }
                _ => {
                    serial += 1;
                    let sender = [0, 0, 7, 8][(next() % 4) as usize];
                    mb.push_unchecked((0, serial), sender);
                    model.push_back(((0, serial), sender));
                }
            }
            assert_eq!(mb.len(), model.len());
            assert_eq!(mb.is_empty(), model.is_empty());
        }
        assert_eq!(drain(&mb), Vec::from(model));
        assert!(mb.is_empty() && mb.q().parts().is_none(), "the last part's bookkeeping goes with it");
    }
}

/// A part stays where its sender wrote it: queuing a backlog of 10 000 messages allocates no
/// buffer in the mailbox, and what comes after it waits behind it.
#[test]
fn a_part_is_queued_where_it_is_without_growing_the_mailboxs_buffer() {
    let mb: Mailbox<(u8, u32)> = Mailbox::new(ActorId::new(0, 1, 1), None);
    mb.push_part(Box::new((0..10_000).map(|i| (0, i))));
    assert_eq!(mb.q().msgs.capacity(), 0, "the backlog is not copied");
    assert_eq!(mb.len(), 10_000);
    mb.push_unchecked((1, 0), 5);
    let got = drain(&mb);
    assert_eq!(got.len(), 10_001);
    assert!(got[..10_000].iter().enumerate().all(|(i, m)| *m == ((0, i as u32), 0)));
    assert_eq!(got[10_000], ((1, 0), 5), "the message after the part, with its sender");
}

/// Pops take a part's messages a refill at a time into the queue's front buffer, where the
/// next pops find them (one call through the part per refill, not two per message); the part
/// stays queued, in its place, until it is spent.
#[test]
fn a_parts_messages_are_popped_a_refill_at_a_time() {
    let mb: Mailbox<(u8, u32)> = Mailbox::new(ActorId::new(0, 1, 1), None);
    let refill = super::queue::refill::<(u8, u32)>();
    assert_eq!(refill, 512, "4 KiB of 8-byte messages");
    mb.push_part(Box::new((0..10_000).map(|i| (0, i))));
    mb.push_unchecked((1, 0), 5);
    assert_eq!(mb.pop(), Some(((0, 0), 0)));
    let parts = mb.q().parts().expect("the part is still queued");
    assert_eq!(parts.front_len(), refill - 1, "the rest of the first refill waits in the front buffer");
    assert_eq!(mb.len(), 10_000, "the rest of the part, and the message after it");
    let got = drain(&mb);
    assert!(got[..9_999].iter().enumerate().all(|(i, m)| *m == ((0, i as u32 + 1), 0)));
    assert_eq!(got[9_999], ((1, 0), 5), "the message after the part, with its sender");
    assert!(mb.is_empty() && mb.q().parts().is_none(), "the last part's bookkeeping goes with it");
}

/// A message of 1 KiB, so a queue's buffer is full at [`queue::CHUNK_BYTES`] / 1 KiB messages.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Wide(u32, [u8; 1020]);

fn wide(i: u32) -> Wide {
    Wide(i, [i as u8; 1020])
}

/// A backlog larger than one buffer's bound goes into further buffers of that size, none ever
/// copied into a larger one, and comes out in order with its senders; the buffers go as they
/// are emptied.
#[test]
fn a_backlog_beyond_a_buffers_bound_is_queued_in_buffers_of_that_bound_in_order() {
    let most = queue::CHUNK_BYTES / std::mem::size_of::<Wide>();
    let mb: Mailbox<Wide> = Mailbox::new(ActorId::new(0, 1, 1), None);
    let n = 10 * most as u32 + 7;
    for i in 0..n {
        mb.push_unchecked(wide(i), if i % 5 == 0 { 3 } else { 0 });
        assert!(mb.q().msgs.capacity() <= most, "a buffer never grows past the bound");
    }
    assert_eq!(mb.len(), n as usize);
    assert!(mb.q().parts().is_some(), "the full buffers are queued whole");
    for i in 0..n {
        let (m, sender) = mb.pop().expect("queued");
        assert_eq!(m, wide(i));
        assert_eq!(sender, if i % 5 == 0 { 3 } else { 0 });
    }
    assert!(mb.is_empty() && mb.q().parts().is_none(), "the last buffer's bookkeeping goes with it");
}

/// Single messages, batches (`extend`), runs' parts, pops and unstashes mixed at random, with
/// backlogs that cross buffers' bounds, against a model queue: every message comes out in
/// queue order with its own sender; the count and emptiness follow throughout.
#[test]
fn full_buffers_keep_their_place_among_parts_batches_and_unstashed_messages() {
    let most = queue::CHUNK_BYTES / std::mem::size_of::<Wide>();
    let mut next = xorshift(0x5DEE_CE66_D1CE_4E5B);
    // Times a backlog of two buffers' worth or more was queued with no buffer past the bound,
    // and times messages were unstashed ahead of a full buffer being worked off.
    let (mut bounded, mut unstashed_ahead) = (0, 0);
    for _round in 0..60 {
        let mb: Mailbox<Wide> = Mailbox::new(ActorId::new(0, 1, 1), None);
        let mut model: VecDeque<(Wide, u64)> = VecDeque::new();
        let (mut serial, mut stash) = (0u32, Vec::new());
        let mut fresh = || {
            serial += 1;
            wide(serial)
        };
        for _ in 0..200 {
            match next() % 10 {
                0 => {
                    let part: Vec<Wide> = (0..1 + next() % 20).map(|_| fresh()).collect();
                    model.extend(part.iter().map(|m| (*m, 0)));
                    mb.push_part(Box::new(part.into_iter()));
                }
                1 => {
                    let batch: Vec<Wide> = (0..1 + next() % (2 * most as u64)).map(|_| fresh()).collect();
                    model.extend(batch.iter().map(|m| (*m, 0)));
                    mb.extend(batch.into_iter());
                }
                2 | 3 => {
                    for _ in 0..next() % (most as u64 / 2) {
                        assert_eq!(mb.pop(), model.pop_front());
                    }
                }
                4 => {
                    let popped = mb.pop();
                    assert_eq!(popped, model.pop_front());
                    stash.extend(popped);
                }
                5 if !stash.is_empty() => {
                    if mb.q().parts().is_some_and(|p| p.front_len() > 0) {
                        unstashed_ahead += 1;
                    }
                    for m in stash.iter().rev() {
                        model.push_front(*m);
                    }
                    mb.push_front_all(std::mem::take(&mut stash).into_iter());
                }
                _ => {
                    for _ in 0..next() % (most as u64) {
                        let sender = [0, 0, 7, 8][(next() % 4) as usize];
                        let m = fresh();
                        mb.push_unchecked(m, sender);
                        model.push_back((m, sender));
                    }
                }
            }
            assert_eq!(mb.len(), model.len());
            assert_eq!(mb.is_empty(), model.is_empty());
            if mb.len() >= 2 * most && mb.q().msgs.capacity() <= most {
                bounded += 1;
            }
        }
        assert_eq!(drain_wide(&mb), Vec::from(model));
        assert!(mb.is_empty() && mb.q().parts().is_none(), "the last part's bookkeeping goes with it");
    }
    assert!(bounded > 100, "backlogs crossed buffers' bounds ({bounded} times)");
    assert!(unstashed_ahead > 10, "messages were unstashed ahead of a full buffer ({unstashed_ahead} times)");
}

fn drain_wide(mb: &Mailbox<Wide>) -> Vec<(Wide, u64)> {
    std::iter::from_fn(|| mb.pop()).collect()
}
