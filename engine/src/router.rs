//! Routers: an actor that hands each message to one of its routees (round-robin, random,
//! consistent-hash) or to all of them (broadcast).
//!
//! A router is an ordinary actor on one shard: routing happens in its turn, on its shard, with
//! no lock and no atomic read-modify-write. A pool router spawns its routees as children (spread
//! as `PoolPlacement` says, supervised by the router's strategy); a group router routes to actors
//! that exist already. Either way the router watches its routees: a routee that stops is
//! removed, and when the last one has stopped the router publishes `RouterEmptied` and stops.
//! Messages are forwarded, so a routee's `ctx.sender()` is the original sender.

use crate::actor::{Actor, ActorError};
use crate::actor_ref::ActorRef;
use crate::context::Ctx;
use crate::error::SpawnError;
use crate::events::Event;
use crate::metrics::DeadLetterReason;
use crate::runtime::{Handle, Placement};
use crate::signal::Signal;
use crate::spawn_options::SpawnOptions;
use std::hash::Hash;
use std::sync::Arc;

type KeyFn<M> = Arc<dyn Fn(&M) -> u64 + Send + Sync>;
type CloneFn<M> = Arc<dyn Fn(&M) -> M + Send + Sync>;

/// How a router picks routees.
pub struct Routing<M> {
    kind: Kind<M>,
}

enum Kind<M> {
    RoundRobin,
    Random,
    Broadcast(CloneFn<M>),
    ConsistentHash(KeyFn<M>),
}

impl<M> Clone for Routing<M> {
    fn clone(&self) -> Self {
        let kind = match &self.kind {
            Kind::RoundRobin => Kind::RoundRobin,
            Kind::Random => Kind::Random,
            Kind::Broadcast(f) => Kind::Broadcast(f.clone()),
            Kind::ConsistentHash(f) => Kind::ConsistentHash(f.clone()),
        };
        Self { kind }
    }
}

impl<M: Send + 'static> Routing<M> {
    /// Each routee in turn.
    pub fn round_robin() -> Self {
        Self { kind: Kind::RoundRobin }
    }
    /// A routee picked at random (uniform).
    pub fn random() -> Self {
        Self { kind: Kind::Random }
    }
    /// Every routee gets a copy.
    pub fn broadcast() -> Self
    where
        M: Clone,
    {
        Self { kind: Kind::Broadcast(Arc::new(M::clone)) }
    }
    /// The routee chosen by rendezvous hashing of the key `key` extracts: the same key goes to
    /// the same routee while it lives, and losing another routee moves no key.
    pub fn consistent_hash<K: Hash>(key: impl Fn(&M) -> K + Send + Sync + 'static) -> Self {
        Self { kind: Kind::ConsistentHash(Arc::new(move |m| hash_of(&key(m)))) }
    }
}

/// Where a pool router's routees go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolPlacement {
    /// All on the router's shard.
    Local,
    /// Spread over every shard in turn, starting with the router's.
    PerShard,
    /// On these shards, in turn.
    Shards(Vec<usize>),
}

/// A fixed, seed-free hash for routing keys: xxh3 (the cluster's partition hash), the same in
/// every process and every Rust release (std's `DefaultHasher` promises neither).
fn hash_of<K: Hash + ?Sized>(k: &K) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    k.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

/// A routee's rendezvous score for a key's hash.
fn score(key: u64, routee: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&routee.to_le_bytes(), key)
}

type PoolSpawner<M> = Box<dyn FnMut(&Ctx<RouterActor<M>>) -> Result<Vec<ActorRef<M>>, ActorError>>;

/// The router itself.
pub(crate) struct RouterActor<M: Send + 'static> {
    routing: Routing<M>,
    routees: Vec<ActorRef<M>>,
    next: usize,
    rng: fastrand::Rng,
    /// Pool routers: spawns the routees (again after a restart).
    pool: Option<PoolSpawner<M>>,
}

impl<M: Send + 'static> RouterActor<M> {
    fn pick(&mut self, m: &M) -> Option<usize> {
        let n = self.routees.len();
        if n == 0 {
            return None;
        }
        Some(match &self.routing.kind {
            Kind::RoundRobin | Kind::Broadcast(_) => {
                // No division per message: `next` only passes `n` when routees were removed.
                let i = if self.next < n { self.next } else { 0 };
                self.next = i + 1;
                i
            }
            Kind::Random => self.rng.usize(..n),
            Kind::ConsistentHash(key) => {
                let k = key(m);
                (0..n).max_by_key(|&i| score(k, self.routees[i].id().as_u64())).unwrap_or(0)
            }
        })
    }
}

