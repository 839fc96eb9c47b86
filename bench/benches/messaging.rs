//! Micro-benchmarks through the public API: a blocking ask round trip from a plain thread, and
//! a burst of same-shard tells handled inside one actor turn.

use corelane::{Actor, ActorError, ActorRef, Ctx, Idle, Reply, Runtime, Shards};
use corelane_bench::workload::{CountMsg, Counter, Echo, EchoMsg};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

enum BurstMsg {
    Burst(u64, Reply<()>),
}
struct Burster(ActorRef<CountMsg>);
impl Actor for Burster {
    type Msg = BurstMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, BurstMsg::Burst(n, r): BurstMsg) -> Result<(), ActorError> {
        for _ in 0..n {
            let _ = self.0.tell(CountMsg::Add(1));
        }
        r.send(());
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Spin).build().unwrap();
    let echo = rt.spawn_on(0, || Echo).unwrap();
    let wait = Duration::from_secs(5);
    c.bench_function("ask_round_trip_from_thread", |b| {
        b.iter(|| echo.ask(|r| EchoMsg::Echo(1, r)).timeout(wait).wait().unwrap())
    });
    let counter = rt.spawn_on(0, Counter::default).unwrap();
    let c2 = counter.clone();
    let burster = rt.spawn_on(0, move || Burster(c2.clone())).unwrap();
    let mut g = c.benchmark_group("same_shard");
    const N: u64 = 10_000;
    g.throughput(Throughput::Elements(N));
    g.bench_function("tell_burst_10k", |b| {
        b.iter(|| {
            burster.ask(|r| BurstMsg::Burst(N, r)).timeout(wait).wait().unwrap();
            counter.ask(CountMsg::Get).timeout(wait).wait().unwrap()
        })
    });
    g.finish();
    rt.shutdown().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
