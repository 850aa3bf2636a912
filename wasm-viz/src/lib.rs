//! `shen-wasm-viz`: the browser simulator (issue 8; not built yet — this
//! crate currently exports nothing).
