//! Mailbox kinds: each overflow policy of a bounded mailbox (what is kept, what becomes a dead
//! letter with which reason, what `Reject` gives back), same-shard and cross-shard; the priority
//! mailbox's order with FIFO ties; a priority ordering of the wrong type refused at spawn.
//!
//! A burst reaches the target's mailbox before the target runs: a driver actor sends it in one
//! turn, on the target's shard (straight into the mailbox) or on the other shard (one flush of
//! the ring, drained whole before any actor runs).

mod common;

use common::burst::{setup, BurstDone, Driver, How, Rejected, Sink};
use corelane::testkit::TestKit;
use corelane::{DeadLetterReason, MailboxKind, Overflow, Placement, SpawnError, SpawnOptions};
use std::time::Duration;

#[test]
fn drop_newest_keeps_the_first_arrivals() {
    let s = setup(MailboxKind::bounded(4, Overflow::DropNewest), 0);
    s.burst(1..=10, How::Tell);
    assert_eq!(s.outcome(4, How::Tell).0, vec![1, 2, 3, 4]);
    s.expect_dead_letters(6, DeadLetterReason::MailboxFull);
    s.expect_nothing_else();
    assert_eq!(s.dead_letters(), 6);
    assert_eq!(s.kit.runtime().metrics().dead_letters_for(DeadLetterReason::MailboxFull), 6);
}

#[test]
fn drop_oldest_keeps_the_last_arrivals() {
    let s = setup(MailboxKind::bounded(4, Overflow::DropOldest), 0);
    s.burst(1..=10, How::Tell);
    assert_eq!(s.outcome(4, How::Tell).0, vec![7, 8, 9, 10]);
    s.expect_dead_letters(6, DeadLetterReason::MailboxFull);
    s.expect_nothing_else();
    assert_eq!(s.dead_letters(), 6);
}

#[test]
fn reject_gives_the_message_back_to_a_same_shard_try_tell() {
    let s = setup(MailboxKind::bounded(4, Overflow::Reject), 0);
    s.burst(1..=10, How::TryTell);
    assert_eq!(s.outcome(4, How::TryTell), (vec![1, 2, 3, 4], Some(vec![5, 6, 7, 8, 9, 10])));
    s.expect_nothing_else();
    // Given back, so not dead letters.
    s.dead.expect_no_message(Duration::from_millis(50));
    assert_eq!(s.dead_letters(), 0);
}

#[test]
fn reject_makes_a_same_shard_tell_a_dead_letter() {
    let s = setup(MailboxKind::bounded(4, Overflow::Reject), 0);
    s.burst(1..=6, How::Tell);
    assert_eq!(s.outcome(4, How::Tell).0, vec![1, 2, 3, 4]);
    s.expect_dead_letters(2, DeadLetterReason::MailboxFull);
    s.expect_nothing_else();
}

#[test]
fn reject_makes_a_cross_shard_send_a_dead_letter() {
    for how in [How::Tell, How::TryTell] {
        let s = setup(MailboxKind::bounded(4, Overflow::Reject), 1);
        s.burst(1..=10, how);
        let (got, back) = s.outcome(4, how);
        assert_eq!(got, vec![1, 2, 3, 4]);
        // From another shard fullness cannot be known: nothing comes back.
        assert!(back.as_ref().is_none_or(|b| b.is_empty()), "{back:?}");
        s.expect_dead_letters(6, DeadLetterReason::MailboxFull);
        s.expect_nothing_else();
        assert_eq!(s.dead_letters(), 6);
    }
}

#[test]
fn cross_shard_overflow_follows_the_policy() {
    let s = setup(MailboxKind::bounded(3, Overflow::DropOldest), 1);
    s.burst(1..=8, How::Tell);
    assert_eq!(s.outcome(3, How::Tell).0, vec![6, 7, 8]);
    s.expect_dead_letters(5, DeadLetterReason::MailboxFull);
    s.expect_nothing_else();
}

#[test]
fn a_bounded_mailbox_takes_what_fits_and_is_reused_after_draining() {
    let s = setup(MailboxKind::bounded(4, Overflow::DropNewest), 0);
    for round in 0..3u32 {
        let first = round * 10 + 1;
        s.burst(first..=first + 3, How::Tell);
        assert_eq!(s.outcome(4, How::Tell).0, (first..=first + 3).collect::<Vec<_>>());
    }
    s.dead.expect_no_message(Duration::from_millis(50));
}

/// (priority, serial): higher priority first.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Job(u8, u32);
impl From<Job> for u32 {
    fn from(j: Job) -> u32 {
        j.1
    }
}

#[test]
fn priority_mailbox_orders_by_priority_with_fifo_ties() {
    let kit = TestKit::new();
    let out = kit.probe();
    let o = out.actor_ref::<Job>();
    let kind = MailboxKind::priority(|a: &Job, b: &Job| a.0.cmp(&b.0));
    let target = kit
        .spawn_with(SpawnOptions::new().placement(Placement::Shard(0)).mailbox(kind), move || {
            Sink(o.clone())
        });
    let target = target.unwrap();
    let (report, done) = (out.actor_ref::<Rejected>(), out.actor_ref::<BurstDone>());
    let driver = kit
        .spawn_on(0, move || Driver::<Job> {
            report: report.clone(),
            done: done.clone(),
            _t: Default::default(),
        })
        .unwrap();
    let prios = [1u8, 0, 2, 1, 0, 2, 1, 3, 0, 1];
    let burst: Vec<Job> = prios.iter().enumerate().map(|(i, &p)| Job(p, i as u32)).collect();
    driver.tell((target.clone(), burst.clone(), How::Tell)).unwrap();
    // Same shard: the driver's report reaches the probe before the target runs.
    out.expect_message(BurstDone);
    let got: Vec<Job> = (0..burst.len()).map(|_| out.expect_of_type::<Job>()).collect();
    let mut want = burst;
    want.sort_by_key(|j| std::cmp::Reverse(j.0)); // stable: FIFO among equals
    assert_eq!(got, want);
    assert_eq!(
        got.iter().map(|j| j.1).collect::<Vec<_>>(),
        vec![7, 2, 5, 0, 3, 6, 9, 1, 4, 8],
        "the expected order, spelled out"
    );
}

#[test]
fn a_priority_ordering_of_another_type_is_refused_at_spawn() {
    let kit = TestKit::new();
    let out = kit.probe();
    let o = out.actor_ref::<u32>();
    let kind = MailboxKind::priority(|a: &u64, b: &u64| a.cmp(b));
    match kit.spawn_with(SpawnOptions::new().mailbox(kind), move || Sink(o.clone())) {
        Err(SpawnError::MailboxType { actor, mailbox }) => {
            assert_eq!((actor, mailbox), ("u32", "u64"));
        }
        other => panic!("expected MailboxType, got {other:?}"),
    }
}
