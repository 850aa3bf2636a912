//! Ring state shared by every ring: the ordered member list, clockwise
//! successor/predecessor, and reconfiguration to a new member list.
//!
//! Cartouche (the token travels clockwise) and Ouroboros (chains follow ring
//! order) both use this one implementation.

use alloc::vec::Vec;

use crate::contract::NodeId;

/// How members are placed around the ring.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Placement {
    /// Clockwise order is the order of node ids.
    ById,
    /// Clockwise order is the order of each node's XXH3 position (the same
    /// hash Ankh uses), ties broken by id. Spreads neighbours pseudo-randomly.
    ByHash,
}

/// What [`RingOrder::reconfigure`] changed.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct MembershipChange<I> {
    /// Members that were added, in clockwise order.
    pub joined: Vec<I>,
    /// Members that were removed, in their former clockwise order.
    pub left: Vec<I>,
}

impl<I> MembershipChange<I> {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty()
    }
}

/// An ordered set of members arranged clockwise on a ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingOrder<I> {
    placement: Placement,
    /// Sorted by (position, id); `position` is 0 for [`Placement::ById`].
    entries: Vec<(u64, I)>,
}

impl<I: NodeId> RingOrder<I> {
    /// An empty ring with the given placement.
    pub fn new(placement: Placement) -> Self {
        RingOrder {
            placement,
            entries: Vec::new(),
        }
    }

    /// A ring holding `members` (duplicates are ignored).
    pub fn with_members(placement: Placement, members: impl IntoIterator<Item = I>) -> Self {
        let mut r = RingOrder::new(placement);
        for m in members {
            r.insert(m);
        }
        r
    }

