//! Replacing a small file atomically: write a sibling temporary file, sync
//! it, rename it over the target.

use std::io::Write;
use std::path::Path;

/// Replace the file at `p` with `bytes`: written in full to `p` with the
/// extension `tmp`, synced, renamed over `p`, and the directory synced so
/// the rename itself survives a power loss. A reader (or a crash) sees the
/// old content or the new one, never a mix. Errors name the file.
pub fn write_atomic(p: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = p.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, p).map_err(|e| format!("{}: {e}", p.display()))?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    crate::fsutil::sync_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_creates_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.json");
        write_atomic(&p, b"first").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        write_atomic(&p, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second, longer");
        write_atomic(&p, b"3").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"3");
        // The temporary file was renamed away, not left behind.
        assert!(!p.with_extension("tmp").exists());
    }

    #[test]
    fn write_atomic_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing-dir").join("file");
        let e = write_atomic(&p, b"x").unwrap_err();
        assert!(e.contains("missing-dir"), "{e}");
        assert!(!p.exists());
    }
}
