//! The wire format: serde + postcard inside a versioned envelope with a size
//! limit. Decoding untrusted bytes returns an error, never panics.

use alloc::vec::Vec;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::contract::RingId;

/// The protocol version this build speaks. Version 2: Ouroboros tables
/// carry the member set, `Check` its version, and `Intent` exists.
pub const PROTOCOL_VERSION: u16 = 2;
/// The oldest protocol version this build still accepts (version 1
/// tables have no member set, so a version 1 node cannot take part).
pub const MIN_PROTOCOL_VERSION: u16 = 2;
/// The largest encoded frame accepted or produced (1 MiB).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is larger than the limit.
    #[error("frame of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The peer speaks a protocol version this build does not accept.
    #[error("unsupported protocol version {got} (this build accepts {min}..={max})")]
    Version {
        /// The version in the frame.
        got: u16,
        /// Oldest accepted.
        min: u16,
        /// Newest accepted.
        max: u16,
    },
    /// The bytes are not a well-formed envelope or message.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// The frame was addressed to a ring this node does not run.
    #[error("no ring with id {0:?} on this node")]
    UnknownRing(RingId),
}

/// A versioned frame: protocol version, ring id and the ring's postcard
/// payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version of the sender.
    pub version: u16,
    /// Which ring the payload is for.
    pub ring: RingId,
    /// The ring message, postcard-encoded.
    pub payload: Vec<u8>,
}

fn postcard_err(e: postcard::Error) -> WireError {
    use postcard::Error as E;
    WireError::Malformed(match e {
        E::DeserializeUnexpectedEnd => "unexpected end of input",
        E::DeserializeBadVarint => "bad varint",
        E::DeserializeBadBool => "bad bool",
        E::DeserializeBadChar => "bad char",
        E::DeserializeBadUtf8 => "bad utf-8",
        E::DeserializeBadOption => "bad option tag",
        E::DeserializeBadEnum => "bad enum tag",
        E::DeserializeBadEncoding => "bad encoding",
        E::SerializeBufferFull => "buffer full",
        _ => "postcard error",
    })
}

/// postcard into a `Vec` of exactly the encoded size: a sizing pass first,
/// instead of a chain of reallocations and copies as the buffer grows
/// (messages carry batches of log entries, tens of KiB).
pub fn to_sized_vec<T: Serialize + ?Sized>(value: &T) -> postcard::Result<Vec<u8>> {
    let n = postcard::experimental::serialized_size(value)?;
    postcard::to_extend(value, Vec::with_capacity(n))
}

impl Envelope {
    /// Wrap `msg` for `ring` at this build's protocol version.
    pub fn wrap<M: Serialize>(ring: RingId, msg: &M) -> Result<Envelope, WireError> {
        let payload = to_sized_vec(msg).map_err(postcard_err)?;
        let env = Envelope {
            version: PROTOCOL_VERSION,
            ring,
            payload,
        };
        let size = env.encoded_len();
        if size > MAX_FRAME_BYTES {
            return Err(WireError::TooLarge {
                size,
                limit: MAX_FRAME_BYTES,
            });
        }
        Ok(env)
    }

    /// Decode the payload as a message of type `M`. Trailing bytes are an
    /// error.
    pub fn unwrap_msg<M: DeserializeOwned>(&self) -> Result<M, WireError> {
        let (msg, rest) = postcard::take_from_bytes(&self.payload).map_err(postcard_err)?;
        if !rest.is_empty() {
            return Err(WireError::Malformed("trailing bytes after message"));
        }
        Ok(msg)
    }

