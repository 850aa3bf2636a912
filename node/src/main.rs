//! `shen`: the Shen command-line tool — Ankh ring statistics, the
//! deterministic simulator, and (as its issue lands) the cluster node.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use shen_node::ring_stats::{render, ring_stats, RingStatsParams};

/// Shen: ring patterns for distributed systems.
#[derive(Parser, Debug)]
#[command(name = "shen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ankh Ring (consistent hashing) tools.
    Ring {
        #[command(subcommand)]
        cmd: RingCommand,
    },
    /// Run scenarios in the deterministic simulator.
    Sim {
        #[command(subcommand)]
        cmd: shen_node::sim_cmd::SimCommand,
    },
    /// Run one cluster node over libp2p (mDNS + Kademlia discovery, admin
    /// HTTP on 127.0.0.1). SIGINT/SIGTERM: leave gracefully and exit 0.
    Run(shen_node::run_cmd::RunArgs),
    /// Start a local cluster of N node processes on loopback; Ctrl-C stops it.
    Up(shen_node::up_cmd::UpArgs),
    /// Show a running node's members, health, ring ownership, chains and
    /// epochs.
    Status(shen_node::status_cmd::StatusArgs),
    /// Measure append throughput and latency of a local cluster, and of a
    /// local etcd cluster with the same workload if etcd is installed.
    Bench(shen_node::bench_cmd::BenchArgs),
    /// Append a record to the replicated log through a running node.
    Append(shen_node::client_cmd::AppendArgs),
    /// Append several records atomically (all or none) through a running
    /// node: `shen txn KEY VALUE [KEY VALUE]...`.
    Txn(shen_node::client_cmd::TxnArgs),
    /// Read committed records of a log partition through a running node.
    Read(shen_node::client_cmd::ReadArgs),
    /// Follow a log partition (like `tail -f`) through a running node.
    Tail(shen_node::client_cmd::TailArgs),
    /// Serve the browser simulator (wasm-viz/www) on 127.0.0.1.
    Viz(shen_node::viz_cmd::VizArgs),
}

#[derive(Subcommand, Debug)]
enum RingCommand {
    /// Measure balance, keys moved on join/leave, and lookup speed.
    Stats(StatsArgs),
}

#[derive(Args, Debug)]
struct StatsArgs {
    /// Physical nodes on the ring.
    #[arg(long, default_value_t = 100, allow_hyphen_values = true)]
    nodes: u32,
    /// Virtual nodes per physical node.
    #[arg(long, default_value_t = 160, allow_hyphen_values = true)]
    vnodes: u32,
    /// Random keys to place.
    #[arg(long, default_value_t = 1_000_000, allow_hyphen_values = true)]
    keys: u64,
    /// Replication factor (distinct nodes per key).
    #[arg(long, default_value_t = 3, allow_hyphen_values = true)]
    rf: usize,
    /// Seed for node ids and keys (same seed, same report).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    seed: u64,
    /// Vnode salts tried per join (1 = plain random vnode placement).
    #[arg(long, default_value_t = 16, allow_hyphen_values = true)]
    salt_candidates: u32,
    /// Print the report as JSON (stable field names; see README).
    #[arg(long)]
    json: bool,
}

/// Exit code for bad input (flags, files).
const EXIT_USAGE: u8 = 2;

/// Write to stdout; a closed pipe (`shen ... | head`) is not an error.
fn write_stdout(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || matches!(
                    e.kind(),
                    ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                )
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(EXIT_USAGE)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line, naming the flag; clap's hint lines are dropped.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Sim { cmd } => shen_node::sim_cmd::run(cmd),
        Command::Run(a) => shen_node::run_cmd::run(a),
        Command::Up(a) => shen_node::up_cmd::run(a),
        Command::Status(a) => shen_node::status_cmd::run(a),
        Command::Bench(a) => shen_node::bench_cmd::run(a),
        Command::Append(a) => shen_node::client_cmd::append(a),
        Command::Txn(a) => shen_node::client_cmd::txn(a),
        Command::Read(a) => shen_node::client_cmd::read(a),
        Command::Tail(a) => shen_node::client_cmd::tail(a),
        Command::Viz(a) => shen_node::viz_cmd::run(a),
        Command::Ring {
            cmd: RingCommand::Stats(a),
        } => {
            let params = RingStatsParams {
                nodes: a.nodes,
                vnodes: a.vnodes,
                keys: a.keys,
                rf: a.rf,
                seed: a.seed,
                salt_candidates: a.salt_candidates,
            };
            match ring_stats(&params) {
                Ok(s) if a.json => match serde_json::to_string_pretty(&s) {
                    Ok(j) => write_stdout(&(j + "\n")),
                    Err(e) => {
                        eprintln!("error: cannot encode report: {e}");
                        ExitCode::FAILURE
                    }
                },
                Ok(s) => write_stdout(&render(&s)),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
    }
}
