//! The viz engine: a [`Sim`] running the standard stack, the user's actions
//! (recorded as a [fault script](crate::script)), a timeline of snapshots to
//! scrub, and the invariants. Plain Rust, tested natively; the browser layer
//! ([`crate::web`]) only forwards calls and paints.
//!
//! # Exact replay
//! A fault the user causes at virtual time `now` is *scheduled* at the next
//! whole millisecond `T > now` at which nothing is queued yet. A scenario
//! whose fault list holds the same faults schedules them all before the run
//! starts; both orders put the fault before every event due at `T`, so the
//! two runs are the same run, bit for bit (same trace hash). Immediate actions
//! (add a node, ask for the token) happen at `now`, when every event due at
//! or before `now` has been processed, which a replay reproduces with
//! `run_until(now)`. Single-stepping moves to the next event's time and
//! processes every event due then, keeping that property.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use shen_rings::ankh::{AnkhConfig, AnkhRing};
use shen_rings::cartouche::{Cartouche, CartoucheMsg, Fencing};
use shen_rings::ouroboros::{MemberChange, Ouroboros};
use shen_rings::stack::{CartoucheSettings, ShenEvent, StackConfig, StartState, SundialSettings};
use shen_rings::sundial::{Status, Sundial};
use shen_rings::{RingId, Time};
use shen_transport_memory::{
    Choice, Fault, Latency, NetConfig, RestartMode, Scenario, ScheduledFault, Sim, SimConfig,
    Snapshot, TraceKind, TraceMode,
};

use crate::figures::Tracker;
use crate::invariants::{Invariants, Observation, PlacementCache};
use crate::keys::Keys;
use crate::log::{log_settings, message_kind, LogBook, LogObs, LOG_MAX_NODES, TRACE_KEEP};
use crate::narrate::{fault_sentence, ring_of, sentence, tag_of, Narration, NARRATE_MAX_NODES};
use crate::script::{valid_key, Action, Op, UrlParams};
use crate::spacetime::{Fate, Mark as StMark, NodeEvent, SpaceTime};

/// The most nodes the page lets a world have.
pub const MAX_VIZ_NODES: u64 = 2_000;
/// Invariants are checked (and the cached observation refreshed) at every
/// multiple of this virtual time.
pub const CHECK_EVERY_US: u64 = 50_000;

/// How a world is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct VizConfig {
    /// The world seed.
    pub seed: u64,
    /// Nodes at the start.
    pub nodes: u64,
    /// The rings every node runs.
    pub stack: StackConfig,
    /// Mean latency in ms (uniform between half and one and a half of it).
    pub latency_ms: f64,
    /// Ankh settings used to draw the ring from a node's Sundial view.
    pub ankh: AnkhConfig,
}

impl VizConfig {
    /// The page's default world: Sundial and Cartouche, slow enough to watch
    /// (40 ms mean latency; the token rests 150 ms at each node).
    ///
    /// Worlds of more than [`CARTOUCHE_MAX_DEFAULT`] nodes run Sundial only:
    /// a token ring of hundreds of members spends its time in majority
    /// rounds (measured at 500: thousands of candidacies in 20 s with these
    /// settings), which is no way to watch gossip. [`VizConfig::with_rings`]
    /// overrides it.
    pub fn new(seed: u64, nodes: u64) -> VizConfig {
        let mut stack = default_stack();
        if nodes > CARTOUCHE_MAX_DEFAULT {
            stack.cartouche = None;
        }
        VizConfig {
            seed,
            nodes,
            stack,
            latency_ms: 40.0,
            ankh: AnkhConfig {
                vnodes: 8,
                ..AnkhConfig::default()
            },
        }
    }
}

impl VizConfig {
    /// Run exactly the rings named in `rings` (`sundial`, `cartouche`,
    /// `ouroboros`). `ouroboros` makes a *log world* (see [`crate::log`]):
    /// it needs the other two and at most [`LOG_MAX_NODES`] nodes.
    ///
    /// # Errors
    /// An unknown ring name, no ring at all, or Ouroboros without Sundial
    /// and Cartouche or on too many nodes.
    pub fn with_rings(mut self, rings: &[&str]) -> Result<VizConfig, String> {
        let all = default_stack();
        self.stack.sundial = None;
        self.stack.cartouche = None;
        self.stack.ouroboros = None;
        for r in rings {
            match *r {
                "sundial" => self.stack.sundial = all.sundial.clone(),
                "cartouche" => self.stack.cartouche = all.cartouche.clone(),
                "ouroboros" => self.stack.ouroboros = Some(log_settings()),
                other => {
                    return Err(format!(
                        "rings: unknown ring `{other}` (sundial, cartouche, ouroboros)"
                    ))
                }
            }
        }
        if self.stack.is_empty() {
            return Err("rings: name at least one ring (sundial, cartouche, ouroboros)".into());
        }
        if self.stack.ouroboros.is_some() {
            if self.stack.sundial.is_none() || self.stack.cartouche.is_none() {
                return Err(
                    "rings: ouroboros needs sundial and cartouche too (Sundial tells it \
                            who failed, Cartouche serialises its reconfigurations)"
                        .into(),
                );
            }
            if self.nodes > LOG_MAX_NODES {
                return Err(format!(
                    "rings: ouroboros (the log view) runs on at most {LOG_MAX_NODES} nodes, \
                     got {}",
                    self.nodes
                ));
            }
        }
        Ok(self)
    }

    /// Whether this is a log world (runs Ouroboros).
    pub fn runs_log(&self) -> bool {
        self.stack.ouroboros.is_some()
    }

    /// The world a page URL asks for (see [`UrlParams`]): the one place a
    /// hash becomes a configuration, for the page, the side-by-side mode
    /// and `shen sim`'s links alike.
    ///
    /// # Errors
    /// A bad ring list, or a setting for a ring the world does not run
    /// (`fanout`/`phi` without Sundial, `bypass` without Ouroboros,
    /// `shortcut` without Cartouche).
    pub fn from_url(p: &UrlParams) -> Result<VizConfig, String> {
        let mut config = VizConfig::new(p.seed, p.nodes);
        if let Some(rings) = &p.rings {
            let names: Vec<&str> = rings.iter().map(String::as_str).collect();
            config = config.with_rings(&names)?;
        }
        config.latency_ms = p.latency_ms;
        config.ankh.vnodes = p.vnodes;
        if p.fanout.is_some() || p.phi.is_some() {
            let Some(s) = &mut config.stack.sundial else {
                return Err("URL `fanout`/`phi`: this world runs no Sundial".into());
            };
            if let Some(f) = p.fanout {
                s.fanout = f;
            }
            if let Some(x) = p.phi {
                s.phi_threshold = x;
            }
        }
        if !p.bypass {
            let Some(o) = &mut config.stack.ouroboros else {
                return Err("URL `bypass`: only a log world (rings=...,ouroboros) bypasses".into());
            };
            o.slow_after_ms = NO_BYPASS_MS;
        }
        if !p.shortcut {
            let Some(c) = &mut config.stack.cartouche else {
                return Err("URL `shortcut`: this world runs no Cartouche".into());
            };
            c.want_shortcut = false;
        }
        if p.start != StartState::default() {
            if !p.start.chains.is_empty() {
                let Some(o) = &mut config.stack.ouroboros else {
                    return Err(
                        "URL `chains`: only a log world (rings=...,ouroboros) has chains".into(),
                    );
                };
                o.partitions = p.start.chains.len() as u32;
            }
            p.start
                .check(config.nodes, &config.stack)
                .map_err(|e| format!("URL: {e}"))?;
            config.stack.start = Some(p.start.clone());
        }
        Ok(config)
    }
}

