//! Child process for the Obelisk kill test (`tests/tests/obelisk_kill.rs`).
//!
//! Usage: `obelisk_child DIR RANGE [MAX_VALUES] [MAX_SECONDS]`
//!
//! Opens an Obelisk over a `FileCell` in `DIR` with `RANGE` values per
//! reservation and prints every value it hands out, one per line, to stdout,
//! flushing every few values. It stops by itself after `MAX_VALUES` values
//! (default 20,000,000) or `MAX_SECONDS` seconds (default 10), whichever
//! comes first, so it can never run forever; the test normally kills it
//! (SIGKILL) long before that.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use shen_rings::obelisk::{Obelisk, ObeliskConfig};
use shen_storage::FileCell;

/// Values written between flushes: small, so a kill loses few printed
/// values, but large enough to keep the pipe busy.
const FLUSH_EVERY: u64 = 64;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: Option<T>) -> Result<T, String> {
    match args.get(i) {
        Some(s) => s
            .parse()
            .map_err(|_| format!("argument {i}: cannot parse {s:?}")),
        None => default.ok_or_else(|| format!("argument {i} is required")),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let dir: String = arg(&args, 1, None)?;
    let range: u64 = arg(&args, 2, None)?;
    let max_values: u64 = arg(&args, 3, Some(20_000_000))?;
    let max_secs: u64 = arg(&args, 4, Some(10))?;

    let cell = FileCell::open(&dir).map_err(|e| e.to_string())?;
    let mut obelisk =
        Obelisk::open(cell, ObeliskConfig::with_range(range)).map_err(|e| format!("{e}: {e:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for i in 0..max_values {
        let v = obelisk.next().map_err(|e| format!("{e}: {e:?}"))?;
        writeln!(out, "{v}").map_err(|e| e.to_string())?;
        if i % FLUSH_EVERY == FLUSH_EVERY - 1 {
            out.flush().map_err(|e| e.to_string())?;
            if Instant::now() >= deadline {
                break;
            }
        }
    }
    out.flush().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("obelisk_child: {e}");
            ExitCode::FAILURE
        }
    }
}
