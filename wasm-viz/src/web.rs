//! The wasm-bindgen API the page uses: a thin layer over [`World`] (every
//! decision lives there) plus the canvas painter (web-sys).
//!
//! Errors become JS exceptions (`JsError`) carrying the same message the
//! native code returns; nothing here panics on bad input.

use core::time::Duration;

use shen_rings::Time;
use wasm_bindgen::prelude::*;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

use crate::explain::{describe, why};
use crate::live::{event_color, fork_hash, live_scene, parse_event, parse_status, LiveStatus};
use crate::render::{
    highlight_shapes, message_at, scene_opts, Highlight, Layout, MsgFilter, SceneOpts, Shape,
};
use crate::script::{parse_script, Op, UrlParams};
use crate::spacetime::{arrow_at, cause_shapes, diagram, DiagramOpts, Fate, Geom, DEFAULT_SPAN_US};
use crate::state::state_json;
use crate::world::{VizConfig, World};

fn js(e: String) -> JsError {
    JsError::new(&e)
}

/// The trace hash (16 hex digits) of a scenario's text run with `seed`,
/// as `shen sim run --scenario FILE --seed SEED --json` reports it.
#[wasm_bindgen(js_name = traceHash)]
pub fn trace_hash_js(scenario: &str, seed: u64) -> Result<String, JsError> {
    crate::trace_hash(scenario, seed)
        .map(|h| format!("{h:016x}"))
        .map_err(js)
}

/// One browser simulator: a world, its canvas and the selected node.
#[wasm_bindgen]
pub struct Viz {
    world: World,
    params: UrlParams,
    ctx: Option<CanvasRenderingContext2d>,
    width: f64,
    height: f64,
    selected: Option<u64>,
    /// The inspected message.
    message: Option<u64>,
    /// Messages hidden from the drawing.
    filter: MsgFilter,
    /// Device pixels per CSS pixel (the canvas's backing store is this
    /// much bigger than `width` × `height`, which are CSS pixels).
    dpr: f64,
    /// The log partition whose chain is drawn (log worlds).
    log_partition: u32,
    /// The ownership ring drawn once on an offscreen canvas, redrawn only
    /// when the reference view or the size changes: (canvas, key).
    ring_layer: Option<(HtmlCanvasElement, (u64, u64, u64, u64))>,
    /// The space-time diagram's canvas: (context, CSS width, height).
    st: Option<(CanvasRenderingContext2d, f64, f64)>,
    /// The diagram's window, µs of virtual time.
    st_span_us: u64,
    /// Draw Ankh's sample keys.
    show_keys: bool,
    /// The sample key whose replica walk is drawn.
    key: Option<usize>,
    /// What a lesson points at (view state only).
    highlight: Highlight,
    /// The narration line whose causes are drawn on the diagram.
    cause_of: Option<u64>,
}

fn ms(t: f64) -> Result<Duration, JsError> {
    if (0.0..1e12).contains(&t) {
        Ok(Duration::from_micros((t * 1000.0).round() as u64))
    } else {
        Err(JsError::new(&format!(
            "time must be a non-negative number of ms, got {t}"
        )))
    }
}

fn msg_id(id: f64) -> Result<u64, JsError> {
    if id.is_finite() && id >= 0.0 && id.fract() == 0.0 && id < 9.0e15 {
        Ok(id as u64)
    } else {
        Err(JsError::new(&format!("not a message or timer id: {id}")))
    }
}

#[wasm_bindgen]
impl Viz {
    /// A world of `nodes` nodes seeded with `seed` (decimal text: seeds are
    /// 64-bit).
    #[wasm_bindgen(constructor)]
    pub fn new(seed: &str, nodes: u32) -> Result<Viz, JsError> {
        let seed: u64 = seed
            .trim()
            .parse()
            .map_err(|_| JsError::new(&format!("seed must be an integer 0..2^64, got `{seed}`")))?;
        Viz::from_params(UrlParams {
            seed,
            nodes: u64::from(nodes),
            ..UrlParams::default()
        })
    }

    /// The world a URL hash describes (`#seed=7&nodes=5&faults=...&t=...`),
    /// run to `t` if given.
    #[wasm_bindgen(js_name = fromHash)]
    pub fn from_hash(hash: &str) -> Result<Viz, JsError> {
        let params = UrlParams::parse(hash).map_err(js)?;
        let mut v = Viz::from_params(params)?;
        if let Some(t) = v.params.t_us {
            v.world.run_to(Time::from_micros(t)).map_err(js)?;
        }
        Ok(v)
    }

    fn from_params(params: UrlParams) -> Result<Viz, JsError> {
        let config = VizConfig::from_url(&params).map_err(js)?;
        let world = World::with_script(config, params.faults.clone()).map_err(js)?;
        Ok(Viz {
            world,
            params,
            ctx: None,
            width: 800.0,
            height: 600.0,
            selected: None,
            message: None,
            filter: MsgFilter::default(),
            dpr: 1.0,
            log_partition: 0,
            ring_layer: None,
            st: None,
            st_span_us: DEFAULT_SPAN_US,
            show_keys: true,
            key: None,
            highlight: Highlight::default(),
            cause_of: None,
        })
    }

    /// Draw on `canvas` from now on.
    pub fn attach(&mut self, canvas: HtmlCanvasElement) -> Result<(), JsError> {
        // Opaque: every frame paints the whole canvas, so the compositor
        // need not blend it with the page.
        let attrs = web_sys::ContextAttributes2d::new();
        attrs.set_alpha(false);
        let ctx = canvas
            .get_context_with_context_options("2d", &attrs)
            .map_err(|_| JsError::new("canvas: getContext('2d') failed"))?
            .ok_or_else(|| JsError::new("canvas: no 2d context"))?
            .dyn_into::<CanvasRenderingContext2d>()
            .map_err(|_| JsError::new("canvas: not a 2d context"))?;
        self.width = f64::from(canvas.width()) / self.dpr;
        self.height = f64::from(canvas.height()) / self.dpr;
        self.ctx = Some(ctx);
        Ok(())
    }

    /// The canvas was resized: `width` × `height` CSS pixels (the backing
    /// store being [`Viz::set_pixel_ratio`] times bigger).
    pub fn resize(&mut self, width: u32, height: u32) {
        self.width = f64::from(width.max(1));
        self.height = f64::from(height.max(1));
    }

