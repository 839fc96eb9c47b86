//! Savina Chameneos: `CREATURES` creatures ask a mall to meet; the mall pairs them two by two
//! and tells each the other's colour, until `n` meetings; then it tells every creature that
//! asks again to stop, and each reports how many meetings it had (checked: they add up to
//! `2 n`). Meetings per second.

use crate::frameworks::{actix_main, corelane, tokio_main, Fw, Tally, PATIENCE};
use crate::Workload;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "savina-chameneos",
    metric: "meetings_per_sec",
    unit: "meeting/s",
    size: 400_000,
    user_path: false,
    about: "Savina Chameneos: 100 creatures meet n times through a mall",
    run,
};

const CREATURES: u64 = 100;

fn complement(a: u8, b: u8) -> u8 {
    if a == b {
        a
    } else {
        3 - a - b
    }
}

fn run(fw: Fw, n: u64) -> (u64, Duration) {
    let (met, t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl(fw, n),
        Fw::Actix => ax(n),
        Fw::Kameo => km(n),
        Fw::Ractor => rc(n),
    };
    assert_eq!(met, 2 * n, "{}: every meeting counted by both creatures", fw.name());
    (n, t)
}

/// The mall's bookkeeping, the same in every framework; `R` is how it reaches a creature.
struct Mall<R, D> {
    left: u64,
    waiting: Option<(R, u8)>,
    /// The creatures' meeting counts, once they stopped.
    reports: Tally<D>,
}

/// What the mall does with a creature's request to meet.
enum Meet<R> {
    Stop(R),
    Pair((R, u8), (R, u8)),
    Wait,
}

impl<R, D> Mall<R, D> {
    fn new(n: u64, done: Option<D>) -> Self {
        Mall { left: n, waiting: None, reports: Tally::new(CREATURES, done) }
    }
    fn meet(&mut self, who: R, colour: u8) -> Meet<R> {
        if self.left == 0 {
            return Meet::Stop(who);
        }
        match self.waiting.take() {
            Some(first) => {
                self.left -= 1;
                Meet::Pair(first, (who, colour))
            }
            None => {
                self.waiting = Some((who, colour));
                Meet::Wait
            }
        }
    }
}

fn cl(fw: Fw, n: u64) -> (u64, Duration) {
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
    enum MallMsg {
        Meet(ActorRef<CreatureMsg>, u8),
        Report(u64),
        Wait(Reply<u64>),
    }
    enum CreatureMsg {
        Start,
        Met(u8),
        Stop,
    }
    struct MallActor(Mall<ActorRef<CreatureMsg>, Reply<u64>>);
    impl Actor for MallActor {
        type Msg = MallMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: MallMsg) -> Result<(), ActorError> {
            let done = match m {
                MallMsg::Meet(who, c) => {
                    match self.0.meet(who, c) {
                        Meet::Stop(who) => {
                            let _ = who.tell(CreatureMsg::Stop);
                        }
                        Meet::Pair((a, ca), (b, cb)) => {
                            let _ = a.tell(CreatureMsg::Met(cb));
                            let _ = b.tell(CreatureMsg::Met(ca));
                        }
                        Meet::Wait => {}
                    }
                    None
                }
                MallMsg::Report(met) => self.0.reports.report(met),
                MallMsg::Wait(d) => self.0.reports.wait(d),
            };
            if let Some((d, met)) = done {
                d.send(met);
            }
            Ok(())
        }
    }
    struct Creature {
        mall: ActorRef<MallMsg>,
        colour: u8,
        met: u64,
    }
    impl Actor for Creature {
        type Msg = CreatureMsg;
        fn receive(&mut self, ctx: &mut Ctx<Self>, m: CreatureMsg) -> Result<(), ActorError> {
            match m {
                CreatureMsg::Start => {
                    let _ = self.mall.tell(MallMsg::Meet(ctx.myself(), self.colour));
                }
                CreatureMsg::Met(other) => {
                    self.colour = complement(self.colour, other);
                    self.met += 1;
                    let _ = self.mall.tell(MallMsg::Meet(ctx.myself(), self.colour));
                }
                CreatureMsg::Stop => {
                    let _ = self.mall.tell(MallMsg::Report(self.met));
                }
            }
            Ok(())
        }
    }
    let rt = corelane(fw);
    let mall = rt.spawn(move || MallActor(Mall::new(n, None))).expect("spawn");
    let creatures: Vec<_> = (0..CREATURES)
        .map(|i| {
            let mall = mall.clone();
            rt.spawn(move || Creature { mall: mall.clone(), colour: (i % 3) as u8, met: 0 }).expect("spawn")
        })
        .collect();
    let start = Instant::now();
    for c in &creatures {
        c.tell(CreatureMsg::Start).expect("tell");
    }
    let met = mall.ask(MallMsg::Wait).timeout(PATIENCE).wait().expect("done");
    (met, start.elapsed())
}

