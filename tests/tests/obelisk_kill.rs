//! Obelisk survives `kill -9`: a child process hands out values from an
//! Obelisk over a `FileCell` and prints them; it is SIGKILLed after a short,
//! varying delay, again and again over the same data directory. Across all
//! runs every printed value must be unique, each run's values strictly
//! increasing, and every run's values above all values of earlier runs.
#![cfg(unix)]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use shen_rings::obelisk::DurableCell;
use shen_storage::FileCell;

const RUNS: usize = 30;
/// Small, so ranges (and durable writes) roll over often within each run.
const RANGE: u64 = 1_000;

/// Deterministic kill delays in milliseconds: a few immediate kills (which
/// hit process start-up and the file's creation) and then a 64-bit LCG
/// spread over 1..=120 ms.
fn delays() -> Vec<u64> {
    let mut state: u64 = 0x5EED_0B31_15C0_FFEE;
    (0..RUNS)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            match i {
                0 | 7 => 0,
                13 => 2,
                _ => 1 + (state >> 33) % 120,
            }
        })
        .collect()
}

/// The values of complete lines; a torn last line (no newline) is ignored.
fn complete_values(output: &[u8]) -> Vec<u64> {
    let text = std::str::from_utf8(output).expect("child prints ASCII");
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("bad line {l:?}")))
        .collect()
}

#[test]
fn obelisk_never_repeats_across_sigkill() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let child_bin = env!("CARGO_BIN_EXE_obelisk_child");
    let mut highest: Option<u64> = None;
    let mut all: Vec<u64> = Vec::new();
    let mut runs_with_output = 0usize;

    for (run, delay) in delays().into_iter().enumerate() {
        let mut child = Command::new(child_bin)
            .arg(dir.path())
            .arg(RANGE.to_string())
            // Bounded even if the kill below were lost: 5 s at most.
            .arg("50000000")
            .arg("5")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn obelisk_child");
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

        let values = complete_values(&output);
        for pair in values.windows(2) {
            assert!(
                pair[0] < pair[1],
                "run {run}: {} then {} is not strictly increasing",
                pair[0],
                pair[1]
            );
        }
        if let (Some(first), Some(prev)) = (values.first(), highest) {
            assert!(
                *first > prev,
                "run {run}: first value {first} not above {prev} from an earlier run"
            );
        }
        if let Some(&last) = values.last() {
            highest = Some(last);
            runs_with_output += 1;
        }
        all.extend_from_slice(&values);
    }

    // Unique across all runs (implied by the checks above; checked directly).
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total, "some value was handed out twice");

    // Every value ever printed is covered by the durable high-water mark.
    let hwm = FileCell::open(dir.path()).unwrap().load().unwrap();
    if let Some(h) = highest {
        assert!(hwm.is_some_and(|m| m >= h), "hwm {hwm:?} below {h}");
    }
    eprintln!(
        "obelisk kill test: {RUNS} runs ({runs_with_output} printed values), {total} values, \
         highest {highest:?}, high-water mark {hwm:?}, {:?}",
        started.elapsed()
    );
    // The test is only meaningful if the children got going and rolled over
    // many ranges.
    assert!(
        runs_with_output >= RUNS / 2,
        "too few runs printed anything"
    );
    assert!(
        highest.is_some_and(|h| h > 10 * RANGE),
        "too few ranges exercised: highest {highest:?}"
    );
}