    /// Device pixels per CSS pixel (`window.devicePixelRatio`): drawing is
    /// scaled by it, so it is sharp on HiDPI screens. Coordinates stay CSS
    /// pixels.
    #[wasm_bindgen(js_name = setPixelRatio)]
    pub fn set_pixel_ratio(&mut self, dpr: f64) {
        self.dpr = if dpr.is_finite() && dpr > 0.0 {
            dpr.clamp(0.25, 8.0)
        } else {
            1.0
        };
    }

    /// The layout of the nodes on the current canvas.
    fn layout(&self) -> Layout {
        Layout::new(self.width, self.height, self.world.sim().node_count())
    }

    /// The drawing options of this frame.
    fn opts(&self) -> SceneOpts {
        SceneOpts {
            selected: self.selected,
            partition: self.has_log().then_some(self.log_partition),
            message: self.message,
            filter: self.filter.clone(),
            keys: self.show_keys,
            key: self.key,
        }
    }

    // ------------------------------------------------------------ time

    /// Advance by `ms` of virtual time, spending at most `budget_ms` of
    /// real time on it (0: no limit; the page passes its frame budget).
    /// Returns the virtual time actually advanced, ms: less than asked when
    /// the world is too big to simulate that fast.
    pub fn advance(&mut self, ms_: f64, budget_ms: f64) -> Result<f64, JsError> {
        let before = self.world.now();
        let target = before + ms(ms_)?;
        let perf = web_sys::window().and_then(|w| w.performance());
        match perf {
            Some(p) if budget_ms > 0.0 => {
                let deadline = p.now() + budget_ms;
                self.world
                    .run_to_within(target, || p.now() > deadline)
                    .map_err(js)?;
            }
            _ => self.world.run_to(target).map_err(js)?,
        }
        Ok(self.world.now().saturating_since(before).as_secs_f64() * 1000.0)
    }

    /// Advance to the next event time.
    pub fn step(&mut self) -> Result<(), JsError> {
        self.world.step().map_err(js)
    }

    /// Go to virtual time `ms` (backwards from a snapshot, or forwards).
    pub fn seek(&mut self, ms_: f64) -> Result<(), JsError> {
        let d = ms(ms_)?;
        self.world.seek(Time::ZERO + d).map_err(js)
    }

    /// Virtual time now, ms.
    #[wasm_bindgen(js_name = timeMs)]
    pub fn time_ms(&self) -> f64 {
        self.world.now().as_micros() as f64 / 1000.0
    }

    /// The end of the timeline, ms.
    #[wasm_bindgen(js_name = horizonMs)]
    pub fn horizon_ms(&self) -> f64 {
        self.world.horizon().as_micros() as f64 / 1000.0
    }

    /// Number of nodes (running or not).
    #[wasm_bindgen(js_name = nodeCount)]
    pub fn node_count(&self) -> u32 {
        self.world.sim().node_count() as u32
    }

    // ------------------------------------------------------------ actions

    fn act(&mut self, op: Op) -> Result<String, JsError> {
        self.world.act(op).map(|a| a.to_string()).map_err(js)
    }

    /// The first whole millisecond (as ms) after now, and at or after
    /// `from_ms`, with nothing queued: where a fault made now may go. The
    /// side-by-side page schedules a fault at a slot free in both worlds.
    #[wasm_bindgen(js_name = faultSlot)]
    pub fn fault_slot(&self, from_ms: f64) -> Result<f64, JsError> {
        let from = ms(from_ms)?.as_micros() as u64;
        Ok(self.world.fault_slot(from) as f64 / 1000.0)
    }

    /// Apply one script item (`TIME_US:OP[:ARG]`, see [`crate::script`]):
    /// a fault at that time (a [`Viz::fault_slot`]), anything else now.
    /// Returns the action as recorded.
    #[wasm_bindgen(js_name = actAt)]
    pub fn act_at(&mut self, item: &str) -> Result<String, JsError> {
        let mut items = parse_script(item).map_err(js)?;
        if items.len() != 1 {
            return Err(JsError::new(&format!(
                "actAt: want one action `TIME_US:OP[:ARG]`, got `{item}`"
            )));
        }
        let a = items.remove(0);
        self.world
            .act_at(a.op, a.at_us)
            .map(|a| a.to_string())
            .map_err(js)
    }

    /// The run's key figures as JSON (convergence, detection, acquisitions,
    /// keys moved: see [`crate::figures::Figures`]).
    #[wasm_bindgen(js_name = figuresJson)]
    pub fn figures_json(&self) -> String {
        crate::figures::figures_json(&self.world)
    }

    /// A side-by-side hash (`sbs=SETTING:A/B&...`) described as JSON:
    /// `{setting, values, hashes: [A, B], script, t_us}`; `hashes` are the
    /// two single-world hashes to open with [`Viz::from_hash`].
    #[wasm_bindgen(js_name = sideBySide)]
    pub fn side_by_side(hash: &str) -> Result<String, JsError> {
        crate::compare::describe_json(hash).map_err(js)
    }

    /// The side-by-side hash `hash` after a run: both worlds' shared
    /// `script` (URL form) and time `t_ms` replace the ones it had.
    #[wasm_bindgen(js_name = sideBySideHash)]
    pub fn side_by_side_hash(hash: &str, script: &str, t_ms: f64) -> Result<String, JsError> {
        let s = crate::compare::SideBySide::parse(hash).map_err(js)?;
        let faults = parse_script(script).map_err(js)?;
        let t = ms(t_ms)?.as_micros() as u64;
        s.hash_with(faults, Some(t)).map_err(js)
    }

    /// Add a node; returns its id.
    #[wasm_bindgen(js_name = addNode)]
    pub fn add_node(&mut self) -> Result<u32, JsError> {
        self.act(Op::AddNode)?;
        Ok(self.node_count() - 1)
    }

    /// Crash node `id`.
    pub fn crash(&mut self, id: u32) -> Result<String, JsError> {
        self.act(Op::Crash(u64::from(id)))
    }

    /// Restart node `id`.
    pub fn restart(&mut self, id: u32) -> Result<String, JsError> {
        self.act(Op::Restart(u64::from(id)))
    }

    /// Stall node `id` for `ms` (a GC pause).
    pub fn pause(&mut self, id: u32, ms_: f64) -> Result<String, JsError> {
        self.act(Op::Pause {
            node: u64::from(id),
            ms: ms_,
        })
    }

