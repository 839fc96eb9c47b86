//! Cluster-wide schedules: a message sent to a named actor or singleton once, at a fixed rate
//! or on a cron expression, **once per tick across the whole cluster**, through the loss of
//! the member that sends it.
//!
//! A schedule is a record in the store (`/<cluster>/records/schedules/<id>`, bound to no
//! lease) that holds its definition and its progress (the last tick fired, how many). One
//! member runs it: its **runner** is a singleton (`corelane.schedule/<id>`, placed by the
//! name's hash, relocated when its member goes, handling nothing once its member may not
//! serve). For each tick the runner rewrites the record by compare-and-swap on its revision and
//! sends the message only if the write won: a tick is recorded once, so two runners (a member
//! frozen past its lease and thawed, beside the survivor that took over) never both send it.
//! Ticks missed while no runner ran (a failover) are sent late, in order, by the next runner,
//! up to [`CATCH_UP`] of them; older ones are skipped and counted. Removing the record cancels
//! the schedule: the runner's next write fails, it reads the record again, finds none, and
//! stops for good.

use super::by_name::find;
use super::{Cluster, ClusterInner};
use crate::error::{ErrorCode, RemoteAskError};
use crate::protocol::Protocol;
use crate::remote_ref::RemoteAsk;
use crate::target::{Exposed, Target};
use crate::RemoteMessage;
use corelane::{Actor, ActorError, ActorRef, Cron, Ctx, SpawnOptions};
use corelane_proto::cluster_v1::ClusterSchedule as Record;
use prost::Message;
use std::future::IntoFuture;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The kind of schedule runners (not a node's kind: only the cluster spawns them).
pub(crate) const RUNNER_KIND: &str = "corelane.schedule";

/// The names of schedule runners start with this.
const RUNNER_PREFIX: &str = "corelane.schedule/";

/// The shortest interval of a cluster-wide schedule (each tick is a write to the store).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// At most this many late ticks are sent after a failover; older ones are skipped (counted in
/// [`ScheduleState::skipped`]).
pub const CATCH_UP: u64 = 100;

fn runner_name(id: &str) -> String {
    format!("{RUNNER_PREFIX}{id}")
}

fn record_key(id: &str) -> String {
    format!("schedules/{id}")
}

fn decode(v: &[u8]) -> Option<Record> {
    <Record as Message>::decode(v).ok()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// What the next tick of a schedule is, at some moment.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Tick `at` (Unix ms), to be fired once due; `skipped` ticks before it are given up.
    At { at: u64, skipped: u64 },
    /// No more ticks.
    Never,
}

/// The next tick of `r` after its last one (or its start), as seen at `now` (Unix ms).
fn next_tick(r: &Record, now: u64) -> Next {
    let after = if r.fired == 0 { r.start_ms } else { r.last_ms };
    if let Some(every) = std::num::NonZeroU64::new(r.every_ms) {
        let k = after.saturating_sub(r.start_ms) / every + 1;
        let at = r.start_ms + k * r.every_ms;
        let late = if at <= now { (now - at) / every + 1 } else { 0 };
        let skipped = late.saturating_sub(CATCH_UP);
        return Next::At { at: at + skipped * r.every_ms, skipped };
    }
    if !r.cron.is_empty() {
        let Ok(cron) = Cron::parse(&r.cron) else { return Next::Never };
        let tick = |ms: u64| {
            cron.after(time_of(ms)).map(|t| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
        };
        let Some(first) = tick(after) else { return Next::Never };
        // The late ticks, up to a bound (a cron every second missed for a day is 86 400).
        let mut late = std::collections::VecDeque::new();
        let mut t = Some(first);
        let mut skipped = 0u64;
        while let Some(at) = t.filter(|at| *at <= now) {
            late.push_back(at);
            if late.len() as u64 > CATCH_UP {
                late.pop_front();
                skipped += 1;
            }
            if skipped > 10_000_000 {
                break;
            }
            t = tick(at);
        }
        return Next::At { at: late.front().copied().unwrap_or(first), skipped };
    }
    if r.fired == 0 {
        Next::At { at: r.at_ms, skipped: 0 }
    } else {
        Next::Never
    }
}

/// Whether two records define the same schedule (progress and start aside).
fn same_definition(a: &Record, b: &Record) -> bool {
    (&a.target, &a.manifest, &a.payload, a.every_ms, &a.cron, &a.role)
        == (&b.target, &b.manifest, &b.payload, b.every_ms, &b.cron, &b.role)
        && (a.every_ms > 0 || !a.cron.is_empty() || a.at_ms == b.at_ms)
}

/// A cluster-wide schedule being made: set the role of the members that may run it, then
/// [`wait`](NewSchedule::wait) or await it.
#[must_use = "nothing is scheduled until it is awaited or waited on"]
pub struct NewSchedule {
    cluster: Cluster,
    id: String,
    record: Result<Record, RemoteAskError>,
    timeout: Option<Duration>,
}

impl NewSchedule {
    /// Only members with this role run it.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        if let Ok(r) = &mut self.record {
            r.role = role.into();
        }
        self
    }

    /// How long to wait for it to be recorded and its runner to start (the runtime's ask
    /// timeout unless set).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Blocks until the schedule is recorded and runs (or could not be made). On a shard
    /// thread it fails with `WouldBlock`: await it there.
    ///
    /// # Errors
    /// `Refused(Malformed)` for an id, interval or cron expression that cannot be; `Refused(NameTaken)`
    /// when a schedule with this id exists with another definition; what the store or the
    /// runner's spawn failed with otherwise.
    pub fn wait(self) -> Result<ClusterSchedule, RemoteAskError> {
        self.into_future().wait()
    }

    fn start(self) -> RemoteAsk<ClusterSchedule> {
        let (cluster, id, timeout, record) = (self.cluster.clone(), self.id, self.timeout, self.record);
        let ask = self.cluster.inner.answer(async move { create(cluster, id, record?, timeout).await });
        match timeout {
            Some(d) => ask.timeout(d),
            None => ask,
        }
    }
}

