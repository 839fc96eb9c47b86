//! Shared by the remoting tests: wire messages, an account actor that checks per-sender
//! order, and nodes on loopback.
#![allow(dead_code, unreachable_pub)]

#[macro_use]
pub mod grains;
pub mod ledger;
pub mod members;
pub mod processes;
pub mod raw;

use corelane::{Actor, ActorError, Ctx, Reply, Runtime, Shards};
use corelane_net::{Accepts, Answers, Node, Protocol, RemoteConfig, Rkyv, RkyvMessage};
use std::collections::HashMap;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Deposit {
    #[prost(uint64, tag = "1")]
    pub amount: u64,
    #[prost(uint32, tag = "2")]
    pub from: u32,
    #[prost(uint64, tag = "3")]
    pub seq: u64,
}
named!(Deposit, "test.v1");

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetBalance {}
named!(GetBalance, "test.v1");

#[derive(Clone, PartialEq, prost::Message)]
pub struct Balance {
    #[prost(uint64, tag = "1")]
    pub amount: u64,
    /// Deposits that arrived out of order for their sender.
    #[prost(uint64, tag = "2")]
    pub out_of_order: u64,
    #[prost(uint64, tag = "3")]
    pub deposits: u64,
    /// The id of the last forwarded note's original sender.
    #[prost(uint64, tag = "4")]
    pub last_sender: u64,
}
named!(Balance, "test.v1");

/// Told with `forward`: the account records who it came from.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Note {}
named!(Note, "test.v1");

/// Accepted by nobody.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stranger {
    #[prost(string, tag = "1")]
    pub text: String,
}
named!(Stranger, "test.v1");

pub enum AccountMsg {
    Deposit(Deposit),
    Balance(Reply<Balance>),
    /// Drops the reply unanswered.
    Ignore,
    /// Keeps the reply unanswered until `Release`.
    Hold(Reply<Balance>),
    Release,
    /// Answers with the memo's amount, read in place from the archive.
    Memo(Rkyv<Memo>, Reply<Balance>),
    /// Answers with the same bytes.
    Echo(Echo, Reply<Echo>),
    Note(Option<corelane_net::RemoteRef>),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Echo {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}
named!(Echo, "test.v1");

/// An rkyv payload.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
pub struct Memo {
    pub amount: u64,
    pub text: String,
}
impl RkyvMessage for Memo {
    const MANIFEST: &'static str = "test.v1.Memo";
}

#[derive(Default)]
pub struct Account {
    balance: Balance,
    last: HashMap<u32, u64>,
    held: Vec<Reply<Balance>>,
}

impl Actor for Account {
    type Msg = AccountMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, msg: AccountMsg) -> Result<(), ActorError> {
        match msg {
            AccountMsg::Deposit(d) => {
                let last = self.last.entry(d.from).or_insert(0);
                if d.seq != *last + 1 {
                    self.balance.out_of_order += 1;
                }
                *last = d.seq;
                self.balance.amount += d.amount;
                self.balance.deposits += 1;
            }
            AccountMsg::Balance(r) => r.send(self.balance.clone()),
            AccountMsg::Ignore => {}
            AccountMsg::Hold(r) => self.held.push(r),
            AccountMsg::Memo(m, r) => {
                let amount = m.get().map(|a| a.amount.to_native()).unwrap_or(0);
                r.send(Balance { amount, ..Default::default() });
            }
            AccountMsg::Echo(e, r) => r.send(e),
            AccountMsg::Note(from) => self.balance.last_sender = from.map_or(0, |f| f.id()),
            AccountMsg::Release => {
                for r in self.held.drain(..) {
                    r.send(self.balance.clone());
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Silence {}
named!(Silence, "test.v1");

#[derive(Clone, PartialEq, prost::Message)]
pub struct Hold {}
named!(Hold, "test.v1");

#[derive(Clone, PartialEq, prost::Message)]
pub struct Release {}
named!(Release, "test.v1");

// What the typed references check: an account takes deposits and notes, and answers
// `GetBalance` with a `Balance` and `Echo` with an `Echo`.
impl Accepts<Deposit> for AccountMsg {
    fn from_tell(d: Deposit) -> Self {
        AccountMsg::Deposit(d)
    }
}
impl Accepts<Note> for AccountMsg {
    fn from_tell(_: Note) -> Self {
        AccountMsg::Note(None)
    }
}
impl Answers<GetBalance> for AccountMsg {
    type Reply = Balance;
    fn from_ask(_: GetBalance, r: Reply<Balance>) -> Self {
        AccountMsg::Balance(r)
    }
}
impl Answers<Echo> for AccountMsg {
    type Reply = Echo;
    fn from_ask(e: Echo, r: Reply<Echo>) -> Self {
        AccountMsg::Echo(e, r)
    }
}

pub fn account_protocol() -> Protocol<AccountMsg> {
    Protocol::new()
        .accepts::<Deposit>()
        .answers::<GetBalance>()
        .ask(|_: Silence, _: Reply<Balance>| AccountMsg::Ignore)
        .ask(|_: Hold, r| AccountMsg::Hold(r))
        .tell(|_: Release| AccountMsg::Release)
        .ask(AccountMsg::Memo)
        .answers::<Echo>()
        .tell_from(|_: Note, from| AccountMsg::Note(from))
}

pub fn runtime() -> Runtime {
    Runtime::builder().shards(Shards::Count(1)).build().expect("runtime")
}

pub fn node(rt: &Runtime) -> Node {
    Node::start(rt, RemoteConfig::dev()).expect("node")
}

pub fn node_with(rt: &Runtime, cfg: RemoteConfig) -> Node {
    Node::start(rt, cfg).expect("node")
}

/// Waits until `cond` holds (checked every millisecond), at most `wait`; whether it held.
#[allow(dead_code)]
pub fn until(wait: std::time::Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(1));
    }
    cond()
}
