//! The actor hosting the activations of one partition of a grain kind on its owner.
//!
//! A partition's grains live in one engine actor: an activation is the grain's state and an
//! entry in the host's map (tens of bytes), not an actor of its own (hundreds), so a member
//! holds millions of idle grains cheaply. The host handles one message at a time, so two
//! activations of one grain never overlap on a member: a grain that deactivates is gone before
//! the host takes the next message, which may activate it again.
//!
//! Every message is checked against the member's lease first (a clock read): a member that
//! was frozen past its lease handles nothing more when it wakes; its host drops what it had
//! queued (an ask's sender is told it was not handled) and stops. When the partition moves,
//! the member stops the host gracefully: it handles what was queued, then deactivates every
//! grain, and only then does the member say it let the partition go.
//!
//! A grain's failure (an `Err`, or a panic, caught here) ends that activation alone: the
//! others in the host are untouched, and the next message for it activates it afresh.

use super::grain::{Grain, GrainCtx};
use super::{ClusterInner, Gate};
use crate::protocol::{Answer, Protocol, Refusal};
use bytes::Bytes;
use corelane::integration::tell_traced;
use corelane::trace::TraceContext;
use corelane::{Actor, ActorError, ActorRef, Ctx, DeadLetterReason, Handle, Pending, SpawnOptions};
use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// A message to a host.
pub(crate) enum HostMsg<M> {
    /// For grain `identity` (UTF-8, checked by whoever made it).
    Grain(Identity, M),
    /// Passivate the grains idle for the member's grain idle timeout.
    Sweep,
}

/// A grain's identity as a message to its host carries it: a short one inline, a long one in a
/// buffer of its own (never a slice of the receiving thread's buffer: the host's thread would
/// touch a count that thread keeps changing).
pub(crate) enum Identity {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Bytes),
}

/// The longest identity carried inline (a UUID in text is 36).
const INLINE: usize = 46;

impl Identity {
    pub(crate) fn new(identity: &[u8]) -> Self {
        if identity.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..identity.len()].copy_from_slice(identity);
            Identity::Inline { len: identity.len() as u8, bytes }
        } else {
            Identity::Shared(Bytes::copy_from_slice(identity))
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Identity::Inline { len, bytes } => &bytes[..*len as usize],
            Identity::Shared(b) => b,
        }
    }
}

/// One activation: the grain and when it last handled a message ([`Gate::tick`]).
struct Slot<G> {
    grain: G,
    last: u32,
}

/// The actor hosting one partition's activations of grain kind `G`.
pub(crate) struct GrainHost<G: Grain> {
    /// By identity. Identities come from peers: the map's hasher is keyed per process.
    grains: HashMap<Box<str>, Slot<G>>,
    make: Arc<dyn Fn(&str) -> G + Send + Sync>,
    partition: u16,
    /// The epoch at which this member took the partition (the grains' fencing token).
    epoch: u64,
    gate: Arc<Gate>,
    /// The member's serving session when the host was made (`Gate::serving_in`).
    session: u64,
    cluster: Weak<ClusterInner>,
    /// Activations live in this kind on this member (all its hosts).
    live: Arc<AtomicUsize>,
    /// The idle timeout, in [`Gate::tick`] units.
    idle: u32,
}

impl<G: Grain> GrainHost<G> {
    fn handle(&mut self, ctx: &mut Ctx<Self>, identity: &Identity, msg: G::Msg) {
        let Some(now) = self.gate.serving_in(self.session) else {
            // Not handled: an ask's reply is dropped unanswered, which the serving member turns
            // into a refusal the sender retries elsewhere.
            drop(msg);
            ctx.stop();
            return;
        };
        let Ok(identity) = std::str::from_utf8(identity.as_bytes()) else {
            corelane::integration::record_dead_letters(
                &ctx.runtime(),
                DeadLetterReason::Remote(corelane::RemoteReason::Malformed),
                "grain message",
                1,
            );
            return;
        };
        let deactivate = Cell::new(false);
        let (epoch, tick) = (self.epoch, Gate::tick(now));
        // One lookup per message (a second only when the grain is activated).
        let ok = match self.grains.get_mut(identity) {
            Some(slot) => Self::deliver(slot, ctx, identity, epoch, tick, &deactivate, msg),
            None => {
                if !self.activate(ctx, identity, &deactivate) {
                    return;
                }
                let slot = self.grains.get_mut(identity).expect("activated");
                Self::deliver(slot, ctx, identity, epoch, tick, &deactivate, msg)
            }
        };
        if !ok || deactivate.get() {
            self.deactivate(ctx, identity);
        }
    }

