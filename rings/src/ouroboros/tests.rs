use super::*;

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
