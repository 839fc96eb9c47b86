//! The portable executor, chosen explicitly: shards run actors, local tasks, timers, asks
//! across shards and `block_on` as on glommio (the whole suite also runs on it:
//! `CORELANE_EXECUTOR=portable`, in scripts/test.sh).

use corelane::{Actor, ActorError, Ctx, Executor, Idle, Reply, Runtime, Shards};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

enum Msg {
    /// Answer after a local task waited on the shard's timer.
    Later(Reply<u32>),
    /// Ask the peer and answer with its answer plus one.
    Relay(corelane::ActorRef<Msg>, Reply<u32>),
    Now(Reply<u32>),
}

struct Node;
impl Actor for Node {
    type Msg = Msg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::Later(r) => {
                let me = ctx.myself();
                ctx.spawn_task(async move {
                    let answer = me.ask(Msg::Now).timeout(WAIT).await;
                    r.send(answer.map_or(0, |n| n + 10));
                });
            }
            Msg::Relay(peer, r) => {
                ctx.spawn_task(async move {
                    r.send(peer.ask(Msg::Now).timeout(WAIT).await.map_or(0, |n| n + 1));
                });
            }
            Msg::Now(r) => r.send(1),
        }
        Ok(())
    }
}

#[test]
fn the_portable_executor_runs_actors_tasks_timers_and_asks_across_shards() {
    for idle in [Idle::Park, Idle::Spin, Idle::SpinThenPark(Duration::from_micros(50))] {
        let rt = Runtime::builder()
            .shards(Shards::Count(2))
            .idle(idle)
            .executor(Executor::Portable)
            .build()
            .unwrap();
        assert_eq!(rt.executor(), Executor::Portable);
        let a = rt.spawn_on(0, || Node).unwrap();
        let b = rt.spawn_on(1, || Node).unwrap();
        assert_eq!(a.ask(Msg::Later).timeout(WAIT).wait(), Ok(11), "a task awaiting an ask on its own shard");
        assert_eq!(a.ask(|r| Msg::Relay(b.clone(), r)).timeout(WAIT).wait(), Ok(2), "across shards");
        // A timer of the shard (the ask's timeout) fires on the portable executor too.
        let (held, _keep) = {
            struct Silent(Option<Reply<u32>>);
            impl Actor for Silent {
                type Msg = Reply<u32>;
                fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<u32>) -> Result<(), ActorError> {
                    self.0 = Some(r);
                    Ok(())
                }
            }
            let s = rt.spawn_on(1, || Silent(None)).unwrap();
            (s.ask(|r| r).timeout(Duration::from_millis(20)).wait(), s)
        };
        assert_eq!(held, Err(corelane::AskError::Timeout));
        let h = rt.handle().clone();
        let from_shard = rt.block_on(move || async move { b_ask(&h).await }).unwrap();
        assert_eq!(from_shard, 3);
        rt.shutdown().unwrap();
    }
}

/// Spawns an actor from a shard's task and asks it.
async fn b_ask(h: &corelane::Handle) -> u32 {
    let n = h.spawn(|| Node).unwrap();
    n.ask(Msg::Now).await.unwrap() + 2
}

#[test]
fn the_executor_parses_from_its_names() {
    assert_eq!("portable".parse::<Executor>(), Ok(Executor::Portable));
    assert_eq!("glommio".parse::<Executor>(), Ok(Executor::Glommio));
    assert_eq!("auto".parse::<Executor>(), Ok(Executor::Auto));
    assert!("tokio".parse::<Executor>().is_err());
}
