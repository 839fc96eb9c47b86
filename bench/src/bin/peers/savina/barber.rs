//! Savina Sleeping barber: a factory sends `n` customers, one after another with a random
//! pause (Savina's arrival rate, as busy work), to a waiting room of `ROOM` chairs; the room
//! sends the next customer to the barber when it is free and turns customers away when full
//! (the factory sends them again); each haircut takes random busy work and the barber tells
//! the factory. Checked: each of the `n` customers got exactly one haircut. Haircuts per second.

use crate::frameworks::{actix_main, busy, corelane, tokio_main, Fw, Rng, PATIENCE};
use crate::Workload;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "savina-barber",
    metric: "haircuts_per_sec",
    unit: "haircut/s",
    size: 5_000,
    user_path: false,
    about: "Savina Sleeping barber: n customers, 1000 chairs, random arrivals and haircuts",
    run,
};

const ROOM: usize = 1000;
/// Savina's average production and haircut rates, as rounds of `busy` (drawn uniformly up to
/// twice these). Savina's sizes as they are (5 000 customers, 1 000 chairs, rates of 1 000):
/// with more customers than that, a factory that sends faster than the barber cuts makes the
/// run a storm of customers turned away and sent again, which measures the storm.
const ARRIVAL: u64 = 1000;
const HAIRCUT: u64 = 1000;

fn run(fw: Fw, n: u64) -> (u64, Duration) {
    let ((served, sum), t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl(fw, n),
        Fw::Actix => ax(n),
        Fw::Kameo => km(n),
        Fw::Ractor => rc(n),
    };
    assert_eq!(served, n, "{}: every customer served", fw.name());
    assert_eq!(sum, n * (n - 1) / 2, "{}: each customer exactly once", fw.name());
    (n, t)
}

/// The factory's count, the same in every framework.
struct Factory<D> {
    n: u64,
    rng: Rng,
    served: u64,
    sum: u64,
    done: Option<D>,
}

impl<D> Factory<D> {
    fn new(n: u64) -> Self {
        Factory { n, rng: Rng::new(3), served: 0, sum: 0, done: None }
    }
    /// The pause before the next customer arrives.
    fn arrive(&mut self) {
        busy(self.rng.below(2 * ARRIVAL));
    }
    fn served(&mut self, id: u64) -> Option<(D, (u64, u64))> {
        self.served += 1;
        self.sum += id;
        self.finish()
    }
    fn finish(&mut self) -> Option<(D, (u64, u64))> {
        if self.served == self.n {
            self.done.take().map(|d| (d, (self.served, self.sum)))
        } else {
            None
        }
    }
}

/// The waiting room, the same in every framework.
#[derive(Default)]
struct Room {
    queue: VecDeque<u64>,
    barber_busy: bool,
}

enum Entered {
    /// Turned away: the room is full.
    Full(u64),
    /// Straight to the barber, who was asleep.
    Cut(u64),
    Waiting,
}

impl Room {
    fn enter(&mut self, id: u64) -> Entered {
        if !self.barber_busy {
            self.barber_busy = true;
            Entered::Cut(id)
        } else if self.queue.len() >= ROOM {
            Entered::Full(id)
        } else {
            self.queue.push_back(id);
            Entered::Waiting
        }
    }
    /// The barber is free: the next customer, or none (the barber sleeps).
    fn next(&mut self) -> Option<u64> {
        let next = self.queue.pop_front();
        self.barber_busy = next.is_some();
        next
    }
}

fn haircut(rng: &mut Rng) {
    busy(rng.below(2 * HAIRCUT));
}

