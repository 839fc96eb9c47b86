//! Remote spawn and respawn: only of kinds this node registered.

use crate::dispatch::{fail, found};
use crate::error::ErrorCode;
use crate::node::Inner;
use crate::target::Target;
use std::net::SocketAddr;
use std::sync::Arc;

/// Spawns an actor of a registered kind, registered as `name` unless it is empty.
pub(crate) fn spawn(node: &Inner, kind: &str, name: &str) -> Result<Arc<dyn Target>, (ErrorCode, String)> {
    let make = node.kinds.read().get(kind).cloned();
    let make =
        make.ok_or_else(|| (ErrorCode::UnknownKind, format!("kind {kind:?} is not registered here")))?;
    let t = make(&node.rt).map_err(|e| (ErrorCode::Failed, e.to_string()))?;
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
        match spawn(&node, &kind, &name) {
            Ok(t) => found(&node, peer, corr, t),
            Err((code, detail)) => fail(&node, peer, corr, code, detail),
        }
    });
}
