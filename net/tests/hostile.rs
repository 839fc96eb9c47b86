//! Hostile and broken input, sent by a raw quinn client: each gets its defined outcome (an error
//! to the asker, a counted dead letter, or closing only that connection), and the node keeps
//! serving everyone else.

mod common;

use bytes::Bytes;
use common::raw::*;
use common::*;
use corelane::{DeadLetterReason, Event, Runtime};
use corelane_net::{ErrorCode, Node, RemoteConfig, RemoteRef};
use corelane_proto::decode_error;
use corelane_proto::v1::{Envelope, Kind};
use prost::{Message, Name};
use std::sync::mpsc::Receiver;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// A node serving an account registered as "account", with a small frame limit and queue.
struct Server {
    rt: Runtime,
    node: Node,
    account_id: u64,
}

fn server() -> Server {
    let rt = runtime();
    let cfg = RemoteConfig { max_frame: 64 << 10, max_queued_bytes: 256 << 10, ..RemoteConfig::dev() };
    let node = node_with(&rt, cfg);
    node.serve(account_protocol());
    let acc = rt.spawn(Account::default).unwrap();
    rt.register("account", &acc).unwrap();
    // Exposed, so that raw peers may address it by id without a lookup.
    node.expose(&acc, account_protocol());
    Server { account_id: acc.id().as_u64(), rt, node }
}

/// A well-behaved client node that has found the account: proof the server still serves.
fn still_serves(s: &Server) {
    let rt = runtime();
    let client = node(&rt);
    let acc: RemoteRef = client.remote(s.node.addr()).lookup("account").timeout(T).wait().expect("lookup");
    acc.ask::<_, Balance>(&GetBalance {}).timeout(T).wait().expect("the node still answers");
}

fn dead_letters(rt: &Runtime, reason: DeadLetterReason) -> Receiver<Event> {
    let (sub, rx) = rt
        .handle()
        .subscribe_channel(move |e| matches!(e, Event::Deadletter { reason: r, .. } if *r == reason));
    // For as long as the receiver is kept.
    sub.detach();
    rx
}

fn error_code(env: &Envelope) -> ErrorCode {
    assert_eq!(env.kind(), Kind::Error, "{env:?}");
    decode_error(env.payload.clone()).unwrap().code()
}

#[test]
fn unknown_manifests_and_targets_get_error_replies() {
    let s = server();
    let raw = Raw::connect(s.node.addr());
    let mut bytes = hello();
    bytes.extend(frame(&Envelope::ask(s.account_id, 1, "nobody.Knows", Bytes::new())));
    bytes.extend(frame(&Envelope::ask(0xdead, 2, GetBalance::full_name(), Bytes::new())));
    // A payload that does not decode as its manifest says.
    bytes.extend(frame(&Envelope::ask(s.account_id, 3, Echo::full_name(), Bytes::from_static(&[0xff; 5]))));
    raw.stream(bytes);
    let got = raw.read(3);
    let codes: Vec<_> = got.iter().map(|e| (e.correlation_id, error_code(e))).collect();
    assert_eq!(
        codes,
        vec![(1, ErrorCode::UnknownManifest), (2, ErrorCode::UnknownTarget), (3, ErrorCode::Malformed)]
    );
    still_serves(&s);
}

#[test]
fn garbage_and_truncated_frames_are_counted_and_the_connection_survives_them() {
    let s = server();
    let malformed = dead_letters(&s.rt, DeadLetterReason::Remote(corelane::RemoteReason::Malformed));
    let raw = Raw::connect(s.node.addr());
    let mut bytes = hello();
    bytes.extend(raw_frame(&[0xff; 40]));
    bytes.extend(frame(&Envelope::ask(s.account_id, 9, GetBalance::full_name(), Bytes::new())));
    raw.stream(bytes);
    malformed.recv_timeout(T).expect("the garbage frame is a counted dead letter");
    // The frame after the garbage was served on the same connection.
    assert_eq!(raw.read(1)[0].correlation_id, 9);
    // A stream cut inside a frame: that frame is lost, and counted.
    let mut cut = hello();
    let whole = frame(&Envelope::tell(s.account_id, Deposit::full_name(), Bytes::new()));
    cut.extend(&whole[..whole.len() - 2]);
    raw.stream(cut);
    malformed.recv_timeout(T).expect("the truncated frame is a counted dead letter");
    still_serves(&s);
}

