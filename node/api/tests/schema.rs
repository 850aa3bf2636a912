//! Pins the exact JSON of every admin API document: a change here is a change of the wire format.

use serde::{de::DeserializeOwned, Serialize};
use shen_api::*;

/// `doc` encodes to exactly the fields and values of `json`, and `json`
/// decodes back to `doc`.
fn pinned<T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug>(doc: &T, json: &str) {
    let want: serde_json::Value = serde_json::from_str(json).expect("test JSON parses");
    assert_eq!(serde_json::to_value(doc).unwrap(), want);
    assert_eq!(&serde_json::from_str::<T>(json).unwrap(), doc);
}

fn chain() -> ChainDoc {
    ChainDoc {
        partition: 0,
        epoch: "3.1".into(),
        members: vec!["peer-a".into(), "peer-b".into()],
        learners: vec![],
        here: true,
        local_len: 5,
        committed: 4,
        low_watermark: 2,
        high_watermark: 5,
        held_bytes: 300,
        disk_bytes: Some(4096),
    }
}

fn formed_log() -> LogDoc {
    LogDoc {
        formed: true,
        expect: Some(3),
        recovered: Some(true),
        restored: Some(false),
        fsync: Some("batch".into()),
        storage_failed: Some(false),
        storage_error: None,
        members: vec!["peer-a".into(), "peer-b".into(), "peer-c".into()],
        members_version: Some(2),
        leaving: vec!["peer-c".into()],
        member: Some(true),
        pending_changes: Vec::new(),
        shares: vec![ShareDoc {
            id: "peer-a".into(),
            replicas: 1,
            heads: 1,
            learning: 0,
            share: 0.5,
        }],
        rebalance: Some(RebalanceDoc {
            moving: 1,
            ..RebalanceDoc::default()
        }),
        partitions: Some(1),
        rf: Some(2),
        table_ballot: Some("3.0".into()),
        chains: vec![chain()],
        stats: Some(LogStatsDoc {
            head_appends: 7,
            ..LogStatsDoc::default()
        }),
    }
}

#[test]
fn a_chain_from_an_older_node_reads_with_watermarks_defaulted() {
    let old = r#"{"partition":1,"epoch":"1.0","members":["a"],"learners":[],"here":true,"local_len":9,"committed":9}"#;
    let c: ChainDoc = serde_json::from_str(old).unwrap();
    assert_eq!((c.local_len, c.low_watermark, c.high_watermark), (9, 0, 0));
    assert_eq!(c.disk_bytes, None);
}

#[test]
fn status_document() {
    let doc = StatusDoc {
        schema: STATUS_SCHEMA,
        peer_id: "peer-a".into(),
        health: Some(ClusterHealth::Degraded),
        health_reasons: vec!["a member is suspected".into()],
        live_members: Some(2),
        view_hash: Some("00000000deadbeef".into()),
        incarnation: Some(4),
        members: Some(vec![MemberDoc {
            id: "peer-b".into(),
            is_self: false,
            status: MemberStatus::Suspect,
            incarnation: 1,
            suspectors: 1,
            phi: Some(8.5),
            ownership: None,
        }]),
        rings: vec!["sundial".into(), "ouroboros".into()],
        ankh: Some(AnkhDoc {
            vnodes: 160,
            members: 2,
        }),
        sundial: Some(SundialStatsDoc {
            suspicions_raised: 1,
            refutations: 0,
            foreign_dropped: 0,
        }),
        log: formed_log(),
        net: NetDoc {
            peer_id: "peer-a".into(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            external_addrs: vec![],
            connected: vec!["peer-b".into()],
            private: false,
            uptime_s: 1.5,
            reachability: "private".into(),
            peers: vec![PeerConnDoc {
                peer_id: "peer-b".into(),
                kind: "relayed".into(),
            }],
            relays: vec!["peer-b".into()],
        },
    };
    pinned(
        &doc,
        r#"{"schema":1,"peer_id":"peer-a","health":"degraded","health_reasons":["a member is suspected"],"live_members":2,
        "view_hash":"00000000deadbeef","incarnation":4,
        "members":[{"id":"peer-b","self":false,"status":"suspect","incarnation":1,"suspectors":1,"phi":8.5,"ownership":null}],
        "rings":["sundial","ouroboros"],"ankh":{"vnodes":160,"members":2},
        "sundial":{"suspicions_raised":1,"refutations":0,"foreign_dropped":0},
        "log":{"formed":true,"expect":3,"recovered":true,"restored":false,"fsync":"batch","storage_failed":false,
          "members":["peer-a","peer-b","peer-c"],"members_version":2,"leaving":["peer-c"],"member":true,
          "shares":[{"id":"peer-a","replicas":1,"heads":1,"learning":0,"share":0.5}],
          "rebalance":{"moving":1,"learning_here":0,"records_behind":0,"bytes_done":0,"bytes_remaining":0},
          "partitions":1,"rf":2,"table_ballot":"3.0",
          "chains":[{"partition":0,"epoch":"3.1","members":["peer-a","peer-b"],"learners":[],"here":true,"local_len":5,"committed":4,"low_watermark":2,"high_watermark":5,"held_bytes":300,"disk_bytes":4096}],
          "stats":{"head_appends":7,"deduplicated":0,"epoch_rejects":0,"truncations":0,"tables":0,"slow_marked":0,"unsealed":0,"txn_committed":0,"txn_aborted":0,"txn_resolved":0}},
        "net":{"peer_id":"peer-a","listen_addrs":["/ip4/127.0.0.1/tcp/4001"],"external_addrs":[],"connected":["peer-b"],"private":false,"uptime_s":1.5,
          "reachability":"private","peers":[{"peer_id":"peer-b","kind":"relayed"}],"relays":["peer-b"]}}"#,
    );
    assert_eq!(doc.members().len(), 1);
}

