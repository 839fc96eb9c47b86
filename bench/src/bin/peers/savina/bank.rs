//! Savina Bank transaction: a teller makes `n` transfers between `ACCOUNTS` accounts picked at
//! random; the source account debits and passes the credit to the destination, which credits
//! and tells the teller. When every transfer is done the teller asks every account for its
//! balance (checked: money is neither made nor lost, and `n` transfers completed).
//! Transfers per second.

use crate::frameworks::{actix_main, corelane, tokio_main, Fw, Rng, PATIENCE};
use crate::Workload;
use std::time::{Duration, Instant};

pub(crate) const WORKLOAD: Workload = Workload {
    name: "savina-bank",
    metric: "tx_per_sec",
    unit: "tx/s",
    size: 400_000,
    user_path: false,
    about: "Savina Bank transaction: n transfers between 1000 accounts",
    run,
};

const ACCOUNTS: usize = 1000;
const OPENING: i64 = 1_000_000;

fn run(fw: Fw, n: u64) -> (u64, Duration) {
    let ((transfers, total), t) = match fw {
        Fw::Corelane | Fw::CorelaneSpin | Fw::CorelaneBlockOn => cl(fw, n),
        Fw::Actix => ax(n),
        Fw::Kameo => km(n),
        Fw::Ractor => rc(n),
    };
    assert_eq!(transfers, n, "{}: every transfer completed", fw.name());
    assert_eq!(total, ACCOUNTS as i64 * OPENING, "{}: money neither made nor lost", fw.name());
    (n, t)
}

/// The teller's plan and count, the same in every framework.
struct Teller<D> {
    rng: Rng,
    done_transfers: u64,
    transfers: u64,
    balances: usize,
    total: i64,
    done: Option<D>,
}

