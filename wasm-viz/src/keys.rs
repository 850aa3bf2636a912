//! Ankh's keys made visible: sample keys as dots on the ring in their
//! owner's colour; when the ring changes (a join, a leave) the keys that
//! changed owner are counted against the ideal share and animated from
//! their old owner to their new one; a selected key's replica walk
//! (rf = 3, clockwise) is drawn. Derived from the reference ring only.

use core::f64::consts::{PI, TAU};

use serde::Serialize;
use shen_rings::ankh::AnkhRing;

use crate::render::{node_color, Layout, Shape};

/// Sample keys drawn.
pub const SAMPLE_KEYS: usize = 256;
/// Replicas of a key walked.
pub const KEY_RF: usize = 3;
/// How long moved keys travel, µs of virtual time.
pub const MOVE_ANIM_US: u64 = 900_000;

/// Sample key `i`'s position on the hash ring (a SplitMix64 spread).
pub fn sample_hash(i: usize) -> u64 {
    let mut z = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The angle of hash position `h` (0 at the top, clockwise), radians.
pub fn angle_of(h: u64) -> f64 {
    h as f64 / 18_446_744_073_709_551_616.0 * TAU - PI / 2.0
}

/// The last change of ownership.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Moves {
    /// When the ring changed, µs.
    pub at_us: u64,
    /// Members before and after.
    pub members_before: usize,
    /// Members after.
    pub members_after: usize,
    /// Keys that changed owner: (key, old owner, new owner).
    pub moved: Vec<(usize, u64, u64)>,
    /// The fraction of keys an ideal placement moves:
    /// |Δ members| / max(before, after).
    pub ideal: f64,
    /// Members that joined the ring in this change.
    pub joined: Vec<u64>,
    /// Members that left it (crashed and declared dead, or left).
    pub left: Vec<u64>,
}

impl Moves {
    /// Keys that moved between two nodes that were members before and
    /// after: consistent hashing never does that (a key changes owner
    /// only to a new point or away from a removed one).
    pub fn strays(&self) -> usize {
        self.moved
            .iter()
            .filter(|(_, from, to)| !self.left.contains(from) && !self.joined.contains(to))
            .count()
    }
}

/// The sample keys' owners under the current reference ring, and the last
/// change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keys {
    owners: Vec<u64>,
    members: usize,
    /// The member ids of the ring `owners` was computed from.
    ids: Vec<u64>,
    /// Changes of ownership, oldest first (the last [`MAX_MOVES`]).
    history: Vec<Moves>,
}

/// Changes of ownership kept.
pub const MAX_MOVES: usize = 64;

impl Keys {
    /// Each key's owner now (empty when there is no ring).
    pub fn owners(&self) -> &[u64] {
        &self.owners
    }

    /// The last change of ownership, if any.
    pub fn last(&self) -> Option<&Moves> {
        self.history.last()
    }

    /// Every change of ownership kept, oldest first.
    pub fn history(&self) -> &[Moves] {
        &self.history
    }

    /// The reference ring is now `ring` (at `now_us`): count and keep the
    /// keys that moved, if the owners changed.
    pub fn update(&mut self, ring: &AnkhRing<u64>, now_us: u64) {
        let owners: Vec<u64> = (0..SAMPLE_KEYS)
            .filter_map(|i| ring.locate_hash(sample_hash(i)).copied())
            .collect();
        let members = ring.len();
        let mut ids: Vec<u64> = ring.members().map(|m| m.id).collect();
        ids.sort_unstable();
        if owners.len() == SAMPLE_KEYS && self.owners.len() == SAMPLE_KEYS && owners != self.owners
        {
            let moved: Vec<(usize, u64, u64)> = (0..SAMPLE_KEYS)
                .filter(|&i| owners[i] != self.owners[i])
                .map(|i| (i, self.owners[i], owners[i]))
                .collect();
            let delta = members.abs_diff(self.members).max(1);
            if self.history.last().is_none_or(|m| m.at_us < now_us) {
                self.history.push(Moves {
                    at_us: now_us,
                    members_before: self.members,
                    members_after: members,
                    moved,
                    ideal: delta as f64 / members.max(self.members).max(1) as f64,
                    joined: ids
                        .iter()
                        .filter(|i| self.ids.binary_search(i).is_err())
                        .copied()
                        .collect(),
                    left: self
                        .ids
                        .iter()
                        .filter(|i| ids.binary_search(i).is_err())
                        .copied()
                        .collect(),
                });
                if self.history.len() > MAX_MOVES {
                    self.history.remove(0);
                }
            }
        }
        self.owners = owners;
        self.members = members;
        self.ids = ids;
    }

