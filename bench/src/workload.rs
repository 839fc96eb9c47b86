//! The actors of the benchmarks' workloads, written once: a counter (a user's first actor) and
//! an echo (the other end of every ask).

use corelane::{Actor, ActorError, Ctx, Reply};

/// What a [`Counter`] is told or asked.
pub enum CountMsg {
    /// Adds to the count.
    Add(u64),
    /// Answers the count.
    Get(Reply<u64>),
}

/// A counter, as a user's first actor.
#[derive(Default)]
pub struct Counter(pub u64);

impl Actor for Counter {
    type Msg = CountMsg;
    #[inline]
    fn receive(&mut self, _: &mut Ctx<Self>, msg: CountMsg) -> Result<(), ActorError> {
        match msg {
            CountMsg::Add(n) => self.0 += n,
            CountMsg::Get(r) => r.send(self.0),
        }
        Ok(())
    }
}

/// What an [`Echo`] is asked: a value, answered plus one (so an answer cannot be mistaken for
/// the request, or for a stale answer of the previous one).
pub enum EchoMsg {
    /// Answer `.0 + 1`.
    Echo(u64, Reply<u64>),
}

/// Answers every ask at once.
pub struct Echo;

impl Actor for Echo {
    type Msg = EchoMsg;
    #[inline]
    fn receive(&mut self, _: &mut Ctx<Self>, EchoMsg::Echo(v, r): EchoMsg) -> Result<(), ActorError> {
        r.send(v + 1);
        Ok(())
    }
}
