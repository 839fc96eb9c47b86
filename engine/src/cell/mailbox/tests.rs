//! The typed mailbox's queue alone: priority order against a model, drop-oldest.

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
