use super::*;
use crate::scarab::ScarabId;

#[test]
fn initial_table_gives_every_partition_rf_distinct_members() {
    let cfg = OuroborosConfig::default();
    let members: Vec<u64> = (0..5).collect();
    let t = initial_table(&cfg, &members);
    assert_eq!(t.chains.len(), cfg.partitions as usize);
    for c in &t.chains {
        assert_eq!(c.members.len(), cfg.rf);
        let distinct: BTreeSet<u64> = c.members.iter().copied().collect();
        assert_eq!(distinct.len(), cfg.rf);
        assert_eq!(c.epoch, Epoch::default());
    }
    // Every member heads some partition (placement spreads the heads).
    let heads: BTreeSet<u64> = t.chains.iter().map(|c| c.members[0]).collect();
    assert_eq!(heads.len(), 5);
    // The same list in another order gives the same table.
    let mut rev = members.clone();
    rev.reverse();
    assert_eq!(initial_table(&cfg, &rev), t);
}

/// Founding chains that fit the member list are the founding table (its
/// ballot the newest epoch, promised from the start); any that do not fit
/// leave Ankh's placement in place, and the error says why.
#[test]
fn founding_chains_replace_placement_only_when_they_fit() {
    let e = |g, s| Epoch {
        generation: g,
        sequence: s,
    };
    let chain = |g, m: &[u32]| FoundingChain {
        epoch: e(g, 1),
        members: m.to_vec(),
    };
    let members = [10u64, 20, 30];
    let base = OuroborosConfig {
        partitions: 2,
        ..OuroborosConfig::default()
    };
    let ankh = initial_table(&base, &members);
    let good = OuroborosConfig {
        founding_chains: vec![chain(5, &[2, 0]), chain(7, &[1])],
        ..base.clone()
    };
    let t = initial_table(&good, &members);
    assert_eq!(t.chains[0].members, vec![30, 10]);
    assert_eq!(t.chains[1].members, vec![20]);
    assert_eq!((t.chains[0].epoch, t.ballot), (e(5, 1), e(7, 1)));
    assert_eq!(t.members, ankh.members);
    let o = Ouroboros::new(&members, good, false);
    assert_eq!(o.table(), &t);
    assert_eq!(o.promised, e(7, 1));
    for (chains, why) in [
        (
            vec![chain(5, &[0])],
            "1 chains for 2 partitions (want one per partition)",
        ),
        (
            vec![chain(5, &[0]), chain(5, &[])],
            "partition 1's chain has no member",
        ),
        (
            vec![chain(5, &[0]), chain(5, &[3])],
            "partition 1's chain names node 3, of 3 nodes",
        ),
        (
            vec![chain(5, &[1, 1]), chain(5, &[0])],
            "partition 0's chain names a node twice",
        ),
    ] {
        assert_eq!(
            founding_chains_error(&chains, 2, 3).as_deref(),
            Some(why),
            "{chains:?}"
        );
        let cfg = OuroborosConfig {
            founding_chains: chains,
            ..base.clone()
        };
        assert_eq!(initial_table(&cfg, &members), ankh, "{why}");
    }
}

#[test]
fn small_clusters_get_shorter_chains() {
    let cfg = OuroborosConfig::default();
    let t = initial_table(&cfg, &[7u64, 9]);
    assert!(t.chains.iter().all(|c| c.members.len() == 2));
}

#[test]
fn keys_map_into_range() {
    for k in 0u64..1000 {
        assert!(partition_of_key(&k.to_be_bytes(), 64) < 64);
    }
    assert_eq!(partition_of_key(b"x", 1), 0);
}

#[test]
fn config_validation_names_the_field() {
    let bad = OuroborosConfig {
        rf: 0,
        ..OuroborosConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().0, "rf");
    let bad = OuroborosConfig {
        partitions: 0,
        ..OuroborosConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().0, "partitions");
    assert!(OuroborosConfig::default().validate().is_ok());
}

#[test]
fn errors_explain_themselves() {
    let e: LogError<u64> = LogError::Timeout;
    assert!(alloc::format!("{e}").contains("outcome unknown"));
    let e: LogError<u64> = LogError::NotHead { head: Some(3) };
    assert!(alloc::format!("{e}").contains("head"));
}

#[test]
fn scarab_ids_carry_the_partition_and_increase_even_when_the_clock_goes_back() {
    let t0 = EPOCH_UNIX_MS + 10_000;
    let a = next_scarab(None, 5, t0);
    assert_eq!(ScarabId::from_u64(a).node(), 5);
    assert_eq!(ScarabId::from_u64(a).unix_millis(), t0);
    // A new head whose clock is 3 s behind still issues a larger ID.
    let b = next_scarab(Some(a), 5, t0 - 3_000);
    assert!(b > a);
    assert_eq!(ScarabId::from_u64(b).node(), 5);
    // Same millisecond: the sequence moves on.
    let c = next_scarab(Some(b), 5, t0);
    assert!(c > b);
    // A clock before the Scarab epoch is clamped, never an error.
    let d = next_scarab(None, 1023, 0);
    assert_eq!(ScarabId::from_u64(d).node(), 1023);
    // A full millisecond (8192 IDs) borrows from the next one and keeps the
    // partition in the node field.
    let mut last = next_scarab(None, 7, t0);
    for _ in 0..10_000 {
        let n = next_scarab(Some(last), 7, t0);
        assert!(n > last);
        assert_eq!(ScarabId::from_u64(n).node(), 7);
        last = n;
    }
}

#[test]
fn more_than_1024_partitions_is_refused() {
    let bad = OuroborosConfig {
        partitions: 1025,
        ..OuroborosConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().0, "partitions");
}

/// Keys and payloads are (de)serialized as bytes (`serde_bytes`: one copy
/// instead of a visit per byte), which postcard encodes exactly as it
/// encoded the `Vec<u8>` sequences before: same wire, same disk format.
#[test]
fn byte_fields_keep_their_postcard_encoding() {
    #[derive(serde::Serialize)]
    struct Before {
        id: u64,
        epoch: Epoch,
        origin: u64,
        req: u64,
        key: Vec<u8>,
        data: Vec<u8>,
        txn: Option<TxnMark>,
        producer: Option<Producer>,
    }
    let key = b"some-key".to_vec();
    let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
    let e = Entry {
        id: 77,
        epoch: Epoch::default(),
        origin: 5u64,
        req: 9,
        key: key.clone(),
        data: data.clone(),
        txn: None,
        producer: Some(Producer { id: 3, seq: 4 }),
    };
    let b = Before {
        id: 77,
        epoch: Epoch::default(),
        origin: 5,
        req: 9,
        key,
        data,
        txn: None,
        producer: Some(Producer { id: 3, seq: 4 }),
    };
    let now = postcard::to_allocvec(&e).unwrap();
    assert_eq!(now, postcard::to_allocvec(&b).unwrap());
    let back: Entry<u64> = postcard::from_bytes(&now).unwrap();
    assert_eq!(back, e);
}