    /// Step node `id`'s clock by `ms` (negative: backwards).
    pub fn skew(&mut self, id: u32, ms_: f64) -> Result<String, JsError> {
        self.act(Op::Skew {
            node: u64::from(id),
            ms: ms_,
        })
    }

    /// Power loss at node `id`: it restarts and its writes not yet
    /// fsynced are lost.
    #[wasm_bindgen(js_name = powerLoss)]
    pub fn power_loss(&mut self, id: u32) -> Result<String, JsError> {
        self.act(Op::PowerLoss(u64::from(id)))
    }

    /// Log worlds: node `id` asks to leave the log's member set (`shen
    /// leave`); its chains move away, then the world stops it for good.
    pub fn leave(&mut self, id: u32) -> Result<String, JsError> {
        self.act(Op::Leave(u64::from(id)))
    }

    /// Log worlds: the lowest running member asks to remove member `id`,
    /// which is down (`shen member remove` of a dead node).
    #[wasm_bindgen(js_name = removeMember)]
    pub fn remove_member(&mut self, id: u32) -> Result<String, JsError> {
        self.act(Op::RemoveMember(u64::from(id)))
    }

    /// What may happen next (delivery-choice mode), as JSON: the first
    /// `max` of `[{kind: "message"|"timer", id, from, to, node, ring,
    /// ring_id, what, due_us, token, why}]` in the order they would
    /// happen.
    #[wasm_bindgen(js_name = choicesJson)]
    pub fn choices_json(&self, max: u32) -> String {
        let list: Vec<serde_json::Value> = self
            .world
            .choices()
            .into_iter()
            .take(max as usize)
            .map(|c| {
                let why = if c.kind == "timer" {
                    format!(
                        "Node {}'s {} timer {}: it would fire on its own at {:.3} ms.",
                        c.node,
                        c.ring,
                        c.token,
                        c.due_us as f64 / 1000.0
                    )
                } else {
                    why(c.ring, c.what, c.from, c.to).unwrap_or_default()
                };
                let mut v = serde_json::to_value(&c).unwrap_or_default();
                v["why"] = why.into();
                v
            })
            .collect();
        serde_json::Value::Array(list).to_string()
    }

    /// Delivery choice: deliver in-flight message `id` now.
    pub fn deliver(&mut self, id: f64) -> Result<String, JsError> {
        self.act(Op::Deliver(msg_id(id)?))
    }

    /// Delivery choice: lose in-flight message `id` now.
    pub fn lose(&mut self, id: f64) -> Result<String, JsError> {
        self.act(Op::Lose(msg_id(id)?))
    }

    /// Delivery choice: fire node `node`'s timer `token` of ring `ring` now.
    pub fn fire(&mut self, node: u32, ring: u32, token: f64) -> Result<String, JsError> {
        let ring = u16::try_from(ring).map_err(|_| JsError::new(&format!("no ring {ring}")))?;
        self.act(Op::Fire {
            node: u64::from(node),
            ring,
            token: msg_id(token)?,
        })
    }

    /// Crash node `id` if it runs, else restart it.
    pub fn toggle(&mut self, id: u32) -> Result<String, JsError> {
        if self.world.sim().node(u64::from(id)).is_some() {
            self.crash(id)
        } else {
            self.restart(id)
        }
    }

    /// Partition: groups as `0.1.2/3.4`.
    pub fn partition(&mut self, groups: &str) -> Result<String, JsError> {
        let a = parse_script(&format!("1000:part:{}", groups.trim())).map_err(js)?;
        match a.into_iter().next() {
            Some(a) => self.act(a.op),
            None => Err(JsError::new("partition: no groups")),
        }
    }

    /// Partition the ring into two halves (by drawing position).
    #[wasm_bindgen(js_name = partitionHalves)]
    pub fn partition_halves(&mut self) -> Result<String, JsError> {
        let lay = self.layout();
        let left: Vec<u64> = (0..self.world.sim().node_count())
            .filter(|id| lay.node_pos(*id).0 < lay.cx)
            .collect();
        self.act(Op::Partition(vec![left]))
    }

    /// Remove every partition.
    pub fn heal(&mut self) -> Result<String, JsError> {
        self.act(Op::Heal)
    }

    /// Set the message loss probability.
    #[wasm_bindgen(js_name = setLoss)]
    pub fn set_loss(&mut self, p: f64) -> Result<String, JsError> {
        self.act(Op::Loss(p))
    }

    /// Set the mean latency, ms.
    #[wasm_bindgen(js_name = setLatency)]
    pub fn set_latency(&mut self, ms_: f64) -> Result<String, JsError> {
        self.act(Op::Latency(ms_))
    }

    /// Drop one in-flight message by id.
    #[wasm_bindgen(js_name = dropMessage)]
    pub fn drop_message(&mut self, id: f64) -> Result<String, JsError> {
        if !(id.is_finite() && id >= 0.0 && id.fract() == 0.0) {
            return Err(JsError::new(&format!(
                "message id must be an integer, got {id}"
            )));
        }
        self.act(Op::Drop(id as u64))
    }

    /// Drop the Cartouche token if it is travelling.
    #[wasm_bindgen(js_name = dropToken)]
    pub fn drop_token(&mut self) -> Result<String, JsError> {
        self.world.drop_token().map(|a| a.to_string()).map_err(js)
    }

    /// Node `id` asks for the token.
    pub fn request(&mut self, id: u32) -> Result<String, JsError> {
        self.act(Op::Request(u64::from(id)))
    }

    // ------------------------------------------------------------ the log

    /// Whether this world runs the Shen log (Ouroboros).
    #[wasm_bindgen(js_name = hasLog)]
    pub fn has_log(&self) -> bool {
        self.world.log_book().is_some()
    }

    /// Node `node` appends to the log under `key` (payload: the key and the
    /// append's ordinal, `key#n`). Returns the action as recorded.
    pub fn append(&mut self, node: u32, key: &str) -> Result<String, JsError> {
        self.act(Op::Append {
            node: u64::from(node),
            key: key.trim().to_string(),
        })
    }

    /// Node `node` reads log partition `partition` at its tail.
    pub fn read(&mut self, node: u32, partition: u32) -> Result<String, JsError> {
        self.act(Op::Read {
            node: u64::from(node),
            partition,
        })
    }