    /// Hands `msg` to the grain in `slot`; false when it failed (an error or a panic).
    fn deliver(
        slot: &mut Slot<G>,
        ctx: &mut Ctx<Self>,
        identity: &str,
        epoch: u64,
        tick: u32,
        deactivate: &Cell<bool>,
        msg: G::Msg,
    ) -> bool {
        slot.last = tick;
        let mut gctx = GrainCtx { ctx, identity, epoch, deactivate };
        let grain = &mut slot.grain;
        match catch_unwind(AssertUnwindSafe(|| grain.receive(&mut gctx, msg))) {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(kind = G::KIND, identity, error = %e, "grain failed: its activation ends");
                false
            }
            Err(_) => {
                tracing::warn!(kind = G::KIND, identity, "grain panicked: its activation ends");
                false
            }
        }
    }

    /// Makes the activation of `identity`; false when the grain refused to start (the
    /// message that asked for it is dropped: an ask fails).
    fn activate(&mut self, ctx: &mut Ctx<Self>, identity: &str, deactivate: &Cell<bool>) -> bool {
        let make = &self.make;
        let Ok(mut grain) = catch_unwind(AssertUnwindSafe(|| make(identity))) else {
            tracing::warn!(kind = G::KIND, identity, "grain factory panicked");
            return false;
        };
        let mut gctx = GrainCtx { ctx, identity, epoch: self.epoch, deactivate };
        match catch_unwind(AssertUnwindSafe(|| grain.activated(&mut gctx))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(kind = G::KIND, identity, error = %e, "grain failed to activate");
                return false;
            }
            Err(_) => {
                tracing::warn!(kind = G::KIND, identity, "grain panicked while activating");
                return false;
            }
        }
        self.grains.insert(identity.into(), Slot { grain, last: 0 });
        self.live.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.cluster.upgrade() {
            c.stats.activated.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    fn deactivate(&mut self, ctx: &mut Ctx<Self>, identity: &str) {
        if let Some((key, slot)) = self.grains.remove_entry(identity) {
            self.end(ctx, &key, slot);
        }
    }

    /// Ends an activation taken out of the map.
    fn end(&self, ctx: &mut Ctx<Self>, identity: &str, mut slot: Slot<G>) {
        let unused = Cell::new(false);
        let mut gctx = GrainCtx { ctx, identity, epoch: self.epoch, deactivate: &unused };
        if catch_unwind(AssertUnwindSafe(|| slot.grain.deactivated(&mut gctx))).is_err() {
            tracing::warn!(kind = G::KIND, identity, "grain panicked while deactivating");
        }
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Passivates the grains idle for the timeout.
    fn sweep(&mut self, ctx: &mut Ctx<Self>) {
        let now = Gate::tick(self.gate.base.elapsed().as_nanos() as u64);
        let idle: Vec<Box<str>> = self
            .grains
            .iter()
            .filter(|(_, s)| now.wrapping_sub(s.last) >= self.idle)
            .map(|(k, _)| k.clone())
            .collect();
        if idle.is_empty() {
            return;
        }
        // Counted before the grains' `deactivated` hooks run: whoever sees what a hook did
        // (through an ordering of its own) sees the count too.
        if let Some(c) = self.cluster.upgrade() {
            c.stats.passivated.fetch_add(idle.len() as u64, Ordering::Relaxed);
        }
        for identity in &idle {
            self.deactivate(ctx, identity);
        }
        if self.grains.len() < self.grains.capacity() / 4 {
            self.grains.shrink_to_fit();
        }
    }
}

impl<G: Grain> Actor for GrainHost<G> {
    type Msg = HostMsg<G::Msg>;

    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: Self::Msg) -> Result<(), ActorError> {
        match msg {
            HostMsg::Grain(identity, msg) => self.handle(ctx, &identity, msg),
            HostMsg::Sweep => self.sweep(ctx),
        }
        Ok(())
    }

    fn stopped(&mut self, ctx: &mut Ctx<Self>) {
        for (identity, slot) in std::mem::take(&mut self.grains) {
            self.end(ctx, &identity, slot);
        }
        if let Some(c) = self.cluster.upgrade() {
            c.host_stopped(G::KIND, self.partition, ctx.id().as_u64());
        }
    }
}