    /// The run went back to `now_us`, where the ring is `ring`: forget the
    /// changes after it (a replay records them again, at the same times).
    pub fn rewound(&mut self, ring: Option<&AnkhRing<u64>>, now_us: u64) {
        self.history.retain(|m| m.at_us <= now_us);
        self.owners.clear();
        if let Some(r) = ring {
            self.update(r, now_us);
        }
    }
}

/// The replicas of sample key `i` under `ring`, primary first.
pub fn replicas_of(ring: &AnkhRing<u64>, i: usize) -> Vec<u64> {
    ring.replicas_hash(sample_hash(i), KEY_RF)
        .copied()
        .collect()
}

/// Where key `i`'s dot sits.
pub fn key_pos(lay: &Layout, i: usize) -> (f64, f64) {
    let r = key_radius(lay);
    let a = angle_of(sample_hash(i));
    (lay.cx + r * a.cos(), lay.cy + r * a.sin())
}

fn key_radius(lay: &Layout) -> f64 {
    lay.radius * 0.72 - (lay.radius * 0.07).max(3.0) - 4.0
}

/// The key whose dot is nearest to `(x, y)`, within `slack` px.
pub fn key_at(lay: &Layout, keys: &Keys, x: f64, y: f64, slack: f64) -> Option<usize> {
    (0..keys.owners.len())
        .map(|i| {
            let (kx, ky) = key_pos(lay, i);
            ((kx - x).hypot(ky - y), i)
        })
        .filter(|(d, _)| *d <= slack)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, i)| i)
}

