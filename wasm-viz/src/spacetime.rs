//! The space-time (Lamport) diagram: one lane per node, time left to
//! right, every message an arrow from its send to its delivery, drops
//! (×) and crashes (red bar, lane dashed while down) marked. Recorded from
//! the trace only (nothing here feeds back into the run), drawn as
//! [`Shape`]s, hit-tested for clicks.
//!
//! The record survives a rewind: the run replays the same messages with
//! the same ids, which are recognised and not recorded twice. A new action
//! after a rewind forks history: what came after it is forgotten
//! ([`SpaceTime::forked`]).

use std::collections::VecDeque;

use serde::Serialize;

use crate::render::{MsgFilter, Shape};

/// Most arrows kept (the oldest go first).
pub const MAX_ARROWS: usize = 60_000;
/// Most arrows drawn in one window (the newest first); more are counted.
pub const MAX_DRAWN: usize = 4_000;
/// The default window: this much virtual time across the diagram.
pub const DEFAULT_SPAN_US: u64 = 1_500_000;

/// What became of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum Fate {
    /// Still travelling (or parked on a held link).
    InFlight,
    /// Handled by its destination.
    Delivered,
    /// Lost, with the simulator's reason (`loss`, `partition`,
    /// `node_down`, `manual`, ...).
    Dropped(&'static str),
}

/// One message of the diagram.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arrow {
    /// The simulator's message id (unique, in send order).
    pub id: u64,
    /// Sender.
    pub from: u64,
    /// Destination.
    pub to: u64,
    /// Its ring.
    pub ring: &'static str,
    /// Its kind within the ring (`""` until seen decoded in flight).
    pub what: &'static str,
    /// Sent at, µs.
    pub sent_us: u64,
    /// Delivered or dropped at, µs.
    pub end_us: Option<u64>,
    /// What became of it.
    pub fate: Fate,
}

/// A node event drawn on its lane.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NodeEvent {
    /// Crashed.
    Crash,
    /// Started with this incarnation (1: joined; more: restarted).
    Start {
        /// The incarnation.
        incarnation: u32,
    },
    /// Paused (stalled) for `ms`.
    Pause {
        /// How long.
        ms: f64,
    },
    /// Its clock stepped by `ms`.
    Skew {
        /// The step.
        ms: f64,
    },
}

/// A node event at a time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Mark {
    /// The node.
    pub node: u64,
    /// When, µs.
    pub at_us: u64,
    /// What.
    pub event: NodeEvent,
}

/// The recorded history of one world.
#[derive(Clone, Debug, Default)]
pub struct SpaceTime {
    /// In id order (= send order).
    arrows: VecDeque<Arrow>,
    /// In time order.
    marks: Vec<Mark>,
}

