//! An in-memory membership store with etcd's semantics (leases, revisions, watches), for unit
//! tests of the cluster in one process. Several clusters' members share one store by cloning
//! it. It can be made unavailable, as a stopped etcd is.

use super::provider::{
    names_prefix, record_key, specs_prefix, BoxFuture, Claimed, ClusterProvider, Member, MemberChange,
    MemberWatch, NameChange, NameRecord, NameWatch, ProviderError, Snapshot, Spec, Versioned,
};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// An in-memory [`ClusterProvider`]. Clones share the store.
#[derive(Clone, Default)]
pub struct MemoryProvider {
    store: Arc<Store>,
}

#[derive(Default)]
struct Store {
    state: Mutex<State>,
    changed: Notify,
    requests: AtomicU64,
}

#[derive(Default)]
struct State {
    revision: u64,
    next_lease: i64,
    /// Lease id → (ttl, expiry).
    leases: HashMap<i64, (Duration, Instant)>,
    /// Key → (record, lease, revision of its last write).
    records: BTreeMap<String, (Value, i64, u64)>,
    /// Every change, in order: (revision, key prefix's cluster, change).
    log: Vec<(u64, String, Change)>,
    unavailable: bool,
    /// How long after its change a watch event is delivered (`set_watch_lag`).
    watch_lag: Duration,
}

/// What a key holds.
enum Value {
    Member(Member),
    /// A name's value (the key holds the name).
    Name(Vec<u8>),
    /// A name's spec (held under no lease: lease 0).
    Spec(Vec<u8>),
    /// A record (under no lease; the revision is its last write's).
    Record(Vec<u8>),
}

#[derive(Clone)]
enum Change {
    Member(MemberChange),
    Name(NameChange),
}

impl State {
    /// Deletes the records of leases past their expiry.
    fn expire(&mut self, now: Instant) {
        let gone: Vec<i64> = self.leases.iter().filter(|(_, (_, at))| *at <= now).map(|(l, _)| *l).collect();
        for l in gone {
            self.end_lease(l, true);
        }
    }

    fn end_lease(&mut self, lease: i64, expired: bool) {
        self.leases.remove(&lease);
        let keys: Vec<String> =
            self.records.iter().filter(|(_, r)| r.1 == lease).map(|(k, _)| k.clone()).collect();
        for k in keys {
            let (v, _, _) = self.records.remove(&k).expect("listed");
            self.revision += 1;
            let cluster = k.split('/').nth(1).unwrap_or_default().to_string();
            let change = match v {
                Value::Member(m) => Change::Member(MemberChange::Delete { id: m.id, expired }),
                Value::Name(_) => {
                    let name = k.strip_prefix(&names_prefix(&cluster)).unwrap_or_default().to_string();
                    Change::Name(NameChange::Delete { name })
                }
                Value::Spec(_) | Value::Record(_) => continue,
            };
            self.log.push((self.revision, cluster, change));
        }
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.leases.values().map(|(_, at)| *at).min()
    }
}

impl MemoryProvider {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the store unreachable (every request fails `Unavailable`, watches fail) or
    /// reachable again. Leases still expire while it is unreachable, as etcd's do when their
    /// holders cannot reach it.
    pub fn set_available(&self, available: bool) {
        self.store.state.lock().unavailable = !available;
        self.store.changed.notify_waiters();
    }

    /// Delivers every watch event `lag` after the watch could first have reported it (zero:
    /// at once), as a real store's watch lags behind the writes it reports when the store or
    /// the network is slow. For tests of what a member sees before its watch catches up.
    pub fn set_watch_lag(&self, lag: Duration) {
        self.store.state.lock().watch_lag = lag;
    }

    /// Ends `member`'s lease now, as if it had expired.
    pub fn expire(&self, cluster: &str, member: &str) {
        let mut s = self.store.state.lock();
        let key = format!("{}{member}", super::provider::members_prefix(cluster));
        if let Some(lease) = s.records.get(&key).map(|r| r.1) {
            s.end_lease(lease, true);
        }
        drop(s);
        self.store.changed.notify_waiters();
    }

    fn call<T>(&self, f: impl FnOnce(&mut State) -> Result<T, ProviderError>) -> Result<T, ProviderError> {
        self.store.requests.fetch_add(1, Ordering::Relaxed);
        let mut s = self.store.state.lock();
        if s.unavailable {
            return Err(ProviderError::Unavailable("the in-memory store is switched off".into()));
        }
        s.expire(Instant::now());
        let before = s.revision;
        let r = f(&mut s);
        let changed = s.revision != before;
        drop(s);
        if changed {
            self.store.changed.notify_waiters();
        }
        r
    }
}

impl ClusterProvider for MemoryProvider {
    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<i64, ProviderError>> {
        let r = self.call(|s| {
            s.next_lease += 1;
            s.leases.insert(s.next_lease, (ttl, Instant::now() + ttl));
            Ok(s.next_lease)
        });
        Box::pin(async move { r })
    }

