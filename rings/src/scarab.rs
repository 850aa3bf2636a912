//! Scarab: k-sortable 64-bit IDs (time | node | sequence).
//!
//! A [`ScarabId`] packs, from the most significant bit down:
//!
//! | bits | field      | meaning                                                  |
//! |------|------------|----------------------------------------------------------|
//! | 41   | millis     | milliseconds since [`EPOCH_UNIX_MS`] (2025-01-01T00:00Z) |
//! | 10   | node       | the issuing node, `0..=1023`                             |
//! | 13   | sequence   | per-millisecond counter, `0..=8191`                      |
//!
//! Because time occupies the top bits, numeric order is time order (to the
//! millisecond), so IDs are *k-sortable*: IDs issued by different nodes sort
//! by time and, within one millisecond, by node. 41 bits of milliseconds cover
//! about 69.7 years, i.e. until 2094-09-07.
//!
//! The textual form ([`Display`](core::fmt::Display) /
//! [`FromStr`]) is a fixed-width, 13-character Crockford
//! base32 string whose lexicographic (byte) order equals numeric order.
//!
//! [`ScarabGenerator`] is sans-IO: the caller passes the current Unix time in
//! milliseconds to every [`ScarabGenerator::next`] call; see its docs for the
//! clock-skew and overflow policy.
//!
//! # Example
//!
//! ```
//! use shen_rings::scarab::{ScarabGenerator, ScarabId, EPOCH_UNIX_MS};
//!
//! let mut gen = ScarabGenerator::new(7).unwrap();
//! let now = EPOCH_UNIX_MS + 1_000; // supplied by the caller's clock
//! let a = gen.next(now).unwrap();
//! let b = gen.next(now - 500).unwrap(); // the clock stepped back
//! assert!(b > a);
//! assert_eq!((a.node(), a.unix_millis()), (7, now));
//!
//! let text = a.to_string();
//! assert_eq!(text.len(), 13);
//! assert_eq!(text.parse::<ScarabId>().unwrap(), a);
//! ```

use core::fmt;
use core::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The Scarab epoch: 2025-01-01T00:00:00Z as milliseconds since the Unix
/// epoch. [`ScarabId::millis`] counts from here. Never change it: every
/// stored ID would be reinterpreted.
pub const EPOCH_UNIX_MS: u64 = 1_735_689_600_000;

/// Width of the millisecond field.
pub const MILLIS_BITS: u32 = 41;
/// Width of the node field.
pub const NODE_BITS: u32 = 10;
/// Width of the sequence field.
pub const SEQUENCE_BITS: u32 = 13;

/// The largest representable millisecond offset from [`EPOCH_UNIX_MS`].
pub const MAX_MILLIS: u64 = (1 << MILLIS_BITS) - 1;
/// The largest node number (1023).
pub const MAX_NODE: u16 = (1 << NODE_BITS) - 1;
/// The largest per-millisecond sequence number (8191).
pub const MAX_SEQUENCE: u16 = (1 << SEQUENCE_BITS) - 1;
/// IDs one node can issue per millisecond without borrowing (8192).
pub const SEQUENCES_PER_MS: u64 = 1 << SEQUENCE_BITS;

/// Length of the textual form of every [`ScarabId`].
pub const ENCODED_LEN: usize = 13;

const NODE_SHIFT: u32 = SEQUENCE_BITS;
const MILLIS_SHIFT: u32 = SEQUENCE_BITS + NODE_BITS;

/// Crockford's base32 alphabet. It is in ascending ASCII order, which is what
/// makes the fixed-width encoding order-preserving.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Errors building IDs or running a [`ScarabGenerator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScarabError {
    /// The node number does not fit in 10 bits.
    #[error("scarab node {node} out of range (must be at most {MAX_NODE})")]
    NodeOutOfRange {
        /// The rejected node number.
        node: u16,
    },
    /// The sequence number does not fit in 13 bits.
    #[error("scarab sequence {sequence} out of range (must be at most {MAX_SEQUENCE})")]
    SequenceOutOfRange {
        /// The rejected sequence number.
        sequence: u16,
    },
    /// The millisecond offset does not fit in 41 bits.
    #[error("scarab millisecond offset {millis} out of range (must be at most {MAX_MILLIS})")]
    MillisOutOfRange {
        /// The rejected offset from [`EPOCH_UNIX_MS`].
        millis: u64,
    },
    /// The wall clock reads a time before [`EPOCH_UNIX_MS`]: the clock is
    /// broken (or unset), so no ID is issued.
    #[error("clock reads {now_unix_ms} ms since the Unix epoch, before the scarab epoch {EPOCH_UNIX_MS}")]
    BeforeEpoch {
        /// The Unix time the caller passed in.
        now_unix_ms: u64,
    },
    /// The 41-bit millisecond space is used up: either the clock reads a time
    /// past 2094-09-07 or the generator has borrowed its way to the end.
    #[error("scarab ID space exhausted: no millisecond left after offset {MAX_MILLIS}")]
    Exhausted,
}

