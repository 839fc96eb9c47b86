//! Savina PingPong: a ping actor sends `n` pings, one at a time, to a pong actor that answers
//! each; the run ends with the `n`-th pong (checked: `n` pongs). Messages per second (2 per
//! round trip).

use crate::frameworks::{actix_main, corelane, tokio_main, Fw, PATIENCE};
use crate::Workload;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "savina-pingpong",
    metric: "msgs_per_sec",
    unit: "msg/s",
    size: 400_000,
    user_path: false,
    about: "Savina PingPong: n round trips between two actors",
    run,
};

fn run(fw: Fw, n: u64) -> (u64, Duration) {
    let (pongs, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl(fw, n),
        Fw::Actix => ax(n),
        Fw::Kameo => km(n),
        Fw::Ractor => rc(n),
    };
    assert_eq!(pongs, n, "{}: every ping answered", fw.name());
    (2 * n, t)
}

fn cl(fw: Fw, n: u64) -> (u64, Duration) {
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
    struct Ping {
        pong: ActorRef<PongMsg>,
        left: u64,
        pongs: u64,
        done: Option<Reply<u64>>,
    }
    enum PingMsg {
        Start(u64, Reply<u64>),
        Pong,
    }
    impl Actor for Ping {
        type Msg = PingMsg;
        fn receive(&mut self, ctx: &mut Ctx<Self>, m: PingMsg) -> Result<(), ActorError> {
            match m {
                PingMsg::Start(n, done) => {
                    self.left = n;
                    self.done = Some(done);
                    let _ = self.pong.tell(PongMsg::Ping(ctx.myself()));
                    self.left -= 1;
                }
                PingMsg::Pong => {
                    self.pongs += 1;
                    if self.left == 0 {
                        self.done.take().expect("started").send(self.pongs);
                    } else {
                        self.left -= 1;
                        let _ = self.pong.tell(PongMsg::Ping(ctx.myself()));
                    }
                }
            }
            Ok(())
        }
    }
    struct Pong;
    enum PongMsg {
        Ping(ActorRef<PingMsg>),
    }
    impl Actor for Pong {
        type Msg = PongMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, PongMsg::Ping(from): PongMsg) -> Result<(), ActorError> {
            let _ = from.tell(PingMsg::Pong);
            Ok(())
        }
    }
    let rt = corelane(fw);
    // Two actors that only talk to each other share a shard (docs/guide/actors.md, placement).
    let pong = rt.spawn_on(0, || Pong).expect("spawn");
    let ping =
        rt.spawn_on(0, move || Ping { pong: pong.clone(), left: 0, pongs: 0, done: None }).expect("spawn");
    let start = Instant::now();
    let pongs = ping.ask(|r| PingMsg::Start(n, r)).timeout(PATIENCE).wait().expect("done");
    (pongs, start.elapsed())
}