/// A host as the member reaches it, whatever its grain kind.
pub(crate) trait HostRef: Send + Sync {
    /// Delivers a tell for grain `identity` (handled in `trace`, if any).
    fn tell(
        &self,
        identity: &[u8],
        manifest: &str,
        payload: Bytes,
        trace: Option<TraceContext>,
    ) -> Result<(), Refusal>;
    /// Delivers tells of one manifest for grain `identity` (a batch: `Envelope::more`), in
    /// order and to the host at once; `refused` hears of each that is not delivered. The
    /// manifest is looked up once.
    fn tell_all(
        &self,
        identity: &[u8],
        manifest: &str,
        payloads: &mut dyn Iterator<Item = Bytes>,
        refused: &mut dyn FnMut(Refusal),
    );
    /// Delivers an ask for grain `identity`; the answer comes through the returned future.
    fn ask(
        &self,
        identity: &[u8],
        manifest: &str,
        payload: Bytes,
        rt: &Handle,
        trace: Option<TraceContext>,
    ) -> Result<Answer, Refusal>;
    /// Passivates its idle grains.
    fn sweep(&self);
    /// Stops it gracefully: it handles what it had queued, then deactivates its grains.
    fn stop(&self) -> Pending<()>;
    fn is_alive(&self) -> bool;
    /// The host actor's id.
    fn id(&self) -> u64;
}

struct Hosted<M: Send + 'static> {
    actor: ActorRef<HostMsg<M>>,
    protocol: Arc<Protocol<M>>,
}

impl<M: Send + 'static> HostRef for Hosted<M> {
    fn tell(
        &self,
        identity: &[u8],
        manifest: &str,
        payload: Bytes,
        trace: Option<TraceContext>,
    ) -> Result<(), Refusal> {
        let m = self.protocol.decode_tell(manifest, payload, None)?;
        // A stopped host or a closed runtime makes it a dead letter, counted by the engine.
        let _ = tell_traced(&self.actor, HostMsg::Grain(Identity::new(identity), m), trace);
        Ok(())
    }

    fn tell_all(
        &self,
        identity: &[u8],
        manifest: &str,
        payloads: &mut dyn Iterator<Item = Bytes>,
        refused: &mut dyn FnMut(Refusal),
    ) {
        let mut msgs = Vec::with_capacity(payloads.size_hint().0);
        let keep = |m| msgs.push(HostMsg::Grain(Identity::new(identity), m));
        self.protocol.decode_tells(manifest, payloads, refused, keep);
        // One packet for the host; a stopped host or a closed runtime makes them dead letters,
        // counted by the engine.
        let _ = self.actor.batch_tell(msgs);
    }

    fn ask(
        &self,
        identity: &[u8],
        manifest: &str,
        payload: Bytes,
        rt: &Handle,
        trace: Option<TraceContext>,
    ) -> Result<Answer, Refusal> {
        let (m, answer) = self.protocol.decode_ask(manifest, payload, rt)?;
        let _ = tell_traced(&self.actor, HostMsg::Grain(Identity::new(identity), m), trace);
        Ok(answer)
    }

    fn sweep(&self) {
        let _ = self.actor.tell(HostMsg::Sweep);
    }

    fn stop(&self) -> Pending<()> {
        self.actor.stop()
    }

    fn is_alive(&self) -> bool {
        self.actor.is_alive()
    }

    fn id(&self) -> u64 {
        self.actor.untyped().id().as_u64()
    }
}

/// A registered grain kind: how to start a host for one of its partitions.
pub(crate) trait GrainKind: Send + Sync {
    /// Spawns the host of `partition`, taken at `epoch`, whose activations count into `live`.
    fn host(
        &self,
        rt: &Handle,
        partition: u16,
        epoch: u64,
        cluster: &Arc<ClusterInner>,
        live: Arc<AtomicUsize>,
    ) -> Result<Arc<dyn HostRef>, corelane::SpawnError>;
}

pub(crate) struct KindOf<G: Grain> {
    pub(crate) protocol: Arc<Protocol<G::Msg>>,
    pub(crate) make: Arc<dyn Fn(&str) -> G + Send + Sync>,
}

impl<G: Grain> GrainKind for KindOf<G> {
    fn host(
        &self,
        rt: &Handle,
        partition: u16,
        epoch: u64,
        cluster: &Arc<ClusterInner>,
        live: Arc<AtomicUsize>,
    ) -> Result<Arc<dyn HostRef>, corelane::SpawnError> {
        let (make, gate, weak) = (self.make.clone(), cluster.gate.clone(), Arc::downgrade(cluster));
        let session = gate.session();
        let idle = Gate::tick(cluster.cfg.grain_idle.as_nanos() as u64).max(1);
        let host = move || GrainHost::<G> {
            grains: HashMap::new(),
            make: make.clone(),
            partition,
            epoch,
            gate: gate.clone(),
            session,
            cluster: weak.clone(),
            live: live.clone(),
            idle,
        };
        // Passivation is the member's sweep, per grain; the host lives as long as its partition.
        let actor = rt.spawn_with(SpawnOptions::new().never_passivate(), host)?;
        Ok(Arc::new(Hosted { actor, protocol: self.protocol.clone() }))
    }
}