    /// Draw the chain of log partition `p` (log worlds).
    #[wasm_bindgen(js_name = setLogPartition)]
    pub fn set_log_partition(&mut self, p: u32) -> Result<(), JsError> {
        let parts = self
            .world
            .config()
            .stack
            .ouroboros
            .as_ref()
            .map_or(0, |o| o.partitions);
        if p >= parts {
            return Err(JsError::new(&format!(
                "no log partition {p} (this world has {parts})"
            )));
        }
        self.log_partition = p;
        Ok(())
    }

    /// The log partition whose chain is drawn.
    #[wasm_bindgen(js_name = logPartition)]
    pub fn log_partition(&self) -> u32 {
        self.log_partition
    }

    /// The partition a log key belongs to.
    #[wasm_bindgen(js_name = partitionOfKey)]
    pub fn partition_of_key(&self, key: &str) -> u32 {
        let parts = self
            .world
            .config()
            .stack
            .ouroboros
            .as_ref()
            .map_or(crate::log::LOG_PARTITIONS, |o| o.partitions);
        shen_rings::ouroboros::partition_of_key(key.trim().as_bytes(), parts)
    }

    /// Node `id`'s Ouroboros state for partition `p`, one line ("" when it
    /// is down or runs no log).
    #[wasm_bindgen(js_name = logDebug)]
    pub fn log_debug(&self, id: u32, p: u32) -> String {
        self.world.log_debug(u64::from(id), p).unwrap_or_default()
    }

    // ------------------------------------------------------------ reading

    /// The full state as JSON (views, ranges, messages: large for big
    /// worlds).
    #[wasm_bindgen(js_name = stateJson)]
    pub fn state_json(&self) -> String {
        state_json(&self.world, true)
    }

    /// The state without per-node views, ranges and messages.
    #[wasm_bindgen(js_name = summaryJson)]
    pub fn summary_json(&self) -> String {
        state_json(&self.world, false)
    }

    /// The trace hash so far (16 hex digits).
    #[wasm_bindgen(js_name = traceHash)]
    pub fn trace_hash(&self) -> String {
        format!("{:016x}", self.world.trace_hash())
    }

    /// The fault script (URL form).
    pub fn script(&self) -> String {
        crate::script::format_script(&self.world.script())
    }

    /// The URL hash that replays this run (to now).
    #[wasm_bindgen(js_name = urlHash)]
    pub fn url_hash(&self) -> String {
        UrlParams {
            faults: self.world.script(),
            t_us: Some(self.world.now().as_micros()),
            ..self.params.clone()
        }
        .to_hash()
    }

    /// This run as a scenario file (TOML) for `shen sim run`.
    #[wasm_bindgen(js_name = scenarioToml)]
    pub fn scenario_toml(&self) -> Result<String, JsError> {
        self.world.scenario().map_err(js)?.to_toml().map_err(js)
    }

    // ------------------------------------------------------------ canvas

    /// The node drawn at canvas point `(x, y)`, or -1.
    #[wasm_bindgen(js_name = nodeAt)]
    pub fn node_at(&self, x: f64, y: f64) -> i32 {
        self.layout()
            .node_at(self.world.sim().node_count(), x, y)
            .map_or(-1, |id| id as i32)
    }

    /// Where node `id` is drawn on the canvas: `[x, y]` (empty if no such
    /// node).
    #[wasm_bindgen(js_name = nodePos)]
    pub fn node_pos(&self, id: u32) -> Vec<f64> {
        let n = self.world.sim().node_count();
        if u64::from(id) >= n {
            return Vec::new();
        }
        let (x, y) = self.layout().node_pos(u64::from(id));
        vec![x, y]
    }

    /// How far a node's drawing (disc and outline) reaches from its
    /// centre, px: no two nodes' centres are closer than twice this.
    #[wasm_bindgen(js_name = nodeFootprint)]
    pub fn node_footprint(&self) -> f64 {
        self.layout().footprint()
    }

    /// Highlight node `id` (-1: none).
    pub fn select(&mut self, id: i32) {
        self.selected = u64::try_from(id).ok();
    }

    /// Outline what a lesson points at, pulsing: `json` is `{"nodes":
    /// [ids], "arcs": [[start, end], ...], "kinds": ["ring.kind", ...]}`
    /// (every field optional; arcs as fractions of the hash space, as the
    /// state's `ankh.ranges`). View state only: the run and its trace hash
    /// are untouched.
    #[wasm_bindgen(js_name = setHighlight)]
    pub fn set_highlight(&mut self, json: &str) -> Result<(), JsError> {
        self.highlight = serde_json::from_str(json)
            .map_err(|e| JsError::new(&format!("highlight: {e} (want {{nodes, arcs, kinds}})")))?;
        Ok(())
    }

    /// Remove the lesson's outlines.
    #[wasm_bindgen(js_name = clearHighlight)]
    pub fn clear_highlight(&mut self) {
        self.highlight = Highlight::default();
    }

    /// The id of the drawn message nearest to canvas point `(x, y)` (within
    /// `slack` px), or -1.
    #[wasm_bindgen(js_name = messageAt)]
    pub fn message_at(&self, x: f64, y: f64, slack: f64) -> f64 {
        message_at(&self.world, &self.layout(), &self.filter, x, y, slack)
            .map_or(-1.0, |f| f.id as f64)
    }

    /// Where message `id` is drawn now: `[x, y]` (empty if not in flight).
    #[wasm_bindgen(js_name = messagePos)]
    pub fn message_pos(&self, id: f64) -> Vec<f64> {
        let lay = self.layout();
        let now = self.world.now().as_micros();
        self.world
            .flights()
            .iter()
            .find(|f| f.id as f64 == id)
            .map(|f| {
                let (x, y) = crate::render::flight_pos(&lay, f, now);
                vec![x, y]
            })
            .unwrap_or_default()
    }

    /// Message `id` in flight, explained, as JSON: `{id, ring, kind, from,
    /// to, sent_us, arrives_us, bytes, fields, why}`; `null` when it is no
    /// longer in flight.
    #[wasm_bindgen(js_name = messageJson)]
    pub fn message_json(&self, id: f64) -> String {
        if !(id.is_finite() && id >= 0.0) {
            return "null".into();
        }
        let Some((f, payload)) = self.world.message(id as u64) else {
            return "null".into();
        };
        let (kind, fields) = describe(f.ring, &payload)
            .map_or(("?", String::from("(does not decode)")), |(k, d)| (k, d));
        serde_json::json!({
            "id": f.id,
            "ring": f.ring,
            "kind": kind,
            "from": f.from,
            "to": f.to,
            "sent_us": f.sent_us,
            "arrives_us": f.arrives_us,
            "bytes": payload.len(),
            "fields": fields,
            "why": why(f.ring, kind, f.from, f.to).unwrap_or_default(),
            "token_generation": f.token_generation,
            "partition": f.partition,
        })
        .to_string()
    }

