//! Unit tests of the lanes: order through the overflow, closing, reuse of buffers.

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
        let n = rx.take_below_flat(below, &mut out);
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
    assert_eq!(tx.take_undelivered(), None, "the shard still holds its end");
    drop(rx);
    assert_eq!(tx.take_undelivered(), Some(0));
}

/// One pass as the shard makes it (`Shard::drain_outside`): what is due, then the blocks taken
/// whole. Returns the values in the order delivered, and how many came in whole blocks.
fn pass(
    reg: &LaneRegistry,
    lanes: &mut Vec<LaneRx>,
    (out, due): (&mut Vec<Stamped>, &mut Vec<Stamped>),
    blocks: &mut Blocks,
) -> (Vec<u64>, usize) {
    take_due(reg, lanes, out, due, blocks, |_| {});
    let whole = blocks.len();
    let mut got: Vec<u64> = due.drain(..).map(|(_, p)| value(p)).collect();
    blocks.deliver(|p| got.push(value(p)));
    (got, whole)
}

#[test]
fn a_backlog_is_taken_whole_in_order_and_its_overflow_blocks_go_back_to_the_sender() {
    let (mut tx, rx) = lane();
    let reg = LaneRegistry::default();
    let mut lanes = vec![rx];
    let (mut out, mut due, mut blocks) = (Vec::new(), Vec::new(), Blocks::default());
    // Three blocks of overflow each time.
    let total = (LANE_CAPACITY + 3 * overflow::BLOCK) as u64;
    for cycle in 0..2 {
        let first = cycle * total;
        for v in first..first + total {
            // A lone sender's stamps are all one (first backlog), others' all differ.
            let stamp = if cycle == 0 { 0 } else { v };
            assert!(tx.push(stamp, packet(v)).is_ok());
        }
        // One pass takes all of it (what stayed in the lane would hold up the messages
        // behind it, whatever actor they are for); the lane is alone, so its queue is
        // delivered from the blocks it was queued in, after the ring's messages.
        let (got, whole) = pass(&reg, &mut lanes, (&mut out, &mut due), &mut blocks);
        assert_eq!(got, (first..first + total).collect::<Vec<_>>());
        assert_eq!(whole, 3 * overflow::BLOCK, "not copied");
        assert!(out.is_empty());
    }
    // The second backlog's queue was taken whole, and the blocks the first one had filled
    // went back to the sender: one more overflowing message lands in one of them, and the
    // other two wait as spares.
    for v in 0..=(LANE_CAPACITY as u64) {
        assert!(tx.push(2 * total + v, packet(v)).is_ok());
    }
    let q = tx.state.overflow.lock().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q.room(), 3 * overflow::BLOCK - 1, "reused, not fresh");
}

#[test]
fn an_overflow_backlog_grows_in_blocks_without_moving_what_is_queued() {
    let (mut tx, rx) = lane();
    let (reg, mut lanes) = (LaneRegistry::default(), vec![rx]);
    let (mut out, mut due) = (Vec::new(), Vec::new());
    let queued = 10 * overflow::BLOCK as u64 + 3;
    let total = LANE_CAPACITY as u64 + queued;
    let mut first = None;
    for v in 0..total {
        assert!(tx.push(v, packet(v)).is_ok());
        if let Some(at) = tx.state.overflow.lock().unwrap().first_at() {
            // A queue that grew by copying would have moved its first message.
            assert_eq!(*first.get_or_insert(at), at, "moved at message {v}");
        }
    }
    {
        let q = tx.state.overflow.lock().unwrap();
        assert_eq!(q.len() as u64, queued);
        assert_eq!(q.blocks(), 11, "full blocks of {} and the last one", overflow::BLOCK);
    }
    take_due_flat(&reg, &mut lanes, &mut out, &mut due, |_| {});
    let got: Vec<u64> = due.drain(..).map(|(_, p)| value(p)).collect();
    assert_eq!(got, (0..total).collect::<Vec<_>>());
}

