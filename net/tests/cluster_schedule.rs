//! Cluster-wide schedules in one process: three members on the in-memory store. Each tick is
//! fired once across the cluster (whoever asked for the schedule, and through the leave of the
//! member running it); one-offs fire once; cancelling stops the ticks. The same through a
//! SIGKILL with real processes and etcd: `cluster_named_etcd.rs`.

mod common;

use common::members::{self, Member};
use common::{account_protocol, Account, Balance, Deposit, GetBalance};
use corelane::testkit::TestKit;
use corelane_net::cluster::{Cluster, MemoryProvider, Placement, ScheduleState};
use corelane_net::{ErrorCode, RemoteAskError};
use std::time::{Duration, UNIX_EPOCH};

const T: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(100);

fn member(store: &MemoryProvider, id: &str) -> Member {
    members::join(
        store,
        "sched",
        id,
        |n| {
            n.register_kind("account", account_protocol(), Account::default);
        },
        |b| b,
    )
}

fn three(store: &MemoryProvider) -> Vec<Member> {
    let ms: Vec<Member> = ["a", "b", "c"].iter().map(|id| member(store, id)).collect();
    for m in &ms {
        assert!(m.cluster.wait_for(T, |v| v.member_ids() == ["a", "b", "c"]));
    }
    ms
}

fn until(cond: impl Fn() -> bool) -> bool {
    common::until(T, cond)
}

fn state(c: &Cluster, id: &str) -> Option<ScheduleState> {
    c.schedule_of(id).state().timeout(T).wait().expect("state read")
}

fn balance(c: &Cluster, name: &str) -> Balance {
    c.request(name, &GetBalance {}, T).wait().expect("balance")
}

/// Waits for `d` on another runtime's timer (no sleep).
fn pass(d: Duration) {
    let kit = TestKit::new();
    let marker = kit.probe();
    kit.runtime().handle().schedule_once(d, &marker.actor_ref::<u8>(), 1);
    marker.expect_message_within(d + T, 1u8);
}

fn ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn each_tick_fires_once_across_the_cluster_and_through_the_leave_of_its_runner() {
    let store = MemoryProvider::new();
    let ms_ = three(&store);
    let pay = Deposit { amount: 1, from: 0, seq: 0 };
    // Every member asks for the same schedule at once: one schedule, one runner.
    let handles: Vec<_> = std::thread::scope(|s| {
        let ts: Vec<_> = ms_
            .iter()
            .map(|m| {
                let pay = pay.clone();
                s.spawn(move || m.cluster.schedule("payroll", TICK, "till", &pay).timeout(T).wait())
            })
            .collect();
        ts.into_iter().map(|t| t.join().unwrap().expect("scheduled")).collect()
    });
    let a = &ms_[0].cluster;
    assert!(until(|| handles[0].host().is_some()));
    let runner = handles[0].host().unwrap();
    // The target lives on a member that stays; the runner's member leaves later.
    let stays = ms_.iter().find(|m| m.cluster.member_id() != runner).unwrap();
    stays.cluster.spawn_named("till", "account").placement(Placement::Local).timeout(T).wait().unwrap();
    assert!(until(|| state(a, "payroll").is_some_and(|s| s.fired >= 5)));

    let leaving = ms_.iter().find(|m| m.cluster.member_id() == runner).unwrap();
    assert!(leaving.cluster.leave(T));
    let at_leave = state(a, "payroll").unwrap().fired;
    assert!(
        until(|| stays.cluster.schedule_of("payroll").host().is_some_and(|h| h != runner)),
        "the runner moved"
    );
    assert!(
        until(|| state(a, "payroll").is_some_and(|s| s.fired >= at_leave + 5)),
        "ticks go on after the leave"
    );

    let last = a.cancel_schedule("payroll").timeout(T).wait().expect("cancelled").expect("it existed");
    assert_eq!(state(a, "payroll"), None, "its record went");
    assert!(until(|| stays.cluster.schedule_of("payroll").host().is_none()), "its runner stopped for good");
    // Each tick of the grid from the first to the last was recorded once, across the leave.
    let (first, latest) = (ms(last.first.unwrap()), ms(last.last.unwrap()));
    assert_eq!((latest - first) / 100 + 1, last.fired, "no tick skipped or recorded twice: {last:?}");
    assert_eq!(last.skipped, 0);
    // And sent once: the target got exactly the ticks recorded, by whichever member ran them.
    let fired_here: u64 = ms_.iter().map(|m| m.cluster.stats().ticks_fired).sum();
    assert_eq!(fired_here, last.fired);
    assert!(
        until(|| balance(&stays.cluster, "till").amount == last.fired),
        "every recorded tick delivered once"
    );
    pass(TICK * 3);
    assert_eq!(balance(&stays.cluster, "till").amount, last.fired, "nothing after the cancel");
    assert!(last.fired >= at_leave + 5);
}

