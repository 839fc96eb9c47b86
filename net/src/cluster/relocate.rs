//! Relocation of named actors: when a host dies or leaves, the survivors spawn its named
//! actors again (those spawned with relocation on), each on one survivor, in parallel.
//!
//! What to spawn again is the registry's **specs** (`/<cluster>/specs/<name>`, bound to no
//! lease): a name whose spec has no holder is an orphan. Every member, when a name goes or the
//! member set changes, reads the specs (one store request), and assigns every orphan to a
//! candidate (a member with the kind, and the role if one was asked for) by the same rule as
//! every other member: the highest xxh3 of (name, member) for round-robin, random and local
//! placement (which spreads them evenly), the least loaded at that point of the sorted list
//! for least-load. It spawns its own share, then claims their names in batches (etcd: one
//! transaction per hundred names). Members disagreeing for a moment (one saw a change the
//! other did not yet) cost a lost claim, never a second holder: the registry's
//! create-if-absent decides. An orphan assigned to a member that cannot take it (dead but not
//! yet out of the member set, fenced) is assigned again when the member set changes, or after
//! a TTL.

use super::named::taken;
use super::{ClusterInner, Placement};
use crate::target::Target;
use corelane_proto::cluster_v1::{NamedActor, NamedSpec};
use prost::Message;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use xxhash_rust::xxh3::xxh3_64;

/// What one pass found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Orphans this member spawned again and won.
    pub(crate) relocated: usize,
    /// Orphans left to others (or to no one yet): look again later.
    pub(crate) waiting: usize,
}

/// Relocates orphans for the member as long as it lives: a pass when told
/// ([`Names::orphaned`](super::named::Names)), and again a TTL after a pass that left some.
pub(crate) async fn run(inner: Weak<ClusterInner>) {
    let mut again = None;
    loop {
        let Some(c) = inner.upgrade() else { return };
        let ttl = c.cfg.ttl;
        let orphaned = async { c.names.orphaned.notified().await };
        match again {
            Some(d) => drop(tokio::time::timeout(d, orphaned).await),
            None => orphaned.await,
        }
        // The changes of one revision arrive in a few watch responses: take them together.
        tokio::time::sleep(Duration::from_millis(5)).await;
        again = match pass(&c).await {
            Ok(p) if p.waiting > 0 => Some(ttl),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "cluster: relocation pass failed; again later");
                Some(ttl)
            }
        };
    }
}

/// One pass: the orphans, this member's share of them spawned again and claimed.
pub(crate) async fn pass(c: &Arc<ClusterInner>) -> Result<Pass, super::ProviderError> {
    let lease = c.lease.load(Ordering::Acquire);
    if lease == 0 || !c.may_serve() || c.gone.load(Ordering::Acquire) {
        return Ok(Pass::default());
    }
    c.stats.relocation_requests.fetch_add(1, Ordering::Relaxed);
    let specs = c.provider.specs(&c.cfg.name).await?;
    let mut orphans: Vec<(String, NamedSpec)> = {
        let names = c.names.map.read();
        specs
            .into_iter()
            .filter(|(name, _)| !names.contains_key(name))
            .filter_map(|(name, spec)| Some((name, NamedSpec::decode(spec.as_slice()).ok()?)))
            .collect()
    };
    if orphans.is_empty() {
        return Ok(Pass::default());
    }
    orphans.sort_by(|a, b| a.0.cmp(&b.0));
    let mine = share(c, &orphans);
    let waiting = orphans.len() - mine.len();

    // Claimed first (the records name no actor yet), so that only names won are spawned.
    let claims: Vec<(String, Vec<u8>)> = mine
        .iter()
        .map(|(name, spec)| (name.clone(), c.record(0, &spec.kind, true).encode_to_vec()))
        .collect();
    let won = requests(c, c.provider.claim_all(&c.cfg.name, &claims, lease)).await?;
    let mut spawned: Vec<(String, Arc<dyn Target>, NamedActor, u64)> = Vec::with_capacity(mine.len());
    for ((name, spec), outcome) in mine.into_iter().zip(won) {
        let since = match outcome {
            super::Claimed::Won { revision } => revision,
            super::Claimed::Taken(held) => {
                tracing::debug!(detail = taken(&name, &held).1, "cluster: relocated elsewhere first");
                continue;
            }
        };
        match c.spawn_named_here(None, &spec.kind, &name) {
            Ok(t) => {
                // Reachable before the registry names it.
                crate::dispatch::expose(&c.node.inner, t.clone());
                let record = c.record(t.untyped().id().as_u64(), &spec.kind, true);
                spawned.push((name, t, record, since));
            }
            Err((_, e)) => {
                tracing::warn!(name, error = %e, "cluster: a named actor could not be spawned again")
            }
        }
    }
    let done: Vec<(String, Vec<u8>)> =
        spawned.iter().map(|(n, _, r, _)| (n.clone(), r.encode_to_vec())).collect();
    let updated = match requests(c, c.provider.update_all(&c.cfg.name, &done, lease)).await {
        Ok(u) => u,
        Err(e) => {
            for (_, t, _, _) in &spawned {
                drop(t.stop());
            }
            return Err(e);
        }
    };
    let mut relocated = 0;
    for ((name, t, record, since), held) in spawned.into_iter().zip(updated) {
        if held {
            c.hold(&name, record, t, since);
            relocated += 1;
        } else {
            drop(t.stop());
        }
    }
    c.stats.relocated.fetch_add(relocated as u64, Ordering::Relaxed);
    Ok(Pass { relocated, waiting })
}

/// Runs a store call, counting the requests it made (the store's own count: a batch with a
/// taken name is claimed name by name; a renewal made meanwhile counts too).
async fn requests<T>(
    c: &ClusterInner,
    call: super::BoxFuture<'_, Result<T, super::ProviderError>>,
) -> Result<T, super::ProviderError> {
    let before = c.provider.requests();
    let r = call.await;
    c.stats.relocation_requests.fetch_add(c.provider.requests().saturating_sub(before), Ordering::Relaxed);
    r
}

/// This member's share of `orphans` (sorted by name), as every member computes it.
fn share(c: &ClusterInner, orphans: &[(String, NamedSpec)]) -> Vec<(String, NamedSpec)> {
    let mut load: HashMap<String, usize> = HashMap::new();
    for a in c.names.map.read().values() {
        *load.entry(a.member.clone()).or_default() += 1;
    }
    let mut mine = Vec::new();
    for (name, spec) in orphans {
        let role = (!spec.role.is_empty()).then_some(spec.role.as_str());
        let candidates = c.hosts_of(&spec.kind, role);
        let host = match Placement::from_number(spec.placement) {
            Placement::LeastLoad => {
                candidates.iter().min_by_key(|m| (load.get(&m.id).copied().unwrap_or(0), &m.id))
            }
            _ => by_name(name, &candidates),
        };
        let Some(host) = host else { continue };
        *load.entry(host.id.clone()).or_default() += 1;
        if host.id == c.id {
            mine.push((name.clone(), spec.clone()));
        }
    }
    mine
}

/// The candidate the name's hash picks (the highest xxh3 of the name and the member's id):
/// the same on every member, spread evenly over names, and for one name moving only when its
/// member goes.
pub(crate) fn by_name<'a>(name: &str, candidates: &'a [super::Member]) -> Option<&'a super::Member> {
    candidates.iter().max_by_key(|m| xxh3_64(format!("{name}\0{}", m.id).as_bytes()))
}