#[test]
fn overflow_blocks_are_kept_while_backlogs_last_and_bounded_after() {
    let (mut tx, rx) = lane();
    let (reg, mut lanes) = (LaneRegistry::default(), vec![rx]);
    let (mut out, mut due, mut blocks) = (Vec::new(), Vec::new(), Blocks::default());
    let mut next = 0u64;
    let mut backlog = |tx: &mut LaneTx, n: usize, lanes: &mut Vec<LaneRx>, blocks: &mut Blocks| {
        for _ in 0..LANE_CAPACITY + n {
            assert!(tx.push(next, packet(next)).is_ok());
            next += 1;
        }
        let (got, _) = pass(&reg, lanes, (&mut out, &mut due), blocks);
        assert_eq!(got, (next - (LANE_CAPACITY + n) as u64..next).collect::<Vec<_>>());
    };
    let room = |tx: &LaneTx| tx.state.overflow.lock().unwrap().room();
    let block = overflow::BLOCK;
    // Two backlogs of ten blocks: the first's blocks are handed to the sender at the second.
    backlog(&mut tx, 10 * block, &mut lanes, &mut blocks);
    backlog(&mut tx, 10 * block, &mut lanes, &mut blocks);
    assert_eq!(room(&tx), 10 * block, "kept while the backlog lasts");
    // Small backlogs after it: the sender keeps one spare block, the others go back to the
    // shard, for any lane.
    backlog(&mut tx, 8, &mut lanes, &mut blocks);
    backlog(&mut tx, 8, &mut lanes, &mut blocks);
    assert!(room(&tx) <= 2 * block, "handed back after: {}", room(&tx));
    // However long a backlog, the blocks kept on either side are bounded.
    let long = (overflow::SPARE_BLOCKS + 6) * block;
    backlog(&mut tx, long, &mut lanes, &mut blocks);
    backlog(&mut tx, long, &mut lanes, &mut blocks);
    assert_eq!(room(&tx), overflow::SPARE_BLOCKS * block);
    assert_eq!(blocks.spare.len(), overflow::SPARE_BLOCKS);
}

#[test]
fn a_lanes_blocks_are_copied_and_sorted_among_other_lanes_messages() {
    // Two lanes: the pass sorts, so the blocks join the pass's buffer, in stamp order.
    let reg = LaneRegistry::default();
    let (mut a, rx_a) = lane();
    let (mut b, rx_b) = lane();
    let mut lanes = vec![rx_a, rx_b];
    let (mut out, mut due, mut blocks) = (Vec::new(), Vec::new(), Blocks::default());
    // Lane a overflows with even stamps, lane b holds odd ones among them.
    let n = (LANE_CAPACITY + 2 * overflow::BLOCK) as u64;
    for v in 0..n {
        assert!(a.push(2 * v, packet(2 * v)).is_ok());
    }
    for v in 0..10 {
        assert!(b.push(2 * v + 1, packet(2 * v + 1)).is_ok());
    }
    let (got, whole) = pass(&reg, &mut lanes, (&mut out, &mut due), &mut blocks);
    assert_eq!(whole, 0, "copied into the sorted pass");
    let mut want: Vec<u64> = (0..n).map(|v| 2 * v).chain((0..10).map(|v| 2 * v + 1)).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(blocks.spare.len(), 2, "the emptied blocks are kept");
}

#[test]
fn a_queue_taken_whole_stays_ahead_of_what_its_lane_sends_during_the_pass() {
    // A lone sender's stamps repeat: its queue, and a message it sends while the pass runs,
    // carry one stamp; the injector's message (stamped after) makes the pass sort and take
    // again, and the later take finds the new message. The queue must stay ahead of it.
    let (mut tx, rx) = lane();
    let (reg, mut lanes) = (LaneRegistry::default(), vec![rx]);
    let (mut out, mut due, mut blocks) = (Vec::new(), Vec::new(), Blocks::default());
    let n = LANE_CAPACITY as u64 + 5;
    for v in 0..n {
        assert!(tx.push(10, packet(v)).is_ok());
    }
    let mut first = true;
    take_due(&reg, &mut lanes, &mut out, &mut due, &mut blocks, |o| {
        if std::mem::take(&mut first) {
            assert!(tx.push(10, packet(n)).is_ok());
            o.push((11, packet(n + 1)));
        }
    });
    let mut got: Vec<u64> = due.drain(..).map(|(_, p)| value(p)).collect();
    blocks.deliver(|p| got.push(value(p)));
    assert_eq!(got, (0..n + 2).collect::<Vec<_>>());
}

