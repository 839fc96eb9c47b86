//! Peers side by side: the same workload on corelane, actix, kameo and ractor, each written as
//! its own documentation shows, each run in a process of its own, the frameworks interleaved
//! round by round (so drift falls on all alike); the medians and corelane's ratio to the best
//! peer. Opt-in: `cargo run --release -p corelane-bench --features peers --bin peers`.
//!
//! ```text
//! peers [workload] [--rounds N] [--n N]
//! ```
//!
//! corelane runs twice: driven from `main`'s thread, and from `main`'s future on a shard
//! (`Runtime::block_on`).
//!
//! Workloads:
//! - `spawn-external`: what a user's `main` does first, under each framework's defaults: spawn
//!   `n` counter actors, tell each `Add(1)`, then ask each for its count and wait for the answer
//!   (checked: the counts add up to `n`); actors per second over the three steps.

use std::process::Command;
use std::time::Instant;

/// corelane twice: driven from `main`'s thread, and from `main`'s future on a shard
/// (`Runtime::block_on`, as actix runs `main` in `System::block_on`).
const FRAMEWORKS: [&str; 5] = ["corelane", "corelane-block-on", "actix", "kameo", "ractor"];
/// How many of `FRAMEWORKS` are corelane.
const OURS: usize = 2;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let (fw, workload, n) = (&args[1], &args[2], args[3].parse().expect("n"));
        println!("{}", run(fw, workload, n));
        return;
    }
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect(name))
    };
    let workload = args.first().filter(|a| !a.starts_with("--")).cloned().unwrap_or("spawn-external".into());
    let (rounds, n) = (flag("--rounds", 5), flag("--n", 100_000));
    let exe = std::env::current_exe().expect("own path");
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); FRAMEWORKS.len()];
    for _ in 0..rounds {
        for (i, fw) in FRAMEWORKS.iter().enumerate() {
            let out =
                Command::new(&exe).args(["--child", fw, &workload, &n.to_string()]).output().expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            values[i].push(text.trim().parse().unwrap_or_else(|_| panic!("{fw} said {text:?}")));
        }
    }
    println!("{workload}, n = {n}, {rounds} rounds (actors/s; median, min-max)");
    let mut medians = Vec::new();
    for (fw, v) in FRAMEWORKS.iter().zip(&mut values) {
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        medians.push(median);
        println!("{fw:<18} {median:>10.0}   {:.0}-{:.0}", v[0], v[v.len() - 1]);
    }
    let best_peer = medians[OURS..].iter().copied().fold(0.0, f64::max);
    for (fw, m) in FRAMEWORKS.iter().zip(&medians).take(OURS) {
        println!("{fw} / best peer: {:.2}", m / best_peer);
    }
}

/// One run of `workload` on framework `fw`: its figure.
fn run(fw: &str, workload: &str, n: u64) -> f64 {
    assert_eq!(workload, "spawn-external", "unknown workload {workload:?}");
    let start = Instant::now();
    let sum = match fw {
        "corelane" => cl::spawn_external(n),
        "corelane-block-on" => cl::spawn_external_block_on(n),
        "actix" => ax::spawn_external(n),
        "kameo" => km::spawn_external(n),
        "ractor" => rc::spawn_external(n),
        other => panic!("unknown framework {other:?}"),
    };
    let t = start.elapsed();
    assert_eq!(sum, n, "{fw}: every actor counted its tell");
    n as f64 / t.as_secs_f64()
}

mod cl {
    use corelane::{Actor, ActorError, Ctx, Reply, Runtime};
    use std::time::Duration;

    struct Counter(u64);
    enum Msg {
        Add(u64),
        Get(Reply<u64>),
    }
    impl Actor for Counter {
        type Msg = Msg;
        fn receive(&mut self, _: &mut Ctx<Self>, msg: Msg) -> Result<(), ActorError> {
            match msg {
                Msg::Add(n) => self.0 += n,
                Msg::Get(r) => r.send(self.0),
            }
            Ok(())
        }
    }

