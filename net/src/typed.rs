//! Typed references: a reference to a remote actor, a grain or a named actor that knows the
//! actor's message type `M`, so that a message it does not accept, or an answer of the wrong
//! type, is a compile error rather than a refusal at run time.
//!
//! What an actor accepts from other nodes is said once, by implementing [`Accepts`] (tells)
//! and [`Answers`] (asks, with the reply type) for its message type. Its [`Protocol`] is built
//! from the same impls ([`Protocol::accepts`], [`Protocol::answers`]), so what a [`Typed`]
//! reference lets through is what the receiving node decodes.
//!
//! ```
//! use corelane::{Actor, ActorError, Ctx, Reply, Runtime};
//! use corelane_net::{Accepts, Answers, Node, Protocol, RemoteConfig};
//! use std::time::Duration;
//! # #[derive(Clone, PartialEq, prost::Message)] pub struct Deposit { #[prost(uint64, tag = "1")] pub amount: u64 }
//! # impl prost::Name for Deposit { const NAME: &'static str = "Deposit"; const PACKAGE: &'static str = "bank.v1"; }
//! # #[derive(Clone, PartialEq, prost::Message)] pub struct GetBalance {}
//! # impl prost::Name for GetBalance { const NAME: &'static str = "GetBalance"; const PACKAGE: &'static str = "bank.v1"; }
//! # #[derive(Clone, PartialEq, prost::Message)] pub struct Balance { #[prost(uint64, tag = "1")] pub amount: u64 }
//! # impl prost::Name for Balance { const NAME: &'static str = "Balance"; const PACKAGE: &'static str = "bank.v1"; }
//!
//! enum AccountMsg {
//!     Deposit(u64),
//!     Balance(Reply<Balance>),
//! }
//! impl Accepts<Deposit> for AccountMsg {
//!     fn from_tell(d: Deposit) -> Self {
//!         AccountMsg::Deposit(d.amount)
//!     }
//! }
//! impl Answers<GetBalance> for AccountMsg {
//!     type Reply = Balance;
//!     fn from_ask(_: GetBalance, reply: Reply<Balance>) -> Self {
//!         AccountMsg::Balance(reply)
//!     }
//! }
//!
//! struct Account(u64);
//! impl Actor for Account {
//!     type Msg = AccountMsg;
//!     fn receive(&mut self, _: &mut Ctx<Self>, msg: AccountMsg) -> Result<(), ActorError> {
//!         match msg {
//!             AccountMsg::Deposit(n) => self.0 += n,
//!             AccountMsg::Balance(r) => r.send(Balance { amount: self.0 }),
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let rt = Runtime::builder().build()?;
//! let node = Node::start(&rt, RemoteConfig::dev())?;
//! let protocol = Protocol::<AccountMsg>::new().accepts::<Deposit>().answers::<GetBalance>();
//! let account = rt.spawn(|| Account(0))?;
//!
//! // As another node sees it (here: this one, through its own address).
//! let remote = node.expose(&account, protocol).typed::<AccountMsg>();
//! remote.tell(&Deposit { amount: 7 })?;
//! let b: Balance = remote.ask(&GetBalance {}).timeout(Duration::from_secs(5)).wait()?;
//! assert_eq!(b.amount, 7);
//! # node.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A message the actor does not accept does not compile:
//!
//! ```compile_fail,E0277
//! # use corelane::Reply;
//! # use corelane_net::{Accepts, RemoteRef, TypedRemoteRef};
//! # #[derive(Clone, PartialEq, prost::Message)] pub struct Deposit { #[prost(uint64, tag = "1")] pub amount: u64 }
//! # impl prost::Name for Deposit { const NAME: &'static str = "Deposit"; const PACKAGE: &'static str = "bank.v1"; }
//! # #[derive(Clone, PartialEq, prost::Message)] pub struct Withdraw { #[prost(uint64, tag = "1")] pub amount: u64 }
//! # impl prost::Name for Withdraw { const NAME: &'static str = "Withdraw"; const PACKAGE: &'static str = "bank.v1"; }
//! # enum AccountMsg { Deposit(u64) }
//! # impl Accepts<Deposit> for AccountMsg { fn from_tell(d: Deposit) -> Self { AccountMsg::Deposit(d.amount) } }
//! fn pay(account: &TypedRemoteRef<AccountMsg>) {
//!     account.tell(&Withdraw { amount: 1 }); // AccountMsg does not accept Withdraw
//! }
//! ```
//!
//! Nor does expecting an answer of another type than the one the actor gives:
//!
//! ```compile_fail,E0308
//! # use corelane::Reply;
//! # use corelane_net::{Answers, RemoteAskError, TypedRemoteRef};
//! # #[derive(Clone, PartialEq, prost::Message)] pub struct GetBalance {}
//! # impl prost::Name for GetBalance { const NAME: &'static str = "GetBalance"; const PACKAGE: &'static str = "bank.v1"; }
//! # #[derive(Clone, PartialEq, prost::Message)] pub struct Balance { #[prost(uint64, tag = "1")] pub amount: u64 }
//! # impl prost::Name for Balance { const NAME: &'static str = "Balance"; const PACKAGE: &'static str = "bank.v1"; }
//! # #[derive(Clone, PartialEq, prost::Message)] pub struct Statement { #[prost(string, tag = "1")] pub text: String }
//! # impl prost::Name for Statement { const NAME: &'static str = "Statement"; const PACKAGE: &'static str = "bank.v1"; }
//! # enum AccountMsg { Balance(Reply<Balance>) }
//! # impl Answers<GetBalance> for AccountMsg { type Reply = Balance; fn from_ask(_: GetBalance, r: Reply<Balance>) -> Self { AccountMsg::Balance(r) } }
//! fn statement(account: &TypedRemoteRef<AccountMsg>) -> Result<Statement, RemoteAskError> {
//!     account.ask(&GetBalance {}).wait() // the answer is a Balance
//! }
//! ```