#[test]
fn a_pass_with_one_lane_still_orders_what_an_earlier_pass_left_over() {
    let (mut tx, rx) = lane();
    let (reg, mut lanes) = (LaneRegistry::default(), vec![rx]);
    let (mut out, mut due) = (Vec::new(), Vec::new());
    // Pass 1: the injector hands over 30 first (so the rounds run), then 100 (past the bound,
    // left over for a later pass).
    assert!(tx.push(10, packet(10)).is_ok());
    let mut handed = vec![(30, packet(30)), (100, packet(100))].into_iter();
    take_due_flat(&reg, &mut lanes, &mut out, &mut due, |o| o.extend(handed.next()));
    let got: Vec<u64> = due.drain(..).map(|(_, p)| value(p)).collect();
    assert_eq!((got, out.len()), (vec![10, 30], 1));
    // Pass 2: only the lane, with messages stamped below the one left over.
    assert!(tx.push(50, packet(50)).is_ok());
    assert!(tx.push(60, packet(60)).is_ok());
    take_due_flat(&reg, &mut lanes, &mut out, &mut due, |_| {});
    let got: Vec<u64> = due.drain(..).map(|(_, p)| value(p)).collect();
    assert_eq!(got, [50, 60, 100]);
}

#[test]
fn a_gone_lane_is_finished_once_empty_and_a_closed_registry_refuses() {
    let (mut tx, mut rx) = lane();
    assert!(tx.push(0, packet(1)).is_ok());
    tx.leave();
    assert!(!rx.is_finished(), "one message still waits");
    assert_eq!(rx.take_below_flat(1, &mut Vec::new()), 1);
    assert!(rx.is_finished());
    let reg = LaneRegistry::default();
    let (_, rx2) = lane();
    assert!(reg.register(rx2));
    assert!(reg.has_new());
    assert_eq!(reg.close().len(), 1);
    let (_, rx3) = lane();
    assert!(!reg.register(rx3));
}

/// The messages of `p`, in order: a lone message or a batch of `u32`s.
fn user_values(p: Packet) -> Vec<u32> {
    match p.take::<crate::shard::UserMsg<u32>>() {
        Ok(m) => vec![m.0],
        Err(p) => p.take::<crate::shard::BatchMsg<u32>>().ok().expect("a user message or a batch").0,
    }
}

fn user(target: u64, v: u32) -> Packet {
    Packet::new(target, crate::shard::UserMsg(v))
}

#[test]
fn equal_stamps_to_one_actor_join_in_the_overflow_and_nothing_else_does() {
    let (mut tx, mut rx) = lane();
    let cap = LANE_CAPACITY as u32;
    // The ring fills with single packets; behind it, a lone sender's run (one stamp) to actor 7
    // joins into batches of up to `BATCH_CAP`.
    for v in 0..cap + 200 {
        assert!(tx.push(10, user(7, v)).is_ok());
    }
    // A new stamp, another actor, another type: each starts a packet of its own.
    assert!(tx.push(12, user(7, 1000)).is_ok());
    assert!(tx.push(12, user(8, 1001)).is_ok());
    assert!(tx.push(12, Packet::new(8, crate::shard::UserMsg(1002u64))).is_ok());
    assert!(tx.push(12, user(8, 1003)).is_ok());
    let mut out = Vec::new();
    let n = rx.take_below_flat(u64::MAX, &mut out);
    assert_eq!(n, out.len());
    let batch = crate::shard::BATCH_CAP;
    assert_eq!(n, cap as usize + 200usize.div_ceil(batch) + 4, "the ring's single packets, then joined runs");
    let sizes: Vec<usize> = out.iter().map(|(_, p)| p.messages()).collect();
    assert!(sizes[..cap as usize].iter().all(|&k| k == 1));
    assert_eq!(sizes.iter().sum::<usize>(), cap as usize + 204, "every message counted once");
    let mut got = Vec::new();
    let mut last_u64 = None;
    for (stamp, mut p) in out {
        if p.payload_mut::<crate::shard::UserMsg<u64>>().is_some() {
            last_u64 = Some((stamp, p.take::<crate::shard::UserMsg<u64>>().ok().unwrap().0));
            continue;
        }
        let target = p.target();
        got.extend(user_values(p).into_iter().map(|v| (stamp, target, v)));
    }
    let mut want: Vec<(u64, u64, u32)> = (0..cap + 200).map(|v| (10, 7, v)).collect();
    want.extend([(12, 7, 1000), (12, 8, 1001), (12, 8, 1003)]);
    assert_eq!(got, want);
    assert_eq!(last_u64, Some((12, 1002)));
}

#[test]
fn a_closed_lane_counts_each_message_of_a_joined_batch() {
    let (mut tx, mut rx) = lane();
    let total = LANE_CAPACITY as u32 + 100;
    for v in 0..total {
        assert!(tx.push(4, user(3, v)).is_ok());
    }
    let mut dead = Vec::new();
    assert_eq!(rx.close(|p| dead.extend(user_values(p))), total as usize);
    assert_eq!(dead, (0..total).collect::<Vec<_>>());
}