fn cl(fw: Fw, n: u64) -> ((u64, u64), Duration) {
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
    enum FactoryMsg {
        Room(ActorRef<RoomMsg>, Reply<()>),
        Start,
        Returned(u64),
        Served(u64),
        Wait(Reply<(u64, u64)>),
    }
    enum RoomMsg {
        Barber(ActorRef<u64>, Reply<()>),
        Enter(u64),
        Next,
    }
    struct FactoryActor(Factory<Reply<(u64, u64)>>, Option<ActorRef<RoomMsg>>);
    impl Actor for FactoryActor {
        type Msg = FactoryMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: FactoryMsg) -> Result<(), ActorError> {
            let room = self.1.as_ref();
            let done = match m {
                FactoryMsg::Room(r, ok) => {
                    self.1 = Some(r);
                    ok.send(());
                    None
                }
                FactoryMsg::Start => {
                    for id in 0..self.0.n {
                        self.0.arrive();
                        let _ = room.expect("wired").tell(RoomMsg::Enter(id));
                    }
                    None
                }
                FactoryMsg::Returned(id) => {
                    let _ = room.expect("wired").tell(RoomMsg::Enter(id));
                    None
                }
                FactoryMsg::Served(id) => self.0.served(id),
                FactoryMsg::Wait(d) => {
                    self.0.done = Some(d);
                    self.0.finish()
                }
            };
            if let Some((d, r)) = done {
                d.send(r);
            }
            Ok(())
        }
    }
    struct RoomActor(Room, Option<ActorRef<u64>>, ActorRef<FactoryMsg>);
    impl Actor for RoomActor {
        type Msg = RoomMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: RoomMsg) -> Result<(), ActorError> {
            let barber = self.1.as_ref();
            match m {
                RoomMsg::Barber(b, ok) => {
                    self.1 = Some(b);
                    ok.send(());
                }
                RoomMsg::Enter(id) => match self.0.enter(id) {
                    Entered::Full(id) => {
                        let _ = self.2.tell(FactoryMsg::Returned(id));
                    }
                    Entered::Cut(id) => {
                        let _ = barber.expect("wired").tell(id);
                    }
                    Entered::Waiting => {}
                },
                RoomMsg::Next => {
                    if let Some(id) = self.0.next() {
                        let _ = barber.expect("wired").tell(id);
                    }
                }
            }
            Ok(())
        }
    }
    struct Barber(Rng, ActorRef<RoomMsg>, ActorRef<FactoryMsg>);
    impl Actor for Barber {
        type Msg = u64;
        fn receive(&mut self, _: &mut Ctx<Self>, id: u64) -> Result<(), ActorError> {
            haircut(&mut self.0);
            let _ = self.2.tell(FactoryMsg::Served(id));
            let _ = self.1.tell(RoomMsg::Next);
            Ok(())
        }
    }
    let rt = corelane(fw);
    let factory = rt.spawn(move || FactoryActor(Factory::new(n), None)).expect("spawn");
    let f = factory.clone();
    let room = rt.spawn(move || RoomActor(Room::default(), None, f.clone())).expect("spawn");
    let (r, f) = (room.clone(), factory.clone());
    let barber = rt.spawn(move || Barber(Rng::new(5), r.clone(), f.clone())).expect("spawn");
    room.ask(|ok| RoomMsg::Barber(barber, ok)).timeout(PATIENCE).wait().expect("wired");
    factory.ask(|ok| FactoryMsg::Room(room, ok)).timeout(PATIENCE).wait().expect("wired");
    let start = Instant::now();
    factory.tell(FactoryMsg::Start).expect("tell");
    let r = factory.ask(FactoryMsg::Wait).timeout(PATIENCE).wait().expect("done");
    (r, start.elapsed())
}

