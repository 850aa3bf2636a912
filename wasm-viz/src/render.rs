//! What to draw: the world turned into a list of canvas shapes (pure Rust,
//! tested natively; [`crate::web`] paints it with web-sys).
//!
//! Nodes sit on a circle in the order of their placement hash (the order
//! Sundial's monitors and the Cartouche token follow), spread so none
//! overlap ([`crate::layout`]). Each node is drawn in its own colour
//! ([`PALETTE`], colour-blind safe), the colour of its ranges on the Ankh
//! ownership ring inside. Messages are dots travelling along chords
//! (Sundial blue, Cartouche gold; the token a big gold dot). A gauge round
//! a node fills up as the phi its monitors compute rises to the
//! threshold; crashed nodes are grey with a
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

use crate::layout::spread_angles;
use crate::state::ranges;
use crate::world::{Flight, World};

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
    /// An arc of a circle centred at a point (a node's phi gauge).
    NodeArc {
        /// Centre x.
        x: f64,
        /// Centre y.
        y: f64,
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
    /// The font size of the texts that follow, px.
    Font {
        /// Size.
        px: f64,
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

/// Where things go on a canvas of `width` × `height` (CSS pixels).
///
/// Nodes keep the clockwise order of their placement hashes but are spread
/// ([`crate::layout::spread_angles`]) so that no two discs, with their
/// outline, ever overlap; the disc size follows the room each node has.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// Canvas centre x.
    pub cx: f64,
    /// Canvas centre y.
    pub cy: f64,
    /// Radius of the node circle.
    pub radius: f64,
    /// Radius of one node's disc.
    pub node_r: f64,
    /// Drawn angle of each node (by id), radians, 0 at the right,
    /// clockwise (canvas convention).
    angles: Vec<f64>,
}

/// Most ids drawn next to their nodes.
pub const MAX_LABELS: u64 = 100;

impl Layout {
    /// The layout for `nodes` nodes (ids `0..nodes`).
    pub fn new(width: f64, height: f64, nodes: u64) -> Layout {
        let n = nodes.max(1) as f64;
        // Room for the labels outside the circle.
        let margin = if nodes <= MAX_LABELS { 34.0 } else { 12.0 };
        let radius = (width.min(height) / 2.0 - margin).max(10.0);
        let spacing = TAU * radius / n;
        // A disc and its outline take `footprint()`; neighbours' centres
        // are at least `2.2 * footprint()` apart, which always fits in
        // 90% of the mean spacing.
        let node_r = (spacing * 0.9 / (2.2 * FOOTPRINT)).min(18.0);
        let mut lay = Layout {
            cx: width / 2.0,
            cy: height / 2.0,
            radius,
            node_r,
            angles: Vec::new(),
        };
        let chord = 2.2 * lay.footprint();
        let min_gap = 2.0 * (chord / (2.0 * radius)).min(1.0).asin();
        let hashed: Vec<f64> = (0..nodes)
            .map(|id| Layout::angle_of_hash(id.placement_hash()))
            .collect();
        lay.angles = spread_angles(&hashed, min_gap);
        lay
    }

    /// How far a node's drawing reaches from its centre: the disc and its
    /// (suspicion, phi) outline.
    pub fn footprint(&self) -> f64 {
        self.node_r * FOOTPRINT
    }

    /// The font size of node labels, px.
    pub fn label_px(&self) -> f64 {
        (self.node_r * 1.1).clamp(11.0, 15.0)
    }

    /// The angle of hash position `h` (0 at the top, clockwise).
    pub fn angle_of_hash(h: u64) -> f64 {
        (h as f64 / 18_446_744_073_709_551_616.0) * TAU - PI / 2.0
    }

    /// The angle node `id` is drawn at (its hash angle for an id beyond
    /// the layout's nodes).
    pub fn node_angle(&self, id: u64) -> f64 {
        self.angles
            .get(id as usize)
            .copied()
            .unwrap_or_else(|| Layout::angle_of_hash(id.placement_hash()))
    }

    /// Where node `id` is drawn.
    pub fn node_pos(&self, id: u64) -> (f64, f64) {
        let a = self.node_angle(id);
        (
            self.cx + self.radius * a.cos(),
            self.cy + self.radius * a.sin(),
        )
    }

    /// The node under point `(x, y)` among `nodes` nodes (a little slack).
    pub fn node_at(&self, nodes: u64, x: f64, y: f64) -> Option<u64> {
        let slack = (self.footprint() + 4.0).powi(2);
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

/// A node's footprint over its disc radius (the outline's reach).
const FOOTPRINT: f64 = 1.25;

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

/// The node palette: Okabe and Ito's colour-blind-safe colours (black
/// swapped for a light grey, legible on the dark background).
pub const PALETTE: [&str; 8] = [
    "#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#bbbbbb",
];

/// A node's own colour: its disc, its ownership arcs, its label's mark.
pub fn node_color(id: u64) -> String {
    PALETTE[(id % PALETTE.len() as u64) as usize].to_string()
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
        "sync" | "skip" => "#4db6ac",
        "check" | "check_reply" => "#80cbc4",
        "config" => "#78909c",
        _ => "#ffffff",
    }
}

/// The chain colour (arrows, committed bars).
pub const CHAIN_COLOR: &str = "#26c6da";
/// Uncommitted records (in flight down the chain).
pub const UNCOMMITTED_COLOR: &str = "#ffb74d";

/// What the page asks to be drawn, beyond the world itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SceneOpts {
    /// The selected node (a white ring).
    pub selected: Option<u64>,
    /// Log worlds: the partition whose chain is drawn.
    pub partition: Option<u32>,
    /// The inspected message (a white ring around its dot).
    pub message: Option<u64>,
    /// Which messages to draw.
    pub filter: MsgFilter,
    /// Draw Ankh's sample keys.
    pub keys: bool,
    /// The sample key whose replica walk is drawn.
    pub key: Option<usize>,
}

/// What a lesson points at: nodes, arcs of the ring and message kinds,
/// drawn as pulsing white outlines over the scene. View state only: the
/// world never sees it, so it cannot change a run or its trace hash.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Highlight {
    /// Node ids.
    pub nodes: Vec<u64>,
    /// Arcs of the hash space as `[start, end]` fractions in `[0, 1]`,
    /// clockwise from the top (as the state's `ankh.ranges` gives them;
    /// `end < start` wraps).
    pub arcs: Vec<(f64, f64)>,
    /// Message kinds in flight, as `ring.kind` (e.g. `cartouche.token`).
    pub kinds: Vec<String>,
}