fn ax(n: u64) -> (u64, Duration) {
    use actix::prelude::*;
    use tokio::sync::oneshot;
    struct Ping {
        pong: Addr<Pong>,
        left: u64,
        pongs: u64,
        done: Option<oneshot::Sender<u64>>,
    }
    impl Actor for Ping {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Start(u64, oneshot::Sender<u64>);
    #[derive(Message)]
    #[rtype(result = "()")]
    struct PongMsg;
    #[derive(Message)]
    #[rtype(result = "()")]
    struct PingMsg(Addr<Ping>);
    impl Handler<Start> for Ping {
        type Result = ();
        fn handle(&mut self, Start(n, done): Start, ctx: &mut Context<Self>) {
            self.left = n - 1;
            self.done = Some(done);
            self.pong.do_send(PingMsg(ctx.address()));
        }
    }
    impl Handler<PongMsg> for Ping {
        type Result = ();
        fn handle(&mut self, _: PongMsg, ctx: &mut Context<Self>) {
            self.pongs += 1;
            if self.left == 0 {
                let _ = self.done.take().expect("started").send(self.pongs);
            } else {
                self.left -= 1;
                self.pong.do_send(PingMsg(ctx.address()));
            }
        }
    }
    struct Pong;
    impl Actor for Pong {
        type Context = Context<Self>;
    }
    impl Handler<PingMsg> for Pong {
        type Result = ();
        fn handle(&mut self, PingMsg(from): PingMsg, _: &mut Context<Self>) {
            from.do_send(PongMsg);
        }
    }
    actix_main(async move {
        let pong = Pong.start();
        let ping = Ping { pong, left: 0, pongs: 0, done: None }.start();
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        ping.do_send(Start(n, tx));
        let pongs = rx.await.expect("done");
        (pongs, start.elapsed())
    })
}

fn km(n: u64) -> (u64, Duration) {
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;
    #[derive(Actor)]
    struct Ping {
        pong: ActorRef<Pong>,
        left: u64,
        pongs: u64,
        done: Option<oneshot::Sender<u64>>,
    }
    struct Start(u64, oneshot::Sender<u64>);
    struct PongMsg;
    struct PingMsg(ActorRef<Ping>);
    impl Message<Start> for Ping {
        type Reply = ();
        async fn handle(&mut self, Start(n, done): Start, ctx: &mut Context<Self, ()>) {
            self.left = n - 1;
            self.done = Some(done);
            self.pong.tell(PingMsg(ctx.actor_ref())).await.expect("tell");
        }
    }
    impl Message<PongMsg> for Ping {
        type Reply = ();
        async fn handle(&mut self, _: PongMsg, ctx: &mut Context<Self, ()>) {
            self.pongs += 1;
            if self.left == 0 {
                let _ = self.done.take().expect("started").send(self.pongs);
            } else {
                self.left -= 1;
                self.pong.tell(PingMsg(ctx.actor_ref())).await.expect("tell");
            }
        }
    }
    #[derive(Actor)]
    struct Pong;
    impl Message<PingMsg> for Pong {
        type Reply = ();
        async fn handle(&mut self, PingMsg(from): PingMsg, _: &mut Context<Self, ()>) {
            from.tell(PongMsg).await.expect("tell");
        }
    }
    tokio_main(async move {
        let pong = Pong::spawn_with_mailbox(Pong, mailbox::unbounded());
        let ping =
            Ping::spawn_with_mailbox(Ping { pong, left: 0, pongs: 0, done: None }, mailbox::unbounded());
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        ping.tell(Start(n, tx)).await.expect("tell");
        let pongs = rx.await.expect("done");
        (pongs, start.elapsed())
    })
}

fn rc(n: u64) -> (u64, Duration) {
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::oneshot;
    struct Ping;
    struct PingState {
        pong: ActorRef<PongMsg>,
        left: u64,
        pongs: u64,
        done: Option<oneshot::Sender<u64>>,
    }
    enum PingMsg {
        Start(u64, oneshot::Sender<u64>),
        Pong,
    }
    enum PongMsg {
        Ping(ActorRef<PingMsg>),
    }
    impl Actor for Ping {
        type Msg = PingMsg;
        type State = PingState;
        type Arguments = ActorRef<PongMsg>;
        async fn pre_start(
            &self,
            _: ActorRef<PingMsg>,
            pong: ActorRef<PongMsg>,
        ) -> Result<PingState, ActorProcessingErr> {
            Ok(PingState { pong, left: 0, pongs: 0, done: None })
        }
        async fn handle(
            &self,
            me: ActorRef<PingMsg>,
            m: PingMsg,
            s: &mut PingState,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                PingMsg::Start(n, done) => {
                    s.left = n - 1;
                    s.done = Some(done);
                    s.pong.cast(PongMsg::Ping(me))?;
                }
                PingMsg::Pong => {
                    s.pongs += 1;
                    if s.left == 0 {
                        let _ = s.done.take().expect("started").send(s.pongs);
                    } else {
                        s.left -= 1;
                        s.pong.cast(PongMsg::Ping(me))?;
                    }
                }
            }
            Ok(())
        }
    }
    struct Pong;
    impl Actor for Pong {
        type Msg = PongMsg;
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<PongMsg>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
        async fn handle(
            &self,
            _: ActorRef<PongMsg>,
            PongMsg::Ping(from): PongMsg,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            from.cast(PingMsg::Pong)?;
            Ok(())
        }
    }
    tokio_main(async move {
        let (pong, _) = Actor::spawn(None, Pong, ()).await.expect("spawn");
        let (ping, _) = Actor::spawn(None, Ping, pong).await.expect("spawn");
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        ping.cast(PingMsg::Start(n, tx)).expect("tell");
        let pongs = rx.await.expect("done");
        (pongs, start.elapsed())
    })
}
