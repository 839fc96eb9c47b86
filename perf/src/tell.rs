//! `tell-local` and `tell-cross`: one driver streams small messages to one sink, on the same
//! shard or across two. The sink returns credit every `CREDIT_EVERY` messages and the driver
//! keeps at most `WINDOW` in flight, so queues stay bounded however fast either side is.
//!
//! `tell-bounded` and `tell-priority` are `tell-local` into a sink whose mailbox is bounded
//! (with room for the whole window, so nothing is dropped: the figure is the price of the
//! check) or ordered by priority (four priorities, mixed). The stream also serves the router
//! workload, where the driver's target is a router in front of the sinks.

use crate::report::{fig, Figure};
use crate::{engine_runtime, Cores};
use corelane::{
    Actor, ActorError, ActorRef, Ctx, MailboxKind, Overflow, Placement, Reply, Runtime, SpawnOptions,
};
use std::time::{Duration, Instant};

const BURST: u64 = 64;
const CREDIT_EVERY: u64 = 4096;
const WINDOW: u64 = 65_536;

pub(crate) enum SinkMsg {
    Inc(u64),
    /// Answer once `until` messages have arrived in total (counting from the sink's start, so
    /// the request may arrive before or after the messages it waits for).
    Expect {
        until: u64,
        done: Reply<u64>,
    },
}

struct Sink {
    driver: ActorRef<DriverMsg>,
    count: u64,
    sum: u64,
    since_credit: u64,
    expect: Option<(u64, Reply<u64>)>,
}

impl Sink {
    fn finish_if_done(&mut self) {
        if self.expect.as_ref().is_some_and(|(n, _)| self.count >= *n) {
            let (_, done) = self.expect.take().unwrap();
            done.send(self.sum);
        }
    }
}

impl Actor for Sink {
    type Msg = SinkMsg;
    #[inline]
    fn receive(&mut self, _: &mut Ctx<Self>, m: SinkMsg) -> Result<(), ActorError> {
        match m {
            SinkMsg::Inc(v) => {
                self.count += 1;
                self.sum = self.sum.wrapping_add(v);
                self.since_credit += 1;
                if self.since_credit == CREDIT_EVERY {
                    let _ = self.driver.tell(DriverMsg::Credit(CREDIT_EVERY));
                    self.since_credit = 0;
                }
                if self.expect.is_some() {
                    self.finish_if_done();
                }
            }
            SinkMsg::Expect { until, done } => {
                self.expect = Some((until, done));
                self.finish_if_done();
            }
        }
        Ok(())
    }
}

pub(crate) enum DriverMsg {
    Run { sink: ActorRef<SinkMsg>, n: u64 },
    Continue,
    Credit(u64),
}

#[derive(Default)]
struct Driver {
    sink: Option<ActorRef<SinkMsg>>,
    left: u64,
    in_flight: u64,
    waiting: bool,
}

impl Driver {
    fn pump(&mut self, ctx: &mut Ctx<Self>) {
        let sink = self.sink.as_ref().expect("run first");
        let burst = BURST.min(self.left).min(WINDOW - self.in_flight);
        for i in 0..burst {
            let _ = sink.tell(SinkMsg::Inc(i));
        }
        self.left -= burst;
        self.in_flight += burst;
        if self.left > 0 {
            if self.in_flight < WINDOW {
                let _ = ctx.myself().tell(DriverMsg::Continue);
            } else {
                self.waiting = true;
            }
        }
    }
}

impl Actor for Driver {
    type Msg = DriverMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: DriverMsg) -> Result<(), ActorError> {
        match m {
            DriverMsg::Run { sink, n } => {
                self.sink = Some(sink);
                self.left = n;
                self.pump(ctx);
            }
            DriverMsg::Continue => self.pump(ctx),
            DriverMsg::Credit(k) => {
                self.in_flight -= k;
                if self.waiting {
                    self.waiting = false;
                    self.pump(ctx);
                }
            }
        }
        Ok(())
    }
}

/// A driver on shard 0, for [`stream`].
pub(crate) fn driver(rt: &Runtime) -> ActorRef<DriverMsg> {
    rt.spawn_on(0, Driver::default).unwrap()
}

/// A sink on `shard` with a mailbox of `kind`, crediting `driver`.
pub(crate) fn sink(
    rt: &Runtime,
    driver: &ActorRef<DriverMsg>,
    shard: usize,
    kind: MailboxKind,
) -> ActorRef<SinkMsg> {
    let d = driver.clone();
    let opts = SpawnOptions::new().placement(Placement::Shard(shard)).mailbox(kind);
    rt.spawn_with(opts, move || Sink { driver: d.clone(), count: 0, sum: 0, since_credit: 0, expect: None })
        .unwrap()
}

/// Streams a warm-up, then `n` messages from `driver` to `target`, which spreads them evenly
/// over `sinks`; returns the time of the `n` (until the last sink has counted its share).
pub(crate) fn stream(
    driver: &ActorRef<DriverMsg>,
    target: &ActorRef<SinkMsg>,
    sinks: &[ActorRef<SinkMsg>],
    n: u64,
) -> Duration {
    let wait = Duration::from_secs(120);
    let k = sinks.len() as u64;
    let round = |total: u64| {
        let dones: Vec<_> =
            sinks.iter().map(|s| s.ask(|done| SinkMsg::Expect { until: total / k, done })).collect();
        dones
    };
    // Warm-up: mailboxes and rings reach their working size.
    let warm = n / 10 / k * k;
    let dones = round(warm);
    driver.tell(DriverMsg::Run { sink: target.clone(), n: warm }).unwrap();
    for d in dones {
        d.timeout(wait).wait().expect("warm-up completes");
    }
    let n = n / k * k;
    let start = Instant::now();
    let dones = round(warm + n);
    driver.tell(DriverMsg::Run { sink: target.clone(), n }).unwrap();
    for d in dones {
        d.timeout(wait).wait().expect("run completes");
    }
    start.elapsed()
}

pub(crate) fn tell(name: &'static str, cores: Cores, cross: bool, n: u64) -> Vec<Figure> {
    tell_into(name, cores, if cross { 1 } else { 0 }, MailboxKind::Unbounded, n)
}

/// `tell-local` into a bounded mailbox with room for the whole window.
pub(crate) fn tell_bounded(cores: Cores, n: u64) -> Vec<Figure> {
    let kind = MailboxKind::bounded(WINDOW as usize + 16, Overflow::Reject);
    tell_into("tell-bounded", cores, 0, kind, n)
}

/// `tell-local` into a priority mailbox: four priorities, mixed.
pub(crate) fn tell_priority(cores: Cores, n: u64) -> Vec<Figure> {
    let rank = |m: &SinkMsg| match m {
        SinkMsg::Inc(i) => i % 4,
        SinkMsg::Expect { .. } => 0,
    };
    let kind = MailboxKind::priority(move |a: &SinkMsg, b: &SinkMsg| rank(a).cmp(&rank(b)));
    tell_into("tell-priority", cores, 0, kind, n)
}

fn tell_into(name: &'static str, cores: Cores, sink_shard: usize, kind: MailboxKind, n: u64) -> Vec<Figure> {
    let rt = engine_runtime(cores, 2);
    let driver = driver(&rt);
    let sink = sink(&rt, &driver, sink_shard, kind);
    let t = stream(&driver, &sink, std::slice::from_ref(&sink), n);
    rt.shutdown().unwrap();
    vec![fig(name, "msgs_per_sec", n as f64 / t.as_secs_f64(), "msg/s")]
}
