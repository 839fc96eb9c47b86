//! The event stream: every event type observed, filters, actor and channel subscribers,
//! unsubscribe.

use corelane::testkit::TestKit;
use corelane::{
    Actor, ActorError, ActorRef, Ctx, DeadLetterReason, Directive, Event, EventKind, Idle, Reply, Runtime,
    Shards, SpawnOptions, StopReason, Supervisor,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

struct Kid;
impl Actor for Kid {
    type Msg = bool;
    fn receive(&mut self, _: &mut Ctx<Self>, fail: bool) -> Result<(), ActorError> {
        if fail {
            Err(ActorError::msg("asked to fail"))
        } else {
            Ok(())
        }
    }
}

/// Spawns one child on start, hands it out.
struct Mom(Option<ActorRef<bool>>);
impl Actor for Mom {
    type Msg = Reply<ActorRef<bool>>;
    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        self.0 = Some(ctx.spawn_child(|| Kid)?);
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<ActorRef<bool>>) -> Result<(), ActorError> {
        r.send(self.0.clone().unwrap());
        Ok(())
    }
}

#[test]
fn every_event_type_is_published() {
    // Top-level failures escalate to nobody: the actor is left suspended.
    let kit = TestKit::with_runtime(
        Runtime::builder()
            .shards(Shards::Count(2))
            .idle(Idle::Park)
            .supervisor(Supervisor::one_for_one().directive(Directive::Escalate)),
    );
    let ev = kit.event_probe(|_| true);
    let mom = kit.spawn(|| Mom(None)).unwrap();
    let kid = mom.ask(|r| r).timeout(WAIT).wait().unwrap();
    // Mom's start, the child's creation and the kid's start (ordered per shard; the probe's
    // own actor may start in between).
    let want = [
        Event::ActorStarted { id: mom.id() },
        Event::ActorChildCreated { parent: mom.id(), child: kid.id() },
        Event::ActorStarted { id: kid.id() },
    ];
    let mut seen = Vec::new();
    while !want.iter().all(|w| seen.contains(w)) {
        assert!(seen.len() < 6, "missing some of {want:?} in {seen:?}");
        seen.push(ev.expect_of_type::<Event>());
    }
    kid.tell(true).unwrap();
    ev.expect_message(Event::Deadletter {
        target: Some(kid.id()),
        message_type: "bool",
        reason: DeadLetterReason::HandlerFailed,
        count: 1,
    });
    ev.expect_message(Event::ActorRestarted { id: kid.id(), restarts: 1 });
    ev.expect_message(Event::ActorStarted { id: kid.id() });

    let loner = kit.spawn(|| Kid).unwrap();
    ev.expect_message(Event::ActorStarted { id: loner.id() });
    loner.tell(true).unwrap();
    ev.expect_message(Event::Deadletter {
        target: Some(loner.id()),
        message_type: "bool",
        reason: DeadLetterReason::HandlerFailed,
        count: 1,
    });
    match ev.expect_of_type::<Event>() {
        Event::ActorSuspended { id, failure } => {
            assert_eq!(id, loner.id());
            assert!(failure.contains("asked to fail"), "{failure}");
        }
        e => panic!("unexpected {e:?}"),
    }
    loner.kill().timeout(WAIT).wait().unwrap();
    ev.expect_message(Event::ActorStopped { id: loner.id(), reason: StopReason::Killed });
    loner.tell(false).unwrap();
    ev.expect_message(Event::Deadletter {
        target: Some(loner.id()),
        message_type: "bool",
        reason: DeadLetterReason::ActorStopped,
        count: 1,
    });

    let idle =
        kit.spawn_with(SpawnOptions::new().passivate_after(Duration::from_millis(50)), || Kid).unwrap();
    ev.expect_message(Event::ActorStarted { id: idle.id() });
    ev.expect_message(Event::ActorPassivated { id: idle.id() });
    ev.expect_message(Event::ActorStopped { id: idle.id(), reason: StopReason::Passivated });
}