/// Errors parsing the textual form of a [`ScarabId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseScarabError {
    /// The string is not exactly [`ENCODED_LEN`] characters long.
    #[error("scarab ID must be {ENCODED_LEN} characters, got {len}")]
    InvalidLength {
        /// The number of characters found.
        len: usize,
    },
    /// A character outside Crockford's base32 alphabet.
    #[error("invalid character {ch:?} at position {index} in scarab ID")]
    InvalidCharacter {
        /// Zero-based character position.
        index: usize,
        /// The offending character.
        ch: char,
    },
    /// The value does not fit in 64 bits (the first character is above `F`).
    #[error("scarab ID overflows 64 bits (first character must be 0-F)")]
    Overflow,
}

/// A 64-bit, k-sortable ID: 41 bits of milliseconds since [`EPOCH_UNIX_MS`],
/// 10 bits of node, 13 bits of sequence.
///
/// Every `u64` is a valid `ScarabId` ([`ScarabId::from_u64`] is total).
///
/// # Serde
///
/// Human-readable formats (JSON, TOML, …) get the 13-character string — a
/// JSON number above 2^53 would lose precision in JavaScript — and accept
/// either that string or a plain integer back. Binary formats (postcard) get
/// the plain `u64`.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ScarabId(u64);

impl ScarabId {
    /// The smallest ID (`0000000000000`).
    pub const MIN: ScarabId = ScarabId(0);
    /// The largest ID (`FZZZZZZZZZZZZ`).
    pub const MAX: ScarabId = ScarabId(u64::MAX);

    /// Assemble an ID from a millisecond offset since [`EPOCH_UNIX_MS`], a
    /// node number and a sequence number, checking every field's width.
    pub const fn from_parts(
        millis: u64,
        node: u16,
        sequence: u16,
    ) -> Result<ScarabId, ScarabError> {
        if millis > MAX_MILLIS {
            return Err(ScarabError::MillisOutOfRange { millis });
        }
        if node > MAX_NODE {
            return Err(ScarabError::NodeOutOfRange { node });
        }
        if sequence > MAX_SEQUENCE {
            return Err(ScarabError::SequenceOutOfRange { sequence });
        }
        Ok(ScarabId(
            (millis << MILLIS_SHIFT) | ((node as u64) << NODE_SHIFT) | sequence as u64,
        ))
    }

    /// Reinterpret a raw `u64` as an ID (every value is valid).
    pub const fn from_u64(raw: u64) -> ScarabId {
        ScarabId(raw)
    }

    /// The raw 64-bit value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Milliseconds since [`EPOCH_UNIX_MS`].
    pub const fn millis(self) -> u64 {
        self.0 >> MILLIS_SHIFT
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.millis() + EPOCH_UNIX_MS
    }

    /// The issuing node (`0..=1023`).
    pub const fn node(self) -> u16 {
        ((self.0 >> NODE_SHIFT) & MAX_NODE as u64) as u16
    }

    /// The sequence number within the millisecond (`0..=8191`).
    pub const fn sequence(self) -> u16 {
        (self.0 & MAX_SEQUENCE as u64) as u16
    }

    /// The fixed-width Crockford base32 form as ASCII bytes (what
    /// [`Display`](fmt::Display) prints), without allocating.
    pub const fn to_base32(self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        let mut i = ENCODED_LEN;
        let mut v = self.0;
        while i > 0 {
            i -= 1;
            out[i] = ALPHABET[(v & 0x1f) as usize];
            v >>= 5;
        }
        out
    }
}

impl From<ScarabId> for u64 {
    fn from(id: ScarabId) -> u64 {
        id.0
    }
}

impl From<u64> for ScarabId {
    fn from(raw: u64) -> ScarabId {
        ScarabId(raw)
    }
}

