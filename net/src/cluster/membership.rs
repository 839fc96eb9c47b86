//! Membership, on the cluster's own thread (a current-thread tokio runtime, so the store's
//! client never runs on the net thread or a shard): joining under a lease, renewing it,
//! fencing when a renewal is late, watching the member set, applying each new topology, and
//! the handover of partitions between members.

use super::handover::{apply, query_laggards, STOP_WAIT};
use super::provider::{ClusterProvider, Member, MemberChange, MemberWatch, ProviderError};
use super::{Cluster, ClusterConfig, ClusterError, ClusterInner, Handover};
use crate::node::Node;
use corelane::{Event, LeftReason};
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Applied, Envelope};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often a member with partitions waiting for a handover asks the laggards again.
const HANDOVER_QUERY: Duration = Duration::from_millis(100);
/// How long a member that left still refuses grain messages before `leave` returns.
const LEAVE_LINGER: Duration = Duration::from_millis(100);

pub(crate) enum Command {
    Leave(oneshot::Sender<bool>),
}

/// The handle that commands the membership task.
pub(crate) struct Control {
    cmds: mpsc::UnboundedSender<Command>,
}

impl Control {
    pub(crate) fn leave(&self, inner: &ClusterInner, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Command::Leave(tx)).is_err() {
            return true;
        }
        let (done_tx, done) = std::sync::mpsc::channel();
        inner.rt.spawn(async move {
            let left = tokio::time::timeout(timeout, rx).await.is_ok_and(|r| r.unwrap_or(false));
            let _ = done_tx.send(left);
        });
        done.recv().unwrap_or(false)
    }
}