    /// Ring the inspected message (-1: none).
    #[wasm_bindgen(js_name = selectMessage)]
    pub fn select_message(&mut self, id: f64) {
        self.message = (id.is_finite() && id >= 0.0).then_some(id as u64);
    }

    /// Hide the messages of these rings and kinds (comma-separated: `rings`
    /// names rings, `kinds` names `ring.kind`s; empty: show all). Drawing
    /// only: the messages still travel.
    #[wasm_bindgen(js_name = setFilter)]
    pub fn set_filter(&mut self, rings: &str, kinds: &str) {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        };
        self.filter = MsgFilter {
            rings: list(rings),
            kinds: list(kinds),
        };
    }

    /// The narration's last `max` lines as JSON: `{on, total, lines:
    /// [{at_us, node, ring, text}]}` (oldest first; `on` false for worlds
    /// too big to narrate).
    #[wasm_bindgen(js_name = narrationJson)]
    pub fn narration_json(&self, max: u32) -> String {
        let Some(n) = self.world.narration() else {
            return r#"{"on":false,"total":0,"lines":[]}"#.into();
        };
        let len = n.lines().len();
        let lines: Vec<_> = n.lines().skip(len.saturating_sub(max as usize)).collect();
        serde_json::json!({"on": true, "total": len, "lines": lines}).to_string()
    }

    /// Narration line `id` and the lines it likely follows from
    /// (transitively, oldest first), as JSON `[{at_us, node, ring, text,
    /// id, all?, causes?}]`; `[]` for an unknown line.
    #[wasm_bindgen(js_name = causesJson)]
    pub fn causes_json(&self, id: f64) -> String {
        let chain = match (self.world.narration(), msg_id(id)) {
            (Some(n), Ok(id)) => n.chain_of(id),
            _ => Vec::new(),
        };
        serde_json::to_string(&chain).unwrap_or_else(|_| "[]".into())
    }

    /// Draw narration line `id`'s cause chain on the space-time diagram
    /// (-1: none). View state only: the run never sees it.
    #[wasm_bindgen(js_name = setCauses)]
    pub fn set_causes(&mut self, id: f64) {
        self.cause_of = msg_id(id).ok();
    }

    /// Every message kind, as JSON `[{ring, kind, why}]` (the page's filter
    /// list and help).
    #[wasm_bindgen(js_name = messageKinds)]
    pub fn message_kinds() -> String {
        serde_json::Value::Array(
            crate::explain::KINDS
                .iter()
                .map(|k| serde_json::json!({"ring": k.ring, "kind": k.name, "why": k.why}))
                .collect(),
        )
        .to_string()
    }

    // ------------------------------------------------------------ keys

    /// Draw Ankh's sample keys (on by default).
    #[wasm_bindgen(js_name = setKeys)]
    pub fn set_keys(&mut self, on: bool) {
        self.show_keys = on;
    }

    /// The sample key whose dot is nearest to canvas point `(x, y)`
    /// (within `slack` px), or -1.
    #[wasm_bindgen(js_name = keyAt)]
    pub fn key_at(&self, x: f64, y: f64, slack: f64) -> i32 {
        if !self.show_keys {
            return -1;
        }
        crate::keys::key_at(&self.layout(), self.world.keys(), x, y, slack).map_or(-1, |i| i as i32)
    }

    /// Where sample key `i`'s dot is drawn, `[x, y]`.
    #[wasm_bindgen(js_name = keyPos)]
    pub fn key_pos(&self, i: u32) -> Vec<f64> {
        let (x, y) = crate::keys::key_pos(&self.layout(), i as usize);
        vec![x, y]
    }

    /// Draw the replica walk of sample key `i` (-1: none).
    #[wasm_bindgen(js_name = selectKey)]
    pub fn select_key(&mut self, i: i32) {
        self.key = usize::try_from(i)
            .ok()
            .filter(|i| *i < crate::keys::SAMPLE_KEYS);
    }

    /// The keys as JSON: `{keys, owners: {node: count}, last: {at_us,
    /// members_before, members_after, moved, moved_to, moved_from, joined,
    /// left, strays, ideal} | null, history: [{at_us, moved, strays,
    /// joined, left}], selected: {key, hash, replicas} | null}` (history:
    /// the kept changes, oldest first; strays are keys moved between two
    /// members that stayed).
    #[wasm_bindgen(js_name = keysJson)]
    pub fn keys_json(&self) -> String {
        let k = self.world.keys();
        let mut owners = std::collections::BTreeMap::new();
        for o in k.owners() {
            *owners.entry(o.to_string()).or_insert(0u32) += 1;
        }
        let last = k.last().map(|m| {
            serde_json::json!({
                "at_us": m.at_us,
                "members_before": m.members_before,
                "members_after": m.members_after,
                "moved": m.moved.len(),
                "moved_to": m.moved.iter().map(|x| x.2).collect::<std::collections::BTreeSet<_>>(),
                "moved_from": m.moved.iter().map(|x| x.1).collect::<std::collections::BTreeSet<_>>(),
                "joined": m.joined,
                "left": m.left,
                "strays": m.strays(),
                "ideal": m.ideal,
            })
        });
        let selected = self.key.and_then(|i| {
            let ring = &self.world.ref_ring()?.ring;
            Some(serde_json::json!({
                "key": i,
                "hash": format!("{:016x}", crate::keys::sample_hash(i)),
                "replicas": crate::keys::replicas_of(ring, i),
            }))
        });
        serde_json::json!({
            "keys": k.owners().len(),
            "owners": owners,
            "last": last,
            "history": k.history().iter().map(|m| serde_json::json!({
                "at_us": m.at_us,
                "moved": m.moved.len(),
                "strays": m.strays(),
                "joined": m.joined,
                "left": m.left,
            })).collect::<Vec<_>>(),
            "selected": selected,
        })
        .to_string()
    }

    // ------------------------------------------------------------ space-time

    /// Draw the space-time diagram on `canvas` (CSS size `width` ×
    /// `height`; its backing store [`Viz::set_pixel_ratio`] times bigger).
    #[wasm_bindgen(js_name = attachSpacetime)]
    pub fn attach_spacetime(
        &mut self,
        canvas: HtmlCanvasElement,
        width: u32,
        height: u32,
    ) -> Result<(), JsError> {
        let ctx = canvas
            .get_context("2d")
            .map_err(|_| JsError::new("canvas: getContext('2d') failed"))?
            .ok_or_else(|| JsError::new("canvas: no 2d context"))?
            .dyn_into::<CanvasRenderingContext2d>()
            .map_err(|_| JsError::new("canvas: not a 2d context"))?;
        self.st = Some((ctx, f64::from(width.max(1)), f64::from(height.max(1))));
        Ok(())
    }

    /// Whether this world records a space-time diagram (worlds of at most
    /// 100 nodes at the start).
    #[wasm_bindgen(js_name = spacetimeOn)]
    pub fn spacetime_on(&self) -> bool {
        self.world.spacetime().is_some()
    }

    /// The diagram's window: `ms` of virtual time across it.
    #[wasm_bindgen(js_name = setSpacetimeSpan)]
    pub fn set_spacetime_span(&mut self, ms_: f64) -> Result<(), JsError> {
        let d = ms(ms_)?;
        if !(10_000..=120_000_000).contains(&d.as_micros()) {
            return Err(JsError::new(&format!(
                "space-time window must be 10 ms to 120 s, got {ms_} ms"
            )));
        }
        self.st_span_us = d.as_micros() as u64;
        Ok(())
    }

    fn st_geom(&self) -> Option<Geom> {
        let (_, w, h) = self.st.as_ref()?;
        Some(Geom::new(
            *w,
            *h,
            self.world.sim().node_count(),
            self.world.now().as_micros(),
            self.st_span_us,
        ))
    }

    /// Paint the space-time diagram. Returns how many shapes (0 when the
    /// world records none or no canvas is attached).
    #[wasm_bindgen(js_name = drawSpacetime)]
    pub fn draw_spacetime(&self) -> Result<u32, JsError> {
        let (Some((ctx, w, h)), Some(g)) = (self.st.as_ref(), self.st_geom()) else {
            return Ok(0);
        };
        let d = self.dpr;
        ctx.set_transform(d, 0.0, 0.0, d, 0.0, 0.0)
            .map_err(|_| JsError::new("draw: setTransform failed"))?;
        ctx.set_fill_style_str("#0d1016");
        ctx.fill_rect(0.0, 0.0, *w, *h);
        let Some(st) = self.world.spacetime() else {
            ctx.set_fill_style_str("#9e9e9e");
            ctx.set_font("12px sans-serif");
            ctx.set_text_align("left");
            ctx.fill_text(
                "Worlds of more than 100 nodes record no space-time diagram.",
                12.0,
                *h / 2.0,
            )
            .map_err(|_| JsError::new("draw: fillText failed"))?;
            return Ok(0);
        };
        let opts = DiagramOpts {
            message: self.message,
            selected: self.selected,
            filter: self.filter.clone(),
            causes: Vec::new(),
        };
        let now = self.world.now().as_micros();
        let mut shapes = diagram(st, &g, now, self.world.horizon().as_micros(), &opts);
        if let (Some(id), Some(n)) = (self.cause_of, self.world.narration()) {
            shapes.extend(cause_shapes(&g, &n.chain_of(id), id));
        }
        paint(ctx, &shapes, *w, *h)?;
        Ok(shapes.len() as u32)
    }

    /// The arrow nearest to diagram point `(x, y)` within `slack` px: its
    /// message id, or -1.
    #[wasm_bindgen(js_name = spacetimeArrowAt)]
    pub fn spacetime_arrow_at(&self, x: f64, y: f64, slack: f64) -> f64 {
        let (Some(st), Some(g)) = (self.world.spacetime(), self.st_geom()) else {
            return -1.0;
        };
        arrow_at(
            st,
            &g,
            self.world.now().as_micros(),
            &self.filter,
            x,
            y,
            slack,
        )
        .map_or(-1.0, |id| id as f64)
    }

    /// The middle of message `id`'s arrow on the diagram, `[x, y]` (empty
    /// when it is not drawn).
    #[wasm_bindgen(js_name = spacetimeArrowPos)]
    pub fn spacetime_arrow_pos(&self, id: f64) -> Vec<f64> {
        let (Some(st), Some(g)) = (self.world.spacetime(), self.st_geom()) else {
            return Vec::new();
        };
        st.arrow(id as u64)
            .and_then(|a| g.segment(a, self.world.now().as_micros()))
            .map(|(p0, p1)| vec![(p0.0 + p1.0) / 2.0, (p0.1 + p1.1) / 2.0])
            .unwrap_or_default()
    }

    /// The virtual time at diagram x, ms (for dragging to scrub).
    #[wasm_bindgen(js_name = spacetimeTimeAt)]
    pub fn spacetime_time_at(&self, x: f64) -> f64 {
        self.st_geom().map_or(0.0, |g| g.time_at(x) as f64 / 1000.0)
    }

    /// The diagram's window `[start, end]`, ms.
    #[wasm_bindgen(js_name = spacetimeWindow)]
    pub fn spacetime_window(&self) -> Vec<f64> {
        self.st_geom()
            .map(|g| vec![g.t0 as f64 / 1000.0, g.t1 as f64 / 1000.0])
            .unwrap_or_default()
    }

    /// Message `id` as the diagram recorded it, as JSON: `{id, ring, kind,
    /// from, to, sent_us, end_us, fate: {state, reason?}, why, in_flight}`
    /// (`null` if not recorded). In flight, [`Viz::message_json`] has its
    /// decoded fields too.
    #[wasm_bindgen(js_name = spacetimeMessageJson)]
    pub fn spacetime_message_json(&self, id: f64) -> String {
        let Some(a) = (id.is_finite() && id >= 0.0)
            .then(|| self.world.spacetime().and_then(|st| st.arrow(id as u64)))
            .flatten()
        else {
            return "null".into();
        };
        let kind = if a.what.is_empty() { "?" } else { a.what };
        serde_json::json!({
            "id": a.id,
            "ring": a.ring,
            "kind": kind,
            "from": a.from,
            "to": a.to,
            "sent_us": a.sent_us,
            "end_us": a.end_us,
            "fate": a.fate,
            "why": why(a.ring, kind, a.from, a.to).unwrap_or_default(),
            "in_flight": a.fate == Fate::InFlight,
        })
        .to_string()
    }

    /// Paint the world on the attached canvas. Returns how many shapes.
    pub fn draw(&mut self) -> Result<u32, JsError> {
        let ctx = self
            .ctx
            .clone()
            .ok_or_else(|| JsError::new("draw: no canvas attached (call attach first)"))?;
        let d = self.dpr;
        ctx.set_transform(d, 0.0, 0.0, d, 0.0, 0.0)
            .map_err(|_| JsError::new("draw: setTransform failed"))?;
        ctx.set_fill_style_str("#11141b");
        ctx.fill_rect(0.0, 0.0, self.width, self.height);
        if self
            .message
            .is_some_and(|m| self.world.message(m).is_none())
        {
            self.message = None;
        }
        let all = scene_opts(&self.world, self.width, self.height, &self.opts());
        let count = all.len() as u32;
        let (arcs, shapes): (Vec<Shape>, Vec<Shape>) = all
            .into_iter()
            .partition(|s| matches!(s, Shape::Arc { .. }));
        self.draw_ring_layer(&ctx, &arcs)?;
        paint(&ctx, &shapes, self.width, self.height)?;
        if !self.highlight.is_empty() {
            // The pulse follows the wall clock: it is drawing, not the run.
            let phase = web_sys::window()
                .and_then(|w| w.performance())
                .map_or(0.0, |p| p.now() / 1200.0);
            let hl = highlight_shapes(&self.world, self.width, self.height, &self.highlight, phase);
            paint(&ctx, &hl, self.width, self.height)?;
        }
        Ok(count)
    }

    /// Blit the ownership ring, redrawing its layer if the reference view
    /// or the canvas size changed (painting directly if no layer canvas can
    /// be made).
    fn draw_ring_layer(
        &mut self,
        ctx: &CanvasRenderingContext2d,
        arcs: &[Shape],
    ) -> Result<(), JsError> {
        let key = match self.world.ref_ring() {
            Some(r) => (
                r.view_of,
                r.view_hash,
                (self.width * self.dpr) as u64,
                (self.height * self.dpr) as u64,
            ),
            None => (
                u64::MAX,
                0,
                (self.width * self.dpr) as u64,
                (self.height * self.dpr) as u64,
            ),
        };
        if self.ring_layer.as_ref().is_none_or(|(_, k)| *k != key) {
            let layer = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.create_element("canvas").ok())
                .and_then(|e| e.dyn_into::<HtmlCanvasElement>().ok());
            let Some(layer) = layer else {
                return paint(ctx, arcs, self.width, self.height);
            };
            layer.set_width((self.width * self.dpr).round() as u32);
            layer.set_height((self.height * self.dpr).round() as u32);
            let lctx = layer
                .get_context("2d")
                .ok()
                .flatten()
                .and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
                .ok_or_else(|| JsError::new("draw: no 2d context for the ring layer"))?;
            lctx.set_transform(self.dpr, 0.0, 0.0, self.dpr, 0.0, 0.0)
                .map_err(|_| JsError::new("draw: setTransform failed"))?;
            paint(&lctx, arcs, self.width, self.height)?;
            self.ring_layer = Some((layer, key));
        }
        if let Some((layer, _)) = &self.ring_layer {
            ctx.draw_image_with_html_canvas_element_and_dw_and_dh(
                layer,
                0.0,
                0.0,
                self.width,
                self.height,
            )
            .map_err(|_| JsError::new("draw: drawImage failed"))?;
        }
        Ok(())
    }
}

