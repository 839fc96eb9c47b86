//! Savina Concurrent dictionary: `WORKERS` workers each make `n` requests, one at a time, to
//! one dictionary actor: a write (10%) stores `key -> 2 key`, a read (90%) answers what the
//! key holds. Checked: every read answers nothing or `2 key`, and every worker finished.
//! Operations per second.

use crate::frameworks::{actix_main, corelane, tokio_main, Fw, Rng, Tally, PATIENCE};
use crate::Workload;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "savina-dictionary",
    metric: "ops_per_sec",
    unit: "op/s",
    size: 20_000,
    user_path: false,
    about: "Savina Concurrent dictionary: 20 workers make n requests each, 10% writes",
    run,
};

const WORKERS: u64 = 20;
const KEYS: u64 = 10_000;

fn run(fw: Fw, n: u64) -> (u64, Duration) {
    let (ops, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl(fw, n),
        Fw::Actix => ax(n),
        Fw::Kameo => km(n),
        Fw::Ractor => rc(n),
    };
    assert_eq!(ops, WORKERS * n, "{}: every request answered", fw.name());
    (WORKERS * n, t)
}

/// A request to the dictionary.
#[derive(Clone, Copy)]
enum Op {
    Write(u64, u64),
    Read(u64),
}

/// What the dictionary answers.
fn apply(map: &mut HashMap<u64, u64>, op: Op) -> Option<u64> {
    match op {
        Op::Write(k, v) => map.insert(k, v),
        Op::Read(k) => map.get(&k).copied(),
    }
}

/// One worker's plan and check, the same in every framework.
struct Worker {
    rng: Rng,
    left: u64,
    last: Op,
}

impl Worker {
    fn new(id: u64, n: u64) -> Self {
        Worker { rng: Rng::new(100 + id), left: n, last: Op::Read(0) }
    }
    fn next(&mut self) -> Op {
        let k = self.rng.below(KEYS);
        self.last = if self.rng.below(100) < 10 { Op::Write(k, 2 * k) } else { Op::Read(k) };
        self.last
    }
    /// The answer to the last request: whether the worker is done.
    fn answered(&mut self, v: Option<u64>) -> bool {
        let k = match self.last {
            Op::Write(k, _) | Op::Read(k) => k,
        };
        assert!(v.is_none() || v == Some(2 * k), "key {k} holds {v:?}");
        self.left -= 1;
        self.left == 0
    }
}

fn cl(fw: Fw, n: u64) -> (u64, Duration) {
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
    struct Dict(HashMap<u64, u64>);
    struct Request(Op, ActorRef<WorkerMsg>);
    impl Actor for Dict {
        type Msg = Request;
        fn receive(&mut self, _: &mut Ctx<Self>, Request(op, from): Request) -> Result<(), ActorError> {
            let _ = from.tell(WorkerMsg::Answer(apply(&mut self.0, op)));
            Ok(())
        }
    }
    enum WorkerMsg {
        Start,
        Answer(Option<u64>),
    }
    struct WorkerActor(Worker, u64, ActorRef<Request>, ActorRef<SinkMsg>);
    impl Actor for WorkerActor {
        type Msg = WorkerMsg;
        fn receive(&mut self, ctx: &mut Ctx<Self>, m: WorkerMsg) -> Result<(), ActorError> {
            if let WorkerMsg::Answer(v) = m {
                if self.0.answered(v) {
                    let _ = self.3.tell(SinkMsg::Finished(self.1));
                    return Ok(());
                }
            }
            let op = self.0.next();
            let _ = self.2.tell(Request(op, ctx.myself()));
            Ok(())
        }
    }
    enum SinkMsg {
        Finished(u64),
        Wait(Reply<u64>),
    }
    struct SinkActor(Tally<Reply<u64>>);
    impl Actor for SinkActor {
        type Msg = SinkMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: SinkMsg) -> Result<(), ActorError> {
            let done = match m {
                SinkMsg::Finished(ops) => self.0.report(ops),
                SinkMsg::Wait(d) => self.0.wait(d),
            };
            if let Some((d, ops)) = done {
                d.send(ops);
            }
            Ok(())
        }
    }
    let rt = corelane(fw);
    let dict = rt.spawn(|| Dict(HashMap::new())).expect("spawn");
    let sink = rt.spawn(|| SinkActor(Tally::new(WORKERS, None))).expect("spawn");
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| {
            let (dict, sink) = (dict.clone(), sink.clone());
            rt.spawn(move || WorkerActor(Worker::new(id, n), n, dict.clone(), sink.clone())).expect("spawn")
        })
        .collect();
    let start = Instant::now();
    for w in &workers {
        w.tell(WorkerMsg::Start).expect("tell");
    }
    let ops = sink.ask(SinkMsg::Wait).timeout(PATIENCE).wait().expect("done");
    (ops, start.elapsed())
}

