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
