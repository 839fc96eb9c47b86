//! Unit tests of runs in a lane: when they open and end, order around them, counting at close,
//! and that every message is moved or dropped once.

use super::run::RunPart;
use super::*;
use crate::packet::Deliver;
use crate::shard::Shard;

/// A message that may travel in runs.
struct R(u64);
impl Deliver for R {
    fn deliver(self, _: &Shard, _: u64) {}
    const RUNS: bool = true;
}

/// The messages of `p`, in order: a lone `R`, or a run's part.
fn values(p: Packet) -> Vec<u64> {
    match p.take::<R>() {
        Ok(R(v)) => vec![v],
        Err(p) => p.take::<RunPart<R>>().ok().expect("an R or a run's part").map(|R(v)| v).collect(),
    }
}

/// Sends as `outside::push_new` does: written into the lane, or as a packet when it is full.
fn send<P: Deliver>(tx: &mut LaneTx, stamp: u64, target: u64, p: P) {
    if let Err(back) = tx.push_new(stamp, target, p) {
        assert!(tx.push(stamp, Packet::new(target, back)).is_ok(), "the lane is open");
    }
}

/// A lane whose shard has found its sender ahead (as a take of eight or more would mark it).
fn behind_lane() -> (LaneTx, LaneRx) {
    let (tx, rx) = lane();
    tx.state.behind.store(true, Ordering::Relaxed);
    (tx, rx)
}

/// Takes everything: (stamp, target, messages) per entry.
fn take_all(rx: &mut LaneRx) -> Vec<(u64, u64, Vec<u64>)> {
    let mut out = Vec::new();
    rx.take_below_flat(u64::MAX, &mut out);
    out.into_iter().map(|(s, p)| (s, p.target(), values(p))).collect()
}

/// The messages of `entries` for `target`, in order.
fn of(entries: &[(u64, u64, Vec<u64>)], target: u64) -> Vec<u64> {
    entries.iter().filter(|e| e.1 == target).flat_map(|e| e.2.iter().copied()).collect()
}

#[test]
fn a_lone_senders_stream_to_one_actor_travels_in_runs_once_the_shard_is_behind() {
    let (mut tx, mut rx) = lane();
    // The shard keeps up: one message per entry, and a take of one says it is not behind.
    send(&mut tx, 0, 1, R(0));
    assert_eq!(take_all(&mut rx), [(0, 1, vec![0])]);
    assert!(!tx.state.behind.load(Ordering::Relaxed));
    // A backlog of 20 (one entry each: the shard's take finds it behind).
    for v in 1..21 {
        send(&mut tx, 0, 1, R(v));
    }
    let got = take_all(&mut rx);
    assert_eq!(got.len(), 20, "one entry per message before the shard found the backlog");
    assert!(tx.state.behind.load(Ordering::Relaxed));
    // From now on a stream to one actor goes in runs: 1 000 messages with a take every 100,
    // then 10 to another actor (the first of them ends the run; the second opens one), then
    // the first actor again.
    let mut got = Vec::new();
    let mut next = 21;
    for _ in 0..10 {
        for _ in 0..100 {
            send(&mut tx, 0, 1, R(next));
            next += 1;
        }
        got.extend(take_all(&mut rx));
    }
    for v in 0..10 {
        send(&mut tx, 0, 2, R(v));
    }
    for _ in 0..50 {
        send(&mut tx, 0, 1, R(next));
        next += 1;
    }
    got.extend(take_all(&mut rx));
    assert_eq!(of(&got, 1), (21..next).collect::<Vec<_>>(), "every message once, in order");
    assert_eq!(of(&got, 2), (0..10).collect::<Vec<_>>());
    assert!(got.len() < 40, "{} entries for {} messages: runs carry many each", got.len(), next - 11);
    // Order across actors as sent: actor 2's messages sit between the two streams to actor 1.
    let order: Vec<u64> = got.iter().map(|e| e.1).collect();
    let (first2, last2) =
        (order.iter().position(|&t| t == 2).unwrap(), order.iter().rposition(|&t| t == 2).unwrap());
    assert!(order[..first2].iter().all(|&t| t == 1) && order[first2..=last2].iter().all(|&t| t == 2));
    // The shard caught up: a take of at most one clears the flag, and single messages go
    // one per entry again.
    send(&mut tx, 0, 3, R(7));
    assert_eq!(take_all(&mut rx), [(0, 3, vec![7])]);
    assert!(!tx.state.behind.load(Ordering::Relaxed));
}