/// Takes events as messages.
struct Listener(ActorRef<String>);
enum ListenerMsg {
    Ev(Event),
}
impl From<Event> for ListenerMsg {
    fn from(e: Event) -> Self {
        ListenerMsg::Ev(e)
    }
}
impl Actor for Listener {
    type Msg = ListenerMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, ListenerMsg::Ev(e): ListenerMsg) -> Result<(), ActorError> {
        let _ = self.0.tell(format!("{:?}", e.kind()));
        Ok(())
    }
}

#[test]
fn filters_actor_and_channel_subscribers_and_unsubscribe() {
    let kit = TestKit::new();
    let p = kit.probe();
    let out = p.actor_ref::<String>();
    let listener = kit.spawn(move || Listener(out.clone())).unwrap();
    let sub = kit.subscribe(|e| e.kind() == EventKind::ActorStopped, &listener);
    let (chan_sub, rx) = kit.subscribe_channel(|e| e.kind() == EventKind::ActorStarted);
    let a = kit.spawn(|| Kid).unwrap();
    // The listener and the probe's adapter, spawned just before, may start after the
    // subscription too.
    let mut started = Vec::new();
    while !started.contains(&Event::ActorStarted { id: a.id() }) {
        assert!(started.len() < 3, "{started:?}");
        started.push(rx.recv_timeout(WAIT).unwrap());
    }
    a.stop().timeout(WAIT).wait().unwrap();
    p.expect_message("ActorStopped".to_string());
    assert!(sub.unsubscribe());
    assert!(chan_sub.unsubscribe());
    let b = kit.spawn(|| Kid).unwrap();
    b.stop().timeout(WAIT).wait().unwrap();
    p.expect_no_message(Duration::from_millis(100));
    // Only events from before the unsubscribe can be in the channel.
    while let Ok(e) = rx.try_recv() {
        assert_ne!(e, Event::ActorStarted { id: b.id() });
    }
}

#[test]
fn dropping_a_subscription_ends_it_and_a_detached_one_lasts_as_long_as_its_receiver() {
    let kit = TestKit::new();
    let (dropped, ended) = kit.subscribe_channel(|e| e.kind() == EventKind::ActorStarted);
    let (detached, lasting) = kit.subscribe_channel(|e| e.kind() == EventKind::ActorStarted);
    drop(dropped);
    detached.detach();
    let a = kit.spawn(|| Kid).unwrap();
    // The ended subscription's channel closed with it; the detached one still delivers.
    assert!(matches!(ended.recv_timeout(WAIT), Err(std::sync::mpsc::RecvTimeoutError::Disconnected)));
    loop {
        if lasting.recv_timeout(WAIT).unwrap() == (Event::ActorStarted { id: a.id() }) {
            break;
        }
    }
}

#[test]
fn a_message_an_actor_does_not_handle_is_a_counted_dead_letter_and_the_actor_goes_on() {
    struct Picky;
    impl Actor for Picky {
        type Msg = u32;
        fn receive(&mut self, ctx: &mut Ctx<Self>, n: u32) -> Result<(), ActorError> {
            if n % 2 == 1 {
                ctx.unhandled();
            }
            Ok(())
        }
    }
    let kit = TestKit::new();
    let (_sub, rx) = kit.subscribe_channel(|e| e.kind() == EventKind::Deadletter);
    let a = kit.spawn(|| Picky).unwrap();
    for n in 0..4 {
        a.tell(n).unwrap();
    }
    for _ in 0..2 {
        let e = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(
            e,
            Event::Deadletter {
                target: Some(a.id()),
                message_type: "u32",
                reason: corelane::DeadLetterReason::Unhandled,
                count: 1
            }
        );
    }
    assert_eq!(kit.metrics().dead_letters_for(corelane::DeadLetterReason::Unhandled), 2);
    assert!(a.is_alive());
}
