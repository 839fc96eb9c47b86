//! Grains (virtual actors): the [`Grain`] trait users implement and the context a grain sees.
//! The activations of one partition live in one actor, its host (see `host.rs`).

use super::host::GrainHost;
use corelane::{ActorError, Ctx, Handle};
use std::cell::Cell;

/// A virtual actor: one instance per identity across the cluster, activated on the owner of
/// its partition by the first message, passivated when idle, reactivated elsewhere when its
/// member goes.
pub trait Grain: Sized + 'static {
    /// The kind's name, as members register it and senders address it.
    const KIND: &'static str;
    /// The messages it handles (wire messages become these through its [`Protocol`](crate::Protocol)).
    type Msg: Send + 'static;

    /// Runs when the activation starts, before any message.
    ///
    /// # Errors
    /// An error fails the activation (it stops; the message that caused it is refused).
    fn activated(&mut self, _ctx: &mut GrainCtx<'_, Self>) -> Result<(), ActorError> {
        Ok(())
    }

    /// Handles one message.
    ///
    /// # Errors
    /// As an actor's `receive`: the activation's supervisor decides (by default it restarts).
    fn receive(&mut self, ctx: &mut GrainCtx<'_, Self>, msg: Self::Msg) -> Result<(), ActorError>;

    /// Runs when the activation ends (passivated, its partition moved, its member fenced or
    /// left).
    fn deactivated(&mut self, _ctx: &mut GrainCtx<'_, Self>) {}
}

/// What a grain sees of itself while it handles a message.
pub struct GrainCtx<'a, G: Grain> {
    pub(super) ctx: &'a mut Ctx<GrainHost<G>>,
    pub(super) identity: &'a str,
    pub(super) epoch: u64,
    pub(super) deactivate: &'a Cell<bool>,
}

impl<G: Grain> GrainCtx<'_, G> {
    /// The grain's identity within its kind.
    pub fn identity(&self) -> &str {
        self.identity
    }

    /// The topology epoch at which this member took the grain's partition, before this
    /// activation began: a fencing token for the grain's storage (a store that refuses writes
    /// carrying an epoch lower than the highest it has seen for the grain can never take a
    /// write from an earlier activation, which ran on a member that held the partition before).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Ends this activation once the current message is handled: `deactivated` runs then, and
    /// the next message for the grain activates it again.
    pub fn deactivate(&self) {
        self.deactivate.set(true);
    }

    /// The runtime the grain runs on.
    pub fn runtime(&self) -> Handle {
        self.ctx.runtime()
    }
}