impl fmt::Display for ScarabId {
    /// Thirteen Crockford base32 characters, most significant first; the
    /// first character carries the top 4 bits, so it is `0`–`F`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.to_base32();
        // The alphabet is ASCII, so this never fails.
        let s = core::str::from_utf8(&buf).map_err(|_| fmt::Error)?;
        f.pad(s)
    }
}

impl fmt::Debug for ScarabId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ScarabId({self} = {}ms/node {}/seq {})",
            self.millis(),
            self.node(),
            self.sequence()
        )
    }
}

/// Marks a byte that is not a Crockford base32 character in [`DECODE`].
const INVALID: u8 = 0xff;

/// Byte → digit value, accepting lower case and the aliases `I`/`L` → 1 and
/// `O` → 0; [`INVALID`] for everything else (including non-ASCII bytes).
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        table[ALPHABET[i].to_ascii_lowercase() as usize] = i as u8;
        i += 1;
    }
    table[b'I' as usize] = 1;
    table[b'i' as usize] = 1;
    table[b'L' as usize] = 1;
    table[b'l' as usize] = 1;
    table[b'O' as usize] = 0;
    table[b'o' as usize] = 0;
    table
};

/// The error for a string that is not 13 valid characters: its character
/// count if that is wrong, else the first invalid character.
#[cold]
fn parse_error(s: &str) -> ParseScarabError {
    let len = s.chars().count();
    if len != ENCODED_LEN {
        return ParseScarabError::InvalidLength { len };
    }
    s.chars()
        .enumerate()
        .find(|&(_, ch)| !ch.is_ascii() || DECODE[ch as usize] == INVALID)
        .map(|(index, ch)| ParseScarabError::InvalidCharacter { index, ch })
        // Unreachable for strings the fast path rejected; still no panic.
        .unwrap_or(ParseScarabError::InvalidLength { len })
}

impl FromStr for ScarabId {
    type Err = ParseScarabError;

    /// Parse the 13-character form. Case-insensitive; `I`/`L` read as `1`
    /// and `O` as `0`. Never panics.
    fn from_str(s: &str) -> Result<ScarabId, ParseScarabError> {
        let bytes = s.as_bytes();
        if bytes.len() != ENCODED_LEN {
            return Err(parse_error(s));
        }
        let mut value: u64 = 0;
        let mut invalid = false;
        for &b in bytes {
            let digit = DECODE[b as usize];
            invalid |= digit == INVALID;
            value = (value << 5) | u64::from(digit & 0x1f);
        }
        if invalid {
            return Err(parse_error(s));
        }
        if DECODE[bytes[0] as usize] > 0xf {
            return Err(ParseScarabError::Overflow);
        }
        Ok(ScarabId(value))
    }
}

impl Serialize for ScarabId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let buf = self.to_base32();
            let s = core::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(s)
        } else {
            serializer.serialize_u64(self.0)
        }
    }
}

struct ScarabVisitor;

impl Visitor<'_> for ScarabVisitor {
    type Value = ScarabId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 13-character Crockford base32 scarab ID or a u64")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScarabId, E> {
        Ok(ScarabId(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScarabId, E> {
        u64::try_from(v)
            .map(ScarabId)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ScarabId, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for ScarabId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ScarabId, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(ScarabVisitor)
        } else {
            deserializer.deserialize_u64(ScarabVisitor)
        }
    }
}

/// Issues strictly increasing [`ScarabId`]s for one node.
///
/// Internally the generator keeps a *logical clock*: the pair (millisecond,
/// sequence) of the last ID it issued, viewed as one 54-bit counter. Each
/// [`next`](ScarabGenerator::next) call issues the larger of
///
/// * the first sequence number of the wall-clock millisecond, and
/// * the successor of the last issued (millisecond, sequence),
///
/// which gives this policy:
///
/// * **Clock steps backwards** (NTP correction, VM migration): the generator
///   keeps issuing from the last millisecond it used, continuing its sequence,
///   until wall time catches up. The logical clock never goes backwards, so
///   IDs stay strictly increasing.
/// * **More than 8192 IDs in one millisecond**: the generator *borrows* the
///   next millisecond (sequence wraps to 0, millisecond + 1) instead of
///   waiting or blocking. Sustained over-issuing pushes the logical clock
///   ahead of wall time; [`ahead_by_ms`](ScarabGenerator::ahead_by_ms) shows by
///   how much, so operators can watch it. IDs stay unique and increasing, and
///   their embedded time is late by at most that amount.
/// * **Clock before [`EPOCH_UNIX_MS`]** or past the 41-bit range: an error, and
///   the generator's state is unchanged.
///
/// # Across restarts
///
/// A fresh generator knows nothing about IDs issued before a restart. IDs
/// issued after the restart are unique only if the wall clock, at restart,
/// reads later than the last ID issued before it (including any borrowed
/// milliseconds). If that cannot be guaranteed, persist the last issued ID
/// ([`last_issued`](ScarabGenerator::last_issued)) — or an upper bound of it,
/// e.g. via an [`Obelisk`](crate::obelisk)-style reservation — and start with
/// [`resume_after`](ScarabGenerator::resume_after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScarabGenerator {
    node: u16,
    /// Last issued (millis << 13 | sequence), or `None` before the first ID.
    last_tick: Option<u64>,
}

