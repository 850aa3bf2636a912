//! From a failing seed to the picture: a scenario and seed as the page URL
//! hash that replays the same run (same trace hash), opened at the first
//! invariant violation, when the scenario fits a page world; otherwise
//! the reason it does not. `shen sim run` prints the link of a failing
//! seed; the hash is parsed back by the page's own parser
//! ([`UrlParams::parse`]).

use shen_rings::Time;
use shen_transport_memory::{Fault, Latency, RestartMode, Scenario};

use crate::script::{check_stall, format_script, Action, Op, UrlParams};
use crate::world::{default_stack, network, VizConfig, World, MAX_VIZ_NODES, NO_BYPASS_MS};

/// A scenario's run as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PageRun {
    /// The URL hash (without `#`): the world, its script and `t`.
    pub hash: String,
    /// Where the link opens, µs: the first invariant violation, else the
    /// scenario's end.
    pub t_us: u64,
    /// The invariant violated first, if the page's invariants flag one.
    pub violation: Option<&'static str>,
    /// The page's trace hash at `t_us` (16 hex digits).
    pub trace_hash_at_t: String,
    /// The page's trace hash at the scenario's end: the native run's.
    pub trace_hash_at_end: String,
}

/// Why a scenario is not a page world, in words, or its page parameters
/// (the script and world, `t` unset).
///
/// # Errors
/// The first thing the page cannot express: too many nodes, a network or
/// ring settings other than a page world's, a fault the page lacks.
pub fn page_params(scenario: &Scenario, seed: u64) -> Result<UrlParams, String> {
    if scenario.nodes == 0 || scenario.nodes > MAX_VIZ_NODES {
        return Err(format!(
            "{} nodes: a page world has 1 to {MAX_VIZ_NODES}",
            scenario.nodes
        ));
    }
    let latency_ms = page_latency(&scenario.network).ok_or_else(|| {
        "its network is not a page world's (uniform latency from half to one and a half of \
         a mean, no loss, duplication or reordering at the start)"
            .to_string()
    })?;
    let stack = &scenario.stack;
    let defaults = default_stack();
    let mut rings = Vec::new();
    if stack.sundial.is_some() {
        rings.push("sundial".to_string());
    }
    if stack.cartouche.is_some() {
        rings.push("cartouche".to_string());
    }
    if stack.ouroboros.is_some() {
        rings.push("ouroboros".to_string());
    }
    let mut p = UrlParams {
        seed,
        nodes: scenario.nodes,
        latency_ms,
        rings: Some(rings),
        ..UrlParams::default()
    };
    if let (Some(s), Some(d)) = (&stack.sundial, &defaults.sundial) {
        p.fanout = (s.fanout != d.fanout).then_some(s.fanout);
        p.phi = (s.phi_threshold != d.phi_threshold).then_some(s.phi_threshold);
    }
    if let Some(o) = &stack.ouroboros {
        p.bypass = o.slow_after_ms != NO_BYPASS_MS;
    }
    if let Some(c) = &stack.cartouche {
        p.shortcut = c.want_shortcut;
    }
    // The page's own world for the size, when it is that one: a shorter
    // link.
    let mut plain = p.clone();
    plain.rings = None;
    if VizConfig::from_url(&plain).is_ok_and(|c| c.stack == *stack) {
        p.rings = None;
    }
    let config = VizConfig::from_url(&p).map_err(|e| format!("its rings: {e}"))?;
    if config.stack != *stack {
        return Err(stack_difference(&config, scenario));
    }
    p.faults = page_faults(scenario, latency_ms)?;
    // The script must read back as itself (the page parses it).
    let text = format_script(&p.faults);
    match crate::script::parse_script(&text) {
        Ok(back) if back == p.faults => Ok(p),
        Ok(_) => Err("its faults do not survive the URL form".into()),
        Err(e) => Err(format!("its faults: {e}")),
    }
}

/// The mean of a page world's network, if `net` is one.
fn page_latency(net: &shen_transport_memory::NetConfig) -> Option<f64> {
    let Latency::Uniform { min, max } = net.latency else {
        return None;
    };
    let mean = (min + max) / 2.0;
    (mean.is_finite() && mean > 0.0 && network(mean, 0.0) == *net).then_some(mean)
}

fn stack_difference(page: &VizConfig, scenario: &Scenario) -> String {
    let (a, b) = (&page.stack, &scenario.stack);
    let ring = if a.sundial != b.sundial {
        "Sundial"
    } else if a.cartouche != b.cartouche {
        "Cartouche"
    } else if a.ouroboros != b.ouroboros {
        "Ouroboros"
    } else {
        "the ring stack"
    };
    format!(
        "its {ring} settings are not a page world's (the page runs its rings with fixed \
         settings; only gossip fanout, phi threshold, chain bypass and the token shortcut \
         vary)"
    )
}

