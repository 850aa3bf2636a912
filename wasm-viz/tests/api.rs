//! wasm-bindgen tests of the exported API (`Viz`, `traceHash`): the
//! `#[wasm_bindgen]` items of `src/web.rs` compiled to wasm32 and run by
//! `wasm-bindgen-test-runner` under Node.js (no browser; the canvas calls
//! are covered by `e2e/e2e.mjs`). Errors are checked as the JS side sees
//! them: a `JsError` turned into a JS `Error` with its message. A panic in
//! the API would abort the module (panic = abort on wasm32) and fail the
//! run.
//!
//! Run with `scripts/test-wasm.sh` (wasm32 only: a native `cargo test`
//! compiles this file to nothing).
#![cfg(target_arch = "wasm32")]

use serde_json::Value;
use shen_wasm_viz::web::{trace_hash_js, Viz};
use wasm_bindgen::{JsCast, JsError, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const CHAOS: &str = include_str!("../../scenarios/relay-chaos.toml");

/// The message of the JS `Error` an exported call threw, or a failure if it
/// returned.
fn js_error<T>(what: &str, r: Result<T, JsError>) -> String {
    let e = match r {
        Ok(_) => panic!("{what}: expected an error, got a value"),
        Err(e) => e,
    };
    let value = JsValue::from(e);
    let error: js_sys::Error = value
        .dyn_into()
        .unwrap_or_else(|v| panic!("{what}: threw {v:?}, not an Error"));
    String::from(error.message())
}

fn assert_error<T>(what: &str, r: Result<T, JsError>, needle: &str) {
    let message = js_error(what, r);
    assert!(!message.is_empty(), "{what}: an error without a message");
    assert!(
        message.contains(needle),
        "{what}: error `{message}` does not mention `{needle}`"
    );
}

fn viz(seed: &str, nodes: u32) -> Viz {
    Viz::new(seed, nodes)
        .unwrap_or_else(|e| panic!("Viz::new({seed}, {nodes}): {}", js_error_text(e)))
}

fn js_error_text(e: JsError) -> String {
    js_error("call", Err::<(), _>(e))
}

fn state(v: &Viz) -> Value {
    serde_json::from_str(&v.state_json()).expect("stateJson is JSON")
}

fn ids(a: &Value) -> Vec<u64> {
    a.as_array()
        .expect("an array of ids")
        .iter()
        .map(|x| x.as_u64().expect("an id"))
        .collect()
}

#[wasm_bindgen_test]
fn a_seeded_world_starts_at_zero_and_advances() {
    let mut v = viz("7", 5);
    assert_eq!(v.node_count(), 5);
    assert_eq!(v.time_ms(), 0.0);
    let advanced = v.advance(250.0, 0.0).map_err(js_error_text).unwrap();
    assert_eq!(advanced, 250.0);
    assert_eq!(v.time_ms(), 250.0);
    assert!(v.horizon_ms() >= 250.0);
    // `step` goes to the next event: strictly later, and not far.
    let mut t = v.time_ms();
    for _ in 0..20 {
        v.step().map_err(js_error_text).unwrap();
        assert!(v.time_ms() > t, "step went from {t} to {}", v.time_ms());
        t = v.time_ms();
    }
    assert!(t < 250.0 + 1000.0, "20 steps went to {t} ms");
    // `advance` adds to the current time.
    v.advance(100.5, 0.0).map_err(js_error_text).unwrap();
    assert!((v.time_ms() - (t + 100.5)).abs() < 1e-9, "{}", v.time_ms());
}

#[wasm_bindgen_test]
fn the_state_json_hook_describes_a_converged_world() {
    let mut v = viz("3", 5);
    v.advance(6000.0, 0.0).map_err(js_error_text).unwrap();
    let s = state(&v);
    assert_eq!(s["seed"], "3");
    let hash = s["trace_hash"].as_str().expect("trace_hash");
    assert_eq!(hash, v.trace_hash());
    assert!(
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hash}"
    );
    let nodes = s["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 5);
    for n in nodes {
        assert_eq!(n["up"], true, "{n}");
        assert_eq!(ids(&n["view"]["alive"]), [0, 1, 2, 3, 4], "{n}");
        assert_eq!(ids(&n["view"]["dead"]), Vec::<u64>::new(), "{n}");
    }
    assert_eq!(ids(&s["ankh"]["members"]), [0, 1, 2, 3, 4]);
    let invariants = s["invariants"].as_array().expect("invariants");
    assert!(!invariants.is_empty());
    for i in invariants {
        assert_eq!(i["state"], "ok", "{i}");
    }
    // The summary is the same world without the per-node views.
    let summary: Value = serde_json::from_str(&v.summary_json()).expect("summaryJson is JSON");
    assert_eq!(summary["trace_hash"], s["trace_hash"]);
    assert!(summary["nodes"][0].get("view").is_none());
}

#[wasm_bindgen_test]
fn a_crashed_node_is_marked_dead_by_the_others() {
    let mut v = viz("3", 5);
    v.advance(3000.0, 0.0).map_err(js_error_text).unwrap();
    let action = v.crash(2).map_err(js_error_text).unwrap();
    assert!(action.ends_with(":crash:2"), "{action}");
    // Past the next check point (every 50 ms) it is down, and nobody has
    // declared it dead yet.
    v.advance(100.0, 0.0).map_err(js_error_text).unwrap();
    let s = state(&v);
    assert_eq!(s["nodes"][2]["up"], false);
    assert_eq!(s["nodes"][2]["declared_dead"], false);
    assert!(s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["id"] != 2)
        .all(|n| !ids(&n["view"]["dead"]).contains(&2)));
    // Enough virtual time for the failure detector and the gossip.
    v.advance(10_000.0, 0.0).map_err(js_error_text).unwrap();
    let s = state(&v);
    let nodes = s["nodes"].as_array().unwrap();
    assert_eq!(nodes[2]["up"], false);
    assert_eq!(nodes[2]["declared_dead"], true, "{}", nodes[2]);
    for n in nodes.iter().filter(|n| n["id"] != 2) {
        assert_eq!(n["up"], true, "{n}");
        assert!(ids(&n["view"]["dead"]).contains(&2), "{n}");
        assert!(!ids(&n["view"]["alive"]).contains(&2), "{n}");
    }
    assert!(!ids(&s["ankh"]["members"]).contains(&2));
    assert!(v.script().contains(":crash:2"), "{}", v.script());
}

