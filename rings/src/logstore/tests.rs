use super::*;
use alloc::vec;
use proptest::prelude::*;

fn rec(i: u64) -> Vec<u8> {
    let mut r = i.to_le_bytes().to_vec();
    r.resize(8 + (i % 5) as usize, 0xab);
    r
}

#[test]
fn offsets_are_dense_and_reads_return_records() {
    let mut log = MemoryLog::new();
    for i in 0..10 {
        assert_eq!(log.append(&rec(i)).unwrap(), i);
    }
    assert_eq!(log.next_offset(), 10);
    assert_eq!(log.durable_offset(), 0);
    for i in 0..10 {
        assert_eq!(log.read(i).unwrap(), Some(rec(i)));
    }
    assert_eq!(log.read(10).unwrap(), None);
    assert_eq!(log.read(u64::MAX).unwrap(), None);
}

#[test]
fn empty_records_are_allowed() {
    let mut log = MemoryLog::new();
    assert_eq!(log.append(b"").unwrap(), 0);
    assert_eq!(log.read(0).unwrap(), Some(vec![]));
}

#[test]
fn record_limit() {
    let mut log = MemoryLog::new();
    let max = vec![7u8; MAX_RECORD_LEN];
    assert_eq!(log.append(&max).unwrap(), 0);
    let too_big = vec![7u8; MAX_RECORD_LEN + 1];
    assert_eq!(
        log.append(&too_big),
        Err(MemoryLogError::RecordTooLarge(RecordTooLarge {
            len: MAX_RECORD_LEN + 1,
            max: MAX_RECORD_LEN
        }))
    );
    assert_eq!(log.next_offset(), 1);
    assert!(check_record_len(MAX_RECORD_LEN).is_ok());
}

#[test]
fn crash_loses_exactly_the_unsynced_records() {
    let mut log = MemoryLog::new();
    for i in 0..3 {
        log.append(&rec(i)).unwrap();
    }
    log.sync().unwrap();
    assert_eq!(log.durable_offset(), 3);
    for i in 3..6 {
        log.append(&rec(i)).unwrap();
    }
    assert_eq!(log.unsynced(), 3);

    let mut kept = log.clone();
    kept.crash(true);
    assert_eq!(kept.next_offset(), 6);
    assert_eq!(kept.durable_offset(), 6);

    let mut partial = log.clone();
    partial.crash_keeping(2);
    assert_eq!(partial.next_offset(), 5);
    assert_eq!(partial.read(4).unwrap(), Some(rec(4)));

    log.crash(false);
    assert_eq!(log.next_offset(), 3);
    assert_eq!(log.durable_offset(), 3);
    assert_eq!(log.read(2).unwrap(), Some(rec(2)));
    assert_eq!(log.read(3).unwrap(), None);
    // Offsets continue densely after the crash.
    assert_eq!(log.append(b"x").unwrap(), 3);
}

#[test]
fn truncate_from_discards_the_suffix_and_reuses_offsets() {
    let mut log = MemoryLog::new();
    for i in 0..5 {
        log.append(&rec(i)).unwrap();
    }
    log.sync().unwrap();
    log.append(&rec(5)).unwrap();
    log.truncate_from(7).unwrap(); // past the end: no-op
    assert_eq!(log.next_offset(), 6);
    log.truncate_from(3).unwrap();
    assert_eq!(log.next_offset(), 3);
    assert_eq!(log.durable_offset(), 3);
    assert_eq!(log.read(3).unwrap(), None);
    assert_eq!(log.append(b"new").unwrap(), 3);
    log.crash(false);
    assert_eq!(log.next_offset(), 3, "truncated records never come back");
    log.truncate_from(0).unwrap();
    assert_eq!(log.next_offset(), 0);
}

#[test]
fn failed_sync_makes_nothing_durable() {
    let mut log = MemoryLog::new();
    log.append(b"a").unwrap();
    log.set_fail_syncs(true);
    assert_eq!(log.sync(), Err(MemoryLogError::InjectedSyncFailure));
    assert_eq!(log.durable_offset(), 0);
    log.set_fail_syncs(false);
    log.sync().unwrap();
    assert_eq!(log.durable_offset(), 1);
    assert_eq!(log.sync_count(), 1);
}

#[test]
fn works_through_a_mutable_reference() {
    fn fill(mut store: impl LogStore) {
        store.append(b"r").unwrap();
        store.sync().unwrap();
    }
    let mut log = MemoryLog::new();
    fill(&mut log);
    assert_eq!(log.durable_offset(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Sync,
    Crash(Option<u64>),
    Truncate(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(Op::Append),
        2 => Just(Op::Sync),
        1 => proptest::option::of(0u64..4).prop_map(Op::Crash),
        1 => (0u64..40).prop_map(Op::Truncate),
    ]
}

proptest! {
    /// Random appends, syncs, crashes (keeping none, some or all un-synced
    /// records) and truncations: offsets stay dense, a synced record is
    /// never lost or changed, the log is always a prefix of the model.
    #[test]
    fn crashes_never_lose_synced_records(ops in proptest::collection::vec(op(), 0..80)) {
        let mut log = MemoryLog::new();
        // Every record appended and not truncated away, in offset order.
        let mut model: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            match op {
                Op::Append(r) => {
                    let off = log.append(&r).unwrap();
                    prop_assert_eq!(off, model.len() as u64);
                    model.push(r);
                }
                Op::Sync => {
                    log.sync().unwrap();
                    prop_assert_eq!(log.durable_offset(), log.next_offset());
                }
                Op::Crash(keep) => {
                    let durable = log.durable_offset();
                    match keep {
                        None => log.crash(false),
                        Some(3) => log.crash(true),
                        Some(k) => log.crash_keeping(k),
                    }
                    prop_assert!(log.next_offset() >= durable, "a synced record was lost");
                    prop_assert!(log.next_offset() <= model.len() as u64);
                    model.truncate(log.next_offset() as usize);
                    prop_assert_eq!(log.durable_offset(), log.next_offset());
                }
                Op::Truncate(o) => {
                    log.truncate_from(o).unwrap();
                    model.truncate(model.len().min(o as usize));
                }
            }
            prop_assert!(log.durable_offset() <= log.next_offset());
            prop_assert_eq!(log.next_offset(), model.len() as u64);
            for (i, r) in model.iter().enumerate() {
                let got = log.read(i as u64).unwrap();
                prop_assert_eq!(got.as_ref(), Some(r), "offset {}", i);
            }
            prop_assert_eq!(log.read(model.len() as u64).unwrap(), None);
        }
    }
}

#[test]
fn trimming_drops_whole_segments_and_keeps_offsets() {
    let mut log = MemoryLog::new();
    for i in 0..40 {
        log.append(&rec(i)).unwrap();
    }
    assert_eq!(log.segment_starts(), vec![0, 16, 32]);
    log.trim_before(20).unwrap();
    assert_eq!(log.first_offset(), 16);
    assert_eq!(log.read(15).unwrap(), None);
    assert_eq!(log.read(16).unwrap(), Some(rec(16)));
    assert_eq!(log.next_offset(), 40);
    // The segment being written stays.
    log.trim_before(1000).unwrap();
    assert_eq!(log.first_offset(), 32);
    assert_eq!(log.read(39).unwrap(), Some(rec(39)));
    log.reset_at(100).unwrap();
    assert_eq!((log.first_offset(), log.next_offset()), (100, 100));
    assert_eq!(log.append(b"x").unwrap(), 100);
    log.truncate_from(50).unwrap();
    assert_eq!(log.next_offset(), 100);
}