#[test]
fn a_lane_shows_where_its_sender_runs_while_the_sender_lives() {
    let (mut tx, rx) = lane();
    assert_eq!(rx.sender_cpu(), None, "nothing sent yet");
    // The thread may move between its push and the look; a few rounds find it in place.
    let mut stamp = 0;
    let seen = (0..20).any(|_| {
        for _ in 0..SEAT_EVERY {
            assert!(tx.push(stamp, packet(stamp)).is_ok());
            stamp += 1;
        }
        rx.sender_cpu() == crate::cpu::current()
    });
    assert!(seen, "the sender's CPU is published as it pushes");
    tx.leave();
    assert_eq!(rx.sender_cpu(), None, "a sender that has left runs nowhere for the shard");
}

/// 40 bytes inline: the packet's last storage word, on a lane slot's second cache line.
struct Long([u64; 5]);
impl Deliver for Long {
    fn deliver(self, _: &Shard, _: u64) {}
}

/// A lane slot's first cache line carries a short packet whole; a long payload (the storage's
/// last word) and a boxed one arrive intact too, through the ring and through the overflow.
#[test]
fn short_long_and_boxed_payloads_cross_a_lane_intact() {
    let (mut tx, mut rx) = lane();
    let total = 2 * LANE_CAPACITY as u64;
    for v in 0..total {
        let p = match v % 3 {
            0 => packet(v),
            1 => Packet::new(v, Long([v, v + 1, v + 2, v + 3, v + 4])),
            _ => Packet::new(v, crate::shard::UserMsg([v; 16])),
        };
        assert!(tx.push(v, p).is_ok());
    }
    let mut out = Vec::new();
    assert_eq!(rx.take_below_flat(u64::MAX, &mut out), total as usize);
    for (i, (stamp, p)) in out.into_iter().enumerate() {
        let v = i as u64;
        assert_eq!(stamp, v);
        match v % 3 {
            0 => assert_eq!(value(p), v),
            1 => {
                assert_eq!(p.target(), v);
                assert_eq!(p.take::<Long>().ok().expect("a Long").0, [v, v + 1, v + 2, v + 3, v + 4]);
            }
            _ => {
                let m = p.take::<crate::shard::UserMsg<[u64; 16]>>().ok().expect("a boxed message");
                assert_eq!(m.0, [v; 16]);
            }
        }
    }
}

/// A payload written straight into the ring (`push_new`) arrives as a packet pushed whole would,
/// short, long or boxed; a full ring, or one with messages queued behind it, gives the payload
/// back untouched, so nothing overtakes what was queued.
#[test]
fn a_payload_written_into_the_ring_arrives_whole_and_never_overtakes_the_queue() {
    let (mut tx, mut rx) = lane();
    let cap = LANE_CAPACITY as u64;
    for v in 0..cap {
        let sent = match v % 3 {
            0 => tx.push_new(v, v, V(v)).map_err(|_| ()),
            1 => tx.push_new(v, v, Long([v, v + 1, v + 2, v + 3, v + 4])).map_err(|_| ()),
            _ => tx.push_new(v, v, crate::shard::UserMsg([v; 16])).map_err(|_| ()),
        };
        assert!(sent.is_ok(), "room in the ring for message {v}");
    }
    let Err(back) = tx.push_new(cap, cap, V(cap)) else { panic!("a full ring takes nothing") };
    assert_eq!(back.0, cap, "the payload comes back");
    // Queued behind the ring, as a sender falls back to; from then on the ring is not written,
    // even once it has room, until the shard takes the queue.
    assert!(tx.push(cap, Packet::new(cap, V(cap))).is_ok());
    let mut out = Vec::new();
    let mut first = Vec::new();
    for _ in 0..4 {
        first.extend(rx.pop());
    }
    rx.rx.release();
    assert_eq!(first.len(), 4);
    let Err(back) = tx.push_new(cap + 1, cap + 1, V(cap + 1)) else { panic!("the queue comes first") };
    assert!(tx.push(cap + 1, Packet::new(cap + 1, back)).is_ok());
    rx.take_below_flat(u64::MAX, &mut out);
    let got: Vec<(u64, u64)> = first.into_iter().chain(out).map(|(s, p)| (s, p.target())).collect();
    assert_eq!(got, (0..cap + 2).map(|v| (v, v)).collect::<Vec<_>>(), "in order, each once");
    assert!(tx.push_new(cap + 2, cap + 2, V(cap + 2)).is_ok(), "the ring again once the queue is taken");
    let mut out = Vec::new();
    rx.take_below_flat(u64::MAX, &mut out);
    let (stamp, p) = out.pop().expect("one message");
    assert_eq!((stamp, value(p)), (cap + 2, cap + 2));
}