#[wasm_bindgen_test]
fn same_seed_same_trace_hash() {
    let run = |seed: &str| {
        let mut v = viz(seed, 4);
        v.advance(1000.0, 0.0).map_err(js_error_text).unwrap();
        v.crash(1).map_err(js_error_text).unwrap();
        v.advance(2000.0, 0.0).map_err(js_error_text).unwrap();
        v.trace_hash()
    };
    let a = run("11");
    assert_eq!(run("11"), a);
    assert_ne!(run("12"), a);

    // The URL hash replays the same run.
    let mut v = viz("11", 4);
    v.advance(1000.0, 0.0).map_err(js_error_text).unwrap();
    v.crash(1).map_err(js_error_text).unwrap();
    v.advance(2000.0, 0.0).map_err(js_error_text).unwrap();
    let replay = Viz::from_hash(&v.url_hash())
        .map_err(js_error_text)
        .unwrap();
    assert_eq!(replay.time_ms(), 3000.0);
    assert_eq!(replay.trace_hash(), a);

    // `traceHash` of a scenario file: per seed, and the crate's own value.
    let h7 = trace_hash_js(CHAOS, 7).map_err(js_error_text).unwrap();
    assert_eq!(trace_hash_js(CHAOS, 7).map_err(js_error_text).unwrap(), h7);
    assert_ne!(trace_hash_js(CHAOS, 8).map_err(js_error_text).unwrap(), h7);
    assert_eq!(
        h7,
        format!("{:016x}", shen_wasm_viz::trace_hash(CHAOS, 7).unwrap())
    );
}