/// (millisecond, sequence) packed as one counter.
const MAX_TICK: u64 = (MAX_MILLIS << SEQUENCE_BITS) | MAX_SEQUENCE as u64;

impl ScarabGenerator {
    /// A generator for `node`, which must be at most [`MAX_NODE`] (1023).
    pub const fn new(node: u16) -> Result<ScarabGenerator, ScarabError> {
        if node > MAX_NODE {
            return Err(ScarabError::NodeOutOfRange { node });
        }
        Ok(ScarabGenerator {
            node,
            last_tick: None,
        })
    }

    /// A generator for `node` whose every ID is strictly greater than `last`
    /// (typically the last ID this node persisted before a restart).
    ///
    /// If `last` was issued by `node`, the generator continues right after
    /// it; if it came from another node, the generator continues in the
    /// millisecond after `last`'s, which is still strictly greater.
    pub const fn resume_after(node: u16, last: ScarabId) -> Result<ScarabGenerator, ScarabError> {
        if node > MAX_NODE {
            return Err(ScarabError::NodeOutOfRange { node });
        }
        let tick = if last.node() == node {
            (last.millis() << SEQUENCE_BITS) | last.sequence() as u64
        } else {
            (last.millis() << SEQUENCE_BITS) | MAX_SEQUENCE as u64
        };
        Ok(ScarabGenerator {
            node,
            last_tick: Some(tick),
        })
    }

    /// This generator's node number.
    pub const fn node(&self) -> u16 {
        self.node
    }

    /// The last ID issued (or resumed after), if any. Persist this to resume
    /// safely after a restart.
    pub const fn last_issued(&self) -> Option<ScarabId> {
        match self.last_tick {
            Some(tick) => Some(self.id_for_tick(tick)),
            None => None,
        }
    }

    #[inline]
    const fn id_for_tick(&self, tick: u64) -> ScarabId {
        let millis = tick >> SEQUENCE_BITS;
        let seq = tick & MAX_SEQUENCE as u64;
        ScarabId((millis << MILLIS_SHIFT) | ((self.node as u64) << NODE_SHIFT) | seq)
    }

    /// Issue the next ID, given the current wall-clock time in milliseconds
    /// since the Unix epoch. Strictly greater than every ID this generator
    /// issued before, whatever `now_unix_ms` does (see the type docs).
    ///
    /// On error nothing is issued and the state is unchanged.
    #[inline]
    pub fn next(&mut self, now_unix_ms: u64) -> Result<ScarabId, ScarabError> {
        let Some(now) = now_unix_ms.checked_sub(EPOCH_UNIX_MS) else {
            return Err(ScarabError::BeforeEpoch { now_unix_ms });
        };
        if now > MAX_MILLIS {
            return Err(ScarabError::Exhausted);
        }
        let wall_tick = now << SEQUENCE_BITS;
        let tick = match self.last_tick {
            Some(last) if last >= wall_tick => {
                if last == MAX_TICK {
                    return Err(ScarabError::Exhausted);
                }
                last + 1
            }
            _ => wall_tick,
        };
        self.last_tick = Some(tick);
        Ok(self.id_for_tick(tick))
    }

