//! The data directory lock and format: a second `shen run` on a directory
//! in use, or on a directory another data format wrote, exits at once with
//! a clear error and changes nothing there.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shen_tests::{shen_bin, status, NodeProc};

const LOOPBACK: &[&str] = &[
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--admin",
    "127.0.0.1:0",
    "--no-mdns",
];

/// Every file under `dir` but the first node's own stderr log, with its
/// bytes.
fn snapshot(dir: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "node.log") {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Run `shen run` on `dir` in the foreground (a refused start exits at
/// once): its output and how long it took.
fn run_on(dir: &std::path::Path) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = Command::new(shen_bin())
        .arg("run")
        .arg("--data-dir")
        .arg(dir)
        .args(LOOPBACK)
        .stdin(Stdio::null())
        .output()
        .expect("run shen");
    (out, started.elapsed())
}

#[test]
fn a_second_node_on_a_locked_data_dir_exits_at_once_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("n0");
    let mut first = NodeProc::start(&[], &dir, LOOPBACK);
    let info = first.info(Duration::from_secs(20));
    let before = snapshot(&dir);
    assert!(
        before.contains_key("LOCK"),
        "no lock file: {:?}",
        before.keys()
    );

    let (out, took) = run_on(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("in use by another shen process"),
        "unclear error: {stderr}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?} to refuse");
    assert_eq!(
        snapshot(&dir),
        before,
        "the refused run changed the directory"
    );
    // The first node is untouched and still serving.
    assert!(
        status(&info.admin).is_some(),
        "the first node stopped serving"
    );
    assert_eq!(first.terminate(Duration::from_secs(10)), Some(0));

    // Once it is gone, the directory can be used again.
    let mut again = NodeProc::start(&[], &dir, LOOPBACK);
    let info = again.info(Duration::from_secs(20));
    assert!(status(&info.admin).is_some());
    assert_eq!(again.terminate(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_directory_of_another_data_format_is_refused_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("n0");
    // A node makes the directory: it writes the current format.
    let mut first = NodeProc::start(&[], &dir, LOOPBACK);
    first.info(Duration::from_secs(20));
    assert_eq!(first.terminate(Duration::from_secs(10)), Some(0));
    let format = std::fs::read_to_string(dir.join("FORMAT")).expect("FORMAT written");
    assert!(format.starts_with("shen data format "), "{format:?}");

    let refuse = |why: &str, want: &str| {
        let before = snapshot(&dir);
        let (out, took) = run_on(&dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{why}: stderr: {stderr}");
        assert!(stderr.contains(want), "{why}: unclear error: {stderr}");
        assert!(took < Duration::from_secs(5), "{why}: slow refusal");
        // Only the lock file may be (re)created; nothing else changes.
        let mut after = snapshot(&dir);
        after.remove("LOCK");
        let mut before = before;
        before.remove("LOCK");
        assert_eq!(
            after, before,
            "{why}: the refused run changed the directory"
        );
    };
    std::fs::write(dir.join("FORMAT"), "shen data format 999\n").unwrap();
    refuse(
        "a newer format",
        "written by a newer Shen (data format 999)",
    );
    // A log directory from before format files (here: a member file).
    std::fs::remove_file(dir.join("FORMAT")).unwrap();
    std::fs::write(dir.join("log-members.json"), "{}").unwrap();
    refuse("no format file", "written by an older Shen (data format 1)");
}
