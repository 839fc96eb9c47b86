//! Shared by the engine's integration tests: the wait bound, a runtime of a given shape, an
//! actor that answers pings and can hold a request, and one that sums work and reports it when
//! it stops; the mailbox kinds' burst harness (`burst`).
#![allow(dead_code, unreachable_pub)]

use corelane::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards};
use std::sync::mpsc;
use std::time::Duration;

#[cfg(target_os = "linux")]
pub mod affinity;
pub mod burst;

pub const WAIT: Duration = Duration::from_secs(10);

pub fn runtime(shards: usize, idle: Idle) -> Runtime {
    Runtime::builder().shards(Shards::Count(shards)).idle(idle).build().expect("runtime builds")
}

pub enum SlowMsg {
    /// Keep the reply instead of answering.
    Hold(Reply<u32>),
    /// Answer the held reply now.
    Release,
    Ping(Reply<()>),
}

#[derive(Default)]
pub struct Slow {
    held: Option<Reply<u32>>,
}
impl Actor for Slow {
    type Msg = SlowMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: SlowMsg) -> Result<(), ActorError> {
        match m {
            SlowMsg::Hold(r) => self.held = Some(r),
            SlowMsg::Release => {
                if let Some(r) = self.held.take() {
                    r.send(7)
                }
            }
            SlowMsg::Ping(r) => r.send(()),
        }
        Ok(())
    }
}

pub enum WorkMsg {
    Work(u64),
    Ping(Reply<()>),
}
/// Sums the work it is given; reports (count, sum) from `stopped`.
pub struct Worker {
    pub sum: u64,
    pub count: u64,
    pub report: mpsc::Sender<(u64, u64)>,
}
impl Actor for Worker {
    type Msg = WorkMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: WorkMsg) -> Result<(), ActorError> {
        match m {
            WorkMsg::Work(n) => {
                self.sum += n;
                self.count += 1;
            }
            WorkMsg::Ping(r) => r.send(()),
        }
        Ok(())
    }
    fn stopped(&mut self, _: &mut Ctx<Self>) {
        self.report.send((self.count, self.sum)).unwrap();
    }
}

impl Worker {
    /// A worker that reports to `report`.
    pub fn new(report: mpsc::Sender<(u64, u64)>) -> Self {
        Self { sum: 0, count: 0, report }
    }
}