/// Live mode: a real cluster (polled `/status`, streamed `/events`) drawn
/// on a canvas with the simulator's shapes.
#[wasm_bindgen]
pub struct Live {
    ctx: CanvasRenderingContext2d,
    width: f64,
    height: f64,
    status: Option<LiveStatus>,
    /// (member, colour, when in page ms) of recent events.
    flashes: Vec<(String, &'static str, f64)>,
    events: u64,
    statuses: u64,
    partition: u32,
}

#[wasm_bindgen]
impl Live {
    /// A live view drawing on `canvas`.
    #[wasm_bindgen(constructor)]
    pub fn new(canvas: HtmlCanvasElement) -> Result<Live, JsError> {
        let ctx = canvas
            .get_context("2d")
            .map_err(|_| JsError::new("canvas: getContext('2d') failed"))?
            .ok_or_else(|| JsError::new("canvas: no 2d context"))?
            .dyn_into::<CanvasRenderingContext2d>()
            .map_err(|_| JsError::new("canvas: not a 2d context"))?;
        Ok(Live {
            width: f64::from(canvas.width()),
            height: f64::from(canvas.height()),
            ctx,
            status: None,
            flashes: Vec::new(),
            events: 0,
            statuses: 0,
            partition: 0,
        })
    }

    /// A `/status` document arrived. Errors (bad JSON, ...) name what is
    /// wrong; the previous status stays drawn.
    #[wasm_bindgen(js_name = setStatus)]
    pub fn set_status(&mut self, json: &str) -> Result<(), JsError> {
        let s = parse_status(json).map_err(js)?;
        if !s.chains.is_empty() && self.partition as usize >= s.chains.len() {
            self.partition = 0;
        }
        self.status = Some(s);
        self.statuses += 1;
        Ok(())
    }

