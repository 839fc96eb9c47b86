//! A burst that reaches a target's mailbox before the target runs: a driver actor sends it in
//! one turn, on the target's shard (straight into the mailbox) or on the other shard (one flush
//! of the ring, drained whole before any actor runs). Used by the mailbox kinds' tests.

use corelane::testkit::{Probe, TestKit};
use corelane::{
    Actor, ActorError, ActorRef, Ctx, DeadLetterReason, Event, MailboxKind, Placement, SpawnOptions,
    TrySendError,
};

use super::WAIT;

/// Passes every message on to the probe.
pub struct Sink<T>(pub ActorRef<T>);
impl<T: Send + 'static> Actor for Sink<T> {
    type Msg = T;
    fn receive(&mut self, _: &mut Ctx<Self>, m: T) -> Result<(), ActorError> {
        let _ = self.0.tell(m);
        Ok(())
    }
}

/// How the driver sends its burst.
#[derive(Clone, Copy)]
pub enum How {
    Tell,
    /// `try_tell`; what comes back is reported as `Rejected`.
    TryTell,
}

#[derive(Debug, PartialEq)]
pub struct Rejected(pub Vec<u32>);

#[derive(Debug, PartialEq)]
pub struct BurstDone;

/// Sends a whole burst to a target in one turn, then reports what `try_tell` gave back.
pub struct Driver<T: 'static> {
    pub report: ActorRef<Rejected>,
    pub done: ActorRef<BurstDone>,
    pub _t: std::marker::PhantomData<T>,
}
impl<T: Send + 'static + Into<u32>> Actor for Driver<T> {
    type Msg = (ActorRef<T>, Vec<T>, How);
    fn receive(&mut self, _: &mut Ctx<Self>, (to, burst, how): Self::Msg) -> Result<(), ActorError> {
        let mut back = Vec::new();
        for m in burst {
            match how {
                How::Tell => to.tell(m).unwrap(),
                How::TryTell => match to.try_tell(m) {
                    Ok(()) => {}
                    Err(TrySendError::Full(m)) => back.push(m.into()),
                    Err(e) => panic!("unexpected {e:?}"),
                },
            }
        }
        if matches!(how, How::TryTell) {
            let _ = self.report.tell(Rejected(back));
        }
        let _ = self.done.tell(BurstDone);
        Ok(())
    }
}

pub struct Setup {
    pub kit: TestKit,
    pub out: Probe,
    pub dead: Probe,
    pub target: ActorRef<u32>,
    pub driver: ActorRef<(ActorRef<u32>, Vec<u32>, How)>,
}

/// A target with `kind` on shard 0 and a driver on `driver_shard`.
pub fn setup(kind: MailboxKind, driver_shard: usize) -> Setup {
    let kit = TestKit::new();
    let out = kit.probe();
    let dead = kit.event_probe(|e| matches!(e, Event::Deadletter { .. }));
    let o = out.actor_ref::<u32>();
    let opts = SpawnOptions::new().placement(Placement::Shard(0)).mailbox(kind);
    let target = kit.spawn_with(opts, move || Sink(o.clone())).unwrap();
    let (report, done) = (out.actor_ref::<Rejected>(), out.actor_ref::<BurstDone>());
    let driver = kit
        .spawn_on(driver_shard, move || Driver {
            report: report.clone(),
            done: done.clone(),
            _t: Default::default(),
        })
        .unwrap();
    Setup { kit, out, dead, target, driver }
}

impl Setup {
    pub fn burst(&self, msgs: impl IntoIterator<Item = u32>, how: How) {
        self.driver.tell((self.target.clone(), msgs.into_iter().collect(), how)).unwrap();
    }
    /// The burst's outcome: `n` messages handled by the target, in order, and what `try_tell`
    /// gave back (`None` for a `tell` burst). The driver's reports and the target's messages
    /// may reach the probe in either order when they come from different shards.
    pub fn outcome(&self, n: usize, how: How) -> (Vec<u32>, Option<Vec<u32>>) {
        let (mut got, mut back, mut done) = (Vec::new(), None, false);
        while got.len() < n || !done || (matches!(how, How::TryTell) && back.is_none()) {
            let r = self.out.expect_any();
            if r.is::<u32>() {
                got.push(r.downcast::<u32>().unwrap());
            } else if r.is::<Rejected>() {
                back = Some(r.downcast::<Rejected>().unwrap().0);
            } else {
                r.downcast::<BurstDone>().unwrap();
                done = true;
            }
        }
        (got, back)
    }
    pub fn expect_dead_letters(&self, n: usize, reason: DeadLetterReason) {
        for _ in 0..n {
            self.dead.expect_message(Event::Deadletter {
                target: Some(self.target.id()),
                message_type: "u32",
                reason,
                count: 1,
            });
        }
    }
    /// Nothing else was queued: a message sent now is the next one the target handles.
    pub fn expect_nothing_else(&self) {
        self.target.tell(999).unwrap();
        self.out.expect_message(999u32);
    }
    pub fn dead_letters(&self) -> u64 {
        self.target.metrics().timeout(WAIT).wait().unwrap().dead_letters
    }
}