impl IntoFuture for NewSchedule {
    type Output = Result<ClusterSchedule, RemoteAskError>;
    type IntoFuture = RemoteAsk<ClusterSchedule>;
    fn into_future(self) -> Self::IntoFuture {
        self.start()
    }
}

/// Records the schedule (or finds it recorded with the same definition) and starts its runner.
async fn create(
    cluster: Cluster,
    id: String,
    record: Record,
    timeout: Option<Duration>,
) -> Result<ClusterSchedule, RemoteAskError> {
    let c = &cluster.inner;
    c.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
    let key = record_key(&id);
    if c.provider.swap(&c.cfg.name, &key, 0, &record.encode_to_vec()).await.map_err(store_failed)?.is_none() {
        c.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
        let held = c.provider.read(&c.cfg.name, &key).await.map_err(store_failed)?;
        let same = held.as_ref().and_then(|(v, _)| decode(v)).is_some_and(|h| same_definition(&h, &record));
        if !same {
            return Err(RemoteAskError::Refused {
                code: ErrorCode::NameTaken,
                detail: format!("schedule {id:?} exists with another definition (cancel it first)"),
            });
        }
    }
    let mut runner = cluster.spawn_singleton(runner_name(&id), RUNNER_KIND);
    if !record.role.is_empty() {
        runner = runner.role(record.role.clone());
    }
    if let Some(d) = timeout {
        runner = runner.timeout(d);
    }
    runner.into_future().await?;
    Ok(ClusterSchedule { cluster: cluster.clone(), id: id.into() })
}

/// A cluster-wide schedule: where it runs, how far it got, and its cancellation.
#[derive(Clone)]
pub struct ClusterSchedule {
    cluster: Cluster,
    id: Arc<str>,
}

impl std::fmt::Debug for ClusterSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterSchedule({})", self.id)
    }
}

/// How far a cluster-wide schedule got, as its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleState {
    /// The named actor or singleton it sends to.
    pub target: String,
    /// Its first tick fired (`None`: none yet).
    pub first: Option<SystemTime>,
    /// Its last tick fired.
    pub last: Option<SystemTime>,
    /// Ticks fired, each once.
    pub fired: u64,
    /// Ticks given up (more than [`CATCH_UP`] late when a runner could send them).
    pub skipped: u64,
}