impl SpaceTime {
    /// The arrows, oldest first.
    pub fn arrows(&self) -> impl ExactSizeIterator<Item = &Arrow> + '_ {
        self.arrows.iter()
    }

    /// The node events, oldest first.
    pub fn marks(&self) -> &[Mark] {
        &self.marks
    }

    fn pos(&self, id: u64) -> Option<usize> {
        let (a, b) = self.arrows.as_slices();
        match a.binary_search_by_key(&id, |x| x.id) {
            Ok(i) => Some(i),
            Err(_) => b
                .binary_search_by_key(&id, |x| x.id)
                .ok()
                .map(|i| i + a.len()),
        }
    }

    /// One more than the newest message id recorded (0 when none).
    pub fn next_id(&self) -> u64 {
        self.arrows.back().map_or(0, |a| a.id + 1)
    }

    /// Message `id`, if recorded.
    pub fn arrow(&self, id: u64) -> Option<&Arrow> {
        self.pos(id).map(|i| &self.arrows[i])
    }

    /// Message `id` was sent (ignored if already recorded: a replay).
    pub fn sent(&mut self, id: u64, from: u64, to: u64, ring: &'static str, at_us: u64) {
        if self.arrows.back().is_some_and(|a| a.id >= id) {
            return;
        }
        self.arrows.push_back(Arrow {
            id,
            from,
            to,
            ring,
            what: "",
            sent_us: at_us,
            end_us: None,
            fate: Fate::InFlight,
        });
        if self.arrows.len() > MAX_ARROWS {
            self.arrows.pop_front();
        }
    }

    /// Message `id` ended (delivered or dropped) at `at_us`.
    pub fn ended(&mut self, id: u64, fate: Fate, at_us: u64) {
        if let Some(i) = self.pos(id) {
            let a = &mut self.arrows[i];
            if a.fate == Fate::InFlight {
                a.fate = fate;
                a.end_us = Some(at_us);
            }
        }
    }

    /// Message `copy` is a duplicate of `id`, sent at `at_us`.
    pub fn duplicated(&mut self, id: u64, copy: u64, at_us: u64) {
        if let Some((from, to, ring, what)) = self.arrow(id).map(|a| (a.from, a.to, a.ring, a.what))
        {
            self.sent(copy, from, to, ring, at_us);
            self.set_kind(copy, what);
        }
    }

    /// The kind of message `id`, once decoded.
    pub fn set_kind(&mut self, id: u64, what: &'static str) {
        if let Some(i) = self.pos(id) {
            if self.arrows[i].what.is_empty() {
                self.arrows[i].what = what;
            }
        }
    }

    /// Whether message `id` still lacks its kind.
    pub fn lacks_kind(&self, id: u64) -> bool {
        self.arrow(id).is_some_and(|a| a.what.is_empty())
    }

    /// A node event (ignored if already recorded: a replay).
    pub fn mark(&mut self, m: Mark) {
        if self
            .marks
            .iter()
            .rev()
            .take_while(|x| x.at_us >= m.at_us)
            .any(|x| *x == m)
        {
            return;
        }
        let i = self.marks.partition_point(|x| x.at_us <= m.at_us);
        self.marks.insert(i, m);
    }

    /// A new action at `now_us` forked history: forget what came after.
    pub fn forked(&mut self, now_us: u64) {
        while self.arrows.back().is_some_and(|a| a.sent_us > now_us) {
            self.arrows.pop_back();
        }
        for a in &mut self.arrows {
            if a.end_us.is_some_and(|e| e > now_us) {
                a.end_us = None;
                a.fate = Fate::InFlight;
            }
        }
        self.marks.retain(|m| m.at_us <= now_us);
    }

    /// Whether `node` is down at `t_us` (crashed and not started since).
    pub fn down_at(&self, node: u64, t_us: u64) -> bool {
        let mut down = false;
        for m in self.marks.iter().filter(|m| m.node == node) {
            if m.at_us > t_us {
                break;
            }
            match m.event {
                NodeEvent::Crash => down = true,
                NodeEvent::Start { .. } => down = false,
                _ => {}
            }
        }
        down
    }
}

/// The diagram's geometry: lanes, and the time window across it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geom {
    /// Left edge of the time axis (labels to its left).
    pub x0: f64,
    /// Right edge.
    pub x1: f64,
    /// Top of the first lane.
    pub y0: f64,
    /// Lane spacing.
    pub lane: f64,
    /// Lanes.
    pub nodes: u64,
    /// Window start, µs.
    pub t0: u64,
    /// Window end, µs.
    pub t1: u64,
}

impl Geom {
    /// The diagram of `nodes` lanes on a `width` × `height` canvas, its
    /// window of `span_us` showing `now_us` four fifths of the way across
    /// (or the start of the run at the left edge).
    pub fn new(width: f64, height: f64, nodes: u64, now_us: u64, span_us: u64) -> Geom {
        let span = span_us.max(1_000);
        let t0 = now_us.saturating_sub(span * 4 / 5);
        let n = nodes.max(1);
        let top = 16.0;
        let lane = ((height - top - 8.0).max(1.0) / n as f64).max(0.5);
        Geom {
            x0: 44.0,
            x1: (width - 8.0).max(54.0),
            y0: top + lane / 2.0,
            lane,
            nodes,
            t0,
            t1: t0 + span,
        }
    }

    /// The x of time `t_us` (may fall outside the window).
    pub fn x_of(&self, t_us: u64) -> f64 {
        self.x0 + (t_us as f64 - self.t0 as f64) / (self.t1 - self.t0) as f64 * (self.x1 - self.x0)
    }

    /// The y of node `id`'s lane.
    pub fn y_of(&self, id: u64) -> f64 {
        self.y0 + id as f64 * self.lane
    }

    /// The time at x (clamped to the window), µs.
    pub fn time_at(&self, x: f64) -> u64 {
        let f = ((x - self.x0) / (self.x1 - self.x0)).clamp(0.0, 1.0);
        self.t0 + (f * (self.t1 - self.t0) as f64).round() as u64
    }