/// `bypass=off`: a successor must leave a record un-held this long (a
/// day of virtual time) before Ouroboros bypasses it, which no page run
/// reaches.
pub const NO_BYPASS_MS: u64 = 86_400_000;

/// Above this many nodes, [`VizConfig::new`] leaves Cartouche out.
pub const CARTOUCHE_MAX_DEFAULT: u64 = 64;

/// The stack the page runs: Sundial (defaults) and Cartouche sized for the
/// page's latency.
pub fn default_stack() -> StackConfig {
    StackConfig {
        sundial: Some(SundialSettings::default()),
        cartouche: Some(CartoucheSettings {
            hop_latency_ms: 80,
            idle_pass_ms: 150,
            ..CartoucheSettings::default()
        }),
        ..StackConfig::default()
    }
}

/// The network of mean latency `ms` and loss `loss`.
pub fn network(latency_ms: f64, loss: f64) -> NetConfig {
    NetConfig {
        latency: Latency::Uniform {
            min: latency_ms * 0.5,
            max: latency_ms * 1.5,
        },
        loss,
        ..NetConfig::default()
    }
}

/// An action and the virtual time (µs) it was made at: a fault takes
/// effect on a later whole millisecond, but is scheduled at its click. For
/// a script from a URL the click is unknown; the previous action's click
/// is used, which is never later than the real one, and that is enough: no
/// event due at the fault's time can have been queued before the click.
#[derive(Clone, Debug)]
struct Clicked {
    at_us: u64,
    action: Action,
}

/// A point of the timeline: the world as it was at `at`.
struct Mark {
    at: Time,
    actions: usize,
    snap: Snapshot<ShenEvent<u64>>,
    invariants: Invariants,
    net: (f64, f64),
    log: Option<LogBook>,
    tracker: Tracker,
    members: Departures,
}

/// Log worlds: the members that asked to leave and those that left.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Departures {
    /// Asked to leave ([`Op::Leave`]), still listed in their own table.
    pub leaving: BTreeSet<u64>,
    /// Left the member set and stopped for good (they cannot restart).
    pub gone: BTreeSet<u64>,
}

/// A message in flight, for drawing.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Flight {
    /// Message id (for [`World::act`] with [`Op::Drop`]).
    pub id: u64,
    /// Sender.
    pub from: u64,
    /// Destination.
    pub to: u64,
    /// `"sundial"`, `"cartouche"` or another ring's name.
    pub ring: &'static str,
    /// First seen by the viz (about when it was sent), µs.
    pub sent_us: u64,
    /// When it arrives, µs (`None`: parked on a held link).
    pub arrives_us: Option<u64>,
    /// The Cartouche token's generation, when the message is the token.
    pub token_generation: Option<u64>,
    /// The message's kind within its ring (see [`crate::explain::KINDS`]:
    /// `probe`, `token`, `append`, ...; `?` if it does not decode).
    pub what: &'static str,
    /// An Ouroboros message's kind (see [`crate::log::message_kind`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The log partition an Ouroboros message is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

/// Something that may happen next, for the delivery-choice mode.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ChoiceView {
    /// `"message"` or `"timer"`.
    pub kind: &'static str,
    /// Message id (messages).
    pub id: u64,
    /// Sender (messages; the node for timers).
    pub from: u64,
    /// Destination (messages; the node for timers).
    pub to: u64,
    /// Where it happens.
    pub node: u64,
    /// Its ring.
    pub ring: &'static str,
    /// The ring's number.
    pub ring_id: u16,
    /// The message's kind (`"timer"` for timers).
    pub what: &'static str,
    /// When it would happen, µs.
    pub due_us: u64,
    /// The timer's token (timers).
    pub token: u64,
}

/// The browser simulator's world.
pub struct World {
    config: VizConfig,
    sim: Sim<ShenEvent<u64>>,
    /// Actions applied (or scheduled) in this history, in click order.
    actions: Vec<Clicked>,
    /// Actions of this history still to re-apply (after a rewind or a URL).
    pending: VecDeque<Clicked>,
    marks: Vec<Mark>,
    mark_every_us: u64,
    max_marks: usize,
    /// The furthest time this history has reached.
    horizon: Time,
    /// Network settings after the last scheduled change: (latency, loss).
    net: (f64, f64),
    invariants: Invariants,
    obs: Observation,
    first_seen: BTreeMap<u64, Time>,
    ref_ring: Option<RefRing>,
    placement_cache: PlacementCache,
    /// Log worlds: the client operations and the events read so far.
    log: Option<LogBook>,
    /// Ring events in plain words (worlds that keep trace entries).
    narration: Option<Narration>,
    /// The trace entries narrated so far (global index).
    narr_at: u64,
    /// The space-time diagram's record (narrated worlds).
    spacetime: Option<SpaceTime>,
    /// Ankh's sample keys under the reference ring.
    keys: Keys,
    /// The key figures' record of the check points.
    tracker: Tracker,
    /// Log worlds: members leaving, and those gone for good.
    members: Departures,
}

/// The Ankh ring as one node's view places it.
pub struct RefRing {
    /// Whose view.
    pub view_of: u64,
    /// That view's hash when the ring was built.
    pub view_hash: u64,
    /// The ring.
    pub ring: AnkhRing<u64>,
}

impl core::fmt::Debug for World {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("World")
            .field("config", &self.config)
            .field("now", &self.sim.now())
            .field("actions", &self.actions.len())
            .field("pending", &self.pending.len())
            .field("marks", &self.marks.len())
            .finish()
    }
}

fn err(e: impl ToString) -> String {
    e.to_string()
}

