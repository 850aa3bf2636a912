//! What to draw: the world turned into a list of canvas shapes (pure Rust,
//! tested natively; [`crate::web`] paints it with web-sys).
//!
//! Nodes sit on a circle at the angle of their placement hash (the order
//! Sundial's monitors and the Cartouche token follow). Inside, the Ankh
//! ownership ring: one arc per range, in the owner's colour. Messages are
//! dots travelling along chords (Sundial blue, Cartouche gold; the token a
//! big gold dot). A node's fill goes from green to red as the phi its
//! monitors compute rises to the threshold; crashed nodes are grey with a
//! cross; a node most peers declare dead gets a dark red ring; where the
//! token rests, a gold ring; a holder of a grant, a thick gold ring.
//!
//! Log worlds add the chain of the selected partition: cyan arrows head →
//! middle → tail between its members (labelled H, M, T), a panel (top left)
//! with each member's log length and commit point, and Ouroboros messages
//! coloured by kind (records down the chain cyan, acknowledgements up it
//! purple, client requests and answers white, configuration grey); the
//! selected partition's messages are drawn bigger.

use core::f64::consts::{PI, TAU};

use shen_rings::NodeId;

use crate::state::ranges;
use crate::world::World;

/// One thing to draw.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A disc (filled and/or stroked).
    Circle {
        /// Centre x.
        x: f64,
        /// Centre y.
        y: f64,
        /// Radius.
        r: f64,
        /// Fill colour.
        fill: Option<String>,
        /// Stroke colour and width.
        stroke: Option<(String, f64)>,
    },
    /// An arc of a circle centred on the canvas (angles in radians).
    Arc {
        /// Radius.
        r: f64,
        /// Start angle.
        a0: f64,
        /// End angle.
        a1: f64,
        /// Line width.
        width: f64,
        /// Colour.
        color: String,
    },
    /// A straight line.
    Line {
        /// From.
        x0: f64,
        /// From.
        y0: f64,
        /// To.
        x1: f64,
        /// To.
        y1: f64,
        /// Width.
        width: f64,
        /// Colour.
        color: String,
    },
    /// An axis-aligned filled square centred at a point (cheaper to
    /// rasterise than a disc: big worlds draw dots with it).
    Square {
        /// Centre x.
        x: f64,
        /// Centre y.
        y: f64,
        /// Side.
        size: f64,
        /// Colour.
        color: String,
    },
    /// Text starting at a point (left-aligned, vertically centred).
    Label {
        /// Left x.
        x: f64,
        /// Centre y.
        y: f64,
        /// The text.
        text: String,
        /// Colour.
        color: String,
    },
    /// Text centred at a point.
    Text {
        /// Centre x.
        x: f64,
        /// Centre y.
        y: f64,
        /// The text.
        text: String,
        /// Colour.
        color: String,
    },
}

/// Where things go on a canvas of `width` × `height`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    /// Canvas centre x.
    pub cx: f64,
    /// Canvas centre y.
    pub cy: f64,
    /// Radius of the node circle.
    pub radius: f64,
    /// Radius of one node's disc.
    pub node_r: f64,
}

impl Layout {
    /// The layout for `nodes` nodes.
    pub fn new(width: f64, height: f64, nodes: u64) -> Layout {
        let radius = (width.min(height) * 0.40).max(10.0);
        let spacing = TAU * radius / nodes.max(1) as f64;
        Layout {
            cx: width / 2.0,
            cy: height / 2.0,
            radius,
            node_r: (spacing * 0.35).clamp(2.0, 18.0),
        }
    }

    /// The angle of hash position `h` (0 at the top, clockwise).
    pub fn angle_of_hash(h: u64) -> f64 {
        (h as f64 / 18_446_744_073_709_551_616.0) * TAU - PI / 2.0
    }

    /// Where node `id` is drawn.
    pub fn node_pos(&self, id: u64) -> (f64, f64) {
        let a = Layout::angle_of_hash(id.placement_hash());
        (
            self.cx + self.radius * a.cos(),
            self.cy + self.radius * a.sin(),
        )
    }