    /// How many milliseconds the logical clock (the millisecond of the last
    /// issued ID) is ahead of `now_unix_ms`; 0 when it is not ahead.
    ///
    /// Non-zero after the wall clock stepped backwards or after more than
    /// 8192 IDs per millisecond were requested (borrowing). It shrinks back
    /// to 0 as wall time catches up.
    pub const fn ahead_by_ms(&self, now_unix_ms: u64) -> u64 {
        match self.last_tick {
            Some(tick) => {
                let logical_unix = (tick >> SEQUENCE_BITS) + EPOCH_UNIX_MS;
                logical_unix.saturating_sub(now_unix_ms)
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;
    use proptest::prelude::*;

    const T0: u64 = EPOCH_UNIX_MS + 1_000_000;

    #[test]
    fn epoch_is_2025_01_01() {
        // 55 years (1970..2025) with 14 leap days (1972, 1976, ..., 2024).
        let days = 55 * 365 + 14;
        assert_eq!(EPOCH_UNIX_MS, days * 86_400_000);
    }

    #[test]
    fn parts_round_trip_at_extremes() {
        for &(ms, node, seq) in &[
            (0, 0, 0),
            (MAX_MILLIS, MAX_NODE, MAX_SEQUENCE),
            (12_345, 7, 8_000),
            (MAX_MILLIS, 0, 0),
        ] {
            let id = ScarabId::from_parts(ms, node, seq).unwrap();
            assert_eq!((id.millis(), id.node(), id.sequence()), (ms, node, seq));
            assert_eq!(id.unix_millis(), ms + EPOCH_UNIX_MS);
            assert_eq!(ScarabId::from_u64(id.as_u64()), id);
        }
        assert_eq!(
            ScarabId::from_parts(MAX_MILLIS, MAX_NODE, MAX_SEQUENCE).unwrap(),
            ScarabId::MAX
        );
    }

    #[test]
    fn from_parts_rejects_wide_fields() {
        assert_eq!(
            ScarabId::from_parts(MAX_MILLIS + 1, 0, 0),
            Err(ScarabError::MillisOutOfRange {
                millis: MAX_MILLIS + 1
            })
        );
        assert_eq!(
            ScarabId::from_parts(0, 1024, 0),
            Err(ScarabError::NodeOutOfRange { node: 1024 })
        );
        assert_eq!(
            ScarabId::from_parts(0, 0, 8192),
            Err(ScarabError::SequenceOutOfRange { sequence: 8192 })
        );
    }

    #[test]
    fn display_examples() {
        assert_eq!(ScarabId::MIN.to_string(), "0000000000000");
        assert_eq!(ScarabId::MAX.to_string(), "FZZZZZZZZZZZZ");
        assert_eq!(ScarabId::from_u64(32).to_string(), "0000000000010");
        assert_eq!("FZZZZZZZZZZZZ".parse::<ScarabId>().unwrap(), ScarabId::MAX);
        // Padding works through the formatter.
        assert_eq!(
            alloc::format!("[{:>15}]", ScarabId::MIN),
            "[  0000000000000]"
        );
    }

    #[test]
    fn parse_is_case_insensitive_with_aliases() {
        let id: ScarabId = "0ABCDEFGHJKMN".parse().unwrap();
        assert_eq!("0abcdefghjkmn".parse::<ScarabId>().unwrap(), id);
        assert_eq!(
            "0OIL000000000".parse::<ScarabId>().unwrap(),
            "0011000000000".parse::<ScarabId>().unwrap()
        );
        assert_eq!(
            "0o1l000000000".parse::<ScarabId>().unwrap(),
            "0011000000000".parse::<ScarabId>().unwrap()
        );
    }

    #[test]
    fn parse_errors_are_typed() {
        assert_eq!(
            "".parse::<ScarabId>(),
            Err(ParseScarabError::InvalidLength { len: 0 })
        );
        assert_eq!(
            "00000000000000".parse::<ScarabId>(),
            Err(ParseScarabError::InvalidLength { len: 14 })
        );
        assert_eq!(
            "000000U000000".parse::<ScarabId>(),
            Err(ParseScarabError::InvalidCharacter { index: 6, ch: 'U' })
        );
        assert_eq!(
            "00000000000é0".parse::<ScarabId>(),
            Err(ParseScarabError::InvalidCharacter {
                index: 11, ch: 'é'
            })
        );
        assert_eq!(
            "000000000000-".parse::<ScarabId>(),
            Err(ParseScarabError::InvalidCharacter { index: 12, ch: '-' })
        );
        assert_eq!(
            "G000000000000".parse::<ScarabId>(),
            Err(ParseScarabError::Overflow)
        );
        assert_eq!(
            "Z000000000000".parse::<ScarabId>(),
            Err(ParseScarabError::Overflow)
        );
    }

    #[test]
    fn serde_binary_is_u64_and_round_trips() {
        let id = ScarabId::from_parts(99, 3, 4).unwrap();
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&id.as_u64()).unwrap());
        assert_eq!(postcard::from_bytes::<ScarabId>(&bytes).unwrap(), id);
    }

    #[test]
    fn serde_human_readable_is_the_string() {
        let id = ScarabId::from_parts(99, 3, 4).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, alloc::format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ScarabId>(&json).unwrap(), id);
        // A bare integer is accepted too.
        let num = alloc::format!("{}", id.as_u64());
        assert_eq!(serde_json::from_str::<ScarabId>(&num).unwrap(), id);
        assert!(serde_json::from_str::<ScarabId>("\"nope\"").is_err());
        assert!(serde_json::from_str::<ScarabId>("-1").is_err());
    }