impl<D> Teller<D> {
    fn new(transfers: u64) -> Self {
        Teller { rng: Rng::new(7), done_transfers: 0, transfers, balances: 0, total: 0, done: None }
    }
    /// The next transfer: (from, to, amount).
    fn plan(&mut self) -> (usize, usize, i64) {
        let from = self.rng.below(ACCOUNTS as u64) as usize;
        let to = (from + 1 + self.rng.below(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
        (from, to, 1 + self.rng.below(1000) as i64)
    }
    /// A transfer completed: whether it was the last one.
    fn completed(&mut self) -> bool {
        self.done_transfers += 1;
        self.done_transfers == self.transfers
    }
    /// A balance arrived: the result, once every account answered.
    fn balance(&mut self, b: i64) -> Option<(D, (u64, i64))> {
        self.balances += 1;
        self.total += b;
        self.finish()
    }
    fn finish(&mut self) -> Option<(D, (u64, i64))> {
        if self.balances == ACCOUNTS {
            self.done.take().map(|d| (d, (self.done_transfers, self.total)))
        } else {
            None
        }
    }
}

fn cl(fw: Fw, n: u64) -> ((u64, i64), Duration) {
    use corelane::{Actor, ActorError, ActorRef, Ctx, Reply};
    enum AccountMsg {
        Debit { amount: i64, to: ActorRef<AccountMsg>, teller: ActorRef<TellerMsg> },
        Credit { amount: i64, teller: ActorRef<TellerMsg> },
        Balance(ActorRef<TellerMsg>),
    }
    enum TellerMsg {
        Start(Vec<ActorRef<AccountMsg>>),
        Completed,
        Balance(i64),
        Wait(Reply<(u64, i64)>),
    }
    struct Account(i64);
    impl Actor for Account {
        type Msg = AccountMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: AccountMsg) -> Result<(), ActorError> {
            match m {
                AccountMsg::Debit { amount, to, teller } => {
                    self.0 -= amount;
                    let _ = to.tell(AccountMsg::Credit { amount, teller });
                }
                AccountMsg::Credit { amount, teller } => {
                    self.0 += amount;
                    let _ = teller.tell(TellerMsg::Completed);
                }
                AccountMsg::Balance(teller) => {
                    let _ = teller.tell(TellerMsg::Balance(self.0));
                }
            }
            Ok(())
        }
    }
    struct TellerActor(Teller<Reply<(u64, i64)>>, Vec<ActorRef<AccountMsg>>);
    impl Actor for TellerActor {
        type Msg = TellerMsg;
        fn receive(&mut self, ctx: &mut Ctx<Self>, m: TellerMsg) -> Result<(), ActorError> {
            let me = ctx.myself();
            let done = match m {
                TellerMsg::Start(accounts) => {
                    for _ in 0..self.0.transfers {
                        let (from, to, amount) = self.0.plan();
                        let debit =
                            AccountMsg::Debit { amount, to: accounts[to].clone(), teller: me.clone() };
                        let _ = accounts[from].tell(debit);
                    }
                    self.1 = accounts;
                    None
                }
                TellerMsg::Completed => {
                    if self.0.completed() {
                        for a in &self.1 {
                            let _ = a.tell(AccountMsg::Balance(me.clone()));
                        }
                    }
                    None
                }
                TellerMsg::Balance(b) => self.0.balance(b),
                TellerMsg::Wait(d) => {
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
    let rt = corelane(fw);
    let accounts: Vec<_> = (0..ACCOUNTS).map(|_| rt.spawn(|| Account(OPENING)).expect("spawn")).collect();
    let teller = rt.spawn(move || TellerActor(Teller::new(n), Vec::new())).expect("spawn");
    let start = Instant::now();
    teller.tell(TellerMsg::Start(accounts)).expect("tell");
    let r = teller.ask(TellerMsg::Wait).timeout(PATIENCE).wait().expect("done");
    (r, start.elapsed())
}

fn ax(n: u64) -> ((u64, i64), Duration) {
    use actix::prelude::*;
    use tokio::sync::oneshot;
    #[derive(Message)]
    #[rtype(result = "()")]
    enum AccountMsg {
        Debit { amount: i64, to: Addr<Account>, teller: Addr<TellerActor> },
        Credit { amount: i64, teller: Addr<TellerActor> },
        Balance(Addr<TellerActor>),
    }
    #[derive(Message)]
    #[rtype(result = "()")]
    enum TellerMsg {
        Start(Vec<Addr<Account>>),
        Completed,
        Balance(i64),
    }
    struct Account(i64);
    impl Actor for Account {
        type Context = Context<Self>;
    }
    impl Handler<AccountMsg> for Account {
        type Result = ();
        fn handle(&mut self, m: AccountMsg, _: &mut Context<Self>) {
            match m {
                AccountMsg::Debit { amount, to, teller } => {
                    self.0 -= amount;
                    to.do_send(AccountMsg::Credit { amount, teller });
                }
                AccountMsg::Credit { amount, teller } => {
                    self.0 += amount;
                    teller.do_send(TellerMsg::Completed);
                }
                AccountMsg::Balance(teller) => teller.do_send(TellerMsg::Balance(self.0)),
            }
        }
    }
    struct TellerActor(Teller<oneshot::Sender<(u64, i64)>>, Vec<Addr<Account>>);
    impl Actor for TellerActor {
        type Context = Context<Self>;
    }
    impl Handler<TellerMsg> for TellerActor {
        type Result = ();
        fn handle(&mut self, m: TellerMsg, ctx: &mut Context<Self>) {
            let me = ctx.address();
            match m {
                TellerMsg::Start(accounts) => {
                    for _ in 0..self.0.transfers {
                        let (from, to, amount) = self.0.plan();
                        accounts[from].do_send(AccountMsg::Debit {
                            amount,
                            to: accounts[to].clone(),
                            teller: me.clone(),
                        });
                    }
                    self.1 = accounts;
                }
                TellerMsg::Completed => {
                    if self.0.completed() {
                        for a in &self.1 {
                            a.do_send(AccountMsg::Balance(me.clone()));
                        }
                    }
                }
                TellerMsg::Balance(b) => {
                    if let Some((d, r)) = self.0.balance(b) {
                        let _ = d.send(r);
                    }
                }
            }
        }
    }
    actix_main(async move {
        let (tx, rx) = oneshot::channel();
        let accounts: Vec<_> = (0..ACCOUNTS).map(|_| Account(OPENING).start()).collect();
        let mut t = Teller::new(n);
        t.done = Some(tx);
        let teller = TellerActor(t, Vec::new()).start();
        let start = Instant::now();
        teller.do_send(TellerMsg::Start(accounts));
        let r = rx.await.expect("done");
        (r, start.elapsed())
    })
}

fn km(n: u64) -> ((u64, i64), Duration) {
    use kameo::mailbox;
    use kameo::prelude::*;
    use tokio::sync::oneshot;
    enum AccountMsg {
        Debit { amount: i64, to: ActorRef<Account>, teller: ActorRef<TellerActor> },
        Credit { amount: i64, teller: ActorRef<TellerActor> },
        Balance(ActorRef<TellerActor>),
    }
    enum TellerMsg {
        Start(Vec<ActorRef<Account>>),
        Completed,
        Balance(i64),
    }
    #[derive(Actor)]
    struct Account(i64);
    impl Message<AccountMsg> for Account {
        type Reply = ();
        async fn handle(&mut self, m: AccountMsg, _: &mut Context<Self, ()>) {
            match m {
                AccountMsg::Debit { amount, to, teller } => {
                    self.0 -= amount;
                    to.tell(AccountMsg::Credit { amount, teller }).await.expect("tell");
                }
                AccountMsg::Credit { amount, teller } => {
                    self.0 += amount;
                    teller.tell(TellerMsg::Completed).await.expect("tell");
                }
                AccountMsg::Balance(teller) => teller.tell(TellerMsg::Balance(self.0)).await.expect("tell"),
            }
        }
    }
    #[derive(Actor)]
    struct TellerActor(Teller<oneshot::Sender<(u64, i64)>>, Vec<ActorRef<Account>>);
    impl Message<TellerMsg> for TellerActor {
        type Reply = ();
        async fn handle(&mut self, m: TellerMsg, ctx: &mut Context<Self, ()>) {
            let me = ctx.actor_ref();
            match m {
                TellerMsg::Start(accounts) => {
                    for _ in 0..self.0.transfers {
                        let (from, to, amount) = self.0.plan();
                        let debit =
                            AccountMsg::Debit { amount, to: accounts[to].clone(), teller: me.clone() };
                        accounts[from].tell(debit).await.expect("tell");
                    }
                    self.1 = accounts;
                }
                TellerMsg::Completed => {
                    if self.0.completed() {
                        for a in &self.1 {
                            a.tell(AccountMsg::Balance(me.clone())).await.expect("tell");
                        }
                    }
                }
                TellerMsg::Balance(b) => {
                    if let Some((d, r)) = self.0.balance(b) {
                        let _ = d.send(r);
                    }
                }
            }
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let accounts: Vec<_> = (0..ACCOUNTS)
            .map(|_| Account::spawn_with_mailbox(Account(OPENING), mailbox::unbounded()))
            .collect();
        let mut t = Teller::new(n);
        t.done = Some(tx);
        let teller = TellerActor::spawn_with_mailbox(TellerActor(t, Vec::new()), mailbox::unbounded());
        let start = Instant::now();
        teller.tell(TellerMsg::Start(accounts)).await.expect("tell");
        let r = rx.await.expect("done");
        (r, start.elapsed())
    })
}

fn rc(n: u64) -> ((u64, i64), Duration) {
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::oneshot;
    enum AccountMsg {
        Debit { amount: i64, to: ActorRef<AccountMsg>, teller: ActorRef<TellerMsg> },
        Credit { amount: i64, teller: ActorRef<TellerMsg> },
        Balance(ActorRef<TellerMsg>),
    }
    enum TellerMsg {
        Start(Vec<ActorRef<AccountMsg>>),
        Completed,
        Balance(i64),
    }
    struct Account;
    impl Actor for Account {
        type Msg = AccountMsg;
        type State = i64;
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<AccountMsg>, _: ()) -> Result<i64, ActorProcessingErr> {
            Ok(OPENING)
        }
        async fn handle(
            &self,
            _: ActorRef<AccountMsg>,
            m: AccountMsg,
            s: &mut i64,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                AccountMsg::Debit { amount, to, teller } => {
                    *s -= amount;
                    to.cast(AccountMsg::Credit { amount, teller })?;
                }
                AccountMsg::Credit { amount, teller } => {
                    *s += amount;
                    teller.cast(TellerMsg::Completed)?;
                }
                AccountMsg::Balance(teller) => teller.cast(TellerMsg::Balance(*s))?,
            }
            Ok(())
        }
    }
    struct TellerActor;
    type TellerState = (Teller<oneshot::Sender<(u64, i64)>>, Vec<ActorRef<AccountMsg>>);
    impl Actor for TellerActor {
        type Msg = TellerMsg;
        type State = TellerState;
        type Arguments = (u64, oneshot::Sender<(u64, i64)>);
        async fn pre_start(
            &self,
            _: ActorRef<TellerMsg>,
            (n, done): Self::Arguments,
        ) -> Result<TellerState, ActorProcessingErr> {
            let mut t = Teller::new(n);
            t.done = Some(done);
            Ok((t, Vec::new()))
        }
        async fn handle(
            &self,
            me: ActorRef<TellerMsg>,
            m: TellerMsg,
            (t, accts): &mut TellerState,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                TellerMsg::Start(accounts) => {
                    for _ in 0..t.transfers {
                        let (from, to, amount) = t.plan();
                        accounts[from].cast(AccountMsg::Debit {
                            amount,
                            to: accounts[to].clone(),
                            teller: me.clone(),
                        })?;
                    }
                    *accts = accounts;
                }
                TellerMsg::Completed => {
                    if t.completed() {
                        for a in accts.iter() {
                            a.cast(AccountMsg::Balance(me.clone()))?;
                        }
                    }
                }
                TellerMsg::Balance(b) => {
                    if let Some((d, r)) = t.balance(b) {
                        let _ = d.send(r);
                    }
                }
            }
            Ok(())
        }
    }
    tokio_main(async move {
        let (tx, rx) = oneshot::channel();
        let mut accounts = Vec::new();
        for _ in 0..ACCOUNTS {
            accounts.push(Actor::spawn(None, Account, ()).await.expect("spawn").0);
        }
        let (teller, _) = Actor::spawn(None, TellerActor, (n, tx)).await.expect("spawn");
        let start = Instant::now();
        teller.cast(TellerMsg::Start(accounts)).expect("tell");
        let r = rx.await.expect("done");
        (r, start.elapsed())
    })
}
