//! `shen-node`: the native runtime around the sans-IO rings — the cluster
//! node and the `shen` command-line interface (durable files: `shen-storage`).

#![warn(missing_docs)]

pub mod admin_http;
pub mod bench_cmd;
pub mod client;
pub mod client_cmd;
pub mod gossip_cmd;
pub mod log_cluster;
pub mod log_cmd;
pub mod ring_stats;
pub mod run_cmd;
pub mod sim_cmd;
pub mod status_cmd;
pub mod token_cmd;
pub mod up_cmd;
pub mod viz_cmd;