#[test]
fn status_of_a_node_without_membership_or_log() {
    let doc = StatusDoc {
        schema: 1,
        peer_id: "p".into(),
        health: None,
        health_reasons: vec![],
        live_members: None,
        view_hash: None,
        incarnation: None,
        members: None,
        rings: vec![],
        ankh: None,
        sundial: None,
        log: LogDoc::not_formed(None),
        net: NetDoc::default(),
    };
    pinned(
        &doc,
        r#"{"schema":1,"peer_id":"p","rings":[],"log":{"formed":false,"expect":null},
        "net":{"peer_id":"","listen_addrs":[],"external_addrs":[],"connected":[],"private":false,"uptime_s":0.0,"reachability":"","peers":[],"relays":[]}}"#,
    );
    assert!(doc.members().is_empty());
}

#[test]
fn a_node_whose_storage_failed_says_why() {
    let mut log = formed_log();
    log.storage_failed = Some(true);
    log.storage_error = Some("ouroboros-wal: No space left on device (os error 28)".into());
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        text.contains(r#""storage_failed":true,"storage_error":"ouroboros-wal: No space left on device (os error 28)""#),
        "{text}"
    );
    // An older document without the reason still reads.
    let old: LogDoc =
        serde_json::from_str(r#"{"formed":true,"expect":3,"storage_failed":true}"#).unwrap();
    assert_eq!(old.storage_error, None);
    let doc: StatusDoc =
        serde_json::from_str(r#"{"schema":1,"peer_id":"p","health":"ok","log":{"formed":false}}"#)
            .unwrap();
    assert!(doc.health_reasons.is_empty());
}

#[test]
fn log_documents() {
    pinned(
        &AppendReply {
            partition: 3,
            offset: 9,
            id: "42".into(),
        },
        r#"{"partition":3,"offset":9,"id":"42"}"#,
    );
    let mut text = RecordDoc {
        offset: 1,
        id: "7".into(),
        origin: "peer-a".into(),
        req: 2,
        key: None,
        key_hex: None,
        data: None,
        data_hex: None,
    };
    text.set_payload(b"hi");
    let mut bin = text.clone();
    bin.set_payload(&[0xff, 0x00]);
    pinned(
        &ReadReply {
            partition: 3,
            from: 1,
            committed: 2,
            records: vec![text.clone(), bin.clone()],
        },
        r#"{"partition":3,"from":1,"committed":2,"records":[
          {"offset":1,"id":"7","origin":"peer-a","req":2,"data":"hi"},
          {"offset":1,"id":"7","origin":"peer-a","req":2,"data_hex":"ff00"}]}"#,
    );
    assert_eq!(text.payload().unwrap(), b"hi");
    assert_eq!(bin.payload().unwrap(), vec![0xff, 0]);
    // Keys are returned: UTF-8 as `key`, other bytes as `key_hex`; a record
    // without either (an older node) still decodes, keyless.
    let mut keyed = text.clone();
    keyed.set_key(b"user-1");
    let mut bin_key = bin.clone();
    bin_key.set_key(&[0x00, 0xfe]);
    pinned(
        &vec![keyed.clone(), bin_key.clone()],
        r#"[{"offset":1,"id":"7","origin":"peer-a","req":2,"key":"user-1","data":"hi"},
          {"offset":1,"id":"7","origin":"peer-a","req":2,"key_hex":"00fe","data_hex":"ff00"}]"#,
    );
    assert_eq!(keyed.key_bytes().unwrap(), Some(b"user-1".to_vec()));
    assert_eq!(bin_key.key_bytes().unwrap(), Some(vec![0, 0xfe]));
    assert_eq!(text.key_bytes().unwrap(), None);
    keyed.key_hex = Some("00".into());
    assert!(keyed.key_bytes().is_err());
    pinned(
        &TxnRequest {
            records: vec![
                TxnRecord {
                    key: "a".into(),
                    data: Some("-1".into()),
                    data_hex: None,
                },
                TxnRecord::bytes("b", b"+1"),
            ],
        },
        r#"{"records":[{"key":"a","data":"-1"},{"key":"b","data_hex":"2b31"}]}"#,
    );
    pinned(
        &TxnReply {
            committed: true,
            records: vec![AppendReply {
                partition: 0,
                offset: 0,
                id: "1".into(),
            }],
        },
        r#"{"committed":true,"records":[{"partition":0,"offset":0,"id":"1"}]}"#,
    );
    pinned(
        &TokenReply {
            id: 5,
            fencing: "2.7".into(),
            wait_ms: 0.5,
        },
        r#"{"id":5,"fencing":"2.7","wait_ms":0.5}"#,
    );
    pinned(
        &NodeInfo {
            peer_id: "p".into(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
            admin: "127.0.0.1:7600".into(),
            pid: 9,
        },
        r#"{"peer_id":"p","listen_addrs":["/ip4/127.0.0.1/tcp/1"],"admin":"127.0.0.1:7600","pid":9}"#,
    );
    pinned(
        &EventLine {
            time_ms: 1200,
            name: "sundial.suspected".into(),
            event: serde_json::json!({"Sundial": {"Suspected": {"member": "b"}}}),
        },
        r#"{"time_ms":1200,"name":"sundial.suspected","event":{"Sundial":{"Suspected":{"member":"b"}}}}"#,
    );
    pinned(
        &Ready {
            ready: false,
            reasons: vec!["the log has not formed".into()],
        },
        r#"{"ready":false,"reasons":["the log has not formed"]}"#,
    );
}