use crate::cluster::{Grain, GrainAsk, GrainRef};
use crate::codec::RemoteMessage;
use crate::error::{RemoteAskError, RemoteSendError};
use crate::remote_ref::{RemoteAsk, RemoteBatchAsk, RemoteRef};
use corelane::Reply;
use std::future::Future;
use std::marker::PhantomData;

/// Actors whose message type is `Self` accept tells of wire message `P`: this is how a `P`
/// becomes one of their messages.
pub trait Accepts<P: RemoteMessage>: Send + Sized + 'static {
    /// The message a received `P` becomes.
    fn from_tell(msg: P) -> Self;
}

/// Actors whose message type is `Self` answer asks of wire message `P` with a
/// [`Reply`](Answers::Reply): this is how a `P` and the reply it waits for become one of their
/// messages.
pub trait Answers<P: RemoteMessage>: Send + Sized + 'static {
    /// The answer's type.
    type Reply: RemoteMessage;
    /// The message a received `P` becomes, carrying where its answer goes.
    fn from_ask(msg: P, reply: Reply<Self::Reply>) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::RemoteRef {}
    impl Sealed for crate::cluster::GrainRef {}
    impl Sealed for crate::cluster::ByName {}
}

/// Where a [`Typed`] reference sends: an actor at a known address ([`RemoteRef`]), a grain
/// ([`GrainRef`]) or a named actor or singleton wherever it runs ([`ByName`](crate::cluster::ByName)).
/// Implemented only by this crate.
pub trait Destination: Clone + Send + Sync + sealed::Sealed {
    /// The answer to an ask sent this way.
    type Ask<R: RemoteMessage>: Future<Output = Result<R, RemoteAskError>>;
    /// Sends a tell.
    ///
    /// # Errors
    /// As the untyped reference's `tell`.
    fn tell<P: RemoteMessage>(&self, msg: &P) -> Result<(), RemoteSendError>;
    /// Sends an ask.
    fn ask<P: RemoteMessage, R: RemoteMessage>(&self, msg: &P) -> Self::Ask<R>;
    /// Sends asks, in order; their answers in the same order.
    fn batch_ask<'a, P: RemoteMessage, R: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> RemoteBatchAsk<R>;
}

impl Destination for RemoteRef {
    type Ask<R: RemoteMessage> = RemoteAsk<R>;
    fn tell<P: RemoteMessage>(&self, msg: &P) -> Result<(), RemoteSendError> {
        RemoteRef::tell(self, msg)
    }
    fn ask<P: RemoteMessage, R: RemoteMessage>(&self, msg: &P) -> RemoteAsk<R> {
        RemoteRef::ask(self, msg)
    }
    fn batch_ask<'a, P: RemoteMessage, R: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> RemoteBatchAsk<R> {
        RemoteRef::batch_ask(self, msgs)
    }
}

