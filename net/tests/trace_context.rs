//! Trace context across nodes (the `tracing-spans` feature): a tell or an ask sent inside a
//! trace carries a child of it over a real QUIC connection on loopback; the receiving actor
//! handles it with that context current, and what it sends on carries the trace further.
//! Untraced messages stay untraced, and traced and untraced tells from one sender keep their
//! order.

mod common;

use common::*;
use corelane::trace::{self, TraceContext};
use corelane::{Actor, ActorError, Ctx, Reply, Runtime, Shards};
use corelane_net::{Accepts, Answers, Node, Protocol, RemoteRef};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// What a hop saw: the deposit's sequence number and amount, and the trace it was handled in.
type Seen = (&'static str, u64, u64, Option<TraceContext>);

enum HopMsg {
    Deposit(Deposit),
    Echo(Echo, Reply<Echo>),
}
impl Accepts<Deposit> for HopMsg {
    fn from_tell(d: Deposit) -> Self {
        HopMsg::Deposit(d)
    }
}
impl Answers<Echo> for HopMsg {
    type Reply = Echo;
    fn from_ask(e: Echo, r: Reply<Echo>) -> Self {
        HopMsg::Echo(e, r)
    }
}

/// Reports each message with the trace it is handled in; a deposit of `amount > 0` goes on to
/// `next` (on the other node) with one less.
struct Hop {
    name: &'static str,
    seen: mpsc::Sender<Seen>,
    next: Arc<OnceLock<RemoteRef>>,
}
impl Actor for Hop {
    type Msg = HopMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: HopMsg) -> Result<(), ActorError> {
        match m {
            HopMsg::Deposit(d) => {
                let _ = self.seen.send((self.name, d.seq, d.amount, trace::current()));
                if d.amount > 0 {
                    let next = self.next.get().expect("wired");
                    next.tell(&Deposit { amount: d.amount - 1, ..d }).unwrap();
                }
            }
            HopMsg::Echo(e, r) => {
                let _ = self.seen.send((self.name, 0, 0, trace::current()));
                r.send(e);
            }
        }
        Ok(())
    }
}

struct Two {
    _nodes: (Node, Node),
    _rts: (Runtime, Runtime),
    /// Hop `b` as seen from node `a`.
    to_b: RemoteRef,
    seen: mpsc::Receiver<Seen>,
}

/// Two nodes, a hop on each, each wired to the other.
fn two() -> Two {
    let rts = (
        Runtime::builder().shards(Shards::Count(1)).build().unwrap(),
        Runtime::builder().shards(Shards::Count(1)).build().unwrap(),
    );
    let nodes = (node(&rts.0), node(&rts.1));
    let (tx, seen) = mpsc::channel();
    let protocol = || Protocol::new().accepts::<Deposit>().answers::<Echo>();
    let mut refs = Vec::new();
    let (next_a, next_b) = (Arc::new(OnceLock::new()), Arc::new(OnceLock::new()));
    for (name, rt, node, next) in [("a", &rts.0, &nodes.0, &next_a), ("b", &rts.1, &nodes.1, &next_b)] {
        let (tx, next) = (tx.clone(), next.clone());
        let hop = rt.spawn(move || Hop { name, seen: tx.clone(), next: next.clone() }).unwrap();
        refs.push(node.expose(&hop, protocol()));
    }
    // Each node reaches the other's hop through its own connection.
    let to_b = nodes.0.remote_ref(nodes.1.addr(), refs[1].id());
    next_a.set(to_b.clone()).unwrap();
    next_b.set(nodes.1.remote_ref(nodes.0.addr(), refs[0].id())).unwrap();
    Two { _nodes: nodes, _rts: rts, to_b, seen }
}

impl Two {
    fn next(&self) -> Seen {
        self.seen.recv_timeout(T).expect("handled")
    }
}

#[test]
fn a_trace_goes_from_node_to_node_with_each_hop_a_child() {
    let t = two();
    let root = TraceContext::root();
    // Two hops: the test thread → b → a.
    trace::scope(root, || t.to_b.tell(&Deposit { amount: 1, from: 0, seq: 1 }).unwrap());
    let (who, _, _, at_b) = t.next();
    assert_eq!(who, "b");
    let at_b = at_b.expect("b handles it in the trace");
    assert_eq!(at_b.trace_id(), root.trace_id());
    assert_ne!(at_b.span_id(), root.span_id(), "a child span, not the sender's own");
    assert!(at_b.sampled());
    let (who, _, _, at_a) = t.next();
    assert_eq!(who, "a");
    let at_a = at_a.expect("a handles the onward message in the trace");
    assert_eq!(at_a.trace_id(), root.trace_id());
    assert!(at_a.span_id() != at_b.span_id() && at_a.span_id() != root.span_id());

    // An ask carries it too.
    let other = TraceContext::root();
    let echo = trace::scope(other, || t.to_b.ask::<_, Echo>(&Echo { data: vec![7] }).timeout(T).wait());
    assert_eq!(echo.unwrap().data, vec![7]);
    let (_, _, _, asked) = t.next();
    assert_eq!(asked.map(|c| c.trace_id()), Some(other.trace_id()));

    // Outside any trace nothing is carried, and nothing lingers from the messages before.
    t.to_b.tell(&Deposit { amount: 0, from: 0, seq: 2 }).unwrap();
    assert_eq!(t.next(), ("b", 2, 0, None));
}

#[test]
fn traced_and_untraced_tells_from_one_sender_keep_their_order() {
    let t = two();
    let root = TraceContext::root();
    for seq in 1..=200u64 {
        let d = Deposit { amount: 0, from: 0, seq };
        if seq % 3 == 0 {
            trace::scope(root, || t.to_b.tell(&d)).unwrap();
        } else {
            t.to_b.tell(&d).unwrap();
        }
    }
    for seq in 1..=200u64 {
        let (who, got, _, trace) = t.next();
        assert_eq!((who, got), ("b", seq), "in order");
        assert_eq!(trace.is_some(), seq % 3 == 0, "message {seq}");
    }
}