#[test]
fn errors_and_their_kinds() {
    pinned(
        &ErrorBody::new(ErrorKind::NotHead, "not the head"),
        r#"{"error":"not the head","kind":"not_head","retryable":true}"#,
    );
    let mut aborted = ErrorBody::new(ErrorKind::Aborted, "a record could not be written");
    aborted.committed = Some(false);
    pinned(
        &aborted,
        r#"{"error":"a record could not be written","kind":"aborted","retryable":true,"committed":false}"#,
    );
    // A newer node's kind still decodes; a document without `retryable`
    // (older nodes) too.
    let e: ErrorBody = serde_json::from_str(r#"{"error":"x","kind":"brand_new"}"#).unwrap();
    assert_eq!((e.kind, e.retryable), (ErrorKind::Unknown, false));
    let table = [
        (ErrorKind::NotHead, 503, true),
        (ErrorKind::NotFormed, 503, true),
        (ErrorKind::TimeoutOutcomeUnknown, 504, true),
        (ErrorKind::BadRequest, 400, false),
        (ErrorKind::BadPartition, 400, false),
        (ErrorKind::TooLarge, 413, false),
        (ErrorKind::UnsupportedMediaType, 415, false),
        (ErrorKind::Aborted, 409, true),
        (ErrorKind::StaleSequence, 409, false),
        (ErrorKind::NotFound, 404, false),
        (ErrorKind::Internal, 500, false),
        (ErrorKind::OffsetOutOfRange, 416, false),
    ];
    for (kind, status, retry) in table {
        assert_eq!(
            (kind.http_status(), kind.retryable()),
            (status, retry),
            "{kind:?}"
        );
    }
}

#[test]
fn transaction_requests_are_checked() {
    let ok: TxnRequest = serde_json::from_str(
        r#"{"records":[{"key":"a","data":"x"},{"key":"b","data_hex":"00ff"}]}"#,
    )
    .unwrap();
    assert_eq!(
        ok.decode().unwrap(),
        vec![
            (b"a".to_vec(), b"x".to_vec()),
            (b"b".to_vec(), vec![0, 255])
        ]
    );
    for bad in [
        r#"{"records":[]}"#,
        r#"{"records":[{"key":"a"}]}"#,
        r#"{"records":[{"key":"a","data":"x","data_hex":"00"}]}"#,
        r#"{"records":[{"key":"a","data_hex":"+f+f"}]}"#,
        r#"{"records":[{"key":"a","data_hex":"f"}]}"#,
    ] {
        let r: TxnRequest = serde_json::from_str(bad).unwrap();
        assert!(r.decode().is_err(), "{bad}");
    }
    // Unknown fields are refused, not ignored.
    assert!(serde_json::from_str::<TxnRequest>(r#"{"records":[],"extra":1}"#).is_err());
    let many = TxnRequest {
        records: (0..=MAX_TXN_RECORDS)
            .map(|i| TxnRecord::bytes(i.to_string(), b""))
            .collect(),
    };
    assert!(many.decode().unwrap_err().contains("1 to 256"));
}

#[test]
fn hex_is_strict() {
    assert_eq!(hex_decode("0f0F").unwrap(), vec![0x0f, 0x0f]);
    for bad in ["+f+f", "f", " 0f", "0x0f", "zz"] {
        assert!(hex_decode(bad).is_err(), "{bad}");
    }
    assert_eq!(hex_encode(&[0xab, 1]), "ab01");
}

/// A `/status` from a node older than the NAT fields (no reachability,
/// peers or relays) still reads, with those fields empty.
#[test]
fn status_without_nat_fields_reads() {
    let doc: StatusDoc = serde_json::from_str(
        r#"{"schema":1,"peer_id":"p","rings":[],"log":{"formed":false,"expect":null},
        "net":{"peer_id":"p","listen_addrs":[],"external_addrs":[],"connected":["q"],"private":false,"uptime_s":2.0}}"#,
    )
    .unwrap();
    assert_eq!(doc.net.connected, vec!["q".to_string()]);
    assert!(
        doc.net.reachability.is_empty() && doc.net.peers.is_empty() && doc.net.relays.is_empty()
    );
}

#[test]
fn member_documents_round_trip_and_name_their_fields() {
    let req = MemberRequest {
        op: MemberOp::Remove,
        node: Some("peer-b".into()),
        force: false,
    };
    let text = serde_json::to_string(&req).unwrap();
    assert_eq!(text, r#"{"op":"remove","node":"peer-b"}"#);
    assert_eq!(serde_json::from_str::<MemberRequest>(&text).unwrap(), req);
    let leave: MemberRequest = serde_json::from_str(r#"{"op":"leave"}"#).unwrap();
    assert_eq!(
        (leave.op, leave.node, leave.force),
        (MemberOp::Leave, None, false)
    );
    let forced: MemberRequest = serde_json::from_str(r#"{"op":"leave","force":true}"#).unwrap();
    assert!(forced.force);
    // Unknown ops and fields are refused.
    assert!(serde_json::from_str::<MemberRequest>(r#"{"op":"evict"}"#).is_err());
    assert!(serde_json::from_str::<MemberRequest>(r#"{"op":"leave","hard":true}"#).is_err());
    // An older node's log section (no member set fields) still reads.
    let old: LogDoc = serde_json::from_str(r#"{"formed":true,"members":["a"]}"#).unwrap();
    assert_eq!(
        (old.members_version, old.leaving.len(), old.rebalance),
        (None, 0, None)
    );
}