impl Highlight {
    /// Whether it points at nothing.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.arcs.is_empty() && self.kinds.is_empty()
    }
}

/// The outlines of `hl` on a `width` × `height` canvas; `phase` in
/// `[0, 1)` animates the pulse (the page passes wall-clock time).
pub fn highlight_shapes(
    world: &World,
    width: f64,
    height: f64,
    hl: &Highlight,
    phase: f64,
) -> Vec<Shape> {
    let mut out = Vec::new();
    if hl.is_empty() {
        return out;
    }
    let n = world.sim().node_count();
    let lay = Layout::new(width, height, n);
    let pulse = 0.5 - 0.5 * (phase.rem_euclid(1.0) * TAU).cos();
    let color = format!("rgba(255,255,255,{:.2})", 0.55 + 0.45 * pulse);
    let ring_r = lay.radius * 0.72;
    let ring_w = (lay.radius * 0.07).max(3.0);
    for &(start, end) in &hl.arcs {
        if !(start.is_finite() && end.is_finite()) {
            continue;
        }
        let a0 = start.clamp(0.0, 1.0) * TAU - PI / 2.0;
        let mut a1 = end.clamp(0.0, 1.0) * TAU - PI / 2.0;
        if a1 <= a0 {
            a1 += TAU;
        }
        for r in [ring_r - ring_w / 2.0 - 2.0, ring_r + ring_w / 2.0 + 2.0] {
            out.push(Shape::Arc {
                r: r.max(1.0),
                a0,
                a1,
                width: 2.0 + 1.5 * pulse,
                color: color.clone(),
            });
        }
    }
    for &id in hl.nodes.iter().filter(|&&id| id < n) {
        let (x, y) = lay.node_pos(id);
        out.push(Shape::Circle {
            x,
            y,
            r: lay.footprint() + 4.0 + 4.0 * pulse,
            fill: None,
            stroke: Some((color.clone(), 2.5)),
        });
    }
    if !hl.kinds.is_empty() {
        let now = world.now().as_micros();
        for f in world.flights() {
            let hit = hl
                .kinds
                .iter()
                .any(|k| k.split_once('.') == Some((f.ring, f.what)));
            if hit {
                let (x, y) = flight_pos(&lay, &f, now);
                out.push(Shape::Circle {
                    x,
                    y,
                    r: 6.0 + 3.0 * pulse,
                    fill: None,
                    stroke: Some((color.clone(), 1.5)),
                });
            }
        }
    }
    out
}

/// Messages hidden from the drawing, by ring and by kind (presentation
/// only: they still travel).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MsgFilter {
    /// Rings whose messages are hidden.
    pub rings: Vec<String>,
    /// Kinds hidden, as `ring.kind` (e.g. `sundial.probe`).
    pub kinds: Vec<String>,
}

