//! A reply of the wrong type through `ctx.sender()` does not vanish: it is a counted
//! `TypeMismatch` dead letter, a `Deadletter` event, and a warning that names both types and
//! who sent it, once per pair of types (its own test binary: it installs the process's
//! `tracing` subscriber).

mod common;

use common::WAIT;
use corelane::testkit::capture_logs;
use corelane::{Actor, ActorError, Ctx, DeadLetterReason, Event, Idle, Runtime, Shards};

/// Answers every number through `ctx.sender()`, with a number: the asker takes text.
struct Doubler;
impl Actor for Doubler {
    type Msg = u32;
    fn receive(&mut self, ctx: &mut Ctx<Self>, n: u32) -> Result<(), ActorError> {
        if let Some(s) = ctx.sender() {
            ctx.tell_any(&s, u64::from(n) * 2).map_err(|_| ActorError::msg("closed"))?;
        }
        Ok(())
    }
}

/// Takes text; on `go`, sends a number to the doubler with itself as the sender.
struct Asker(corelane::ActorRef<u32>);
impl Actor for Asker {
    type Msg = String;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: String) -> Result<(), ActorError> {
        if m == "go" {
            ctx.tell(&self.0, 21).map_err(|_| ActorError::msg("closed"))?;
        }
        Ok(())
    }
}

#[test]
fn a_reply_of_the_wrong_type_is_counted_published_and_said_once() {
    let log = capture_logs(tracing::Level::INFO);
    let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build().unwrap();
    let (_sub, events) = rt.subscribe_channel(|e| matches!(e, Event::Deadletter { .. }));
    let doubler = rt.spawn_on(1, || Doubler).unwrap();
    let doubler_id = doubler.id();
    let asker = rt.spawn_on(0, move || Asker(doubler.clone())).unwrap();
    for round in 1..=3u64 {
        asker.tell("go".to_string()).unwrap();
        match events.recv_timeout(WAIT).expect("a Deadletter event") {
            Event::Deadletter { target, message_type, reason, count } => {
                assert_eq!((target, reason, count), (Some(asker.id()), DeadLetterReason::TypeMismatch, 1));
                assert_eq!(message_type, "u64");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rt.metrics().dead_letters_for(DeadLetterReason::TypeMismatch), round);
    }
    let text = log.text();
    let warnings: Vec<_> = text.lines().filter(|l| l.contains("wrong type")).collect();
    assert_eq!(warnings.len(), 1, "said once per pair of types: {text}");
    let w = warnings[0];
    assert!(w.contains("WARN"), "{w}");
    assert!(w.contains("sent=\"u64\"") || w.contains("sent=u64"), "names the type sent: {w}");
    assert!(w.contains("alloc::string::String"), "names the type the actor takes: {w}");
    assert!(w.contains(&doubler_id.to_string()), "names who sent it: {w}");
    rt.shutdown().unwrap();
}