    /// The node under point `(x, y)` among `nodes` nodes (a little slack).
    pub fn node_at(&self, nodes: u64, x: f64, y: f64) -> Option<u64> {
        let slack = (self.node_r + 4.0).powi(2);
        (0..nodes)
            .map(|id| {
                let (nx, ny) = self.node_pos(id);
                (id, (nx - x).powi(2) + (ny - y).powi(2))
            })
            .filter(|(_, d)| *d <= slack)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, _)| id)
    }
}

/// Most arcs drawn for the ownership ring; beyond, the ring is sampled.
pub const MAX_ARCS: usize = 720;

/// The ownership ranges to draw: exact up to [`MAX_ARCS`], else the owner
/// of each of `MAX_ARCS` equal slices (at its middle), merged.
pub fn display_ranges(world: &World) -> Vec<crate::state::Range> {
    let exact = ranges(world);
    if exact.len() <= MAX_ARCS {
        return exact;
    }
    let Some(r) = world.ref_ring() else {
        return Vec::new();
    };
    let mut out: Vec<crate::state::Range> = Vec::new();
    for i in 0..MAX_ARCS {
        let start = i as f64 / MAX_ARCS as f64;
        let end = (i + 1) as f64 / MAX_ARCS as f64;
        let mid = ((start + end) / 2.0 * 18_446_744_073_709_551_616.0) as u64;
        let Some(owner) = r.ring.locate_hash(mid).copied() else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.owner == owner => last.end = end,
            _ => out.push(crate::state::Range { start, end, owner }),
        }
    }
    out
}

/// A node's own colour (for its ownership arcs).
pub fn node_color(id: u64) -> String {
    let hue = (id as f64 * 137.508) % 360.0;
    format!("hsl({hue:.0},65%,55%)")
}

/// The fill for a phi relative to the threshold: green to red.
pub fn phi_color(phi: f64, threshold: f64) -> String {
    let t = phi / threshold;
    let t = if threshold > 0.0 && !t.is_nan() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    format!("hsl({:.0},80%,45%)", 120.0 * (1.0 - t))
}

const GROUP_COLORS: [&str; 6] = [
    "#4fc3f7", "#ff8a65", "#ba68c8", "#aed581", "#ffd54f", "#90a4ae",
];

/// The colour of an Ouroboros message of `kind` (see
/// [`crate::log::message_kind`]).
pub fn log_msg_color(kind: &str) -> &'static str {
    match kind {
        "append" => "#26c6da",
        "ack" => "#ab47bc",
        "sync" => "#4db6ac",
        "check" | "check_reply" => "#80cbc4",
        "config" => "#78909c",
        _ => "#ffffff",
    }
}

/// The chain colour (arrows, committed bars).
pub const CHAIN_COLOR: &str = "#26c6da";
/// Uncommitted records (in flight down the chain).
pub const UNCOMMITTED_COLOR: &str = "#ffb74d";

/// The scene of `world` on a `width` × `height` canvas with `selected`
/// highlighted.
pub fn scene(world: &World, width: f64, height: f64, selected: Option<u64>) -> Vec<Shape> {
    scene_with(world, width, height, selected, None)
}

