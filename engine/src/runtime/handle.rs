//! The handle every thread uses to reach a runtime: spawning, names, scheduling entry points,
//! metrics, events, batches of sends.

use super::*;

/// A cheap, cloneable handle to a runtime: spawn, look up names, read metrics. Usable from
/// any thread, including from inside actors (`Ctx::runtime`).
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Handle {
    /// Runs `f`, deferring the wake-ups of its sends from this thread until it returns: each
    /// shard it sent to is woken once, not once per message. For threads that are not shards
    /// and deliver bursts (a network thread handing over what one read brought). On a shard
    /// thread, and nested, it just runs `f` (a shard's sends are batched per turn anyway).
    pub fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        let me = Arc::as_ptr(&self.shared) as usize;
        let started = DEFERRING.get() == 0 && !with_current(|c| c.is_some());
        if started {
            DEFERRING.set(me);
        }
        if !started {
            return f();
        }
        /// Wakes the shards at the end, also when `f` panics.
        struct Wake<'a>(&'a Shared);
        impl Drop for Wake<'_> {
            fn drop(&mut self) {
                DEFERRING.set(0);
                let shards = DEFERRED.with_borrow_mut(std::mem::take);
                for s in shards {
                    self.0.notify(s);
                }
            }
        }
        let _wake = Wake(&self.shared);
        f()
    }

    /// Whether the runtime runs: false once its shutdown has begun (a liveness probe's
    /// question).
    pub fn is_running(&self) -> bool {
        !self.shared.is_closing()
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shared.shards.len()
    }

    /// The core each shard is pinned to, by shard index (`None`: not pinned).
    pub fn shard_cores(&self) -> &[Option<usize>] {
        self.shared.pinned.cores()
    }

    /// Spawns an actor on the next shard in turn. The factory runs on that shard, and again on
    /// every restart.
    pub fn spawn<A, F>(&self, factory: F) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        self.spawn_with(Placement::RoundRobin, factory)
    }

    /// Spawns `actor` as it is, on the next shard in turn: for state that is ready before the
    /// spawn (handles already in hand), with no factory to write. A restart starts again from a
    /// clone of `actor` as it was given, hence `Clone`; state that cannot be cloned is built by
    /// a factory ([`spawn`](Self::spawn)). Options: `spawn_with(opts, move || actor.clone())`.
    pub fn spawn_value<A>(&self, actor: A) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor + Clone + Send,
    {
        self.spawn(move || actor.clone())
    }

    /// Spawns an actor on the next shard in turn, registered under `name` as it is spawned
    /// (see [`SpawnOptions::name`]): `spawn` and `register` in one step, with no window where
    /// `lookup(name)` finds nothing.
    pub fn spawn_named<A, F>(
        &self,
        name: impl Into<String>,
        factory: F,
    ) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        self.spawn_with(SpawnOptions::new().name(name), factory)
    }

    /// Spawns an actor on shard `shard`.
    pub fn spawn_on<A, F>(&self, shard: usize, factory: F) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        self.spawn_with(Placement::Shard(shard), factory)
    }

    /// Spawns a top-level actor with options (a [`Placement`] converts into them). The id is
    /// known at once; messages sent before the actor is built wait for it, and `started` runs
    /// before any of them.
    pub fn spawn_with<A, F>(
        &self,
        opts: impl Into<SpawnOptions>,
        factory: F,
    ) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        let opts = opts.into();
        self.spawn_inner(opts.placement.unwrap_or(Placement::RoundRobin), &opts, None, factory)
    }

    /// Spawns with `parent` (its id and the strategy it gives children) for a child.
    pub(crate) fn spawn_inner<A, F>(
        &self,
        placement: Placement,
        opts: &SpawnOptions,
        parent: Option<(ActorId, Option<Arc<Supervisor>>)>,
        factory: F,
    ) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        let sh = &self.shared;
        let passivate = match opts.passivation {
            Passivation::RuntimeDefault => sh.cfg.passivate_after,
            Passivation::After(d) => Some(d),
            Passivation::Never => None,
        };
        if let Some((ty, name)) = opts.mailbox.as_ref().and_then(MailboxKind::msg_type) {
            if ty != TypeId::of::<A::Msg>() {
                return Err(SpawnError::MailboxType {
                    actor: std::any::type_name::<A::Msg>(),
                    mailbox: name,
                });
            }
        }
        let is_child = parent.is_some();
        let birth = (parent.is_some()
            || passivate.is_some()
            || opts.supervisor.is_some()
            || opts.stash_capacity.is_some()
            || opts.mailbox.is_some()
            || opts.lease.is_some())
        .then(|| {
            let (parent, supervised_by) = parent.map_or((None, None), |(p, s)| (Some(p), s));
            Box::new(Birth {
                parent,
                supervised_by,
                child_supervisor: opts.supervisor.clone(),
                passivate,
                stash_capacity: opts.stash_capacity,
                mailbox: opts.mailbox.clone(),
                lease: opts.lease.clone(),
            })
        });
        // A running actor's child may still be spawned while the runtime shuts down (the parent
        // checked that it is not stopping): it is part of the tree being stopped.
        if sh.is_closing() && !is_child {
            return Err(SpawnError::Closed);
        }
        let n = sh.shards.len();
        let rr = || sh.rr.fetch_add(1, Ordering::Relaxed) % n;
        let shard = match placement {
            Placement::Shard(i) if i < n => i,
            Placement::Shard(i) => return Err(SpawnError::NoSuchShard(i)),
            Placement::RoundRobin => rr(),
            Placement::LeastLoaded => {
                (0..n).min_by_key(|&i| sh.shards[i].stats.actors.load(Ordering::Relaxed)).unwrap_or(0)
            }
            Placement::Local => {
                with_current(|c| c.filter(|s| s.belongs_to(sh)).map(|s| s.idx)).unwrap_or_else(rr)
            }
        };
        let slots = &sh.shards[shard].slots;
        let (slot, gen) = slots.reserve().map_err(|_| SpawnError::SlotsExhausted(shard))?;
        let id = ActorId::new(shard, slot, gen);
        // The name is bound before anyone can see the actor: no window where it is not found.
        if let Some(name) = &opts.name {
            if sh.registry.register(name, id, TypeId::of::<A::Msg>()).is_err() {
                slots.release(slot, gen);
                return Err(SpawnError::NameTaken(name.clone()));
            }
        }
        with_current(|cur| match cur {
            Some(s) if s.belongs_to(sh) && s.idx == shard => s.spawn_reserved(id, factory, birth),
            Some(s) if s.belongs_to(sh) => {
                s.push_outbound(shard, Packet::new(id.as_u64(), SpawnMsg(id.as_u64(), factory, birth)));
                Ok(())
            }
            _ => sh.inject_new(shard, SPAWNS, SpawnMsg(id.as_u64(), factory, birth)).map_err(|_| {
                sh.registry.remove_actor(id);
                slots.release(slot, gen);
                SpawnError::Closed
            }),
        })?;
        Ok(ActorRef::new(sh.clone(), id))
    }

    /// Gives `actor` a name, unique in this runtime. The name is dropped when the actor stops.
    pub fn register<M: Send + 'static>(&self, name: &str, actor: &ActorRef<M>) -> Result<(), RegisterError> {
        if !actor.is_alive() {
            return Err(RegisterError::Stopped);
        }
        self.shared.registry.register(name, actor.id(), TypeId::of::<M>())
    }

    /// Removes a name. Returns whether it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        self.shared.registry.unregister(name)
    }

    /// Finds the actor registered as `name`, if its message type is `M`.
    pub fn lookup<M: Send + 'static>(&self, name: &str) -> Option<ActorRef<M>> {
        let (id, ty) = self.shared.registry.lookup(name)?;
        (ty == TypeId::of::<M>()).then(|| ActorRef::new(self.shared.clone(), id))
    }

    /// Counters of the whole runtime and of each shard.
    pub fn metrics(&self) -> RuntimeMetrics {
        let sh = &self.shared;
        let mut by_reason = [0u64; REASONS];
        let uptime = sh.started.elapsed().as_nanos().max(1) as f64;
        let mut m = RuntimeMetrics { uptime: sh.started.elapsed(), ..Default::default() };
        for (i, s) in sh.shards.iter().enumerate() {
            let st = &s.stats;
            for (k, c) in st.dead.iter().enumerate() {
                by_reason[k] += c.load(Ordering::Relaxed);
            }
            let actors = st.actors.load(Ordering::Relaxed);
            let dead_letters = st.dead.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            m.actors += actors;
            m.shards.push(ShardMetrics {
                processed: st.processed.load(Ordering::Relaxed),
                wakes: st.wakes.load(Ordering::Relaxed),
                yields_to_waiters: st.yields_to_waiters.load(Ordering::Relaxed),
                waiters_moved_off: sh.pinned.moved_off(i),
                actors,
                run_queue_depth: st.run_queue.load(Ordering::Relaxed),
                inbound_depth: (sh.gauges[i].iter().map(|g| g.depth()).sum::<usize>() + s.injector.depth())
                    as u64,
                idle_share: (st.idle_nanos.load(Ordering::Relaxed) as f64 / uptime).min(1.0),
                dead_letters,
            });
        }
        for counters in [&sh.off_shard_dead, &sh.events.failed] {
            for (k, c) in counters.0.iter().enumerate() {
                by_reason[k] += c.load(Ordering::Relaxed);
            }
        }
        m.dead_letters = by_reason.iter().sum();
        m.dead_letters_by_reason = DeadLetterReason::ALL.iter().map(|r| (*r, by_reason[r.index()])).collect();
        m
    }

    /// Subscribes actor `to` to the events `filter` accepts. Its message type converts from
    /// [`Event`]. The subscription ends with [`Subscription::unsubscribe`] or when `to` stops.
    pub fn subscribe<M>(
        &self,
        filter: impl Fn(&Event) -> bool + Send + Sync + 'static,
        to: &ActorRef<M>,
    ) -> Subscription
    where
        M: From<Event> + Send + 'static,
    {
        let id = self.shared.events.add(Box::new(filter), actor_sink(to.clone()));
        Subscription::new(id, Arc::downgrade(&self.shared))
    }

    /// Subscribes a channel to the events `filter` accepts. The subscription ends with
    /// [`Subscription::unsubscribe`] or when the receiver is dropped.
    pub fn subscribe_channel(
        &self,
        filter: impl Fn(&Event) -> bool + Send + Sync + 'static,
    ) -> (Subscription, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel();
        let id = self.shared.events.add(Box::new(filter), channel_sink(tx));
        (Subscription::new(id, Arc::downgrade(&self.shared)), rx)
    }

    /// Dead letters so far, of every reason.
    pub fn dead_letters(&self) -> u64 {
        self.metrics().dead_letters
    }
}
