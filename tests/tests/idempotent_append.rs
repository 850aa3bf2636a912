//! Real processes: an append retried with the same producer id and sequence after its partition's head was killed (`kill -9`) is stored once.
#![cfg(unix)]

use std::time::Duration;

use shen_client::ShenClient;
use shen_tests::{status, wait_for, NodeProc};

fn start(dir: &std::path::Path, peer: Option<&str>, expect: usize) -> NodeProc {
    let n = expect.to_string();
    let mut args = vec![
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--admin",
        "127.0.0.1:0",
        "--no-mdns",
        "--bootstrap-expect",
        &n,
    ];
    if let Some(p) = peer {
        args.push("--peer");
        args.push(p);
    }
    NodeProc::start(&[], dir, &args)
}

fn formed(admin: &str) -> bool {
    status(admin).is_some_and(|v| v["log"]["formed"] == true && v["log"]["recovered"] == true)
}

#[test]
fn a_retry_after_the_head_was_killed_is_stored_once() {
    const N: usize = 3;
    let root = tempfile::tempdir().unwrap();
    let mut nodes = vec![start(&root.path().join("n0"), None, N)];
    let info0 = nodes[0].info(Duration::from_secs(20));
    let seed = format!("{}/p2p/{}", info0.listen_addrs[0], info0.peer_id);
    for i in 1..N {
        nodes.push(start(&root.path().join(format!("n{i}")), Some(&seed), N));
    }
    let infos: Vec<_> = nodes
        .iter()
        .map(|n| n.info(Duration::from_secs(20)))
        .collect();
    wait_for("the log to form", Duration::from_secs(60), || {
        infos.iter().all(|i| formed(&i.admin)).then_some(())
    });
    let key = b"order-17";
    let first = ShenClient::new(infos[0].admin.clone()).with_producer(77, 1);
    let a = first.append_with(key, b"paid", 1).unwrap();
    // Kill the partition's head; retry through a survivor, same producer
    // and sequence (as after a timeout whose outcome was unknown).
    let st = status(&infos[0].admin).unwrap();
    let head = st["log"]["chains"][a.partition as usize]["members"][0]
        .as_str()
        .unwrap()
        .to_string();
    let h = infos.iter().position(|i| i.peer_id == head).unwrap();
    drop(nodes.remove(h));
    let other = &infos[(h + 1) % N];
    let retry = ShenClient::new(other.admin.clone())
        .with_producer(77, 1)
        .with_retry_for(Duration::from_secs(60));
    let b = retry.append_with(key, b"paid", 1).unwrap();
    assert_eq!((b.partition, b.offset, b.id), (a.partition, a.offset, a.id));
    let recs = retry.read_key(key, 0, 100).unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(
        (recs[0].key.as_slice(), recs[0].data.as_slice()),
        (&key[..], &b"paid"[..])
    );
    // A new sequence is a new record.
    let c = retry.append_with(key, b"shipped", 2).unwrap();
    assert_eq!(c.offset, a.offset + 1);
    assert_eq!(retry.read_key(key, 0, 100).unwrap().len(), 2);
}
