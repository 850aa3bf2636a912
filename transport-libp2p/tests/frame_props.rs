//! Property tests of the frame decoder + envelope decoder on untrusted bytes:
//! never a panic, never a frame over the limit, valid frames round-trip
//! whatever the chunking.
//!
//! The default run is small (CI); the 1,000,000-case run is ignored:
//! `cargo test -p shen-transport-libp2p --release --test frame_props -- --ignored`.

use proptest::prelude::*;
use shen_rings::{Envelope, RingId};
use shen_transport_libp2p::frame::{encode_frame, FrameDecoder};

/// Feed `bytes` in chunks of the given sizes; decode every frame as an
/// envelope. Returns the envelopes decoded before the first error.
fn drive(bytes: &[u8], chunks: &[usize], limit: usize) -> Vec<Envelope> {
    let mut d = FrameDecoder::new(limit);
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks
            .get(i % chunks.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        i += 1;
        d.push(&rest[..n]);
        rest = &rest[n..];
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert!(f.len() <= limit);
                    match Envelope::from_frame(&f) {
                        Ok(e) => out.push(e),
                        Err(_) => return out,
                    }
                }
                Ok(None) => break,
                Err(_) => return out,
            }
        }
        assert!(d.buffered() <= limit + 4 + n);
    }
    out
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        0u16..4,
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(version, ring, payload)| Envelope {
            version,
            ring: RingId(ring),
            payload,
        })
}

fn garbage_case() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    (
        proptest::collection::vec(any::<u8>(), 0..256),
        proptest::collection::vec(1usize..40, 1..8),
    )
}

fn check_garbage(bytes: &[u8], chunks: &[usize]) {
    let _ = drive(bytes, chunks, 128);
    // A prefix announcing a plausible length followed by garbage.
    let mut framed = (bytes.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    let _ = drive(&framed, chunks, 1 << 20);
}

fn check_round_trip(envs: &[Envelope], chunks: &[usize]) {
    let mut wire = Vec::new();
    for e in envs {
        wire.extend(encode_frame(&e.to_frame().unwrap()).unwrap());
    }
    let got = drive(&wire, chunks, 1 << 20);
    let valid: Vec<Envelope> = envs
        .iter()
        .take_while(|e| {
            (shen_rings::wire::MIN_PROTOCOL_VERSION..=shen_rings::wire::PROTOCOL_VERSION)
                .contains(&e.version)
        })
        .cloned()
        .collect();
    assert_eq!(got, valid);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn garbage_never_panics((bytes, chunks) in garbage_case()) {
        check_garbage(&bytes, &chunks);
    }

    #[test]
    fn frames_round_trip_in_any_chunking(
        envs in proptest::collection::vec(envelope(), 0..8),
        chunks in proptest::collection::vec(1usize..50, 1..6),
    ) {
        check_round_trip(&envs, &chunks);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000_000, ..ProptestConfig::default() })]

    /// The fuzz-scale run (>= 1,000,000 cases); `--ignored`, in release.
    #[test]
    #[ignore = "fuzz-scale: run with --release -- --ignored"]
    fn garbage_never_panics_million((bytes, chunks) in garbage_case()) {
        check_garbage(&bytes, &chunks);
    }
}