impl<M: Send + 'static> Actor for RouterActor<M> {
    type Msg = M;

    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        self.rng = fastrand::Rng::with_seed(ctx.id().as_u64());
        if let Some(spawn) = self.pool.as_mut() {
            self.routees = spawn(ctx)?;
        }
        for r in &self.routees {
            ctx.watch(r);
        }
        if self.routees.is_empty() {
            return Err(ActorError::msg("a router needs at least one routee"));
        }
        Ok(())
    }

    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: M) -> Result<(), ActorError> {
        if let Kind::Broadcast(copy) = &self.routing.kind {
            let copy = copy.clone();
            if let Some((last, rest)) = self.routees.split_last() {
                for r in rest {
                    forward(ctx, r, copy(&msg));
                }
                forward(ctx, last, msg);
            }
            return Ok(());
        }
        if let Some(i) = self.pick(&msg) {
            forward(ctx, &self.routees[i], msg);
        }
        Ok(())
    }

    fn signal(&mut self, ctx: &mut Ctx<Self>, sig: Signal) -> Result<(), ActorError> {
        let Signal::Terminated { id, .. } = sig;
        self.routees.retain(|r| r.id() != id);
        if self.routees.is_empty() {
            let me = ctx.id();
            tracing::info!(router = %me, "last routee stopped; router stops");
            ctx.runtime().shared.events.publish(|| Event::RouterEmptied { id: me });
            ctx.stop();
        }
        Ok(())
    }
}

impl Handle {
    /// Spawns a group router over existing actors; `opts` say where the router goes and how
    /// (a [`Placement`] converts into them, as for any spawn).
    pub fn spawn_group_router<M: Send + 'static>(
        &self,
        routing: Routing<M>,
        routees: Vec<ActorRef<M>>,
        opts: impl Into<SpawnOptions>,
    ) -> Result<ActorRef<M>, SpawnError> {
        self.spawn_with(opts, move || RouterActor {
            routing: routing.clone(),
            routees: routees.clone(),
            next: 0,
            rng: fastrand::Rng::with_seed(0),
            pool: None,
        })
    }

    /// Spawns a pool router with `n` routees built by `factory`, children of the router spread
    /// as `spread` says; the router goes where `opts` says (a [`Placement`] converts into them;
    /// its supervisor strategy supervises the routees).
    pub fn spawn_pool_router<A, F>(
        &self,
        routing: Routing<A::Msg>,
        n: usize,
        spread: PoolPlacement,
        opts: impl Into<SpawnOptions>,
        factory: F,
    ) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Clone + Send + 'static,
    {
        let shards = self.shard_count();
        let opts = opts.into();
        self.spawn_with(opts, move || {
            let (spread, factory) = (spread.clone(), factory.clone());
            let spawn: PoolSpawner<A::Msg> = Box::new(move |ctx: &Ctx<RouterActor<A::Msg>>| {
                (0..n)
                    .map(|i| {
                        let at = match &spread {
                            PoolPlacement::Local => Placement::Local,
                            PoolPlacement::PerShard => Placement::Shard((ctx.shard_index() + i) % shards),
                            PoolPlacement::Shards(list) if !list.is_empty() => {
                                Placement::Shard(list[i % list.len()])
                            }
                            PoolPlacement::Shards(_) => Placement::Local,
                        };
                        Ok(ctx.spawn_child_with(SpawnOptions::new().placement(at), factory.clone())?)
                    })
                    .collect()
            });
            RouterActor {
                routing: routing.clone(),
                routees: Vec::new(),
                next: 0,
                rng: fastrand::Rng::with_seed(0),
                pool: Some(spawn),
            }
        })
    }
}

/// Forwards to a routee; what the closing runtime refuses is counted as a dead letter.
fn forward<A: Actor, M: Send + 'static>(ctx: &Ctx<A>, routee: &ActorRef<M>, msg: M) {
    if ctx.forward(routee, msg).is_err() {
        let me = ctx.id();
        ctx.shard().dead_letters(DeadLetterReason::RuntimeClosed, 1, Some(me), std::any::type_name::<M>());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::xxh3_64;

    #[test]
    #[cfg(target_endian = "little")]
    fn routing_keys_hash_as_xxh3_of_their_bytes_in_every_process() {
        // What a key's `Hash` feeds in, hashed with xxh3 (no per-process seed, no std hasher
        // whose algorithm may change between releases).
        assert_eq!(hash_of(&42u64), xxh3_64(&42u64.to_le_bytes()));
        assert_eq!(hash_of("order-42"), xxh3_64(b"order-42\xff"));
        assert_eq!(score(7, 9), xxhash_rust::xxh3::xxh3_64_with_seed(&9u64.to_le_bytes(), 7));
    }
}
