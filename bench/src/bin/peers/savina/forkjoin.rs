//! Savina Fork-Join, both variants. Each worker message does Savina's small computation
//! (`busy(WORK)` here) and the last one each worker gets tells a collector, which ends the run.
//! - `savina-fjthr` (throughput): a driver actor sends `n` messages to each of `WORKERS` workers
//!   (checked: every worker got `n`); messages per second.
//! - `savina-fjcre` (creation): a driver actor creates `n` workers and sends each one message
//!   (checked: `n` answered); actors per second.

use crate::frameworks::{actix_main, busy, corelane, tokio_main, Fw, Tally, PATIENCE};
use crate::Workload;
use std::time::{Duration, Instant};

pub(crate) const THROUGHPUT: Workload = Workload {
    name: "savina-fjthr",
    metric: "msgs_per_sec",
    unit: "msg/s",
    size: 20_000,
    user_path: false,
    about: "Savina Fork-Join throughput: n messages to each of 60 workers",
    run: throughput,
};

pub(crate) const CREATION: Workload = Workload {
    name: "savina-fjcre",
    metric: "actors_per_sec",
    unit: "actor/s",
    size: 100_000,
    user_path: false,
    about: "Savina Fork-Join creation: n workers created, one message each",
    run: creation,
};

const WORKERS: u64 = 60;
/// Savina's per-message computation, as rounds of `busy`.
const WORK: u64 = 16;

fn throughput(fw: Fw, n: u64) -> (u64, Duration) {
    let (done, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl::run(fw, n, false),
        Fw::Actix => ax::run(n, false),
        Fw::Kameo => km::run(n, false),
        Fw::Ractor => rc::run(n, false),
    };
    assert_eq!(done, WORKERS * n, "{}: every worker got every message", fw.name());
    (WORKERS * n, t)
}

fn creation(fw: Fw, n: u64) -> (u64, Duration) {
    let (done, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl::run(fw, n, true),
        Fw::Actix => ax::run(n, true),
        Fw::Kameo => km::run(n, true),
        Fw::Ractor => rc::run(n, true),
    };
    assert_eq!(done, n, "{}: every worker answered", fw.name());
    (n, t)
}

mod cl {
    use super::*;
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};

    struct Collector(Tally<Reply<u64>>);
    enum CollectorMsg {
        /// Answered once every worker reported (at once if they already have).
        Wait(Reply<u64>),
        Done(u64),
    }
    impl Actor for Collector {
        type Msg = CollectorMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: CollectorMsg) -> Result<(), ActorError> {
            let done = match m {
                CollectorMsg::Wait(done) => self.0.wait(done),
                CollectorMsg::Done(msgs) => self.0.report(msgs),
            };
            if let Some((d, messages)) = done {
                d.send(messages);
            }
            Ok(())
        }
    }
    struct Worker {
        collector: ActorRef<CollectorMsg>,
        expect: u64,
        got: u64,
        sum: u64,
    }
    impl Actor for Worker {
        type Msg = ();
        fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
            self.got += 1;
            self.sum = self.sum.wrapping_add(busy(WORK));
            if self.got == self.expect {
                let _ = self.collector.tell(CollectorMsg::Done(self.got));
            }
            Ok(())
        }
    }
    struct Driver(ActorRef<CollectorMsg>);
    struct Go(u64, bool);
    impl Actor for Driver {
        type Msg = Go;
        fn receive(&mut self, ctx: &mut Ctx<Self>, Go(n, create): Go) -> Result<(), ActorError> {
            let rt = ctx.runtime();
            let spawn = |expect| {
                let c = self.0.clone();
                rt.spawn(move || Worker { collector: c.clone(), expect, got: 0, sum: 0 })
            };
            if create {
                for _ in 0..n {
                    let _ = spawn(1)?.tell(());
                }
            } else {
                let workers = (0..WORKERS).map(|_| spawn(n)).collect::<Result<Vec<_>, _>>()?;
                for _ in 0..n {
                    for w in &workers {
                        let _ = w.tell(());
                    }
                }
            }
            Ok(())
        }
    }

    pub(super) fn run(fw: Fw, n: u64, create: bool) -> (u64, Duration) {
        let rt = corelane(fw);
        let expect = if create { n } else { WORKERS };
        let collector = rt.spawn(move || Collector(Tally::new(expect, None))).expect("spawn");
        let driver = rt
            .spawn({
                let c = collector.clone();
                move || Driver(c.clone())
            })
            .expect("spawn");
        let start = Instant::now();
        driver.tell(Go(n, create)).expect("tell");
        let messages = collector.ask(CollectorMsg::Wait).timeout(PATIENCE).wait().expect("done");
        (messages, start.elapsed())
    }
}