impl MsgFilter {
    /// Whether a message of `ring` and kind `what` is drawn.
    pub fn shows(&self, ring: &str, what: &str) -> bool {
        !self.rings.iter().any(|r| r == ring)
            && !self
                .kinds
                .iter()
                .any(|k| k.split_once('.') == Some((ring, what)))
    }
}

/// Where a message in flight is drawn at virtual time `now_us`: along the
/// chord from its sender to its receiver, as far as its journey went.
pub fn flight_pos(lay: &Layout, f: &Flight, now_us: u64) -> (f64, f64) {
    let (x0, y0) = lay.node_pos(f.from);
    let (x1, y1) = lay.node_pos(f.to);
    let p = match f.arrives_us {
        Some(a) if a > f.sent_us => {
            ((now_us.saturating_sub(f.sent_us)) as f64 / (a - f.sent_us) as f64).clamp(0.0, 1.0)
        }
        Some(_) => 1.0,
        None => 0.5,
    };
    (x0 + (x1 - x0) * p, y0 + (y1 - y0) * p)
}

/// The drawn message nearest to `(x, y)`, within `slack` px of its dot.
pub fn message_at(
    world: &World,
    lay: &Layout,
    filter: &MsgFilter,
    x: f64,
    y: f64,
    slack: f64,
) -> Option<Flight> {
    let now = world.now().as_micros();
    world
        .flights()
        .into_iter()
        .filter(|f| filter.shows(f.ring, f.what))
        .map(|f| {
            let (fx, fy) = flight_pos(lay, &f, now);
            ((fx - x).powi(2) + (fy - y).powi(2), f)
        })
        .filter(|(d, _)| *d <= slack * slack)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| f)
}

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
    scene_opts(
        world,
        width,
        height,
        &SceneOpts {
            selected,
            partition,
            ..SceneOpts::default()
        },
    )
}

