//! `shen sim`: run scenarios in the deterministic simulator
//! ([`shen_transport_memory`]) for one seed or thousands, measure how
//! fast it simulates, and dispatch the many-seed checkers (`log`, `token`,
//! `gossip`, from [`shen_checks`]) with their shared `--jobs` runner.
//!
//! Exit codes: 0 when every expectation held, 1 when one failed (the exact
//! command replaying the failing seed is printed, and the browser page's
//! link when the scenario fits a page world: [`page`]), 2 for bad input (flags,
//! an unreadable or invalid scenario file — the message names the file and
//! the field).

pub mod gossip;
pub mod log;
pub mod page;
pub mod token;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use shen_checks::{Check, CheckError, Fold};
use shen_rings::Time;
use shen_transport_memory::loadgen::scatter_factory;
use shen_transport_memory::{NetConfig, RunReport, Scenario, Sim, SimConfig, TraceMode, Traffic};

/// Exit code for bad input.
const EXIT_USAGE: u8 = 2;
/// Exit code when an expectation failed.
const EXIT_FAILED: u8 = 1;
/// Failing seeds listed in a many-seed summary before eliding the rest.
const MAX_LISTED_FAILURES: usize = 20;

/// `shen sim` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum SimCommand {
    /// Run a scenario file for one seed, or for a range of seeds.
    Run(RunArgs),
    /// Measure simulated messages delivered per second of wall time.
    Bench(BenchArgs),
    /// Measure Sundial: convergence, crash detection, false suspicions,
    /// traffic per node.
    Gossip(gossip::GossipArgs),
    /// Drive Cartouche under load and faults with a safety checker.
    Token(token::TokenArgs),
    /// Ouroboros chain replication under a client workload and faults, with
    /// a history checker (lost, duplicated, reordered, stale)
    Log(log::LogCmd),
}

/// Arguments of `shen sim run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The scenario file: TOML, or JSON when it ends in `.json`.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// Run with this seed instead of the scenario's.
    #[arg(long, conflicts_with = "seeds", allow_hyphen_values = true)]
    pub seed: Option<u64>,
    /// Run every seed of a range: `A..B` (B excluded) or `A..=B`.
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range)]
    pub seeds: Option<SeedRange>,
    /// Print the report (or the many-seed summary) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write every trace entry as a JSON line to FILE (one seed only).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub trace: Option<PathBuf>,
    /// Worker threads for `--seeds` (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// Arguments of `shen sim bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Nodes in the simulated world.
    #[arg(long, default_value_t = 1_000, allow_hyphen_values = true)]
    pub nodes: u64,
    /// Messages to deliver before stopping.
    #[arg(long, default_value_t = 2_000_000, allow_hyphen_values = true)]
    pub messages: u64,
    /// Messages each node keeps bouncing (in flight per node).
    #[arg(long, default_value_t = 8, allow_hyphen_values = true)]
    pub batons: u32,
    /// World seed.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub seed: u64,
    /// Trace retention while measuring.
    #[arg(long, value_enum, default_value_t = BenchTrace::Hash)]
    pub trace: BenchTrace,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Trace retention for `shen sim bench`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchTrace {
    /// Hash every entry, keep none.
    Hash,
    /// Keep the last 65,536 entries.
    Bounded,
    /// Keep every entry.
    Full,
}

/// A range of seeds, `start..end` (end excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// How many seeds.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True when the range holds no seed.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Parse `A..B` or `A..=B`.
pub fn parse_seed_range(s: &str) -> Result<SeedRange, String> {
    let bad = || format!("expected A..B or A..=B with A < B (seeds are u64), got `{s}`");
    let (a, b, inclusive) = if let Some((a, b)) = s.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = s.split_once("..") {
        (a, b, false)
    } else {
        return Err(bad());
    };
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    let end = if inclusive {
        last.checked_add(1).ok_or_else(bad)?
    } else {
        last
    };
    if end <= start {
        return Err(bad());
    }
    Ok(SeedRange { start, end })
}

