//! Remote operations between two nodes in one process, over real QUIC on loopback.

mod common;

use common::*;
use corelane::testkit::TestKit;
use corelane::{DeadLetterReason, Event, Runtime, StopReason};
use corelane_net::{ErrorCode, Node, RemoteAskError, RemoteRef, RemoteSendError};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// Node B serves an account registered as "account"; node A has found it.
struct Pair {
    a: Node,
    b: Node,
    rt_b: Runtime,
    /// Node A's runtime, with probes.
    kit: TestKit,
    account: RemoteRef,
}

fn pair() -> Pair {
    let kit = TestKit::with_runtime(Runtime::builder().shards(corelane::Shards::Count(1)));
    let rt_b = runtime();
    let (a, b) = (node(kit.runtime()), node(&rt_b));
    b.serve(account_protocol());
    let acc = rt_b.spawn(Account::default).unwrap();
    rt_b.register("account", &acc).unwrap();
    let account = a.remote(b.addr()).lookup("account").timeout(T).wait().expect("lookup");
    Pair { a, b, rt_b, kit, account }
}

fn balance(r: &RemoteRef) -> Balance {
    r.ask::<_, Balance>(&GetBalance {}).timeout(T).wait().expect("balance")
}

fn deposit(from: u32, seq: u64) -> Deposit {
    Deposit { amount: 1, from, seq }
}

#[test]
fn lookup_tell_and_ask() {
    let p = pair();
    for seq in 1..=500 {
        p.account.tell(&Deposit { amount: 2, from: 0, seq }).unwrap();
    }
    let b = balance(&p.account);
    assert_eq!((b.amount, b.deposits, b.out_of_order), (1000, 500, 0));
    assert_eq!(p.account.node_addr(), p.b.addr());
}

#[test]
fn tells_arriving_together_reach_their_actors_before_whatever_follows_them() {
    // The receiving node hands a read's tells to each actor together: tells to two actors,
    // interleaved in runs, then asks right behind them must find every tell, in order.
    let p = pair();
    let second = p.rt_b.spawn(common::Account::default).unwrap();
    p.rt_b.register("second", &second).unwrap();
    let other = p.a.remote(p.b.addr()).lookup("second").timeout(T).wait().expect("lookup");
    for round in 0..20 {
        let mut seqs = [0, 0];
        for i in 0..100 {
            // Runs of 25 tells for each.
            let (to, seq) = if i % 50 < 25 { (&p.account, &mut seqs[0]) } else { (&other, &mut seqs[1]) };
            *seq += 1;
            to.tell(&deposit(round, *seq)).unwrap();
        }
        // The last run went to `other`: its ask is right behind its tells.
        let (b, a) = (balance(&other), balance(&p.account));
        let told = 50 * (u64::from(round) + 1);
        assert_eq!((a.deposits, a.out_of_order, b.deposits, b.out_of_order), (told, 0, told, 0));
    }
}

#[test]
fn order_is_kept_per_sender_under_concurrent_senders() {
    let p = pair();
    std::thread::scope(|s| {
        for from in 0..4u32 {
            let acc = p.account.clone();
            s.spawn(move || {
                for seq in 1..=2000 {
                    acc.tell(&deposit(from, seq)).unwrap();
                }
            });
        }
    });
    let b = balance(&p.account);
    assert_eq!((b.deposits, b.out_of_order), (8000, 0));
}

#[test]
fn batch_tell_and_batch_ask_keep_order() {
    let p = pair();
    let ds: Vec<_> = (1..=100).map(|s| deposit(9, s)).collect();
    p.account.batch_tell(&ds).unwrap();
    let answers = p.account.batch_ask::<_, Balance>(&[GetBalance {}, GetBalance {}]).timeout(T).wait();
    let answers: Vec<Balance> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers[0].deposits, 100);
    assert_eq!(answers[1].out_of_order, 0);
}