fn page_faults(scenario: &Scenario, latency_ms: f64) -> Result<Vec<Action>, String> {
    let mut net = (latency_ms, 0.0);
    let mut out = Vec::new();
    for (i, f) in scenario.faults.iter().enumerate() {
        let at_us = f.at_ms.checked_mul(1000).ok_or("a fault time overflows")?;
        let unfit = |what: &str| {
            format!(
                "fault {} at {} ms ({}): {what}",
                i + 1,
                f.at_ms,
                f.fault.kind()
            )
        };
        let op = match &f.fault {
            Fault::Crash(n) => Op::Crash(*n),
            Fault::Restart { node, disk } => match disk {
                RestartMode::Keep => Op::Restart(*node),
                RestartMode::LoseUnsynced => Op::PowerLoss(*node),
                RestartMode::LoseDisk => {
                    return Err(unfit("the page has no restart that loses the whole disk"))
                }
            },
            Fault::Partition(g) => Op::Partition(g.clone()),
            Fault::Heal => Op::Heal,
            Fault::DropMessage(id) => Op::Drop(*id),
            Fault::Pause { node, ms } => {
                check_stall(true, *ms).map_err(|e| unfit(&e))?;
                Op::Pause {
                    node: *node,
                    ms: *ms,
                }
            }
            Fault::Skew { node, ms } => {
                check_stall(false, *ms).map_err(|e| unfit(&e))?;
                Op::Skew {
                    node: *node,
                    ms: *ms,
                }
            }
            Fault::Network(n) => {
                let mean = page_latency(&shen_transport_memory::NetConfig {
                    loss: 0.0,
                    ..n.clone()
                })
                .ok_or_else(|| {
                    unfit("the page sets only a uniform latency and a loss probability")
                })?;
                let loss = n.loss;
                if !(0.0..=1.0).contains(&loss) || network(mean, loss) != *n {
                    return Err(unfit(
                        "the page sets only a uniform latency and a loss probability",
                    ));
                }
                let op =
                    match (mean != net.0, loss != net.1) {
                        (true, true) => return Err(unfit(
                            "the page changes latency and loss one at a time, this changes both",
                        )),
                        (true, false) if mean <= 10_000.0 => Op::Latency(mean),
                        (true, false) => return Err(unfit("the page's latency is at most 10 s")),
                        (false, _) => Op::Loss(loss),
                    };
                net = (mean, loss);
                op
            }
            other => {
                return Err(unfit(&format!(
                    "the page has no `{}` fault (it has crash, restart, power loss, partition, \
                     heal, latency, loss, drop, pause and clock skew)",
                    other.kind()
                )))
            }
        };
        out.push(Action { at_us, op });
    }
    Ok(out)
}

