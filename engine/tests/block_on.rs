//! `Handle::block_on`: a future built and run on a shard, its output handed back to the thread
//! that waits for it; refused on a shard, failed once the runtime is gone.

use corelane::{Actor, ActorError, AskError, Ctx, Reply, Runtime, Shards};
use std::rc::Rc;
use std::time::Duration;

struct Counter(u64);
enum Msg {
    Add(u64),
    Get(Reply<u64>),
    /// Tries `block_on` from inside the actor and answers with what it got.
    Nested(Reply<Result<u8, AskError>>),
}
impl Actor for Counter {
    type Msg = Msg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: Msg) -> Result<(), ActorError> {
        match msg {
            Msg::Add(n) => self.0 += n,
            Msg::Get(r) => r.send(self.0),
            Msg::Nested(r) => r.send(ctx.runtime().block_on(|| async { 1u8 })),
        }
        Ok(())
    }
}

fn runtime() -> Runtime {
    Runtime::builder().shards(Shards::Count(2)).build().expect("runtime")
}

#[test]
fn the_future_runs_on_a_shard_spawns_and_awaits_asks_and_its_output_comes_back() {
    let rt = runtime();
    let h = rt.handle().clone();
    let (total, on_shard) = rt
        .block_on(move || async move {
            // Not Send: built on the shard, it never leaves it.
            let local = Rc::new(std::cell::Cell::new(0u64));
            for i in 0..1000 {
                let c = h.spawn(|| Counter(0)).expect("spawn");
                c.tell(Msg::Add(i)).expect("tell");
                local.set(local.get() + c.ask(Msg::Get).timeout(Duration::from_secs(5)).await.expect("ask"));
            }
            // A blocking wait here would stall the shard: refused, as everywhere on a shard.
            let c = h.spawn(|| Counter(0)).expect("spawn");
            let blocked = c.ask(Msg::Get).timeout(Duration::from_secs(5)).wait();
            (local.get(), blocked)
        })
        .expect("done");
    assert_eq!(total, (0..1000).sum::<u64>());
    assert_eq!(on_shard, Err(AskError::WouldBlock));
}

#[test]
fn block_on_is_refused_on_a_shard_and_fails_once_the_runtime_is_gone() {
    let rt = runtime();
    let c = rt.spawn(|| Counter(0)).unwrap();
    let nested = c.ask(Msg::Nested).timeout(Duration::from_secs(5)).wait().unwrap();
    assert_eq!(nested, Err(AskError::WouldBlock));

    // A future that never ends, ended by the shutdown (whether it started before it or not):
    // its waiter is told.
    let h = rt.handle().clone();
    let waiter = std::thread::spawn(move || h.block_on(std::future::pending::<u8>));
    assert_eq!(rt.block_on(|| async { 7 }), Ok(7));
    let h = rt.handle().clone();
    rt.shutdown().unwrap();
    assert_eq!(waiter.join().unwrap(), Err(AskError::Closed));
    assert_eq!(h.block_on(|| async { 1 }), Err(AskError::Closed));
}
