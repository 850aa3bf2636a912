//! Scenarios: a small serde struct (TOML or JSON) naming the nodes, the ring
//! stack, the network, a fault schedule and expectations; and the report a
//! run produces.
//!
//! ```toml
//! name = "relay-basic"
//! seed = 1
//! nodes = 5
//! duration_ms = 2000
//!
//! [stack.relay]
//! lap_timeout_ms = 200
//!
//! [network]
//! latency = { uniform = { min = 1, max = 5 } }
//!
//! [[faults]]
//! at_ms = 500
//! fault = { crash = 3 }
//!
//! [[expect]]
//! event = "relay.lap_completed"
//! min = 5
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use shen_rings::stack::{ShenEvent, StackConfig};
use shen_rings::Time;

use crate::event::SimEvent;
use crate::fault::Fault;
use crate::net::NetConfig;
use crate::sim::{stack_factory, NodeFactory, Sim, SimConfig};

/// The most nodes a scenario may have. Every standard ring knows every
/// member, so memory grows with the square of the node count; worlds larger
/// than this are built through [`Sim::new`] with a custom factory.
pub const MAX_SCENARIO_NODES: u64 = 4096;
use crate::stats::Traffic;
use crate::trace::TraceMode;

/// A simulation scenario. Unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name for reports.
    pub name: String,
    /// The world seed (a command line may override it).
    #[serde(default)]
    pub seed: u64,
    /// How many nodes (ids `0..nodes`).
    pub nodes: u64,
    /// How long to run, in virtual milliseconds.
    pub duration_ms: u64,
    /// Which rings run, with their settings.
    #[serde(default)]
    pub stack: StackConfig,
    /// Global network settings.
    #[serde(default)]
    pub network: NetConfig,
    /// Faults and actions, each at a virtual time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<ScheduledFault>,
    /// Checks on the event counts at the end of the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Expectation>,
}

/// A fault at a virtual time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    /// When, in virtual milliseconds from the start.
    pub at_ms: u64,
    /// What.
    pub fault: Fault,
}

/// A check on how many events named `event` were reported (by every node,
/// or by `node` alone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The event name (`ring.event`, as [`SimEvent::name`] returns).
    pub event: String,
    /// Count only this node's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    /// At least this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// At most this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

/// An expectation with the count observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// The check.
    #[serde(flatten)]
    pub expect: Expectation,
    /// The count observed.
    pub actual: u64,
    /// Whether the check held.
    pub passed: bool,
}

impl fmt::Display for ExpectationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.expect;
        write!(f, "{}", e.event)?;
        if let Some(n) = e.node {
            write!(f, " on node {n}")?;
        }
        write!(f, " = {}", self.actual)?;
        match (e.min, e.max) {
            (Some(lo), Some(hi)) => write!(f, " (want {lo}..={hi})"),
            (Some(lo), None) => write!(f, " (want >= {lo})"),
            (None, Some(hi)) => write!(f, " (want <= {hi})"),
            (None, None) => Ok(()),
        }
    }
}

/// A scenario that could not be loaded or is invalid: where (file or other
/// source), which field, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file name (or another label for the text's origin).
    pub source: String,
    /// The offending field as a path (`faults[2].fault.crash`), empty when
    /// the error is not about one field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(
                f,
                "{}: field `{}`: {}",
                self.source, self.field, self.message
            )
        }
    }
}

impl std::error::Error for ScenarioError {}

fn path_field(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." {
        String::new()
    } else {
        s
    }
}

/// Line and column (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Split `message: rest` of a validation error into field and message.
fn invalid(source: &str, msg: String) -> ScenarioError {
    match msg.split_once(": ") {
        Some((field, rest)) if !field.contains(' ') => ScenarioError {
            source: source.to_string(),
            field: field.to_string(),
            message: rest.to_string(),
        },
        _ => ScenarioError {
            source: source.to_string(),
            field: String::new(),
            message: msg,
        },
    }
}