    /// The placement rule.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    fn key_of(&self, id: &I) -> u64 {
        match self.placement {
            Placement::ById => 0,
            Placement::ByHash => id.placement_hash(),
        }
    }

    /// Index of the first entry at or after `(key, id)`.
    fn lower_bound(&self, key: u64, id: &I) -> usize {
        self.entries.partition_point(|(k, m)| (*k, m) < (key, id))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the ring has no member.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Members in clockwise order starting from the lowest position.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &I> + Clone + '_ {
        self.entries.iter().map(|(_, m)| m)
    }

    /// The member at clockwise index `i` (wrapping).
    pub fn get(&self, i: usize) -> Option<&I> {
        if self.entries.is_empty() {
            None
        } else {
            Some(&self.entries[i % self.entries.len()].1)
        }
    }

    /// Clockwise index of `id`, if it is a member.
    pub fn index_of(&self, id: &I) -> Option<usize> {
        let key = self.key_of(id);
        let i = self.lower_bound(key, id);
        match self.entries.get(i) {
            Some((k, m)) if *k == key && m == id => Some(i),
            _ => None,
        }
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: &I) -> bool {
        self.index_of(id).is_some()
    }

    /// Add `id`; returns false if it was already a member.
    pub fn insert(&mut self, id: I) -> bool {
        let key = self.key_of(&id);
        let i = self.lower_bound(key, &id);
        if matches!(self.entries.get(i), Some((k, m)) if *k == key && *m == id) {
            return false;
        }
        self.entries.insert(i, (key, id));
        true
    }

    /// Remove `id`; returns false if it was not a member.
    pub fn remove(&mut self, id: &I) -> bool {
        match self.index_of(id) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    /// Replace the member list with `members` and report who joined and who
    /// left.
    pub fn reconfigure(&mut self, members: impl IntoIterator<Item = I>) -> MembershipChange<I> {
        let new = RingOrder::with_members(self.placement, members);
        let joined = new
            .members()
            .filter(|m| !self.contains(m))
            .cloned()
            .collect();
        let left = self
            .members()
            .filter(|m| !new.contains(m))
            .cloned()
            .collect();
        *self = new;
        MembershipChange { joined, left }
    }

    /// The first member strictly clockwise of `id`'s position. `id` need not
    /// be a member (a node that left still has a well-defined successor).
    /// Returns `id`'s own entry only if it is the sole member.
    pub fn successor(&self, id: &I) -> Option<&I> {
        self.nth_successor(id, 1)
    }

    /// The first member strictly counter-clockwise of `id`'s position.
    pub fn predecessor(&self, id: &I) -> Option<&I> {
        if self.entries.is_empty() {
            return None;
        }
        let n = self.entries.len();
        let key = self.key_of(id);
        let i = self.lower_bound(key, id);
        Some(&self.entries[(i + n - 1) % n].1)
    }

    /// The `n`-th member clockwise of `id` (`n = 1` is the successor).
    pub fn nth_successor(&self, id: &I, n: usize) -> Option<&I> {
        if self.entries.is_empty() || n == 0 {
            return None;
        }
        let len = self.entries.len();
        let key = self.key_of(id);
        let i = self.lower_bound(key, id);
        let is_member = matches!(self.entries.get(i), Some((k, m)) if *k == key && m == id);
        // For a member, index i is itself: step n. Otherwise i is already the
        // first clockwise member: step n - 1.
        let start = if is_member { i + n } else { i + n - 1 };
        Some(&self.entries[start % len].1)
    }

    /// The `n`-th member counter-clockwise of `id` (`n = 1` is the
    /// predecessor).
    pub fn nth_predecessor(&self, id: &I, n: usize) -> Option<&I> {
        if self.entries.is_empty() || n == 0 {
            return None;
        }
        let len = self.entries.len();
        let key = self.key_of(id);
        let i = self.lower_bound(key, id);
        // Whether or not `id` is a member, index i - 1 is the first member
        // counter-clockwise of it.
        Some(&self.entries[(i + len * n - n) % len].1)
    }

    /// The other members clockwise after `id`, each once, wrapping around
    /// (excludes `id`).
    pub fn walk_from<'a>(&'a self, id: &'a I) -> impl Iterator<Item = &'a I> + 'a {
        let len = self.entries.len();
        let key = self.key_of(id);
        let i = self.lower_bound(key, id);
        let is_member = matches!(self.entries.get(i), Some((k, m)) if *k == key && m == id);
        let start = if is_member { i + 1 } else { i };
        let count = if is_member { len - 1 } else { len };
        (0..count).map(move |j| &self.entries[(start + j) % len].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn successor_and_predecessor_wrap() {
        let r = RingOrder::with_members(Placement::ById, [30u64, 10, 20]);
        assert_eq!(r.members().copied().collect::<Vec<_>>(), vec![10, 20, 30]);
        assert_eq!(r.successor(&10), Some(&20));
        assert_eq!(r.successor(&30), Some(&10));
        assert_eq!(r.predecessor(&10), Some(&30));
        assert_eq!(r.predecessor(&20), Some(&10));
        // non-members have well-defined neighbours
        assert_eq!(r.successor(&25), Some(&30));
        assert_eq!(r.predecessor(&25), Some(&20));
        assert_eq!(r.nth_successor(&10, 2), Some(&30));
        assert_eq!(r.nth_successor(&10, 3), Some(&10));
        assert_eq!(r.nth_predecessor(&10, 1), Some(&30));
        assert_eq!(r.nth_predecessor(&10, 2), Some(&20));
        assert_eq!(r.nth_predecessor(&25, 1), Some(&20));
        assert_eq!(r.nth_predecessor(&25, 2), Some(&10));
    }

    #[test]
    fn sole_member_is_its_own_successor_and_empty_ring_has_none() {
        let r = RingOrder::with_members(Placement::ByHash, [7u64]);
        assert_eq!(r.successor(&7), Some(&7));
        let e: RingOrder<u64> = RingOrder::new(Placement::ById);
        assert_eq!(e.successor(&1), None);
        assert_eq!(e.walk_from(&1).count(), 0);
    }

    #[test]
    fn reconfigure_reports_joins_and_leaves() {
        let mut r = RingOrder::with_members(Placement::ById, [1u64, 2, 3]);
        let change = r.reconfigure([2, 3, 4, 5]);
        assert_eq!(change.joined, vec![4, 5]);
        assert_eq!(change.left, vec![1]);
        assert!(r.reconfigure([2, 3, 4, 5]).is_empty());
    }

    #[test]
    fn walk_visits_everyone_else_once_in_clockwise_order() {
        let r = RingOrder::with_members(Placement::ByHash, 0u64..20);
        for m in r.members() {
            let walked: Vec<u64> = r.walk_from(m).copied().collect();
            assert_eq!(walked.len(), 19);
            assert!(!walked.contains(m));
            assert_eq!(walked[0], *r.successor(m).unwrap());
            assert_eq!(*walked.last().unwrap(), *r.predecessor(m).unwrap());
        }
    }

    #[test]
    fn insert_remove_are_idempotent() {
        let mut r = RingOrder::new(Placement::ByHash);
        assert!(r.insert(5u64));
        assert!(!r.insert(5));
        assert!(r.contains(&5));
        assert!(r.remove(&5));
        assert!(!r.remove(&5));
        assert!(r.is_empty());
    }
}