fn ax(n: u64) -> ((u64, u64), Duration) {
    use actix::prelude::*;
    use tokio::sync::oneshot;
    #[derive(Message)]
    #[rtype(result = "()")]
    enum FactoryMsg {
        Start,
        Returned(u64),
        Served(u64),
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    enum RoomMsg {
        Enter(u64),
        Next,
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Cut(u64);
    #[derive(Message)]
    #[rtype(result = "()")]
    struct SetRoom(Addr<RoomActor>);
    #[derive(Message)]
    #[rtype(result = "()")]
    struct SetBarber(Addr<Barber>);
    struct FactoryActor(Factory<oneshot::Sender<(u64, u64)>>, Option<Addr<RoomActor>>);
    impl Actor for FactoryActor {
        type Context = Context<Self>;
    }
    impl Handler<SetRoom> for FactoryActor {
        type Result = ();
        fn handle(&mut self, SetRoom(r): SetRoom, _: &mut Context<Self>) {
            self.1 = Some(r);
        }
    }
    impl Handler<FactoryMsg> for FactoryActor {
        type Result = ();
        fn handle(&mut self, m: FactoryMsg, _: &mut Context<Self>) {
            let room = self.1.as_ref().expect("wired");
            match m {
                FactoryMsg::Start => {
                    for id in 0..self.0.n {
                        self.0.arrive();
                        room.do_send(RoomMsg::Enter(id));
                    }
                }
                FactoryMsg::Returned(id) => room.do_send(RoomMsg::Enter(id)),
                FactoryMsg::Served(id) => {
                    if let Some((d, r)) = self.0.served(id) {
                        let _ = d.send(r);
                    }
                }
            }
        }
    }
    struct RoomActor(Room, Option<Addr<Barber>>, Addr<FactoryActor>);
    impl Actor for RoomActor {
        type Context = Context<Self>;
    }
    impl Handler<SetBarber> for RoomActor {
        type Result = ();
        fn handle(&mut self, SetBarber(b): SetBarber, _: &mut Context<Self>) {
            self.1 = Some(b);
        }
    }
    impl Handler<RoomMsg> for RoomActor {
        type Result = ();
        fn handle(&mut self, m: RoomMsg, _: &mut Context<Self>) {
            let barber = self.1.as_ref().expect("wired");
            match m {
                RoomMsg::Enter(id) => match self.0.enter(id) {
                    Entered::Full(id) => self.2.do_send(FactoryMsg::Returned(id)),
                    Entered::Cut(id) => barber.do_send(Cut(id)),
                    Entered::Waiting => {}
                },
                RoomMsg::Next => {
                    if let Some(id) = self.0.next() {
                        barber.do_send(Cut(id));
                    }
                }
            }
        }
    }
    struct Barber(Rng, Addr<RoomActor>, Addr<FactoryActor>);
    impl Actor for Barber {
        type Context = Context<Self>;
    }
    impl Handler<Cut> for Barber {
        type Result = ();
        fn handle(&mut self, Cut(id): Cut, _: &mut Context<Self>) {
            haircut(&mut self.0);
            self.2.do_send(FactoryMsg::Served(id));
            self.1.do_send(RoomMsg::Next);
        }
    }
    actix_main(async move {
        let (tx, rx) = oneshot::channel();
        let mut f = Factory::new(n);
        f.done = Some(tx);
        let factory = FactoryActor(f, None).start();
        let room = RoomActor(Room::default(), None, factory.clone()).start();
        let barber = Barber(Rng::new(5), room.clone(), factory.clone()).start();
        room.send(SetBarber(barber)).await.expect("wired");
        factory.send(SetRoom(room)).await.expect("wired");
        let start = Instant::now();
        factory.do_send(FactoryMsg::Start);
        let r = rx.await.expect("done");
        (r, start.elapsed())
    })
}

fn km(n: u64) -> ((u64, u64), Duration) {
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;
    enum FactoryMsg {
        Start,
        Returned(u64),
        Served(u64),
    }
    enum RoomMsg {
        Enter(u64),
        Next,
    }
    struct Cut(u64);
    struct SetRoom(ActorRef<RoomActor>);
    struct SetBarber(ActorRef<Barber>);
    #[derive(Actor)]
    struct FactoryActor(Factory<oneshot::Sender<(u64, u64)>>, Option<ActorRef<RoomActor>>);
    impl Message<SetRoom> for FactoryActor {
        type Reply = ();
        async fn handle(&mut self, SetRoom(r): SetRoom, _: &mut Context<Self, ()>) {
            self.1 = Some(r);
        }
    }
    impl Message<FactoryMsg> for FactoryActor {
        type Reply = ();
        async fn handle(&mut self, m: FactoryMsg, _: &mut Context<Self, ()>) {
            let room = self.1.as_ref().expect("wired");
            match m {
                FactoryMsg::Start => {
                    for id in 0..self.0.n {
                        self.0.arrive();
                        room.tell(RoomMsg::Enter(id)).await.expect("tell");
                    }
                }
                FactoryMsg::Returned(id) => room.tell(RoomMsg::Enter(id)).await.expect("tell"),
                FactoryMsg::Served(id) => {
                    if let Some((d, r)) = self.0.served(id) {
                        let _ = d.send(r);
                    }
                }
            }
        }
    }
    #[derive(Actor)]
    struct RoomActor(Room, Option<ActorRef<Barber>>, ActorRef<FactoryActor>);
    impl Message<SetBarber> for RoomActor {
        type Reply = ();
        async fn handle(&mut self, SetBarber(b): SetBarber, _: &mut Context<Self, ()>) {
            self.1 = Some(b);
        }
    }
    impl Message<RoomMsg> for RoomActor {
        type Reply = ();
        async fn handle(&mut self, m: RoomMsg, _: &mut Context<Self, ()>) {
            let barber = self.1.as_ref().expect("wired");
            match m {
                RoomMsg::Enter(id) => match self.0.enter(id) {
                    Entered::Full(id) => self.2.tell(FactoryMsg::Returned(id)).await.expect("tell"),
                    Entered::Cut(id) => barber.tell(Cut(id)).await.expect("tell"),
                    Entered::Waiting => {}
                },
                RoomMsg::Next => {
                    if let Some(id) = self.0.next() {
                        barber.tell(Cut(id)).await.expect("tell");
                    }
                }
            }
        }
    }
    #[derive(Actor)]
    struct Barber(Rng, ActorRef<RoomActor>, ActorRef<FactoryActor>);
    impl Message<Cut> for Barber {
        type Reply = ();
        async fn handle(&mut self, Cut(id): Cut, _: &mut Context<Self, ()>) {
            haircut(&mut self.0);
            self.2.tell(FactoryMsg::Served(id)).await.expect("tell");
            self.1.tell(RoomMsg::Next).await.expect("tell");
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let mut f = Factory::new(n);
        f.done = Some(tx);
        let factory = FactoryActor::spawn_with_mailbox(FactoryActor(f, None), mailbox::unbounded());
        let room = RoomActor::spawn_with_mailbox(
            RoomActor(Room::default(), None, factory.clone()),
            mailbox::unbounded(),
        );
        let barber = Barber::spawn_with_mailbox(
            Barber(Rng::new(5), room.clone(), factory.clone()),
            mailbox::unbounded(),
        );
        room.ask(SetBarber(barber)).await.expect("wired");
        factory.ask(SetRoom(room)).await.expect("wired");
        let start = Instant::now();
        factory.tell(FactoryMsg::Start).await.expect("tell");
        let r = rx.await.expect("done");
        (r, start.elapsed())
    })
}

fn rc(n: u64) -> ((u64, u64), Duration) {
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
    use tokio::sync::oneshot;
    enum FactoryMsg {
        Room(ActorRef<RoomMsg>, RpcReplyPort<()>),
        Start,
        Returned(u64),
        Served(u64),
    }
    enum RoomMsg {
        Barber(ActorRef<u64>, RpcReplyPort<()>),
        Enter(u64),
        Next,
    }
    struct FactoryActor;
    type FactoryState = (Factory<oneshot::Sender<(u64, u64)>>, Option<ActorRef<RoomMsg>>);
    impl Actor for FactoryActor {
        type Msg = FactoryMsg;
        type State = FactoryState;
        type Arguments = (u64, oneshot::Sender<(u64, u64)>);
        async fn pre_start(
            &self,
            _: ActorRef<FactoryMsg>,
            (n, done): Self::Arguments,
        ) -> Result<FactoryState, ActorProcessingErr> {
            let mut f = Factory::new(n);
            f.done = Some(done);
            Ok((f, None))
        }
        async fn handle(
            &self,
            _: ActorRef<FactoryMsg>,
            m: FactoryMsg,
            (f, room): &mut FactoryState,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                FactoryMsg::Room(r, ok) => {
                    *room = Some(r);
                    let _ = ok.send(());
                }
                FactoryMsg::Start => {
                    for id in 0..f.n {
                        f.arrive();
                        room.as_ref().expect("wired").cast(RoomMsg::Enter(id))?;
                    }
                }
                FactoryMsg::Returned(id) => room.as_ref().expect("wired").cast(RoomMsg::Enter(id))?,
                FactoryMsg::Served(id) => {
                    if let Some((d, r)) = f.served(id) {
                        let _ = d.send(r);
                    }
                }
            }
            Ok(())
        }
    }
    struct RoomActor;
    type RoomState = (Room, Option<ActorRef<u64>>, ActorRef<FactoryMsg>);
    impl Actor for RoomActor {
        type Msg = RoomMsg;
        type State = RoomState;
        type Arguments = ActorRef<FactoryMsg>;
        async fn pre_start(
            &self,
            _: ActorRef<RoomMsg>,
            f: ActorRef<FactoryMsg>,
        ) -> Result<RoomState, ActorProcessingErr> {
            Ok((Room::default(), None, f))
        }
        async fn handle(
            &self,
            _: ActorRef<RoomMsg>,
            m: RoomMsg,
            (room, barber, factory): &mut RoomState,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                RoomMsg::Barber(b, ok) => {
                    *barber = Some(b);
                    let _ = ok.send(());
                }
                RoomMsg::Enter(id) => match room.enter(id) {
                    Entered::Full(id) => factory.cast(FactoryMsg::Returned(id))?,
                    Entered::Cut(id) => barber.as_ref().expect("wired").cast(id)?,
                    Entered::Waiting => {}
                },
                RoomMsg::Next => {
                    if let Some(id) = room.next() {
                        barber.as_ref().expect("wired").cast(id)?;
                    }
                }
            }
            Ok(())
        }
    }
    struct Barber;
    type BarberState = (Rng, ActorRef<RoomMsg>, ActorRef<FactoryMsg>);
    impl Actor for Barber {
        type Msg = u64;
        type State = BarberState;
        type Arguments = BarberState;
        async fn pre_start(
            &self,
            _: ActorRef<u64>,
            s: BarberState,
        ) -> Result<BarberState, ActorProcessingErr> {
            Ok(s)
        }
        async fn handle(
            &self,
            _: ActorRef<u64>,
            id: u64,
            (rng, room, factory): &mut BarberState,
        ) -> Result<(), ActorProcessingErr> {
            haircut(rng);
            factory.cast(FactoryMsg::Served(id))?;
            room.cast(RoomMsg::Next)?;
            Ok(())
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let (factory, _) = Actor::spawn(None, FactoryActor, (n, tx)).await.expect("spawn");
        let (room, _) = Actor::spawn(None, RoomActor, factory.clone()).await.expect("spawn");
        let (barber, _) =
            Actor::spawn(None, Barber, (Rng::new(5), room.clone(), factory.clone())).await.expect("spawn");
        ractor::call!(room, RoomMsg::Barber, barber).expect("wired");
        ractor::call!(factory, FactoryMsg::Room, room).expect("wired");
        let start = Instant::now();
        factory.cast(FactoryMsg::Start).expect("tell");
        let r = rx.await.expect("done");
        (r, start.elapsed())
    })
}
