//! With the `tracing-spans` feature, every message a handler takes runs inside a `receive`
//! span that names the actor and the message type, behaviours included; a message that came
//! with a trace context is handled in it (its own test binary: it installs the process's
//! `tracing` subscriber).

mod common;

use common::WAIT;
use corelane::testkit::{capture_logs, Logs};
use corelane::trace::{self, TraceContext};
use corelane::{
    integration, Actor, ActorError, ActorRef, Ctx, Idle, MailboxKind, Overflow, Placement, Reply, Runtime,
    Shards, SpawnOptions,
};

/// The binary's one subscriber, shared by its tests (each looks for its own lines).
fn log() -> &'static Logs {
    static LOG: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOG.get_or_init(|| capture_logs(tracing::Level::TRACE))
}

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
    let log = log();
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

/// Reports the trace context each message is handled in (and whether it had a sender), and
/// logs inside the handler.
struct Tracer(std::sync::mpsc::Sender<(u32, Option<TraceContext>, bool)>);
impl Actor for Tracer {
    type Msg = u32;
    fn receive(&mut self, ctx: &mut Ctx<Self>, n: u32) -> Result<(), ActorError> {
        tracing::info!("handling {n}");
        let _ = self.0.send((n, trace::current(), ctx.sender().is_some()));
        Ok(())
    }
}

/// Sends, in one turn, each message with its context (or a plain message from the actor, with
/// a sender, when it has none).
struct Relay;
impl Actor for Relay {
    type Msg = (ActorRef<u32>, Vec<(u32, Option<TraceContext>)>);
    fn receive(&mut self, ctx: &mut Ctx<Self>, (to, msgs): Self::Msg) -> Result<(), ActorError> {
        for (n, t) in msgs {
            match t {
                Some(_) => integration::tell_traced(&to, n, t).unwrap(),
                None => ctx.tell(&to, n).unwrap(),
            }
        }
        Ok(())
    }
}

#[test]
fn a_traced_message_is_handled_in_its_context_and_only_that_message() {
    let log = log();
    let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = tx.clone();
    let plain = rt.spawn_on(1, move || Tracer(t.clone())).unwrap();
    let t = tx.clone();
    let bounded = SpawnOptions::new()
        .placement(Placement::Shard(1))
        .mailbox(MailboxKind::bounded(8, Overflow::DropNewest));
    let bounded = rt.spawn_with(bounded, move || Tracer(t.clone())).unwrap();
    let (a, b) = (TraceContext::root(), TraceContext::root());
    let next = || rx.recv_timeout(WAIT).expect("handled");

    // From a plain thread.
    integration::tell_traced(&plain, 1, Some(a)).unwrap();
    assert_eq!(next(), (1, Some(a), false));
    plain.tell(2).unwrap();
    assert_eq!(next(), (2, None, false), "the next message has none");

    // From the target's shard and from the other one, queued together with plain messages
    // (with senders): each message keeps its own.
    for (shard, to) in [(1, &plain), (0, &plain), (1, &bounded), (0, &bounded)] {
        let relay = rt.spawn_on(shard, || Relay).unwrap();
        relay
            .tell((to.clone(), vec![(10, Some(a)), (11, None), (12, None), (13, Some(b)), (14, Some(a))]))
            .unwrap();
        let got: Vec<_> = (0..5).map(|_| next()).collect();
        let want = vec![
            (10, Some(a), false),
            (11, None, true),
            (12, None, true),
            (13, Some(b), false),
            (14, Some(a), false),
        ];
        assert_eq!(got, want, "relay on shard {shard}");
    }

    // The handler's `receive` span records the trace.
    let text = log.text();
    let line = text.lines().find(|l| l.contains("handling 1")).expect("logged");
    assert!(line.contains(&format!("trace_id={:032x}", a.trace_id())), "{line}");
    assert!(line.contains(&format!("parent_span={:016x}", a.span_id())), "{line}");
    let line = text.lines().find(|l| l.contains("handling 2")).expect("logged");
    assert!(!line.contains("trace_id="), "{line}");
    rt.shutdown().unwrap();
}
