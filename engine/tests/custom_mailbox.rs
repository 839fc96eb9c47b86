//! Custom mailboxes (`MailboxKind::custom`): the user's queue decides order, conflation and
//! bounds; the runtime keeps senders, unstash order, the count, and fences the queue's code
//! (re-entry deferred, panics contained to the actor) on every path a message arrives by: a
//! same-shard tell, another shard's ring, a plain thread.

mod common;

use common::burst::{setup, Driver, How};
use common::WAIT;
use corelane::testkit::{Probe, TestKit};
use corelane::{
    Actor, ActorError, ActorRef, Ctx, DeadLetterReason, Directive, Event, MailboxKind, MailboxQueue, Phase,
    Placement, Push, Queued, Runtime, Shards, SpawnError, SpawnOptions, Supervisor,
};
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// First in, first out (what the default mailbox does), as a user would write it.
#[derive(Default)]
struct Fifo(VecDeque<Queued<u32>>);
impl MailboxQueue<u32> for Fifo {
    fn push(&mut self, item: Queued<u32>) -> Push<u32> {
        self.0.push_back(item);
        Push::Queued
    }
    fn pop(&mut self) -> Option<Queued<u32>> {
        self.0.pop_front()
    }
}

/// Last in, first out.
#[derive(Default)]
struct Lifo(Vec<Queued<u32>>);
impl MailboxQueue<u32> for Lifo {
    fn push(&mut self, item: Queued<u32>) -> Push<u32> {
        self.0.push(item);
        Push::Queued
    }
    fn pop(&mut self) -> Option<Queued<u32>> {
        self.0.pop()
    }
}

/// Keeps only the newest message per key (`m / 100`), in the order keys first arrived.
#[derive(Default)]
struct Conflating(VecDeque<Queued<u32>>);
impl MailboxQueue<u32> for Conflating {
    fn push(&mut self, item: Queued<u32>) -> Push<u32> {
        let key = item.msg() / 100;
        match self.0.iter_mut().find(|q| q.msg() / 100 == key) {
            Some(slot) => Push::Dropped(std::mem::replace(slot, item)),
            None => {
                self.0.push_back(item);
                Push::Queued
            }
        }
    }
    fn pop(&mut self) -> Option<Queued<u32>> {
        self.0.pop_front()
    }
}

/// Refuses what does not fit.
struct Capped(VecDeque<Queued<u32>>, usize);
impl MailboxQueue<u32> for Capped {
    fn push(&mut self, item: Queued<u32>) -> Push<u32> {
        if self.0.len() == self.1 {
            return Push::Refused(item);
        }
        self.0.push_back(item);
        Push::Queued
    }
    fn pop(&mut self) -> Option<Queued<u32>> {
        self.0.pop_front()
    }
}

/// A FIFO whose `push` panics on one message, and whose `pop` panics once when another one is
/// next.
struct Faulty {
    q: VecDeque<Queued<u32>>,
    push_panics_on: u32,
    pop_panics_on: u32,
    popped_panic: bool,
}
impl Faulty {
    fn new(push_panics_on: u32, pop_panics_on: u32) -> Self {
        Self { q: VecDeque::new(), push_panics_on, pop_panics_on, popped_panic: false }
    }
}
impl MailboxQueue<u32> for Faulty {
    fn push(&mut self, item: Queued<u32>) -> Push<u32> {
        if *item.msg() == self.push_panics_on {
            panic!("push of {}", item.msg());
        }
        self.q.push_back(item);
        Push::Queued
    }
    fn pop(&mut self) -> Option<Queued<u32>> {
        if self.q.front().is_some_and(|f| *f.msg() == self.pop_panics_on) && !self.popped_panic {
            self.popped_panic = true;
            panic!("pop of {}", self.pop_panics_on);
        }
        self.q.pop_front()
    }
}

