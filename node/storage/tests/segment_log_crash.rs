//! The segment log survives `kill -9`: a child process appends records
//! (content a function of the offset), syncs every few records and prints
//! each durable offset; it is SIGKILLed after a short, varying delay, again
//! and again over the same directory, sometimes with a torn tail (half a
//! frame, zeroed bytes, garbage) added to the last segment between runs.
//! After every kill the log must reopen, hold at least every offset reported
//! as synced, be dense from 0, and hold exactly the expected content at
//! every offset (so no torn or misplaced record is visible).
#![cfg(unix)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use shen_rings::logstore::LogStore;
use shen_storage::{SegmentLog, SegmentLogConfig};

const RUNS: usize = 20;
const SYNC_EVERY: u64 = 7;
/// Tiny segments so runs roll often (records are 16..=715 bytes).
const SEGMENT_BYTES: u64 = 8 * 1024;

/// The record the child stores at `offset` (a copy of the child's).
fn record(offset: u64) -> Vec<u8> {
    let len = 16 + (offset.wrapping_mul(7919) % 700) as usize;
    let unit = format!("{offset}:");
    unit.bytes().cycle().take(len).collect()
}

/// Deterministic kill delays in milliseconds: two immediate kills (start-up
/// and recovery) and then a 64-bit LCG spread over 1..=150 ms.
fn delays() -> Vec<u64> {
    let mut state: u64 = 0x5E61_06C0_FFEE_1100;
    (0..RUNS)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            match i {
                0 | 9 => 0,
                _ => 1 + (state >> 33) % 150,
            }
        })
        .collect()
}

/// What a run printed: the offset it opened at and the synced offsets, from
/// complete lines only (a torn last line is ignored).
fn parse_output(output: &[u8]) -> (Option<u64>, Vec<u64>) {
    let text = std::str::from_utf8(output).expect("child prints ASCII");
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    let mut open = None;
    let mut synced = Vec::new();
    for line in complete.lines() {
        let num = |s: &str| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("bad line {line:?}"))
        };
        if let Some(n) = line.strip_prefix("open ") {
            open = Some(num(n));
        } else if let Some(n) = line.strip_prefix("synced ") {
            synced.push(num(n));
        } else {
            panic!("bad line {line:?}");
        }
    }
    (open, synced)
}

/// Damage the end of the last segment the way an interrupted write would.
fn tear_tail(dir: &Path, run: usize) {
    let log = SegmentLog::open(dir).unwrap();
    let last = log.segment_paths().pop().unwrap();
    drop(log);
    let mut f = OpenOptions::new().append(true).open(&last).unwrap();
    let tail: Vec<u8> = match run % 3 {
        // Half a frame: a header promising 500 bytes, then 40 of them.
        0 => {
            let mut t = 500u32.to_le_bytes().to_vec();
            t.extend_from_slice(&[0xAB; 8]);
            t.extend_from_slice(&[b'x'; 40]);
            t
        }
        // Zeroed bytes, as after a power loss that extended the file.
        1 => vec![0; 777],
        // Garbage.
        _ => (0..300u32).map(|i| (i * 37 % 251) as u8).collect(),
    };
    f.write_all(&tail).unwrap();
}

/// Reopen the log and check everything the kill test promises; returns the
/// log's length.
fn check(dir: &Path, run: usize, min_len: u64, verify_from: u64) -> u64 {
    let config = SegmentLogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..SegmentLogConfig::default()
    };
    let log = SegmentLog::open_with(dir, config)
        .unwrap_or_else(|e| panic!("run {run}: reopen failed: {e}"));
    let len = log.next_offset();
    assert!(
        len >= min_len,
        "run {run}: log has {len} records but {min_len} were reported synced"
    );
    assert_eq!(
        log.durable_offset(),
        len,
        "run {run}: reopened log is durable"
    );
    // Dense: every offset below `len` holds its record; none at `len`.
    for offset in verify_from.min(len)..len {
        let got = log
            .read(offset)
            .unwrap_or_else(|e| panic!("run {run}: read {offset}: {e}"));
        assert_eq!(
            got.as_deref(),
            Some(&record(offset)[..]),
            "run {run}: wrong record at offset {offset}"
        );
    }
    assert_eq!(
        log.read(len).unwrap(),
        None,
        "run {run}: record past the end"
    );
    len
}

#[test]
fn segment_log_keeps_synced_records_across_sigkill() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let child_bin = env!("CARGO_BIN_EXE_segment_log_child");
    // Highest offset ever reported durable: the log may never be shorter.
    let mut synced_floor = 0u64;
    let mut len = 0u64;
    let mut runs_with_syncs = 0usize;
    let mut tears = 0usize;

    for (run, delay) in delays().into_iter().enumerate() {
        if run % 4 == 3 && len > 0 {
            tear_tail(dir.path(), run);
            tears += 1;
        }
        let mut child = Command::new(child_bin)
            .arg(dir.path())
            .arg(SYNC_EVERY.to_string())
            .arg(SEGMENT_BYTES.to_string())
            .arg("50000")
            .arg("5")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn segment_log_child");
        // Drain stdout concurrently so the child never blocks on a full pipe.
        let mut stdout = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            let mut buf = Vec::new();
            stdout.read_to_end(&mut buf).unwrap();
            buf
        });
        thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL the child"); // Child::kill sends SIGKILL
        let status = child.wait().unwrap();
        let output = reader.join().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(
            status.signal() == Some(9) || status.success(),
            "run {run}: child failed ({status}): {stderr}"
        );

        let (opened, synced) = parse_output(&output);
        if let Some(open) = opened {
            assert!(
                open >= synced_floor,
                "run {run}: child opened at {open}, below the synced {synced_floor}"
            );
        }
        for pair in synced.windows(2) {
            assert!(pair[0] < pair[1], "run {run}: synced offsets go backwards");
        }
        if let Some(&last) = synced.last() {
            synced_floor = synced_floor.max(last);
            runs_with_syncs += 1;
        }
        // Records below the previous length were checked before; the child
        // only appends, so check from where this run could have changed
        // things (a torn-tail cut can only shorten the log).
        let from = opened.map_or(len, |o| o.min(len));
        len = check(dir.path(), run, synced_floor, from);
    }

    // Finally every record, once more.
    let total = check(dir.path(), RUNS, synced_floor, 0);
    let segments = SegmentLog::open(dir.path()).unwrap().segment_paths().len();
    eprintln!(
        "segment log kill test: {RUNS} runs ({runs_with_syncs} with syncs, {tears} torn tails), \
         {total} records in {segments} segments, highest synced {synced_floor}, {:?}",
        started.elapsed()
    );
    assert!(runs_with_syncs >= RUNS / 2, "too few runs synced anything");
    assert!(segments > 5, "too few segment rolls exercised: {segments}");
}
