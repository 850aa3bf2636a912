//! The node's persisted ed25519 identity and the optional pre-shared key.
//!
//! The key lives in `DATA_DIR/identity.key` (protobuf encoding, created
//! atomically, mode 0600). The PSK file uses the `swarm.key` format
//! (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits).

use std::fs;
use std::io::Write;
use std::path::Path;

use libp2p::identity::Keypair;
use libp2p::pnet::PreSharedKey;

/// File name of the identity inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// Why the identity or the key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file exists but does not hold a valid key.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
}

fn io_err(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Load the ed25519 keypair at `path` (libp2p protobuf encoding), or create
/// one atomically (temporary file, fsync, rename, directory fsync; mode 0600)
/// if the file does not exist. The same file gives the same `PeerId`.
pub fn load_or_create_identity(path: &Path) -> Result<Keypair, KeyError> {
    match fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| KeyError::Invalid {
            path: path.display().to_string(),
            what: format!("not a libp2p private key ({e})"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kp = Keypair::generate_ed25519();
            let bytes = kp.to_protobuf_encoding().map_err(|e| KeyError::Invalid {
                path: path.display().to_string(),
                what: format!("cannot encode key: {e}"),
            })?;
            let tmp = path.with_extension("tmp");
            {
                let mut opts = fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(&tmp).map_err(|e| io_err(&tmp, e))?;
                f.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
                f.sync_all().map_err(|e| io_err(&tmp, e))?;
            }
            fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
            if let Some(dir) = path.parent() {
                if let Ok(d) = fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
            Ok(kp)
        }
        Err(e) => Err(io_err(path, e)),
    }
}

/// Read a pre-shared key file in the usual libp2p/IPFS swarm.key format:
///
/// ```text
/// /key/swarm/psk/1.0.0/
/// /base16/
/// <64 hex digits>
/// ```
pub fn load_psk(path: &Path) -> Result<PreSharedKey, KeyError> {
    let text = fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    text.trim().parse::<PreSharedKey>().map_err(|e| KeyError::Invalid {
        path: path.display().to_string(),
        what: format!(
            "not a pre-shared key ({e}); expected '/key/swarm/psk/1.0.0/', '/base16/', 64 hex digits"
        ),
    })
}

/// Text of a PSK file for `key` (the format [`load_psk`] reads).
pub fn psk_file_text(key: &[u8; 32]) -> String {
    format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", hex::encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = dir.join(IDENTITY_FILE);
        let a = load_or_create_identity(&p).unwrap();
        let b = load_or_create_identity(&p).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        fs::write(&p, b"garbage").unwrap();
        assert!(matches!(
            load_or_create_identity(&p),
            Err(KeyError::Invalid { .. })
        ));
        let k = dir.join("swarm.key");
        fs::write(&k, psk_file_text(&[7u8; 32])).unwrap();
        assert!(load_psk(&k).is_ok());
        fs::write(&k, "nonsense").unwrap();
        assert!(load_psk(&k).is_err());
    }
}
