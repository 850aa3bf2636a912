//! The data directory's format version: a `FORMAT` file that a node checks before it reads anything, so a binary never misreads a layout it does not know.
//!
//! A node's data directory holds the log's members, the Cartouche acceptor
//! state, the write-ahead log, and each partition's segments and
//! checkpoints. Their encodings change between releases; the segment
//! files carry a magic word, but the write-ahead log, checkpoints and
//! member files do not say which release wrote them. So the directory as
//! a whole carries one number, [`DATA_FORMAT`], in `FORMAT`
//! (`shen data format N`), written once, atomically, when a node first
//! opens a directory that holds no log yet.
//!
//! On every start, under the directory lock and before any other file is
//! read:
//! - `FORMAT` says [`DATA_FORMAT`]: go on;
//! - it says another number, or is unreadable: refuse to start with an
//!   error naming both numbers, and change nothing;
//! - it is missing but log files are present: the directory predates
//!   format files (format 1, before records moved to segments): refuse the
//!   same way;
//! - it is missing and no log file is present (a new directory, or one
//!   with only the node's identity, peer store and restart counter, whose
//!   encodings have not changed): write it.
//!
//! There is no in-place upgrade yet. The refusal says what to do: run the
//! release that wrote the directory, or start this node on an empty data
//! directory.

use std::path::Path;

use super::formation::{CARTOUCHE_STATE_FILE, LOG_MEMBERS_FILE, PARTS_DIR, WAL_DIR};

/// The file, in the data directory.
pub const FORMAT_FILE: &str = "FORMAT";

/// The format this binary reads and writes. 3: the log's table (in the
/// write-ahead log and checkpoints) carries the member set, and
/// `log-members.json` follows it (issue 17); 2: records in per-partition
/// segments with checkpoints (issue 16); 1: everything in the write-ahead
/// log (no `FORMAT` file).
pub const DATA_FORMAT: u32 = 3;

const PREFIX: &str = "shen data format ";

/// The files whose presence means the directory already holds a log.
const LOG_FILES: [&str; 4] = [LOG_MEMBERS_FILE, WAL_DIR, PARTS_DIR, CARTOUCHE_STATE_FILE];

/// Check (or, on a directory with no log yet, write) the format file.
pub fn check_or_init(dir: &Path) -> Result<(), String> {
    let path = dir.join(FORMAT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let found = parse(&bytes).ok_or_else(|| {
                format!(
                    "{} is not a Shen format file (expected \"{PREFIX}{DATA_FORMAT}\"); \
                     refusing to read the data directory {}",
                    path.display(),
                    dir.display()
                )
            })?;
            if found == DATA_FORMAT {
                Ok(())
            } else {
                Err(mismatch(dir, found))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if LOG_FILES.iter().any(|f| dir.join(f).exists()) {
                return Err(mismatch(dir, 1));
            }
            shen_storage::write_atomic(&path, format!("{PREFIX}{DATA_FORMAT}\n").as_bytes())
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn parse(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes)
        .ok()?
        .trim_end()
        .strip_prefix(PREFIX)?
        .parse()
        .ok()
}

fn mismatch(dir: &Path, found: u32) -> String {
    let who = if found < DATA_FORMAT {
        "an older"
    } else {
        "a newer"
    };
    format!(
        "the data directory {} was written by {who} Shen (data format {found}); this binary \
         reads data format {DATA_FORMAT} and has no in-place upgrade. Nothing was changed: \
         run the release that wrote it, or start this node on an empty --data-dir",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_new_directory_gets_the_current_format() {
        let d = dir();
        // Identity and peer store only: not yet a log.
        std::fs::write(d.path().join("peers.json"), "[]").unwrap();
        check_or_init(d.path()).unwrap();
        let text = std::fs::read_to_string(d.path().join(FORMAT_FILE)).unwrap();
        assert_eq!(text, format!("shen data format {DATA_FORMAT}\n"));
        // And it opens again.
        check_or_init(d.path()).unwrap();
    }

    #[test]
    fn a_log_without_a_format_file_is_format_1_and_refused_unchanged() {
        for f in LOG_FILES {
            let d = dir();
            std::fs::create_dir(d.path().join(f)).unwrap();
            let e = check_or_init(d.path()).unwrap_err();
            assert!(e.contains("an older Shen (data format 1)"), "{f}: {e}");
            assert!(
                e.contains(&format!("reads data format {DATA_FORMAT}")),
                "{e}"
            );
            assert!(
                !d.path().join(FORMAT_FILE).exists(),
                "{f}: nothing is written"
            );
        }
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        let cases: [(&str, &str); 4] = [
            ("shen data format 1\n", "an older Shen (data format 1)"),
            ("shen data format 9\n", "a newer Shen (data format 9)"),
            ("shen data format x\n", "is not a Shen format file"),
            ("\u{0}\u{1}", "is not a Shen format file"),
        ];
        for (text, want) in cases {
            let d = dir();
            std::fs::write(d.path().join(FORMAT_FILE), text).unwrap();
            let e = check_or_init(d.path()).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert_eq!(
                std::fs::read_to_string(d.path().join(FORMAT_FILE)).unwrap_or_default(),
                String::from_utf8_lossy(text.as_bytes()),
                "unchanged"
            );
        }
    }
}