    fn register<'a>(
        &'a self,
        cluster: &'a str,
        member: &'a Member,
        lease: i64,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        let r = self.call(|s| {
            if !s.leases.contains_key(&lease) {
                return Err(ProviderError::LeaseExpired);
            }
            s.revision += 1;
            let key = format!("{}{}", super::provider::members_prefix(cluster), member.id);
            s.records.insert(key, (Value::Member(member.clone()), lease, s.revision));
            s.log.push((s.revision, cluster.to_string(), Change::Member(MemberChange::Put(member.clone()))));
            Ok(())
        });
        Box::pin(async move { r })
    }

    fn keep_alive(&self, lease: i64) -> BoxFuture<'_, Result<(), ProviderError>> {
        let r = self.call(|s| match s.leases.get_mut(&lease) {
            Some((ttl, at)) => {
                *at = Instant::now() + *ttl;
                Ok(())
            }
            None => Err(ProviderError::LeaseExpired),
        });
        Box::pin(async move { r })
    }

    fn revoke(&self, lease: i64) -> BoxFuture<'_, Result<(), ProviderError>> {
        let r = self.call(|s| {
            s.end_lease(lease, false);
            Ok(())
        });
        Box::pin(async move { r })
    }

    fn snapshot<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<Snapshot, ProviderError>> {
        let prefix = super::provider::members_prefix(cluster);
        let r = self.call(|s| {
            let members = s
                .records
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, r)| match &r.0 {
                    Value::Member(m) => Some(m.clone()),
                    _ => None,
                })
                .collect();
            let epoch = s
                .log
                .iter()
                .rev()
                .find(|(_, c, ch)| c == cluster && matches!(ch, Change::Member(_)))
                .map_or(0, |(r, _, _)| *r);
            Ok(Snapshot { members, revision: s.revision, epoch })
        });
        Box::pin(async move { r })
    }

    fn watch<'a>(
        &'a self,
        cluster: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<Box<dyn MemberWatch>, ProviderError>> {
        let r = self.call(|_| Ok(()));
        let w = MemoryWatch { store: self.store.clone(), cluster: cluster.to_string(), after: revision };
        Box::pin(async move { r.map(|()| Box::new(w) as Box<dyn MemberWatch>) })
    }

    fn claim<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
        value: &'a [u8],
        lease: i64,
        spec: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<Claimed, ProviderError>> {
        let r = self.call(|s| {
            if !s.leases.contains_key(&lease) {
                return Err(ProviderError::LeaseExpired);
            }
            let key = format!("{}{name}", names_prefix(cluster));
            if let Some((Value::Name(v), holder, rev)) = s.records.get(&key) {
                let held =
                    NameRecord { name: name.to_string(), value: v.clone(), lease: *holder, revision: *rev };
                return Ok(Claimed::Taken(held));
            }
            s.revision += 1;
            let revision = s.revision;
            s.records.insert(key, (Value::Name(value.to_vec()), lease, revision));
            if let Some(spec) = spec {
                s.records.insert(
                    format!("{}{name}", specs_prefix(cluster)),
                    (Value::Spec(spec.to_vec()), 0, revision),
                );
            }
            let record = NameRecord { name: name.to_string(), value: value.to_vec(), lease, revision };
            s.log.push((revision, cluster.to_string(), Change::Name(NameChange::Put(record))));
            Ok(Claimed::Won { revision })
        });
        Box::pin(async move { r })
    }

    fn release<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
        lease: i64,
        forget: bool,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        let r = self.call(|s| {
            let key = format!("{}{name}", names_prefix(cluster));
            if !matches!(s.records.get(&key), Some((Value::Name(_), l, _)) if *l == lease) {
                return Ok(false);
            }
            s.records.remove(&key);
            if forget {
                s.records.remove(&format!("{}{name}", specs_prefix(cluster)));
            }
            s.revision += 1;
            let change = Change::Name(NameChange::Delete { name: name.to_string() });
            s.log.push((s.revision, cluster.to_string(), change));
            Ok(true)
        });
        Box::pin(async move { r })
    }

    fn names<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<(Vec<NameRecord>, u64), ProviderError>> {
        let prefix = names_prefix(cluster);
        let r = self.call(|s| {
            let names = s
                .records
                .iter()
                .filter_map(|(k, (v, lease, revision))| match (k.strip_prefix(&prefix), v) {
                    (Some(name), Value::Name(value)) => Some(NameRecord {
                        name: name.to_string(),
                        value: value.clone(),
                        lease: *lease,
                        revision: *revision,
                    }),
                    _ => None,
                })
                .collect();
            Ok((names, s.revision))
        });
        Box::pin(async move { r })
    }

    fn update_all<'a>(
        &'a self,
        cluster: &'a str,
        names: &'a [(String, Vec<u8>)],
        lease: i64,
    ) -> BoxFuture<'a, Result<Vec<bool>, ProviderError>> {
        let r = self.call(|s| {
            let mut out = Vec::with_capacity(names.len());
            for (name, value) in names {
                let key = format!("{}{name}", names_prefix(cluster));
                let held = matches!(s.records.get(&key), Some((Value::Name(_), l, _)) if *l == lease);
                if held {
                    s.revision += 1;
                    let revision = s.revision;
                    let created = s.records.get(&key).map_or(revision, |r| r.2);
                    s.records.insert(key, (Value::Name(value.clone()), lease, created));
                    let record =
                        NameRecord { name: name.clone(), value: value.clone(), lease, revision: created };
                    s.log.push((revision, cluster.to_string(), Change::Name(NameChange::Put(record))));
                }
                out.push(held);
            }
            Ok(out)
        });
        Box::pin(async move { r })
    }

    fn specs<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<Vec<Spec>, ProviderError>> {
        let prefix = specs_prefix(cluster);
        let r = self.call(|s| {
            Ok(s.records
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(k, (v, _, _))| match v {
                    Value::Spec(spec) => Some((k[prefix.len()..].to_string(), spec.clone())),
                    _ => None,
                })
                .collect())
        });
        Box::pin(async move { r })
    }

    fn read<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Versioned>, ProviderError>> {
        let r = self.call(|s| {
            Ok(match s.records.get(&record_key(cluster, key)) {
                Some((Value::Record(v), _, rev)) => Some((v.clone(), *rev)),
                _ => None,
            })
        });
        Box::pin(async move { r })
    }

    fn swap<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
        expect: u64,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<u64>, ProviderError>> {
        let r = self.call(|s| {
            let key = record_key(cluster, key);
            let now = match s.records.get(&key) {
                Some((Value::Record(_), _, rev)) => *rev,
                _ => 0,
            };
            if now != expect {
                return Ok(None);
            }
            s.revision += 1;
            let revision = s.revision;
            s.records.insert(key, (Value::Record(value.to_vec()), 0, revision));
            Ok(Some(revision))
        });
        Box::pin(async move { r })
    }

    fn remove<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, ProviderError>> {
        let r = self.call(|s| match s.records.remove(&record_key(cluster, key)) {
            Some((Value::Record(v), _, _)) => {
                s.revision += 1;
                Ok(Some(v))
            }
            _ => Ok(None),
        });
        Box::pin(async move { r })
    }

    fn watch_names<'a>(
        &'a self,
        cluster: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<Box<dyn NameWatch>, ProviderError>> {
        let r = self.call(|_| Ok(()));
        let w = MemoryWatch { store: self.store.clone(), cluster: cluster.to_string(), after: revision };
        Box::pin(async move { r.map(|()| Box::new(w) as Box<dyn NameWatch>) })
    }

    fn requests(&self) -> u64 {
        self.store.requests.load(Ordering::Relaxed)
    }
}

