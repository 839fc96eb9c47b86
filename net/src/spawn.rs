//! Remote spawn and respawn: only of kinds this node registered, and within the node's
//! quotas of live remotely spawned actors (per peer and in total).

use crate::dispatch::{fail, found};
use crate::error::ErrorCode;
use crate::node::Inner;
use crate::target::Target;
use corelane::AnyRef;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Spawns, for `peer`, an actor of a registered kind, registered as `name` unless it is empty,
/// under `lease` if one is given. Without a peer (this node's own cluster work: a named actor
/// it places on itself, or one it relocates, which was admitted where it first ran) no quota
/// applies.
pub(crate) fn spawn(
    node: &Inner,
    peer: Option<SocketAddr>,
    kind: &str,
    name: &str,
    lease: Option<Arc<dyn corelane::Lease>>,
) -> Result<Arc<dyn Target>, (ErrorCode, String)> {
    let opts = match lease {
        Some(l) => corelane::SpawnOptions::new().lease(l),
        None => corelane::SpawnOptions::new(),
    };
    let make = node.kinds.read().get(kind).cloned();
    let make =
        make.ok_or_else(|| (ErrorCode::UnknownKind, format!("kind {kind:?} is not registered here")))?;
    // The quota is checked and the place taken under one lock, so concurrent spawns cannot
    // pass it together.
    let t = match peer {
        Some(peer) => {
            let mut spawns = node.spawns.lock();
            within_quota(node, &mut spawns, peer)?;
            let t = make(&node.rt, opts, name).map_err(|e| (ErrorCode::Failed, e.to_string()))?;
            spawns.entry(peer).or_default().push(t.untyped());
            t
        }
        None => make(&node.rt, opts, name).map_err(|e| (ErrorCode::Failed, e.to_string()))?,
    };
    if !name.is_empty() {
        if let Err(e) = t.register(&node.rt, name) {
            // The name was taken: the new actor goes (its stop is not awaited).
            drop(t.stop());
            return Err((ErrorCode::NameTaken, format!("{name:?}: {e}")));
        }
        node.spawned.lock().insert(name.to_string(), kind.to_string());
    }
    Ok(t)
}

/// Whether `peer` may spawn one more actor here: live remotely spawned actors, per peer and in
/// total, stay within the limits (stopped ones are swept first).
fn within_quota(
    node: &Inner,
    spawns: &mut HashMap<SocketAddr, Vec<AnyRef>>,
    peer: SocketAddr,
) -> Result<(), (ErrorCode, String)> {
    let l = &node.limits;
    let mine = spawns.get(&peer).map_or(0, Vec::len);
    let total: usize = spawns.values().map(Vec::len).sum();
    if mine < l.max_spawns_per_peer && total < l.max_spawns {
        return Ok(());
    }
    spawns.retain(|_, v| {
        v.retain(AnyRef::is_alive);
        !v.is_empty()
    });
    let mine = spawns.get(&peer).map_or(0, Vec::len);
    let total: usize = spawns.values().map(Vec::len).sum();
    if mine >= l.max_spawns_per_peer {
        return Err((
            ErrorCode::Limit,
            format!("at most {} live actors spawned per peer here", l.max_spawns_per_peer),
        ));
    }
    if total >= l.max_spawns {
        return Err((
            ErrorCode::Limit,
            format!("at most {} live remotely spawned actors here", l.max_spawns),
        ));
    }
    Ok(())
}

/// Stops the actor a remote spawn registered as `name`, then spawns its kind again under that
/// name; answers with the new actor.
pub(crate) fn respawn(node: &Arc<Inner>, peer: SocketAddr, corr: u64, name: String) {
    let Some(kind) = node.spawned.lock().get(&name).cloned() else {
        return fail(
            node,
            peer,
            corr,
            ErrorCode::NotFound,
            format!("no actor named {name:?} was spawned remotely here"),
        );
    };
    let old = node.protocols.read().values().find_map(|p| p.lookup(&node.rt, &name));
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        if let Some(old) = old {
            let _ = old.stop().await;
        }
        let Some(node) = weak.upgrade() else { return };
        // The stopped actor's name is released when it stops; the new one takes it.
        match spawn(&node, Some(peer), &kind, &name, None) {
            Ok(t) => found(&node, peer, corr, t),
            Err((code, detail)) => fail(&node, peer, corr, code, detail),
        }
    });
}