    pub(crate) fn spawn_external(n: u64) -> u64 {
        let rt = Runtime::builder().build().expect("runtime");
        let actors: Vec<_> = (0..n).map(|_| rt.spawn(|| Counter(0)).expect("spawn")).collect();
        for a in &actors {
            a.tell(Msg::Add(1)).expect("tell");
        }
        actors.iter().map(|a| a.ask(Msg::Get).timeout(Duration::from_secs(30)).wait().expect("ask")).sum()
    }

    pub(crate) fn spawn_external_block_on(n: u64) -> u64 {
        let rt = Runtime::builder().build().expect("runtime");
        let h = rt.handle().clone();
        rt.block_on(move || async move {
            let actors: Vec<_> = (0..n).map(|_| h.spawn(|| Counter(0)).expect("spawn")).collect();
            for a in &actors {
                a.tell(Msg::Add(1)).expect("tell");
            }
            let mut sum = 0;
            for a in &actors {
                sum += a.ask(Msg::Get).timeout(Duration::from_secs(30)).await.expect("ask");
            }
            sum
        })
        .expect("block_on")
    }
}

mod ax {
    use actix::prelude::*;

    struct Counter(u64);
    impl Actor for Counter {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Add(u64);
    #[derive(Message)]
    #[rtype(result = "u64")]
    struct Get;
    impl Handler<Add> for Counter {
        type Result = ();
        fn handle(&mut self, m: Add, _: &mut Context<Self>) {
            self.0 += m.0;
        }
    }
    impl Handler<Get> for Counter {
        type Result = u64;
        fn handle(&mut self, _: Get, _: &mut Context<Self>) -> u64 {
            self.0
        }
    }

    pub(crate) fn spawn_external(n: u64) -> u64 {
        System::new().block_on(async move {
            let addrs: Vec<_> = (0..n).map(|_| Counter(0).start()).collect();
            for a in &addrs {
                a.do_send(Add(1));
            }
            let mut sum = 0;
            for a in &addrs {
                sum += a.send(Get).await.expect("ask");
            }
            sum
        })
    }
}

mod km {
    use kameo::prelude::*;

    #[derive(Actor)]
    struct Counter(u64);
    struct Add(u64);
    struct Get;
    impl Message<Add> for Counter {
        type Reply = ();
        async fn handle(&mut self, m: Add, _: &mut Context<Self, Self::Reply>) {
            self.0 += m.0;
        }
    }
    impl Message<Get> for Counter {
        type Reply = u64;
        async fn handle(&mut self, _: Get, _: &mut Context<Self, Self::Reply>) -> u64 {
            self.0
        }
    }

    pub(crate) fn spawn_external(n: u64) -> u64 {
        tokio::runtime::Runtime::new().expect("tokio").block_on(async move {
            let refs: Vec<_> = (0..n).map(|_| <Counter as kameo::Actor>::spawn(Counter(0))).collect();
            for r in &refs {
                r.tell(Add(1)).await.expect("tell");
            }
            let mut sum = 0;
            for r in &refs {
                sum += r.ask(Get).await.expect("ask");
            }
            sum
        })
    }
}

mod rc {
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

    struct Counter;
    enum Msg {
        Add(u64),
        Get(RpcReplyPort<u64>),
    }
    impl Actor for Counter {
        type Msg = Msg;
        type State = u64;
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<u64, ActorProcessingErr> {
            Ok(0)
        }
        async fn handle(&self, _: ActorRef<Msg>, m: Msg, s: &mut u64) -> Result<(), ActorProcessingErr> {
            match m {
                Msg::Add(n) => *s += n,
                Msg::Get(r) => {
                    let _ = r.send(*s);
                }
            }
            Ok(())
        }
    }

    pub(crate) fn spawn_external(n: u64) -> u64 {
        tokio::runtime::Runtime::new().expect("tokio").block_on(async move {
            let mut refs = Vec::new();
            for _ in 0..n {
                refs.push(Actor::spawn(None, Counter, ()).await.expect("spawn").0);
            }
            for r in &refs {
                r.cast(Msg::Add(1)).expect("tell");
            }
            let mut sum = 0;
            for r in &refs {
                sum += ractor::call!(r, Msg::Get).expect("ask");
            }
            sum
        })
    }
}