#[test]
fn unknown_names_manifests_and_targets_are_errors_and_dead_letters() {
    let p = pair();
    let lookup = p.a.remote(p.b.addr()).lookup("nobody").timeout(T).wait();
    assert!(matches!(lookup, Err(RemoteAskError::Refused { code: ErrorCode::NotFound, .. })), "{lookup:?}");

    let r = p.account.ask::<_, Balance>(&Stranger { text: "hi".into() }).timeout(T).wait();
    assert!(matches!(r, Err(RemoteAskError::Refused { code: ErrorCode::UnknownManifest, .. })), "{r:?}");

    let ghost = p.a.remote_ref(p.b.addr(), 0xdead);
    let r = ghost.ask::<_, Balance>(&GetBalance {}).timeout(T).wait();
    assert!(matches!(r, Err(RemoteAskError::Refused { code: ErrorCode::UnknownTarget, .. })), "{r:?}");

    // A tell nobody accepts is a counted dead letter on the receiving node.
    let before =
        p.rt_b.metrics().dead_letters_for(DeadLetterReason::Remote(corelane::RemoteReason::UnknownManifest));
    p.account.tell(&Stranger { text: "hi".into() }).unwrap();
    ghost.tell(&deposit(1, 1)).unwrap();
    // Both are handled before this ask (same connection, same order).
    balance(&p.account);
    let m = p.rt_b.metrics();
    assert_eq!(
        m.dead_letters_for(DeadLetterReason::Remote(corelane::RemoteReason::UnknownManifest)),
        before + 1
    );
    assert!(m.dead_letters_for(DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget)) >= 2);
}

#[test]
fn an_unanswered_ask_times_out_and_its_late_answer_is_a_dead_letter() {
    let p = pair();
    let (_sub, late) =
        p.kit.runtime().handle().subscribe_channel(|e| {
            matches!(e, Event::Deadletter { reason: DeadLetterReason::LateReply, .. })
        });
    let r = p.account.ask::<_, Balance>(&Hold {}).timeout(Duration::from_millis(100)).wait();
    assert_eq!(r.unwrap_err(), RemoteAskError::Timeout);
    p.account.tell(&Release {}).unwrap();
    late.recv_timeout(T).expect("the late answer is counted as a dead letter");
}

#[test]
fn an_actor_that_drops_the_request_fails_the_ask() {
    let p = pair();
    // `Silence` makes the account drop the reply: the serving node answers with an error.
    let r = p.account.ask::<_, Balance>(&Silence {}).timeout(T).wait();
    assert!(matches!(r, Err(RemoteAskError::Refused { code: ErrorCode::Failed, .. })), "{r:?}");
}

#[test]
fn spawn_only_registered_kinds_by_name_and_respawn() {
    let p = pair();
    p.b.register_kind("account", account_protocol(), Account::default);
    let remote = p.a.remote(p.b.addr());

    let refused = remote.spawn("missile", "").timeout(T).wait();
    assert!(
        matches!(refused, Err(RemoteAskError::Refused { code: ErrorCode::UnknownKind, .. })),
        "{refused:?}"
    );

    let acc = remote.spawn("account", "savings").timeout(T).wait().unwrap();
    acc.tell(&deposit(1, 1)).unwrap();
    assert_eq!(balance(&acc).deposits, 1);
    let found = remote.lookup("savings").timeout(T).wait().unwrap();
    assert_eq!(found, acc);
    let taken = remote.spawn("account", "savings").timeout(T).wait();
    assert!(matches!(taken, Err(RemoteAskError::Refused { code: ErrorCode::NameTaken, .. })), "{taken:?}");

    let fresh = remote.respawn("savings").timeout(T).wait().unwrap();
    assert_ne!(fresh, acc);
    assert_eq!(balance(&fresh).deposits, 0, "a new incarnation");
    let old = acc.ask::<_, Balance>(&GetBalance {}).timeout(T).wait();
    assert!(matches!(old, Err(RemoteAskError::Refused { code: ErrorCode::UnknownTarget, .. })), "{old:?}");
}