/// Starts the cluster thread and joins.
pub(crate) fn start(
    cfg: ClusterConfig,
    kinds: super::Kinds,
    node: &Node,
    provider: Arc<dyn ClusterProvider>,
) -> Result<Cluster, ClusterError> {
    if cfg.ttl < Duration::from_secs(1) || cfg.fence_margin * 2 >= cfg.ttl {
        return Err(ClusterError::Config(format!(
            "ttl {:?} must be at least 1 s and more than twice the fence margin {:?}",
            cfg.ttl, cfg.fence_margin
        )));
    }
    if cfg.name.is_empty() || cfg.name.contains('/') {
        return Err(ClusterError::Config(format!(
            "cluster name {:?} must be non-empty, without '/'",
            cfg.name
        )));
    }
    let (rt_tx, rt_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("corelane-cluster".into())
        .spawn(move || {
            let rt =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            let _ = rt_tx.send(rt.handle().clone());
            // Runs until the cluster's state is dropped (after the member left and its last
            // handle went). A process that ends without leaving simply stops renewing.
            rt.block_on(async move {
                let _ = stopped.await;
            });
        })
        .map_err(|e| ClusterError::Config(format!("cannot start the cluster thread: {e}")))?;
    let rt = rt_rx.recv().map_err(|_| ClusterError::Config("the cluster thread did not start".into()))?;
    let id = cfg.member_id.clone().unwrap_or_else(|| match cfg.client {
        true => format!("client-{}", node.addr()),
        false => node.addr().to_string(),
    });
    let (epoch, _) = tokio::sync::watch::channel(0);
    let mut kind_names: Vec<&'static str> = kinds.values().map(|k| k.name).collect();
    kind_names.sort_unstable();
    let inner = Arc::new(ClusterInner {
        node: node.clone(),
        id,
        provider,
        kinds,
        kind_names,
        topology: Default::default(),
        epoch,
        gate: Arc::new(super::Gate::new()),
        handover: Mutex::new(Handover::default()),
        open: AtomicBool::new(cfg.min_members <= 1),
        rt: rt.clone(),
        stats: Default::default(),
        applied: AtomicU64::new(0),
        changed: Default::default(),
        gone: AtomicBool::new(false),
        held: Default::default(),
        answering: AtomicUsize::new(0),
        lease: std::sync::atomic::AtomicI64::new(0),
        names: Default::default(),
        placed: AtomicUsize::new(0),
        _thread: Mutex::new(stop),
        cfg,
    });
    if !node.inner.set_cluster(Arc::downgrade(&inner)) {
        return Err(ClusterError::Config(
            "this node is already a cluster member (a node joins one cluster once)".into(),
        ));
    }
    let (cmds, cmd_rx) = mpsc::unbounded_channel();
    let (joined_tx, joined) = std::sync::mpsc::channel();
    rt.spawn(run(inner.clone(), cmd_rx, joined_tx));
    rt.spawn(super::named::follow(Arc::downgrade(&inner)));
    if !inner.cfg.client {
        rt.spawn(super::relocate::run(Arc::downgrade(&inner)));
    }
    let control = Arc::new(Control { cmds });
    match joined.recv_timeout(inner.cfg.join_timeout) {
        Ok(Ok(())) => Ok(Cluster { inner, control }),
        Ok(Err(e)) => Err(ClusterError::Join(e)),
        Err(_) => {
            control.leave(&inner, Duration::from_secs(1));
            Err(ClusterError::Join(format!("not registered within {:?}", inner.cfg.join_timeout)))
        }
    }
}

fn me(inner: &ClusterInner) -> Member {
    let kinds = inner.kind_names.iter().map(|k| k.to_string()).collect();
    let mut roles = inner.cfg.roles.clone();
    roles.sort();
    let mut actor_kinds: Vec<String> = inner.node.inner.kinds.read().keys().cloned().collect();
    actor_kinds.sort();
    Member {
        id: inner.id.clone(),
        addr: inner.node.addr(),
        incarnation: inner.node.incarnation(),
        kinds,
        roles,
        actor_kinds,
    }
}

/// Grants a lease and registers under it, retrying until it works or a leave is asked for.
/// The lease and when its grant was sent.
async fn register(
    inner: &ClusterInner,
    cmds: &mut mpsc::UnboundedReceiver<Command>,
) -> Result<(i64, Instant), Command> {
    let me = me(inner);
    let mut backoff = corelane::Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        let sent = Instant::now();
        let attempt = async {
            inner.stats.membership_requests.fetch_add(2, Ordering::Relaxed);
            let lease = inner.provider.grant(inner.cfg.ttl).await?;
            inner.provider.register(&inner.cfg.name, &me, lease).await?;
            Ok::<_, ProviderError>(lease)
        };
        match tokio::time::timeout(inner.cfg.ttl / 2, attempt).await {
            Ok(Ok(lease)) => return Ok((lease, sent)),
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster: cannot register yet"),
            Err(_) => tracing::warn!("cluster: registration timed out"),
        }
        tokio::select! {
            // Every handle dropped: leave (nobody is left to wait for it).
            c = cmds.recv() => return Err(c.unwrap_or_else(|| Command::Leave(oneshot::channel().0))),
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Renews the lease every eighth of the TTL (a dead member's record then expires soon after
/// it died, not up to a renewal interval later); each acknowledged renewal moves the serving deadline to
/// its send time + TTL − margin. Reports an expired lease.
async fn renew(inner: Arc<ClusterInner>, lease: i64, expired: mpsc::Sender<()>) {
    let ttl = inner.cfg.ttl;
    let every = (ttl / 8).max(Duration::from_millis(100));
    loop {
        let sent = Instant::now();
        match tokio::time::timeout(ttl / 2, inner.provider.keep_alive(lease)).await {
            Ok(Ok(())) => {
                inner.stats.renewals.fetch_add(1, Ordering::Relaxed);
                inner.serve_until(sent + ttl - inner.cfg.fence_margin);
            }
            Ok(Err(ProviderError::LeaseExpired)) => {
                let _ = expired.send(()).await;
                return;
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cluster: renewal failed"),
            Err(_) => tracing::debug!("cluster: renewal timed out"),
        }
        tokio::time::sleep_until((sent + every).into()).await;
    }
}

/// The membership task: one session per lease (a fenced member whose lease expired joins
/// again with a new one).
async fn run(
    inner: Arc<ClusterInner>,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    joined: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut joined = Some(joined);
    let mut opened_at = Instant::now();
    if inner.cfg.client {
        // Routes for good (it serves nothing, so there is nothing to fence), under no lease.
        inner.serve_until(Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        let (_never, mut expired) = mpsc::channel(1);
        loop {
            if let Ended::Leave(done) =
                session(&inner, 0, &mut cmds, &mut expired, &mut joined, &mut opened_at).await
            {
                return finish_leave(&inner, None, done).await;
            }
        }
    }
    loop {
        let (lease, sent) = match register(&inner, &mut cmds).await {
            Ok(l) => l,
            Err(Command::Leave(done)) => {
                finish_leave(&inner, None, done).await;
                return;
            }
        };
        inner.serve_until(sent + inner.cfg.ttl - inner.cfg.fence_margin);
        inner.lease.store(lease, Ordering::Release);
        let (expired_tx, mut expired) = mpsc::channel(1);
        let renewer = tokio::spawn(renew(inner.clone(), lease, expired_tx));
        let ended = session(&inner, lease, &mut cmds, &mut expired, &mut joined, &mut opened_at).await;
        renewer.abort();
        inner.lease.store(0, Ordering::Release);
        match ended {
            Ended::Leave(done) => {
                finish_leave(&inner, Some(lease), done).await;
                return;
            }
            Ended::Rejoin => {
                fence(&inner, "its lease ended");
            }
        }
    }
}

enum Ended {
    Leave(oneshot::Sender<bool>),
    Rejoin,
}

/// One lease's life: read the member set, watch it, apply each change, fence when the
/// serving deadline passes, until the lease ends or the member leaves.
async fn session(
    inner: &Arc<ClusterInner>,
    lease: i64,
    cmds: &mut mpsc::UnboundedReceiver<Command>,
    expired: &mut mpsc::Receiver<()>,
    joined: &mut Option<std::sync::mpsc::Sender<Result<(), String>>>,
    opened_at: &mut Instant,
) -> Ended {
    let _ = lease;
    let mut members: HashMap<String, Member> = HashMap::new();
    let mut watch: Option<Box<dyn MemberWatch>> = None;
    let mut after = 0u64;
    let mut tick = tokio::time::interval(HANDOVER_QUERY);
    // Idle grains are looked for four times per idle timeout.
    let sweep_every = (inner.cfg.grain_idle / 4).max(HANDOVER_QUERY);
    let mut next_sweep = Instant::now() + sweep_every;
    let mut retry_at = Instant::now();
    let mut reported_fence = false;
    loop {
        if watch.is_none() && Instant::now() >= retry_at {
            match read_and_watch(inner, after).await {
                Ok((snapshot, w, from)) => {
                    if let Some(snap) = snapshot {
                        members = snap.members.into_iter().map(|m| (m.id.clone(), m)).collect();
                        apply(inner, members.values().cloned().collect(), snap.epoch);
                    }
                    watch = Some(w);
                    after = from;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: cannot watch the member set yet");
                    retry_at = Instant::now() + Duration::from_millis(200);
                }
            }
        }
        if let Some(j) = joined.as_ref() {
            // A client is connected once it read the member set.
            if inner.current().me.is_some() || (inner.cfg.client && watch.is_some()) {
                let _ = j.send(Ok(()));
                *joined = None;
                *opened_at = Instant::now();
            }
        }
        let deadline = inner.serving_deadline();
        if inner.may_serve() {
            reported_fence = false;
        }
        let next = async {
            match watch.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            c = cmds.recv() => match c {
                Some(Command::Leave(done)) => return Ended::Leave(done),
                // Every handle dropped: the member leaves gracefully.
                None => return Ended::Leave(oneshot::channel().0),
            },
            _ = expired.recv() => return Ended::Rejoin,
            () = sleep_until_opt(deadline), if deadline.is_some() && !reported_fence => {
                if !inner.may_serve() {
                    fence(inner, "a renewal was not acknowledged in time");
                    reported_fence = true;
                }
            }
            changes = next => match changes {
                Ok(changes) => {
                    let mut me_gone = false;
                    let mut epoch = inner.current().epoch;
                    for (change, rev) in changes {
                        after = after.max(rev);
                        epoch = epoch.max(rev);
                        match change {
                            MemberChange::Put(m) => { members.insert(m.id.clone(), m); }
                            MemberChange::Delete { id, expired } => {
                                if id == inner.id { me_gone = true; }
                                if let Some(m) = members.remove(&id) {
                                    left(inner, &m, expired);
                                }
                            }
                        }
                    }
                    apply(inner, members.values().cloned().collect(), epoch);
                    if me_gone {
                        tracing::warn!("cluster: this member's record is gone; fencing and joining again");
                        return Ended::Rejoin;
                    }
                }
                Err(ProviderError::Compacted) => { watch = None; after = 0; }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: member watch failed; watching again");
                    watch = None;
                    retry_at = Instant::now() + Duration::from_millis(100);
                }
            },
            _ = tick.tick() => {
                query_laggards(inner);
                if !inner.open.load(Ordering::Relaxed) && opened_at.elapsed() >= inner.cfg.min_members_timeout {
                    inner.open.store(true, Ordering::Relaxed);
                }
                inner.release_held();
                super::named::release_stopped(inner);
                if Instant::now() >= next_sweep {
                    next_sweep = Instant::now() + sweep_every;
                    inner.sweep_idle();
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Reads the member set (unless resuming a watch after `after`) and watches from where the
/// latest change could be: a snapshot's newest record, so that deletes after it are replayed
/// and the epoch is the revision of the latest change, as every member computes it (or from the
/// present, when that record is the latest write).
async fn read_and_watch(
    inner: &ClusterInner,
    after: u64,
) -> Result<(Option<super::Snapshot>, Box<dyn MemberWatch>, u64), ProviderError> {
    let name = &inner.cfg.name;
    inner.stats.membership_requests.fetch_add(if after == 0 { 2 } else { 1 }, Ordering::Relaxed);
    let snapshot = if after == 0 { Some(inner.provider.snapshot(name).await?) } else { None };
    // When the newest record is the store's latest write, nothing can have been deleted since:
    // the watch starts at the present, which etcd serves at once. Otherwise it replays from the
    // newest record (etcd serves a watch that starts in the past from a loop that runs every
    // 100 ms until it has caught up).
    let from = snapshot.as_ref().map_or(after, |s| {
        if s.epoch >= s.revision {
            s.revision
        } else {
            s.epoch.saturating_sub(1)
        }
    });
    let w = inner.provider.watch(name, from).await?;
    Ok((snapshot, w, from))
}

/// A member's record went. When its lease expired (it died, froze or lost the store), asks
/// waiting for its node fail now with `NodeDown` (grain asks are retried on the new owner when
/// the asker allowed it) instead of after the transport's dead-peer timeout. A member that
/// left gracefully answered or refused everything it had before its record went, and its node
/// may live on: its answers still come. The event stream hears of both.
fn left(inner: &ClusterInner, m: &Member, expired: bool) {
    if expired && m.id != inner.id {
        inner.node.inner.peer_lost(m.addr);
    }
    let reason = if expired { LeftReason::LeaseExpired } else { LeftReason::Left };
    corelane::integration::publish_event(inner.node.runtime(), || Event::NodeLeft {
        member: m.id.clone(),
        addr: m.addr,
        roles: m.roles.clone(),
        reason,
    });
}

/// Stops serving: every host here is stopped (each refuses what it had queued).
pub(crate) fn fence(inner: &ClusterInner, why: &str) {
    if inner.fence() {
        inner.stats.fenced.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = why, "cluster: fenced; serving no grain");
    }
    drop(inner.stop_hosts(|_, _| false));
    // Its names go with its lease (or are given up now): their actors stop.
    drop(inner.names.stop_hosted());
}

/// Leaving: stop serving, stop every grain here and wait for them, then delete the record and
/// end the lease.
async fn finish_leave(inner: &Arc<ClusterInner>, lease: Option<i64>, done: oneshot::Sender<bool>) {
    inner.fence();
    inner.gone.store(true, Ordering::Release);
    for s in inner.stop_hosts(|_, _| false).into_iter().chain(inner.names.stop_hosted()) {
        let _ = tokio::time::timeout(STOP_WAIT, s).await;
    }
    // Hosts stopped before (a fence, a partition lost) may still be draining.
    let settled = Instant::now() + STOP_WAIT;
    while inner.hosts() > 0 && Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The answers of the grains' last asks go out before the notice that follows them.
    let settled = Instant::now() + STOP_WAIT;
    while inner.answering.load(Ordering::Acquire) > 0 && Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let topo = inner.current();
    for m in topo.others().filter(|_| !inner.cfg.client) {
        let a = Applied { epoch: inner.applied.load(Ordering::Acquire), query: false, leaving: true };
        let _ = inner.node.inner.send(m.addr, Envelope::system(0, 0, Body::Applied(a)));
    }
    let ok = match lease {
        Some(l) => {
            inner.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
            let r = tokio::time::timeout(inner.cfg.ttl, inner.provider.leave(&inner.cfg.name, &inner.id, l))
                .await;
            matches!(r, Ok(Ok(())))
        }
        None => true,
    };
    // Members that have not yet seen the record go still send here for a moment: refused
    // (fenced) while this node lingers, rather than lost if its process ends at once.
    tokio::time::sleep(LEAVE_LINGER).await;
    let _ = done.send(ok);
}
