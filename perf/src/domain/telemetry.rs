//! `telemetry-ingest`: `SENSORS` sensor actors spread over two shards, each reading going to its
//! sensor, each sensor passing a sample to its shard's aggregator, each aggregator passing
//! partial sums to one roll-up. A feeder actor per shard plays the network: it sends every
//! local sensor its readings in turn.
//! - throughput: readings per second end to end (every reading summed at the roll-up);
//! - delay: with readings paced at `RATE`, the time from a reading's creation to the roll-up
//!   receiving the partial that holds it: for the newest reading of every partial (transit
//!   through sensor, aggregator and roll-up) and for the oldest (transit plus the wait for the
//!   partial to fill: `FLUSH` samples), p50 / p99;
//! - memory: resident bytes per idle sensor (in a fresh process).
//!
//! Checked: the roll-up's count and sum are those of every reading sent.

use crate::report::{fig, Figure};
use crate::{engine_runtime, Cores};
use corelane::{Actor, ActorError, ActorRef, Ctx, Reply, Runtime};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

const SENSORS: u64 = 100_000;
/// Samples an aggregator sums before it passes a partial on.
const FLUSH: u64 = 256;
/// Readings per second, all feeders together, in the delay run.
const RATE: u64 = 1_000_000;
/// Readings a feeder sends per turn at most.
const BURST: u64 = 64;

/// The value of sensor `id`'s `seq`-th reading.
fn value(id: u64, seq: u64) -> u64 {
    (id * 31 + seq * 7) % 1000
}

#[derive(Clone, Copy)]
struct Reading {
    seq: u64,
    at: Instant,
}

struct Sensor {
    id: u64,
    aggregator: ActorRef<AggMsg>,
    count: u64,
    min: u64,
    max: u64,
}

impl Actor for Sensor {
    type Msg = Reading;
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reading) -> Result<(), ActorError> {
        let v = value(self.id, r.seq);
        self.count += 1;
        (self.min, self.max) = (self.min.min(v), self.max.max(v));
        self.aggregator.tell(AggMsg::Sample(v, r.at))?;
        Ok(())
    }
}

enum AggMsg {
    /// This many samples will come in all.
    Expect(u64),
    Sample(u64, Instant),
}

struct Aggregator {
    rollup: ActorRef<RollupMsg>,
    expect: u64,
    seen: u64,
    sum: u64,
    count: u64,
    oldest: Option<Instant>,
    newest: Option<Instant>,
}

impl Actor for Aggregator {
    type Msg = AggMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: AggMsg) -> Result<(), ActorError> {
        match m {
            AggMsg::Expect(n) => self.expect += n,
            AggMsg::Sample(v, at) => {
                self.seen += 1;
                self.sum += v;
                self.count += 1;
                self.oldest.get_or_insert(at);
                self.newest = Some(at);
            }
        }
        if self.count > 0 && (self.count >= FLUSH || self.seen == self.expect) {
            let (oldest, newest) =
                (self.oldest.take().expect("a sample"), self.newest.take().expect("a sample"));
            self.rollup.tell(RollupMsg::Partial { sum: self.sum, count: self.count, oldest, newest })?;
            (self.sum, self.count) = (0, 0);
        }
        Ok(())
    }
}

enum RollupMsg {
    Partial { sum: u64, count: u64, oldest: Instant, newest: Instant },
    Wait(u64, Reply<Totals>),
}

/// What the roll-up holds at the end of a session.
struct Totals {
    count: u64,
    sum: u64,
    /// Delay of the newest and of the oldest reading of each partial.
    newest: Histogram<u64>,
    oldest: Histogram<u64>,
}

impl Totals {
    fn new() -> Self {
        Totals {
            count: 0,
            sum: 0,
            newest: Histogram::new(3).expect("histogram"),
            oldest: Histogram::new(3).expect("histogram"),
        }
    }
}

struct Rollup {
    totals: Totals,
    waiting: Option<(u64, Reply<Totals>)>,
}

impl Actor for Rollup {
    type Msg = RollupMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: RollupMsg) -> Result<(), ActorError> {
        match m {
            RollupMsg::Partial { sum, count, oldest, newest } => {
                let t = &mut self.totals;
                t.sum += sum;
                t.count += count;
                let _ = t.oldest.record(oldest.elapsed().as_nanos() as u64);
                let _ = t.newest.record(newest.elapsed().as_nanos() as u64);
            }
            RollupMsg::Wait(n, r) => self.waiting = Some((n, r)),
        }
        if matches!(self.waiting, Some((n, _)) if n == self.totals.count) {
            let (_, r) = self.waiting.take().expect("waiting");
            r.send(std::mem::replace(&mut self.totals, Totals::new()));
        }
        Ok(())
    }
}

enum FeedMsg {
    Run { rounds: u64, pace: Duration },
    Next,
}

/// Sends each local sensor its readings, sensor after sensor, round after round.
struct Feeder {
    sensors: Vec<ActorRef<Reading>>,
    total: u64,
    sent: u64,
    pace: Duration,
    start: Instant,
}