/// Payloads written into the ring keep their contents: checked per kind, through a shard-less
/// take.
#[test]
fn a_payload_written_into_the_ring_keeps_its_contents() {
    let (mut tx, mut rx) = lane();
    for v in 0..3u64 {
        let sent = match v {
            0 => tx.push_new(v, v, V(7)).map_err(|_| ()),
            1 => tx.push_new(v, v, Long([1, 2, 3, 4, 5])).map_err(|_| ()),
            _ => tx.push_new(v, v, crate::shard::UserMsg([9u64; 16])).map_err(|_| ()),
        };
        assert!(sent.is_ok());
    }
    let mut out = Vec::new();
    assert_eq!(rx.take_below_flat(u64::MAX, &mut out), 3);
    let mut it = out.into_iter().map(|(_, p)| p);
    assert_eq!(value(it.next().unwrap()), 7);
    assert_eq!(it.next().unwrap().take::<Long>().ok().expect("a Long").0, [1, 2, 3, 4, 5]);
    assert_eq!(it.next().unwrap().take::<crate::shard::UserMsg<[u64; 16]>>().ok().expect("boxed").0, [9; 16]);
}

/// `take_lone` hands over the lanes' only message at once (clearing `behind`), and sends the
/// pass to `take_due` whenever anything else may be waiting: a second message in its lane or
/// in another, the injector, a lane not yet adopted. What it looked at is then delivered by
/// `take_due` as if it had not looked: every message once, in stamp order.
#[test]
fn the_lanes_only_message_is_taken_at_once_and_anything_more_goes_to_the_rounds() {
    let (mut tx, rx) = lane();
    let (reg, mut lanes) = (LaneRegistry::default(), vec![rx]);
    let (mut out, mut due) = (Vec::new(), Vec::new());
    let mut pass = |lanes: &mut Vec<LaneRx>, more: Option<Stamped>| {
        let mut more = more.into_iter();
        let injector_has = more.len() > 0;
        if let Some(p) = take_lone(&reg, lanes, || injector_has) {
            return (true, vec![value(p)]);
        }
        take_due_flat(&reg, lanes, &mut out, &mut due, |o| o.extend(more.next()));
        (false, due.drain(..).map(|(_, p)| value(p)).collect())
    };
    // Nothing there: nothing taken, and the rounds find nothing either.
    assert_eq!(pass(&mut lanes, None), (false, vec![]));
    // One message: taken at once; the lane's `behind` is cleared as by a take of one.
    tx.state.behind.store(true, Ordering::Relaxed);
    assert!(tx.push(2, packet(1)).is_ok());
    assert_eq!(pass(&mut lanes, None), (true, vec![1]));
    assert!(!tx.state.behind.load(Ordering::Relaxed));
    assert!(!lanes[0].has_next());
    // Two messages: the first is held back in its lane, and the rounds deliver both in order.
    assert!(tx.push(4, packet(2)).is_ok());
    assert!(tx.push(4, packet(3)).is_ok());
    assert_eq!(pass(&mut lanes, None), (false, vec![2, 3]));
    // The injector holds a message sent before the lane's: it comes first.
    assert!(tx.push(8, packet(5)).is_ok());
    assert_eq!(pass(&mut lanes, Some((7, packet(4)))), (false, vec![4, 5]));
    // A lane waits to be adopted: the rounds adopt it and deliver in stamp order.
    let (mut tx2, rx2) = lane();
    assert!(tx2.push(9, packet(6)).is_ok());
    assert!(reg.register(rx2));
    assert!(tx.push(10, packet(7)).is_ok());
    assert_eq!(pass(&mut lanes, None), (false, vec![6, 7]));
    // Two lanes, one message between them: taken at once.
    assert!(tx.push(12, packet(8)).is_ok());
    assert_eq!(pass(&mut lanes, None), (true, vec![8]));
    // A message in each: nothing is taken alone (nothing popped), and the rounds deliver both
    // in stamp order.
    assert!(tx2.push(13, packet(9)).is_ok());
    assert!(tx.push(14, packet(10)).is_ok());
    assert!(take_lone(&reg, &mut lanes, || false).is_none());
    assert!(lanes.iter().all(|l| l.held.is_none()));
    assert_eq!(pass(&mut lanes, None), (false, vec![9, 10]));
}