/// [`scene`], plus (log worlds) the chain of log partition `partition`.
pub fn scene_with(
    world: &World,
    width: f64,
    height: f64,
    selected: Option<u64>,
    partition: Option<u32>,
) -> Vec<Shape> {
    let obs = world.observation();
    let n = world.sim().node_count();
    let lay = Layout::new(width, height, n);
    let mut out = Vec::with_capacity(n as usize * 2 + 64);

    // The Ankh ring from the reference view.
    let ring_r = lay.radius * 0.72;
    let ring_w = (lay.radius * 0.07).max(3.0);
    out.push(Shape::Arc {
        r: ring_r,
        a0: 0.0,
        a1: TAU,
        width: ring_w,
        color: "#2a2f3a".into(),
    });
    for rg in display_ranges(world) {
        let a0 = rg.start * TAU - PI / 2.0;
        let mut a1 = rg.end * TAU - PI / 2.0;
        if a1 <= a0 {
            a1 += TAU;
        }
        out.push(Shape::Arc {
            r: ring_r,
            a0,
            a1,
            width: ring_w,
            color: node_color(rg.owner),
        });
    }

    // Partition sides: a line from the centre towards each node of the
    // same side would clutter; tint each node's outer ring instead.
    let now = world.now().as_micros();
    for f in world.flights() {
        let (x0, y0) = lay.node_pos(f.from);
        let (x1, y1) = lay.node_pos(f.to);
        let p = match f.arrives_us {
            Some(a) if a > f.sent_us => {
                ((now.saturating_sub(f.sent_us)) as f64 / (a - f.sent_us) as f64).clamp(0.0, 1.0)
            }
            Some(_) => 1.0,
            None => 0.5,
        };
        let (x, y) = (x0 + (x1 - x0) * p, y0 + (y1 - y0) * p);
        let (r, color) = match (f.ring, f.token_generation, f.kind) {
            (_, Some(_), _) => (lay.node_r.clamp(4.0, 7.0), "#ffd700"),
            ("cartouche", None, _) => (2.5, "#c9a227"),
            (_, _, Some(kind)) => {
                let mine = partition.is_some() && f.partition == partition;
                (if mine { 4.5 } else { 2.5 }, log_msg_color(kind))
            }
            _ => (2.0, "#64b5f6"),
        };
        if f.token_generation.is_some() && n <= 200 {
            out.push(Shape::Line {
                x0,
                y0,
                x1: x,
                y1: y,
                width: 1.5,
                color: "rgba(255,215,0,0.35)".into(),
            });
        }
        if n > 100 && f.token_generation.is_none() {
            out.push(Shape::Square {
                x,
                y,
                size: 2.0 * r,
                color: color.into(),
            });
        } else {
            out.push(Shape::Circle {
                x,
                y,
                r,
                fill: Some(color.into()),
                stroke: None,
            });
        }
    }

    if let Some(p) = partition {
        chain_shapes(world, &lay, p, &mut out);
    }

    let up = obs.nodes.iter().filter(|m| m.up).count() as u32;
    for o in &obs.nodes {
        let (x, y) = lay.node_pos(o.id);
        let r = lay.node_r;
        let fill = if o.up {
            phi_color(o.max_phi, obs.phi_threshold)
        } else {
            "#555".into()
        };
        let up_peers = up - u32::from(o.up);
        let declared_dead = up_peers > 0 && o.dead_votes * 2 > up_peers;
        let stroke = if declared_dead {
            Some(("#b71c1c".to_string(), (r * 0.35).max(1.5)))
        } else if o.suspect_votes > 0 {
            Some(("#ff9800".to_string(), (r * 0.3).max(1.0)))
        } else if obs.partitioned {
            Some((
                GROUP_COLORS[o.group as usize % GROUP_COLORS.len()].to_string(),
                (r * 0.3).max(1.0),
            ))
        } else {
            None
        };
        if n > 100 && stroke.is_none() {
            out.push(Shape::Square {
                x,
                y,
                size: 2.0 * r,
                color: fill,
            });
        } else {
            out.push(Shape::Circle {
                x,
                y,
                r,
                fill: Some(fill),
                stroke,
            });
        }
        if n <= 100 {
            // A thin ring in the node's own colour: the colour of its arcs.
            out.push(Shape::Circle {
                x,
                y,
                r: r + 2.0,
                fill: None,
                stroke: Some((node_color(o.id), 2.0)),
            });
        }
        if !o.up {
            let d = r * 0.6;
            for (dx, dy) in [(d, d), (d, -d)] {
                out.push(Shape::Line {
                    x0: x - dx,
                    y0: y - dy,
                    x1: x + dx,
                    y1: y + dy,
                    width: (r * 0.2).max(1.0),
                    color: "#ddd".into(),
                });
            }
        }
        if o.up && o.holding.is_some() {
            out.push(Shape::Circle {
                x,
                y,
                r: r + 5.0,
                fill: None,
                stroke: Some(("#ffd700".into(), 4.0)),
            });
        } else if o.up && o.has_token {
            out.push(Shape::Circle {
                x,
                y,
                r: r + 4.0,
                fill: None,
                stroke: Some(("#ffd700".into(), 2.0)),
            });
        }
        if selected == Some(o.id) {
            out.push(Shape::Circle {
                x,
                y,
                r: r + 8.0,
                fill: None,
                stroke: Some(("#ffffff".into(), 1.5)),
            });
        }
        if n <= 40 {
            let (dx, dy) = (x - lay.cx, y - lay.cy);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            out.push(Shape::Text {
                x: x + dx / len * (r + 14.0),
                y: y + dy / len * (r + 14.0),
                text: o.id.to_string(),
                color: "#cfd8dc".into(),
            });
        }
    }
    out
}

