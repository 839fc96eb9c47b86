//! Grains (virtual actors): the [`Grain`] trait users implement, the context a grain sees, and
//! the actor that hosts one activation on its owner.
//!
//! An activation handles a message only while its member may serve (its lease is renewed in
//! time and the partition is still its own): every message is checked first, so a member that
//! was frozen past its lease handles nothing more when it wakes, and an activation that is
//! being stopped because its partition moved drains its mailbox by refusing it.

use super::{ClusterInner, Gate};
use crate::protocol::Protocol;
use crate::target::{Exposed, Target};
use corelane::{Actor, ActorError, Ctx, Handle, SpawnOptions};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

/// A virtual actor: one instance per identity across the cluster, activated on the owner of
/// its partition by the first message, passivated when idle, reactivated elsewhere when its
/// member goes.
pub trait Grain: Sized + 'static {
    /// The kind's name, as members register it and senders address it.
    const KIND: &'static str;
    /// The messages it handles (wire messages become these through its [`Protocol`]).
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
    ctx: &'a mut Ctx<GrainActor<G>>,
    identity: &'a str,
    epoch: u64,
    cluster: &'a Weak<ClusterInner>,
}

impl<G: Grain> GrainCtx<'_, G> {
    /// The grain's identity within its kind.
    pub fn identity(&self) -> &str {
        self.identity
    }

    /// The topology epoch at which this activation began: a fencing token for the grain's
    /// storage (a store that refuses writes carrying an epoch lower than the highest it has
    /// seen for the grain can never take a write from an earlier activation).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Ends this activation after the current message and what it has queued (a message that
    /// comes later activates the grain again, once this activation has stopped).
    pub fn deactivate(&self) {
        if let Some(c) = self.cluster.upgrade() {
            c.mark_stopping(G::KIND, self.identity, self.ctx.id().as_u64());
        }
        self.ctx.stop();
    }

    /// The runtime the grain runs on.
    pub fn runtime(&self) -> Handle {
        self.ctx.runtime()
    }
}

/// The actor hosting one activation of a grain.
pub struct GrainActor<G: Grain> {
    grain: G,
    identity: Arc<str>,
    epoch: u64,
    cluster: Weak<ClusterInner>,
    lease: Arc<Gate>,
    /// When it last handled a message (the member's passivation sweep reads it).
    last: Arc<AtomicU32>,
}

impl<G: Grain> Actor for GrainActor<G> {
    type Msg = G::Msg;

    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        self.grain.activated(&mut GrainCtx {
            ctx,
            identity: &self.identity,
            epoch: self.epoch,
            cluster: &self.cluster,
        })
    }

    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: G::Msg) -> Result<(), ActorError> {
        let Some(now) = self.lease.serving_now() else {
            // Refused: an ask's reply is dropped unanswered, which the serving member turns
            // into a refusal the sender retries elsewhere.
            drop(msg);
            ctx.stop();
            return Ok(());
        };
        self.last.store(Gate::tick(now), Ordering::Relaxed);
        self.grain.receive(
            &mut GrainCtx { ctx, identity: &self.identity, epoch: self.epoch, cluster: &self.cluster },
            msg,
        )
    }

    fn stopped(&mut self, ctx: &mut Ctx<Self>) {
        self.grain.deactivated(&mut GrainCtx {
            ctx,
            identity: &self.identity,
            epoch: self.epoch,
            cluster: &self.cluster,
        });
        if let Some(c) = self.cluster.upgrade() {
            c.deactivated(G::KIND, &self.identity, ctx.id().as_u64());
        }
    }
}

/// A registered grain kind: how to make an activation.
pub(crate) trait GrainKind: Send + Sync {
    /// Spawns an activation of grain `identity`, stamping `last` with each message it handles.
    fn activate(
        &self,
        rt: &Handle,
        identity: Arc<str>,
        epoch: u64,
        cluster: Weak<ClusterInner>,
        last: Arc<AtomicU32>,
    ) -> Result<Arc<dyn Target>, corelane::SpawnError>;
}

pub(crate) struct KindOf<G: Grain, F> {
    pub(crate) protocol: Arc<Protocol<G::Msg>>,
    pub(crate) factory: F,
}

impl<G, F> GrainKind for KindOf<G, F>
where
    G: Grain,
    F: Fn(&str) -> G + Send + Sync + Clone + 'static,
{
    fn activate(
        &self,
        rt: &Handle,
        identity: Arc<str>,
        epoch: u64,
        cluster: Weak<ClusterInner>,
        last: Arc<AtomicU32>,
    ) -> Result<Arc<dyn Target>, corelane::SpawnError> {
        let factory = self.factory.clone();
        let lease = cluster.upgrade().map(|c| c.gate.clone()).ok_or(corelane::SpawnError::ShuttingDown)?;
        let make = move || GrainActor {
            grain: factory(&identity),
            identity: identity.clone(),
            epoch,
            cluster: cluster.clone(),
            lease: lease.clone(),
            last: last.clone(),
        };
        // Passivation is the member's sweep (see `ClusterInner::passivate_idle`): the engine's
        // per-actor idle timer costs more memory per grain than the grain itself.
        let opts = SpawnOptions::new().never_passivate();
        let actor = rt.spawn_with(opts, make)?;
        Ok(Arc::new(Exposed::new(actor, self.protocol.clone())))
    }
}