#[wasm_bindgen_test]
fn bad_input_is_an_error_not_a_panic() {
    assert_error("seed -1", Viz::new("-1", 5), "seed must be an integer");
    assert_error("seed text", Viz::new("seven", 5), "seed must be an integer");
    assert_error("no nodes", Viz::new("1", 0), "nodes: must be between 1");
    assert_error(
        "unknown hash key",
        Viz::from_hash("seed=1&bogus=2"),
        "unknown key `bogus`",
    );
    assert_error(
        "fault time",
        Viz::from_hash("faults=1500:crash:1"),
        "whole milliseconds",
    );
    assert_error(
        "fault node",
        Viz::from_hash("nodes=3&faults=1000:crash:7"),
        "no node 7",
    );
    assert_error(
        "rings",
        Viz::from_hash("rings=ouroboros"),
        "needs sundial and cartouche",
    );
    assert_error(
        "bad scenario",
        trace_hash_js(
            "name = \"x\"\nnodes = 0\nduration_ms = 5\n[stack.relay]\n",
            1,
        ),
        "`nodes`",
    );
    assert_error("not a scenario", trace_hash_js("not toml [", 1), "");

    let mut v = viz("1", 3);
    assert_error("negative time", v.advance(-5.0, 0.0), "non-negative");
    assert_error("NaN time", v.advance(f64::NAN, 0.0), "non-negative");
    assert_error("seek", v.seek(f64::INFINITY), "non-negative");
    assert_error("crash 9", v.crash(9), "no node 9");
    assert_error("loss 2", v.set_loss(2.0), "loss must be within");
    assert_error("latency 0", v.set_latency(0.0), "latency must be within");
    assert_error("partition", v.partition("a/b"), "node `a`");
    assert_error("drop 1.5", v.drop_message(1.5), "integer");
    assert_error("append", v.append(0, "k"), "runs no log");
    assert_error("no canvas", v.draw(), "no canvas attached");
    // Nothing happened, and the world is still usable.
    assert_eq!(v.time_ms(), 0.0);
    assert_eq!(v.script(), "");
    v.advance(100.0, 0.0).map_err(js_error_text).unwrap();
    assert_eq!(v.time_ms(), 100.0);
}

#[wasm_bindgen_test]
fn a_highlight_is_view_state_and_bad_ones_are_refused() {
    let mut a = viz("9", 5);
    let mut b = viz("9", 5);
    a.set_highlight(r#"{"nodes": [1, 2], "arcs": [[0.1, 0.3]], "kinds": ["sundial.probe"]}"#)
        .map_err(js_error_text)
        .unwrap();
    a.advance(1500.0, 0.0).map_err(js_error_text).unwrap();
    b.advance(1500.0, 0.0).map_err(js_error_text).unwrap();
    assert_eq!(
        a.trace_hash(),
        b.trace_hash(),
        "a highlight never changes the run"
    );
    a.clear_highlight();
    assert_error(
        "unknown field",
        a.set_highlight(r#"{"node": 1}"#),
        "highlight:",
    );
    assert_error("not JSON", a.set_highlight("nodes=1"), "highlight:");
}

#[wasm_bindgen_test]
fn keys_json_names_who_joined_and_counts_strays() {
    let mut v = viz("11", 6);
    v.advance(2500.0, 0.0).map_err(js_error_text).unwrap();
    let id = v.add_node().map_err(js_error_text).unwrap();
    v.advance(3000.0, 0.0).map_err(js_error_text).unwrap();
    let k: Value = serde_json::from_str(&v.keys_json()).expect("keysJson is JSON");
    assert_eq!(ids(&k["last"]["joined"]), vec![u64::from(id)]);
    assert!(ids(&k["last"]["left"]).is_empty());
    assert_eq!(k["last"]["strays"], 0);
    let h = k["history"].as_array().expect("history");
    assert!(!h.is_empty() && h.iter().all(|m| m["strays"] == 0));
}
