//! With the `tracing-spans` feature, every message a handler takes runs inside a `receive`
//! span that names the actor and the message type, behaviours included (its own test binary:
//! it installs the process's `tracing` subscriber).

mod common;

use common::{capture_logs, WAIT};
use corelane::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards};

enum Msg {
    Note,
    Switch,
    Done(Reply<()>),
}

/// Logs inside its handler; on `Switch` goes on in a behaviour that logs too.
struct Noter;
impl Noter {
    fn switched(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        tracing::info!("in a behaviour");
        if let Msg::Done(r) = m {
            r.send(());
        }
        Ok(())
    }
}
impl Actor for Noter {
    type Msg = Msg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::Note => tracing::info!("in receive"),
            Msg::Switch => ctx.become_behavior(Noter::switched),
            Msg::Done(r) => r.send(()),
        }
        Ok(())
    }
}

#[test]
fn every_message_runs_in_a_receive_span_naming_the_actor_and_the_message_type() {
    let log = capture_logs(tracing::Level::TRACE);
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap();
    let a = rt.spawn(|| Noter).unwrap();
    a.tell(Msg::Note).unwrap();
    a.tell(Msg::Switch).unwrap();
    a.tell(Msg::Note).unwrap();
    a.ask(Msg::Done).timeout(WAIT).wait().unwrap();
    rt.shutdown().unwrap();
    let text = log.text();
    let in_span = |what: &str| {
        text.lines().find(|l| l.contains(what)).map(|l| {
            l.contains("receive{")
                && l.contains(&format!("actor={}", a.id()))
                && l.contains("tracing_spans::Msg")
        })
    };
    assert_eq!(in_span("in receive"), Some(true), "receive runs in the span: {text}");
    assert_eq!(in_span("in a behaviour"), Some(true), "so does a behaviour: {text}");
}
