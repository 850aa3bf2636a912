//! Length-prefixed frames on a `/shen/<version>` stream.
//!
//! Each frame is a 4-byte big-endian length followed by that many bytes: one
//! postcard [`Envelope`](shen_rings::Envelope). The decoder is a plain value
//! (sans-IO): push whatever bytes arrived, pop whole frames. It checks the
//! announced length against the limit *before* buffering, so a peer cannot
//! make it allocate more than `limit + 4` bytes, and it never panics on any
//! input (property-tested, see `tests/frame_props.rs`).

use shen_rings::wire::MAX_FRAME_BYTES;

/// Bytes of the length prefix.
pub const PREFIX_BYTES: usize = 4;

/// Why a byte stream is not a valid sequence of frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The announced length exceeds the limit.
    #[error("frame of {size} bytes announced, limit is {limit}")]
    TooLarge {
        /// Announced length.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A zero-length frame (never produced by a Shen node).
    #[error("empty frame")]
    Empty,
}

/// Encode one frame: length prefix + payload. Fails if `payload` exceeds
/// [`MAX_FRAME_BYTES`].
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    if payload.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            size: payload.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    if payload.is_empty() {
        return Err(FrameError::Empty);
    }
    let mut out = Vec::with_capacity(PREFIX_BYTES + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Encode an envelope as one frame (length prefix + encoded envelope) in a
/// single buffer, without an intermediate copy.
pub fn encode_envelope(env: &shen_rings::wire::Envelope) -> Result<Vec<u8>, String> {
    let size = env.encoded_len();
    if size > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            size,
            limit: MAX_FRAME_BYTES,
        }
        .to_string());
    }
    let mut out = Vec::with_capacity(PREFIX_BYTES + size);
    out.extend_from_slice(&(size as u32).to_be_bytes());
    env.write_to(&mut out).map_err(|e| e.to_string())?;
    debug_assert_eq!(out.len(), PREFIX_BYTES + size);
    Ok(out)
}

/// Incremental frame decoder.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    limit: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed (compacted lazily).
    start: usize,
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        FrameDecoder {
            limit,
            buf: Vec::new(),
            start: 0,
            failed: None,
        }
    }

    /// Append received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed, or the
    /// error that makes the stream unusable (sticky: every later call
    /// returns it again).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let avail = &self.buf[self.start..];
        if avail.len() < PREFIX_BYTES {
            return Ok(None);
        }
        let mut prefix = [0u8; PREFIX_BYTES];
        prefix.copy_from_slice(&avail[..PREFIX_BYTES]);
        let len = u32::from_be_bytes(prefix) as usize;
        if len > self.limit {
            let e = FrameError::TooLarge {
                size: len,
                limit: self.limit,
            };
            self.failed = Some(e.clone());
            return Err(e);
        }
        if len == 0 {
            self.failed = Some(FrameError::Empty);
            return Err(FrameError::Empty);
        }
        if avail.len() < PREFIX_BYTES + len {
            return Ok(None);
        }
        let frame = avail[PREFIX_BYTES..PREFIX_BYTES + len].to_vec();
        self.start += PREFIX_BYTES + len;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_frames_match_the_two_step_encoding() {
        for n in [0usize, 1, 127, 128, 300, 70_000] {
            let env = shen_rings::wire::Envelope {
                version: shen_rings::wire::PROTOCOL_VERSION,
                ring: shen_rings::RingId(3),
                payload: vec![0xAB; n],
            };
            let two_step = encode_frame(&env.to_frame().unwrap()).unwrap();
            assert_eq!(encode_envelope(&env).unwrap(), two_step, "payload {n}");
        }
        let huge = shen_rings::wire::Envelope {
            version: shen_rings::wire::PROTOCOL_VERSION,
            ring: shen_rings::RingId(3),
            payload: vec![0; MAX_FRAME_BYTES],
        };
        assert!(encode_envelope(&huge).is_err());
    }

    #[test]
    fn round_trip_in_pieces() {
        let a = encode_frame(b"hello").unwrap();
        let b = encode_frame(&[7u8; 300]).unwrap();
        let all: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for chunk in all.chunks(3) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![b"hello".to_vec(), vec![7u8; 300]]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn oversized_announcement_is_rejected_before_buffering() {
        let mut d = FrameDecoder::new(16);
        d.push(&17u32.to_be_bytes());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge {
                size: 17,
                limit: 16
            })
        );
        d.push(&[0u8; 100]);
        assert_eq!(d.buffered(), 4, "nothing buffered after failure");
        assert!(d.next_frame().is_err(), "error is sticky");
    }

    #[test]
    fn empty_frame_is_an_error() {
        let mut d = FrameDecoder::default();
        d.push(&[0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::Empty));
        assert!(encode_frame(&[]).is_err());
        assert!(encode_frame(&vec![0u8; MAX_FRAME_BYTES + 1]).is_err());
    }
}
