//! Shared by the engine's integration tests: the wait bound, a runtime of a given shape, and an
//! actor that answers pings and can hold a request.
#![allow(dead_code, unreachable_pub)]

use corelane::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards};
use std::time::Duration;

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