impl Scenario {
    /// Parse TOML text; `source` (usually the file name) labels errors.
    /// Does not [validate](Scenario::validate).
    pub fn parse_toml(text: &str, source: &str) -> Result<Scenario, ScenarioError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, source, e, ""))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = path_field(e.path());
            toml_error(text, source, e.into_inner(), &field)
        })
    }

    /// Parse JSON text; `source` labels errors. Does not validate.
    pub fn parse_json(text: &str, source: &str) -> Result<Scenario, ScenarioError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let s: Scenario = serde_path_to_error::deserialize(&mut de).map_err(|e| ScenarioError {
            source: source.to_string(),
            field: path_field(e.path()),
            message: e.into_inner().to_string(),
        })?;
        de.end().map_err(|e| ScenarioError {
            source: source.to_string(),
            field: String::new(),
            message: e.to_string(),
        })?;
        Ok(s)
    }

    /// Parse and validate: JSON when `source` ends in `.json` or the text
    /// starts with `{`, TOML otherwise.
    pub fn load(text: &str, source: &str) -> Result<Scenario, ScenarioError> {
        let json = source.ends_with(".json") || text.trim_start().starts_with('{');
        let s = if json {
            Scenario::parse_json(text, source)?
        } else {
            Scenario::parse_toml(text, source)?
        };
        s.validate().map_err(|mut e| {
            e.source = source.to_string();
            e
        })?;
        Ok(s)
    }

    /// The scenario as compact JSON (the browser's URL form).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The scenario as TOML.
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }

    /// Check the scenario against the standard stack's events.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_for::<ShenEvent<u64>>()
    }

    /// Check the scenario for a world whose events are `E`. The error names
    /// the field.
    pub fn validate_for<E: SimEvent>(&self) -> Result<(), ScenarioError> {
        let src = "scenario";
        let err = |m: String| Err(invalid(src, m));
        if self.nodes == 0 || self.nodes > MAX_SCENARIO_NODES {
            return err(format!(
                "nodes: must be between 1 and {MAX_SCENARIO_NODES}, got {}",
                self.nodes
            ));
        }
        if self.duration_ms == 0 {
            return err("duration_ms: must be at least 1".to_string());
        }
        if self.duration_ms > u64::MAX / 1000 {
            return err(format!("duration_ms: too large ({})", self.duration_ms));
        }
        if self.stack.is_empty() {
            return err("stack: no ring is enabled (add e.g. [stack.relay])".to_string());
        }
        if let Some(r) = &self.stack.relay {
            if r.lap_timeout_ms == 0 {
                return err("stack.relay.lap_timeout_ms: must be at least 1".to_string());
            }
        }
        if let Some(s) = &self.stack.sundial {
            if let Err((field, why)) = s.validate() {
                return err(format!("stack.sundial.{field}: {why}"));
            }
        }
        if let Some(s) = &self.stack.cartouche {
            if let Err((field, why)) = s.validate() {
                return err(format!("stack.cartouche.{field}: {why}"));
            }
        }
        if let Some(start) = &self.stack.start {
            start
                .check(self.nodes, &self.stack)
                .map_err(|m| invalid(src, format!("stack.{m}")))?;
        }
        self.network
            .validate("network")
            .map_err(|m| invalid(src, m))?;
        for (i, f) in self.faults.iter().enumerate() {
            if f.at_ms > self.duration_ms {
                return err(format!(
                    "faults[{i}].at_ms: {} is after the end of the run (duration_ms = {})",
                    f.at_ms, self.duration_ms
                ));
            }
            f.fault
                .validate(&format!("faults[{i}].fault"), self.nodes)
                .map_err(|m| invalid(src, m))?;
        }
        for (i, e) in self.expect.iter().enumerate() {
            if let Some(names) = E::known_names() {
                if !names.contains(&e.event.as_str()) {
                    return err(format!(
                        "expect[{i}].event: unknown event `{}` (known: {})",
                        e.event,
                        names.join(", ")
                    ));
                }
            }
            if let Some(n) = e.node {
                if n >= self.nodes {
                    return err(format!(
                        "expect[{i}].node: node {n} is out of range (the world has {} nodes)",
                        self.nodes
                    ));
                }
            }
            match (e.min, e.max) {
                (None, None) => {
                    return err(format!("expect[{i}]: give `min`, `max` or both"));
                }
                (Some(lo), Some(hi)) if lo > hi => {
                    return err(format!("expect[{i}].max: {hi} is below min ({lo})"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The world of this scenario with the standard stack, seeded with
    /// `seed`, faults scheduled, not yet run.
    pub fn build(&self, seed: u64, trace: TraceMode) -> Result<Sim<ShenEvent<u64>>, ScenarioError> {
        self.build_with(seed, trace, stack_factory(self.stack.clone()))
    }

    /// The world of this scenario with nodes built by `factory` (custom
    /// rings; `stack` is ignored).
    pub fn build_with<E: SimEvent>(
        &self,
        seed: u64,
        trace: TraceMode,
        factory: NodeFactory<E>,
    ) -> Result<Sim<E>, ScenarioError> {
        let wrap = |e: crate::SimError| invalid("scenario", e.to_string());
        let mut sim = Sim::new(
            SimConfig {
                seed,
                nodes: self.nodes,
                network: self.network.clone(),
                trace,
            },
            factory,
        )
        .map_err(wrap)?;
        for f in &self.faults {
            sim.schedule(Time::from_millis(f.at_ms), f.fault.clone())
                .map_err(wrap)?;
        }
        Ok(sim)
    }

    /// Run the scenario with `seed` to its end and report.
    pub fn run(&self, seed: u64, trace: TraceMode) -> Result<RunReport, ScenarioError> {
        let mut sim = self.build(seed, trace)?;
        sim.run_until(Time::from_millis(self.duration_ms));
        Ok(self.report(&sim))
    }

    /// Check the expectations against `sim`.
    pub fn check<E: SimEvent>(&self, sim: &Sim<E>) -> Vec<ExpectationResult> {
        self.expect
            .iter()
            .map(|e| {
                let actual = match e.node {
                    Some(n) => sim.node_event_count(n, &e.event),
                    None => sim.event_count(&e.event),
                };
                let passed =
                    e.min.is_none_or(|lo| actual >= lo) && e.max.is_none_or(|hi| actual <= hi);
                ExpectationResult {
                    expect: e.clone(),
                    actual,
                    passed,
                }
            })
            .collect()
    }

    /// The report of `sim` (a run of this scenario).
    pub fn report<E: SimEvent>(&self, sim: &Sim<E>) -> RunReport {
        let expectations = self.check(sim);
        let passed = expectations.iter().all(|e| e.passed);
        RunReport {
            scenario: self.name.clone(),
            seed: sim.seed(),
            nodes: sim.node_count(),
            end_time_ms: sim.now().as_millis(),
            steps: sim.steps(),
            trace_hash: format!("{:016x}", sim.trace_hash()),
            trace_entries: sim.trace().total(),
            traffic: sim.traffic(),
            rings: sim
                .traffic_by_ring()
                .into_iter()
                .map(|(id, t)| {
                    let name = sim
                        .ring_name(id)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("ring-{}", id.0));
                    (name, t)
                })
                .collect(),
            events: sim
                .event_counts()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            expectations,
            passed,
        }
    }
}

fn toml_error(text: &str, source: &str, e: toml::de::Error, field: &str) -> ScenarioError {
    let mut message = e.message().trim().to_string();
    if let Some(span) = e.span() {
        let (l, c) = line_col(text, span.start);
        message = format!("{message} (line {l}, column {c})");
    }
    ScenarioError {
        source: source.to_string(),
        field: field.to_string(),
        message,
    }
}

/// What one run did: its trace hash, counters, event counts and whether
/// every expectation held. Serializes to JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Node count.
    pub nodes: u64,
    /// Virtual time at the end, in ms.
    pub end_time_ms: u64,
    /// Events processed.
    pub steps: u64,
    /// XXH3-64 of the whole trace, as 16 hex digits.
    pub trace_hash: String,
    /// Trace entries recorded.
    pub trace_entries: u64,
    /// Traffic over the whole world.
    pub traffic: Traffic,
    /// Traffic per ring name.
    pub rings: BTreeMap<String, Traffic>,
    /// Event counts by name.
    pub events: BTreeMap<String, u64>,
    /// Each expectation with its observed count.
    pub expectations: Vec<ExpectationResult>,
    /// True when every expectation held.
    pub passed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASIC: &str = r#"
name = "t"
seed = 3
nodes = 4
duration_ms = 1000

[stack.relay]
lap_timeout_ms = 100

[network]
latency = { uniform = { min = 1, max = 3 } }
loss = 0.0

[[faults]]
at_ms = 100
fault = { crash = 2 }

[[faults]]
at_ms = 200
fault = { restart = { node = 2, disk = "lose_unsynced" } }

[[faults]]
at_ms = 300
fault = { partition = [[0, 1], [2, 3]] }

[[faults]]
at_ms = 400
fault = "heal"

[[expect]]
event = "relay.lap_completed"
min = 1
"#;

    #[test]
    fn toml_and_json_forms_agree() {
        let s = Scenario::load(BASIC, "basic.toml").unwrap();
        assert_eq!(s.faults.len(), 4);
        let json = s.to_json();
        let back = Scenario::load(&json, "basic.json").unwrap();
        assert_eq!(back, s);
        let toml = s.to_toml().unwrap();
        assert_eq!(Scenario::load(&toml, "again.toml").unwrap(), s);
    }

    fn err_of(text: &str) -> ScenarioError {
        Scenario::load(text, "bad.toml").unwrap_err()
    }

    #[test]
    fn errors_name_the_field_and_file() {
        let e = err_of(&BASIC.replace("loss = 0.0", "loss = \"lots\""));
        assert_eq!(e.field, "network.loss", "{e}");
        assert!(
            e.to_string().starts_with("bad.toml: field `network.loss`"),
            "{e}"
        );

        let e = err_of(&BASIC.replace("loss = 0.0", "loss = 1.5"));
        assert_eq!(e.field, "network.loss", "{e}");

        let e = err_of(&BASIC.replace("{ crash = 2 }", "{ crash = 9 }"));
        assert_eq!(e.field, "faults[0].fault.crash", "{e}");

        let e = err_of(&BASIC.replace("{ crash = 2 }", "{ crash = \"two\" }"));
        assert_eq!(e.field, "faults[0].fault.crash", "{e}");

        let e = err_of(&BASIC.replace("{ crash = 2 }", "{ explode = 2 }"));
        assert!(e.field.starts_with("faults[0].fault"), "{e}");
        assert!(e.message.contains("explode"), "{e}");

        let e = err_of(&BASIC.replace("seed = 3", "sed = 3"));
        assert!(e.message.contains("sed"), "{e}");

        let e = err_of(&BASIC.replace("min = 1\n", "min = 1\nmax = 0\n"));
        assert_eq!(e.field, "expect[0].max", "{e}");

        let e = err_of(&BASIC.replace("relay.lap_completed", "relay.lap_complete"));
        assert_eq!(e.field, "expect[0].event", "{e}");

        let e = err_of(&BASIC.replace("nodes = 4", "nodes = 0"));
        assert_eq!(e.field, "nodes", "{e}");
        let e = err_of(&BASIC.replace("nodes = 4", "nodes = 100000"));
        assert_eq!(e.field, "nodes", "{e}");

        let e = err_of(&BASIC.replace("at_ms = 400", "at_ms = 4000"));
        assert_eq!(e.field, "faults[3].at_ms", "{e}");

        let e = err_of(&BASIC.replace("max = 3 }", "max = 0.5 }"));
        assert_eq!(e.field, "network.latency.uniform.max", "{e}");

        let e = err_of("name = \"x\"\nnodes = [\n");
        assert!(e.message.contains("line"), "{e}");

        let e = Scenario::load(
            r#"{"name":"x","nodes":2,"duration_ms":5,"stack":{"relay":{}},"network":{"loss":2}}"#,
            "u.json",
        )
        .unwrap_err();
        assert_eq!(e.field, "network.loss", "{e}");
        assert!(e.to_string().starts_with("u.json: "), "{e}");

        let e = Scenario::load(r#"{"name":"x","nodes":"2"}"#, "u.json").unwrap_err();
        assert_eq!(e.field, "nodes", "{e}");
    }

    #[test]
    fn runs_and_reports() {
        let s = Scenario::load(BASIC, "basic.toml").unwrap();
        let r = s.run(s.seed, TraceMode::HashOnly).unwrap();
        assert!(r.passed, "{r:?}");
        assert_eq!(r.end_time_ms, 1000);
        assert!(r.events["relay.lap_completed"] >= 1);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"trace_hash\""));
        let again = s.run(s.seed, TraceMode::Full).unwrap();
        assert_eq!(again.trace_hash, r.trace_hash);
    }
}