/// The key layer: dots in their owner's colour, the moved ones travelling
/// from old owner to new for [`MOVE_ANIM_US`], the counter, and the
/// replica walk of `selected`.
pub fn key_shapes(
    lay: &Layout,
    keys: &Keys,
    ring: Option<&AnkhRing<u64>>,
    now_us: u64,
    selected: Option<usize>,
) -> Vec<Shape> {
    let mut out = Vec::new();
    if keys.owners.is_empty() {
        return out;
    }
    let dot = (lay.radius / 160.0).clamp(1.6, 3.0);
    // Grouped by owner so runs of one colour paint as one path.
    let mut order: Vec<usize> = (0..keys.owners.len()).collect();
    order.sort_by_key(|&i| node_color(keys.owners[i]));
    for i in order {
        let (x, y) = key_pos(lay, i);
        out.push(Shape::Circle {
            x,
            y,
            r: dot,
            fill: Some(node_color(keys.owners[i])),
            stroke: None,
        });
    }
    if let Some(m) = keys.last() {
        let age = now_us.saturating_sub(m.at_us);
        if now_us >= m.at_us && age < MOVE_ANIM_US {
            let p = age as f64 / MOVE_ANIM_US as f64;
            for &(i, from, to) in &m.moved {
                let (x0, y0) = lay.node_pos(from);
                let (x1, y1) = lay.node_pos(to);
                let (kx, ky) = key_pos(lay, i);
                out.push(Shape::Circle {
                    x: x0 + (x1 - x0) * p,
                    y: y0 + (y1 - y0) * p,
                    r: dot + 1.0,
                    fill: Some(node_color(to)),
                    stroke: Some(("#ffffff".into(), 1.0)),
                });
                out.push(Shape::Circle {
                    x: kx,
                    y: ky,
                    r: dot + 2.0,
                    fill: None,
                    stroke: Some(("#ffffff".into(), 1.0)),
                });
            }
        }
        if now_us >= m.at_us {
            out.push(Shape::Font { px: 12.0 });
            out.push(Shape::Label {
                x: 10.0,
                y: lay.cy * 2.0 - 14.0,
                text: format!(
                    "keys moved at {:.2} s ({} → {} members): {} of {} = {:.1}% · ideal {:.1}%",
                    m.at_us as f64 / 1e6,
                    m.members_before,
                    m.members_after,
                    m.moved.len(),
                    SAMPLE_KEYS,
                    m.moved.len() as f64 * 100.0 / SAMPLE_KEYS as f64,
                    m.ideal * 100.0
                ),
                color: "#e6edf3".into(),
            });
        }
    }
    if let (Some(i), Some(ring)) = (selected, ring) {
        if i < keys.owners.len() {
            let mut prev = key_pos(lay, i);
            for (k, id) in replicas_of(ring, i).into_iter().enumerate() {
                let p = lay.node_pos(id);
                out.push(Shape::Line {
                    x0: prev.0,
                    y0: prev.1,
                    x1: p.0,
                    y1: p.1,
                    width: if k == 0 { 2.5 } else { 1.5 },
                    color: "#ffffff".into(),
                });
                out.push(Shape::Font { px: 11.0 });
                out.push(Shape::Label {
                    x: (prev.0 + p.0) / 2.0 + 4.0,
                    y: (prev.1 + p.1) / 2.0,
                    text: format!("{}", k + 1),
                    color: "#ffffff".into(),
                });
                prev = p;
            }
            let (x, y) = key_pos(lay, i);
            out.push(Shape::Circle {
                x,
                y,
                r: dot + 3.0,
                fill: None,
                stroke: Some(("#ffffff".into(), 2.0)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shen_rings::ankh::AnkhConfig;

    fn ring(n: u64) -> AnkhRing<u64> {
        let mut r = AnkhRing::new(AnkhConfig {
            vnodes: 64,
            ..AnkhConfig::default()
        })
        .unwrap();
        for id in 0..n {
            r.join(id, 1).unwrap();
        }
        r
    }

    #[test]
    fn a_join_moves_about_one_nth_of_the_keys_all_to_the_newcomer() {
        let mut k = Keys::default();
        k.update(&ring(9), 0);
        assert!(k.last().is_none(), "the first ring is no change");
        assert_eq!(k.owners().len(), SAMPLE_KEYS);
        k.update(&ring(10), 5_000);
        let m = k.last().unwrap();
        assert_eq!((m.members_before, m.members_after, m.at_us), (9, 10, 5_000));
        assert!((m.ideal - 0.1).abs() < 1e-12);
        let frac = m.moved.len() as f64 / SAMPLE_KEYS as f64;
        assert!((0.04..0.2).contains(&frac), "{frac}");
        assert!(
            m.moved.iter().all(|&(_, _, to)| to == 9),
            "only to the new node"
        );
        assert_eq!(
            (m.joined.as_slice(), m.left.as_slice()),
            (&[9][..], &[][..])
        );
        assert_eq!(m.strays(), 0);
        // A leave: node 3's keys, and only them, move.
        let mut gone = ring(10);
        gone.leave(&3).unwrap();
        let mut k2 = k.clone();
        k2.update(&gone, 5_500);
        let l = k2.last().unwrap();
        assert_eq!(
            (l.joined.as_slice(), l.left.as_slice()),
            (&[][..], &[3][..])
        );
        assert!(!l.moved.is_empty() && l.moved.iter().all(|&(_, from, _)| from == 3));
        assert_eq!(l.strays(), 0);
        // A move between two members that stayed is counted as a stray.
        let fake = Moves {
            moved: vec![(0, 1, 2), (1, 3, 2)],
            left: vec![3],
            ..l.clone()
        };
        assert_eq!(fake.strays(), 1);
        // The same ring again: no new change.
        k.update(&ring(10), 6_000);
        assert_eq!(k.last().unwrap().at_us, 5_000);
        k.rewound(Some(&ring(9)), 4_000);
        assert!(
            k.last().is_none(),
            "the change after the rewind is forgotten"
        );
        k.update(&ring(10), 5_000);
        k.update(&ring(9), 7_000);
        k.rewound(Some(&ring(10)), 6_000);
        assert_eq!(k.history().len(), 1);
        assert_eq!(k.last().unwrap().at_us, 5_000);
    }

    #[test]
    fn replica_walks_are_distinct_and_start_at_the_owner() {
        let r = ring(6);
        let mut k = Keys::default();
        k.update(&r, 0);
        for i in [0, 17, 255] {
            let reps = replicas_of(&r, i);
            assert_eq!(reps.len(), KEY_RF);
            assert_eq!(reps[0], k.owners()[i]);
            assert!(reps[1] != reps[0] && reps[2] != reps[1] && reps[2] != reps[0]);
        }
        let lay = Layout::new(800.0, 600.0, 6);
        let (x, y) = key_pos(&lay, 17);
        assert_eq!(key_at(&lay, &k, x + 0.5, y, 3.0), Some(17));
        let walk = key_shapes(&lay, &k, Some(&r), 0, Some(17));
        let lines = walk
            .iter()
            .filter(|s| matches!(s, Shape::Line { .. }))
            .count();
        assert_eq!(lines, KEY_RF);
    }
}