mod ax {
    use super::*;
    use actix::prelude::*;
    use tokio::sync::oneshot;

    struct Collector(Tally<oneshot::Sender<u64>>);
    impl Actor for Collector {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Done(u64);
    impl Handler<Done> for Collector {
        type Result = ();
        fn handle(&mut self, Done(msgs): Done, _: &mut Context<Self>) {
            if let Some((d, messages)) = self.0.report(msgs) {
                let _ = d.send(messages);
            }
        }
    }
    struct Worker {
        collector: Addr<Collector>,
        expect: u64,
        got: u64,
        sum: u64,
    }
    impl Actor for Worker {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Work;
    impl Handler<Work> for Worker {
        type Result = ();
        fn handle(&mut self, _: Work, _: &mut Context<Self>) {
            self.got += 1;
            self.sum = self.sum.wrapping_add(busy(WORK));
            if self.got == self.expect {
                self.collector.do_send(Done(self.got));
            }
        }
    }
    struct Driver(Addr<Collector>);
    impl Actor for Driver {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Go(u64, bool);
    impl Handler<Go> for Driver {
        type Result = ();
        fn handle(&mut self, Go(n, create): Go, _: &mut Context<Self>) {
            let spawn = |expect| Worker { collector: self.0.clone(), expect, got: 0, sum: 0 }.start();
            if create {
                for _ in 0..n {
                    spawn(1).do_send(Work);
                }
            } else {
                let workers: Vec<_> = (0..WORKERS).map(|_| spawn(n)).collect();
                for _ in 0..n {
                    for w in &workers {
                        w.do_send(Work);
                    }
                }
            }
        }
    }

    pub(super) fn run(n: u64, create: bool) -> (u64, Duration) {
        actix_main(async move {
            let (tx, rx) = oneshot::channel();
            let expect = if create { n } else { WORKERS };
            let collector = Collector(Tally::new(expect, Some(tx))).start();
            let driver = Driver(collector).start();
            let start = Instant::now();
            driver.do_send(Go(n, create));
            let messages = rx.await.expect("done");
            (messages, start.elapsed())
        })
    }
}

mod km {
    use super::*;
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;

    #[derive(Actor)]
    struct Collector(Tally<oneshot::Sender<u64>>);
    struct Done(u64);
    impl Message<Done> for Collector {
        type Reply = ();
        async fn handle(&mut self, Done(msgs): Done, _: &mut Context<Self, ()>) {
            if let Some((d, messages)) = self.0.report(msgs) {
                let _ = d.send(messages);
            }
        }
    }
    #[derive(Actor)]
    struct Worker {
        collector: ActorRef<Collector>,
        expect: u64,
        got: u64,
        sum: u64,
    }
    struct Work;
    impl Message<Work> for Worker {
        type Reply = ();
        async fn handle(&mut self, _: Work, _: &mut Context<Self, ()>) {
            self.got += 1;
            self.sum = self.sum.wrapping_add(busy(WORK));
            if self.got == self.expect {
                self.collector.tell(Done(self.got)).await.expect("tell");
            }
        }
    }
    #[derive(Actor)]
    struct Driver(ActorRef<Collector>);
    struct Go(u64, bool);
    impl Message<Go> for Driver {
        type Reply = ();
        async fn handle(&mut self, Go(n, create): Go, _: &mut Context<Self, ()>) {
            let spawn = |expect| {
                Worker::spawn_with_mailbox(
                    Worker { collector: self.0.clone(), expect, got: 0, sum: 0 },
                    mailbox::unbounded(),
                )
            };
            if create {
                for _ in 0..n {
                    spawn(1).tell(Work).await.expect("tell");
                }
            } else {
                let workers: Vec<_> = (0..WORKERS).map(|_| spawn(n)).collect();
                for _ in 0..n {
                    for w in &workers {
                        w.tell(Work).await.expect("tell");
                    }
                }
            }
        }
    }

