//! `shen sim log`: the command line of the Ouroboros history checker
//! ([`shen_checks::LogConfig`]): parse the flags, run the seeds (on
//! `--jobs` threads), print one line per seed and a verdict, or the runs as
//! JSON.
//!
//! Debugging a seed: `SHEN_LOG_TRACE=P` prints every table installation
//! with partition `P`'s chain state on each node; `SHEN_LOG_DUMP=P` prints
//! every node's state for `P` before the second crash and at the end;
//! `SHEN_LOG_DEBUG` prints what settled, blocked partitions and long
//! chains. With any of them set the seeds run on one thread.

use std::fmt::Write as _;
use std::process::ExitCode;

use shen_checks::{Check, LogConfig, LogDebug, Membership};

pub use shen_checks::LogRun;

use super::{out, run_check, show_progress, JobsArgs};

/// Exit code for bad input.
const EXIT_USAGE: u8 = 2;

/// Arguments of `shen sim log`.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Cluster members.
    #[arg(long, default_value_t = 5, allow_hyphen_values = true)]
    pub nodes: u64,
    /// First seed.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub seed: u64,
    /// Seeds to run (`seed..seed+runs`).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub runs: u64,
    /// Virtual duration of the workload, in seconds (then faults heal and
    /// the log is read back).
    #[arg(long, default_value_t = 10, allow_hyphen_values = true)]
    pub duration_s: u64,
    /// Log partitions.
    #[arg(long, default_value_t = 16, allow_hyphen_values = true)]
    pub partitions: u32,
    /// Client operations each node keeps in flight.
    #[arg(long, default_value_t = 4, allow_hyphen_values = true)]
    pub concurrency: u64,
    /// Share of operations that are reads (0..1).
    #[arg(long, default_value_t = 0.2, allow_hyphen_values = true)]
    pub read_ratio: f64,
    /// Inject faults (crash/restart, partition, loss, duplication,
    /// reordering, clock drift).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub faults: bool,
    /// One operation in N is a transaction of 2-3 records over random
    /// keys (0: none).
    #[arg(long, default_value_t = 50, allow_hyphen_values = true)]
    pub txn_every: u64,
    /// Keep each node's write-ahead log on its simulated disk and
    /// acknowledge only what is synced there (`--durable false`: state in
    /// memory only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub durable: bool,
    /// How long one fsync takes on the simulated disks, in microseconds.
    #[arg(long, default_value_t = 300, allow_hyphen_values = true)]
    pub fsync_us: u64,
    /// How the log's member set changes under the workload: fixed, join,
    /// leave, replace, grow (3 -> 9 -> 4 nodes), or mixed (each seed one
    /// of join, leave, replace, grow).
    #[arg(long, default_value = "fixed", value_parser = Membership::parse)]
    pub membership: Membership,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl LogArgs {
    /// The checker's config (debug output from the `SHEN_LOG_*`
    /// environment variables).
    pub fn config(&self) -> LogConfig {
        LogConfig {
            nodes: self.nodes,
            seed: self.seed,
            runs: self.runs,
            duration_s: self.duration_s,
            partitions: self.partitions,
            concurrency: self.concurrency,
            read_ratio: self.read_ratio,
            faults: self.faults,
            txn_every: self.txn_every,
            durable: self.durable,
            fsync_us: self.fsync_us,
            membership: self.membership,
            debug: LogDebug {
                trace_partition: std::env::var("SHEN_LOG_TRACE")
                    .ok()
                    .and_then(|v| v.parse::<u32>().ok()),
                dump_partition: std::env::var("SHEN_LOG_DUMP")
                    .ok()
                    .map(|v| v.parse::<u32>().unwrap_or(0)),
                verbose: std::env::var_os("SHEN_LOG_DEBUG").is_some(),
            },
        }
    }
}

