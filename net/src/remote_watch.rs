//! Watching actors on other nodes.
//!
//! The watching node keeps a local stand-in actor per remote actor watched from it; local
//! actors watch the stand-in with the engine's own watch, and the stand-in stops with the
//! remote actor's reason when its node reports the stop, or with `NodeDown` when that node is
//! lost. The watched node keeps one relay actor that watches its local actors for remote
//! watchers and sends them `Terminated`.

use crate::node::Inner;
use crate::remote_ref::RemoteRef;
use corelane::{Actor, ActorError, ActorId, ActorRef, AnyRef, Ctx, Signal, SpawnError, StopReason};
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{self as wire, ActorAddress, Envelope, Terminated, Watch};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

/// The watching node's stand-ins: by remote actor, and by stand-in id.
#[derive(Default)]
pub(crate) struct Standins {
    by_remote: HashMap<(SocketAddr, u64), ActorRef<StandinMsg>>,
    by_id: HashMap<u64, (SocketAddr, u64)>,
}

pub(crate) enum StandinMsg {
    Gone(StopReason),
}

/// Stands in for a remote actor: it lives until that actor stops, then stops with its reason.
struct Standin;
impl Actor for Standin {
    type Msg = StandinMsg;
    fn receive(
        &mut self,
        ctx: &mut Ctx<Self>,
        StandinMsg::Gone(reason): StandinMsg,
    ) -> Result<(), ActorError> {
        corelane::integration::stop_because(ctx, reason);
        Ok(())
    }
}

impl RemoteRef {
    /// Watches this remote actor from the actor of `ctx`: when it stops, or its node is lost,
    /// that actor's `signal` receives `Signal::Terminated` once, with the id returned here (a
    /// local stand-in for the remote actor) and the reason (`StopReason::NodeDown` for a lost
    /// node). Watching an actor its node does not know gives `StopReason::NotFound`.
    ///
    /// # Errors
    /// The runtime is shutting down (the stand-in could not be spawned).
    pub fn watch<A: Actor>(&self, ctx: &Ctx<A>) -> Result<ActorId, SpawnError> {
        let standin = standin(self)?;
        ctx.watch(&standin);
        Ok(standin.id())
    }

    /// A local actor that stops when this remote actor stops (with its reason) or its node is
    /// lost (`NodeDown`): anything that can watch a local actor (a probe, a supervisor) can
    /// watch the remote one through it. One per remote actor per node.
    ///
    /// # Errors
    /// The runtime is shutting down.
    pub fn standin(&self) -> Result<AnyRef, SpawnError> {
        Ok(standin(self)?.untyped())
    }

    /// Stops watching it from the actor of `ctx`.
    pub fn unwatch<A: Actor>(&self, ctx: &Ctx<A>) {
        let s = self.node().inner.standins.lock().by_remote.get(&(self.node_addr(), self.id())).cloned();
        if let Some(s) = s {
            ctx.unwatch(&s);
        }
    }
}

/// The stand-in for the remote actor, spawned (and the watch sent) on first use.
fn standin(r: &RemoteRef) -> Result<ActorRef<StandinMsg>, SpawnError> {
    let (node, peer, id) = (&r.node().inner, r.node_addr(), r.id());
    let mut all = node.standins.lock();
    if let Some(s) = all.by_remote.get(&(peer, id)).filter(|s| s.is_alive()) {
        return Ok(s.clone());
    }
    let s = node.rt.spawn(|| Standin)?;
    all.by_remote.insert((peer, id), s.clone());
    all.by_id.insert(s.id().as_u64(), (peer, id));
    drop(all);
    let watcher = node.address(s.id().as_u64());
    if node.send(peer, r.system(0, Body::Watch(Watch { watcher: Some(watcher) }))).is_err() {
        let _ = s.tell(StandinMsg::Gone(StopReason::NodeDown));
    }
    Ok(s)
}

/// The watched node's relay: watches local actors for remote watchers.
pub(crate) enum RelayMsg {
    Watch { target: AnyRef, peer: SocketAddr, watcher: ActorAddress },
}

pub(crate) struct Relay {
    node: Weak<Inner>,
    watchers: HashMap<ActorId, Vec<(SocketAddr, ActorAddress)>>,
}

