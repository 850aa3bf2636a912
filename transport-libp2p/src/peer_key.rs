//! [`PeerKey`]: a libp2p `PeerId` as a ring [`NodeId`].
//!
//! `stable_bytes` is the PeerId's multihash (38 bytes for ed25519), so
//! placement is stable across restarts (the key is persisted) and every
//! member id is directly dialable. Serialized as bytes in postcard, base58
//! text in JSON.

use std::borrow::Cow;
use std::fmt;

use libp2p::PeerId;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shen_rings::NodeId;

/// A libp2p [`PeerId`] used as a ring node id.
///
/// `stable_bytes` are the PeerId's multihash bytes (38 bytes for ed25519
/// keys): identical on every platform and version, and the same across
/// restarts because the identity is persisted. On the wire (postcard) it is
/// those bytes; in human-readable formats (JSON) the base58 text form.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey(pub PeerId);

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl NodeId for PeerKey {
    fn stable_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes())
    }
}

impl Serialize for PeerKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.0.to_base58())
        } else {
            // On the stack: this runs for every log entry written or sent
            // (`PeerId::to_bytes` allocates twice).
            let mh: &libp2p::multihash::Multihash<64> = self.0.as_ref();
            let mut buf = [0u8; 80];
            match mh.write(&mut buf[..]) {
                Ok(n) => s.serialize_bytes(&buf[..n]),
                Err(_) => s.serialize_bytes(&self.0.to_bytes()),
            }
        }
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = PeerKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a libp2p peer id")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<PeerKey, E> {
        PeerId::from_bytes(v)
            .map(PeerKey)
            .map_err(|_| E::custom("invalid peer id bytes"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PeerKey, E> {
        v.parse::<PeerId>()
            .map(PeerKey)
            .map_err(|_| E::custom("invalid peer id text"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<PeerKey, A::Error> {
        let mut bytes = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            if bytes.len() >= 128 {
                return Err(de::Error::custom("peer id too long"));
            }
            bytes.push(b);
        }
        self.visit_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for PeerKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PeerKey, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(KeyVisitor)
        } else {
            d.deserialize_bytes(KeyVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcard_round_trip_and_garbage() {
        let k = PeerKey(PeerId::random());
        let bytes = postcard_like(&k);
        let back: PeerKey = shen_rings::Envelope::wrap(shen_rings::RingId(9), &k)
            .unwrap()
            .unwrap_msg()
            .unwrap();
        assert_eq!(back, k);
        assert!(!bytes.is_empty());
        let bad = shen_rings::Envelope {
            version: 1,
            ring: shen_rings::RingId(9),
            payload: vec![3, 1, 2, 3],
        };
        assert!(bad.unwrap_msg::<PeerKey>().is_err());
        assert_eq!(k.stable_bytes().as_ref(), k.0.to_bytes().as_slice());
        // The stack-buffer encoding is byte for byte postcard's encoding of
        // `PeerId::to_bytes` (so stored logs and peers of older builds agree).
        let env = shen_rings::Envelope::wrap(shen_rings::RingId(9), &k).unwrap();
        let mut want = Vec::new();
        want.push(k.0.to_bytes().len() as u8);
        want.extend_from_slice(&k.0.to_bytes());
        assert_eq!(env.payload, want);
    }

    fn postcard_like(k: &PeerKey) -> Vec<u8> {
        shen_rings::Envelope::wrap(shen_rings::RingId(9), k)
            .unwrap()
            .payload
    }
}