    #[test]
    fn new_rejects_wide_node() {
        assert_eq!(
            ScarabGenerator::new(1024),
            Err(ScarabError::NodeOutOfRange { node: 1024 })
        );
        assert!(ScarabGenerator::new(1023).is_ok());
        assert_eq!(
            ScarabGenerator::resume_after(4000, ScarabId::MIN),
            Err(ScarabError::NodeOutOfRange { node: 4000 })
        );
    }

    #[test]
    fn ids_carry_time_and_node() {
        let mut g = ScarabGenerator::new(42).unwrap();
        let a = g.next(T0).unwrap();
        assert_eq!(a.unix_millis(), T0);
        assert_eq!(a.node(), 42);
        assert_eq!(a.sequence(), 0);
        let b = g.next(T0).unwrap();
        assert_eq!((b.unix_millis(), b.sequence()), (T0, 1));
        let c = g.next(T0 + 5).unwrap();
        assert_eq!((c.unix_millis(), c.sequence()), (T0 + 5, 0));
        assert_eq!(g.last_issued(), Some(c));
        assert_eq!(g.ahead_by_ms(T0 + 5), 0);
    }

    #[test]
    fn backwards_clock_keeps_increasing() {
        let mut g = ScarabGenerator::new(1).unwrap();
        let a = g.next(T0 + 1_000).unwrap();
        let mut prev = a;
        // Clock jumps back by 900 ms and stays there for a while.
        for _ in 0..100 {
            let id = g.next(T0 + 100).unwrap();
            assert!(id > prev);
            assert_eq!(id.unix_millis(), T0 + 1_000, "stays in the last used ms");
            prev = id;
        }
        assert_eq!(g.ahead_by_ms(T0 + 100), 900);
        // Wall time catches up: back to real time, sequence reset.
        let id = g.next(T0 + 1_001).unwrap();
        assert!(id > prev);
        assert_eq!((id.unix_millis(), id.sequence()), (T0 + 1_001, 0));
        assert_eq!(g.ahead_by_ms(T0 + 1_001), 0);
    }

    #[test]
    fn borrowing_past_8192_per_ms() {
        let mut g = ScarabGenerator::new(9).unwrap();
        let n = 3 * SEQUENCES_PER_MS as usize + 10;
        let ids: Vec<ScarabId> = (0..n).map(|_| g.next(T0).unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids[8191].unix_millis(), T0);
        assert_eq!(ids[8191].sequence(), MAX_SEQUENCE);
        assert_eq!((ids[8192].unix_millis(), ids[8192].sequence()), (T0 + 1, 0));
        assert_eq!(ids[n - 1].unix_millis(), T0 + 3);
        assert_eq!(g.ahead_by_ms(T0), 3);
        // When wall time passes the borrowed ms, it takes over again.
        let id = g.next(T0 + 10).unwrap();
        assert_eq!((id.unix_millis(), id.sequence()), (T0 + 10, 0));
        assert_eq!(g.ahead_by_ms(T0 + 10), 0);
    }

    #[test]
    fn clock_range_errors_leave_state_alone() {
        let mut g = ScarabGenerator::new(0).unwrap();
        assert_eq!(
            g.next(EPOCH_UNIX_MS - 1),
            Err(ScarabError::BeforeEpoch {
                now_unix_ms: EPOCH_UNIX_MS - 1
            })
        );
        assert_eq!(
            g.next(EPOCH_UNIX_MS + MAX_MILLIS + 1),
            Err(ScarabError::Exhausted)
        );
        assert_eq!(g.next(u64::MAX), Err(ScarabError::Exhausted));
        assert_eq!(g.last_issued(), None);
        let first = g.next(EPOCH_UNIX_MS).unwrap();
        assert_eq!(first, ScarabId::MIN);
    }