#[test]
fn the_record_counts_every_tick_on_the_grid_once() {
    let store = MemoryProvider::new();
    let ms_ = three(&store);
    let b = &ms_[1].cluster;
    b.spawn_named("till", "account").placement(Placement::Local).timeout(T).wait().unwrap();
    let s =
        b.schedule("tick", TICK, "till", &Deposit { amount: 1, from: 0, seq: 0 }).timeout(T).wait().unwrap();
    assert!(until(|| s.state().wait().unwrap().is_some_and(|s| s.fired >= 10)));
    let st = s.state().wait().unwrap().unwrap();
    let (first, last) = (ms(st.first.unwrap()), ms(st.last.unwrap()));
    assert_eq!((last - first) / 100 + 1, st.fired, "no tick of the grid skipped or repeated: {st:?}");
    assert_eq!(st.skipped, 0);
    assert_eq!(st.target, "till");
    assert!(until(|| balance(b, "till").amount >= st.fired));
    s.cancel().timeout(T).wait().unwrap();
}

#[test]
fn one_offs_fire_once_cron_on_its_instants_and_bad_schedules_are_refused() {
    let store = MemoryProvider::new();
    let ms_ = three(&store);
    let c = &ms_[2].cluster;
    c.spawn_named("till", "account").placement(Placement::Local).timeout(T).wait().unwrap();
    let pay = Deposit { amount: 1, from: 0, seq: 0 };
    let once = c.schedule_once("bonus", Duration::from_millis(50), "till", &pay).timeout(T).wait().unwrap();
    assert!(until(|| balance(c, "till").amount == 1));
    // Done: its record and runner go.
    assert!(until(|| once.state().wait().unwrap().is_none() && once.host().is_none()));

    let cron = c.schedule_cron("eod", "* * * * * *", "till", &pay).timeout(T).wait().unwrap();
    assert!(until(|| cron.state().wait().unwrap().is_some_and(|s| s.fired >= 2)));
    let st = cron.state().wait().unwrap().unwrap();
    assert_eq!(ms(st.first.unwrap()) % 1000, 0, "on whole seconds");
    assert_eq!(ms(st.last.unwrap()) - ms(st.first.unwrap()), (st.fired - 1) * 1000);

    // The same id with another definition is refused; with the same one, found.
    let other = c.schedule("eod", TICK, "till", &pay).timeout(T).wait();
    assert!(matches!(other, Err(RemoteAskError::Refused { code: ErrorCode::NameTaken, .. })), "{other:?}");
    let same = ms_[0].cluster.schedule_cron("eod", "* * * * * *", "till", &pay).timeout(T).wait();
    assert!(same.is_ok(), "{same:?}");
    cron.cancel().timeout(T).wait().unwrap();

    let malformed = |r: Result<_, RemoteAskError>| {
        matches!(r, Err(RemoteAskError::Refused { code: ErrorCode::Malformed, .. }))
    };
    assert!(malformed(c.schedule_cron("x", "0 75 * * * *", "till", &pay).wait()));
    assert!(malformed(c.schedule("x", Duration::from_millis(10), "till", &pay).wait()));
    assert!(malformed(c.schedule("", TICK, "till", &pay).wait()));
}