/// The scene with every option of [`SceneOpts`].
pub fn scene_opts(world: &World, width: f64, height: f64, opts: &SceneOpts) -> Vec<Shape> {
    let (selected, partition) = (opts.selected, opts.partition);
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

    let now = world.now().as_micros();
    if opts.keys {
        out.extend(crate::keys::key_shapes(
            &lay,
            world.keys(),
            world.ref_ring().map(|r| &r.ring),
            now,
            opts.key,
        ));
    }
    for f in world.flights() {
        if !opts.filter.shows(f.ring, f.what) {
            continue;
        }
        let (x0, y0) = lay.node_pos(f.from);
        let (x, y) = flight_pos(&lay, &f, now);
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
        if opts.message == Some(f.id) {
            let (x1, y1) = lay.node_pos(f.to);
            out.push(Shape::Line {
                x0,
                y0,
                x1,
                y1,
                width: 1.0,
                color: "rgba(255,255,255,0.5)".into(),
            });
            out.push(Shape::Circle {
                x,
                y,
                r: r + 4.0,
                fill: None,
                stroke: Some(("#ffffff".into(), 2.0)),
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
    let labels = n <= MAX_LABELS;
    if labels {
        out.push(Shape::Font { px: lay.label_px() });
    }
    for o in &obs.nodes {
        let (x, y) = lay.node_pos(o.id);
        let r = lay.node_r;
        // The disc in the node's own (Ankh) colour; grey when crashed.
        let fill = if o.up {
            node_color(o.id)
        } else {
            "#555".into()
        };
        let up_peers = up - u32::from(o.up);
        let declared_dead = up_peers > 0 && o.dead_votes * 2 > up_peers;
        let outline = (r * (FOOTPRINT - 1.0) * 2.0).max(0.5);
        let stroke = if declared_dead {
            Some(("#b71c1c".to_string(), outline))
        } else if o.suspect_votes > 0 {
            Some(("#ff9800".to_string(), outline))
        } else if obs.partitioned {
            Some((
                GROUP_COLORS[o.group as usize % GROUP_COLORS.len()].to_string(),
                outline,
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
        // Phi, as a gauge round the disc: empty at 0, a full turn at the
        // threshold (its colour from green to red repeats what its length
        // says, for those who cannot tell the two apart).
        if o.up && n <= MAX_LABELS && obs.phi_threshold > 0.0 && o.max_phi > 0.05 {
            let t = (o.max_phi / obs.phi_threshold).clamp(0.0, 1.0);
            out.push(Shape::NodeArc {
                x,
                y,
                r: r * 0.7,
                a0: -PI / 2.0,
                a1: -PI / 2.0 + TAU * t,
                width: (r * 0.3).max(1.0),
                color: phi_color(o.max_phi, obs.phi_threshold),
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
        if labels {
            let (dx, dy) = (x - lay.cx, y - lay.cy);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let off = lay.footprint() + lay.label_px() * 0.9;
            out.push(Shape::Text {
                x: x + dx / len * off,
                y: y + dy / len * off,
                text: o.id.to_string(),
                color: "#e6edf3".into(),
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
    let n = chain.len();
    let role = |i: usize| {
        if i < n {
            chain_role(i, n)
        } else {
            "learner"
        }
    };
    let rows: Vec<u64> = chain.iter().chain(&part.learners).copied().collect();
    for (i, id) in rows.iter().enumerate() {
        let (x, y) = inward(*id, lay.node_r + 16.0);
        out.push(Shape::Text {
            x,
            y,
            text: if i < n { role(i) } else { "L" }.into(),
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
    if let Some(m) = world.observation().log.as_ref().map(|l| &l.members) {
        let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let leaving = if m.leaving.is_empty() {
            String::new()
        } else {
            format!(" · leaving {}", list(&m.leaving))
        };
        y += 16.0;
        out.push(Shape::Label {
            x: left,
            y,
            text: format!("members v{}: {}{leaving}", m.version, list(&m.nodes)),
            color: "#b0bec5".into(),
        });
    }
    let longest = part
        .replicas
        .iter()
        .map(|r| r.len)
        .max()
        .unwrap_or(0)
        .max(1);
    for (i, id) in rows.iter().enumerate() {
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
    use shen_rings::NodeId;

    fn circles_at(shapes: &[Shape], x0: f64, y0: f64) -> Vec<&Shape> {
        shapes
            .iter()
            .filter(|s| matches!(s, Shape::Circle { x, y, .. } if (x - x0).abs() < 1e-9 && (y - y0).abs() < 1e-9))
            .collect()
    }

    #[test]
    fn a_highlight_outlines_its_nodes_arcs_and_messages_and_leaves_the_world_alone() {
        let mut w = World::new(VizConfig::new(3, 5)).unwrap();
        w.advance(Duration::from_secs(2)).unwrap();
        let hash = w.sim().trace_hash();
        assert!(highlight_shapes(&w, 800.0, 600.0, &Highlight::default(), 0.3).is_empty());
        let hl: Highlight = serde_json::from_str(
            r#"{"nodes": [1, 4, 99], "arcs": [[0.9, 0.1]], "kinds": ["sundial.probe"]}"#,
        )
        .unwrap();
        let lay = Layout::new(800.0, 600.0, 5);
        let shapes = highlight_shapes(&w, 800.0, 600.0, &hl, 0.5);
        for id in [1, 4] {
            let (x, y) = lay.node_pos(id);
            assert_eq!(circles_at(&shapes, x, y).len(), 1, "node {id} outlined");
        }
        // Node 99 does not exist: nothing drawn for it. The arc wraps past
        // the top: two outlines (inside and outside the ring), each longer
        // than zero and shorter than a turn.
        let arcs: Vec<(f64, f64)> = shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Arc { a0, a1, .. } => Some((*a0, *a1)),
                _ => None,
            })
            .collect();
        assert_eq!(arcs.len(), 2);
        for (a0, a1) in arcs {
            assert!((a1 - a0 - 0.2 * TAU).abs() < 1e-9, "{a0} {a1}");
        }
        let probes = w
            .flights()
            .iter()
            .filter(|f| f.ring == "sundial" && f.what == "probe")
            .count();
        assert_eq!(shapes.len(), 2 + 2 + probes);
        // The pulse changes the drawing, never the run.
        assert_ne!(shapes, highlight_shapes(&w, 800.0, 600.0, &hl, 0.0));
        assert_eq!(w.sim().trace_hash(), hash);
        assert!(serde_json::from_str::<Highlight>(r#"{"node": [1]}"#).is_err());
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

    /// Every pair of nodes, drawn with their outline, is apart.
    fn assert_no_overlap(lay: &Layout, n: u64) {
        let pts: Vec<(f64, f64)> = (0..n).map(|id| lay.node_pos(id)).collect();
        let min = 2.0 * lay.footprint();
        assert!(lay.node_r > 0.5, "{n} nodes: discs of {} px", lay.node_r);
        for i in 0..pts.len() {
            for j in i + 1..pts.len() {
                let d = ((pts[i].0 - pts[j].0).powi(2) + (pts[i].1 - pts[j].1).powi(2)).sqrt();
                assert!(
                    d >= min,
                    "{n} nodes: {i} and {j} are {d:.2} px apart, their drawings {min:.2} px wide"
                );
            }
        }
    }

    #[test]
    fn nodes_never_overlap_and_keep_their_hash_order() {
        for (w, h) in [(760.0, 620.0), (400.0, 300.0), (1600.0, 1000.0)] {
            for n in [1, 2, 5, 12, 60, 500] {
                let lay = Layout::new(w, h, n);
                assert_no_overlap(&lay, n);
                // Clockwise order of the drawing = order of the hashes.
                let mut by_hash: Vec<u64> = (0..n).collect();
                by_hash.sort_by_key(|id| id.placement_hash());
                let turn = |id: &u64| {
                    (lay.node_angle(*id) - Layout::angle_of_hash(by_hash[0].placement_hash()))
                        .rem_euclid(TAU)
                };
                let mut by_angle = by_hash.clone();
                by_angle.sort_by(|a, b| turn(a).total_cmp(&turn(b)));
                // The first node may itself have moved back a little.
                let k = by_angle.iter().position(|x| *x == by_hash[0]).unwrap();
                by_angle.rotate_left(k);
                assert_eq!(by_angle, by_hash, "{n} nodes on {w}x{h}");
                // Every node is on the canvas, labels included.
                for id in 0..n {
                    let (x, y) = lay.node_pos(id);
                    assert!(x > 10.0 && x < w - 10.0 && y > 10.0 && y < h - 10.0);
                }
            }
        }
        // Labels fit at 60 nodes: at least a two-digit label's width apart.
        let lay = Layout::new(760.0, 620.0, 60);
        assert!(2.0 * lay.footprint() >= 1.4 * lay.label_px(), "{lay:?}");
        assert!(lay.label_px() >= 11.0);
    }

    #[test]
    fn every_node_is_drawn_in_its_own_palette_colour() {
        let mut w = World::new(VizConfig::new(1, 12)).unwrap();
        w.advance(Duration::from_millis(500)).unwrap();
        let s = scene(&w, 760.0, 620.0, None);
        let lay = Layout::new(760.0, 620.0, 12);
        for id in 0..12 {
            let (x, y) = lay.node_pos(id);
            let c = node_color(id);
            assert!(PALETTE.contains(&c.as_str()));
            assert!(
                circles_at(&s, x, y)
                    .iter()
                    .any(|sh| matches!(sh, Shape::Circle { fill: Some(f), .. } if *f == c)),
                "node {id} filled with {c}"
            );
        }
        assert_ne!(node_color(0), node_color(1));
    }

    #[test]
    fn a_filter_hides_messages_and_a_hit_finds_one() {
        let mut w = World::new(VizConfig::new(3, 6)).unwrap();
        w.advance(Duration::from_millis(1500)).unwrap();
        let flights = w.flights();
        assert!(!flights.is_empty());
        assert!(flights.iter().all(|f| f.what != "?"), "{flights:?}");
        let lay = Layout::new(760.0, 620.0, 6);
        let dots = |s: &[Shape]| {
            s.iter()
                .filter(|sh| matches!(sh, Shape::Circle { fill: Some(f), stroke: None, r, .. } if *r <= 7.0 && f != "#555" && !PALETTE.contains(&f.as_str())))
                .count()
        };
        let all = scene_opts(&w, 760.0, 620.0, &SceneOpts::default());
        let no_sundial = SceneOpts {
            filter: MsgFilter {
                rings: vec!["sundial".into()],
                kinds: vec![],
            },
            ..SceneOpts::default()
        };
        let sundial = flights.iter().filter(|f| f.ring == "sundial").count();
        assert!(sundial > 0);
        assert_eq!(
            dots(&all) - dots(&scene_opts(&w, 760.0, 620.0, &no_sundial)),
            sundial
        );
        let f = &flights[0];
        let (x, y) = flight_pos(&lay, f, w.now().as_micros());
        let hit = message_at(&w, &lay, &MsgFilter::default(), x + 1.0, y, 6.0).unwrap();
        let (hx, hy) = flight_pos(&lay, &hit, w.now().as_micros());
        assert!((hx - x).abs() <= 7.0 && (hy - y).abs() <= 7.0);
        let only = MsgFilter {
            rings: vec![],
            kinds: vec![format!("{}.{}", f.ring, f.what)],
        };
        assert!(!only.shows(f.ring, f.what) && only.shows("nope", f.what));
        let (_, payload) = w.message(f.id).unwrap();
        assert_eq!(
            crate::explain::describe(f.ring, &payload).map(|d| d.0),
            Some(f.what)
        );
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
