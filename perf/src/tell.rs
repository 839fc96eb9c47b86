//! `tell-local` and `tell-cross`: one driver streams small messages to one sink, on the same
//! shard or across two. The sink returns credit every `CREDIT_EVERY` messages and the driver
//! keeps at most `WINDOW` in flight, so queues stay bounded however fast either side is.

use crate::report::{fig, Figure};
use crate::{engine_runtime, Cores};
use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
use std::time::{Duration, Instant};

const BURST: u64 = 64;
const CREDIT_EVERY: u64 = 4096;
const WINDOW: u64 = 65_536;

enum SinkMsg {
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

enum DriverMsg {
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

pub(crate) fn tell(name: &'static str, cores: Cores, cross: bool, n: u64) -> Vec<Figure> {
    let rt = engine_runtime(cores, 2);
    let driver = rt.spawn_on(0, Driver::default).unwrap();
    let d2 = driver.clone();
    let sink_shard = if cross { 1 } else { 0 };
    let sink = rt
        .spawn_on(sink_shard, move || Sink {
            driver: d2.clone(),
            count: 0,
            sum: 0,
            since_credit: 0,
            expect: None,
        })
        .unwrap();
    let wait = Duration::from_secs(120);
    // Warm-up: mailboxes and rings reach their working size.
    let warm = n / 10;
    let done = sink.ask(|done| SinkMsg::Expect { until: warm, done });
    driver.tell(DriverMsg::Run { sink: sink.clone(), n: warm }).unwrap();
    done.timeout(wait).wait().expect("warm-up completes");
    let start = Instant::now();
    let done = sink.ask(|done| SinkMsg::Expect { until: warm + n, done });
    driver.tell(DriverMsg::Run { sink, n }).unwrap();
    done.timeout(wait).wait().expect("run completes");
    let t = start.elapsed();
    rt.shutdown().unwrap();
    vec![fig(name, "msgs_per_sec", n as f64 / t.as_secs_f64(), "msg/s")]
}
