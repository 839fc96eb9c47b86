//! The testkit's probe: every expectation, and that a failed one says what arrived instead.

use corelane::testkit::TestKit;
use corelane::{Actor, ActorError, Ctx, Reply, StopReason};
use std::time::Duration;

/// Answers the sender with the message doubled; `Get` is an ask.
struct Doubler;
enum Msg {
    Num(u32),
    Get(Reply<u32>),
}
impl Actor for Doubler {
    type Msg = Msg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::Num(n) => {
                if let Some(s) = ctx.sender() {
                    ctx.tell_any(&s, n * 2).expect("send");
                }
            }
            Msg::Get(r) => r.send(42),
        }
        Ok(())
    }
}

#[test]
fn every_expectation_passes_on_what_it_expects() {
    let kit = TestKit::new();
    let p = kit.probe();
    let d = kit.spawn(|| Doubler).unwrap();
    p.tell(&d, Msg::Num(1));
    p.expect_message(2u32);
    p.tell(&d, Msg::Num(2));
    p.expect_message_within(Duration::from_secs(1), 4u32);
    p.tell(&d, Msg::Num(3));
    assert_eq!(p.expect_any().downcast::<u32>().ok(), Some(6));
    p.tell(&d, Msg::Num(4));
    assert!(p.expect_any_within(Duration::from_secs(1)).is::<u32>());
    p.tell(&d, Msg::Num(5));
    assert_eq!(p.expect_of_type::<u32>(), 10);
    p.tell(&d, Msg::Num(6));
    assert_eq!(p.expect_of_type_within::<u32>(Duration::from_secs(1)), 12);
    assert_eq!(p.ask(&d, Msg::Get), 42);
    p.expect_no_message(Duration::from_millis(50));
    let typed = p.actor_ref::<&'static str>();
    typed.tell("via a typed ref").unwrap();
    p.expect_message("via a typed ref");
    p.any_ref().tell(7u8).unwrap();
    p.expect_message(7u8);
    p.watch(&d);
    d.stop().wait().unwrap();
    assert_eq!(p.expect_terminated(&d), StopReason::Stopped);
}

#[test]
fn an_unwatched_actor_stops_unreported() {
    let kit = TestKit::new();
    let p = kit.probe();
    let (d, other) = (kit.spawn(|| Doubler).unwrap(), kit.spawn(|| Doubler).unwrap());
    p.watch(&d);
    p.watch(&other);
    p.unwatch(&d);
    d.stop().wait().unwrap();
    other.stop().wait().unwrap();
    // Only the one still watched is reported (in the order they stopped, d's would be first).
    assert_eq!(p.expect_terminated(&other), StopReason::Stopped);
    p.expect_no_message(Duration::from_millis(50));
}

#[test]
#[should_panic(expected = "expected 3, got 2")]
fn a_wrong_message_is_reported_with_what_arrived() {
    let kit = TestKit::new();
    let p = kit.probe();
    let d = kit.spawn(|| Doubler).unwrap();
    p.tell(&d, Msg::Num(1));
    p.expect_message(3u32);
}

#[test]
#[should_panic(expected = "expected 5 within 50ms, got nothing")]
fn a_missing_message_is_reported() {
    let kit = TestKit::new();
    kit.probe().expect_message_within(Duration::from_millis(50), 5u32);
}

#[test]
#[should_panic(expected = "expected no message for 200ms, got u32")]
fn an_unexpected_message_is_reported() {
    let kit = TestKit::new();
    let p = kit.probe();
    let d = kit.spawn(|| Doubler).unwrap();
    p.tell(&d, Msg::Num(1));
    p.expect_no_message(Duration::from_millis(200));
}

#[test]
#[should_panic(expected = "expected a u64, got")]
fn a_message_of_another_type_is_reported() {
    let kit = TestKit::new();
    let p = kit.probe();
    let d = kit.spawn(|| Doubler).unwrap();
    p.tell(&d, Msg::Num(1));
    p.expect_of_type::<u64>();
}