fn ax(n: u64) -> (u64, Duration) {
    use actix::prelude::*;
    use tokio::sync::oneshot;
    struct Dict(HashMap<u64, u64>);
    impl Actor for Dict {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Request(Op, Addr<WorkerActor>);
    impl Handler<Request> for Dict {
        type Result = ();
        fn handle(&mut self, Request(op, from): Request, _: &mut Context<Self>) {
            from.do_send(WorkerMsg::Answer(apply(&mut self.0, op)));
        }
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    enum WorkerMsg {
        Start,
        Answer(Option<u64>),
    }
    struct WorkerActor(Worker, u64, Addr<Dict>, Addr<SinkActor>);
    impl Actor for WorkerActor {
        type Context = Context<Self>;
    }
    impl Handler<WorkerMsg> for WorkerActor {
        type Result = ();
        fn handle(&mut self, m: WorkerMsg, ctx: &mut Context<Self>) {
            if let WorkerMsg::Answer(v) = m {
                if self.0.answered(v) {
                    self.3.do_send(Finished(self.1));
                    return;
                }
            }
            let op = self.0.next();
            self.2.do_send(Request(op, ctx.address()));
        }
    }
    struct SinkActor(Tally<oneshot::Sender<u64>>);
    impl Actor for SinkActor {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Finished(u64);
    impl Handler<Finished> for SinkActor {
        type Result = ();
        fn handle(&mut self, Finished(ops): Finished, _: &mut Context<Self>) {
            if let Some((d, ops)) = self.0.report(ops) {
                let _ = d.send(ops);
            }
        }
    }
    actix_main(async move {
        let (tx, rx) = oneshot::channel();
        let dict = Dict(HashMap::new()).start();
        let sink = SinkActor(Tally::new(WORKERS, Some(tx))).start();
        let workers: Vec<_> = (0..WORKERS)
            .map(|id| WorkerActor(Worker::new(id, n), n, dict.clone(), sink.clone()).start())
            .collect();
        let start = Instant::now();
        for w in &workers {
            w.do_send(WorkerMsg::Start);
        }
        let ops = rx.await.expect("done");
        (ops, start.elapsed())
    })
}

fn km(n: u64) -> (u64, Duration) {
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;
    #[derive(Actor)]
    struct Dict(HashMap<u64, u64>);
    struct Request(Op, ActorRef<WorkerActor>);
    impl Message<Request> for Dict {
        type Reply = ();
        async fn handle(&mut self, Request(op, from): Request, _: &mut Context<Self, ()>) {
            from.tell(WorkerMsg::Answer(apply(&mut self.0, op))).await.expect("tell");
        }
    }
    enum WorkerMsg {
        Start,
        Answer(Option<u64>),
    }
    #[derive(Actor)]
    struct WorkerActor(Worker, u64, ActorRef<Dict>, ActorRef<SinkActor>);
    impl Message<WorkerMsg> for WorkerActor {
        type Reply = ();
        async fn handle(&mut self, m: WorkerMsg, ctx: &mut Context<Self, ()>) {
            if let WorkerMsg::Answer(v) = m {
                if self.0.answered(v) {
                    self.3.tell(Finished(self.1)).await.expect("tell");
                    return;
                }
            }
            let op = self.0.next();
            self.2.tell(Request(op, ctx.actor_ref())).await.expect("tell");
        }
    }
    #[derive(Actor)]
    struct SinkActor(Tally<oneshot::Sender<u64>>);
    struct Finished(u64);
    impl Message<Finished> for SinkActor {
        type Reply = ();
        async fn handle(&mut self, Finished(ops): Finished, _: &mut Context<Self, ()>) {
            if let Some((d, ops)) = self.0.report(ops) {
                let _ = d.send(ops);
            }
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let dict = Dict::spawn_with_mailbox(Dict(HashMap::new()), mailbox::unbounded());
        let sink =
            SinkActor::spawn_with_mailbox(SinkActor(Tally::new(WORKERS, Some(tx))), mailbox::unbounded());
        let workers: Vec<_> = (0..WORKERS)
            .map(|id| {
                WorkerActor::spawn_with_mailbox(
                    WorkerActor(Worker::new(id, n), n, dict.clone(), sink.clone()),
                    mailbox::unbounded(),
                )
            })
            .collect();
        let start = Instant::now();
        for w in &workers {
            w.tell(WorkerMsg::Start).await.expect("tell");
        }
        let ops = rx.await.expect("done");
        (ops, start.elapsed())
    })
}

fn rc(n: u64) -> (u64, Duration) {
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::oneshot;
    struct Dict;
    struct Request(Op, ActorRef<WorkerMsg>);
    impl Actor for Dict {
        type Msg = Request;
        type State = HashMap<u64, u64>;
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<Request>, _: ()) -> Result<Self::State, ActorProcessingErr> {
            Ok(HashMap::new())
        }
        async fn handle(
            &self,
            _: ActorRef<Request>,
            Request(op, from): Request,
            s: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            from.cast(WorkerMsg::Answer(apply(s, op)))?;
            Ok(())
        }
    }
    enum WorkerMsg {
        Start,
        Answer(Option<u64>),
    }
    struct WorkerActor;
    type WorkerState = (Worker, u64, ActorRef<Request>, ActorRef<Finished>);
    impl Actor for WorkerActor {
        type Msg = WorkerMsg;
        type State = WorkerState;
        type Arguments = WorkerState;
        async fn pre_start(
            &self,
            _: ActorRef<WorkerMsg>,
            s: WorkerState,
        ) -> Result<WorkerState, ActorProcessingErr> {
            Ok(s)
        }
        async fn handle(
            &self,
            me: ActorRef<WorkerMsg>,
            m: WorkerMsg,
            s: &mut WorkerState,
        ) -> Result<(), ActorProcessingErr> {
            if let WorkerMsg::Answer(v) = m {
                if s.0.answered(v) {
                    s.3.cast(Finished(s.1))?;
                    return Ok(());
                }
            }
            let op = s.0.next();
            s.2.cast(Request(op, me))?;
            Ok(())
        }
    }
    struct SinkActor;
    struct Finished(u64);
    impl Actor for SinkActor {
        type Msg = Finished;
        type State = Tally<oneshot::Sender<u64>>;
        type Arguments = oneshot::Sender<u64>;
        async fn pre_start(
            &self,
            _: ActorRef<Finished>,
            done: oneshot::Sender<u64>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(Tally::new(WORKERS, Some(done)))
        }
        async fn handle(
            &self,
            _: ActorRef<Finished>,
            Finished(ops): Finished,
            s: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            if let Some((d, ops)) = s.report(ops) {
                let _ = d.send(ops);
            }
            Ok(())
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let (dict, _) = Actor::spawn(None, Dict, ()).await.expect("spawn");
        let (sink, _) = Actor::spawn(None, SinkActor, tx).await.expect("spawn");
        let mut workers = Vec::new();
        for id in 0..WORKERS {
            let args = (Worker::new(id, n), n, dict.clone(), sink.clone());
            workers.push(Actor::spawn(None, WorkerActor, args).await.expect("spawn").0);
        }
        let start = Instant::now();
        for w in &workers {
            w.cast(WorkerMsg::Start).expect("tell");
        }
        let ops = rx.await.expect("done");
        (ops, start.elapsed())
    })
}