#[test]
fn a_run_carries_one_stamp_and_never_overtakes_the_overflow_queue() {
    let (mut tx, mut rx) = behind_lane();
    // Stamps 0 (a lone sender's, repeated), then 1 (taken from the counter: not appended).
    for v in 0..10 {
        send(&mut tx, 0, 1, R(v));
    }
    send(&mut tx, 1, 1, R(10));
    for v in 11..20 {
        send(&mut tx, 2, 1, R(v));
    }
    let got = take_all(&mut rx);
    assert_eq!(of(&got, 1), (0..20).collect::<Vec<_>>());
    let stamps: Vec<(u64, usize)> = got.iter().map(|e| (e.0, e.2.len())).collect();
    // One entry for the first message, a run for the next nine; stamp 1 alone (it ends the
    // run); stamp 2 opens a run at once (same actor, and the shard is behind).
    assert_eq!(stamps, [(0, 1), (0, 9), (1, 1), (2, 9)]);
    // Fill the ring with messages to alternating actors (no runs), so the next go to the
    // overflow queue: a message for the open run's actor must not be appended to it then.
    tx.state.behind.store(true, Ordering::Relaxed);
    send(&mut tx, 4, 5, R(0));
    send(&mut tx, 4, 5, R(1)); // opens a run for actor 5
    let mut sent6 = 0;
    while !tx.state.overflowing.load(Ordering::Relaxed) {
        send(&mut tx, 4, 6 + sent6 % 2, R(sent6));
        sent6 += 1;
    }
    send(&mut tx, 4, 5, R(2));
    let got = take_all(&mut rx);
    assert_eq!(of(&got, 5), [0, 1, 2]);
    assert_eq!(got.last().map(|e| (e.1, e.2.clone())), Some((5, vec![2])), "queued last, taken last");
}

