//! Side by side: two worlds of one seed and fault script that differ in
//! one setting, named by a URL hash (`#sbs=fanout:1/3&seed=7&faults=...`),
//! each of them exactly the single world its own hash opens.
//!
//! The hash is an ordinary world hash (see [`UrlParams`]) plus
//! `sbs=SETTING:A/B`; world A is that hash with `SETTING=A`, world B with
//! `SETTING=B`. Both parse through [`UrlParams::parse`], so a side-by-side
//! link and the two single-world links replay the same runs.

use crate::script::{format_script, Action, UrlParams};

/// The settings two worlds may differ in (each a [`UrlParams`] key).
pub const SETTINGS: [&str; 6] = ["vnodes", "fanout", "phi", "lat", "bypass", "shortcut"];

/// Two worlds that differ in one setting.
#[derive(Clone, Debug, PartialEq)]
pub struct SideBySide {
    /// The setting (one of [`SETTINGS`]).
    pub setting: String,
    /// Its value in world A and in world B, as written in the hash.
    pub values: [String; 2],
    /// The hash both worlds share (without `sbs`).
    base: String,
}

impl SideBySide {
    /// Parse a side-by-side hash (with or without the leading `#`).
    ///
    /// # Errors
    /// No `sbs`, an unknown setting, a value the world hash refuses, the
    /// setting given outside `sbs` too, or two worlds that are the same.
    pub fn parse(hash: &str) -> Result<SideBySide, String> {
        let hash = hash.trim().trim_start_matches('#');
        let mut sbs: Option<&str> = None;
        let mut rest: Vec<&str> = Vec::new();
        for pair in hash.split('&').filter(|p| !p.is_empty()) {
            match pair.strip_prefix("sbs=") {
                Some(_) if sbs.is_some() => {
                    return Err("side by side: `sbs` is given twice".into());
                }
                Some(v) => sbs = Some(v),
                None => rest.push(pair),
            }
        }
        let want = || {
            format!(
                "side by side: want `sbs=SETTING:A/B` with SETTING one of {}",
                SETTINGS.join(", ")
            )
        };
        let v = sbs.ok_or_else(want)?;
        let (setting, values) = v.split_once(':').ok_or_else(want)?;
        if !SETTINGS.contains(&setting) {
            return Err(format!(
                "side by side: unknown setting `{setting}`; {}",
                want()
            ));
        }
        let (a, b) = values.split_once('/').ok_or_else(want)?;
        if rest
            .iter()
            .any(|p| p.split_once('=').map_or(*p, |(k, _)| k) == setting)
        {
            return Err(format!(
                "side by side: `{setting}` is the setting the worlds differ in; give it only in \
                 `sbs={setting}:A/B`"
            ));
        }
        let base = rest.join("&");
        UrlParams::parse(&base)?;
        let out = SideBySide {
            setting: setting.to_string(),
            values: [a.to_string(), b.to_string()],
            base,
        };
        let [pa, pb] = out.worlds()?;
        if pa == pb {
            return Err(format!(
                "side by side: `{setting}` {a} and {b} make the same world; pick two different \
                 values"
            ));
        }
        Ok(out)
    }

    /// World `i`'s own hash (0: A, 1: B), as the page opens a single
    /// world.
    pub fn world_hash(&self, i: usize) -> String {
        let one = format!("{}={}", self.setting, self.values[i.min(1)]);
        if self.base.is_empty() {
            one
        } else {
            format!("{}&{one}", self.base)
        }
    }

    /// The two worlds' parameters.
    ///
    /// # Errors
    /// A value the world hash refuses, naming the world.
    pub fn worlds(&self) -> Result<[UrlParams; 2], String> {
        let one = |i: usize| {
            UrlParams::parse(&self.world_hash(i)).map_err(|e| {
                format!(
                    "side by side, world {} ({}={}): {e}",
                    ["A", "B"][i],
                    self.setting,
                    self.values[i]
                )
            })
        };
        Ok([one(0)?, one(1)?])
    }

    /// The hash of this pair after a run: the shared script and time
    /// replace the ones it was opened with.
    ///
    /// # Errors
    /// Only if the base hash no longer parses (it did in [`Self::parse`]).
    pub fn hash_with(&self, faults: Vec<Action>, t_us: Option<u64>) -> Result<String, String> {
        let base = UrlParams {
            faults,
            t_us,
            ..UrlParams::parse(&self.base)?
        };
        Ok(format!(
            "sbs={}:{}/{}&{}",
            self.setting,
            self.values[0],
            self.values[1],
            base.to_hash()
        ))
    }
}