    /// Where arrow `a` is drawn at `now_us`: its start and end points (a
    /// message in flight ends at now, part of the way).
    pub fn segment(&self, a: &Arrow, now_us: u64) -> Option<((f64, f64), (f64, f64))> {
        if a.sent_us > now_us.max(self.t1) {
            return None;
        }
        let end = a.end_us.unwrap_or(now_us.max(a.sent_us));
        if end < self.t0 || a.sent_us > self.t1 {
            return None;
        }
        let p0 = (self.x_of(a.sent_us), self.y_of(a.from));
        let mut p1 = (self.x_of(end), self.y_of(a.to));
        if let Fate::Dropped(_) = a.fate {
            // A dropped message stops short of its destination.
            p1 = (p1.0, p0.1 + (p1.1 - p0.1) * 0.6);
        }
        Some((p0, p1))
    }
}

/// The colour of a message of `ring` and kind `what`.
pub fn msg_color(ring: &str, what: &str) -> &'static str {
    match (ring, what) {
        ("cartouche", "token") => "#ffd700",
        ("cartouche", _) => "#c9a227",
        ("ouroboros", k) => crate::render::log_msg_color(k),
        _ => "#64b5f6",
    }
}

/// What the diagram draws.
#[derive(Clone, Debug, Default)]
pub struct DiagramOpts {
    /// The highlighted message.
    pub message: Option<u64>,
    /// The highlighted lane.
    pub selected: Option<u64>,
    /// Which messages to draw.
    pub filter: MsgFilter,
    /// Messages to highlight as the causes of a selection.
    pub causes: Vec<u64>,
}

fn line(out: &mut Vec<Shape>, p0: (f64, f64), p1: (f64, f64), width: f64, color: &str) {
    out.push(Shape::Line {
        x0: p0.0,
        y0: p0.1,
        x1: p1.0,
        y1: p1.1,
        width,
        color: color.to_string(),
    });
}

/// The arrows drawn in window `g` at `now_us` (filtered, newest
/// [`MAX_DRAWN`] of them), and how many more there were.
pub fn visible<'a>(
    st: &'a SpaceTime,
    g: &Geom,
    now_us: u64,
    filter: &MsgFilter,
) -> (Vec<&'a Arrow>, usize) {
    let mut out = Vec::new();
    let mut more = 0;
    for a in st.arrows.iter().rev() {
        if a.sent_us + (g.t1 - g.t0) * 4 < g.t0 {
            break;
        }
        if a.from >= g.nodes || a.to >= g.nodes || !filter.shows(a.ring, a.what) {
            continue;
        }
        if g.segment(a, now_us).is_some() {
            if out.len() < MAX_DRAWN {
                out.push(a);
            } else {
                more += 1;
            }
        }
    }
    out.reverse();
    (out, more)
}