/// A member's role in a chain of `n`: `H`, `M`, `T` (`H/T` alone).
pub fn chain_role(i: usize, n: usize) -> &'static str {
    match (i, n) {
        (0, 1) => "H/T",
        (0, _) => "H",
        (i, n) if i + 1 == n => "T",
        _ => "M",
    }
}

/// Arrows from each point of a chain to the next, stopping `gap` short of
/// both ends: a line and a two-stroke head each, in [`CHAIN_COLOR`].
pub fn chain_arrows(pts: &[(f64, f64)], gap: f64, out: &mut Vec<Shape>) {
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len = (dx * dx + dy * dy).sqrt();
        if len <= 2.0 * gap {
            continue;
        }
        let (ux, uy) = (dx / len, dy / len);
        let (ax, ay) = (x0 + ux * gap, y0 + uy * gap);
        let (bx, by) = (x1 - ux * gap, y1 - uy * gap);
        out.push(Shape::Line {
            x0: ax,
            y0: ay,
            x1: bx,
            y1: by,
            width: 3.0,
            color: CHAIN_COLOR.into(),
        });
        // The arrowhead: two strokes back from the tip at ±25°.
        for s in [-1.0, 1.0] {
            let (c, sn) = (0.906_f64, 0.423_f64 * s);
            let (hx, hy) = (ux * c - uy * sn, uy * c + ux * sn);
            out.push(Shape::Line {
                x0: bx,
                y0: by,
                x1: bx - hx * 12.0,
                y1: by - hy * 12.0,
                width: 3.0,
                color: CHAIN_COLOR.into(),
            });
        }
    }
}