/// Counts drops, so a test can see each message dropped once.
struct D(#[allow(dead_code)] std::sync::Arc<()>);
impl Deliver for D {
    fn deliver(self, _: &Shard, _: u64) {}
    const RUNS: bool = true;
}

#[test]
fn closing_a_lane_counts_every_message_of_its_runs_once_and_drops_each_once() {
    let token = std::sync::Arc::new(());
    let (mut tx, mut rx) = behind_lane();
    for _ in 0..10 {
        send(&mut tx, 0, 1, D(token.clone()));
    }
    // The shard takes what is there (a run's part among it), and the sender appends more.
    let mut out = Vec::new();
    rx.take_below_flat(u64::MAX, &mut out);
    let taken: usize = out.iter().map(|(_, p)| p.messages()).sum();
    assert_eq!(taken, 10);
    drop(out);
    for _ in 0..5 {
        send(&mut tx, 0, 1, D(token.clone()));
    }
    let dead = rx.close(drop);
    assert_eq!(dead, 5, "the run's rest, taken apart at close");
    // Pushes that read the flag before the close: into the run after its last take, and into
    // a new run whose announcement the shard never took.
    tx.state.closed.store(false, Ordering::Relaxed);
    for _ in 0..3 {
        send(&mut tx, 0, 1, D(token.clone()));
    }
    for _ in 0..4 {
        send(&mut tx, 0, 2, D(token.clone()));
    }
    assert_eq!(tx.take_undelivered(), None, "the shard still holds its end");
    drop(rx);
    assert_eq!(tx.take_undelivered(), Some(3 + 4), "counted once each");
    drop(tx);
    assert_eq!(std::sync::Arc::strong_count(&token), 1, "every message dropped once");
}

#[test]
fn a_gone_senders_run_is_delivered_before_its_lane_is_dropped() {
    let (mut tx, mut rx) = behind_lane();
    for v in 0..5 {
        send(&mut tx, 0, 1, R(v));
    }
    assert_eq!(of(&take_all(&mut rx), 1), [0, 1, 2, 3, 4]);
    for v in 5..8 {
        send(&mut tx, 0, 1, R(v));
    }
    tx.leave();
    drop(tx);
    assert!(!rx.is_finished(), "the run still holds three");
    assert_eq!(of(&take_all(&mut rx), 1), [5, 6, 7]);
    assert!(rx.is_finished());
}

/// A run's buffer, once the run is done, is kept for the sender's next run of its size: the
/// `SPARES` newest per lane, so that a long stream, whose runs grow, keeps its largest; such a
/// run takes it instead of new memory, and the messages that travel in it arrive intact.
#[test]
fn the_buffers_of_finished_runs_are_kept_for_the_next_runs() {
    use super::run::SPARES;
    let kept = |tx: &LaneTx| tx.state.runs.kept::<R>();
    let (mut tx, mut rx) = behind_lane();
    // The first message goes in the ring, then runs of 32 and 64 fill up and one of 128 takes
    // the rest; another actor's message ends it.
    let stream = 0..1 + 32 + 64 + 10;
    for v in stream.clone() {
        send(&mut tx, 0, 1, R(v));
    }
    send(&mut tx, 0, 2, R(0));
    let got = take_all(&mut rx);
    assert_eq!(of(&got, 1), stream.clone().collect::<Vec<_>>());
    assert_eq!(kept(&tx), [64, 128], "the newest {SPARES} runs' buffers are kept");
    // A new stream: its first run (32) finds no buffer of its size, its next two (64, 128)
    // take the kept ones.
    tx.state.behind.store(true, Ordering::Relaxed);
    let stream = 200..200 + 1 + 32;
    for v in stream.clone() {
        send(&mut tx, 0, 1, R(v));
    }
    assert_eq!(kept(&tx), [64, 128]);
    let more = stream.end..stream.end + 64 + 1;
    for v in more.clone() {
        send(&mut tx, 0, 1, R(v));
    }
    assert!(kept(&tx).is_empty(), "the runs of 64 and 128 took the kept buffers");
    assert_eq!(of(&take_all(&mut rx), 1), (stream.start..more.end).collect::<Vec<_>>());
    // However many runs end, a lane keeps at most `SPARES` buffers.
    for round in 0..4 {
        for v in 0..40 {
            send(&mut tx, 0, 1, R(v));
        }
        send(&mut tx, 0, 2, R(round));
        take_all(&mut rx);
        tx.state.behind.store(true, Ordering::Relaxed);
    }
    assert_eq!(kept(&tx).len(), SPARES);
}

/// After a take of few messages from an open run, the shard's passes leave the run's count
/// alone for a few looks (the sender keeps its line), then take the rest without the sender
/// doing anything more; the look that decides whether the shard may park never skips it, and
/// after a take of many the next look reads the count.
#[test]
fn after_a_small_take_the_passes_skip_the_runs_count_for_a_few_looks_but_parking_never_does() {
    use super::run::{FEW, QUIET_LOOKS};
    let (mut tx, mut rx) = behind_lane();
    for v in 0..3 {
        send(&mut tx, 0, 1, R(v));
    }
    assert_eq!(of(&take_all(&mut rx), 1), [0, 1, 2]);
    assert!(rx.run.is_some(), "a run is open");
    send(&mut tx, 0, 1, R(3));
    assert!(rx.has_next() && !rx.needs_pass(), "right after a small take, the pass leaves the run alone");
    for look in 1..QUIET_LOOKS {
        assert!(rx.has_next(), "look {look}: the exact look sees the message");
        assert!(!rx.needs_pass(), "look {look}: the pass leaves the run alone");
    }
    assert!(rx.needs_pass(), "the quiet looks are over");
    assert_eq!(of(&take_all(&mut rx), 1), [3]);
    // A take of many from the open run: the next look reads the count. (Another actor's
    // message ends the run; the next stream goes one message in the ring, then a run of 32,
    // full, then one of 64 that holds the rest.)
    send(&mut tx, 0, 2, R(0));
    take_all(&mut rx);
    tx.state.behind.store(true, Ordering::Relaxed);
    let stream = 100..100 + 1 + 32 + FEW as u64;
    for v in stream.clone() {
        send(&mut tx, 0, 1, R(v));
    }
    assert_eq!(of(&take_all(&mut rx), 1), stream.clone().collect::<Vec<_>>());
    let next = stream.end;
    send(&mut tx, 0, 1, R(next));
    assert!(rx.is_due(), "after a take of many, the next look reads the count");
    assert_eq!(of(&take_all(&mut rx), 1), [next]);
    // Anything else in the lane is seen at once, and the run's rest comes first.
    send(&mut tx, 0, 1, R(next + 1));
    send(&mut tx, 0, 2, R(1));
    assert!(rx.needs_pass(), "a message in the ring ends the quiet");
    let got = take_all(&mut rx);
    assert_eq!((of(&got, 1), of(&got, 2)), (vec![next + 1], vec![1]));
}

/// A run's announcement is never taken alone (`take_lone`): it is held back in its lane, and
/// the rounds open the run and hand over what it holds.
#[test]
fn a_runs_announcement_is_left_to_the_rounds() {
    let (mut tx, rx) = behind_lane();
    let (reg, mut lanes) = (LaneRegistry::default(), vec![rx]);
    send(&mut tx, 0, 1, R(1));
    let first = take_lone(&reg, &mut lanes, || false).expect("a lone message");
    assert_eq!(values(first), [1]);
    // The take of one cleared `behind`: the stream's next message would go into the ring.
    tx.state.behind.store(true, Ordering::Relaxed);
    send(&mut tx, 0, 1, R(2));
    send(&mut tx, 0, 1, R(3));
    assert!(take_lone(&reg, &mut lanes, || false).is_none(), "the run opens in the rounds");
    let (mut out, mut due) = (Vec::new(), Vec::new());
    take_due_flat(&reg, &mut lanes, &mut out, &mut due, |_| {});
    let got: Vec<u64> = due.into_iter().flat_map(|(_, p)| values(p)).collect();
    assert_eq!(got, [2, 3]);
}