/// `shen sim log`'s flags: [`LogArgs`] (the checker's, also built by the
/// tests) and `--jobs`.
#[derive(clap::Args, Debug, Clone)]
pub struct LogCmd {
    /// The checker's flags.
    #[command(flatten)]
    pub args: LogArgs,
    /// Worker threads.
    #[command(flatten)]
    pub jobs: JobsArgs,
}

/// Run one seed with the checker.
pub fn run_one(a: &LogArgs, seed: u64) -> Result<LogRun, String> {
    a.config().run_seed(seed)
}

/// The membership part of a seed's line (nothing for a fixed schedule).
fn members_note(r: &LogRun) -> String {
    if r.membership == Membership::Fixed {
        return String::new();
    }
    let mut s = format!(
        "{:?}: members v{} {:?}, {} replicas handed off, ",
        r.membership, r.members_version, r.members, r.handed_off
    )
    .to_lowercase();
    for u in &r.members_unfinished {
        s += &format!("UNFINISHED {u}, ");
    }
    s
}

/// The human-readable report: one line per seed (with its violations) and
/// the verdict.
pub fn render(runs: &[LogRun]) -> String {
    let mut s = String::new();
    let bad: Vec<&LogRun> = runs.iter().filter(|r| !r.violations.is_empty()).collect();
    for r in runs {
        let _ = writeln!(
                s,
                "seed {:>5}: {:>6} acked ({:.0}/s), {} failed, {} unknown, {} retried, {} reads ({} by ID), {} slow marks, {} records ({} acked below a low watermark), txns {}/{}/{} (committed/aborted/unknown), p50 {:.1} ms, p99 {:.1} ms, {} reconfigurations, {}{}{}",
                r.seed,
                r.acked,
                r.appends_per_s,
                r.failed,
                r.unknown,
                r.retried,
                r.reads,
                r.id_reads,
                r.slow_marked,
                r.records,
                r.trimmed,
                r.txns.0,
                r.txns.1,
                r.txns.2,
                r.p50_us as f64 / 1000.0,
                r.p99_us as f64 / 1000.0,
                r.reconfigurations,
                match (r.restored > 0, r.cluster_power_loss) {
                    (_, true) => "cluster power loss, ",
                    (true, false) => "restart from disk, ",
                    _ => "",
                },
                if r.unavailable.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{} partitions unavailable after healing ({} acked appends unverified), ",
                        r.unavailable.len(),
                        r.unverified
                    )
                } + &members_note(r),
                if r.violations.is_empty() {
                    "ok".to_string()
                } else {
                    format!("{} VIOLATIONS", r.violations.len())
                }
            );
        for v in &r.violations {
            let _ = writeln!(s, "    {v}");
        }
    }
    let unavailable = runs.iter().filter(|r| !r.unavailable.is_empty()).count();
    let unfinished = runs
        .iter()
        .filter(|r| !r.members_unfinished.is_empty())
        .count();
    let _ = writeln!(
        s,
        "verdict: {} of {} seeds correct ({} with partitions unavailable after healing{}){}",
        runs.len() - bad.len(),
        runs.len(),
        unavailable,
        if runs.iter().any(|r| r.membership != Membership::Fixed) {
            format!(", {unfinished} with member changes unfinished")
        } else {
            String::new()
        },
        if bad.is_empty() {
            String::new()
        } else {
            format!(
                "; replay a failing seed with `shen sim log --seed {}`",
                bad[0].seed
            )
        }
    );
    if !bad.is_empty() {
        let _ = writeln!(s, "{}", super::page::LOG_NO_PAGE);
    }
    s
}

/// Run `shen sim log`.
pub fn run(c: &LogCmd) -> ExitCode {
    let a = &c.args;
    let config = a.config();
    let jobs = if config.debug.any() {
        std::num::NonZeroUsize::new(1)
    } else {
        c.jobs.jobs
    };
    let runs = match run_check(&config, jobs, show_progress(a.json)) {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let bad = runs.iter().any(|r| !r.violations.is_empty());
    if a.json {
        match serde_json::to_string_pretty(&runs) {
            Ok(s) => out(&(s + "\n")),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        out(&render(&runs));
    }
    if bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
