//! The handover of partitions between members: applying a new topology (stopping the grains of
//! partitions lost, marking those gained as pending), and the `Applied` exchange that tells a
//! gaining member when every member of the epoch has let go.

use super::provider::Member;
use super::topology::Topology;
use super::ClusterInner;
use crate::error::{ErrorCode, RemoteAskError};
use corelane::Event;
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Applied, Envelope};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How long a member waits for its grains to stop before it says it applied an epoch anyway.
pub(crate) const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Makes `members` at `epoch` the current topology: grains of partitions lost are stopped,
/// partitions gained wait for the handover, and once the stops are done every other member is
/// told this member applied the epoch.
pub(crate) fn apply(inner: &Arc<ClusterInner>, members: Vec<Member>, epoch: u64) {
    let new = Arc::new(Topology::new(epoch, members, &inner.id));
    let old = {
        // Under the handover lock, the partitions gained are marked pending before the topology
        // that gives them is published: whoever sees the new topology sees them pending.
        let mut h = inner.handover.lock();
        let old = inner.current();
        if old.epoch == new.epoch && old.members == new.members {
            return;
        }
        h.pending.retain(|(k, p)| new.owns(k, *p));
        for kind in inner.kinds.keys() {
            for p in new.gained(&old, kind) {
                h.pending.insert((kind.clone(), p));
            }
        }
        h.epoch = epoch;
        inner.gate.pending.store(h.pending.len(), Ordering::Release);
        *inner.topology.write() = new.clone();
        inner.gate.epoch.store(epoch, Ordering::Release);
        inner.gate.generation.fetch_add(1, Ordering::AcqRel);
        old
    };
    let rt = inner.node.runtime();
    for m in new.members.iter().filter(|m| old.member(&m.id).is_none_or(|o| o != *m)) {
        corelane::integration::publish_event(rt, || Event::NodeJoined {
            member: m.id.clone(),
            addr: m.addr,
            roles: m.roles.clone(),
        });
    }
    let n = new.members.len();
    corelane::integration::publish_event(rt, || Event::TopologyChanged { epoch, members: n });
    if n >= inner.cfg.min_members {
        inner.open.store(true, Ordering::Relaxed);
    }
    // Hosts of partitions lost stop (draining what they had queued).
    let stopping = inner.stop_hosts(|kind, p| new.owns(kind, p));
    let _ = inner.epoch.send(epoch);
    {
        let _g = inner.changed.0.lock();
        inner.changed.1.notify_all();
    }
    // What waited for this member to catch up with its senders' topology.
    inner.release_held();
    // A member gone: its named actors may be orphans now.
    if old.members.iter().any(|m| new.member(&m.id).is_none()) {
        inner.names.orphaned.notify_one();
    }
    if inner.cfg.client {
        // Not a member: nobody waits for it to let go of anything.
        return;
    }
    let weak = Arc::downgrade(inner);
    inner.rt.spawn(async move {
        for s in stopping {
            let _ = tokio::time::timeout(STOP_WAIT, s).await;
        }
        let Some(inner) = weak.upgrade() else { return };
        inner.release_held();
        inner.applied.fetch_max(epoch, Ordering::AcqRel);
        let topo = inner.current();
        for m in topo.others() {
            send_applied(&inner, m.addr, false);
        }
        check_handover(&inner);
    });
}

pub(crate) fn send_applied(inner: &ClusterInner, to: SocketAddr, query: bool) {
    let epoch = inner.applied.load(Ordering::Acquire);
    let a = Applied { epoch, query, leaving: false };
    let _ = inner.node.inner.send(to, Envelope::system(0, 0, Body::Applied(a)));
}

/// Another member says which epoch it applied (and asks for ours with `query`).
pub(crate) fn applied_from(inner: &Arc<ClusterInner>, peer: SocketAddr, a: Applied) {
    if a.leaving {
        // Everything it answered came before this: what still waits for it never will.
        let detail = "the member left the cluster before answering".to_string();
        inner.node.inner.fail_pending(peer, RemoteAskError::Refused { code: ErrorCode::Fenced, detail });
        return;
    }
    {
        let mut h = inner.handover.lock();
        let e = h.applied.entry(peer).or_default();
        *e = (*e).max(a.epoch);
        if h.applied.len() > 4 * inner.node.inner.limits.max_peers {
            // Bounded: members that went are forgotten.
            let topo = inner.current();
            h.applied.retain(|addr, _| topo.by_addr(*addr).is_some());
        }
    }
    if a.query {
        send_applied(inner, peer, false);
    }
    check_handover(inner);
}

/// Partitions gained become ready once every other member of the epoch applied it; what was
/// held for them is delivered.
fn check_handover(inner: &Arc<ClusterInner>) {
    if inner.gate.pending.load(Ordering::Acquire) == 0 {
        return;
    }
    let topo = inner.current();
    let mut h = inner.handover.lock();
    if h.epoch != topo.epoch {
        return;
    }
    let done = topo.others().all(|m| h.applied.get(&m.addr).is_some_and(|e| *e >= h.epoch));
    if done {
        h.pending.clear();
        inner.gate.pending.store(0, Ordering::Release);
        drop(h);
        inner.release_held();
    }
}

/// Asks the members that have not yet said they applied the epoch the handover waits for.
pub(crate) fn query_laggards(inner: &Arc<ClusterInner>) {
    if inner.gate.pending.load(Ordering::Acquire) == 0 {
        return;
    }
    let topo = inner.current();
    let laggards: Vec<SocketAddr> = {
        let h = inner.handover.lock();
        topo.others()
            .filter(|m| h.applied.get(&m.addr).is_none_or(|e| *e < h.epoch))
            .map(|m| m.addr)
            .collect()
    };
    for addr in laggards {
        send_applied(inner, addr, true);
    }
    check_handover(inner);
}
