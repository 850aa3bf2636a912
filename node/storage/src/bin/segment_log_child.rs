//! Child process for the segment log crash test
//! (`node/storage/tests/segment_log_crash.rs`).
//!
//! Usage: `segment_log_child DIR SYNC_EVERY SEGMENT_BYTES [MAX_RECORDS] [MAX_SECONDS]`
//!
//! Opens a `SegmentLog` in `DIR` (segments rolling at `SEGMENT_BYTES`),
//! prints `open N` with the offset it resumes at, then appends records whose
//! content is a function of their offset ([`record`]), syncing after every
//! `SYNC_EVERY` records and printing `synced N` (every offset below `N` is
//! durable) after each sync. It stops by itself after `MAX_RECORDS` records
//! (default 50,000) or `MAX_SECONDS` seconds (default 5), whichever comes
//! first; the test normally kills it (SIGKILL) long before that.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use shen_rings::logstore::LogStore;
use shen_storage::{SegmentLog, SegmentLogConfig};

/// The record stored at `offset`: `"<offset>:"` repeated to a length between
/// 16 and 715 bytes. Must match the test's copy.
fn record(offset: u64) -> Vec<u8> {
    let len = 16 + (offset.wrapping_mul(7919) % 700) as usize;
    let unit = format!("{offset}:");
    unit.bytes().cycle().take(len).collect()
}

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
    let sync_every: u64 = arg(&args, 2, None)?;
    let segment_bytes: u64 = arg(&args, 3, None)?;
    let max_records: u64 = arg(&args, 4, Some(50_000))?;
    let max_secs: u64 = arg(&args, 5, Some(5))?;
    if sync_every == 0 {
        return Err("SYNC_EVERY must be at least 1".into());
    }

    let config = SegmentLogConfig {
        segment_bytes,
        // Small, so frames reach the file between syncs as well.
        write_buffer_bytes: 1024,
    };
    let mut log = SegmentLog::open_with(&dir, config).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "open {}", log.next_offset()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    for i in 0..max_records {
        let offset = log.next_offset();
        let got = log.append(&record(offset)).map_err(|e| e.to_string())?;
        if got != offset {
            return Err(format!("append returned {got}, expected {offset}"));
        }
        if (i + 1) % sync_every == 0 {
            log.sync().map_err(|e| e.to_string())?;
            writeln!(out, "synced {}", log.durable_offset()).map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
            if Instant::now() >= deadline {
                break;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("segment_log_child: {e}");
            ExitCode::FAILURE
        }
    }
}