#[test]
fn stop_stops_and_watchers_hear_of_it() {
    let p = pair();
    let probe = p.kit.probe();
    let standin = p.account.standin().unwrap();
    probe.watch(&standin);
    p.account.stop().timeout(T).wait().unwrap();
    assert_eq!(probe.expect_terminated(&standin), StopReason::Stopped);
    let r = p.account.ask::<_, Balance>(&GetBalance {}).timeout(T).wait();
    assert!(matches!(r, Err(RemoteAskError::Refused { code: ErrorCode::UnknownTarget, .. })), "{r:?}");
}

#[test]
fn losing_the_node_fails_asks_and_tells_watchers_node_down() {
    let p = pair();
    let probe = p.kit.probe();
    let standin = p.account.standin().unwrap();
    probe.watch(&standin);
    // The watch is registered there before the node goes.
    balance(&p.account);
    let slow = p.account.ask::<_, Balance>(&Hold {}).timeout(Duration::from_secs(30));
    p.b.shutdown();
    assert_eq!(probe.expect_terminated(&standin), StopReason::NodeDown);
    assert_eq!(slow.wait().unwrap_err(), RemoteAskError::NodeDown);
}

#[test]
fn remote_schedules_deliver_there_and_cancel() {
    let p = pair();
    p.account.schedule_once(Duration::from_millis(20), &deposit(5, 1)).timeout(T).wait().unwrap();
    let every = p
        .account
        .schedule(Duration::ZERO, Duration::from_millis(10), &Deposit { amount: 1, from: 6, seq: 0 })
        .timeout(T)
        .wait()
        .unwrap();
    // Poll the account (answers, not sleeps) until the one-shot and a few ticks have landed.
    let deadline = std::time::Instant::now() + T;
    while balance(&p.account).deposits < 4 {
        assert!(std::time::Instant::now() < deadline, "schedules did not deliver");
    }
    every.cancel();
    // The cancel precedes this ask on the connection, so it is in force once this returns.
    let at_cancel = balance(&p.account).deposits;
    // Ten intervals later (a marker timer of another runtime), at most the tick that was in
    // flight has landed.
    let kit = TestKit::new();
    let marker = kit.probe();
    kit.runtime().handle().schedule_once(Duration::from_millis(100), &marker.actor_ref::<u8>(), 1);
    marker.expect_message(1u8);
    assert!(balance(&p.account).deposits <= at_cancel + 1, "deliveries went on after the cancel");

    let bad = p.account.schedule_once(Duration::ZERO, &Stranger::default()).timeout(T).wait();
    assert!(matches!(bad, Err(RemoteAskError::Refused { code: ErrorCode::UnknownManifest, .. })), "{bad:?}");
}

#[test]
fn rkyv_payloads_are_validated_and_read_in_place() {
    let p = pair();
    let memo = corelane_net::Rkyv::new(&Memo { amount: 42, text: "hi".into() }).unwrap();
    let b = p.account.ask::<_, Balance>(&memo).timeout(T).wait().unwrap();
    assert_eq!(b.amount, 42);
}

#[test]
fn forward_carries_the_original_sender() {
    let p = pair();
    // An actor of node A, made reachable from other nodes: the original sender.
    let local = p.kit.runtime().spawn(Account::default).unwrap();
    let original = p.a.expose(&local, account_protocol());
    p.account.forward(&Note {}, &original).unwrap();
    assert_eq!(balance(&p.account).last_sender, original.id());
    // A plain tell carries none.
    p.account.tell(&Note {}).unwrap();
    assert_eq!(balance(&p.account).last_sender, 0);
}

#[test]
fn after_shutdown_sends_fail_at_once() {
    let p = pair();
    p.a.shutdown();
    assert_eq!(p.account.tell(&deposit(1, 1)), Err(RemoteSendError::Closed));
    let r = p.account.ask::<_, Balance>(&GetBalance {}).timeout(T).wait();
    assert_eq!(r.unwrap_err(), RemoteAskError::Send(RemoteSendError::Closed));
}