/// A side-by-side pair's description as JSON for the page:
/// `{setting, values, hashes: [A, B], script}`.
///
/// # Errors
/// As [`SideBySide::parse`].
pub fn describe_json(hash: &str) -> Result<String, String> {
    let s = SideBySide::parse(hash)?;
    let [a, _] = s.worlds()?;
    let v = serde_json::json!({
        "setting": s.setting,
        "values": s.values,
        "hashes": [s.world_hash(0), s.world_hash(1)],
        "script": format_script(&a.faults),
        "t_us": a.t_us,
    });
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::figures;
    use crate::script::Op;
    use crate::world::{VizConfig, World};
    use shen_rings::Time;

    fn world(p: &UrlParams) -> World {
        World::with_script(VizConfig::from_url(p).unwrap(), p.faults.clone()).unwrap()
    }

    #[test]
    fn a_pair_is_two_single_world_hashes() {
        let s =
            SideBySide::parse("#sbs=fanout:1/3&seed=7&nodes=6&faults=1000:crash:2&t=900").unwrap();
        assert_eq!(s.setting, "fanout");
        assert_eq!(
            s.world_hash(0),
            "seed=7&nodes=6&faults=1000:crash:2&t=900&fanout=1"
        );
        let [a, b] = s.worlds().unwrap();
        assert_eq!((a.fanout, b.fanout), (Some(1), Some(3)));
        assert_eq!((a.seed, a.nodes, a.t_us), (7, 6, Some(900_000)));
        assert_eq!(a.faults, b.faults);
        let again = s.hash_with(a.faults.clone(), Some(1_500_000)).unwrap();
        assert_eq!(
            again,
            "sbs=fanout:1/3&seed=7&nodes=6&faults=1000:crash:2&t=1500"
        );
        assert_eq!(
            SideBySide::parse(&again).unwrap().worlds().unwrap()[1].t_us,
            Some(1_500_000)
        );
        let d: serde_json::Value =
            serde_json::from_str(&describe_json("sbs=vnodes:8/160").unwrap()).unwrap();
        assert_eq!(d["hashes"][1], "vnodes=160");
    }

    #[test]
    fn bad_pairs_are_clear_errors() {
        for (hash, want) in [
            ("seed=1", "want `sbs=SETTING:A/B`"),
            ("sbs=fanout", "want `sbs=SETTING:A/B`"),
            ("sbs=fanout:1", "want `sbs=SETTING:A/B`"),
            ("sbs=colour:1/2", "unknown setting `colour`"),
            ("sbs=fanout:1/3&sbs=phi:1/2", "given twice"),
            ("sbs=fanout:1/3&fanout=2", "give it only in"),
            ("sbs=fanout:0/3", "world A (fanout=0)"),
            ("sbs=phi:4/x", "world B (phi=x)"),
            ("sbs=phi:8/8.0", "make the same world"),
            ("sbs=vnodes:8/160&seed=x", "URL `seed`"),
        ] {
            let e = SideBySide::parse(hash).unwrap_err();
            assert!(e.contains(want), "{hash}: {e}");
        }
    }

    /// Two worlds run in lockstep, a fault scheduled at a slot free in
    /// both: each world's script replays, from its own single-world hash,
    /// to the same trace hash; the differing setting shows in the figures.
    #[test]
    fn lockstep_worlds_replay_from_their_own_hashes() {
        let s = SideBySide::parse("sbs=fanout:1/4&seed=3&nodes=12").unwrap();
        let [pa, pb] = s.worlds().unwrap();
        let mut w = [world(&pa), world(&pb)];
        let t = Time::from_millis(2_500);
        for x in &mut w {
            x.run_to(t).unwrap();
        }
        // A slot free in both worlds.
        let mut at = w[0].fault_slot(0);
        loop {
            let b = w[1].fault_slot(at);
            let a = w[0].fault_slot(b);
            if a == at {
                break;
            }
            at = a;
        }
        for x in &mut w {
            x.act_at(Op::Crash(5), at).unwrap();
        }
        assert_eq!(w[0].script(), w[1].script());
        let end = Time::from_millis(9_000);
        for x in &mut w {
            x.run_to(end).unwrap();
        }
        let hash = s.hash_with(w[0].script(), Some(end.as_micros())).unwrap();
        let [ra, rb] = SideBySide::parse(&hash).unwrap().worlds().unwrap();
        for (x, p) in w.iter().zip([ra, rb]) {
            let mut replay = world(&p);
            replay.run_to(end).unwrap();
            assert_eq!(replay.trace_hash(), x.trace_hash());
        }
        assert_ne!(
            w[0].trace_hash(),
            w[1].trace_hash(),
            "fanout changes the run"
        );
        let [fa, fb] = [figures(&w[0]), figures(&w[1])];
        let (da, db) = (fa.detection.clone().unwrap(), fb.detection.clone().unwrap());
        assert_eq!((da.node, da.crashed_us), (5, at));
        assert_eq!((db.node, db.crashed_us), (5, at));
        assert!(
            fa.dead_after_ms.is_some() && fb.dead_after_ms.is_some(),
            "{fa:?} {fb:?}"
        );
        assert!(
            fa.messages < fb.messages,
            "fanout 1 gossips less: {fa:?} {fb:?}"
        );
        assert!(fa.converged && fb.converged);
        // A fault at a slot that is not one is refused.
        assert!(w[0]
            .act_at(Op::Crash(1), 1_500)
            .unwrap_err()
            .contains("whole millisecond"));
    }

    /// vnodes only changes the drawn ring: the same run (same trace hash),
    /// but the keys a join moves differ.
    #[test]
    fn vnodes_change_the_keys_moved_not_the_run() {
        let s = SideBySide::parse("sbs=vnodes:1/160&seed=2&nodes=5").unwrap();
        let [pa, pb] = s.worlds().unwrap();
        let mut w = [world(&pa), world(&pb)];
        for x in &mut w {
            x.run_to(Time::from_millis(2_000)).unwrap();
            x.act(Op::AddNode).unwrap();
            x.run_to(Time::from_millis(6_000)).unwrap();
        }
        assert_eq!(w[0].trace_hash(), w[1].trace_hash());
        let [fa, fb] = [figures(&w[0]), figures(&w[1])];
        let (ma, mb) = (fa.keys_moved.unwrap(), fb.keys_moved.unwrap());
        assert_ne!(ma, mb, "{fa:?} {fb:?}");
        // With 160 points per node the share a join takes is close to the
        // ideal 1/6 of the keys.
        let ideal = fb.keys_ideal.unwrap();
        assert!((mb as f64 - ideal).abs() < ideal * 0.5, "{mb} vs {ideal}");
    }

    /// A lower phi threshold suspects a crashed node sooner; the crash is
    /// the same in both.
    #[test]
    fn a_lower_phi_threshold_suspects_sooner() {
        let s = SideBySide::parse("sbs=phi:2/16&seed=5&nodes=6&faults=3000000:crash:4").unwrap();
        let [pa, pb] = s.worlds().unwrap();
        let mut w = [world(&pa), world(&pb)];
        for x in &mut w {
            x.run_to(Time::from_millis(12_000)).unwrap();
        }
        let [fa, fb] = [figures(&w[0]), figures(&w[1])];
        let (sa, sb) = (
            fa.suspected_after_ms.unwrap(),
            fb.suspected_after_ms.unwrap(),
        );
        assert!(sa < sb, "phi 2 after {sa} ms, phi 16 after {sb} ms");
        assert_eq!(fa.detection.unwrap().crashed_us, 3_000_000);
    }

    /// The token's `Want` shortcut: on, an idle token goes straight to a
    /// requester, so requests wait less than when they ride the token's
    /// walk round the ring; both grant every request. A world without
    /// Cartouche refuses the setting.
    #[test]
    fn the_want_shortcut_shortens_the_wait_for_the_token() {
        let s = SideBySide::parse(
            "sbs=shortcut:on/off&seed=4&nodes=7&faults=2000000:req:1,2700000:req:5,\
             3400000:req:3,4100000:req:6,4800000:req:2,5500000:req:4",
        )
        .unwrap();
        let [pa, pb] = s.worlds().unwrap();
        assert!(pa.shortcut && !pb.shortcut);
        let mut w = [world(&pa), world(&pb)];
        for x in &mut w {
            x.run_to(Time::from_millis(10_000)).unwrap();
        }
        let [fa, fb] = [figures(&w[0]), figures(&w[1])];
        assert_eq!((fa.acquisitions, fb.acquisitions), (6, 6), "{fa:?} {fb:?}");
        assert!(fa.shortcuts > 0 && fb.shortcuts == 0, "{fa:?} {fb:?}");
        let (wa, wb) = (fa.grant_wait_ms.unwrap(), fb.grant_wait_ms.unwrap());
        assert!(wa < wb, "shortcut on waits {wa} ms, off {wb} ms");
        let ring = SideBySide::parse("sbs=shortcut:on/off&rings=sundial").unwrap();
        let [_, p] = ring.worlds().unwrap();
        assert!(VizConfig::from_url(&p)
            .unwrap_err()
            .contains("runs no Cartouche"));
    }

    /// Chain bypass is a log world's setting: the two worlds' stacks
    /// differ in it, and a world without the log refuses it.
    #[test]
    fn bypass_pairs_are_log_worlds() {
        let s = SideBySide::parse("sbs=bypass:on/off&nodes=5&rings=sundial,cartouche,ouroboros")
            .unwrap();
        let [pa, pb] = s.worlds().unwrap();
        let [ca, cb] = [
            VizConfig::from_url(&pa).unwrap(),
            VizConfig::from_url(&pb).unwrap(),
        ];
        let slow = |c: &VizConfig| c.stack.ouroboros.as_ref().unwrap().slow_after_ms;
        assert!(slow(&ca) < slow(&cb));
        assert_eq!(slow(&cb), crate::world::NO_BYPASS_MS);
        let plain = SideBySide::parse("sbs=bypass:on/off&nodes=5").unwrap();
        let [_, p] = plain.worlds().unwrap();
        assert!(VizConfig::from_url(&p)
            .unwrap_err()
            .contains("only a log world"));
    }
}