    #[test]
    fn exhaustion_at_the_end_of_time() {
        let last_ms = EPOCH_UNIX_MS + MAX_MILLIS;
        let mut g =
            ScarabGenerator::resume_after(5, ScarabId::from_parts(MAX_MILLIS, 5, 8190).unwrap())
                .unwrap();
        let id = g.next(last_ms).unwrap();
        assert_eq!((id.millis(), id.sequence()), (MAX_MILLIS, MAX_SEQUENCE));
        assert_eq!(g.next(last_ms), Err(ScarabError::Exhausted));
        assert_eq!(g.last_issued(), Some(id));
    }

    #[test]
    fn resume_after_is_strictly_above() {
        let mut g = ScarabGenerator::new(3).unwrap();
        let last = (0..10_000).map(|_| g.next(T0).unwrap()).last().unwrap();
        // Restart with a clock that went back by a minute.
        let mut g2 = ScarabGenerator::resume_after(3, last).unwrap();
        let id = g2.next(T0 - 60_000).unwrap();
        assert!(id > last);
        assert_eq!(id.as_u64(), last.as_u64() + 1);
        // Resuming after another node's ID still lands strictly above it.
        let foreign = ScarabId::from_parts(500, 1023, 7).unwrap();
        let mut g3 = ScarabGenerator::resume_after(0, foreign).unwrap();
        let id = g3.next(EPOCH_UNIX_MS + 500).unwrap();
        assert!(id > foreign);
        assert_eq!(id.millis(), 501);
    }

    fn check_increasing(node: u16, times: &[u64]) -> Result<(), TestCaseError> {
        let mut g = ScarabGenerator::new(node).unwrap();
        let mut prev: Option<ScarabId> = None;
        for &t in times {
            let id = g.next(t).unwrap();
            prop_assert_eq!(id.node(), node);
            // The embedded time is never before the wall time passed in.
            prop_assert!(id.unix_millis() >= t);
            if let Some(p) = prev {
                prop_assert!(id > p, "{:?} !> {:?}", id, p);
            }
            prev = Some(id);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(raw in any::<u64>()) {
            let id = ScarabId::from_u64(raw);
            let s = id.to_string();
            prop_assert_eq!(s.len(), ENCODED_LEN);
            prop_assert_eq!(s.parse::<ScarabId>().unwrap(), id);
            prop_assert_eq!(s.to_ascii_lowercase().parse::<ScarabId>().unwrap(), id);
        }

        #[test]
        fn string_order_is_numeric_order(a in any::<u64>(), b in any::<u64>()) {
            let (sa, sb): (String, String) = (
                ScarabId::from_u64(a).to_string(),
                ScarabId::from_u64(b).to_string(),
            );
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<ScarabId>();
        }

        #[test]
        fn parts_round_trip(ms in 0..=MAX_MILLIS, node in 0..=MAX_NODE, seq in 0..=MAX_SEQUENCE) {
            let id = ScarabId::from_parts(ms, node, seq).unwrap();
            prop_assert_eq!((id.millis(), id.node(), id.sequence()), (ms, node, seq));
        }

        #[test]
        fn strictly_increasing_under_arbitrary_clocks(
            node in 0..=MAX_NODE,
            start in EPOCH_UNIX_MS..EPOCH_UNIX_MS + 1_000_000_000,
            steps in proptest::collection::vec((-2_000i64..2_000, 1usize..20_000), 1..12),
        ) {
            // Each step jumps the clock (forwards or backwards) and then
            // issues a burst of IDs at that reading, often > 8192 of them.
            let mut times = Vec::new();
            let mut t = start;
            for (delta, burst) in steps {
                t = t.saturating_add_signed(delta).max(EPOCH_UNIX_MS);
                times.extend(core::iter::repeat_n(t, burst));
            }
            check_increasing(node, &times)?;
        }

        #[test]
        fn strictly_increasing_under_random_readings(
            times in proptest::collection::vec(EPOCH_UNIX_MS..EPOCH_UNIX_MS + 50, 1..2_000),
        ) {
            check_increasing(7, &times)?;
        }
    }
}
