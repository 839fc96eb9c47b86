//! What a user's `main` does first, under each framework's defaults. Timed from the first
//! spawn to the last answer, as the Savina workloads are: building and dropping the runtime
//! (threads, io_uring rings, a tokio or actix runtime) is left out for every framework alike.
//! - `spawn-external`: spawn `n` counter actors, tell each `Add(1)`, then ask each for its
//!   count and wait for the answer (checked: the counts add up to `n`); actors per second.
//! - `tell-external`: tell one counter `Add(1)` `n` times, then ask it for its count (checked:
//!   `n`); messages per second until the count is in.

use crate::frameworks::{actix_main, corelane, tokio_main, Fw, PATIENCE};
use crate::Workload;
use std::time::{Duration, Instant};

pub(crate) const SPAWN_EXTERNAL: Workload = Workload {
    name: "spawn-external",
    metric: "actors_per_sec",
    unit: "actor/s",
    size: 100_000,
    user_path: true,
    about: "main spawns n counters, tells each, asks each",
    run: spawn_external,
};

pub(crate) const TELL_EXTERNAL: Workload = Workload {
    name: "tell-external",
    metric: "msgs_per_sec",
    unit: "msg/s",
    size: 2_000_000,
    user_path: true,
    about: "main tells one counter n times, then asks for the count",
    run: tell_external,
};

fn spawn_external(fw: Fw, n: u64) -> (u64, Duration) {
    let (sum, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin => cl::spawn_external(fw, n),
        Fw::CorelaneBlockOn => cl::spawn_external_block_on(n),
        Fw::Actix => ax::spawn_external(n),
        Fw::Kameo => km::spawn_external(n),
        Fw::Ractor => rc::spawn_external(n),
    };
    assert_eq!(sum, n, "{}: every actor counted its tell", fw.name());
    (n, t)
}

fn tell_external(fw: Fw, n: u64) -> (u64, Duration) {
    let (count, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin => cl::tell_external(fw, n),
        Fw::CorelaneBlockOn => cl::tell_external_block_on(n),
        Fw::Actix => ax::tell_external(n),
        Fw::Kameo => km::tell_external(n),
        Fw::Ractor => rc::tell_external(n),
    };
    assert_eq!(count, n, "{}: the counter counted every tell", fw.name());
    (n, t)
}

mod cl {
    use super::*;
    use corelane_bench::workload::{CountMsg as Msg, Counter};

    pub(super) fn spawn_external(fw: Fw, n: u64) -> (u64, Duration) {
        let rt = corelane(fw);
        let start = Instant::now();
        let actors: Vec<_> = (0..n).map(|_| rt.spawn(|| Counter(0)).expect("spawn")).collect();
        for a in &actors {
            a.tell(Msg::Add(1)).expect("tell");
        }
        let sum = actors.iter().map(|a| a.ask(Msg::Get).timeout(PATIENCE).wait().expect("ask")).sum();
        (sum, start.elapsed())
    }

    pub(super) fn spawn_external_block_on(n: u64) -> (u64, Duration) {
        let rt = corelane(Fw::Corelane);
        let h = rt.handle().clone();
        rt.block_on(move || async move {
            let start = Instant::now();
            let actors: Vec<_> = (0..n).map(|_| h.spawn(|| Counter(0)).expect("spawn")).collect();
            for a in &actors {
                a.tell(Msg::Add(1)).expect("tell");
            }
            let mut sum = 0;
            for a in &actors {
                sum += a.ask(Msg::Get).timeout(PATIENCE).await.expect("ask");
            }
            (sum, start.elapsed())
        })
        .expect("block_on")
    }

    pub(super) fn tell_external(fw: Fw, n: u64) -> (u64, Duration) {
        let rt = corelane(fw);
        let start = Instant::now();
        let a = rt.spawn(|| Counter(0)).expect("spawn");
        for _ in 0..n {
            a.tell(Msg::Add(1)).expect("tell");
        }
        (a.ask(Msg::Get).timeout(PATIENCE).wait().expect("ask"), start.elapsed())
    }

    pub(super) fn tell_external_block_on(n: u64) -> (u64, Duration) {
        let rt = corelane(Fw::Corelane);
        let h = rt.handle().clone();
        rt.block_on(move || async move {
            let start = Instant::now();
            let a = h.spawn(|| Counter(0)).expect("spawn");
            for _ in 0..n {
                a.tell(Msg::Add(1)).expect("tell");
            }
            (a.ask(Msg::Get).timeout(PATIENCE).await.expect("ask"), start.elapsed())
        })
        .expect("block_on")
    }
}

mod ax {
    use super::*;
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

    pub(super) fn spawn_external(n: u64) -> (u64, Duration) {
        actix_main(async move {
            let start = Instant::now();
            let addrs: Vec<_> = (0..n).map(|_| Counter(0).start()).collect();
            for a in &addrs {
                a.do_send(Add(1));
            }
            let mut sum = 0;
            for a in &addrs {
                sum += a.send(Get).await.expect("ask");
            }
            (sum, start.elapsed())
        })
    }

    pub(super) fn tell_external(n: u64) -> (u64, Duration) {
        actix_main(async move {
            let start = Instant::now();
            let a = Counter(0).start();
            for _ in 0..n {
                a.do_send(Add(1));
            }
            (a.send(Get).await.expect("ask"), start.elapsed())
        })
    }
}

mod km {
    use super::*;
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

    pub(super) fn spawn_external(n: u64) -> (u64, Duration) {
        tokio_main(async move {
            let start = Instant::now();
            let refs: Vec<_> = (0..n).map(|_| <Counter as kameo::Actor>::spawn(Counter(0))).collect();
            for r in &refs {
                r.tell(Add(1)).await.expect("tell");
            }
            let mut sum = 0;
            for r in &refs {
                sum += r.ask(Get).await.expect("ask");
            }
            (sum, start.elapsed())
        })
    }

    pub(super) fn tell_external(n: u64) -> (u64, Duration) {
        tokio_main(async move {
            let start = Instant::now();
            let r = <Counter as kameo::Actor>::spawn(Counter(0));
            for _ in 0..n {
                r.tell(Add(1)).await.expect("tell");
            }
            (r.ask(Get).await.expect("ask"), start.elapsed())
        })
    }
}

mod rc {
    use super::*;
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

    pub(super) fn spawn_external(n: u64) -> (u64, Duration) {
        tokio_main(async move {
            let start = Instant::now();
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
            (sum, start.elapsed())
        })
    }

    pub(super) fn tell_external(n: u64) -> (u64, Duration) {
        tokio_main(async move {
            let start = Instant::now();
            let r = Actor::spawn(None, Counter, ()).await.expect("spawn").0;
            for _ in 0..n {
                r.cast(Msg::Add(1)).expect("tell");
            }
            (ractor::call!(r, Msg::Get).expect("ask"), start.elapsed())
        })
    }
}
