//! Hooks for code that builds on the engine rather than on its actors: the remoting layer
//! (`corelane-net`), and bridges of your own to another runtime, a network or a callback API.
//! They are kept apart from the actor-facing API (`Handle`, `Ctx`, `Pending`) because an actor
//! never needs them, and each one bypasses something an actor relies on: a reply with no ask
//! behind it, dead letters counted without a send, a stop reason that is not the actor's own.
//!
//! ```
//! use corelane::{integration, Runtime};
//!
//! let rt = Runtime::builder().build()?;
//! // A callback API answers later, from a thread of its own.
//! let (reply, pending) = integration::request::<u32>(rt.handle());
//! std::thread::spawn(move || reply.send(7));
//! assert_eq!(pending.wait()?, 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::actor::Actor;
use crate::ask::{Pending, Reply};
use crate::context::Ctx;
use crate::error::AskError;
use crate::events::Event;
use crate::metrics::DeadLetterReason;
use crate::runtime::Handle;
use crate::signal::StopReason;

/// Tells `target` a message that continues a trace (a message from another node that came with
/// a trace context): with the `tracing-spans` feature, the actor handles it with `trace` as the
/// current context ([`trace::current`](crate::trace::current), its `receive` span's
/// `trace_id` and `parent_span`). The context is kept in unbounded and bounded mailboxes; a
/// priority or custom mailbox, or an actor still being built, gets the message without it.
/// Without the feature, or with no context, this is [`ActorRef::tell`](crate::ActorRef::tell).
pub fn tell_traced<M: Send + 'static>(
    target: &crate::ActorRef<M>,
    msg: M,
    trace: Option<crate::trace::TraceContext>,
) -> Result<(), crate::SendError<M>> {
    #[cfg(feature = "tracing-spans")]
    if let Some(t) = trace {
        return target.tell_traced(msg, t);
    }
    #[cfg(not(feature = "tracing-spans"))]
    let _ = trace;
    target.tell(msg)
}

/// A linked request/answer pair for answers that come from outside an actor's `ask` (a remote
/// node's reply, a callback): whoever holds the `Reply` answers once; the `Pending` waits as
/// any ask does (the runtime's `ask_timeout` unless set), and a late answer is a dead letter.
pub fn request<T: Send + 'static>(handle: &Handle) -> (Reply<T>, Pending<T>) {
    crate::ask::pair(&handle.shared, handle.shared.cfg.ask_timeout)
}

/// The runtime's `ask_timeout`: how long a request waits unless its own timeout is set.
pub fn ask_timeout(handle: &Handle) -> std::time::Duration {
    handle.shared.cfg.ask_timeout
}

/// Counts `count` dead letters of type `message_type` that happened outside any actor's send
/// (remoting: what arrived for nobody, or could not leave), and publishes them as `Deadletter`
/// events.
pub fn record_dead_letters(
    handle: &Handle,
    reason: DeadLetterReason,
    message_type: &'static str,
    count: u64,
) {
    if count > 0 {
        handle.shared.dead_letters(reason, message_type, count);
    }
}

/// Publishes the event `make` builds on the runtime's event stream, if anyone subscribed
/// (nothing is built otherwise): for integrations that raise events of their own (the
/// cluster's `NodeJoined` and `NodeLeft`).
pub fn publish_event(handle: &Handle, make: impl FnOnce() -> Event) {
    handle.shared.events.publish(make);
}

/// Stops the actor of `ctx` gracefully, as `Ctx::stop` does, with `reason` as the reason its
/// watchers are told: for actors that stand in for something else (a remote actor's local
/// stand-in stops with the remote actor's reason, or `NodeDown`).
pub fn stop_because<A: Actor>(ctx: &Ctx<A>, reason: StopReason) {
    ctx.stop_because(reason);
}

/// As [`Pending::wait`], but parks at once instead of spinning first: for answers that take
/// far longer than a thread wake-up (a remote node's), where spinning would only take the core
/// from the threads producing the answer.
pub fn wait_parked<T: Send + 'static>(pending: Pending<T>) -> Result<T, AskError> {
    pending.wait_parked()
}

/// Late replies sent from threads that belong to no runtime (process-wide): such a reply
/// cannot be attributed to a runtime's dead letters, so it is counted here. Actors reply from
/// their shard, where late replies count normally.
pub fn unattributed_late_replies() -> u64 {
    crate::metrics::unattributed_late_replies_count()
}

/// Makes glommio fail to start as it does where io_uring is refused, for runtimes built after
/// this call (`false` undoes it): tests of the portable fallback. Process-wide.
#[doc(hidden)]
pub fn simulate_io_uring_refused(on: bool) {
    crate::executor::simulate_io_uring_refused(on);
}
