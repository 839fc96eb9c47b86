//! Cluster singletons: one actor of a kind, under a name, running on one member of the whole
//! cluster (optionally among members with a role), moved to a survivor when its member dies or
//! leaves.
//!
//! A singleton is a named actor ([`Cluster::spawn_named`]) with three differences: it always
//! relocates; its member is the candidate its name's hash picks (so every member that asks for
//! it at start asks the same member, and after a failure the survivors agree at once); and a
//! spawn that finds it running answers with it instead of `NameTaken`, so every member may
//! call [`Cluster::spawn_singleton`] when it starts.
//!
//! **Never two at once.** The name is a key bound to the host's lease: a second instance can
//! be spawned only after the first one's lease has ended in the store. The first instance
//! handles messages only while its member may serve ([`Lease`](corelane::Lease): the send time
//! of its last acknowledged renewal plus the TTL minus a margin, which ends before the store's
//! TTL does): a member frozen (SIGSTOP) or cut off past that deadline handles nothing more when
//! it thaws, not even what it had queued (those messages are `LeaseLost` dead letters), and
//! its instance is killed.

use super::named::SpawnNamed;
use super::Cluster;
use crate::error::{ErrorCode, RemoteAskError};
use crate::remote_ref::{RemoteAsk, RemoteRef};
use std::future::IntoFuture;
use std::time::{Duration, Instant};

/// A singleton being spawned ([`Cluster::spawn_singleton`]): set its role, then
/// [`wait`](SpawnSingleton::wait) or await it.
#[must_use = "nothing is spawned until it is awaited or waited on"]
pub struct SpawnSingleton(SpawnNamed);

impl SpawnSingleton {
    /// Only members with this role are candidates.
    pub fn role(self, role: impl Into<String>) -> Self {
        SpawnSingleton(self.0.role(role))
    }

    /// How long to wait (the runtime's ask timeout unless set).
    pub fn timeout(self, d: Duration) -> Self {
        SpawnSingleton(self.0.timeout(d))
    }

    /// Blocks until the singleton runs (spawned now, or found running) or the spawn failed. On
    /// a shard thread it fails with `WouldBlock`: await it there.
    ///
    /// # Errors
    /// `Refused(UnknownKind)` when no member is a candidate; what a remote spawn fails with
    /// otherwise.
    pub fn wait(self) -> Result<RemoteRef, RemoteAskError> {
        self.into_future().wait()
    }
}

impl IntoFuture for SpawnSingleton {
    type Output = Result<RemoteRef, RemoteAskError>;
    type IntoFuture = RemoteAsk<RemoteRef>;
    fn into_future(self) -> Self::IntoFuture {
        self.0.into_future()
    }
}

impl Cluster {
    /// Makes sure one actor of `kind` runs under `name` in the whole cluster: spawns it on the
    /// member its name's hash picks among those whose node registered the kind, or answers
    /// with it if it runs already. It moves to a survivor when its member dies (within the TTL
    /// and a pass of relocation) or leaves (stopped first, then spawned again).
    pub fn spawn_singleton(&self, name: impl Into<String>, kind: impl Into<String>) -> SpawnSingleton {
        let mut s = self.spawn_named(name, kind).relocate(true);
        s.singleton = true;
        SpawnSingleton(s)
    }

    /// Whether named actor or singleton `name` runs on this member now (for a singleton: this
    /// member is its leader).
    pub fn is_host_of(&self, name: &str) -> bool {
        self.host_of(name).is_some_and(|h| h == self.inner.id)
    }
}

/// The singleton `name`, once this member's copy of the registry shows it (it was claimed by
/// another spawn: the claim is on its way here).
pub(super) async fn running(cluster: &Cluster, name: &str) -> Result<RemoteRef, RemoteAskError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    super::by_name::find(&cluster.inner, name, deadline, || false, None).await.ok_or_else(|| {
        RemoteAskError::Refused {
            code: ErrorCode::NameTaken,
            detail: format!("singleton {name:?} is held but this member does not see where"),
        }
    })
}
