//! Names for actors, unique per runtime. A slow-path map behind a read-write lock; an actor's
//! names are removed when it stops.

use crate::error::RegisterError;
use crate::id::ActorId;
use parking_lot::RwLock;
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Default)]
pub(crate) struct Registry {
    maps: RwLock<Maps>,
    names: AtomicUsize,
}

#[derive(Default)]
struct Maps {
    by_name: HashMap<String, (ActorId, TypeId)>,
    by_id: HashMap<ActorId, Vec<String>>,
}

impl Registry {
    pub(crate) fn register(&self, name: &str, id: ActorId, ty: TypeId) -> Result<(), RegisterError> {
        let mut m = self.maps.write();
        if m.by_name.contains_key(name) {
            return Err(RegisterError::Taken(name.to_string()));
        }
        m.by_name.insert(name.to_string(), (id, ty));
        m.by_id.entry(id).or_default().push(name.to_string());
        self.names.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<(ActorId, TypeId)> {
        self.maps.read().by_name.get(name).copied()
    }

    pub(crate) fn unregister(&self, name: &str) -> bool {
        let mut m = self.maps.write();
        let Some((id, _)) = m.by_name.remove(name) else { return false };
        if let Some(v) = m.by_id.get_mut(&id) {
            v.retain(|n| n != name);
            if v.is_empty() {
                m.by_id.remove(&id);
            }
        }
        self.names.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Drops every name of a stopped actor. Free when no names are registered at all.
    pub(crate) fn remove_actor(&self, id: ActorId) {
        if self.names.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut m = self.maps.write();
        if let Some(names) = m.by_id.remove(&id) {
            for n in &names {
                m.by_name.remove(n);
            }
            self.names.fetch_sub(names.len(), Ordering::Relaxed);
        }
    }
}