/// Replay `scenario` with `seed` as the page would (natively) and give the
/// link: at the first invariant violation if the page's invariants flag
/// one, else at the scenario's end.
///
/// # Errors
/// As [`page_params`], or a world that cannot replay the script.
pub fn page_run(scenario: &Scenario, seed: u64) -> Result<PageRun, String> {
    let mut p = page_params(scenario, seed)?;
    let config = VizConfig::from_url(&p)?;
    let mut w = World::with_script(config, p.faults.clone())?;
    let end = Time::from_millis(scenario.duration_ms);
    w.run_to(end)?;
    let trace_hash_at_end = format!("{:016x}", w.trace_hash());
    let first = w
        .invariants()
        .all()
        .into_iter()
        .filter_map(|c| c.first_violation_us.map(|t| (t, c.name)))
        .min();
    let t_us = first.map_or(end.as_micros(), |(t, _)| t.min(end.as_micros()));
    w.seek(Time::from_micros(t_us))?;
    p.t_us = Some(t_us);
    Ok(PageRun {
        hash: p.to_hash(),
        t_us,
        violation: first.map(|(_, name)| name),
        trace_hash_at_t: format!("{:016x}", w.trace_hash()),
        trace_hash_at_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shen_transport_memory::{ScheduledFault, TraceMode};

    fn page_scenario(seed: u64) -> Scenario {
        let mut w = World::new(VizConfig::new(seed, 5)).unwrap();
        w.run_to(Time::from_millis(1_000)).unwrap();
        w.act(Op::Crash(2)).unwrap();
        w.run_to(Time::from_millis(1_500)).unwrap();
        w.act(Op::Partition(vec![vec![0, 1], vec![3, 4]])).unwrap();
        w.act(Op::Loss(0.1)).unwrap();
        w.run_to(Time::from_millis(2_500)).unwrap();
        w.act(Op::Heal).unwrap();
        w.act(Op::Loss(0.0)).unwrap();
        w.act(Op::Restart(2)).unwrap();
        w.run_to(Time::from_millis(6_000)).unwrap();
        w.scenario().unwrap()
    }

    fn native_hash(s: &Scenario, seed: u64) -> String {
        let mut sim = s.build(seed, TraceMode::HashOnly).unwrap();
        sim.run_until(Time::from_millis(s.duration_ms));
        format!("{:016x}", sim.trace_hash())
    }

    #[test]
    fn a_page_scenario_links_back_to_itself() {
        let s = page_scenario(4);
        let run = page_run(&s, 9).unwrap();
        let p = UrlParams::parse(&run.hash).unwrap();
        assert_eq!((p.seed, p.nodes, p.rings.clone()), (9, 5, None));
        assert_eq!(p.faults.len(), s.faults.len());
        for (a, f) in p.faults.iter().zip(&s.faults) {
            assert_eq!(a.at_us, f.at_ms * 1000);
        }
        assert_eq!(VizConfig::from_url(&p).unwrap().stack, s.stack);
        assert_eq!(run.trace_hash_at_end, native_hash(&s, 9));
        assert_eq!(run.violation, None);
        assert_eq!(run.t_us, s.duration_ms * 1000);
        assert_eq!(run.trace_hash_at_t, run.trace_hash_at_end);
    }

    #[test]
    fn tuned_rings_and_log_worlds_link_with_their_settings() {
        let p =
            UrlParams::parse("nodes=6&rings=sundial,cartouche,ouroboros&fanout=1&phi=5&bypass=off")
                .unwrap();
        let mut w = World::with_script(VizConfig::from_url(&p).unwrap(), vec![]).unwrap();
        w.run_to(Time::from_millis(500)).unwrap();
        w.act(Op::Crash(1)).unwrap();
        w.run_to(Time::from_millis(2_000)).unwrap();
        let s = w.scenario().unwrap();
        let q = page_params(&s, 1).unwrap();
        assert_eq!((q.fanout, q.phi, q.bypass), (Some(1), Some(5.0), false));
        let run = page_run(&s, 1).unwrap();
        assert_eq!(run.trace_hash_at_end, native_hash(&s, 1));
    }

    #[test]
    fn what_a_page_world_lacks_is_named() {
        let base = page_scenario(1);
        let with = |f: Fault| {
            let mut s = base.clone();
            s.faults.push(ScheduledFault {
                at_ms: 3_000,
                fault: f,
            });
            s
        };
        let cases = [
            (
                with(Fault::Drift { node: 1, ppm: 500 }),
                "fault 7 at 3000 ms (drift): the page has no `drift` fault",
            ),
            (
                with(Fault::Restart {
                    node: 1,
                    disk: RestartMode::LoseDisk,
                }),
                "loses the whole disk",
            ),
            (with(Fault::Network(network(80.0, 0.2))), "changes both"),
            (
                Scenario {
                    nodes: MAX_VIZ_NODES + 1,
                    ..base.clone()
                },
                "2001 nodes",
            ),
            (
                Scenario {
                    network: network(40.0, 0.3),
                    ..base.clone()
                },
                "its network is not a page world's",
            ),
        ];
        for (s, want) in cases {
            let e = page_params(&s, 1).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
        let mut s = base.clone();
        if let Some(c) = &mut s.stack.cartouche {
            c.idle_pass_ms = 5;
        }
        assert!(page_params(&s, 1)
            .unwrap_err()
            .contains("its Cartouche settings are not a page world's"));
    }

    /// A world that breaks an invariant opens at its first violation, with
    /// the trace hash of the run up to there: a node paused for a minute
    /// is declared dead by the others while it still runs, so the views
    /// stay apart past the convergence bound (no partition, no loss).
    #[test]
    fn the_link_opens_at_the_first_violation() {
        let mut w = World::new(VizConfig::new(3, 5)).unwrap();
        w.run_to(Time::from_millis(1_000)).unwrap();
        w.act(Op::Pause {
            node: 2,
            ms: 60_000.0,
        })
        .unwrap();
        w.run_to(Time::from_millis(30_000)).unwrap();
        let s = w.scenario().unwrap();
        let run = page_run(&s, 3).unwrap();
        assert_eq!(run.violation, Some("views_converged"));
        assert!(
            (20_000_000..s.duration_ms * 1000).contains(&run.t_us),
            "violated at {} µs",
            run.t_us
        );
        let p = UrlParams::parse(&run.hash).unwrap();
        assert_eq!(p.t_us, Some(run.t_us));
        let mut again = World::with_script(VizConfig::from_url(&p).unwrap(), p.faults).unwrap();
        again.run_to(Time::from_micros(run.t_us)).unwrap();
        assert_eq!(format!("{:016x}", again.trace_hash()), run.trace_hash_at_t);
        assert_eq!(again.invariants().first_violation_us(), Some(run.t_us));
        assert_ne!(run.trace_hash_at_t, run.trace_hash_at_end);
        assert_eq!(run.trace_hash_at_end, native_hash(&s, 3));
    }
}