    /// Size of [`Envelope::to_frame`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        varint_len(u64::from(self.version))
            + varint_len(u64::from(self.ring.0))
            + varint_len(self.payload.len() as u64)
            + self.payload.len()
    }

    /// Encode for the wire.
    pub fn to_frame(&self) -> Result<Vec<u8>, WireError> {
        let size = self.encoded_len();
        if size > MAX_FRAME_BYTES {
            return Err(WireError::TooLarge {
                size,
                limit: MAX_FRAME_BYTES,
            });
        }
        let mut out = Vec::with_capacity(size);
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Append the encoded envelope to `out` (a transport can put its own
    /// length prefix in front without another copy).
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let size = self.encoded_len();
        if size > MAX_FRAME_BYTES {
            return Err(WireError::TooLarge {
                size,
                limit: MAX_FRAME_BYTES,
            });
        }
        out.reserve(size);
        let taken = core::mem::take(out);
        *out = postcard::to_extend(self, taken).map_err(postcard_err)?;
        Ok(())
    }

    /// Decode a frame from untrusted bytes with the default size limit.
    pub fn from_frame(bytes: &[u8]) -> Result<Envelope, WireError> {
        Self::from_frame_with_limit(bytes, MAX_FRAME_BYTES)
    }

    /// Decode a frame from untrusted bytes, rejecting frames over `limit`
    /// bytes, unknown versions and trailing garbage.
    pub fn from_frame_with_limit(bytes: &[u8], limit: usize) -> Result<Envelope, WireError> {
        if bytes.len() > limit {
            return Err(WireError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        // The version comes first so a future layout can still be rejected
        // with a precise error.
        let (version, _) = postcard::take_from_bytes::<u16>(bytes).map_err(postcard_err)?;
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
            return Err(WireError::Version {
                got: version,
                min: MIN_PROTOCOL_VERSION,
                max: PROTOCOL_VERSION,
            });
        }
        let (env, rest) = postcard::take_from_bytes::<Envelope>(bytes).map_err(postcard_err)?;
        if !rest.is_empty() {
            return Err(WireError::Malformed("trailing bytes after envelope"));
        }
        Ok(env)
    }
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_encoding_is_postcards_encoding() {
        let v: (u32, Vec<u8>, Option<String>) = (7, vec![1; 1000], Some("x".into()));
        let sized = to_sized_vec(&v).unwrap();
        assert_eq!(sized, postcard::to_allocvec(&v).unwrap());
        assert_eq!(sized.capacity(), sized.len());
    }
    use alloc::string::String;
    use alloc::vec;
    use proptest::prelude::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    enum Msg {
        Ping { n: u64 },
        Data(Vec<u8>, String),
    }

    #[test]
    fn round_trip_and_encoded_len() {
        let m = Msg::Data(vec![1, 2, 3], "hi".into());
        let env = Envelope::wrap(RingId(9), &m).unwrap();
        let frame = env.to_frame().unwrap();
        assert_eq!(frame.len(), env.encoded_len());
        let back = Envelope::from_frame(&frame).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.unwrap_msg::<Msg>().unwrap(), m);
    }

    #[test]
    fn rejects_unknown_version_oversize_and_trailing_bytes() {
        let mut env = Envelope::wrap(RingId(1), &Msg::Ping { n: 1 }).unwrap();
        env.version = 99;
        let frame = postcard::to_allocvec(&env).unwrap();
        assert!(matches!(
            Envelope::from_frame(&frame),
            Err(WireError::Version { got: 99, .. })
        ));
        let ok = Envelope::wrap(RingId(1), &Msg::Ping { n: 1 })
            .unwrap()
            .to_frame()
            .unwrap();
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(matches!(
            Envelope::from_frame(&trailing),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            Envelope::from_frame_with_limit(&ok, 2),
            Err(WireError::TooLarge { .. })
        ));
        let big = Msg::Data(vec![0; MAX_FRAME_BYTES], String::new());
        assert!(matches!(
            Envelope::wrap(RingId(1), &big),
            Err(WireError::TooLarge { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Garbage never panics: it decodes to an error or to some envelope
        /// whose payload again never panics when decoded as a message.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(env) = Envelope::from_frame(&bytes) {
                let _ = env.unwrap_msg::<Msg>();
            }
        }

        /// Corrupting one byte of a valid frame never panics.
        #[test]
        fn bit_flips_never_panic(n in any::<u64>(), pos in any::<prop::sample::Index>(), x in 1u8..) {
            let mut frame = Envelope::wrap(RingId(3), &Msg::Ping { n }).unwrap().to_frame().unwrap();
            let i = pos.index(frame.len());
            frame[i] ^= x;
            if let Ok(env) = Envelope::from_frame(&frame) {
                let _ = env.unwrap_msg::<Msg>();
            }
        }
    }
}