impl World {
    /// A world of `config.nodes` nodes at time zero.
    ///
    /// # Errors
    /// A node count of 0 or above [`MAX_VIZ_NODES`], or a bad setting.
    pub fn new(config: VizConfig) -> Result<World, String> {
        if config.nodes == 0 || config.nodes > MAX_VIZ_NODES {
            return Err(format!(
                "nodes: must be between 1 and {MAX_VIZ_NODES}, got {}",
                config.nodes
            ));
        }
        if !(config.latency_ms.is_finite() && config.latency_ms > 0.0) {
            return Err(format!(
                "latency: must be a positive number of ms, got {}",
                config.latency_ms
            ));
        }
        config.ankh.validate().map_err(err)?;
        if config.runs_log() && config.nodes > LOG_MAX_NODES {
            return Err(format!(
                "nodes: the log view (ouroboros) runs on at most {LOG_MAX_NODES} nodes, got {}",
                config.nodes
            ));
        }
        // A log world keeps trace entries until its Ouroboros events are
        // read (after every stretch of at most CHECK_EVERY_US), a narrated
        // world until its events are told; the hash covers every entry in
        // either mode, so the trace hash is the same.
        let narrated = config.runs_log() || config.nodes <= NARRATE_MAX_NODES;
        let trace = if narrated {
            TraceMode::Bounded(TRACE_KEEP)
        } else {
            TraceMode::HashOnly
        };
        let sim = Sim::with_stack(
            SimConfig {
                seed: config.seed,
                nodes: config.nodes,
                network: network(config.latency_ms, 0.0),
                trace,
            },
            config.stack.clone(),
        )
        .map_err(err)?;
        // Snapshots copy every node's view (~n² records): keep their total
        // size bounded for big worlds.
        let n = config.nodes.max(4) as usize;
        let max_marks = (2_000_000 / (n * n)).clamp(6, 240);
        // ... and far apart: a snapshot of 500 nodes takes ~60 ms.
        let mark_every_us = 250_000 * (n * n / 40_000).max(1) as u64;
        let log = config
            .stack
            .ouroboros
            .as_ref()
            .map(|o| LogBook::new(o.partitions));
        let invariants = Invariants::new(log.is_some());
        let mut w = World {
            net: (config.latency_ms, 0.0),
            config,
            log,
            sim,
            actions: Vec::new(),
            pending: VecDeque::new(),
            marks: Vec::new(),
            mark_every_us,
            max_marks,
            horizon: Time::ZERO,
            invariants,
            obs: Observation::default(),
            first_seen: BTreeMap::new(),
            ref_ring: None,
            placement_cache: PlacementCache::default(),
            narration: narrated.then(Narration::default),
            narr_at: 0,
            spacetime: narrated.then(SpaceTime::default),
            keys: Keys::default(),
            tracker: Tracker::default(),
            members: Departures::default(),
        };
        w.observe();
        w.invariants.check(Time::ZERO, &w.obs, 0.0);
        w.track_figures();
        w.take_mark();
        Ok(w)
    }

    /// A world replaying `script` (run it forward with [`World::run_to`]).
    ///
    /// # Errors
    /// As [`World::new`].
    pub fn with_script(config: VizConfig, script: Vec<Action>) -> Result<World, String> {
        let mut w = World::new(config)?;
        let mut prev = 0;
        for action in script {
            let at_us = if action.op.is_fault() {
                prev
            } else {
                action.at_us
            };
            prev = at_us;
            w.pending.push_back(Clicked { at_us, action });
        }
        w.apply_pending()?;
        Ok(w)
    }

    // ------------------------------------------------------------ reading

    /// The configuration.
    pub fn config(&self) -> &VizConfig {
        &self.config
    }

    /// The simulator.
    pub fn sim(&self) -> &Sim<ShenEvent<u64>> {
        &self.sim
    }

    /// Virtual time now.
    pub fn now(&self) -> Time {
        self.sim.now()
    }

    /// The furthest time this history has reached (the timeline's end).
    pub fn horizon(&self) -> Time {
        self.horizon.max(self.sim.now())
    }

    /// The actions of this history (applied and still to re-apply).
    pub fn script(&self) -> Vec<Action> {
        self.actions
            .iter()
            .chain(&self.pending)
            .map(|c| c.action.clone())
            .collect()
    }

    /// Times of the timeline's snapshots.
    pub fn mark_times(&self) -> Vec<Time> {
        self.marks.iter().map(|m| m.at).collect()
    }

    /// The invariants.
    pub fn invariants(&self) -> &Invariants {
        &self.invariants
    }

    /// The observation made at the last check point.
    pub fn observation(&self) -> &Observation {
        &self.obs
    }