#[test]
fn an_oversized_frame_or_a_missing_hello_closes_only_that_connection() {
    let s = server();
    let big = Raw::connect(s.node.addr());
    let mut bytes = hello();
    // A prefix announcing 1 MiB, over the 64 KiB limit: refused before anything is buffered.
    bytes.extend((1u32 << 20).to_le_bytes());
    big.stream(bytes);
    assert!(
        matches!(big.closed(), quinn::ConnectionError::ApplicationClosed(c) if c.error_code == 3u32.into())
    );

    let rude = Raw::connect(s.node.addr());
    rude.stream(frame(&Envelope::tell(s.account_id, Deposit::full_name(), Bytes::new())));
    assert!(
        matches!(rude.closed(), quinn::ConnectionError::ApplicationClosed(c) if c.error_code == 4u32.into())
    );
    still_serves(&s);
}

#[test]
fn replies_to_unknown_correlation_ids_are_late_replies() {
    let s = server();
    let late = dead_letters(&s.rt, DeadLetterReason::LateReply);
    let raw = Raw::connect(s.node.addr());
    let mut bytes = hello();
    bytes.extend(frame(&Envelope::reply(424242, Balance::full_name(), Bytes::new())));
    bytes.extend(frame(&Envelope::error(434343, ErrorCode::Failed, "nobody asked")));
    raw.stream(bytes);
    late.recv_timeout(T).expect("first");
    late.recv_timeout(T).expect("second");
    still_serves(&s);
}

#[test]
fn a_peer_that_stops_reading_loses_its_answers_not_the_node() {
    let s = server();
    let unreachable = dead_letters(&s.rt, DeadLetterReason::Remote(corelane::RemoteReason::Unreachable));
    let raw = Raw::connect(s.node.addr());
    // Asks for fat answers, never reading them: the node's queue for this peer fills (256 KiB
    // here) behind QUIC flow control (8 MiB per stream), and further answers are dropped.
    let payload: Bytes = Echo { data: vec![7; 20_000] }.encode_to_vec().into();
    let mut bytes = hello();
    for c in 1..=1_000u64 {
        bytes.extend(frame(&Envelope::ask(s.account_id, c, Echo::full_name(), payload.clone())));
        if bytes.len() > 4 << 20 {
            // Every stream begins with the hello.
            raw.stream(std::mem::replace(&mut bytes, hello()));
        }
    }
    raw.stream(bytes);
    unreachable.recv_timeout(T).expect("answers beyond the queue limit are dropped and counted");
    still_serves(&s);
}

#[test]
fn a_peer_that_vanishes_mid_ask_costs_nothing() {
    let s = server();
    {
        let raw = Raw::connect(s.node.addr());
        let mut bytes = hello();
        bytes.extend(frame(&Envelope::ask(s.account_id, 1, Hold::full_name(), Bytes::new())));
        raw.stream(bytes);
        // Dropped without a close: the node's answer will have nowhere to go.
    }
    // Release the held request: its answer is for a vanished peer.
    let rt = runtime();
    let client = node(&rt);
    let acc = client.remote(s.node.addr()).lookup("account").timeout(T).wait().unwrap();
    acc.tell(&Release {}).unwrap();
    still_serves(&s);
}

