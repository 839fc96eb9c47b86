//! The `Actor` trait and the error its handlers return.

use crate::context::Ctx;
use crate::signal::Signal;
use std::fmt;

/// An actor: private state, one message type, handlers run one message at a time on its shard.
///
/// The state need not be `Send`: a factory builds it on the shard and it never leaves.
///
/// ```
/// use corelane::{Actor, ActorError, Ctx, Reply};
///
/// enum CounterMsg { Add(u64), Get(Reply<u64>) }
///
/// #[derive(Default)]
/// struct Counter(u64);
///
/// impl Actor for Counter {
///     type Msg = CounterMsg;
///     fn receive(&mut self, _ctx: &mut Ctx<Self>, msg: CounterMsg) -> Result<(), ActorError> {
///         match msg {
///             CounterMsg::Add(n) => self.0 += n,
///             CounterMsg::Get(reply) => reply.send(self.0),
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Actor: Sized + 'static {
    /// The one message type; an enum is the norm.
    type Msg: Send + 'static;

    /// Runs once on the shard before the first message.
    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        let _ = ctx;
        Ok(())
    }

    /// Handles one message.
    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: Self::Msg) -> Result<(), ActorError>;

    /// Handles a signal (`Signal::Terminated` of a watched actor), ahead of user messages. A
    /// failure here is supervised like one in `receive`.
    fn signal(&mut self, ctx: &mut Ctx<Self>, sig: Signal) -> Result<(), ActorError> {
        let _ = (ctx, sig);
        Ok(())
    }

    /// Runs once after the last message, when the actor stops (gracefully, killed, or on a
    /// restart: on the old instance before the new one is built).
    ///
    /// It runs exactly for the instances whose [`Actor::started`] returned `Ok` (or that were
    /// resumed after it failed): an instance whose `started` failed never started, so it gets
    /// no `stopped`, whether it is then restarted or stopped. Release what a failing `started`
    /// acquired before returning the error (or let `Drop` do it).
    fn stopped(&mut self, ctx: &mut Ctx<Self>) {
        let _ = ctx;
    }
}

/// The failure a handler reports. Any `std::error::Error` converts into it, so `?` works; and it
/// converts into a boxed error, so `?` works the other way too (in a `main` or a test that
/// returns `Result<_, Box<dyn Error>>`).
///
/// (Like `anyhow::Error`, it is not itself a `std::error::Error`: that would clash with the
/// conversion from every error.)
///
/// ```
/// # use corelane::ActorError;
/// fn handler() -> Result<(), ActorError> {
///     let n: u32 = "12x".parse()?; // ParseIntError → ActorError
///     Ok(drop(n))
/// }
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let fine = || -> Result<u8, ActorError> { Ok(1) };
///     assert_eq!(fine()?, 1); // `?` from ActorError into Box<dyn Error>
///     let e = handler().unwrap_err();
///     assert!(e.inner().is::<std::num::ParseIntError>());
///     let boxed: Box<dyn std::error::Error> = e.into(); // ActorError → Box<dyn Error>
///     assert_eq!(boxed.to_string(), "invalid digit found in string");
///     Ok(())
/// }
/// ```
pub struct ActorError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl ActorError {
    /// An error with just a message.
    pub fn msg(m: impl Into<String>) -> Self {
        Self(m.into().into())
    }
    /// The underlying error.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
    /// The underlying error, owned.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.0
    }
}

impl From<ActorError> for Box<dyn std::error::Error + Send + Sync + 'static> {
    fn from(e: ActorError) -> Self {
        e.0
    }
}

impl From<ActorError> for Box<dyn std::error::Error + Send + 'static> {
    fn from(e: ActorError) -> Self {
        e.0
    }
}

impl From<ActorError> for Box<dyn std::error::Error + 'static> {
    fn from(e: ActorError) -> Self {
        e.0
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ActorError {
    fn from(e: E) -> Self {
        Self(Box::new(e))
    }
}

impl fmt::Debug for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