/// The chain of log partition `p` (arrows and role labels) and the panel
/// of its members' logs.
fn chain_shapes(world: &World, lay: &Layout, p: u32, out: &mut Vec<Shape>) {
    let Some(part) = world
        .observation()
        .log
        .as_ref()
        .and_then(|l| l.partitions.get(p as usize))
    else {
        return;
    };
    let chain = &part.chain;
    let inward = |id: u64, by: f64| {
        let (x, y) = lay.node_pos(id);
        let (dx, dy) = (lay.cx - x, lay.cy - y);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        (x + dx / len * by, y + dy / len * by)
    };
    let pts: Vec<(f64, f64)> = chain.iter().map(|id| lay.node_pos(*id)).collect();
    chain_arrows(&pts, lay.node_r + 7.0, out);
    let role = |i: usize| chain_role(i, chain.len());
    for (i, id) in chain.iter().enumerate() {
        let (x, y) = inward(*id, lay.node_r + 16.0);
        out.push(Shape::Text {
            x,
            y,
            text: role(i).into(),
            color: CHAIN_COLOR.into(),
        });
    }
    // The panel: one row per member, its log as a bar (committed part in
    // the chain colour, the rest amber).
    let (left, mut y) = (12.0, 18.0);
    out.push(Shape::Label {
        x: left,
        y,
        text: format!(
            "log partition {p} · epoch {}.{}",
            part.epoch.0, part.epoch.1
        ),
        color: "#e0f7fa".into(),
    });
    let longest = part
        .replicas
        .iter()
        .map(|r| r.len)
        .max()
        .unwrap_or(0)
        .max(1);
    for (i, id) in chain.iter().enumerate() {
        y += 20.0;
        let Some(r) = part.replica(*id) else {
            out.push(Shape::Label {
                x: left,
                y,
                text: format!("{} node {id}: down", role(i)),
                color: "#9e9e9e".into(),
            });
            continue;
        };
        out.push(Shape::Label {
            x: left,
            y,
            text: format!(
                "{} node {id}: len {} · commit {}",
                role(i),
                r.len,
                r.committed()
            ),
            color: "#cfd8dc".into(),
        });
        y += 11.0;
        let full = 150.0;
        let committed = full * r.committed() as f64 / longest as f64;
        let all = full * r.len as f64 / longest as f64;
        out.push(Shape::Line {
            x0: left,
            y0: y,
            x1: left + full,
            y1: y,
            width: 5.0,
            color: "#2a2f3a".into(),
        });
        if all > committed {
            out.push(Shape::Line {
                x0: left + committed,
                y0: y,
                x1: left + all,
                y1: y,
                width: 5.0,
                color: UNCOMMITTED_COLOR.into(),
            });
        }
        if committed > 0.0 {
            out.push(Shape::Line {
                x0: left,
                y0: y,
                x1: left + committed,
                y1: y,
                width: 5.0,
                color: CHAIN_COLOR.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Op;
    use crate::world::VizConfig;
    use core::time::Duration;

    fn circles_at(shapes: &[Shape], x0: f64, y0: f64) -> Vec<&Shape> {
        shapes
            .iter()
            .filter(|s| matches!(s, Shape::Circle { x, y, .. } if (x - x0).abs() < 1e-9 && (y - y0).abs() < 1e-9))
            .collect()
    }

    #[test]
    fn nodes_arcs_and_a_crashed_node_are_drawn() {
        let mut w = World::new(VizConfig::new(3, 5)).unwrap();
        w.advance(Duration::from_secs(3)).unwrap();
        let s = scene(&w, 800.0, 600.0, Some(2));
        let lay = Layout::new(800.0, 600.0, 5);
        for id in 0..5 {
            let (x, y) = lay.node_pos(id);
            let c = circles_at(&s, x, y);
            assert!(!c.is_empty(), "node {id} drawn");
            assert_eq!(lay.node_at(5, x + 1.0, y - 1.0), Some(id));
        }
        assert_eq!(lay.node_at(5, 400.0, 300.0), None, "centre is empty");
        // Ownership arcs in every member's colour.
        for id in 0..5 {
            let c = node_color(id);
            assert!(s
                .iter()
                .any(|sh| matches!(sh, Shape::Arc { color, .. } if *color == c)));
        }
        // Labels and the selection ring.
        assert_eq!(
            s.iter()
                .filter(|sh| matches!(sh, Shape::Text { .. }))
                .count(),
            5
        );
        let (x2, y2) = lay.node_pos(2);
        assert!(circles_at(&s, x2, y2)
            .iter()
            .any(|sh| matches!(sh, Shape::Circle { stroke: Some((c, _)), .. } if c == "#ffffff")));

        w.act(Op::Crash(4)).unwrap();
        w.advance(Duration::from_millis(100)).unwrap();
        let s = scene(&w, 800.0, 600.0, None);
        let (x4, y4) = lay.node_pos(4);
        assert!(circles_at(&s, x4, y4)
            .iter()
            .any(|sh| matches!(sh, Shape::Circle { fill: Some(f), .. } if f == "#555")));
        // Its cross.
        assert_eq!(
            s.iter()
                .filter(|sh| matches!(sh, Shape::Line { color, .. } if color == "#ddd"))
                .count(),
            2
        );
    }

    #[test]
    fn big_rings_are_drawn_with_at_most_max_arcs() {
        let mut w = World::new(VizConfig::new(2, 150)).unwrap();
        w.advance(Duration::from_secs(6)).unwrap();
        assert!(ranges(&w).len() > MAX_ARCS);
        let d = display_ranges(&w);
        assert!(d.len() <= MAX_ARCS && d.len() > 100, "{}", d.len());
        assert!(d
            .windows(2)
            .all(|p| p[0].owner != p[1].owner && p[0].end == p[1].start));
        let s = scene(&w, 800.0, 600.0, None);
        assert!(s.iter().filter(|x| matches!(x, Shape::Arc { .. })).count() <= MAX_ARCS + 1);
    }

    #[test]
    fn phi_colours_run_from_green_to_red() {
        assert_eq!(phi_color(0.0, 8.0), "hsl(120,80%,45%)");
        assert_eq!(phi_color(4.0, 8.0), "hsl(60,80%,45%)");
        assert_eq!(phi_color(80.0, 8.0), "hsl(0,80%,45%)");
        assert_eq!(phi_color(f64::INFINITY, 8.0), "hsl(0,80%,45%)");
        assert_eq!(phi_color(f64::NAN, 8.0), "hsl(120,80%,45%)");
    }
}