    pub(super) fn run(n: u64, create: bool) -> (u64, Duration) {
        tokio_main(async move {
            let (tx, rx) = oneshot::channel();
            let expect = if create { n } else { WORKERS };
            let collector =
                Collector::spawn_with_mailbox(Collector(Tally::new(expect, Some(tx))), mailbox::unbounded());
            let driver = Driver::spawn_with_mailbox(Driver(collector), mailbox::unbounded());
            let start = Instant::now();
            driver.tell(Go(n, create)).await.expect("tell");
            let messages = rx.await.expect("done");
            (messages, start.elapsed())
        })
    }
}

mod rc {
    use super::*;
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::oneshot;

    struct Collector;
    type CollectorState = Tally<oneshot::Sender<u64>>;
    struct Done(u64);
    impl Actor for Collector {
        type Msg = Done;
        type State = CollectorState;
        type Arguments = (u64, oneshot::Sender<u64>);
        async fn pre_start(
            &self,
            _: ActorRef<Done>,
            (expect, done): Self::Arguments,
        ) -> Result<CollectorState, ActorProcessingErr> {
            Ok(Tally::new(expect, Some(done)))
        }
        async fn handle(
            &self,
            _: ActorRef<Done>,
            Done(msgs): Done,
            s: &mut CollectorState,
        ) -> Result<(), ActorProcessingErr> {
            if let Some((d, messages)) = s.report(msgs) {
                let _ = d.send(messages);
            }
            Ok(())
        }
    }
    struct Worker;
    struct WorkerState {
        collector: ActorRef<Done>,
        expect: u64,
        got: u64,
        sum: u64,
    }
    impl Actor for Worker {
        type Msg = ();
        type State = WorkerState;
        type Arguments = (ActorRef<Done>, u64);
        async fn pre_start(
            &self,
            _: ActorRef<()>,
            (collector, expect): Self::Arguments,
        ) -> Result<WorkerState, ActorProcessingErr> {
            Ok(WorkerState { collector, expect, got: 0, sum: 0 })
        }
        async fn handle(
            &self,
            _: ActorRef<()>,
            _: (),
            s: &mut WorkerState,
        ) -> Result<(), ActorProcessingErr> {
            s.got += 1;
            s.sum = s.sum.wrapping_add(busy(WORK));
            if s.got == s.expect {
                s.collector.cast(Done(s.got))?;
            }
            Ok(())
        }
    }
    struct Driver;
    struct Go(u64, bool);
    impl Actor for Driver {
        type Msg = Go;
        type State = ActorRef<Done>;
        type Arguments = ActorRef<Done>;
        async fn pre_start(
            &self,
            _: ActorRef<Go>,
            c: ActorRef<Done>,
        ) -> Result<ActorRef<Done>, ActorProcessingErr> {
            Ok(c)
        }
        async fn handle(
            &self,
            _: ActorRef<Go>,
            Go(n, create): Go,
            c: &mut ActorRef<Done>,
        ) -> Result<(), ActorProcessingErr> {
            if create {
                for _ in 0..n {
                    let (w, _) = Actor::spawn(None, Worker, (c.clone(), 1)).await?;
                    w.cast(())?;
                }
            } else {
                let mut workers = Vec::new();
                for _ in 0..WORKERS {
                    workers.push(Actor::spawn(None, Worker, (c.clone(), n)).await?.0);
                }
                for _ in 0..n {
                    for w in &workers {
                        w.cast(())?;
                    }
                }
            }
            Ok(())
        }
    }

    pub(super) fn run(n: u64, create: bool) -> (u64, Duration) {
        tokio_main(async move {
            let (tx, rx) = oneshot::channel();
            let expect = if create { n } else { WORKERS };
            let (collector, _) = Actor::spawn(None, Collector, (expect, tx)).await.expect("spawn");
            let (driver, _) = Actor::spawn(None, Driver, collector).await.expect("spawn");
            let start = Instant::now();
            driver.cast(Go(n, create)).expect("tell");
            let messages = rx.await.expect("done");
            (messages, start.elapsed())
        })
    }
}