fn ax(n: u64) -> (u64, Duration) {
    use actix::prelude::*;
    use tokio::sync::oneshot;
    struct MallActor(Mall<Addr<Creature>, oneshot::Sender<u64>>);
    impl Actor for MallActor {
        type Context = Context<Self>;
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    enum MallMsg {
        Meet(Addr<Creature>, u8),
        Report(u64),
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    enum CreatureMsg {
        Start,
        Met(u8),
        Stop,
    }
    impl Handler<MallMsg> for MallActor {
        type Result = ();
        fn handle(&mut self, m: MallMsg, _: &mut Context<Self>) {
            match m {
                MallMsg::Meet(who, c) => match self.0.meet(who, c) {
                    Meet::Stop(who) => who.do_send(CreatureMsg::Stop),
                    Meet::Pair((a, ca), (b, cb)) => {
                        a.do_send(CreatureMsg::Met(cb));
                        b.do_send(CreatureMsg::Met(ca));
                    }
                    Meet::Wait => {}
                },
                MallMsg::Report(met) => {
                    if let Some((d, met)) = self.0.reports.report(met) {
                        let _ = d.send(met);
                    }
                }
            }
        }
    }
    struct Creature {
        mall: Addr<MallActor>,
        colour: u8,
        met: u64,
    }
    impl Actor for Creature {
        type Context = Context<Self>;
    }
    impl Handler<CreatureMsg> for Creature {
        type Result = ();
        fn handle(&mut self, m: CreatureMsg, ctx: &mut Context<Self>) {
            match m {
                CreatureMsg::Start => self.mall.do_send(MallMsg::Meet(ctx.address(), self.colour)),
                CreatureMsg::Met(other) => {
                    self.colour = complement(self.colour, other);
                    self.met += 1;
                    self.mall.do_send(MallMsg::Meet(ctx.address(), self.colour));
                }
                CreatureMsg::Stop => self.mall.do_send(MallMsg::Report(self.met)),
            }
        }
    }
    actix_main(async move {
        let (tx, rx) = oneshot::channel();
        let m = Mall::new(n, Some(tx));
        let mall = MallActor(m).start();
        let creatures: Vec<_> = (0..CREATURES)
            .map(|i| Creature { mall: mall.clone(), colour: (i % 3) as u8, met: 0 }.start())
            .collect();
        let start = Instant::now();
        for c in &creatures {
            c.do_send(CreatureMsg::Start);
        }
        let met = rx.await.expect("done");
        (met, start.elapsed())
    })
}

fn km(n: u64) -> (u64, Duration) {
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;
    #[derive(Actor)]
    struct MallActor(Mall<ActorRef<Creature>, oneshot::Sender<u64>>);
    enum MallMsg {
        Meet(ActorRef<Creature>, u8),
        Report(u64),
    }
    enum CreatureMsg {
        Start,
        Met(u8),
        Stop,
    }
    impl Message<MallMsg> for MallActor {
        type Reply = ();
        async fn handle(&mut self, m: MallMsg, _: &mut Context<Self, ()>) {
            match m {
                MallMsg::Meet(who, c) => match self.0.meet(who, c) {
                    Meet::Stop(who) => who.tell(CreatureMsg::Stop).await.expect("tell"),
                    Meet::Pair((a, ca), (b, cb)) => {
                        a.tell(CreatureMsg::Met(cb)).await.expect("tell");
                        b.tell(CreatureMsg::Met(ca)).await.expect("tell");
                    }
                    Meet::Wait => {}
                },
                MallMsg::Report(met) => {
                    if let Some((d, met)) = self.0.reports.report(met) {
                        let _ = d.send(met);
                    }
                }
            }
        }
    }
    #[derive(Actor)]
    struct Creature {
        mall: ActorRef<MallActor>,
        colour: u8,
        met: u64,
    }
    impl Message<CreatureMsg> for Creature {
        type Reply = ();
        async fn handle(&mut self, m: CreatureMsg, ctx: &mut Context<Self, ()>) {
            let msg = match m {
                CreatureMsg::Start => MallMsg::Meet(ctx.actor_ref(), self.colour),
                CreatureMsg::Met(other) => {
                    self.colour = complement(self.colour, other);
                    self.met += 1;
                    MallMsg::Meet(ctx.actor_ref(), self.colour)
                }
                CreatureMsg::Stop => MallMsg::Report(self.met),
            };
            self.mall.tell(msg).await.expect("tell");
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let m = Mall::new(n, Some(tx));
        let mall = MallActor::spawn_with_mailbox(MallActor(m), mailbox::unbounded());
        let creatures: Vec<_> = (0..CREATURES)
            .map(|i| {
                Creature::spawn_with_mailbox(
                    Creature { mall: mall.clone(), colour: (i % 3) as u8, met: 0 },
                    mailbox::unbounded(),
                )
            })
            .collect();
        let start = Instant::now();
        for c in &creatures {
            c.tell(CreatureMsg::Start).await.expect("tell");
        }
        let met = rx.await.expect("done");
        (met, start.elapsed())
    })
}

fn rc(n: u64) -> (u64, Duration) {
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::oneshot;
    enum MallMsg {
        Meet(ActorRef<CreatureMsg>, u8),
        Report(u64),
    }
    enum CreatureMsg {
        Start,
        Met(u8),
        Stop,
    }
    struct MallActor;
    type MallState = Mall<ActorRef<CreatureMsg>, oneshot::Sender<u64>>;
    impl Actor for MallActor {
        type Msg = MallMsg;
        type State = MallState;
        type Arguments = (u64, oneshot::Sender<u64>);
        async fn pre_start(
            &self,
            _: ActorRef<MallMsg>,
            (n, done): Self::Arguments,
        ) -> Result<MallState, ActorProcessingErr> {
            Ok(Mall::new(n, Some(done)))
        }
        async fn handle(
            &self,
            _: ActorRef<MallMsg>,
            m: MallMsg,
            s: &mut MallState,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                MallMsg::Meet(who, c) => match s.meet(who, c) {
                    Meet::Stop(who) => who.cast(CreatureMsg::Stop)?,
                    Meet::Pair((a, ca), (b, cb)) => {
                        a.cast(CreatureMsg::Met(cb))?;
                        b.cast(CreatureMsg::Met(ca))?;
                    }
                    Meet::Wait => {}
                },
                MallMsg::Report(met) => {
                    if let Some((d, met)) = s.reports.report(met) {
                        let _ = d.send(met);
                    }
                }
            }
            Ok(())
        }
    }
    struct Creature;
    struct CreatureState {
        mall: ActorRef<MallMsg>,
        colour: u8,
        met: u64,
    }
    impl Actor for Creature {
        type Msg = CreatureMsg;
        type State = CreatureState;
        type Arguments = (ActorRef<MallMsg>, u8);
        async fn pre_start(
            &self,
            _: ActorRef<CreatureMsg>,
            (mall, colour): Self::Arguments,
        ) -> Result<CreatureState, ActorProcessingErr> {
            Ok(CreatureState { mall, colour, met: 0 })
        }
        async fn handle(
            &self,
            me: ActorRef<CreatureMsg>,
            m: CreatureMsg,
            s: &mut CreatureState,
        ) -> Result<(), ActorProcessingErr> {
            let msg = match m {
                CreatureMsg::Start => MallMsg::Meet(me, s.colour),
                CreatureMsg::Met(other) => {
                    s.colour = complement(s.colour, other);
                    s.met += 1;
                    MallMsg::Meet(me, s.colour)
                }
                CreatureMsg::Stop => MallMsg::Report(s.met),
            };
            s.mall.cast(msg)?;
            Ok(())
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let (mall, _) = Actor::spawn(None, MallActor, (n, tx)).await.expect("spawn");
        let mut creatures = Vec::new();
        for i in 0..CREATURES {
            creatures
                .push(Actor::spawn(None, Creature, (mall.clone(), (i % 3) as u8)).await.expect("spawn").0);
        }
        let start = Instant::now();
        for c in &creatures {
            c.cast(CreatureMsg::Start).expect("tell");
        }
        let met = rx.await.expect("done");
        (met, start.elapsed())
    })
}