/// Reports `(message, came with a sender)` for each message it handles. Optionally: tells
/// itself `bounce` when it handles `bounce_on`; stashes messages below `stash_below` until
/// `unstash_on` comes; kills itself on `kill_on`.
#[derive(Clone, Default)]
struct Script {
    bounce_on: Option<(u32, u32)>,
    stash_below: u32,
    unstash_on: u32,
    kill_on: Option<u32>,
}
struct Recorder {
    out: ActorRef<(u32, bool)>,
    script: Script,
    unstashed: bool,
}
impl Actor for Recorder {
    type Msg = u32;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: u32) -> Result<(), ActorError> {
        let s = &self.script;
        if m < s.stash_below && !self.unstashed {
            ctx.stash(m).map_err(|_| ActorError::msg("stash full"))?;
            return Ok(());
        }
        let _ = self.out.tell((m, ctx.sender().is_some()));
        if s.bounce_on.is_some_and(|(on, _)| on == m) {
            let (_, bounce) = s.bounce_on.unwrap();
            ctx.tell(&ctx.myself(), bounce).unwrap();
        }
        if m == s.unstash_on && s.stash_below > 0 {
            self.unstashed = true;
            ctx.unstash_all();
        }
        if s.kill_on == Some(m) {
            // Immediate: the queued messages are not handled (the waiter is not needed).
            drop(ctx.myself().kill());
        }
        Ok(())
    }
}

type DriverRef = ActorRef<(ActorRef<u32>, Vec<u32>, How)>;

/// A recorder with `kind` on shard 0, and a driver on shard 0 that sends bursts to it.
fn recorder(kit: &TestKit, kind: MailboxKind, script: Script) -> (Probe, ActorRef<u32>, DriverRef, Probe) {
    let out = kit.probe();
    let o = out.actor_ref::<(u32, bool)>();
    let opts = SpawnOptions::new().placement(Placement::Shard(0)).mailbox(kind);
    let target = kit
        .spawn_with(opts, move || Recorder { out: o.clone(), script: script.clone(), unstashed: false })
        .unwrap();
    let done = kit.probe();
    let (report, finished) = (done.actor_ref(), done.actor_ref());
    let driver = kit.spawn_on(0, move || Driver {
        report: report.clone(),
        done: finished.clone(),
        _t: Default::default(),
    });
    (out, target, driver.unwrap(), done)
}

fn records(out: &Probe, n: usize) -> Vec<(u32, bool)> {
    (0..n).map(|_| out.expect_of_type::<(u32, bool)>()).collect()
}

#[test]
fn a_conflating_queue_keeps_the_newest_update_per_key_on_every_path() {
    for driver_shard in [0, 1] {
        let s = setup(MailboxKind::custom(Conflating::default), driver_shard);
        s.burst([101, 201, 102, 301, 103, 202], How::Tell);
        assert_eq!(s.outcome(3, How::Tell).0, vec![103, 202, 301], "driver on shard {driver_shard}");
        s.expect_dead_letters(3, DeadLetterReason::MailboxFull);
        s.expect_nothing_else();
        assert_eq!(s.dead_letters(), 3, "the replaced updates count in the actor's metrics");
    }
}

#[test]
fn messages_leave_the_queue_only_when_handled_and_keep_their_senders() {
    let kit = TestKit::new();
    let script = Script { bounce_on: Some((5, 100)), ..Default::default() };
    let (out, target, driver, _done) = recorder(&kit, MailboxKind::custom(Lifo::default), script);
    driver.tell((target.clone(), vec![1, 2, 3, 4, 5], How::Tell)).unwrap();
    // Last in, first out; 100, sent by the actor to itself while it handled 5, arrives after
    // 4 was queued and still goes first: nothing was taken from the queue ahead of time.
    let got = records(&out, 6);
    assert_eq!(got, vec![(5, false), (100, true), (4, false), (3, false), (2, false), (1, false)]);
    // A sender given by a probe travels through the user's queue too.
    out.tell(&target, 7);
    assert_eq!(out.expect_of_type::<(u32, bool)>(), (7, true));
}

#[test]
fn unstashed_messages_go_ahead_of_the_queue_in_their_order() {
    let kit = TestKit::new();
    let script = Script { stash_below: 10, unstash_on: 50, ..Default::default() };
    let (out, target, driver, _done) = recorder(&kit, MailboxKind::custom(Fifo::default), script);
    driver.tell((target, vec![1, 2, 3, 50, 60, 70], How::Tell)).unwrap();
    let got: Vec<u32> = records(&out, 6).into_iter().map(|(m, _)| m).collect();
    assert_eq!(got, vec![50, 1, 2, 3, 60, 70]);
}

