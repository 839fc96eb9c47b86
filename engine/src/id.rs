//! Actor identity: which shard, which slot of its slab, which generation of that slot.

use std::fmt;

const SHARD_BITS: u32 = 12;
const SLOT_BITS: u32 = 26;
const GEN_BITS: u32 = 26;
pub(crate) const MAX_SHARDS: usize = 1 << SHARD_BITS;
pub(crate) const MAX_SLOTS: u32 = 1 << SLOT_BITS;
pub(crate) const GEN_MASK: u32 = (1 << GEN_BITS) - 1;

/// Identity of one actor incarnation: shard, slab slot and generation packed in 64 bits.
///
/// A slot is reused after its actor stops, with the next generation, so an id of a stopped
/// actor never reaches its successor: messages to it become dead letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId(u64);

impl ActorId {
    pub(crate) fn new(shard: usize, slot: u32, gen: u32) -> Self {
        debug_assert!(shard < MAX_SHARDS && slot < MAX_SLOTS && gen <= GEN_MASK);
        Self(((shard as u64) << (SLOT_BITS + GEN_BITS)) | ((slot as u64) << GEN_BITS) | gen as u64)
    }
    /// The shard the actor lives on.
    pub fn shard(self) -> usize {
        (self.0 >> (SLOT_BITS + GEN_BITS)) as usize
    }
    pub(crate) fn slot(self) -> u32 {
        ((self.0 >> GEN_BITS) as u32) & (MAX_SLOTS - 1)
    }
    pub(crate) fn gen(self) -> u32 {
        (self.0 as u32) & GEN_MASK
    }
    /// The packed form (stable within one runtime).
    pub fn as_u64(self) -> u64 {
        self.0
    }
    pub(crate) fn from_u64(v: u64) -> Self {
        Self(v)
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorId({}/{}#{})", self.shard(), self.slot(), self.gen())
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}#{}", self.shard(), self.slot(), self.gen())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn packs_and_unpacks() {
        let id = ActorId::new(MAX_SHARDS - 1, MAX_SLOTS - 1, GEN_MASK);
        assert_eq!((id.shard(), id.slot(), id.gen()), (MAX_SHARDS - 1, MAX_SLOTS - 1, GEN_MASK));
        let id = ActorId::new(3, 17, 5);
        assert_eq!((id.shard(), id.slot(), id.gen()), (3, 17, 5));
        assert_eq!(ActorId::from_u64(id.as_u64()), id);
    }
}
