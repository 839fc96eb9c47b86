//! Where membership is kept: the [`ClusterProvider`] trait, the member record, and what a
//! watch reports.
//!
//! A provider is a store of keys with leases and a watch, in the shape of etcd v3: a member
//! writes its record under a lease it keeps alive; when the lease ends (the member stopped
//! renewing it, or revoked it when leaving), the store deletes the record. Every change has a
//! revision, increasing across the store; the revision of the latest change of the member set
//! is the cluster's topology epoch.
//!
//! The same store keeps the cluster's **registry of names** (`/<cluster>/names/<name>`): a
//! name is claimed by creating its key only if it does not exist, under the claimant's lease,
//! so a name has one holder cluster-wide and frees itself when its holder's lease ends. Beside
//! a name that should outlive its holder, a **spec** (`/<cluster>/specs/<name>`, bound to no
//! lease) says how to spawn it again: the survivors relocate the names whose spec has no
//! holder. Beside these, **records** (`/<cluster>/records/<key>`, bound to no lease) are
//! written by compare-and-swap on their revision (the cluster's schedules keep their
//! definition and their last tick there).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, as the provider's methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A member of the cluster, as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Unique in the cluster (by default the node's advertised address).
    pub id: String,
    /// Where other members reach its node.
    pub addr: SocketAddr,
    /// Its node's incarnation.
    pub incarnation: u64,
    /// The grain kinds it hosts (sorted).
    pub kinds: Vec<String>,
    /// Its roles (sorted).
    pub roles: Vec<String>,
    /// The actor kinds its node registered, candidates for named actors (sorted).
    pub actor_kinds: Vec<String>,
}

impl Member {
    /// The record as stored (a protobuf `corelane.cluster.v1.Member`).
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message;
        corelane_proto::cluster_v1::Member {
            id: self.id.clone(),
            address: self.addr.to_string(),
            incarnation: self.incarnation,
            kinds: self.kinds.clone(),
            roles: self.roles.clone(),
            actor_kinds: self.actor_kinds.clone(),
        }
        .encode_to_vec()
    }

    /// A stored record; `None` when it does not decode or its address does not parse.
    pub fn decode(bytes: &[u8]) -> Option<Member> {
        use prost::Message;
        let m = corelane_proto::cluster_v1::Member::decode(bytes).ok()?;
        Some(Member {
            id: m.id,
            addr: m.address.parse().ok()?,
            incarnation: m.incarnation,
            kinds: m.kinds,
            roles: m.roles,
            actor_kinds: m.actor_kinds,
        })
    }
}

/// A change of the member set, at a store revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// A member registered (or wrote its record again under a new lease).
    Put(Member),
    /// A member's record is gone: it left, or its lease expired.
    Delete {
        /// The member's id.
        id: String,
        /// Whether its lease expired (rather than being revoked when it left), when the store
        /// can tell.
        expired: bool,
    },
}

/// The member set at a revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The members, in no particular order.
    pub members: Vec<Member>,
    /// The store's revision when it was read.
    pub revision: u64,
    /// The revision of the latest write among the records (0 when there are none): where the
    /// member set's history must be replayed from to find the latest change (a delete after
    /// it leaves no record to read).
    pub epoch: u64,
}

/// What a provider's operations can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The store could not be reached, or did not answer in time.
    #[error("membership store unavailable: {0}")]
    Unavailable(String),
    /// The lease is gone (expired or revoked).
    #[error("lease expired")]
    LeaseExpired,
    /// The watch cannot resume from the revision asked for (compacted): read a snapshot again.
    #[error("watch revision compacted")]
    Compacted,
}

