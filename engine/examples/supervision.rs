//! A parent supervises a worker that fails on bad input: the failure restarts the worker (a
//! fresh instance from its factory), its mailbox is kept, and the work goes on.
//!
//! ```text
//! cargo run -p corelane --example supervision
//! ```

use corelane::{Actor, ActorError, ActorRef, Ctx, Reply, Runtime, Signal, SpawnOptions, Supervisor};
use std::time::Duration;

/// Parses numbers; fails on anything else.
struct Parser {
    sum: i64,
}

enum Work {
    Parse(String),
    Sum(Reply<i64>),
}

impl Actor for Parser {
    type Msg = Work;
    fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
        println!("parser started (sum starts at 0)");
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, msg: Work) -> Result<(), ActorError> {
        match msg {
            Work::Parse(text) => self.sum += text.trim().parse::<i64>()?, // `?`: a failure
            Work::Sum(r) => r.send(self.sum),
        }
        Ok(())
    }
}

/// Owns the parser; hands out its address.
struct Boss;

enum BossMsg {
    Worker(Reply<ActorRef<Work>>),
}

impl Actor for Boss {
    type Msg = BossMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, BossMsg::Worker(r): BossMsg) -> Result<(), ActorError> {
        let worker = ctx.spawn_child(|| Parser { sum: 0 })?;
        ctx.watch(&worker);
        r.send(worker);
        Ok(())
    }
    fn signal(&mut self, _: &mut Ctx<Self>, sig: Signal) -> Result<(), ActorError> {
        println!("boss: {sig:?}");
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().build()?;
    // One-for-one: a failing child is restarted, at most 10 times within 10 s.
    let boss = rt.spawn_with(SpawnOptions::new().supervisor(Supervisor::one_for_one()), || Boss)?;
    let parser = boss.ask(BossMsg::Worker).timeout(Duration::from_secs(5)).wait()?;
    for text in ["1", "2", "three", "4"] {
        parser.tell(Work::Parse(text.to_string()))?;
    }
    // "three" failed: the parser restarted with a fresh sum, then took "4".
    let sum = parser.ask(Work::Sum).timeout(Duration::from_secs(5)).wait()?;
    let restarts = parser.metrics().timeout(Duration::from_secs(5)).wait()?.restarts;
    println!("sum after the restart: {sum}, restarts: {restarts}");
    assert_eq!((sum, restarts), (4, 1));
    rt.shutdown()?;
    Ok(())
}
