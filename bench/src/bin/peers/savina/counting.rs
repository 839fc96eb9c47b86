//! Savina Counting: a producer actor sends `n` increments to a counter actor, then asks it for
//! the count (checked: `n`). Messages per second.

use crate::frameworks::{actix_main, corelane, tokio_main, Fw, PATIENCE};
use crate::Workload;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "savina-counting",
    metric: "msgs_per_sec",
    unit: "msg/s",
    size: 2_000_000,
    user_path: false,
    about: "Savina Counting: a producer sends n increments to a counter",
    run,
};

fn run(fw: Fw, n: u64) -> (u64, Duration) {
    let (count, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl(fw, n),
        Fw::Actix => ax(n),
        Fw::Kameo => km(n),
        Fw::Ractor => rc(n),
    };
    assert_eq!(count, n, "{}: the counter saw every increment", fw.name());
    (n, t)
}

fn cl(fw: Fw, n: u64) -> (u64, Duration) {
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
    struct Counter(u64);
    enum CounterMsg {
        Incr,
        Get(Reply<u64>),
    }
    impl Actor for Counter {
        type Msg = CounterMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: CounterMsg) -> Result<(), ActorError> {
            match m {
                CounterMsg::Incr => self.0 += 1,
                CounterMsg::Get(r) => r.send(self.0),
            }
            Ok(())
        }
    }
    struct Producer(ActorRef<CounterMsg>);
    struct Go(u64, Reply<u64>);
    impl Actor for Producer {
        type Msg = Go;
        fn receive(&mut self, _: &mut Ctx<Self>, Go(n, done): Go) -> Result<(), ActorError> {
            for _ in 0..n {
                let _ = self.0.tell(CounterMsg::Incr);
            }
            // The counter answers `done` itself, after every increment (one sender: in order).
            let _ = self.0.tell(CounterMsg::Get(done));
            Ok(())
        }
    }
    let rt = corelane(fw);
    let counter = rt.spawn(|| Counter(0)).expect("spawn");
    let producer = rt.spawn(move || Producer(counter.clone())).expect("spawn");
    let start = Instant::now();
    let count = producer.ask(|done| Go(n, done)).timeout(PATIENCE).wait().expect("done");
    (count, start.elapsed())
}

fn ax(n: u64) -> (u64, Duration) {
    use actix::prelude::*;
    use tokio::sync::oneshot;
    struct Counter(u64);
    impl Actor for Counter {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Incr;
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Get(oneshot::Sender<u64>);
    impl Handler<Incr> for Counter {
        type Result = ();
        fn handle(&mut self, _: Incr, _: &mut Context<Self>) {
            self.0 += 1;
        }
    }
    impl Handler<Get> for Counter {
        type Result = ();
        fn handle(&mut self, Get(r): Get, _: &mut Context<Self>) {
            let _ = r.send(self.0);
        }
    }
    struct Producer(Addr<Counter>);
    impl Actor for Producer {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Go(u64, oneshot::Sender<u64>);
    impl Handler<Go> for Producer {
        type Result = ();
        fn handle(&mut self, Go(n, done): Go, _: &mut Context<Self>) {
            for _ in 0..n {
                self.0.do_send(Incr);
            }
            self.0.do_send(Get(done));
        }
    }
    actix_main(async move {
        let producer = Producer(Counter(0).start()).start();
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        producer.do_send(Go(n, tx));
        let count = rx.await.expect("done");
        (count, start.elapsed())
    })
}

fn km(n: u64) -> (u64, Duration) {
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;
    #[derive(Actor)]
    struct Counter(u64);
    struct Incr;
    struct Get(oneshot::Sender<u64>);
    impl Message<Incr> for Counter {
        type Reply = ();
        async fn handle(&mut self, _: Incr, _: &mut Context<Self, ()>) {
            self.0 += 1;
        }
    }
    impl Message<Get> for Counter {
        type Reply = ();
        async fn handle(&mut self, Get(r): Get, _: &mut Context<Self, ()>) {
            let _ = r.send(self.0);
        }
    }
    #[derive(Actor)]
    struct Producer(ActorRef<Counter>);
    struct Go(u64, oneshot::Sender<u64>);
    impl Message<Go> for Producer {
        type Reply = ();
        async fn handle(&mut self, Go(n, done): Go, _: &mut Context<Self, ()>) {
            for _ in 0..n {
                self.0.tell(Incr).await.expect("tell");
            }
            self.0.tell(Get(done)).await.expect("tell");
        }
    }
    tokio_main(async move {
        let counter = Counter::spawn_with_mailbox(Counter(0), mailbox::unbounded());
        let producer = Producer::spawn_with_mailbox(Producer(counter), mailbox::unbounded());
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        producer.tell(Go(n, tx)).await.expect("tell");
        let count = rx.await.expect("done");
        (count, start.elapsed())
    })
}

fn rc(n: u64) -> (u64, Duration) {
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::oneshot;
    struct Counter;
    enum CounterMsg {
        Incr,
        Get(oneshot::Sender<u64>),
    }
    impl Actor for Counter {
        type Msg = CounterMsg;
        type State = u64;
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<CounterMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
            Ok(0)
        }
        async fn handle(
            &self,
            _: ActorRef<CounterMsg>,
            m: CounterMsg,
            s: &mut u64,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                CounterMsg::Incr => *s += 1,
                CounterMsg::Get(r) => {
                    let _ = r.send(*s);
                }
            }
            Ok(())
        }
    }
    struct Producer;
    struct Go(u64, oneshot::Sender<u64>);
    impl Actor for Producer {
        type Msg = Go;
        type State = ActorRef<CounterMsg>;
        type Arguments = ActorRef<CounterMsg>;
        async fn pre_start(
            &self,
            _: ActorRef<Go>,
            c: ActorRef<CounterMsg>,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(c)
        }
        async fn handle(
            &self,
            _: ActorRef<Go>,
            Go(n, done): Go,
            c: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            for _ in 0..n {
                c.cast(CounterMsg::Incr)?;
            }
            c.cast(CounterMsg::Get(done))?;
            Ok(())
        }
    }
    tokio_main(async move {
        let (counter, _) = Actor::spawn(None, Counter, ()).await.expect("spawn");
        let (producer, _) = Actor::spawn(None, Producer, counter).await.expect("spawn");
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        producer.cast(Go(n, tx)).expect("tell");
        let count = rx.await.expect("done");
        (count, start.elapsed())
    })
}
