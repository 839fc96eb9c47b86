//! The scheduler: once, fixed rate without drift, cron at the right instants, invalid cron
//! expressions named by field, cancel, and ending with the scheduling actor.

use corelane::testkit::{Probe, TestKit};
use corelane::{Actor, ActorError, ActorRef, Ctx, Reply, Scheduled};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(5);

/// Records when each tick arrived.
struct Clock(ActorRef<(u32, Instant)>);
impl Actor for Clock {
    type Msg = u32;
    fn receive(&mut self, _: &mut Ctx<Self>, k: u32) -> Result<(), ActorError> {
        let _ = self.0.tell((k, Instant::now()));
        Ok(())
    }
}

fn clock(kit: &TestKit, p: &Probe) -> ActorRef<u32> {
    let out = p.actor_ref::<(u32, Instant)>();
    kit.spawn(move || Clock(out.clone())).unwrap()
}

#[test]
fn once_arrives_after_its_delay_and_only_once() {
    let kit = TestKit::new();
    let p = kit.probe();
    let c = clock(&kit, &p);
    let start = Instant::now();
    let s = kit.schedule_once(Duration::from_millis(50), &c, 7);
    let (k, at) = p.expect_of_type::<(u32, Instant)>();
    assert_eq!(k, 7);
    assert!(at >= start + Duration::from_millis(50), "early by {:?}", start + Duration::from_millis(50) - at);
    p.expect_no_message(Duration::from_millis(100));
    assert!(!s.is_cancelled());
}

#[test]
fn fixed_rate_does_not_accumulate_drift_over_100_ticks() {
    let kit = TestKit::new();
    let p = kit.probe();
    // On real time, within a stated bound; the arithmetic itself (no lateness carries over) is
    // checked on a test clock in `scheduler.rs`.
    let c = clock(&kit, &p);
    let interval = Duration::from_millis(10);
    let t0 = Instant::now();
    let mut n = 0;
    let s = kit.schedule(interval, interval, &c, move || {
        n += 1;
        n
    });
    let ticks: Vec<(u32, Instant)> = (0..100).map(|_| p.expect_of_type::<(u32, Instant)>()).collect();
    s.cancel();
    for (i, (k, at)) in ticks.iter().enumerate() {
        assert_eq!(*k as usize, i + 1);
        let due = t0 + interval * (i as u32 + 1);
        assert!(*at >= due, "tick {k} came {:?} early", due - *at);
    }
    // Stated bound: the 100th tick is at most 150 ms late.
    let last_due = t0 + interval * 100;
    let late = ticks[99].1 - last_due;
    assert!(late < Duration::from_millis(150), "the 100th tick was {late:?} late");
}

#[test]
fn cron_fires_on_the_second() {
    let kit = TestKit::new();
    let p = kit.probe();
    let c = clock(&kit, &p);
    let s = kit.schedule_cron("* * * * * *", &c, || 1).unwrap();
    for _ in 0..2 {
        p.expect_of_type::<(u32, Instant)>();
        let frac = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_millis();
        assert!(frac < 200, "fired {frac} ms after a whole second");
    }
    s.cancel();
}

#[test]
fn invalid_cron_expressions_are_refused_with_the_field_named() {
    let kit = TestKit::new();
    let p = kit.probe();
    let c = clock(&kit, &p);
    let e = kit.schedule_cron("0 0 25 * * *", &c, || 1).unwrap_err();
    assert_eq!(e.field, "hours");
    assert!(e.to_string().contains("bad hours field"), "{e}");
    assert_eq!(kit.schedule_cron("0 0 0 * JANX *", &c, || 1).unwrap_err().field, "month");
    assert_eq!(kit.schedule_cron("0 0", &c, || 1).unwrap_err().field, "field count");
}

#[test]
fn cancel_stops_the_deliveries() {
    let kit = TestKit::new();
    let p = kit.probe();
    let c = clock(&kit, &p);
    let s = kit.schedule(Duration::ZERO, Duration::from_millis(5), &c, || 1);
    for _ in 0..3 {
        p.expect_of_type::<(u32, Instant)>();
    }
    s.cancel();
    // One tick may already have been on its way.
    let _ = p.next_within(Duration::from_millis(30));
    p.expect_no_message(Duration::from_millis(100));
}

/// Schedules ticks to `to` from inside; answers with the handle.
struct Ticker(ActorRef<u32>);
impl Actor for Ticker {
    type Msg = Reply<Scheduled>;
    fn receive(&mut self, ctx: &mut Ctx<Self>, r: Reply<Scheduled>) -> Result<(), ActorError> {
        r.send(ctx.schedule(Duration::ZERO, Duration::from_millis(5), &self.0, || 2));
        Ok(())
    }
}

#[test]
fn an_actors_schedules_end_when_it_stops() {
    let kit = TestKit::new();
    let p = kit.probe();
    let c = clock(&kit, &p);
    let c2 = c.clone();
    let t = kit.spawn(move || Ticker(c2.clone())).unwrap();
    let s = t.ask(|r| r).timeout(WAIT).wait().unwrap();
    for _ in 0..3 {
        p.expect_of_type::<(u32, Instant)>();
    }
    t.stop().timeout(WAIT).wait().unwrap();
    let _ = p.next_within(Duration::from_millis(30));
    p.expect_no_message(Duration::from_millis(100));
    assert!(s.is_cancelled(), "ended with its owner");
}

#[test]
fn a_schedule_ends_when_its_target_stops() {
    let kit = TestKit::new();
    let p = kit.probe();
    let c = clock(&kit, &p);
    let s = kit.schedule(Duration::ZERO, Duration::from_millis(5), &c, || 3);
    p.expect_of_type::<(u32, Instant)>();
    c.stop().timeout(WAIT).wait().unwrap();
    let _ = p.next_within(Duration::from_millis(30));
    p.expect_no_message(Duration::from_millis(50));
    assert!(s.is_cancelled());
    assert_eq!(kit.metrics().dead_letters, 0, "a timer of a stopped target delivers nothing");
}

/// An idle shard checks its timers only on the passes that read the clock anyway (every 8th
/// while it spins, every pass once it yields or parks), at that reading: under every idle
/// policy a timer of a shard with nothing else to do still fires, never before its deadline.
#[test]
fn an_idle_shard_fires_its_timers_never_early_under_every_idle_policy() {
    use corelane::{Idle, Runtime, Shards};
    for idle in [Idle::Spin, Idle::Park, Idle::SpinThenPark(Duration::from_micros(50))] {
        let kit = TestKit::with_runtime(Runtime::builder().shards(Shards::Count(1)).idle(idle));
        let p = kit.probe();
        let c = clock(&kit, &p);
        for delay in [Duration::from_millis(20), Duration::from_micros(200), Duration::ZERO] {
            let start = Instant::now();
            kit.schedule_once(delay, &c, 7);
            let (k, at) = p.expect_of_type::<(u32, Instant)>();
            assert_eq!(k, 7, "{idle:?}");
            assert!(at >= start + delay, "{idle:?}: {delay:?} fired early by {:?}", start + delay - at);
        }
        // A fixed rate keeps firing on a shard that idles between its ticks.
        let s = kit.schedule(Duration::ZERO, Duration::from_millis(2), &c, || 8);
        for _ in 0..5 {
            assert_eq!(p.expect_of_type::<(u32, Instant)>().0, 8, "{idle:?}");
        }
        s.cancel();
        kit.shutdown().unwrap();
    }
}
