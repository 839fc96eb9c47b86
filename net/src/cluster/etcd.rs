//! The etcd v3 membership store (feature `etcd`): member records under
//! `/<cluster>/members/<id>`, each bound to its member's lease; a graceful leave marks
//! `/<cluster>/left/<id>` in the same transaction that deletes the record, so watchers can tell
//! a leave from an expiry. Names under `/<cluster>/names/<name>`, each created by a transaction
//! that succeeds only while the key does not exist (its create revision is 0), under the
//! claimant's lease.
//!
//! The client connects lazily (and reconnects by itself), with `require_leader`, so requests
//! and watches on a member that lost its leader fail instead of hanging, and with HTTP/2
//! keep-alives, so a frozen or vanished server is noticed within about a second.

use super::provider::{
    members_prefix, names_prefix, record_key, specs_prefix, BoxFuture, Claimed, ClusterProvider, Member,
    MemberChange, MemberWatch, NameChange, NameRecord, NameWatch, ProviderError, Snapshot, Spec, Versioned,
};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, LeaseKeepAliveStream,
    LeaseKeeper, PutOptions, Txn, TxnOp, WatchOptions, WatchStream,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

/// Names per transaction in batched claims and updates (etcd refuses transactions of more
/// than 128 operations by default).
const BATCH: usize = 100;

/// Membership on etcd v3 ([`ClusterProvider`]).
pub struct EtcdProvider {
    endpoints: Vec<String>,
    timeout: Duration,
    client: Mutex<Option<Client>>,
    keep_alive: Mutex<Option<(i64, LeaseKeeper, LeaseKeepAliveStream)>>,
    requests: AtomicU64,
}

impl std::fmt::Debug for EtcdProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdProvider").field("endpoints", &self.endpoints).finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Unavailable(e.to_string())
}

impl EtcdProvider {
    /// A store at `endpoints` (`"127.0.0.1:2379"` or `"http://..."`). Nothing is connected
    /// until the cluster uses it.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            timeout: Duration::from_secs(1),
            client: Mutex::new(None),
            keep_alive: Mutex::new(None),
            requests: AtomicU64::new(0),
        }
    }

    /// How long one request may take before it counts as unavailable (default 1 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Writes `names` under `lease` in transactions of up to [`BATCH`] names, each only if
    /// `compare` holds for every key in it (one request per transaction); per transaction, its
    /// revision if it was applied.
    async fn put_batches(
        &self,
        cluster: &str,
        names: &[(String, Vec<u8>)],
        lease: i64,
        compare: impl Fn(&str) -> Compare,
    ) -> Result<Vec<Option<u64>>, ProviderError> {
        let prefix = names_prefix(cluster);
        let mut out = Vec::with_capacity(names.len().div_ceil(BATCH));
        for chunk in names.chunks(BATCH) {
            let keys: Vec<String> = chunk.iter().map(|(n, _)| format!("{prefix}{n}")).collect();
            let when: Vec<Compare> = keys.iter().map(|k| compare(k)).collect();
            let put = |(k, (_, v)): (&String, &(String, Vec<u8>))| {
                TxnOp::put(k.as_str(), v.as_slice(), Some(PutOptions::new().with_lease(lease)))
            };
            let txn = Txn::new().when(when).and_then(keys.iter().zip(chunk).map(put).collect::<Vec<_>>());
            let r = self.client().await?.txn(txn).await.map_err(|e| lease_or_unavailable(&e))?;
            out.push(r.succeeded().then(|| r.header().map_or(0, |h| h.revision()) as u64));
        }
        Ok(out)
    }

    /// Every key under `prefix` (one request).
    async fn get_prefix(&self, prefix: &str) -> Result<etcd_client::GetResponse, ProviderError> {
        self.client().await?.get(prefix, Some(GetOptions::new().with_prefix())).await.map_err(unavailable)
    }

    async fn client(&self) -> Result<Client, ProviderError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut c = self.client.lock().await;
        if let Some(c) = c.as_ref() {
            return Ok(c.clone());
        }
        let opts = ConnectOptions::new()
            .with_require_leader(true)
            .with_connect_timeout(self.timeout)
            .with_timeout(self.timeout)
            .with_keep_alive(Duration::from_millis(500), self.timeout)
            .with_keep_alive_while_idle(true);
        let fresh = tokio::time::timeout(self.timeout, Client::connect(&self.endpoints, Some(opts)))
            .await
            .map_err(|_| unavailable("connect timed out"))?
            .map_err(unavailable)?;
        *c = Some(fresh.clone());
        Ok(fresh)
    }
}