/// Run a `shen sim` command; returns the process exit code.
pub fn run(cmd: SimCommand) -> ExitCode {
    match cmd {
        SimCommand::Run(a) => run_cmd(&a),
        SimCommand::Bench(a) => bench_cmd(&a),
        SimCommand::Gossip(a) => gossip::run(&a),
        SimCommand::Token(a) => token::run(&a),
        SimCommand::Log(a) => log::run(&a),
    }
}

/// `--jobs` of the many-seed checkers.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsArgs {
    /// Worker threads for `--runs` (default: one per core); the output is
    /// the same for any number.
    #[arg(long, value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
}

/// Whether to draw a progress bar: stderr is a terminal and the output is
/// not JSON.
pub fn show_progress(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "  [{elapsed_precise}] [{bar:40}] {pos}/{len} seeds, ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Validate `check`, run its seeds on `jobs` threads (default: one per
/// core) and fold the results in seed order: the report is the one
/// [`shen_checks::run_all`] gives, whatever `jobs`. On an error the one of
/// the lowest failing seed is returned, as a sequential run would. With
/// `progress`, a bar on stderr counts the seeds done.
pub fn run_check<C>(
    check: &C,
    jobs: Option<NonZeroUsize>,
    progress: bool,
) -> Result<C::Report, CheckError>
where
    C: Check + Sync,
    C::Run: Send,
{
    check.validate().map_err(CheckError::Invalid)?;
    let seeds = check.seeds();
    let total = seeds.end - seeds.start;
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let jobs = u64::try_from(jobs).unwrap_or(u64::MAX).min(total).max(1);
    let bar = progress.then(|| progress_bar(total));
    let mut fold = check.fold();
    let result = if jobs == 1 {
        seeds.into_iter().try_for_each(|seed| {
            let run = check
                .run_seed(seed)
                .map_err(|error| CheckError::Seed { seed, error })?;
            fold.push(run);
            if let Some(b) = &bar {
                b.inc(1);
            }
            Ok(())
        })
    } else {
        run_parallel(check, seeds, jobs, &mut fold, bar.as_ref())
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    result.map(|()| fold.finish())
}

/// Run `seeds` on `jobs` scoped threads, each taking the next seed; fold
/// results into `fold` as soon as every lower seed is folded.
fn run_parallel<C>(
    check: &C,
    seeds: std::ops::Range<u64>,
    jobs: u64,
    fold: &mut C::Fold,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<(), CheckError>
where
    C: Check + Sync,
    C::Run: Send,
{
    let (start, end) = (seeds.start, seeds.end);
    let next = AtomicU64::new(start);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(u64, Result<C::Run, String>)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end || seed < start {
                        break;
                    }
                    let run = check.run_seed(seed);
                    if run.is_err() {
                        // Seeds above it are not needed; those below are
                        // taken already and finish.
                        stop.store(true, Ordering::Relaxed);
                    }
                    if tx.send((seed, run)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Results that arrived before a lower seed's.
        let mut early: BTreeMap<u64, Result<C::Run, String>> = BTreeMap::new();
        let mut want = start;
        for (seed, run) in rx {
            if let Some(b) = bar {
                b.inc(1);
            }
            early.insert(seed, run);
            while let Some(run) = early.remove(&want) {
                match run {
                    Ok(run) => fold.push(run),
                    Err(error) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(CheckError::Seed { seed: want, error });
                    }
                }
                want += 1;
            }
        }
        Ok(())
    })
}

/// Write to stdout; a closed pipe is not an error.
pub(crate) fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|_| o.flush());
}

/// Quote `s` for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:=+@%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The command that replays `seed` of the scenario at `path`.
pub fn replay_command(path: &Path, seed: u64) -> String {
    format!(
        "shen sim run --scenario {} --seed {seed}",
        shell_quote(&path.to_string_lossy())
    )
}

/// Read and validate a scenario file; the error is the one line to print.
pub fn load_scenario(path: &Path) -> Result<Scenario, String> {
    let name = path.to_string_lossy();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("error: cannot read scenario {name}: {e}"))?;
    Scenario::load(&text, &name).map_err(|e| format!("error: {e}"))
}