    /// Current network settings: (mean latency ms, loss).
    pub fn net(&self) -> (f64, f64) {
        self.net
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> u64 {
        self.sim.trace_hash()
    }

    /// Message `id` in flight: its drawing record and its payload.
    pub fn message(&self, id: u64) -> Option<(Flight, Vec<u8>)> {
        let payload = self
            .sim
            .in_flight()
            .into_iter()
            .find(|m| m.id == id)?
            .envelope
            .payload
            .to_vec();
        let f = self.flights().into_iter().find(|f| f.id == id)?;
        Some((f, payload))
    }

    /// The Ankh ring as the lowest running node's view places it.
    pub fn ref_ring(&self) -> Option<&RefRing> {
        self.ref_ring.as_ref()
    }

    /// Every message in flight.
    pub fn flights(&self) -> Vec<Flight> {
        let now = self.sim.now();
        self.sim
            .in_flight()
            .into_iter()
            .map(|m| {
                let token_generation = if m.ring == RingId::CARTOUCHE {
                    match postcard::from_bytes::<CartoucheMsg<u64>>(&m.envelope.payload) {
                        Ok(CartoucheMsg::Token(t)) => Some(t.generation),
                        _ => None,
                    }
                } else {
                    None
                };
                let (kind, partition) = if m.ring == RingId::OUROBOROS {
                    message_kind(&m.envelope.payload).map_or((None, None), |(k, p)| (Some(k), p))
                } else {
                    (None, None)
                };
                let ring = self.sim.ring_name(m.ring).unwrap_or("other");
                Flight {
                    id: m.id,
                    from: m.from,
                    to: m.to,
                    ring,
                    what: crate::explain::kind_of(ring, &m.envelope.payload)
                        .map_or("?", |k| k.name),
                    sent_us: self.first_seen.get(&m.id).unwrap_or(&now).as_micros(),
                    arrives_us: m.arrives.map(Time::as_micros),
                    token_generation,
                    kind,
                    partition,
                }
            })
            .collect()
    }

    /// The scenario this run is (faults only), to replay natively with
    /// `shen sim run --scenario FILE --seed SEED`. A scenario lasts whole
    /// milliseconds (it ends at the last one before now): its trace hash is
    /// this run's when now is a whole millisecond.
    ///
    /// # Errors
    /// When the script holds an action a scenario cannot express (adding a
    /// node, asking for the token).
    pub fn scenario(&self) -> Result<Scenario, String> {
        let mut net = (self.config.latency_ms, 0.0);
        let mut faults = Vec::new();
        for a in self.script() {
            let fault = match self.fault_of(&a.op, &mut net) {
                Some(f) => f,
                None => {
                    return Err(format!(
                        "the script holds `{a}`, which a scenario cannot express \
                         (only faults can be replayed by `shen sim run`)"
                    ))
                }
            };
            faults.push(ScheduledFault {
                at_ms: a.at_us / 1000,
                fault,
            });
        }
        let scenario = Scenario {
            name: "viz".to_string(),
            seed: self.config.seed,
            nodes: self.config.nodes,
            duration_ms: self.sim.now().as_millis().max(1),
            stack: self.config.stack.clone(),
            network: network(self.config.latency_ms, 0.0),
            faults,
            expect: Vec::new(),
        };
        scenario.validate().map_err(err)?;
        Ok(scenario)
    }

    // ------------------------------------------------------------ running

    /// Run to virtual time `t` (forward only; see [`World::seek`]),
    /// re-applying this history's actions on the way, taking snapshots and
    /// checking invariants at fixed virtual times.
    ///
    /// # Errors
    /// A replayed action that cannot apply (a bad URL script).
    pub fn run_to(&mut self, t: Time) -> Result<(), String> {
        self.run_to_within(t, || false).map(|_| ())
    }

    /// [`World::run_to`], giving up early when `out_of_time()` says so (it
    /// is asked every few dozen events): the page's frame budget, so a big
    /// world slows virtual time down instead of the frame rate. It only
    /// stops between two virtual instants, with every event due by the new
    /// `now` processed, so actions taken then replay exactly. Returns
    /// whether `t` was reached.
    ///
    /// # Errors
    /// As [`World::run_to`].
    pub fn run_to_within(
        &mut self,
        t: Time,
        mut out_of_time: impl FnMut() -> bool,
    ) -> Result<bool, String> {
        let mut reached = true;
        let mut since_check = 0u32;
        'chunks: while self.sim.now() < t {
            self.apply_pending()?;
            let now = self.sim.now().as_micros();
            let next_check = (now / CHECK_EVERY_US + 1) * CHECK_EVERY_US;
            let last_mark = self.marks.last().map_or(0, |m| m.at.as_micros());
            let next_mark = last_mark + self.mark_every_us;
            let mut stop = Time::from_micros(next_check.min(next_mark).min(t.as_micros()));
            if let Some(c) = self.pending.front() {
                if c.at_us < stop.as_micros() {
                    stop = Time::from_micros(c.at_us.max(now));
                }
            }
            while let Some(e) = self.sim.next_event_at().filter(|e| *e <= stop) {
                since_check += 1;
                if since_check >= 32 && e > self.sim.now() {
                    since_check = 0;
                    if out_of_time() {
                        reached = false;
                        break 'chunks;
                    }
                }
                self.sim.step();
                if self.narration.is_some() {
                    self.narrate();
                }
            }
            self.sim.run_until(stop);
            self.collect_log();
            self.apply_pending()?;
            let at = stop.as_micros();
            if at % CHECK_EVERY_US == 0 {
                self.finish_leaves()?;
                self.observe();
                self.invariants.check(stop, &self.obs, self.net.1);
                self.track_figures();
            }
            if at >= next_mark && stop > self.marks.last().map_or(Time::ZERO, |m| m.at) {
                self.take_mark();
            }
        }
        self.collect_log();
        self.apply_pending()?;
        self.track_flights();
        if self.sim.now() > self.horizon {
            self.horizon = self.sim.now();
        }
        Ok(reached)
    }

    /// Advance by `d` of virtual time.
    ///
    /// # Errors
    /// As [`World::run_to`].
    pub fn advance(&mut self, d: Duration) -> Result<(), String> {
        let t = self.sim.now() + d;
        self.run_to(t)
    }

    /// One step: to the next event's time, processing every event due then
    /// (1 ms when nothing is queued).
    ///
    /// # Errors
    /// As [`World::run_to`].
    pub fn step(&mut self) -> Result<(), String> {
        let now = self.sim.now();
        let t = match self.sim.next_event_at() {
            Some(t) if t > now => t,
            Some(_) => now + Duration::from_micros(1),
            None => now + Duration::from_millis(1),
        };
        self.run_to(t)
    }

    /// Go to virtual time `t`, backwards (from the last snapshot at or
    /// before it) or forwards. The history is kept: going back and playing
    /// again replays the same actions, until a new action forks it.
    ///
    /// # Errors
    /// As [`World::run_to`].
    pub fn seek(&mut self, t: Time) -> Result<(), String> {
        if t < self.sim.now() {
            let reached = self.horizon().as_micros();
            let i = self.marks.iter().rposition(|m| m.at <= t).unwrap_or(0);
            let mark = &self.marks[i];
            self.sim.restore(&mark.snap);
            let mut all: Vec<Clicked> = core::mem::take(&mut self.actions);
            all.extend(self.pending.drain(..));
            self.pending = all.split_off(mark.actions.min(all.len())).into();
            self.actions = all;
            self.invariants = mark.invariants.clone();
            self.tracker = mark.tracker.clone();
            self.members = mark.members.clone();
            self.net = mark.net;
            self.log = mark.log.clone();
            if let Some(book) = &mut self.log {
                book.trace_at = self.sim.trace().total();
                self.sim.trace_mut().clear_kept();
            }
            self.narr_at = self.sim.trace().total();
            if let Some(n) = &mut self.narration {
                self.sim.trace_mut().clear_kept();
                n.rewound(reached);
            }
            self.first_seen.clear();
            let at = self.sim.now().as_micros();
            self.keys.rewound(None, at);
            self.observe();
        }
        self.run_to(t)
    }

    // ------------------------------------------------------------ actions

    /// Apply a user action now. Returns the action as recorded (with the
    /// virtual time it takes effect). Acting after a rewind forks history:
    /// the actions and snapshots after now are forgotten.
    ///
    /// # Errors
    /// A node that does not exist, a message not in flight, a crashed node
    /// asked for the token, ...: nothing is recorded then.
    pub fn act(&mut self, op: Op) -> Result<Action, String> {
        let at = if op.is_fault() {
            self.fault_slot(0)
        } else {
            self.sim.now().as_micros()
        };
        self.act_at(op, at)
    }