fn state_of(r: Record) -> ScheduleState {
    ScheduleState {
        target: r.target,
        first: (r.fired > 0).then(|| time_of(r.first_ms)),
        last: (r.fired > 0).then(|| time_of(r.last_ms)),
        fired: r.fired,
        skipped: r.skipped,
    }
}

impl ClusterSchedule {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The member running it now, as this member's copy of the registry says.
    pub fn host(&self) -> Option<String> {
        self.cluster.host_of(&runner_name(&self.id))
    }

    /// Its progress, read from the store (one request); `None` once it was cancelled or a
    /// one-off fired.
    pub fn state(&self) -> RemoteAsk<Option<ScheduleState>> {
        let (c, key) = (self.cluster.inner.clone(), record_key(&self.id));
        self.cluster.inner.answer(async move {
            c.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
            let v = c.provider.read(&c.cfg.name, &key).await.map_err(store_failed)?;
            Ok(v.and_then(|(v, _)| decode(&v)).map(state_of))
        })
    }

    /// Cancels it cluster-wide: its record goes (so no tick is recorded after this returns),
    /// then its runner stops for good. The answer is its final state (`None`: there was no
    /// such schedule).
    pub fn cancel(&self) -> RemoteAsk<Option<ScheduleState>> {
        self.cluster.cancel_schedule(&self.id)
    }
}

impl Cluster {
    /// Sends `msg` to named actor or singleton `to` every `interval` (at least
    /// [`MIN_INTERVAL`]), from now, once per tick across the cluster. Scheduling the same
    /// `id` with the same definition again (from any member) finds it.
    pub fn schedule<P: RemoteMessage>(&self, id: &str, interval: Duration, to: &str, msg: &P) -> NewSchedule {
        let every_ms = interval.as_millis() as u64;
        let record = if interval < MIN_INTERVAL {
            Err(malformed(format!("cluster schedules fire at most every {MIN_INTERVAL:?}")))
        } else {
            Ok(Record { every_ms, ..definition(to, msg) })
        };
        self.new_schedule(id, record)
    }

    /// Sends `msg` to named actor or singleton `to` once, after `delay` (late if no member
    /// could send it then; once in any case).
    pub fn schedule_once<P: RemoteMessage>(
        &self,
        id: &str,
        delay: Duration,
        to: &str,
        msg: &P,
    ) -> NewSchedule {
        let at_ms = now_ms() + delay.as_millis() as u64;
        self.new_schedule(id, Ok(Record { at_ms, ..definition(to, msg) }))
    }

    /// Sends `msg` to named actor or singleton `to` at each instant of the cron expression
    /// `expr` (6 or 7 fields, seconds first, UTC), once per instant across the cluster.
    pub fn schedule_cron<P: RemoteMessage>(&self, id: &str, expr: &str, to: &str, msg: &P) -> NewSchedule {
        let record = Cron::parse(expr)
            .map(|_| Record { cron: expr.to_string(), ..definition(to, msg) })
            .map_err(|e| malformed(e.to_string()));
        self.new_schedule(id, record)
    }

    /// The schedule `id`, to read its state, host or cancel it (whether it exists is known
    /// from its state).
    pub fn schedule_of(&self, id: &str) -> ClusterSchedule {
        ClusterSchedule { cluster: self.clone(), id: id.into() }
    }

    /// Cancels schedule `id` cluster-wide (see [`ClusterSchedule::cancel`]).
    pub fn cancel_schedule(&self, id: &str) -> RemoteAsk<Option<ScheduleState>> {
        let (c, id) = (self.inner.clone(), id.to_string());
        self.inner.answer(async move {
            c.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
            let removed = c.provider.remove(&c.cfg.name, &record_key(&id)).await.map_err(store_failed)?;
            // The runner would stop at its next tick; stopped now, it frees its name at once.
            if let Some(runner) = c.actor_of(&runner_name(&id)) {
                let _ = runner.stop().await;
            }
            Ok(removed.as_deref().and_then(decode).map(state_of))
        })
    }