/// The diagram of `st` for `nodes` lanes at `now_us` on a `width` ×
/// `height` canvas (window of `span_us`; history after now, kept after a
/// rewind, drawn dimmed).
pub fn diagram(
    st: &SpaceTime,
    g: &Geom,
    now_us: u64,
    horizon_us: u64,
    opts: &DiagramOpts,
) -> Vec<Shape> {
    let mut out = Vec::new();
    let label_every = (12.0 / g.lane).ceil().max(1.0) as u64;
    out.push(Shape::Font {
        px: g.lane.clamp(8.0, 11.0),
    });
    // Lanes: solid while up, faint while down.
    for id in 0..g.nodes {
        let y = g.y_of(id);
        let color = if opts.selected == Some(id) {
            "#ffffff"
        } else {
            "#3a4150"
        };
        line(&mut out, (g.x0, y), (g.x1, y), 1.0, color);
        if id % label_every == 0 {
            out.push(Shape::Label {
                x: 4.0,
                y,
                text: format!("n{id}"),
                color: crate::render::node_color(id),
            });
        }
    }
    // Down stretches, crashes, starts, pauses, skews.
    for (i, m) in st.marks.iter().enumerate() {
        if m.node >= g.nodes || m.at_us > g.t1 {
            continue;
        }
        let x = g.x_of(m.at_us.max(g.t0));
        let y = g.y_of(m.node);
        let h = (g.lane * 0.45).clamp(2.0, 8.0);
        match m.event {
            NodeEvent::Crash => {
                let until = st.marks[i + 1..]
                    .iter()
                    .find(|n| n.node == m.node && matches!(n.event, NodeEvent::Start { .. }))
                    .map_or(horizon_us.max(now_us), |n| n.at_us);
                if until >= g.t0 {
                    let x1 = g.x_of(until.min(g.t1));
                    line(
                        &mut out,
                        (x, y),
                        (x1, y),
                        (g.lane * 0.5).max(1.0),
                        "#5a2020",
                    );
                }
                if m.at_us >= g.t0 {
                    line(&mut out, (x, y - h), (x, y + h), 3.0, "#e53935");
                }
            }
            NodeEvent::Start { incarnation } if m.at_us >= g.t0 && m.at_us > 0 => {
                let c = if incarnation > 1 {
                    "#66bb6a"
                } else {
                    "#9ccc65"
                };
                line(&mut out, (x, y - h), (x, y + h), 3.0, c);
            }
            NodeEvent::Pause { ms } => {
                let x1 = g.x_of((m.at_us + (ms * 1000.0) as u64).min(g.t1));
                line(
                    &mut out,
                    (x, y),
                    (x1, y),
                    (g.lane * 0.5).max(1.5),
                    "#8e24aa",
                );
            }
            NodeEvent::Skew { .. } if m.at_us >= g.t0 => {
                line(&mut out, (x - h, y + h), (x + h, y - h), 2.0, "#ff7043");
            }
            _ => {}
        }
    }
    // Arrows.
    let (arrows, more) = visible(st, g, now_us, &opts.filter);
    let thin = (g.lane / 14.0).clamp(0.6, 1.2);
    let mut emphasised = Vec::new();
    for a in arrows {
        let Some((p0, p1)) = g.segment(a, now_us) else {
            continue;
        };
        let future = a.sent_us > now_us;
        let color = if future {
            "#39404d"
        } else {
            msg_color(a.ring, a.what)
        };
        if opts.message == Some(a.id) || opts.causes.contains(&a.id) {
            emphasised.push((a, p0, p1));
            continue;
        }
        line(&mut out, p0, p1, thin, color);
        arrow_end(&mut out, a, p0, p1, thin, color, g.lane);
    }
    for (a, p0, p1) in emphasised {
        let (c, w) = if opts.message == Some(a.id) {
            ("#ffffff", 2.5)
        } else {
            ("#ff4081", 2.0)
        };
        line(&mut out, p0, p1, w, c);
        arrow_end(&mut out, a, p0, p1, w, c, g.lane.max(10.0));
    }
    // Now, and the window's scale.
    let xn = g.x_of(now_us);
    line(
        &mut out,
        (xn, 4.0),
        (xn, g.y_of(g.nodes) - g.lane / 2.0),
        1.5,
        "#e6edf3",
    );
    out.push(Shape::Font { px: 10.0 });
    out.push(Shape::Label {
        x: g.x0,
        y: 7.0,
        text: format!(
            "{:.2} s – {:.2} s{}",
            g.t0 as f64 / 1e6,
            g.t1 as f64 / 1e6,
            if more > 0 {
                format!(" · {more} more messages not drawn (filter rings or kinds)")
            } else {
                String::new()
            }
        ),
        color: "#9e9e9e".into(),
    });
    out
}

/// The head of an arrow at `p1`: two short strokes, or a cross for a drop.
fn arrow_end(
    out: &mut Vec<Shape>,
    a: &Arrow,
    p0: (f64, f64),
    p1: (f64, f64),
    w: f64,
    color: &str,
    lane: f64,
) {
    let s = (lane * 0.35).clamp(2.0, 5.0);
    match a.fate {
        Fate::Dropped(_) => {
            line(
                out,
                (p1.0 - s, p1.1 - s),
                (p1.0 + s, p1.1 + s),
                w + 0.6,
                "#e53935",
            );
            line(
                out,
                (p1.0 - s, p1.1 + s),
                (p1.0 + s, p1.1 - s),
                w + 0.6,
                "#e53935",
            );
        }
        Fate::Delivered => {
            let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
            let len = (dx * dx + dy * dy).sqrt();
            if len < 1.0 {
                return;
            }
            let (ux, uy) = (dx / len, dy / len);
            for sign in [1.0, -1.0] {
                let (bx, by) = (
                    p1.0 - ux * s - uy * s * 0.6 * sign,
                    p1.1 - uy * s + ux * s * 0.6 * sign,
                );
                line(out, (bx, by), p1, w, color);
            }
        }
        Fate::InFlight => {}
    }
}

/// The drawn arrow nearest to `(x, y)`, within `slack` px.
pub fn arrow_at(
    st: &SpaceTime,
    g: &Geom,
    now_us: u64,
    filter: &MsgFilter,
    x: f64,
    y: f64,
    slack: f64,
) -> Option<u64> {
    let (arrows, _) = visible(st, g, now_us, filter);
    arrows
        .into_iter()
        .filter_map(|a| {
            let (p0, p1) = g.segment(a, now_us)?;
            Some((dist_to_segment((x, y), p0, p1), a.id))
        })
        .filter(|(d, _)| *d <= slack)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id)
}

