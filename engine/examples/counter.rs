//! A user's first actor: spawn it, tell it, ask it, from a plain `main`.
//!
//! ```text
//! cargo run -p corelane --example counter
//! ```

use corelane::{Actor, ActorError, Ctx, Reply, Runtime};
use std::time::Duration;

/// What the counter is told or asked. One message type per actor; an enum is the norm.
enum Msg {
    Add(u64),
    Get(Reply<u64>),
}

/// The state lives on one shard and never moves: it need not be `Send`.
#[derive(Default)]
struct Counter {
    total: u64,
}

impl Actor for Counter {
    type Msg = Msg;
    fn receive(&mut self, _: &mut Ctx<Self>, msg: Msg) -> Result<(), ActorError> {
        match msg {
            Msg::Add(n) => self.total += n,
            Msg::Get(reply) => reply.send(self.total),
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A shard per core, parking when idle after a short spin: the builder's defaults.
    let rt = Runtime::builder().build()?;
    let counter = rt.spawn(Counter::default)?;
    for n in 1..=100 {
        counter.tell(Msg::Add(n))?; // never blocks
    }
    // From a plain thread an ask blocks for its answer (or its timeout).
    let total = counter.ask(Msg::Get).timeout(Duration::from_secs(5)).wait()?;
    println!("1 + 2 + ... + 100 = {total}");
    assert_eq!(total, 5050);
    rt.shutdown()?;
    Ok(())
}