#[test]
fn a_queue_that_refuses_gives_the_message_back_to_a_same_shard_try_tell() {
    let s = setup(MailboxKind::custom(|| Capped(VecDeque::new(), 4)), 0);
    s.burst(1..=10, How::TryTell);
    assert_eq!(s.outcome(4, How::TryTell), (vec![1, 2, 3, 4], Some(vec![5, 6, 7, 8, 9, 10])));
    s.expect_nothing_else();
    assert_eq!(s.dead_letters(), 0, "given back, so not dead letters");
    // A plain tell cannot take it back: a dead letter.
    s.burst(11..=16, How::Tell);
    assert_eq!(s.outcome(4, How::Tell).0, vec![11, 12, 13, 14]);
    s.expect_dead_letters(2, DeadLetterReason::MailboxFull);
}

#[test]
fn a_queue_for_another_type_or_a_panicking_factory_fails_the_spawn() {
    let kit = TestKit::new();
    let out = kit.probe();
    let o = out.actor_ref::<(u32, bool)>();
    let make = move || Recorder { out: o.clone(), script: Script::default(), unstashed: false };
    #[derive(Default)]
    struct Other(Vec<Queued<u64>>);
    impl MailboxQueue<u64> for Other {
        fn push(&mut self, item: Queued<u64>) -> Push<u64> {
            self.0.push(item);
            Push::Queued
        }
        fn pop(&mut self) -> Option<Queued<u64>> {
            self.0.pop()
        }
    }
    match kit.spawn_with(SpawnOptions::new().mailbox(MailboxKind::custom(Other::default)), make.clone()) {
        Err(SpawnError::MailboxType { actor, mailbox }) => assert_eq!((actor, mailbox), ("u32", "u64")),
        other => panic!("expected MailboxType, got {other:?}"),
    }
    // Spawned from a plain thread the actor is built on its shard after `spawn` returns (a
    // spawn from the shard itself gets `FactoryPanicked`): it never starts, and its watcher is
    // told it is gone.
    let kind = MailboxKind::custom(|| -> Fifo { panic!("no queue today") });
    let broken = kit.spawn_with(SpawnOptions::new().mailbox(kind), make.clone()).unwrap();
    let watcher = kit.probe();
    watcher.watch(&broken);
    watcher.expect_terminated(&broken);
    out.expect_no_message(std::time::Duration::from_millis(20));
    // The runtime goes on.
    let r = kit.spawn(make).unwrap();
    r.tell(9).unwrap();
    assert_eq!(out.expect_of_type::<(u32, bool)>(), (9, false));
}

/// A two-shard kit whose root supervisor reports each failure's phase and restarts.
fn supervised_kit() -> (TestKit, mpsc::Receiver<(Phase, bool)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let sup = Supervisor::one_for_one().decider(move |f| {
        let _ = tx.lock().unwrap().send((f.phase(), f.is_panic()));
        Directive::Restart
    });
    (TestKit::with_runtime(Runtime::builder().shards(Shards::Count(2)).supervisor(sup)), rx)
}

#[test]
fn a_panicking_push_loses_that_message_and_fails_the_actor_not_the_shard() {
    // From a plain thread (the injector), the target's own shard and the other shard's ring.
    for from in [None, Some(0), Some(1)] {
        let (kit, phases) = supervised_kit();
        let failed = kit
            .event_probe(|e| matches!(e, Event::Deadletter { reason: DeadLetterReason::HandlerFailed, .. }));
        let out = kit.probe();
        let o = out.actor_ref::<(u32, bool)>();
        let opts = SpawnOptions::new()
            .placement(Placement::Shard(0))
            .mailbox(MailboxKind::custom(|| Faulty::new(13, 0)));
        let target = kit
            .spawn_with(opts, move || Recorder {
                out: o.clone(),
                script: Script::default(),
                unstashed: false,
            })
            .unwrap();
        let burst: Vec<u32> = (1..=20).collect();
        match from {
            None => burst.iter().for_each(|&m| target.tell(m).unwrap()),
            Some(shard) => {
                let done = kit.probe();
                let (report, finished) = (done.actor_ref(), done.actor_ref());
                let driver = kit
                    .spawn_on(shard, move || Driver {
                        report: report.clone(),
                        done: finished.clone(),
                        _t: Default::default(),
                    })
                    .unwrap();
                driver.tell((target.clone(), burst, How::Tell)).unwrap();
                done.expect_of_type::<common::burst::BurstDone>();
            }
        }
        let mut got: Vec<u32> = records(&out, 19).into_iter().map(|(m, _)| m).collect();
        got.sort_unstable();
        let want: Vec<u32> = (1..=20).filter(|&m| m != 13).collect();
        assert_eq!(got, want, "every other message is handled (from {from:?})");
        match failed.expect_of_type::<Event>() {
            Event::Deadletter { target: t, count: 1, .. } => assert_eq!(t, Some(target.id())),
            other => panic!("{other:?}"),
        }
        assert_eq!(phases.recv_timeout(WAIT).unwrap(), (Phase::Mailbox, true));
        assert!(target.is_alive(), "restarted by its supervisor");
        target.tell(21).unwrap();
        assert_eq!(out.expect_of_type::<(u32, bool)>(), (21, false));
    }
}