#[test]
fn an_actor_that_never_answers_fails_the_ask_after_the_serve_timeout() {
    let rt_b = runtime();
    let b = node_with(
        &rt_b,
        corelane_net::RemoteConfig {
            serve_timeout: Duration::from_millis(100),
            ..corelane_net::RemoteConfig::dev()
        },
    );
    b.serve(account_protocol());
    let acc = rt_b.spawn(Account::default).unwrap();
    rt_b.register("account", &acc).unwrap();
    let rt_a = runtime();
    let a = node(&rt_a);
    let account = a.remote(b.addr()).lookup("account").timeout(T).wait().unwrap();
    // Held forever by the actor; the serving node gives up after 100 ms, long before the
    // asker's own 10 s.
    let r = account.ask::<_, Balance>(&Hold {}).timeout(T).wait();
    assert!(matches!(r, Err(RemoteAskError::Refused { code: ErrorCode::Failed, .. })), "{r:?}");
}

#[test]
fn typed_references_send_what_the_actor_accepts_with_the_same_shape_as_untyped_ones() {
    let p = pair();
    let account = p.account.clone().typed::<AccountMsg>();
    for seq in 1..=100 {
        account.tell(&deposit(0, seq)).unwrap();
    }
    account.batch_tell(&[deposit(0, 101), deposit(0, 102)]).unwrap();
    // The answer's type is `<AccountMsg as Answers<GetBalance>>::Reply`: no annotation.
    let b = account.ask(&GetBalance {}).timeout(T).wait().unwrap();
    assert_eq!((b.amount, b.deposits, b.out_of_order), (102, 102, 0));
    let echoes = account.batch_ask(&[Echo { data: vec![1] }, Echo { data: vec![2] }]).timeout(T).wait();
    let data: Vec<Vec<u8>> = echoes.into_iter().map(|e| e.unwrap().data).collect();
    assert_eq!(data, [vec![1], vec![2]]);
    // Forward keeps the original sender.
    let local = p.kit.runtime().spawn(Account::default).unwrap();
    let original = p.a.expose(&local, account_protocol());
    account.forward(&Note {}, &original).unwrap();
    assert_eq!(balance(account.untyped()).last_sender, original.id());
    // Awaited, as any remote ask.
    let executor = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let awaited = executor.block_on(async { account.ask(&GetBalance {}).timeout(T).await });
    assert_eq!(awaited.unwrap().amount, 102);
    assert_eq!(account.into_untyped(), p.account);
}

#[test]
fn remote_cron_schedules_fire_there_on_the_second_and_bad_expressions_are_refused() {
    let p = pair();
    let every_second = p.account.schedule_cron("* * * * * *", &deposit(7, 0)).timeout(T).wait().unwrap();
    // Two firings land, each on a whole second (UTC) of the target's node.
    assert!(until(T, || balance(&p.account).deposits >= 2), "the cron schedule fired twice");
    every_second.cancel();
    let at_cancel = balance(&p.account).deposits;
    // Past the next whole second (a marker timer of another runtime): nothing more, but the
    // firing that may have been in flight.
    let kit = TestKit::new();
    let marker = kit.probe();
    kit.runtime().handle().schedule_once(Duration::from_millis(1100), &marker.actor_ref::<u8>(), 1);
    marker.expect_message_within(Duration::from_secs(5), 1u8);
    assert!(balance(&p.account).deposits <= at_cancel + 1, "deliveries went on after the cancel");

    let bad = p.account.schedule_cron("0 75 * * * *", &deposit(7, 0)).timeout(T).wait();
    assert!(
        matches!(&bad, Err(RemoteAskError::Refused { code: ErrorCode::Malformed, detail }) if detail.contains("minutes")),
        "{bad:?}"
    );
    let stranger = p.account.schedule_cron("* * * * * *", &Stranger::default()).timeout(T).wait();
    assert!(matches!(stranger, Err(RemoteAskError::Refused { code: ErrorCode::UnknownManifest, .. })));
}
