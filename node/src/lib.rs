//! `shen-node`: the `shen` binary's layers — `cli` (commands), `admin` (the HTTP API), `daemon` (a running node).
//!
//! Dependencies run one way: `cli -> admin -> daemon -> transport ->
//! rings`. The daemon never imports `admin` or `cli`; the admin API's JSON
//! is `shen-api`'s; applications use `shen-client`, not this crate.

#![warn(missing_docs)]

pub mod admin;
pub mod cli;
pub mod daemon;
