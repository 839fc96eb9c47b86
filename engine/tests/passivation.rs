//! Passivation: an idle actor stops after its timeout and publishes `ActorPassivated`; each
//! message resets the timer; the runtime default applies unless the spawn options say no.

use corelane::testkit::TestKit;
use corelane::{
    Actor, ActorError, Ctx, Event, EventKind, Idle, Reply, Runtime, Shards, SpawnOptions, StopReason,
};
use std::time::Duration;

struct Session;
impl Actor for Session {
    type Msg = Reply<()>;
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<()>) -> Result<(), ActorError> {
        r.send(());
        Ok(())
    }
}

fn passivations(kit: &TestKit) -> corelane::testkit::Probe {
    kit.event_probe(|e| matches!(e.kind(), EventKind::ActorPassivated | EventKind::ActorStopped))
}

#[test]
fn an_idle_actor_passivates_and_says_so() {
    let kit = TestKit::new();
    let events = passivations(&kit);
    let a =
        kit.spawn_with(SpawnOptions::new().passivate_after(Duration::from_millis(100)), || Session).unwrap();
    let w = kit.probe();
    w.watch(&a);
    events.expect_message(Event::ActorPassivated { id: a.id() });
    events.expect_message(Event::ActorStopped { id: a.id(), reason: StopReason::Passivated });
    assert_eq!(w.expect_terminated(&a), StopReason::Passivated);
    assert!(!a.is_alive());
}

#[test]
fn activity_resets_the_idle_timer() {
    let kit = TestKit::new();
    let events = passivations(&kit);
    let a =
        kit.spawn_with(SpawnOptions::new().passivate_after(Duration::from_millis(300)), || Session).unwrap();
    // Busy for 6 x 100 ms = 600 ms, twice the timeout: it must not passivate meanwhile.
    for _ in 0..6 {
        a.ask(|r| r).wait().unwrap();
        events.expect_no_message(Duration::from_millis(100));
    }
    assert!(a.is_alive());
    // Idle now: it passivates.
    events.expect_message(Event::ActorPassivated { id: a.id() });
}

#[test]
fn the_runtime_default_applies_unless_the_spawn_options_say_never() {
    let kit = TestKit::with_runtime(
        Runtime::builder()
            .shards(Shards::Count(2))
            .idle(Idle::Park)
            .passivate_after(Duration::from_millis(50)),
    );
    let events = passivations(&kit);
    let keep = kit.spawn_with(SpawnOptions::new().never_passivate(), || Session).unwrap();
    let drop = kit.spawn(|| Session).unwrap();
    events.expect_message(Event::ActorPassivated { id: drop.id() });
    events.expect_message(Event::ActorStopped { id: drop.id(), reason: StopReason::Passivated });
    events.expect_no_message(Duration::from_millis(200));
    assert!(keep.is_alive());
    keep.ask(|r| r).wait().unwrap();
}