    fn new_schedule(&self, id: &str, record: Result<Record, RemoteAskError>) -> NewSchedule {
        let record = match id {
            "" => Err(malformed("a schedule needs an id".into())),
            _ => record,
        };
        NewSchedule { cluster: self.clone(), id: id.to_string(), record, timeout: None }
    }
}

fn definition<P: RemoteMessage>(to: &str, msg: &P) -> Record {
    Record {
        target: to.to_string(),
        manifest: P::manifest().to_string(),
        payload: msg.to_bytes().to_vec(),
        start_ms: now_ms(),
        ..Record::default()
    }
}

fn store_failed(e: super::ProviderError) -> RemoteAskError {
    RemoteAskError::Refused { code: ErrorCode::Failed, detail: format!("the store failed: {e}") }
}

fn malformed(detail: String) -> RemoteAskError {
    RemoteAskError::Refused { code: ErrorCode::Malformed, detail }
}

/// A schedule's runner as the engine sees it: an actor that handles nothing, alive while its
/// schedule runs here (its ticks are sent by a task of the cluster thread, which ends when the
/// actor does).
struct Runner {
    _alive: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Actor for Runner {
    type Msg = ();
    fn receive(&mut self, _: &mut Ctx<Self>, (): ()) -> Result<(), ActorError> {
        Ok(())
    }
}

/// Spawns the runner of schedule `name` here (under this member's lease), with its task.
pub(super) fn spawn_runner(
    c: &Arc<ClusterInner>,
    name: &str,
) -> Result<Arc<dyn Target>, (ErrorCode, String)> {
    let id = name
        .strip_prefix(RUNNER_PREFIX)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| (ErrorCode::Malformed, format!("{name:?} is not a schedule runner's name")))?
        .to_string();
    let (alive, ended) = tokio::sync::oneshot::channel();
    let mut alive = Some(alive);
    let opts = SpawnOptions::new().lease(c.lease_of_named());
    let actor: ActorRef<()> = c
        .node
        .runtime()
        .spawn_with(opts, move || Runner { _alive: alive.take() })
        .map_err(|e| (ErrorCode::Failed, e.to_string()))?;
    let (weak, me) = (Arc::downgrade(c), actor.clone());
    c.rt.spawn(async move {
        tokio::select! {
            _ = ended => {}
            finished = fire(&weak, &id) => {
                if finished {
                    drop(me.stop());
                }
            }
        }
    });
    Ok(Arc::new(Exposed::new(actor, Arc::new(Protocol::<()>::new()))))
}