impl ClusterProvider for EtcdProvider {
    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<i64, ProviderError>> {
        Box::pin(async move {
            let secs = ttl.as_secs_f64().ceil().max(1.0) as i64;
            let r = self.client().await?.lease_grant(secs, None).await.map_err(unavailable)?;
            Ok(r.id())
        })
    }

    fn register<'a>(
        &'a self,
        cluster: &'a str,
        member: &'a Member,
        lease: i64,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let key = format!("{}{}", members_prefix(cluster), member.id);
            let opts = PutOptions::new().with_lease(lease);
            match self.client().await?.put(key, member.encode(), Some(opts)).await {
                Ok(_) => Ok(()),
                Err(e) if e.to_string().contains("lease not found") => Err(ProviderError::LeaseExpired),
                Err(e) => Err(unavailable(e)),
            }
        })
    }

    fn keep_alive(&self, lease: i64) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let mut ka = self.keep_alive.lock().await;
            if ka.as_ref().is_none_or(|(l, _, _)| *l != lease) {
                let (keeper, stream) =
                    self.client().await?.lease_keep_alive(lease).await.map_err(unavailable)?;
                *ka = Some((lease, keeper, stream));
            } else {
                self.requests.fetch_add(1, Ordering::Relaxed);
            }
            let (_, keeper, stream) = ka.as_mut().expect("set above");
            let outcome = async {
                keeper.keep_alive().await.map_err(unavailable)?;
                match stream.message().await.map_err(unavailable)? {
                    Some(r) if r.ttl() > 0 => Ok(()),
                    Some(_) => Err(ProviderError::LeaseExpired),
                    None => Err(unavailable("keep-alive stream ended")),
                }
            }
            .await;
            if outcome.is_err() {
                // A fresh stream next time (a stream that failed once is not trusted again).
                *ka = None;
            }
            outcome
        })
    }

    fn revoke(&self, lease: i64) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            self.keep_alive.lock().await.take();
            self.client().await?.lease_revoke(lease).await.map(|_| ()).map_err(unavailable)
        })
    }

    /// In one transaction, marks `/<cluster>/left/<id>` (under the same lease, so it goes with
    /// it) and deletes the member's record; then ends the lease.
    fn leave<'a>(
        &'a self,
        cluster: &'a str,
        id: &'a str,
        lease: i64,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let record = format!("{}{id}", members_prefix(cluster));
            let mark = format!("/{cluster}/left/{id}");
            let txn = Txn::new().when([Compare::lease(record.as_str(), CompareOp::Equal, lease)]).and_then([
                TxnOp::put(mark, lease.to_string(), Some(PutOptions::new().with_lease(lease))),
                TxnOp::delete(record, None),
            ]);
            self.client().await?.txn(txn).await.map_err(unavailable)?;
            self.revoke(lease).await
        })
    }

    fn snapshot<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<Snapshot, ProviderError>> {
        Box::pin(async move {
            let prefix = members_prefix(cluster);
            let r = self.get_prefix(&prefix).await?;
            let revision = r.header().map_or(0, |h| h.revision()) as u64;
            let members = r.kvs().iter().filter_map(|kv| Member::decode(kv.value())).collect();
            // The latest write among the records. A delete after it leaves no trace in a read:
            // the cluster replays the watch from here to find it.
            let epoch = r.kvs().iter().map(|kv| kv.mod_revision() as u64).max().unwrap_or(0);
            Ok(Snapshot { members, revision, epoch })
        })
    }

    fn watch<'a>(
        &'a self,
        cluster: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<Box<dyn MemberWatch>, ProviderError>> {
        Box::pin(async move {
            let opts = WatchOptions::new().with_prefix().with_start_revision(revision as i64 + 1);
            let stream =
                self.client().await?.watch(format!("/{cluster}/"), Some(opts)).await.map_err(unavailable)?;
            Ok(Box::new(EtcdWatch { stream, cluster: cluster.to_string(), left: HashSet::new() })
                as Box<dyn MemberWatch>)
        })
    }

    fn claim<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
        value: &'a [u8],
        lease: i64,
        spec: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<Claimed, ProviderError>> {
        Box::pin(async move {
            let key = format!("{}{name}", names_prefix(cluster));
            let mut puts = vec![TxnOp::put(key.as_str(), value, Some(PutOptions::new().with_lease(lease)))];
            if let Some(spec) = spec {
                puts.push(TxnOp::put(format!("{}{name}", specs_prefix(cluster)), spec, None));
            }
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then(puts)
                .or_else([TxnOp::get(key.as_str(), None)]);
            let r = self.client().await?.txn(txn).await.map_err(|e| lease_or_unavailable(&e))?;
            if r.succeeded() {
                return Ok(Claimed::Won { revision: r.header().map_or(0, |h| h.revision()) as u64 });
            }
            let held = r.op_responses().into_iter().find_map(|op| match op {
                etcd_client::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| name_record(name, kv)),
                _ => None,
            });
            // The compare and the read are one transaction: the holder's record is there.
            held.map(Claimed::Taken)
                .ok_or_else(|| unavailable("a refused claim came without the holder's record"))
        })
    }

    fn claim_all<'a>(
        &'a self,
        cluster: &'a str,
        claims: &'a [(String, Vec<u8>)],
        lease: i64,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, ProviderError>> {
        Box::pin(async move {
            let absent = |k: &str| Compare::create_revision(k, CompareOp::Equal, 0);
            let batches = self.put_batches(cluster, claims, lease, absent).await?;
            let mut out = Vec::with_capacity(claims.len());
            for (chunk, won) in claims.chunks(BATCH).zip(batches) {
                match won {
                    Some(revision) => out.extend(chunk.iter().map(|_| Claimed::Won { revision })),
                    // Some name in the batch is held: each is claimed on its own.
                    None => {
                        for (name, value) in chunk {
                            out.push(self.claim(cluster, name, value, lease, None).await?);
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    fn update_all<'a>(
        &'a self,
        cluster: &'a str,
        names: &'a [(String, Vec<u8>)],
        lease: i64,
    ) -> BoxFuture<'a, Result<Vec<bool>, ProviderError>> {
        Box::pin(async move {
            let held = |k: &str| Compare::lease(k, CompareOp::Equal, lease);
            let batches = self.put_batches(cluster, names, lease, held).await?;
            let mut out = Vec::with_capacity(names.len());
            for (chunk, done) in names.chunks(BATCH).zip(batches) {
                if done.is_some() {
                    out.extend(chunk.iter().map(|_| true));
                    continue;
                }
                // Some name is no longer held so: each on its own.
                for one in chunk.chunks(1) {
                    out.push(self.put_batches(cluster, one, lease, held).await?[0].is_some());
                }
            }
            Ok(out)
        })
    }

    fn release<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
        lease: i64,
        forget: bool,
    ) -> BoxFuture<'a, Result<bool, ProviderError>> {
        Box::pin(async move {
            let key = format!("{}{name}", names_prefix(cluster));
            let mut ops = vec![TxnOp::delete(key.as_str(), None)];
            if forget {
                ops.push(TxnOp::delete(format!("{}{name}", specs_prefix(cluster)), None));
            }
            let txn = Txn::new().when([Compare::lease(key.as_str(), CompareOp::Equal, lease)]).and_then(ops);
            let r = self.client().await?.txn(txn).await.map_err(unavailable)?;
            Ok(r.succeeded())
        })
    }

    fn specs<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<Vec<Spec>, ProviderError>> {
        Box::pin(async move {
            let prefix = specs_prefix(cluster);
            let r = self.get_prefix(&prefix).await?;
            Ok(r.kvs()
                .iter()
                .filter_map(|kv| {
                    let name = std::str::from_utf8(kv.key()).ok()?.strip_prefix(&prefix)?;
                    Some((name.to_string(), kv.value().to_vec()))
                })
                .collect())
        })
    }

    fn names<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<(Vec<NameRecord>, u64), ProviderError>> {
        Box::pin(async move {
            let prefix = names_prefix(cluster);
            let r = self.get_prefix(&prefix).await?;
            let revision = r.header().map_or(0, |h| h.revision()) as u64;
            let names = r
                .kvs()
                .iter()
                .filter_map(|kv| {
                    let name = std::str::from_utf8(kv.key()).ok()?.strip_prefix(&prefix)?;
                    Some(name_record(name, kv))
                })
                .collect();
            Ok((names, revision))
        })
    }

    fn read<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Versioned>, ProviderError>> {
        Box::pin(async move {
            let r = self.client().await?.get(record_key(cluster, key), None).await.map_err(unavailable)?;
            Ok(r.kvs().first().map(|kv| (kv.value().to_vec(), kv.mod_revision() as u64)))
        })
    }

    fn swap<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
        expect: u64,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<u64>, ProviderError>> {
        Box::pin(async move {
            let key = record_key(cluster, key);
            let when = match expect {
                0 => Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
                rev => Compare::mod_revision(key.as_str(), CompareOp::Equal, rev as i64),
            };
            let txn = Txn::new().when([when]).and_then([TxnOp::put(key.as_str(), value, None)]);
            let r = self.client().await?.txn(txn).await.map_err(unavailable)?;
            Ok(r.succeeded().then(|| r.header().map_or(0, |h| h.revision()) as u64))
        })
    }

    fn remove<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, ProviderError>> {
        Box::pin(async move {
            let opts = DeleteOptions::new().with_prev_key();
            let r = self
                .client()
                .await?
                .delete(record_key(cluster, key), Some(opts))
                .await
                .map_err(unavailable)?;
            Ok(r.prev_kvs().first().map(|kv| kv.value().to_vec()))
        })
    }

    fn watch_names<'a>(
        &'a self,
        cluster: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<Box<dyn NameWatch>, ProviderError>> {
        Box::pin(async move {
            let prefix = names_prefix(cluster);
            let opts = WatchOptions::new().with_prefix().with_start_revision(revision as i64 + 1);
            let stream =
                self.client().await?.watch(prefix.as_str(), Some(opts)).await.map_err(unavailable)?;
            Ok(Box::new(EtcdNameWatch { stream, prefix }) as Box<dyn NameWatch>)
        })
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The registry record of `name` held in `kv`.
fn name_record(name: &str, kv: &etcd_client::KeyValue) -> NameRecord {
    NameRecord {
        name: name.to_string(),
        value: kv.value().to_vec(),
        lease: kv.lease(),
        revision: kv.create_revision() as u64,
    }
}

/// A failed claim: `LeaseExpired` when etcd says the lease is gone, else unavailable.
fn lease_or_unavailable(e: &etcd_client::Error) -> ProviderError {
    if e.to_string().contains("requested lease not found") {
        ProviderError::LeaseExpired
    } else {
        unavailable(e)
    }
}

/// The next response of a watch that can go on: a compacted start revision, a cancelled watch
/// or its end (etcd gone, leader lost) fail it.
async fn next_response(stream: &mut WatchStream) -> Result<etcd_client::WatchResponse, ProviderError> {
    let r = match stream.message().await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(unavailable("watch ended")),
        Err(e) => return Err(unavailable(e)),
    };
    if r.compact_revision() > 0 {
        return Err(ProviderError::Compacted);
    }
    if r.canceled() {
        return Err(unavailable(format!("watch cancelled: {}", r.cancel_reason())));
    }
    Ok(r)
}

struct EtcdNameWatch {
    stream: WatchStream,
    prefix: String,
}

impl NameWatch for EtcdNameWatch {
    fn next(&mut self) -> BoxFuture<'_, Result<Vec<(NameChange, u64)>, ProviderError>> {
        Box::pin(async move {
            loop {
                let r = next_response(&mut self.stream).await?;
                let mut out = Vec::new();
                for ev in r.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let Some(name) =
                        std::str::from_utf8(kv.key()).ok().and_then(|k| k.strip_prefix(&self.prefix))
                    else {
                        continue;
                    };
                    let rev = kv.mod_revision() as u64;
                    let change = match ev.event_type() {
                        EventType::Put => NameChange::Put(name_record(name, kv)),
                        EventType::Delete => NameChange::Delete { name: name.to_string() },
                    };
                    out.push((change, rev));
                }
                if !out.is_empty() {
                    return Ok(out);
                }
            }
        })
    }
}

struct EtcdWatch {
    stream: WatchStream,
    cluster: String,
    /// Members whose leave mark was seen (their next delete is a leave, not an expiry).
    left: HashSet<String>,
}

impl MemberWatch for EtcdWatch {
    fn next(&mut self) -> BoxFuture<'_, Result<Vec<(MemberChange, u64)>, ProviderError>> {
        Box::pin(async move {
            let members = members_prefix(&self.cluster);
            let marks = format!("/{}/left/", self.cluster);
            loop {
                let r = next_response(&mut self.stream).await?;
                let mut out = Vec::new();
                for ev in r.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let key = String::from_utf8_lossy(kv.key());
                    let rev = kv.mod_revision() as u64;
                    if let Some(id) = key.strip_prefix(&marks) {
                        if ev.event_type() == EventType::Put {
                            self.left.insert(id.to_string());
                        }
                        continue;
                    }
                    let Some(id) = key.strip_prefix(&members) else { continue };
                    match ev.event_type() {
                        EventType::Put => {
                            self.left.remove(id);
                            if let Some(m) = Member::decode(kv.value()) {
                                out.push((MemberChange::Put(m), rev));
                            }
                        }
                        EventType::Delete => {
                            let expired = !self.left.remove(id);
                            out.push((MemberChange::Delete { id: id.to_string(), expired }, rev));
                        }
                    }
                }
                if !out.is_empty() {
                    return Ok(out);
                }
            }
        })
    }
}