/// A store of member records with leases and a watch (etcd v3 in production; an in-memory one
/// for unit tests). Object-safe: the cluster holds it as `Arc<dyn ClusterProvider>`.
///
/// Each method makes (at most) one request of the store; [`ClusterProvider::requests`] counts
/// them, so a caller can show that routing messages costs none.
pub trait ClusterProvider: Send + Sync + 'static {
    /// Grants a lease of `ttl`; its id.
    fn grant(&self, ttl: Duration) -> BoxFuture<'_, Result<i64, ProviderError>>;
    /// Writes `member`'s record in `cluster` under `lease`.
    fn register<'a>(
        &'a self,
        cluster: &'a str,
        member: &'a Member,
        lease: i64,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
    /// Renews `lease`, answering once the store has renewed it (the caller times the wait).
    /// `LeaseExpired` when it is gone.
    fn keep_alive(&self, lease: i64) -> BoxFuture<'_, Result<(), ProviderError>>;
    /// Ends `lease`; the records under it go.
    fn revoke(&self, lease: i64) -> BoxFuture<'_, Result<(), ProviderError>>;
    /// Leaves `cluster` gracefully: deletes `id`'s record so that watchers see a leave (not an
    /// expiry) where the store can tell them apart, and ends `lease`. By default, just ends the
    /// lease.
    fn leave<'a>(
        &'a self,
        cluster: &'a str,
        id: &'a str,
        lease: i64,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        let _ = (cluster, id);
        self.revoke(lease)
    }
    /// The members of `cluster` now.
    fn snapshot<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<Snapshot, ProviderError>>;
    /// The changes of `cluster`'s member set after `revision`, in order, each with its
    /// revision. A watch that cannot go on (the store is gone, or lost its leader) fails
    /// rather than waiting silently.
    fn watch<'a>(
        &'a self,
        cluster: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<Box<dyn MemberWatch>, ProviderError>>;
    /// Claims `name` in `cluster`'s registry under `lease`, writing `value`, if nobody holds
    /// it (one atomic create-if-absent): [`Claimed::Won`], or [`Claimed::Taken`] with the
    /// holder's record. With `spec`, a won claim also writes the name's spec (in the same
    /// transaction). `LeaseExpired` when the lease is gone.
    fn claim<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
        value: &'a [u8],
        lease: i64,
        spec: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<Claimed, ProviderError>>;
    /// Claims several names under `lease` (no specs), each as [`claim`] does; the outcomes in
    /// order. A store that can batches them (etcd: one transaction per hundred names while none
    /// is taken); by default, one claim each.
    ///
    /// [`claim`]: ClusterProvider::claim
    fn claim_all<'a>(
        &'a self,
        cluster: &'a str,
        claims: &'a [(String, Vec<u8>)],
        lease: i64,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, ProviderError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(claims.len());
            for (name, value) in claims {
                out.push(self.claim(cluster, name, value, lease, None).await?);
            }
            Ok(out)
        })
    }
    /// Rewrites the values of names held under `lease` (a claim's placeholder, completed once
    /// its actor runs); for each, whether it was held so. A store that can batches them (etcd:
    /// one transaction per hundred names while all are held).
    fn update_all<'a>(
        &'a self,
        cluster: &'a str,
        names: &'a [(String, Vec<u8>)],
        lease: i64,
    ) -> BoxFuture<'a, Result<Vec<bool>, ProviderError>>;
    /// Releases `name` if it is held under `lease`; whether it was. With `forget`, its spec
    /// goes too (in the same transaction): nobody spawns it again.
    fn release<'a>(
        &'a self,
        cluster: &'a str,
        name: &'a str,
        lease: i64,
        forget: bool,
    ) -> BoxFuture<'a, Result<bool, ProviderError>>;
    /// The specs of `cluster` (name → spec), as written by won claims and not forgotten.
    fn specs<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<Vec<Spec>, ProviderError>>;
    /// The names held in `cluster` now, and the store's revision when they were read.
    fn names<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<(Vec<NameRecord>, u64), ProviderError>>;
    /// The changes of `cluster`'s registry after `revision`, in order (as [`watch`] for
    /// members).
    ///
    /// [`watch`]: ClusterProvider::watch
    fn watch_names<'a>(
        &'a self,
        cluster: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, Result<Box<dyn NameWatch>, ProviderError>>;
    /// Reads record `/<cluster>/records/<key>` (bound to no lease): its value and the revision
    /// of its last write, or `None` when there is none.
    fn read<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Versioned>, ProviderError>>;
    /// Writes record `key` only if the revision of its last write is `expect` (0: only if there
    /// is none), as one atomic compare-and-swap: the new revision, or `None` when the record
    /// was not at `expect` (someone else wrote or removed it).
    fn swap<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
        expect: u64,
        value: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<u64>, ProviderError>>;
    /// Removes record `key`; the value it had (`None`: there was none).
    fn remove<'a>(
        &'a self,
        cluster: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, ProviderError>>;
    /// Requests made of the store so far (every method above counts one).
    fn requests(&self) -> u64;
}

/// A record's value and the store revision of its last write.
pub type Versioned = (Vec<u8>, u64);

/// A name's spec: the name, and how to spawn it again (opaque to the store).
pub type Spec = (String, Vec<u8>);

/// A name in a cluster's registry, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRecord {
    /// The name.
    pub name: String,
    /// What the holder wrote (opaque to the store).
    pub value: Vec<u8>,
    /// The lease it is held under.
    pub lease: i64,
    /// The store revision that created it.
    pub revision: u64,
}

/// The outcome of [`ClusterProvider::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The name is now held under the claimant's lease, since this revision.
    Won {
        /// The revision of the claim.
        revision: u64,
    },
    /// Someone holds it already.
    Taken(NameRecord),
}

/// A change in a cluster's registry, at a store revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameChange {
    /// A name was claimed.
    Put(NameRecord),
    /// A name was released, or its holder's lease ended.
    Delete {
        /// The name.
        name: String,
    },
}

/// The changes a [`ClusterProvider::watch_names`] reports.
pub trait NameWatch: Send {
    /// The next changes, each with its revision.
    fn next(&mut self) -> BoxFuture<'_, Result<Vec<(NameChange, u64)>, ProviderError>>;
}

/// The changes a [`ClusterProvider::watch`] reports.
pub trait MemberWatch: Send {
    /// The next changes, each with its revision.
    fn next(&mut self) -> BoxFuture<'_, Result<Vec<(MemberChange, u64)>, ProviderError>>;
}

/// The key prefix of `cluster`'s registry of names.
pub(crate) fn names_prefix(cluster: &str) -> String {
    format!("/{cluster}/names/")
}

/// The key prefix of `cluster`'s specs of names to spawn again.
pub(crate) fn specs_prefix(cluster: &str) -> String {
    format!("/{cluster}/specs/")
}

/// The key of `cluster`'s record `key`.
pub(crate) fn record_key(cluster: &str, key: &str) -> String {
    format!("/{cluster}/records/{key}")
}

/// The key prefix of `cluster`'s member records.
pub(crate) fn members_prefix(cluster: &str) -> String {
    format!("/{cluster}/members/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_record_round_trips_and_garbage_is_refused() {
        let m = Member {
            id: "a".into(),
            addr: "127.0.0.1:9".parse().unwrap(),
            incarnation: 7,
            kinds: vec!["account".into()],
            roles: vec!["edge".into()],
            actor_kinds: vec!["ledger".into()],
        };
        assert_eq!(Member::decode(&m.encode()), Some(m));
        assert_eq!(Member::decode(b"\xff\xff\xff"), None);
    }
}