/// Fires schedule `id`'s ticks while it runs here; true when it has no more (cancelled, or a
/// one-off fired): the runner then stops for good.
async fn fire(c: &Weak<ClusterInner>, id: &str) -> bool {
    let key = record_key(id);
    let mut backoff = corelane::Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    let Some((mut record, mut revision)) = read(c, &key, &mut backoff).await else { return true };
    loop {
        let now = now_ms();
        let (at, skipped) = match next_tick(&record, now) {
            Next::Never => {
                // A one-off that fired: its record goes with it.
                if let Some(c) = c.upgrade() {
                    let _ = c.provider.remove(&c.cfg.name, &key).await;
                }
                return true;
            }
            Next::At { at, skipped } => (at, skipped),
        };
        if at > now {
            // Woken at least each minute, so a changed wall clock is followed.
            tokio::time::sleep(Duration::from_millis((at - now).min(60_000))).await;
            continue;
        }
        let Some(cl) = c.upgrade() else { return false };
        let to = match cl.may_serve().then(|| cl.actor_of(&record.target)).flatten() {
            Some(to) => to,
            None => {
                // Not serving, or nobody holds the target's name now: the tick waits.
                let wait = Instant::now() + Duration::from_millis(250);
                let _ = find(&cl, &record.target, wait, || false, None).await;
                drop(cl);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let next = Record {
            first_ms: if record.fired == 0 { at } else { record.first_ms },
            last_ms: at,
            fired: record.fired + 1,
            skipped: record.skipped + skipped,
            ..record.clone()
        };
        cl.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
        match cl.provider.swap(&cl.cfg.name, &key, revision, &next.encode_to_vec()).await {
            Ok(Some(r)) => {
                (record, revision) = (next, r);
                backoff.reset();
                cl.stats.ticks_fired.fetch_add(1, Ordering::Relaxed);
                if to.tell_payload(&record.manifest, record.payload.clone().into()).is_err() {
                    cl.node.inner.dead_letter(
                        corelane::DeadLetterReason::Remote(corelane::RemoteReason::Unreachable),
                        "scheduled tell",
                    );
                }
            }
            // Recorded by another runner (this one's member was frozen), or cancelled.
            Ok(None) => {
                drop(cl);
                match read(c, &key, &mut backoff).await {
                    Some(now) => (record, revision) = now,
                    None => return true,
                }
            }
            Err(e) => {
                tracing::debug!(id, error = %e, "cluster: a tick waits for the store");
                drop(cl);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// The schedule's record and its revision, read until the store answers; `None` when there is
/// none (cancelled) or the cluster is gone.
async fn read(c: &Weak<ClusterInner>, key: &str, backoff: &mut corelane::Backoff) -> Option<(Record, u64)> {
    loop {
        let cl = c.upgrade()?;
        cl.stats.membership_requests.fetch_add(1, Ordering::Relaxed);
        match cl.provider.read(&cl.cfg.name, key).await {
            Ok(Some((v, rev))) => return decode(&v).map(|r| (r, rev)),
            Ok(None) => return None,
            Err(_) => {
                drop(cl);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every(start: u64, every: u64) -> Record {
        Record { start_ms: start, every_ms: every, ..Record::default() }
    }

    #[test]
    fn fixed_rate_ticks_follow_the_grid_and_catch_up_a_bounded_number() {
        let mut r = every(1_000, 100);
        assert_eq!(next_tick(&r, 1_050), Next::At { at: 1_100, skipped: 0 });
        r.fired = 1;
        r.last_ms = 1_100;
        assert_eq!(next_tick(&r, 1_150), Next::At { at: 1_200, skipped: 0 });
        // Five ticks late: the first of them, none skipped.
        assert_eq!(next_tick(&r, 1_650), Next::At { at: 1_200, skipped: 0 });
        // CATCH_UP + 5 late: the 5 oldest skipped.
        let now = 1_200 + (CATCH_UP + 4) * 100;
        assert_eq!(next_tick(&r, now), Next::At { at: 1_700, skipped: 5 });
    }

    #[test]
    fn one_offs_fire_once_and_cron_ticks_follow_the_expression() {
        let mut once = Record { at_ms: 5_000, start_ms: 1_000, ..Record::default() };
        assert_eq!(next_tick(&once, 2_000), Next::At { at: 5_000, skipped: 0 });
        once.fired = 1;
        once.last_ms = 5_000;
        assert_eq!(next_tick(&once, 9_000), Next::Never);

        let mut cron = Record { cron: "*/2 * * * * *".into(), start_ms: 1_000, ..Record::default() };
        assert_eq!(next_tick(&cron, 1_500), Next::At { at: 2_000, skipped: 0 });
        cron.fired = 1;
        cron.last_ms = 2_000;
        assert_eq!(next_tick(&cron, 9_500), Next::At { at: 4_000, skipped: 0 });
        let now = 2_000 + 2_000 * (CATCH_UP + 3);
        assert_eq!(next_tick(&cron, now), Next::At { at: 2_000 + 2_000 * 4, skipped: 3 });
        // Its only year is past (2001-09-09 then).
        let never =
            Record { cron: "0 0 0 1 1 * 1999".into(), start_ms: 1_000_000_000_000, ..Record::default() };
        assert_eq!(next_tick(&never, 1_000_000_001_000), Next::Never);
    }

    #[test]
    fn a_definition_is_the_same_whatever_its_start_and_progress() {
        let a = Record { target: "t".into(), every_ms: 100, start_ms: 1, ..Record::default() };
        let b = Record { start_ms: 2, fired: 7, last_ms: 9, ..a.clone() };
        assert!(same_definition(&a, &b));
        assert!(!same_definition(&a, &Record { every_ms: 200, ..a.clone() }));
        assert!(!same_definition(&a, &Record { target: "u".into(), ..a.clone() }));
    }
}