impl Actor for Feeder {
    type Msg = FeedMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: FeedMsg) -> Result<(), ActorError> {
        if let FeedMsg::Run { rounds, pace } = m {
            (self.total, self.sent, self.pace, self.start) =
                (rounds * self.sensors.len() as u64, 0, pace, Instant::now());
        }
        let now = Instant::now();
        let mut burst = 0;
        while self.sent < self.total && burst < BURST {
            if !self.pace.is_zero() && now < self.start + self.pace * self.sent as u32 {
                break;
            }
            let k = self.sensors.len() as u64;
            self.sensors[(self.sent % k) as usize].tell(Reading { seq: self.sent / k, at: now })?;
            self.sent += 1;
            burst += 1;
        }
        if self.sent < self.total {
            ctx.myself().tell(FeedMsg::Next)?;
        }
        Ok(())
    }
}

/// The sensors' network: per shard, the sensors, their aggregator and their feeder.
struct Fleet {
    feeders: Vec<ActorRef<FeedMsg>>,
    aggregators: Vec<ActorRef<AggMsg>>,
    rollup: ActorRef<RollupMsg>,
    per_shard: Vec<u64>,
}

fn fleet(rt: &Runtime, sensors: u64) -> Fleet {
    let rollup = rt.spawn_on(0, || Rollup { totals: Totals::new(), waiting: None }).expect("spawn");
    let shards = rt.shard_count();
    let mut fleet = Fleet {
        feeders: Vec::new(),
        aggregators: Vec::new(),
        rollup: rollup.clone(),
        per_shard: vec![0; shards],
    };
    let mut local: Vec<Vec<ActorRef<Reading>>> = vec![Vec::new(); shards];
    for s in 0..shards {
        let r = rollup.clone();
        let agg = rt
            .spawn_on(s, move || Aggregator {
                rollup: r.clone(),
                expect: 0,
                seen: 0,
                sum: 0,
                count: 0,
                oldest: None,
                newest: None,
            })
            .expect("spawn");
        fleet.aggregators.push(agg);
    }
    for id in 0..sensors {
        let s = (id % shards as u64) as usize;
        let agg = fleet.aggregators[s].clone();
        let sensor = rt
            .spawn_on(s, move || Sensor { id, aggregator: agg.clone(), count: 0, min: u64::MAX, max: 0 })
            .expect("spawn");
        local[s].push(sensor);
        fleet.per_shard[s] += 1;
    }
    for (s, sensors) in local.into_iter().enumerate() {
        let mut sensors = Some(sensors);
        let f = rt
            .spawn_on(s, move || Feeder {
                sensors: sensors.take().unwrap_or_default(),
                total: 0,
                sent: 0,
                pace: Duration::ZERO,
                start: Instant::now(),
            })
            .expect("spawn");
        fleet.feeders.push(f);
    }
    fleet
}

/// One session of `rounds` readings per sensor: its time and totals. Checks the sums.
fn session(fleet: &Fleet, sensors: u64, rounds: u64, rate: Option<u64>) -> (Duration, Totals) {
    let n = sensors * rounds;
    let shards = fleet.feeders.len() as u64;
    for (agg, k) in fleet.aggregators.iter().zip(&fleet.per_shard) {
        agg.tell(AggMsg::Expect(k * rounds)).expect("tell");
    }
    let answer = fleet.rollup.ask(|r| RollupMsg::Wait(n, r));
    let pace = rate.map_or(Duration::ZERO, |r| Duration::from_nanos(1_000_000_000 * shards / r));
    let start = Instant::now();
    for f in &fleet.feeders {
        f.tell(FeedMsg::Run { rounds, pace }).expect("tell");
    }
    let totals = answer.timeout(Duration::from_secs(120)).wait().expect("every reading rolled up");
    let elapsed = start.elapsed();
    let expected: u64 = (0..sensors).flat_map(|id| (0..rounds).map(move |seq| value(id, seq))).sum();
    assert_eq!((totals.count, totals.sum), (n, expected), "the roll-up holds every reading once");
    (elapsed, totals)
}

pub(crate) fn telemetry_ingest(cores: Cores, n: u64) -> Vec<Figure> {
    const W: &str = "telemetry-ingest";
    let rt = engine_runtime(cores, 2);
    let fleet = fleet(&rt, SENSORS);
    let rounds = (n / SENSORS).max(1);
    session(&fleet, SENSORS, 1, None);
    let (t, _) = session(&fleet, SENSORS, rounds, None);
    let (_, paced) = session(&fleet, SENSORS, rounds, Some(RATE));
    rt.shutdown().expect("shutdown");
    vec![
        fig(W, "readings_per_sec", (SENSORS * rounds) as f64 / t.as_secs_f64(), "reading/s"),
        fig(W, "transit_p50_ns", paced.newest.value_at_quantile(0.5) as f64, "ns"),
        fig(W, "transit_p99_ns", paced.newest.value_at_quantile(0.99) as f64, "ns"),
        fig(W, "with_batching_p99_ns", paced.oldest.value_at_quantile(0.99) as f64, "ns"),
        fig(
            W,
            "bytes_per_sensor",
            crate::spawn::child_reading("--child-telemetry-memory", SENSORS) / SENSORS as f64,
            "B",
        ),
    ]
}

/// The child's side of `bytes_per_sensor`: resident growth of spawning the fleet's sensors.
pub(crate) fn telemetry_memory_child(cores: Cores, sensors: u64) {
    let rt = engine_runtime(cores, 2);
    let small = fleet(&rt, 1000);
    let before = crate::spawn::resident_bytes();
    let big = fleet(&rt, sensors);
    let after = crate::spawn::resident_bytes();
    drop((small, big));
    println!("{}", after.saturating_sub(before));
    std::process::exit(0);
}
