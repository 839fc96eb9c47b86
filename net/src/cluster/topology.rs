//! A topology: the member set at one epoch and, per grain kind, the owner of each partition.
//! Immutable; a member replaces its current one when the member set changes.

use super::partitions::Table;
use super::provider::Member;
use std::collections::HashMap;
use std::net::SocketAddr;

/// One kind's candidates and partition table.
#[derive(Debug)]
struct KindTable {
    kind: String,
    candidates: Vec<usize>,
    numbers: Vec<u32>,
    table: Table,
}

/// The member set at an epoch, with the partition tables computed from it.
#[derive(Debug, Default)]
pub(crate) struct Topology {
    pub(crate) epoch: u64,
    /// Sorted by id.
    pub(crate) members: Vec<Member>,
    /// This member's index in `members`, when it is one.
    pub(crate) me: Option<usize>,
    /// Per kind: the candidates (indices into `members`), the kind's number in each
    /// candidate's record (see [`kind_number`]) and their table. Few kinds: a list searched in
    /// order is faster than hashing the kind per message.
    tables: Vec<KindTable>,
}

impl Topology {
    pub(crate) fn new(epoch: u64, mut members: Vec<Member>, me: &str) -> Self {
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members.dedup_by(|a, b| a.id == b.id);
        let mut kinds: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, m) in members.iter().enumerate() {
            for k in &m.kinds {
                kinds.entry(k.as_str()).or_default().push(i);
            }
        }
        let tables = kinds
            .into_iter()
            .filter_map(|(k, c)| {
                let ids: Vec<&str> = c.iter().map(|i| members[*i].id.as_str()).collect();
                let numbers = c.iter().map(|i| kind_number(&members[*i], k)).collect();
                Table::compute(&ids).map(|table| KindTable {
                    kind: k.to_string(),
                    candidates: c,
                    numbers,
                    table,
                })
            })
            .collect();
        let me = members.iter().position(|m| m.id == me);
        Topology { epoch, members, me, tables }
    }

    fn table(&self, kind: &str) -> Option<&KindTable> {
        self.tables.iter().find(|t| t.kind == kind)
    }

    /// The member that owns `partition` of `kind`, if any member hosts the kind.
    pub(crate) fn owner(&self, kind: &str, partition: u16) -> Option<&Member> {
        self.owner_index(kind, partition).map(|i| &self.members[i])
    }

    /// The owner's index in `members`.
    pub(crate) fn owner_index(&self, kind: &str, partition: u16) -> Option<usize> {
        self.owner_route(kind, partition).map(|(i, _)| i)
    }

    /// The owner's index in `members`, and the kind's number in its record.
    pub(crate) fn owner_route(&self, kind: &str, partition: u16) -> Option<(usize, u32)> {
        let t = self.table(kind)?;
        let c = t.table.owner(partition);
        Some((t.candidates[c], t.numbers[c]))
    }

    /// Whether this member owns `partition` of `kind`.
    pub(crate) fn owns(&self, kind: &str, partition: u16) -> bool {
        match (self.me, self.table(kind)) {
            (Some(me), Some(t)) => t.candidates[t.table.owner(partition)] == me,
            _ => false,
        }
    }

    pub(crate) fn member(&self, id: &str) -> Option<&Member> {
        self.members.binary_search_by(|m| m.id.as_str().cmp(id)).ok().map(|i| &self.members[i])
    }

    pub(crate) fn by_addr(&self, addr: SocketAddr) -> Option<&Member> {
        self.members.iter().find(|m| m.addr == addr)
    }

    /// The other members.
    pub(crate) fn others(&self) -> impl Iterator<Item = &Member> {
        let me = self.me;
        self.members.iter().enumerate().filter(move |(i, _)| Some(*i) != me).map(|(_, m)| m)
    }

    /// The partitions of `kind` this member owns here but did not own in `before`.
    pub(crate) fn gained(&self, before: &Topology, kind: &str) -> Vec<u16> {
        (0..super::partitions::PARTITIONS as u16)
            .filter(|p| self.owns(kind, *p) && !before.owns(kind, *p))
            .collect()
    }
}

/// How a sender names `kind` to member `m`: 1 + its position in the member's (sorted) list of
/// kinds, or 0 (by name) when it is not there.
pub(crate) fn kind_number(m: &Member, kind: &str) -> u32 {
    m.kinds.binary_search_by(|k| k.as_str().cmp(kind)).map_or(0, |i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, port: u16, kinds: &[&str]) -> Member {
        Member {
            id: id.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            incarnation: 1,
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            roles: vec![],
            actor_kinds: vec![],
        }
    }

    #[test]
    fn only_members_hosting_a_kind_own_its_partitions() {
        let t = Topology::new(
            5,
            vec![member("b", 2, &["account"]), member("a", 1, &["account", "cart"]), member("c", 3, &[])],
            "a",
        );
        for p in 0..271 {
            assert_ne!(t.owner("account", p).unwrap().id, "c");
            assert_eq!(t.owner("cart", p).unwrap().id, "a");
            assert!(t.owns("cart", p));
        }
        assert!(t.owner("nothing", 0).is_none());
        assert_eq!(t.others().count(), 2);
        assert_eq!(t.member("b").unwrap().addr.port(), 2);
    }

    #[test]
    fn a_newcomer_gains_about_its_share_and_the_others_only_lose() {
        let before = Topology::new(1, vec![member("a", 1, &["k"]), member("b", 2, &["k"])], "c");
        let after = Topology::new(
            2,
            vec![member("a", 1, &["k"]), member("b", 2, &["k"]), member("c", 3, &["k"])],
            "c",
        );
        let gained = after.gained(&before, "k");
        assert!((85..=95).contains(&gained.len()), "{}", gained.len());
    }
}