fn dist_to_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let l2 = dx * dx + dy * dy;
    let t = if l2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / l2).clamp(0.0, 1.0)
    };
    let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt()
}

/// A cause chain ([`crate::narrate::Narration::chain_of`]) drawn over the
/// diagram in window `g`: a ring on each line's node and time (white for
/// the effect `effect`, pink for its causes; a vertical bar for a line
/// about the whole network), and a link from every cause to what it
/// caused. Lines outside the window are left out, links to them too.
pub fn cause_shapes(g: &Geom, chain: &[&crate::narrate::Line], effect: u64) -> Vec<Shape> {
    let inside = |l: &crate::narrate::Line| (g.t0..=g.t1).contains(&l.at_us);
    let at = |l: &crate::narrate::Line| (g.x_of(l.at_us), g.y_of(l.node));
    let mut out = Vec::new();
    for l in chain.iter().filter(|l| inside(l)) {
        for c in chain
            .iter()
            .filter(|c| l.causes.contains(&c.id) && inside(c))
        {
            line(&mut out, at(c), at(l), 1.5, "#ff4081");
        }
    }
    let top = g.y0 - g.lane / 2.0;
    let bottom = g.y_of(g.nodes.max(1) - 1) + g.lane / 2.0;
    for l in chain.iter().filter(|l| inside(l)) {
        let color = if l.id == effect { "#ffffff" } else { "#ff4081" };
        if l.all {
            let x = g.x_of(l.at_us);
            line(&mut out, (x, top), (x, bottom), 2.0, color);
        } else {
            let (x, y) = at(l);
            out.push(Shape::Circle {
                x,
                y,
                r: (g.lane * 0.45).clamp(4.0, 9.0),
                fill: None,
                stroke: Some((color.to_string(), 2.0)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st() -> SpaceTime {
        let mut s = SpaceTime::default();
        s.sent(1, 0, 1, "sundial", 100_000);
        s.sent(2, 1, 2, "cartouche", 150_000);
        s.sent(3, 2, 0, "sundial", 200_000);
        s.ended(1, Fate::Delivered, 140_000);
        s.ended(2, Fate::Dropped("loss"), 180_000);
        s.set_kind(1, "probe");
        s.set_kind(2, "token");
        s.mark(Mark {
            node: 2,
            at_us: 300_000,
            event: NodeEvent::Crash,
        });
        s
    }

    #[test]
    fn records_fates_once_and_replays_are_not_recorded_twice() {
        let mut s = st();
        // A replay after a rewind: same ids, same times.
        s.sent(1, 0, 1, "sundial", 100_000);
        s.ended(1, Fate::Dropped("loss"), 140_000);
        s.mark(Mark {
            node: 2,
            at_us: 300_000,
            event: NodeEvent::Crash,
        });
        assert_eq!(s.arrows().len(), 3);
        assert_eq!(s.marks().len(), 1);
        assert_eq!(s.arrow(1).unwrap().fate, Fate::Delivered);
        assert_eq!(s.arrow(2).unwrap().fate, Fate::Dropped("loss"));
        assert_eq!(s.arrow(3).unwrap().fate, Fate::InFlight);
        assert_eq!(s.arrow(1).unwrap().what, "probe");
        s.set_kind(1, "ack");
        assert_eq!(s.arrow(1).unwrap().what, "probe", "a kind is set once");
        assert!(s.down_at(2, 300_000) && !s.down_at(2, 299_999) && !s.down_at(0, 400_000));
    }

    #[test]
    fn a_fork_forgets_the_future_and_reopens_fates() {
        let mut s = st();
        s.forked(160_000);
        assert_eq!(s.arrows().map(|a| a.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(s.arrow(1).unwrap().fate, Fate::Delivered);
        assert_eq!(
            s.arrow(2).unwrap().fate,
            Fate::InFlight,
            "it ended after the fork"
        );
        assert!(s.marks().is_empty());
        // The new history reuses ids after the fork point.
        s.sent(3, 0, 2, "sundial", 170_000);
        assert_eq!(s.arrow(3).unwrap().from, 0);
    }

    #[test]
    fn geometry_maps_times_and_lanes_and_hits_arrows() {
        let s = st();
        let g = Geom::new(800.0, 200.0, 3, 250_000, 1_000_000);
        assert_eq!(g.t0, 0);
        assert!((g.x_of(0) - g.x0).abs() < 1e-9 && (g.x_of(1_000_000) - g.x1).abs() < 1e-9);
        assert_eq!(g.time_at(g.x_of(400_000)), 400_000);
        assert!(g.y_of(1) > g.y_of(0) && g.y_of(2) < 200.0);
        // Click the middle of message 1's arrow: it is hit; far away: none.
        let (p0, p1) = g.segment(s.arrow(1).unwrap(), 250_000).unwrap();
        let mid = ((p0.0 + p1.0) / 2.0, (p0.1 + p1.1) / 2.0);
        let f = MsgFilter::default();
        assert_eq!(arrow_at(&s, &g, 250_000, &f, mid.0, mid.1, 4.0), Some(1));
        assert_eq!(arrow_at(&s, &g, 250_000, &f, g.x1, 1.0, 4.0), None);
        // Filtered out: no longer hit.
        let hide = MsgFilter {
            rings: vec!["sundial".into()],
            kinds: vec![],
        };
        assert_eq!(arrow_at(&s, &g, 250_000, &hide, mid.0, mid.1, 4.0), None);
        // A message in flight runs to now; one sent after now is not drawn
        // while now is past the window.
        let (_, q1) = g.segment(s.arrow(3).unwrap(), 250_000).unwrap();
        assert!((q1.0 - g.x_of(250_000)).abs() < 1e-9);
        let late = Geom::new(800.0, 200.0, 3, 5_000_000, 1_000_000);
        assert!(late.segment(s.arrow(1).unwrap(), 5_000_000).is_none());
    }

    #[test]
    fn the_diagram_marks_drops_crashes_and_the_selection() {
        let s = st();
        let g = Geom::new(800.0, 200.0, 3, 400_000, 1_000_000);
        let lines = |opts: &DiagramOpts| -> Vec<String> {
            diagram(&s, &g, 400_000, 400_000, opts)
                .into_iter()
                .filter_map(|sh| match sh {
                    Shape::Line { color, .. } => Some(color),
                    _ => None,
                })
                .collect()
        };
        let plain = lines(&DiagramOpts::default());
        // Two red strokes of the drop's cross, one red crash bar.
        assert_eq!(plain.iter().filter(|c| *c == "#e53935").count(), 3);
        assert!(
            plain.iter().any(|c| c == "#5a2020"),
            "node 2 is down after its crash"
        );
        assert!(plain.iter().any(|c| c == "#ffd700"), "the token in gold");
        let sel = lines(&DiagramOpts {
            message: Some(1),
            ..DiagramOpts::default()
        });
        assert!(
            sel.iter().filter(|c| *c == "#ffffff").count() >= 3,
            "selected arrow and head"
        );
    }

    #[test]
    fn a_cause_chain_is_rings_and_links_in_the_window() {
        use crate::narrate::{Narration, Tag};
        let mut n = Narration::default();
        n.push_tagged(100_000, (2, false), "fault", "crash".into(), Tag::Down(2));
        n.push_tagged(200_000, (0, true), "fault", "cut".into(), Tag::Cut);
        n.push_tagged(
            900_000,
            (1, false),
            "sundial",
            "s".into(),
            Tag::Suspected(2),
        );
        let g = Geom::new(600.0, 200.0, 3, 1_000_000, 1_500_000);
        let chain = n.chain_of(2);
        assert_eq!(chain.len(), 2, "the suspicion follows the cut, the latest");
        let shapes = cause_shapes(&g, &chain, 2);
        let rings: Vec<&Shape> = shapes
            .iter()
            .filter(|s| matches!(s, Shape::Circle { .. }))
            .collect();
        assert_eq!(rings.len(), 1, "the cut is a bar, not a ring");
        let Shape::Circle { x, y, stroke, .. } = rings[0] else {
            unreachable!()
        };
        assert_eq!((*x, *y), (g.x_of(900_000), g.y_of(1)));
        assert_eq!(stroke.as_ref().unwrap().0, "#ffffff", "the effect is white");
        let lines = shapes
            .iter()
            .filter(|s| matches!(s, Shape::Line { .. }))
            .count();
        assert_eq!(lines, 2, "one link and the cut's bar");
        // A window that ends before the chain draws nothing.
        let early = Geom::new(600.0, 200.0, 3, 50_000, 60_000);
        assert!(cause_shapes(&early, &chain, 2).is_empty());
    }
}