    /// One `/events` line arrived at page time `now_ms`; returns the event's
    /// name. Members it mentions flash in its ring's colour.
    #[wasm_bindgen(js_name = pushEvent)]
    pub fn push_event(&mut self, line: &str, now_ms: f64) -> Result<String, JsError> {
        let known: Vec<String> = self
            .status
            .as_ref()
            .map(|s| s.members.iter().map(|m| m.id.clone()).collect())
            .unwrap_or_default();
        let (name, _, who) = parse_event(line, &known).map_err(js)?;
        let color = event_color(&name);
        self.flashes
            .retain(|(_, _, at)| now_ms - at < crate::live::FLASH_MS);
        for m in who {
            self.flashes.push((m, color, now_ms));
        }
        self.events += 1;
        Ok(name)
    }

    /// Draw the log chain of partition `p` (when the cluster runs the log).
    #[wasm_bindgen(js_name = setPartition)]
    pub fn set_partition(&mut self, p: u32) {
        self.partition = p;
    }

    /// Paint the cluster as of the last status at page time `now_ms`.
    /// Returns how many shapes.
    pub fn draw(&mut self, now_ms: f64) -> Result<u32, JsError> {
        // The simulator may have left its HiDPI scale on the shared context.
        self.ctx
            .set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
            .map_err(|_| JsError::new("draw: setTransform failed"))?;
        self.ctx.set_fill_style_str("#11141b");
        self.ctx.fill_rect(0.0, 0.0, self.width, self.height);
        let Some(s) = &self.status else {
            return Ok(0);
        };
        let flashes: Vec<(String, &'static str, f64)> = self
            .flashes
            .iter()
            .map(|(m, c, at)| (m.clone(), *c, (now_ms - at).max(0.0)))
            .collect();
        let shapes = live_scene(s, self.width, self.height, Some(self.partition), &flashes);
        paint(&self.ctx, &shapes, self.width, self.height)?;
        Ok(shapes.len() as u32)
    }

    /// The simulator link this cluster forks into (`seed`: decimal text).
    #[wasm_bindgen(js_name = forkHash)]
    pub fn fork_hash(&self, seed: &str) -> Result<String, JsError> {
        let seed: u64 = seed
            .trim()
            .parse()
            .map_err(|_| JsError::new(&format!("seed must be an integer 0..2^64, got `{seed}`")))?;
        let s = self
            .status
            .as_ref()
            .ok_or_else(|| JsError::new("fork: no status from the live node yet"))?;
        Ok(fork_hash(s, seed))
    }

    /// The live state as JSON: `{status, events, statuses}`.
    #[wasm_bindgen(js_name = stateJson)]
    pub fn state_json(&self) -> String {
        serde_json::json!({
            "status": self.status,
            "events": self.events,
            "statuses": self.statuses,
            "partition": self.partition,
        })
        .to_string()
    }
}

/// Paint shapes on a 2D context of a `width` × `height` canvas.
fn paint(
    ctx: &CanvasRenderingContext2d,
    shapes: &[Shape],
    width: f64,
    height: f64,
) -> Result<(), JsError> {
    {
        let (cx, cy) = (width / 2.0, height / 2.0);
        ctx.set_text_align("center");
        ctx.set_text_baseline("middle");
        ctx.set_font("12px sans-serif");
        let mut i = 0;
        while i < shapes.len() {
            match &shapes[i] {
                Shape::Circle {
                    fill: Some(f),
                    stroke: None,
                    ..
                } => {
                    // One path for a run of plain discs of one colour (the
                    // many message dots and healthy nodes of a big world).
                    ctx.begin_path();
                    let mut j = i;
                    while let Some(Shape::Circle {
                        x,
                        y,
                        r,
                        fill: Some(g),
                        stroke: None,
                    }) = shapes.get(j)
                    {
                        if g != f {
                            break;
                        }
                        ctx.move_to(x + r, *y);
                        ctx.arc(*x, *y, *r, 0.0, core::f64::consts::TAU)
                            .map_err(|_| JsError::new("draw: arc failed"))?;
                        j += 1;
                    }
                    ctx.set_fill_style_str(f);
                    ctx.fill();
                    i = j;
                    continue;
                }
                Shape::Circle {
                    x,
                    y,
                    r,
                    fill,
                    stroke,
                } => {
                    ctx.begin_path();
                    ctx.arc(*x, *y, *r, 0.0, core::f64::consts::TAU)
                        .map_err(|_| JsError::new("draw: arc failed"))?;
                    if let Some(f) = fill {
                        ctx.set_fill_style_str(f);
                        ctx.fill();
                    }
                    if let Some((c, w)) = stroke {
                        ctx.set_stroke_style_str(c);
                        ctx.set_line_width(*w);
                        ctx.stroke();
                    }
                }
                Shape::Arc {
                    r,
                    a0,
                    a1,
                    width,
                    color,
                } => {
                    ctx.begin_path();
                    ctx.arc(cx, cy, *r, *a0, *a1)
                        .map_err(|_| JsError::new("draw: arc failed"))?;
                    ctx.set_stroke_style_str(color);
                    ctx.set_line_width(*width);
                    ctx.stroke();
                }
                Shape::Line { width, color, .. } => {
                    // One path for a run of lines of one colour and width
                    // (the space-time diagram's many arrows).
                    ctx.begin_path();
                    let mut j = i;
                    while let Some(Shape::Line {
                        x0,
                        y0,
                        x1,
                        y1,
                        width: w,
                        color: c,
                    }) = shapes.get(j)
                    {
                        if c != color || w != width {
                            break;
                        }
                        ctx.move_to(*x0, *y0);
                        ctx.line_to(*x1, *y1);
                        j += 1;
                    }
                    ctx.set_stroke_style_str(color);
                    ctx.set_line_width(*width);
                    ctx.stroke();
                    i = j;
                    continue;
                }
                Shape::Square { x, y, size, color } => {
                    ctx.set_fill_style_str(color);
                    ctx.fill_rect(x - size / 2.0, y - size / 2.0, *size, *size);
                }
                Shape::Label { x, y, text, color } => {
                    ctx.set_text_align("left");
                    ctx.set_fill_style_str(color);
                    ctx.fill_text(text, *x, *y)
                        .map_err(|_| JsError::new("draw: fillText failed"))?;
                    ctx.set_text_align("center");
                }
                Shape::NodeArc {
                    x,
                    y,
                    r,
                    a0,
                    a1,
                    width,
                    color,
                } => {
                    ctx.begin_path();
                    ctx.arc(*x, *y, *r, *a0, *a1)
                        .map_err(|_| JsError::new("draw: arc failed"))?;
                    ctx.set_stroke_style_str(color);
                    ctx.set_line_width(*width);
                    ctx.stroke();
                }
                Shape::Font { px } => {
                    ctx.set_font(&format!("{px:.0}px sans-serif"));
                }
                Shape::Text { x, y, text, color } => {
                    ctx.set_fill_style_str(color);
                    ctx.fill_text(text, *x, *y)
                        .map_err(|_| JsError::new("draw: fillText failed"))?;
                }
            }
            i += 1;
        }
        Ok(())
    }
}