struct MemoryWatch {
    store: Arc<Store>,
    cluster: String,
    after: u64,
}

impl MemoryWatch {
    /// The next changes of this watch's cluster that `pick` keeps, after the last ones.
    async fn next_of<T>(
        &mut self,
        pick: impl Fn(&Change) -> Option<T>,
    ) -> Result<Vec<(T, u64)>, ProviderError> {
        loop {
            let notified = self.store.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut s = self.store.state.lock();
                if s.unavailable {
                    return Err(ProviderError::Unavailable("the in-memory store is switched off".into()));
                }
                s.expire(Instant::now());
                let news: Vec<_> = s
                    .log
                    .iter()
                    .filter(|(r, c, _)| *r > self.after && *c == self.cluster)
                    .filter_map(|(r, _, ch)| pick(ch).map(|t| (t, *r)))
                    .collect();
                if let Some(last) = s.log.last().map(|(r, _, _)| *r) {
                    self.after = self.after.max(last);
                }
                if !news.is_empty() {
                    Ok((news, s.watch_lag))
                } else {
                    Err(s.next_expiry().map(|at| at.saturating_duration_since(Instant::now())))
                }
            };
            let wait = match wait {
                Ok((news, lag)) => {
                    if !lag.is_zero() {
                        tokio::time::sleep(lag).await;
                    }
                    return Ok(news);
                }
                Err(wait) => wait,
            };
            let wait = wait.unwrap_or(Duration::from_secs(3600)).max(Duration::from_millis(1));
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }
}

impl MemberWatch for MemoryWatch {
    fn next(&mut self) -> BoxFuture<'_, Result<Vec<(MemberChange, u64)>, ProviderError>> {
        Box::pin(self.next_of(|ch| match ch {
            Change::Member(m) => Some(m.clone()),
            Change::Name(_) => None,
        }))
    }
}

impl NameWatch for MemoryWatch {
    fn next(&mut self) -> BoxFuture<'_, Result<Vec<(NameChange, u64)>, ProviderError>> {
        Box::pin(self.next_of(|ch| match ch {
            Change::Name(n) => Some(n.clone()),
            Change::Member(_) => None,
        }))
    }
}