    /// The first whole millisecond after now, and at or after `from_us`,
    /// at which nothing is queued: where a fault made now may be
    /// scheduled and still replay exactly (see the module doc). Two worlds
    /// in lockstep schedule a fault at a slot free in both.
    pub fn fault_slot(&self, from_us: u64) -> u64 {
        let now = self.sim.now().as_micros();
        let mut at = (now / 1000 + 1).max(from_us.div_ceil(1000)) * 1000;
        while self.sim.has_event_at(Time::from_micros(at)) {
            at += 1000;
        }
        at
    }

    /// [`World::act`] at a given time: a fault at a [`World::fault_slot`]
    /// (`at_us` must be one), anything else now (`at_us` must be now).
    ///
    /// # Errors
    /// As [`World::act`], or a time that is not such a slot.
    pub fn act_at(&mut self, op: Op, at_us: u64) -> Result<Action, String> {
        self.check_op(&op)?;
        let now = self.sim.now();
        let action = if op.is_fault() {
            let at = at_us;
            if self.fault_slot(at) != at {
                return Err(format!(
                    "a fault must be scheduled on a whole millisecond after now ({:.3} ms) with \
                     nothing queued then; {:.3} ms is not (the next one from there: {:.3} ms)",
                    now.as_micros() as f64 / 1000.0,
                    at as f64 / 1000.0,
                    self.fault_slot(at) as f64 / 1000.0
                ));
            }
            if let Op::Drop(id) = op {
                let arrives = self
                    .sim
                    .in_flight()
                    .into_iter()
                    .find(|m| m.id == id)
                    .and_then(|m| m.arrives);
                if arrives.is_none_or(|a| a.as_micros() <= at) {
                    return Err(format!(
                        "message {id} arrives before it could be dropped (at {:.3} ms)",
                        at as f64 / 1000.0
                    ));
                }
            }
            Action { at_us: at, op }
        } else {
            if at_us != now.as_micros() {
                return Err(format!(
                    "`{}` happens now ({} µs), not at {at_us} µs",
                    Action { at_us, op },
                    now.as_micros()
                ));
            }
            Action {
                at_us: now.as_micros(),
                op,
            }
        };
        self.fork();
        self.apply(&action)?;
        self.actions.push(Clicked {
            at_us: now.as_micros(),
            action: action.clone(),
        });
        self.track_flights();
        Ok(action)
    }