/// Dead letters counted on `rx` until `n` have come (or the patience runs out): how many came.
fn counted(rx: &Receiver<Event>, n: u64) -> u64 {
    let mut got = 0;
    while got < n {
        match rx.recv_timeout(T) {
            Ok(Event::Deadletter { count, .. }) => got += count,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    got
}

#[test]
fn a_batch_of_tells_is_each_of_its_messages_and_only_for_an_actor() {
    let s = server();
    let malformed = dead_letters(&s.rt, DeadLetterReason::Remote(corelane::RemoteReason::Malformed));
    let unknown = dead_letters(&s.rt, DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget));
    let refused = dead_letters(&s.rt, DeadLetterReason::Remote(corelane::RemoteReason::UnknownManifest));
    let raw = Raw::connect(s.node.addr());
    let d = |seq| Bytes::from(Deposit { amount: 1, from: 7, seq }.encode_to_vec());
    let tell = |to: u64, first: Bytes, more: Vec<Bytes>| Envelope {
        more,
        ..Envelope::tell(to, Deposit::full_name(), first)
    };
    let mut bytes = hello();
    // Three deposits in one envelope (`Envelope::more`), then an ask right behind them.
    bytes.extend(frame(&tell(s.account_id, d(1), vec![d(2), d(3)])));
    bytes.extend(frame(&Envelope::ask(s.account_id, 1, GetBalance::full_name(), Bytes::new())));
    // A batch for an actor that is not there: each of its five messages is a dead letter.
    bytes.extend(frame(&tell(0xdead, d(1), vec![d(2); 4])));
    // Further payloads on an ask, or on a tell to the node itself: malformed, each message
    // counted, the ask answered with the error.
    let ask = Envelope::ask(s.account_id, 2, GetBalance::full_name(), Bytes::new());
    bytes.extend(frame(&Envelope { more: vec![d(4); 2], ..ask }));
    bytes.extend(frame(&tell(0, d(5), vec![d(6); 3])));
    // A batch with a payload that does not decode among good ones: that one is a dead letter,
    // the others are delivered in order; a batch of a manifest nobody accepts: each refused.
    bytes.extend(frame(&tell(s.account_id, d(4), vec![Bytes::from_static(&[0xff; 5]), d(5)])));
    let unknown_manifest =
        |first: Bytes, more| Envelope { more, ..Envelope::tell(s.account_id, "nobody.Knows", first) };
    bytes.extend(frame(&unknown_manifest(d(9), vec![d(9); 2])));
    // Nothing else reached the account: it holds the five deposits.
    bytes.extend(frame(&Envelope::ask(s.account_id, 3, GetBalance::full_name(), Bytes::new())));
    raw.stream(bytes);
    // The refused ask is answered at once, the served ones when the account has answered.
    let mut got = raw.read(3);
    got.sort_by_key(|e| e.correlation_id);
    let balance = |e: &Envelope| Balance::decode(e.payload.clone()).unwrap();
    let (first, last) = (balance(&got[0]), balance(&got[2]));
    assert_eq!((got[0].correlation_id, first.deposits, first.out_of_order), (1, 3, 0));
    assert_eq!((got[1].correlation_id, error_code(&got[1])), (2, ErrorCode::Malformed));
    assert_eq!((got[2].correlation_id, last.deposits, last.out_of_order), (3, 5, 0));
    assert_eq!(counted(&unknown, 5), 5);
    assert_eq!(counted(&malformed, 8), 8);
    assert_eq!(counted(&refused, 3), 3);
    still_serves(&s);
}

#[test]
fn a_node_accepts_at_least_the_frames_a_batch_of_tells_may_fill() {
    // A batch of tells may grow to MIN_MAX_FRAME whatever the receiver's limit: a node that
    // would refuse such frames does not start.
    let rt = runtime();
    let small = RemoteConfig { max_frame: corelane_proto::frame::MIN_MAX_FRAME - 1, ..RemoteConfig::dev() };
    let refused = Node::start(&rt, small);
    assert!(matches!(refused, Err(corelane_net::StartError::FrameLimit(n)) if n == 4095), "{refused:?}");
    let at_least = RemoteConfig { max_frame: corelane_proto::frame::MIN_MAX_FRAME, ..RemoteConfig::dev() };
    let node = Node::start(&rt, at_least).expect("a node with the smallest frame limit");
    node.serve(account_protocol());
    rt.register("account", &rt.spawn(Account::default).unwrap()).unwrap();
    // It takes the largest batches a sender with the default limit makes: a stream of tells
    // (joined into frames up to the limit) arrives whole, on a connection that stays open.
    let client_rt = runtime();
    let sender = common::node(&client_rt);
    let client = sender.remote(node.addr()).lookup("account").timeout(T).wait().expect("lookup");
    for seq in 1..=5000 {
        client.tell(&Deposit { amount: 1, from: 3, seq }).unwrap();
    }
    let b = client.ask::<_, Balance>(&GetBalance {}).timeout(T).wait().unwrap();
    assert_eq!((b.deposits, b.out_of_order), (5000, 0));
}
