//! `shen sim token`: the command line of the Cartouche token checker
//! ([`shen_checks::TokenConfig`]): parse the flags, run the seeds (on
//! `--jobs` threads), print the summary or its JSON.
//!
//! Debugging: `SHEN_TOKEN_DEBUG` keeps the full trace and prints the event
//! counts and the trace from `SHEN_TOKEN_FROM_MS` (default 7000) on at the
//! end of each seed; `SHEN_TOKEN_DEBUG=T` (virtual µs) also stops at the
//! first request invoked from `T` on that waited over 1.5 s, printing its
//! wait, with exit code 3. With it set the seeds run on one thread.

use std::process::ExitCode;

use shen_checks::{CheckError, TokenConfig, TokenDebug, TokenReport, TOKEN_DEBUG_STOP};

use super::{out, run_check, show_progress, JobsArgs};

/// Exit code for bad input.
const EXIT_USAGE: u8 = 2;
/// Exit code of a run stopped by `SHEN_TOKEN_DEBUG=T`.
const EXIT_DEBUG_STOP: u8 = 3;

/// Arguments of `shen sim token`.
#[derive(clap::Args, Debug, Clone)]
pub struct TokenArgs {
    /// Ring members.
    #[arg(long, default_value_t = 5, allow_hyphen_values = true)]
    pub nodes: u64,
    /// First seed.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub seed: u64,
    /// Seeds to run (`seed..seed+runs`).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub runs: u64,
    /// Virtual duration of each run, in seconds.
    #[arg(long, default_value_t = 10, allow_hyphen_values = true)]
    pub duration_s: u64,
    /// Inject faults (token loss, holder crash, partition, drift).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub faults: bool,
    /// Longest a holder keeps a grant before releasing (ms).
    #[arg(long, default_value_t = 10, allow_hyphen_values = true)]
    pub hold_ms: u64,
    /// Longest a node waits between its requests (ms).
    #[arg(long, default_value_t = 20, allow_hyphen_values = true)]
    pub think_ms: u64,
    /// Keep each member's acceptor state on its simulated disk and restart
    /// two members from their disks (with --faults).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub restarts: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Worker threads.
    #[command(flatten)]
    pub jobs: JobsArgs,
}

impl TokenArgs {
    /// The checker's config (debug output from `SHEN_TOKEN_DEBUG` and
    /// `SHEN_TOKEN_FROM_MS`).
    pub fn config(&self) -> TokenConfig {
        let debug = std::env::var("SHEN_TOKEN_DEBUG").ok();
        TokenConfig {
            nodes: self.nodes,
            seed: self.seed,
            runs: self.runs,
            duration_s: self.duration_s,
            faults: self.faults,
            hold_ms: self.hold_ms,
            think_ms: self.think_ms,
            restarts: self.restarts,
            debug: TokenDebug {
                on: debug.is_some(),
                stop_long_wait_from_us: debug.and_then(|v| v.parse().ok()),
                dump_from_ms: std::env::var("SHEN_TOKEN_FROM_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(7_000),
            },
        }
    }
}

/// Human-readable summary.
pub fn render(r: &TokenReport) -> String {
    let mut s = format!(
        "Cartouche: {} nodes, {} run(s), faults {}\n",
        r.nodes, r.runs, r.faults
    );
    s += &format!(
        "  acquisitions {} ({:.0}/s virtual), latency p50 {:.1} ms p99 {:.1} ms, {:.1} messages per acquisition\n",
        r.acquisitions, r.acquisitions_per_s, r.latency_p50_ms, r.latency_p99_ms, r.messages_per_acquisition
    );
    if let (Some(p50), Some(max)) = (r.regeneration_p50_ms, r.regeneration_max_ms) {
        s += &format!(
            "  regeneration after the holder crashed with the token: p50 {p50:.0} ms, max {max:.0} ms (loss timeout {:.0} ms)\n",
            r.loss_timeout_ms
        );
    }
    s += &format!(
        "  members restarted from their disks: {}\n  longest wait after heal: {:.2} circulations\n  violations: {}\n",
        r.restarts, r.max_wait_after_heal_circulations, r.violations
    );
    for v in &r.first_violations {
        s += &format!("    {v}\n");
    }
    if r.violations > 0 {
        s += &format!("  {}\n", super::page::TOKEN_NO_PAGE);
    }
    s
}

/// `shen sim token`.
pub fn run(a: &TokenArgs) -> ExitCode {
    let config = a.config();
    let jobs = if config.debug.on {
        std::num::NonZeroUsize::new(1)
    } else {
        a.jobs.jobs
    };
    let r = match run_check(&config, jobs, show_progress(a.json)) {
        Ok(r) => r,
        Err(CheckError::Seed { error, .. }) if error == TOKEN_DEBUG_STOP => {
            return ExitCode::from(EXIT_DEBUG_STOP);
        }
        Err(CheckError::Invalid(e) | CheckError::Seed { error: e, .. }) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let text = if a.json {
        serde_json::to_string_pretty(&r)
            .map(|j| j + "\n")
            .unwrap_or_default()
    } else {
        render(&r)
    };
    out(&text);
    if r.violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