impl Actor for Relay {
    type Msg = RelayMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: RelayMsg) -> Result<(), ActorError> {
        let RelayMsg::Watch { target, peer, watcher } = msg;
        ctx.watch(&target);
        self.watchers.entry(target.id()).or_default().push((peer, watcher));
        Ok(())
    }

    fn signal(&mut self, _: &mut Ctx<Self>, sig: Signal) -> Result<(), ActorError> {
        let Signal::Terminated { id, reason } = sig else { return Ok(()) };
        let (Some(node), Some(watchers)) = (self.node.upgrade(), self.watchers.remove(&id)) else {
            return Ok(());
        };
        node.exposed.write().remove(&id.as_u64());
        for (peer, watcher) in watchers {
            terminated(&node, peer, id.as_u64(), watcher, reason);
        }
        Ok(())
    }
}

/// Tells `watcher` on `peer` that actor `id` (of an earlier incarnation of this node) is gone.
pub(crate) fn gone(node: &Inner, peer: SocketAddr, id: u64, watcher: ActorAddress) {
    terminated(node, peer, id, watcher, StopReason::NotFound);
}

fn terminated(node: &Inner, peer: SocketAddr, id: u64, watcher: ActorAddress, reason: StopReason) {
    let t =
        Terminated { actor: Some(node.address(id)), watcher: Some(watcher), reason: to_wire(reason).into() };
    let _ = node.send(peer, Envelope::system(0, 0, Body::Terminated(t)));
}

fn to_wire(r: StopReason) -> wire::StopReason {
    match r {
        StopReason::Stopped => wire::StopReason::Stopped,
        StopReason::Killed => wire::StopReason::Killed,
        StopReason::Failed => wire::StopReason::Failed,
        StopReason::Passivated => wire::StopReason::Passivated,
        StopReason::NotFound => wire::StopReason::NotFound,
        StopReason::NodeDown => wire::StopReason::NodeDown,
        _ => wire::StopReason::Unspecified,
    }
}

fn from_wire(r: wire::StopReason) -> StopReason {
    match r {
        wire::StopReason::Killed => StopReason::Killed,
        wire::StopReason::Failed => StopReason::Failed,
        wire::StopReason::Passivated => StopReason::Passivated,
        wire::StopReason::NotFound => StopReason::NotFound,
        wire::StopReason::NodeDown => StopReason::NodeDown,
        wire::StopReason::Stopped | wire::StopReason::Unspecified => StopReason::Stopped,
    }
}

/// Watch, unwatch and terminated messages from `peer`.
pub(crate) fn handle(node: &Arc<Inner>, peer: SocketAddr, target: u64, body: Body) {
    match body {
        Body::Watch(w) => {
            let Some(watcher) = w.watcher else { return };
            let t = node.exposed.read().get(&target).cloned();
            match t.zip(relay(node)) {
                Some((t, relay)) => {
                    let _ = relay.tell(RelayMsg::Watch { target: t.untyped(), peer, watcher });
                }
                None => terminated(node, peer, target, watcher, StopReason::NotFound),
            }
        }
        Body::Terminated(t) => {
            let Some(standin) = t.watcher.as_ref().map(|w| w.id) else { return };
            let reason = from_wire(t.reason());
            let s = {
                let mut all = node.standins.lock();
                // Only the node of the watched actor can say it stopped.
                match all.by_id.get(&standin) {
                    Some(&(p, _)) if p == peer => {}
                    _ => return,
                }
                let key = all.by_id.remove(&standin);
                key.and_then(|k| all.by_remote.remove(&k))
            };
            if let Some(s) = s {
                let _ = s.tell(StandinMsg::Gone(reason));
            }
        }
        // Unwatching is local to the watching node (its stand-in stays until the remote
        // actor stops).
        _ => {}
    }
}

/// The node's relay actor, spawned on first use.
fn relay(node: &Arc<Inner>) -> Option<ActorRef<RelayMsg>> {
    let mut r = node.relay.lock();
    if let Some(relay) = r.as_ref().filter(|r| r.is_alive()) {
        return Some(relay.clone());
    }
    let weak = Arc::downgrade(node);
    let relay = node.rt.spawn(move || Relay { node: weak.clone(), watchers: HashMap::new() }).ok()?;
    *r = Some(relay.clone());
    Some(relay)
}

/// `peer` is lost: every stand-in for its actors stops with `NodeDown`.
pub(crate) fn node_down(node: &Inner, peer: SocketAddr) {
    let lost: Vec<ActorRef<StandinMsg>> = {
        let mut all = node.standins.lock();
        let keys: Vec<_> = all.by_remote.keys().filter(|(p, _)| *p == peer).copied().collect();
        keys.iter()
            .filter_map(|k| {
                let s = all.by_remote.remove(k)?;
                all.by_id.remove(&s.id().as_u64());
                Some(s)
            })
            .collect()
    };
    for s in lost {
        let _ = s.tell(StandinMsg::Gone(StopReason::NodeDown));
    }
}