    /// Drop the Cartouche token now if it is in flight.
    ///
    /// # Errors
    /// When the token is not travelling (it rests at a node).
    pub fn drop_token(&mut self) -> Result<Action, String> {
        let flights = self.flights();
        let mut tokens: Vec<&Flight> = flights
            .iter()
            .filter(|f| f.token_generation.is_some())
            .collect();
        // The newest generation first, then the one arriving last.
        tokens.sort_by_key(|f| (core::cmp::Reverse(f.token_generation), f.arrives_us));
        let mut last = String::from("the token is not in flight now (it rests at a node)");
        for f in tokens {
            match self.act(Op::Drop(f.id)) {
                Ok(a) => return Ok(a),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn check_op(&self, op: &Op) -> Result<(), String> {
        let n = self.sim.node_count();
        let node = |id: u64| {
            if id < n {
                Ok(())
            } else {
                Err(format!(
                    "no node {id} (nodes are 0..{})",
                    n.saturating_sub(1)
                ))
            }
        };
        match op {
            Op::Crash(id) => {
                node(*id)?;
                if self.sim.node(*id).is_none() {
                    return Err(format!("node {id} is already down"));
                }
            }
            Op::Restart(id) | Op::PowerLoss(id) => {
                node(*id)?;
                if self.members.gone.contains(id) {
                    return Err(format!(
                        "node {id} left the log's member set and stopped for good \
                         (add a node instead)"
                    ));
                }
            }
            Op::Request(id) => node(*id)?,
            Op::Leave(id) => {
                self.log_client(*id, node)?;
                let o = self.ouroboros(*id)?;
                if !o.member_set().contains(id) {
                    return Err(format!(
                        "node {id} is not a member of the log (a joiner not yet added, \
                         or already out)"
                    ));
                }
                if self.members.leaving.contains(id) {
                    return Err(format!("node {id} is already leaving"));
                }
            }
            Op::RemoveMember(id) => {
                if self.log.is_none() {
                    return Err("this world runs no log: only a log world has members".into());
                }
                node(*id)?;
                if self.sim.node(*id).is_some() {
                    return Err(format!(
                        "node {id} is running: remove is for a dead member; a running one \
                         leaves (leave:{id})"
                    ));
                }
                self.remover(*id)?;
            }
            Op::Pause { node: id, ms } | Op::Skew { node: id, ms } => {
                node(*id)?;
                crate::script::check_stall(matches!(op, Op::Pause { .. }), *ms)?;
                if self.sim.node(*id).is_none() {
                    return Err(format!("node {id} is down: start it first"));
                }
            }
            Op::Append { node: id, key } => {
                self.log_client(*id, node)?;
                if !valid_key(key) {
                    return Err(format!(
                        "key `{key}`: want 1 to {} letters, digits, `_` or `-`",
                        crate::script::MAX_KEY_LEN
                    ));
                }
            }
            Op::Read {
                node: id,
                partition,
            } => {
                self.log_client(*id, node)?;
                let parts = self
                    .config
                    .stack
                    .ouroboros
                    .as_ref()
                    .map_or(0, |o| o.partitions);
                if *partition >= parts {
                    return Err(format!(
                        "no partition {partition} (partitions are 0..{})",
                        parts.saturating_sub(1)
                    ));
                }
            }
            Op::Partition(groups) => {
                if groups.iter().all(Vec::is_empty) {
                    return Err("partition: give at least one non-empty group".into());
                }
                for id in groups.iter().flatten() {
                    node(*id)?;
                }
            }
            Op::AddNode => {
                if self.log.is_some() && n >= LOG_MAX_NODES {
                    return Err(format!(
                        "a log world has at most {LOG_MAX_NODES} nodes, counting those that \
                         left (a node id is never reused)"
                    ));
                }
                if n >= MAX_VIZ_NODES {
                    return Err(format!("at most {MAX_VIZ_NODES} nodes"));
                }
            }
            Op::Loss(p) => {
                if !(0.0..=1.0).contains(p) {
                    return Err(format!("loss must be within [0, 1], got {p}"));
                }
            }
            Op::Latency(ms) => {
                if !(ms.is_finite() && *ms > 0.0 && *ms <= 10_000.0) {
                    return Err(format!("latency must be within (0, 10000] ms, got {ms}"));
                }
            }
            Op::Deliver(id) | Op::Lose(id) => {
                let flying = self
                    .sim
                    .pending_choices()
                    .into_iter()
                    .any(|c| matches!(c, Choice::Message { id: m, .. } if m == *id));
                if !flying {
                    return Err(format!(
                        "message {id} is not in flight (delivered, dropped, or held on a cut link)"
                    ));
                }
            }
            Op::Fire {
                node: id,
                ring,
                token,
            } => {
                node(*id)?;
                let armed = self.sim.pending_choices().into_iter().any(|c| {
                    matches!(c, Choice::Timer { node: n, ring: r, token: t, .. }
                        if n == *id && r.0 == *ring && t == *token)
                });
                if !armed {
                    return Err(format!(
                        "node {id} has no timer {token} of ring {ring} armed"
                    ));
                }
            }
            Op::Heal | Op::Drop(_) => {}
        }
        Ok(())
    }

    /// What may happen next, in the order it would (delivery-choice
    /// mode): messages in flight and armed timers; [`Op::Deliver`],
    /// [`Op::Fire`] and [`Op::Lose`] make one happen now.
    pub fn choices(&self) -> Vec<ChoiceView> {
        let flights: BTreeMap<u64, Flight> =
            self.flights().into_iter().map(|f| (f.id, f)).collect();
        self.sim
            .pending_choices()
            .into_iter()
            .map(|c| match c {
                Choice::Message {
                    id,
                    from,
                    to,
                    ring,
                    due_us,
                } => ChoiceView {
                    kind: "message",
                    id,
                    from,
                    to,
                    node: to,
                    ring: self.sim.ring_name(ring).unwrap_or("other"),
                    what: flights.get(&id).map_or("?", |f| f.what),
                    due_us,
                    token: 0,
                    ring_id: ring.0,
                },
                Choice::Timer {
                    node,
                    ring,
                    token,
                    due_us,
                } => ChoiceView {
                    kind: "timer",
                    id: 0,
                    from: node,
                    to: node,
                    node,
                    ring: self.sim.ring_name(ring).unwrap_or("other"),
                    what: "timer",
                    due_us,
                    token,
                    ring_id: ring.0,
                },
            })
            .collect()
    }

    /// The simulator fault of a fault op (updating the running network
    /// settings), `None` for an immediate action.
    fn fault_of(&self, op: &Op, net: &mut (f64, f64)) -> Option<Fault> {
        Some(match op {
            Op::Crash(n) => Fault::Crash(*n),
            Op::Restart(n) => Fault::Restart {
                node: *n,
                disk: RestartMode::Keep,
            },
            Op::Partition(g) => Fault::Partition(g.clone()),
            Op::Heal => Fault::Heal,
            Op::Loss(p) => {
                net.1 = *p;
                Fault::Network(network(net.0, net.1))
            }
            Op::Latency(ms) => {
                net.0 = *ms;
                Fault::Network(network(net.0, net.1))
            }
            Op::Drop(id) => Fault::DropMessage(*id),
            Op::Pause { node, ms } => Fault::Pause {
                node: *node,
                ms: *ms,
            },
            Op::Skew { node, ms } => Fault::Skew {
                node: *node,
                ms: *ms,
            },
            Op::PowerLoss(n) => Fault::Restart {
                node: *n,
                disk: RestartMode::LoseUnsynced,
            },
            Op::AddNode
            | Op::Request(_)
            | Op::Append { .. }
            | Op::Read { .. }
            | Op::Leave(_)
            | Op::RemoveMember(_)
            | Op::Deliver(_)
            | Op::Fire { .. }
            | Op::Lose(_) => return None,
        })
    }

    /// Apply (faults: schedule) one action at the current position.
    fn apply(&mut self, a: &Action) -> Result<(), String> {
        self.invariants.disturbed(self.sim.now());
        let mut net = self.net;
        if let Some(fault) = self.fault_of(&a.op, &mut net) {
            self.sim
                .schedule(Time::from_micros(a.at_us), fault)
                .map_err(err)?;
            self.net = net;
            return Ok(());
        }
        match &a.op {
            Op::AddNode => {
                let id = self.sim.add_node().map_err(err)?;
                self.sim.member_joined(id).map_err(err)?;
            }
            Op::Request(n) => {
                let n = *n;
                let r = self
                    .sim
                    .command::<Cartouche<u64>, _>(n, |c, cx| c.request(cx, "viz"))
                    .map_err(err)?;
                if r.is_none() {
                    return Err(format!("node {n} does not run Cartouche"));
                }
            }
            Op::Append { node, key } => {
                let Some(book) = &self.log else {
                    return Err("this world runs no log (open it with rings=...,ouroboros)".into());
                };
                let data = book.next_payload(key).into_bytes();
                let req = self
                    .sim
                    .command::<Ouroboros<u64>, _>(*node, |o, cx| o.append(cx, key.as_bytes(), data))
                    .map_err(err)?
                    .ok_or_else(|| format!("node {node} does not run Ouroboros"))?;
                let now = self.sim.now();
                if let Some(book) = &mut self.log {
                    book.issued_append(*node, req, key, now);
                }
                self.collect_log();
            }
            Op::Read { node, partition } => {
                let p = *partition;
                let req = self
                    .sim
                    .command::<Ouroboros<u64>, _>(*node, |o, cx| {
                        o.read_range(cx, p, 0, crate::log::READ_MAX)
                    })
                    .map_err(err)?
                    .ok_or_else(|| format!("node {node} does not run Ouroboros"))?;
                let now = self.sim.now();
                if let Some(book) = &mut self.log {
                    book.issued_read(*node, req, p, now);
                }
                self.collect_log();
            }
            Op::Leave(n) => {
                let n = *n;
                self.sim
                    .command::<Ouroboros<u64>, _>(n, |o, _| {
                        o.request_member_change(MemberChange::Leave(n));
                    })
                    .map_err(err)?
                    .ok_or_else(|| format!("node {n} does not run Ouroboros"))?;
                self.members.leaving.insert(n);
                self.collect_log();
            }
            Op::RemoveMember(n) => {
                let n = *n;
                let from = self.remover(n)?;
                self.sim
                    .command::<Ouroboros<u64>, _>(from, |o, _| {
                        o.request_member_change(MemberChange::Remove(n));
                    })
                    .map_err(err)?
                    .ok_or_else(|| format!("node {from} does not run Ouroboros"))?;
                self.collect_log();
            }
            Op::Deliver(id) => self.sim.deliver_now(*id).map_err(err)?,
            Op::Lose(id) => self.sim.drop_message(*id).map_err(err)?,
            Op::Fire { node, ring, token } => self
                .sim
                .fire_timer_now(*node, RingId(*ring), *token)
                .map_err(err)?,
            _ => {}
        }
        if matches!(a.op, Op::Deliver(_) | Op::Fire { .. } | Op::Lose(_)) {
            // The referee looks at every chosen state.
            self.collect_log();
            self.observe();
            self.invariants.check(self.sim.now(), &self.obs, self.net.1);
        }
        Ok(())
    }

    /// Node `id`'s Ouroboros ring (running nodes of log worlds).
    fn ouroboros(&self, id: u64) -> Result<&Ouroboros<u64>, String> {
        self.sim
            .node(id)
            .ok_or_else(|| format!("node {id} is down"))?
            .ring::<Ouroboros<u64>>()
            .ok_or_else(|| format!("node {id} does not run Ouroboros"))
    }

    /// Who asks for [`Op::RemoveMember`] of `n`: the lowest running member
    /// other than `n` (as its own table sees the member set).
    fn remover(&self, n: u64) -> Result<u64, String> {
        let from = (0..self.sim.node_count())
            .filter(|i| *i != n)
            .find(|i| self.ouroboros(*i).is_ok_and(|o| o.member_set().contains(i)))
            .ok_or_else(|| format!("no running member other than node {n} to ask"))?;
        let o = self.ouroboros(from)?;
        if !o.member_set().contains(&n) {
            return Err(format!(
                "node {n} is not a member of the log (node {from}'s table: {:?})",
                o.members()
            ));
        }
        Ok(from)
    }

    /// At a check point: every leaving member its own table no longer
    /// lists stops for good (as `shen leave` returns and the process
    /// exits). One that restarted before its leave was marked in the table
    /// asks again, as `shen leave` does while it waits.
    fn finish_leaves(&mut self) -> Result<(), String> {
        let leaving: Vec<u64> = self.members.leaving.iter().copied().collect();
        for l in leaving {
            let Ok(o) = self.ouroboros(l) else {
                continue; // down: it finishes when it runs again
            };
            let m = o.member_set();
            if !m.contains(&l) {
                self.invariants.disturbed(self.sim.now());
                self.sim.crash(l).map_err(err)?;
                self.members.leaving.remove(&l);
                self.members.gone.insert(l);
            } else if !m.is_leaving(&l) && o.own_intents().next().is_none() {
                self.sim
                    .command::<Ouroboros<u64>, _>(l, |o, _| {
                        o.request_member_change(MemberChange::Leave(l));
                    })
                    .map_err(err)?;
            }
        }
        Ok(())
    }

    /// Log worlds: the members that asked to leave and those gone.
    pub fn departures(&self) -> &Departures {
        &self.members
    }

    /// Re-apply the pending actions made at or before now, as they were
    /// made then (faults scheduled, immediate actions applied).
    fn apply_pending(&mut self) -> Result<(), String> {
        let now = self.sim.now().as_micros();
        while let Some(c) = self.pending.front() {
            if c.at_us > now {
                break;
            }
            let c = self.pending.pop_front().expect("peeked");
            self.check_op(&c.action.op)
                .and_then(|()| self.apply(&c.action))
                .map_err(|e| format!("replaying `{}`: {e}", c.action))?;
            self.actions.push(c);
        }
        Ok(())
    }

    /// A new action after a rewind: forget the rest of the old history.
    fn fork(&mut self) {
        let now = self.sim.now();
        self.pending.clear();
        self.marks.retain(|m| m.at <= now);
        self.horizon = now;
        if let Some(n) = &mut self.narration {
            n.forked(now.as_micros());
        }
        if let Some(st) = &mut self.spacetime {
            st.forked(now.as_micros());
        }
    }

    /// A log operation's client must exist, run, and the world run the log.
    fn log_client(&self, id: u64, node: impl Fn(u64) -> Result<(), String>) -> Result<(), String> {
        if self.log.is_none() {
            return Err(
                "this world runs no log: open a log world (rings=sundial,cartouche,ouroboros)"
                    .into(),
            );
        }
        node(id)?;
        if self.sim.node(id).is_none() {
            return Err(format!(
                "node {id} is down: a crashed node cannot be a client"
            ));
        }
        Ok(())
    }

    /// Read the Ouroboros events recorded since the last call (log worlds).
    fn collect_log(&mut self) {
        self.narrate();
        if let Some(book) = &mut self.log {
            book.collect(&mut self.sim);
        } else if self.narration.is_some() {
            self.sim.trace_mut().clear_kept();
        }
    }

    /// Tell the ring events recorded since the last call, with the phi
    /// their node computes at this instant.
    fn narrate(&mut self) {
        let Some(narration) = &mut self.narration else {
            return;
        };
        let total = self.sim.trace().total();
        if total == self.narr_at {
            return;
        }
        let sim = &self.sim;
        let threshold = self.obs.phi_threshold;
        let st = &mut self.spacetime;
        let first_new = st.as_ref().map(|s| s.next_id());
        for (_, e) in sim.trace().since(self.narr_at) {
            let at = e.at.as_micros();
            match &e.kind {
                TraceKind::Event { node, event, .. } => {
                    let phi = |m: u64| {
                        let local = sim.node_status(*node)?.local_time;
                        sim.node(*node)?.ring::<Sundial<u64>>()?.phi_of(&m, local)
                    };
                    let text = sentence(*node, event, phi, threshold);
                    narration.push_tagged(at, (*node, false), ring_of(event), text, tag_of(event));
                }
                other => {
                    if let TraceKind::Fault(f) = other {
                        if let Some((node, all, text, tag)) = fault_sentence(f) {
                            narration.push_tagged(at, (node, all), "fault", text, tag);
                        }
                    }
                    if let Some(st) = st {
                        record(st, sim, other, at);
                    }
                }
            }
        }
        self.narr_at = total;
        // The kinds of the messages just sent, read while they travel.
        if let (Some(st), Some(first)) = (st, first_new) {
            if st.next_id() > first {
                sim.visit_in_flight_since(first, |id, ring, payload| {
                    if st.lacks_kind(id) {
                        let ring = sim.ring_name(ring).unwrap_or("other");
                        let what = crate::explain::kind_of(ring, payload).map_or("?", |k| k.name);
                        st.set_kind(id, what);
                    }
                });
            }
        }
    }

    /// The space-time diagram's record of this history (`None`: too big a
    /// world to keep trace entries for).
    pub fn spacetime(&self) -> Option<&SpaceTime> {
        self.spacetime.as_ref()
    }

    /// The narration of this history (`None`: too big a world to keep
    /// trace entries for).
    pub fn narration(&self) -> Option<&Narration> {
        self.narration.as_ref()
    }

    fn take_mark(&mut self) {
        self.collect_log();
        self.marks.push(Mark {
            at: self.sim.now(),
            actions: self.actions.len(),
            snap: self.sim.snapshot(),
            invariants: self.invariants.clone(),
            net: self.net,
            log: self.log.clone(),
            tracker: self.tracker.clone(),
            members: self.members.clone(),
        });
        if self.marks.len() > self.max_marks {
            // Thin out: keep the first and every other one after it.
            let mut i = 0;
            self.marks.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.mark_every_us *= 2;
        }
    }

    /// Feed the check point just observed to the key figures.
    fn track_figures(&mut self) {
        let (actions, at) = (&self.actions, self.obs.at_us);
        let crashed_at = |node: u64| {
            actions
                .iter()
                .rev()
                .find(|c| c.action.op == Op::Crash(node) && c.action.at_us <= at)
                .map(|c| c.action.at_us)
        };
        self.tracker.update(&self.obs, crashed_at);
    }

    /// The key figures' record (see [`crate::figures`]).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    fn track_flights(&mut self) {
        let now = self.sim.now();
        let flying = self.sim.in_flight();
        if let Some(st) = &mut self.spacetime {
            for m in &flying {
                if st.lacks_kind(m.id) {
                    let ring = self.sim.ring_name(m.ring).unwrap_or("other");
                    let what =
                        crate::explain::kind_of(ring, &m.envelope.payload).map_or("?", |k| k.name);
                    st.set_kind(m.id, what);
                }
            }
        }
        let live: Vec<u64> = flying.iter().map(|m| m.id).collect();
        let mut seen = BTreeMap::new();
        for id in live {
            seen.insert(id, *self.first_seen.get(&id).unwrap_or(&now));
        }
        self.first_seen = seen;
    }

    /// Refresh the observation (and the reference ring).
    fn observe(&mut self) {
        self.obs = Observation::take_cached(&self.sim, &mut self.placement_cache);
        if let Some(book) = &self.log {
            self.obs.log = Some(LogObs::take(&self.sim, book));
        }
        let view_of = self.obs.first_up();
        self.ref_ring = match view_of {
            None => None,
            Some(id) => {
                let sundial = self.sim.node(id).and_then(|n| n.ring::<Sundial<u64>>());
                match (sundial, &self.ref_ring) {
                    (Some(s), Some(r)) if r.view_of == id && r.view_hash == s.view_hash() => {
                        self.ref_ring.take()
                    }
                    (Some(s), _) => {
                        AnkhRing::from_members(self.config.ankh.clone(), s.ankh_members())
                            .ok()
                            .map(|ring| RefRing {
                                view_of: id,
                                view_hash: s.view_hash(),
                                ring,
                            })
                    }
                    (None, _) => None,
                }
            }
        };
        if let Some(r) = &self.ref_ring {
            self.keys.update(&r.ring, self.sim.now().as_micros());
        }
    }

    /// Ankh's sample keys under the reference ring.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    // ------------------------------------------------------------ inspect

    /// Node `id`'s Sundial view: `(member, status, incarnation, suspectors)`.
    pub fn view_of(&self, id: u64) -> Vec<(u64, Status, u64, Vec<u64>)> {
        self.sim
            .node(id)
            .and_then(|n| n.ring::<Sundial<u64>>())
            .map(|s| {
                s.records()
                    .map(|r| (r.id, r.status, r.incarnation, r.suspectors.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Node `id`'s phi for each member it monitors.
    pub fn phis_of(&self, id: u64) -> Vec<(u64, f64)> {
        let Some(status) = self.sim.node_status(id) else {
            return Vec::new();
        };
        self.sim
            .node(id)
            .and_then(|n| n.ring::<Sundial<u64>>())
            .map(|s| {
                s.monitored()
                    .filter_map(|m| s.phi_of(m, status.local_time).map(|p| (*m, p)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Log worlds: the client operations issued from the page.
    pub fn log_book(&self) -> Option<&LogBook> {
        self.log.as_ref()
    }

    /// Node `id`'s Ouroboros state for partition `p`, one line (log
    /// worlds, running nodes).
    pub fn log_debug(&self, id: u64, p: u32) -> Option<String> {
        self.sim
            .node(id)
            .and_then(|n| n.ring::<Ouroboros<u64>>())
            .map(|o| o.debug_partition(p))
    }

    /// Idle tokens the running nodes sent straight to a requester (the
    /// `Want` shortcut; a restarted node counts from zero again).
    pub fn cartouche_shortcuts(&self) -> u64 {
        (0..self.sim.node_count())
            .filter_map(|id| self.sim.node(id))
            .filter_map(|n| n.ring::<Cartouche<u64>>())
            .map(|c| c.stats().shortcuts)
            .sum()
    }

    /// Node `id`'s Cartouche grant: `(request, fencing, lease end µs)`.
    pub fn grant_of(&self, id: u64) -> Option<(u64, Fencing, u64)> {
        self.sim
            .node(id)
            .and_then(|n| n.ring::<Cartouche<u64>>())
            .and_then(|c| c.grant())
            .map(|(r, f, t)| (r, f, t.as_micros()))
    }
}

/// Record one trace entry (a message sent, delivered, dropped, a node
/// event) in the space-time diagram.
fn record(
    st: &mut SpaceTime,
    sim: &Sim<ShenEvent<u64>>,
    kind: &TraceKind<ShenEvent<u64>>,
    at: u64,
) {
    let mark = |node: u64, event: NodeEvent| StMark {
        node,
        at_us: at,
        event,
    };
    match kind {
        TraceKind::Sent {
            id, from, to, ring, ..
        } => st.sent(*id, *from, *to, sim.ring_name(*ring).unwrap_or("other"), at),
        TraceKind::Delivered { id, .. } => st.ended(*id, Fate::Delivered, at),
        TraceKind::Dropped { id, reason, .. } => st.ended(*id, Fate::Dropped(reason.as_str()), at),
        TraceKind::Duplicated { id, copy } => st.duplicated(*id, *copy, at),
        TraceKind::NodeStarted { node, incarnation } => st.mark(mark(
            *node,
            NodeEvent::Start {
                incarnation: *incarnation,
            },
        )),
        TraceKind::Fault(f) => match **f {
            Fault::Crash(n) => st.mark(mark(n, NodeEvent::Crash)),
            Fault::Restart { node, .. } => st.mark(mark(node, NodeEvent::Crash)),
            Fault::Pause { node, ms } => st.mark(mark(node, NodeEvent::Pause { ms })),
            Fault::Skew { node, ms } => st.mark(mark(node, NodeEvent::Skew { ms })),
            _ => {}
        },
        _ => {}
    }
}

#[cfg(test)]
mod tests;