impl Destination for GrainRef {
    type Ask<R: RemoteMessage> = GrainAsk<R>;
    fn tell<P: RemoteMessage>(&self, msg: &P) -> Result<(), RemoteSendError> {
        GrainRef::tell(self, msg)
    }
    fn ask<P: RemoteMessage, R: RemoteMessage>(&self, msg: &P) -> GrainAsk<R> {
        GrainRef::ask(self, msg)
    }
    fn batch_ask<'a, P: RemoteMessage, R: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> RemoteBatchAsk<R> {
        GrainRef::batch_ask(self, msgs)
    }
}

/// A reference that sends through `D` to actors whose message type is `M`, and lets through
/// only what they accept: tells of `P` where `M: Accepts<P>`, asks of `P` where
/// `M: Answers<P>`, answered with `<M as Answers<P>>::Reply`. The same shape as `ActorRef`:
/// `tell`, `ask(..).timeout(..)`, `batch_tell`, `batch_ask`, and `forward` where the
/// destination is an actor.
pub struct Typed<D, M> {
    to: D,
    // `fn() -> M`: the reference is Send and Sync whatever `M` is; it holds no `M`.
    message: PhantomData<fn() -> M>,
}

/// A typed reference to an actor at a known address.
pub type TypedRemoteRef<M> = Typed<RemoteRef, M>;

/// A typed reference to a grain of kind `G`.
pub type TypedGrainRef<G> = Typed<GrainRef, <G as Grain>::Msg>;

impl<D: Clone, M> Clone for Typed<D, M> {
    fn clone(&self) -> Self {
        Self { to: self.to.clone(), message: PhantomData }
    }
}

impl<D: std::fmt::Debug, M> std::fmt::Debug for Typed<D, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Typed<{}>({:?})", std::any::type_name::<M>(), self.to)
    }
}

impl<D: PartialEq, M> PartialEq for Typed<D, M> {
    fn eq(&self, other: &Self) -> bool {
        self.to == other.to
    }
}

impl<D: Destination, M> Typed<D, M> {
    pub(crate) fn new(to: D) -> Self {
        Self { to, message: PhantomData }
    }

    /// The untyped reference underneath (for what it offers besides messages: address,
    /// `stop`, `watch`).
    pub fn untyped(&self) -> &D {
        &self.to
    }

    /// The untyped reference, given up.
    pub fn into_untyped(self) -> D {
        self.to
    }

    /// Sends `msg`, a message the actor accepts. Delivery is at most once.
    ///
    /// # Errors
    /// As the untyped reference's `tell`.
    pub fn tell<P: RemoteMessage>(&self, msg: &P) -> Result<(), RemoteSendError>
    where
        M: Accepts<P>,
    {
        self.to.tell(msg)
    }

    /// Asks with `msg`; the answer has the type the actor answers `P` with.
    pub fn ask<P: RemoteMessage>(&self, msg: &P) -> D::Ask<<M as Answers<P>>::Reply>
    where
        M: Answers<P>,
    {
        self.to.ask(msg)
    }

    /// Sends every message, in order.
    ///
    /// # Errors
    /// The first message that could not be sent (those before it were).
    pub fn batch_tell<'a, P: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> Result<(), RemoteSendError>
    where
        M: Accepts<P>,
    {
        msgs.into_iter().try_for_each(|m| self.to.tell(m))
    }

    /// Asks with every message, in order; the answers come back in the same order.
    pub fn batch_ask<'a, P: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> RemoteBatchAsk<<M as Answers<P>>::Reply>
    where
        M: Answers<P>,
    {
        self.to.batch_ask(msgs)
    }
}

impl<M> Typed<RemoteRef, M> {
    /// Sends `msg` on behalf of `sender` (the original sender of a message being passed on).
    ///
    /// # Errors
    /// As [`RemoteRef::forward`].
    pub fn forward<P: RemoteMessage>(&self, msg: &P, sender: &RemoteRef) -> Result<(), RemoteSendError>
    where
        M: Accepts<P>,
    {
        self.to.forward(msg, sender)
    }
}

impl RemoteRef {
    /// This reference, typed by the actor's message type `M`: it then lets through only the
    /// messages `M` [`Accepts`] and [`Answers`].
    pub fn typed<M>(self) -> TypedRemoteRef<M> {
        Typed::new(self)
    }
}

impl GrainRef {
    /// This reference, typed by the grain's message type `M`.
    pub fn typed<M>(self) -> Typed<GrainRef, M> {
        Typed::new(self)
    }
}