fn run_cmd(a: &RunArgs) -> ExitCode {
    let scenario = match load_scenario(&a.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match a.seeds {
        Some(range) => run_many(a, &scenario, range),
        None => run_one(a, &scenario, a.seed.unwrap_or(scenario.seed)),
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 10 << 20 {
        format!("{} MiB", b >> 20)
    } else if b >= 10 << 10 {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

fn traffic_line(t: &Traffic) -> String {
    format!(
        "sent {} ({}), delivered {} ({}), dropped {} ({})",
        t.sent,
        human_bytes(t.sent_bytes),
        t.delivered,
        human_bytes(t.delivered_bytes),
        t.dropped,
        human_bytes(t.dropped_bytes)
    )
}

/// The human-readable report of one run.
pub fn render_report(r: &RunReport, path: &Path) -> String {
    let mut s = String::new();
    let verdict = if r.passed { "PASS" } else { "FAIL" };
    let _ = writeln!(s, "scenario {} seed {}: {verdict}", r.scenario, r.seed);
    let _ = writeln!(
        s,
        "  {} nodes, {} ms virtual, {} events, {} trace entries, trace hash {}",
        r.nodes, r.end_time_ms, r.steps, r.trace_entries, r.trace_hash
    );
    let _ = writeln!(s, "  traffic: {}", traffic_line(&r.traffic));
    for (ring, t) in &r.rings {
        let _ = writeln!(s, "    {ring}: {}", traffic_line(t));
    }
    if !r.events.is_empty() {
        let ev: Vec<String> = r.events.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "  events: {}", ev.join(", "));
    }
    for e in &r.expectations {
        let ok = if e.passed { "ok" } else { "FAILED" };
        let _ = writeln!(s, "  expect {e}: {ok}");
    }
    if !r.passed {
        let _ = writeln!(s, "replay: {}", replay_command(path, r.seed));
    }
    s
}

fn run_one(a: &RunArgs, scenario: &Scenario, seed: u64) -> ExitCode {
    let mode = if a.trace.is_some() {
        TraceMode::Full
    } else {
        TraceMode::HashOnly
    };
    let mut sim = match scenario.build(seed, mode) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    sim.run_until(Time::from_millis(scenario.duration_ms));
    let report = scenario.report(&sim);
    if let Some(path) = &a.trace {
        if let Err(e) = write_trace(&sim, path) {
            eprintln!("error: cannot write trace {}: {e}", path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let page = (!report.passed).then(|| page::page_line(scenario, seed, &report.trace_hash));
    if a.json {
        match serde_json::to_string_pretty(&report) {
            Ok(j) => out(&(j + "\n")),
            Err(e) => {
                eprintln!("error: cannot encode report: {e}");
                return ExitCode::FAILURE;
            }
        }
        if !report.passed {
            eprintln!("replay: {}", replay_command(&a.scenario, seed));
        }
        if let Some(p) = &page {
            eprintln!("{p}");
        }
    } else {
        let mut text = render_report(&report, &a.scenario);
        if let Some(p) = &page {
            text.push_str(p);
            text.push('\n');
        }
        out(&text);
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

fn write_trace<E: shen_transport_memory::SimEvent>(
    sim: &Sim<E>,
    path: &Path,
) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::new(f);
    for e in sim.trace().entries() {
        serde_json::to_writer(&mut w, e).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// One failing seed in a many-seed summary.
#[derive(Debug, Clone, Serialize)]
pub struct FailedSeed {
    /// The seed.
    pub seed: u64,
    /// Its trace hash.
    pub trace_hash: String,
    /// The expectations that failed, as text.
    pub failed: Vec<String>,
    /// The command replaying it.
    pub replay: String,
    /// The lowest failing seed only: its page link line (see [`page`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

/// The result of `shen sim run --seeds`.
#[derive(Debug, Clone, Serialize)]
pub struct ManySummary {
    /// Scenario name.
    pub scenario: String,
    /// The seeds run.
    pub seeds: SeedRange,
    /// Runs completed.
    pub runs: u64,
    /// Runs whose expectations all held.
    pub passed: u64,
    /// The failing seeds, ascending.
    pub failures: Vec<FailedSeed>,
    /// Simulated events over all runs.
    pub steps: u64,
    /// Wall-clock seconds.
    pub wall_secs: f64,
}

fn run_many(a: &RunArgs, scenario: &Scenario, range: SeedRange) -> ExitCode {
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let jobs = u64::try_from(jobs).unwrap_or(1).min(range.len()).max(1);
    let next = AtomicU64::new(range.start);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let (tx, rx) = mpsc::channel::<Result<RunReport, String>>();
    let mut summary = ManySummary {
        scenario: scenario.name.clone(),
        seeds: range,
        runs: 0,
        passed: 0,
        failures: Vec::new(),
        steps: 0,
        wall_secs: 0.0,
    };
    let mut build_error = None;
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let next = &next;
            let stop = &stop;
            scope.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= range.end || seed < range.start {
                    break;
                }
                let r = scenario
                    .run(seed, TraceMode::HashOnly)
                    .map_err(|e| e.to_string());
                if tx.send(r).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let total = range.len();
        let mut last_print = Instant::now() - Duration::from_secs(1);
        let mut last_decile = 0;
        for r in rx {
            match r {
                Ok(rep) => {
                    summary.runs += 1;
                    summary.steps += rep.steps;
                    if rep.passed {
                        summary.passed += 1;
                    } else {
                        summary.failures.push(FailedSeed {
                            seed: rep.seed,
                            trace_hash: rep.trace_hash.clone(),
                            failed: rep
                                .expectations
                                .iter()
                                .filter(|e| !e.passed)
                                .map(|e| e.to_string())
                                .collect(),
                            replay: replay_command(&a.scenario, rep.seed),
                            page: None,
                        });
                    }
                }
                Err(e) => {
                    build_error.get_or_insert(e);
                    stop.store(true, Ordering::Relaxed);
                }
            }
            let done = summary.runs;
            let failed = summary.failures.len();
            if tty {
                if last_print.elapsed() >= Duration::from_millis(100) || done == total {
                    last_print = Instant::now();
                    eprint!(
                        "\r  seeds {done}/{total}  failed {failed}  {:.1}s ",
                        start.elapsed().as_secs_f64()
                    );
                }
            } else {
                let decile = done * 10 / total.max(1);
                if decile > last_decile {
                    last_decile = decile;
                    eprintln!("  seeds {done}/{total}  failed {failed}");
                }
            }
        }
        if tty {
            eprintln!();
        }
    });
    if let Some(e) = build_error {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    summary.wall_secs = start.elapsed().as_secs_f64();
    summary.failures.sort_by_key(|f| f.seed);
    // The page link of the lowest failing seed (it replays the seed in the
    // viz world: once, not for every failure).
    if let Some(f) = summary.failures.first_mut() {
        f.page = Some(page::page_line(scenario, f.seed, &f.trace_hash));
    }
    if a.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(j) => out(&(j + "\n")),
            Err(e) => {
                eprintln!("error: cannot encode summary: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        out(&render_summary(&summary));
    }
    if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// The human-readable summary of a many-seed run.
pub fn render_summary(s: &ManySummary) -> String {
    let mut t = String::new();
    let failed = s.failures.len();
    let _ = writeln!(
        t,
        "scenario {}: seeds {}..{}: {} runs, {} passed, {} failed ({:.1}s, {:.0} events/s)",
        s.scenario,
        s.seeds.start,
        s.seeds.end,
        s.runs,
        s.passed,
        failed,
        s.wall_secs,
        s.steps as f64 / s.wall_secs.max(1e-9)
    );
    for f in s.failures.iter().take(MAX_LISTED_FAILURES) {
        let _ = writeln!(t, "  seed {} FAILED: {}", f.seed, f.failed.join("; "));
        let _ = writeln!(t, "    replay: {}", f.replay);
        if let Some(p) = &f.page {
            let _ = writeln!(t, "    {p}");
        }
    }
    if failed > MAX_LISTED_FAILURES {
        let _ = writeln!(
            t,
            "  ... and {} more failing seeds",
            failed - MAX_LISTED_FAILURES
        );
    }
    t
}

/// The result of `shen sim bench`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Nodes simulated.
    pub nodes: u64,
    /// Messages in flight per node.
    pub batons: u32,
    /// Messages delivered while measuring.
    pub delivered: u64,
    /// Simulated events processed while measuring.
    pub events: u64,
    /// Trace entries recorded.
    pub trace_entries: u64,
    /// Trace retention (`hash`, `bounded`, `full`).
    pub trace: String,
    /// Virtual time reached, in ms.
    pub virtual_ms: u64,
    /// Wall-clock seconds building the world.
    pub setup_secs: f64,
    /// Wall-clock seconds running it.
    pub run_secs: f64,
    /// Messages delivered per wall-clock second.
    pub msgs_per_sec: f64,
    /// Trace hash at the end (same arguments, same hash).
    pub trace_hash: String,
}

fn bench_cmd(a: &BenchArgs) -> ExitCode {
    if a.nodes == 0 || a.nodes > shen_transport_memory::MAX_NODES {
        eprintln!(
            "error: invalid value for --nodes: must be between 1 and {}",
            shen_transport_memory::MAX_NODES
        );
        return ExitCode::from(EXIT_USAGE);
    }
    if a.messages == 0 {
        eprintln!("error: invalid value for --messages: must be at least 1");
        return ExitCode::from(EXIT_USAGE);
    }
    if a.batons == 0 || u64::from(a.batons).saturating_mul(a.nodes) > 100_000_000 {
        eprintln!("error: invalid value for --batons: must be at least 1 and batons x nodes at most 100000000");
        return ExitCode::from(EXIT_USAGE);
    }
    let (mode, name) = match a.trace {
        BenchTrace::Hash => (TraceMode::HashOnly, "hash"),
        BenchTrace::Bounded => (TraceMode::Bounded(65_536), "bounded"),
        BenchTrace::Full => (TraceMode::Full, "full"),
    };
    let t0 = Instant::now();
    let sim = Sim::new(
        SimConfig {
            seed: a.seed,
            nodes: a.nodes,
            network: NetConfig::default(),
            trace: mode,
        },
        scatter_factory(a.nodes, a.batons),
    );
    let mut sim = match sim {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let setup = t0.elapsed();
    let before = sim.traffic().delivered;
    let steps0 = sim.steps();
    let t1 = Instant::now();
    while sim.traffic().delivered - before < a.messages && sim.step() {}
    let run = t1.elapsed();
    let delivered = sim.traffic().delivered - before;
    let r = BenchResult {
        nodes: a.nodes,
        batons: a.batons,
        delivered,
        events: sim.steps() - steps0,
        trace_entries: sim.trace().total(),
        trace: name.to_string(),
        virtual_ms: sim.now().as_millis(),
        setup_secs: setup.as_secs_f64(),
        run_secs: run.as_secs_f64(),
        msgs_per_sec: delivered as f64 / run.as_secs_f64().max(1e-9),
        trace_hash: format!("{:016x}", sim.trace_hash()),
    };
    if a.json {
        match serde_json::to_string_pretty(&r) {
            Ok(j) => out(&(j + "\n")),
            Err(e) => {
                eprintln!("error: cannot encode result: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        out(&format!(
            "sim bench: {} nodes x {} batons, trace {}: {} messages delivered in {:.3}s = {:.0} msgs/s\n  \
             ({} events, {} ms virtual, setup {:.3}s, trace hash {})\n",
            r.nodes,
            r.batons,
            r.trace,
            r.delivered,
            r.run_secs,
            r.msgs_per_sec,
            r.events,
            r.virtual_ms,
            r.setup_secs,
            r.trace_hash
        ));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse() {
        assert_eq!(
            parse_seed_range("0..10"),
            Ok(SeedRange { start: 0, end: 10 })
        );
        assert_eq!(
            parse_seed_range("5..=5"),
            Ok(SeedRange { start: 5, end: 6 })
        );
        assert!(parse_seed_range("5..5").is_err());
        assert!(parse_seed_range("9..2").is_err());
        assert!(parse_seed_range("a..2").is_err());
        assert!(parse_seed_range("7").is_err());
        assert!(parse_seed_range("0..=18446744073709551615").is_err());
    }

    #[test]
    fn replay_commands_are_shell_safe() {
        assert_eq!(
            replay_command(Path::new("scenarios/a.toml"), 7),
            "shen sim run --scenario scenarios/a.toml --seed 7"
        );
        assert_eq!(
            replay_command(Path::new("my dir/it's.toml"), 1),
            r"shen sim run --scenario 'my dir/it'\''s.toml' --seed 1"
        );
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const OK: &str =
        "name = \"t\"\nnodes = 3\nduration_ms = 500\n[stack.relay]\nlap_timeout_ms = 50\n\
                      [[expect]]\nevent = \"relay.lap_completed\"\nmin = 1\n";

    fn args(p: PathBuf) -> RunArgs {
        RunArgs {
            scenario: p,
            seed: None,
            seeds: None,
            json: true,
            trace: None,
            jobs: Some(2),
        }
    }

    #[test]
    fn exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write(&dir, "ok.toml", OK);
        assert_eq!(run(SimCommand::Run(args(ok.clone()))), ExitCode::SUCCESS);
        let mut many = args(ok);
        many.seeds = Some(SeedRange { start: 0, end: 20 });
        assert_eq!(run(SimCommand::Run(many)), ExitCode::SUCCESS);

        let failing = write(&dir, "fail.toml", &OK.replace("min = 1", "min = 1000000"));
        assert_eq!(
            run(SimCommand::Run(args(failing.clone()))),
            ExitCode::from(1)
        );
        let mut many = args(failing);
        many.seeds = Some(SeedRange { start: 0, end: 4 });
        assert_eq!(run(SimCommand::Run(many)), ExitCode::from(1));

        let bad = write(&dir, "bad.toml", &OK.replace("nodes = 3", "nodes = \"x\""));
        assert_eq!(run(SimCommand::Run(args(bad.clone()))), ExitCode::from(2));
        let msg = load_scenario(&bad).unwrap_err();
        assert!(msg.contains("bad.toml") && msg.contains("`nodes`"), "{msg}");
        assert_eq!(
            run(SimCommand::Run(args(dir.path().join("missing.toml")))),
            ExitCode::from(2)
        );
    }

    #[test]
    fn a_run_writes_its_trace() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write(&dir, "ok.toml", OK);
        let mut a = args(ok);
        a.trace = Some(dir.path().join("trace.jsonl"));
        assert_eq!(run(SimCommand::Run(a)), ExitCode::SUCCESS);
        let text = std::fs::read_to_string(dir.path().join("trace.jsonl")).unwrap();
        assert!(text.lines().count() > 10);
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    }

    #[test]
    fn a_summary_lists_failures_with_replays() {
        let s = ManySummary {
            scenario: "x".into(),
            seeds: SeedRange { start: 0, end: 3 },
            runs: 3,
            passed: 2,
            failures: vec![FailedSeed {
                seed: 1,
                trace_hash: "00".into(),
                failed: vec!["relay.lap_completed = 0 (want >= 1)".into()],
                replay: replay_command(Path::new("s.toml"), 1),
                page: Some("page: none, this scenario does not fit a page world: x".into()),
            }],
            steps: 10,
            wall_secs: 0.5,
        };
        let t = render_summary(&s);
        assert!(t.contains("2 passed, 1 failed"), "{t}");
        assert!(
            t.contains("replay: shen sim run --scenario s.toml --seed 1"),
            "{t}"
        );
        assert!(
            t.contains("\n    page: none, this scenario does not fit a page world: x\n"),
            "{t}"
        );
    }
}