#[test]
fn a_panicking_pop_fails_the_actor_and_loses_nothing() {
    let (kit, phases) = supervised_kit();
    let out = kit.probe();
    let o = out.actor_ref::<(u32, bool)>();
    let opts = SpawnOptions::new()
        .placement(Placement::Shard(0))
        .mailbox(MailboxKind::custom(|| Faulty::new(0, 13)));
    let target = kit
        .spawn_with(opts, move || Recorder { out: o.clone(), script: Script::default(), unstashed: false })
        .unwrap();
    (1..=20).for_each(|m| target.tell(m).unwrap());
    let got: Vec<u32> = records(&out, 20).into_iter().map(|(m, _)| m).collect();
    assert_eq!(got, (1..=20).collect::<Vec<_>>(), "13 stayed queued through the failure");
    assert_eq!(phases.recv_timeout(WAIT).unwrap(), (Phase::Mailbox, true));
}

/// A FIFO that, for each message under 1 000, tells its own actor that message plus 1 000 from
/// inside `push`.
struct Echoing {
    q: VecDeque<Queued<u32>>,
    me: Arc<OnceLock<ActorRef<u32>>>,
}
impl MailboxQueue<u32> for Echoing {
    fn push(&mut self, item: Queued<u32>) -> Push<u32> {
        let m = *item.msg();
        // The queue is mid-operation: the runtime must not push into it now.
        self.q.push_back(item);
        if m < 1_000 {
            if let Some(me) = self.me.get() {
                me.tell(m + 1_000).unwrap();
            }
        }
        Push::Queued
    }
    fn pop(&mut self) -> Option<Queued<u32>> {
        self.q.pop_front()
    }
}

#[test]
fn a_queue_that_tells_its_own_actor_is_deferred_not_aliased() {
    let kit = TestKit::new();
    let me: Arc<OnceLock<ActorRef<u32>>> = Arc::new(OnceLock::new());
    let m = me.clone();
    let kind = MailboxKind::custom(move || Echoing { q: VecDeque::new(), me: m.clone() });
    let (out, target, driver, _done) = recorder(&kit, kind, Script::default());
    me.set(target.clone()).ok().unwrap();
    driver.tell((target.clone(), (1..=200).collect(), How::Tell)).unwrap();
    (201..=400).for_each(|m| target.tell(m).unwrap());
    let mut got: Vec<u32> = records(&out, 800).into_iter().map(|(m, _)| m).collect();
    got.sort_unstable();
    let want: Vec<u32> = (1..=400).chain(1_001..=1_400).collect();
    assert_eq!(got, want, "each message and its echo handled once");
}

#[test]
fn what_a_killed_actors_queue_still_holds_is_counted_as_dead_letters() {
    let kit = TestKit::new();
    let script = Script { kill_on: Some(1), ..Default::default() };
    let (out, target, driver, _done) = recorder(&kit, MailboxKind::custom(Fifo::default), script);
    let watcher = kit.probe();
    watcher.watch(&target);
    driver.tell((target.clone(), (1..=5).collect(), How::Tell)).unwrap();
    assert_eq!(out.expect_of_type::<(u32, bool)>(), (1, false));
    watcher.expect_terminated(&target);
    out.expect_no_message(std::time::Duration::from_millis(50));
    assert_eq!(kit.runtime().metrics().dead_letters_for(DeadLetterReason::ActorStopped), 4);
}
