//! The admin API speaks real HTTP/1.1 to ordinary clients: keep-alive, chunked bodies, `Expect: 100-continue`, health routes, CORS, SSE ids, JSON errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use shen_tests::{status, wait_for, NodeProc};

/// One answer read off a connection: status code, lower-cased head, body.
struct Answer {
    code: u16,
    head: String,
    body: String,
}

fn read_answer(r: &mut BufReader<TcpStream>) -> Answer {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "connection closed mid-head: {head}"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let code: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let lower = head.to_ascii_lowercase();
    let len = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap());
    let mut body = vec![0; len.unwrap_or(0)];
    r.read_exact(&mut body).unwrap();
    Answer {
        code,
        head: lower,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn connect(admin: &str) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn json(a: &Answer) -> serde_json::Value {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", a.body))
}

#[test]
fn the_admin_api_speaks_http_1_1() {
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProc::start(
        &[],
        tmp.path(),
        &[
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--admin",
            "127.0.0.1:0",
            "--no-mdns",
            "--bootstrap-expect",
            "1",
        ],
    );
    let admin = node.info(Duration::from_secs(30)).admin;

    // Keep-alive by default: three requests, one connection, no headers asked.
    let (mut s, mut r) = connect(&admin);
    for path in ["/healthz", "/status", "/no-such-route"] {
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let a = read_answer(&mut r);
        match path {
            "/healthz" => {
                assert_eq!(a.code, 200);
                assert_eq!(json(&a)["alive"], true);
            }
            "/status" => {
                assert_eq!(a.code, 200);
                assert_eq!(json(&a)["schema"], 1);
            }
            _ => {
                assert_eq!(a.code, 404);
                assert_eq!(json(&a)["kind"], "not_found");
            }
        }
        assert!(!a.head.contains("connection: close"), "{}", a.head);
    }

    // Ready once the one-node log formed.
    wait_for("the log to form", Duration::from_secs(60), || {
        status(&admin).filter(|v| v["log"]["formed"] == true && v["log"]["recovered"] == true)
    });
    let ready = wait_for("/readyz to say ready", Duration::from_secs(30), || {
        write!(s, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let a = read_answer(&mut r);
        (a.code == 200).then_some(a)
    });
    assert_eq!(json(&ready)["ready"], true);

    // The event stream: id fields on every event.
    let (mut es, mut er) = connect(&admin);
    write!(es, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();

    // A chunked append on the kept-alive connection.
    write!(
        s,
        "POST /log/append?key=k1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
    )
    .unwrap();
    let a = read_answer(&mut r);
    assert_eq!(a.code, 200, "{}", a.body);
    let placed = json(&a);

    // Expect: 100-continue: the server asks for the body, then answers.
    write!(
        s,
        "POST /log/append?key=k2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    r.read_line(&mut line).unwrap();
    s.write_all(b"world").unwrap();
    let a = read_answer(&mut r);
    assert_eq!(a.code, 200, "{}", a.body);

    // Both records read back, the chunked one whole.
    let path = format!(
        "/log/read?partition={}&from={}&max=1",
        placed["partition"], placed["offset"]
    );
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let a = read_answer(&mut r);
    assert_eq!(json(&a)["records"][0]["data"], "hello");

    // Errors are JSON documents with their kind and the right status.
    write!(
        s,
        "POST /log/append?key=k HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx"
    )
    .unwrap();
    let a = read_answer(&mut r);
    assert_eq!(
        (a.code, json(&a)["kind"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    write!(s, "POST /log/append HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1\r\n\r\nx").unwrap();
    let a = read_answer(&mut r);
    assert_eq!(
        (a.code, json(&a)["kind"].as_str()),
        (400, Some("bad_request"))
    );
    write!(s, "GET /log/append HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let a = read_answer(&mut r);
    assert_eq!(
        (a.code, json(&a)["kind"].as_str()),
        (405, Some("method_not_allowed"))
    );
    write!(
        s,
        "GET /log/read?partition=99999&from=0 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let a = read_answer(&mut r);
    assert_eq!(
        (a.code, json(&a)["kind"].as_str()),
        (400, Some("bad_partition"))
    );

    // A record over 1 MiB is refused with 413 (the connection may close).
    let (mut big, mut bigr) = connect(&admin);
    let n = (1 << 20) + 10;
    write!(big, "POST /log/append?key=k HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n").unwrap();
    let _ = big.write_all(&vec![b'a'; n]);
    let a = read_answer(&mut bigr);
    assert_eq!(
        (a.code, json(&a)["kind"].as_str()),
        (413, Some("too_large"))
    );

    // CORS: a page on this machine may read /status; another origin not.
    for (origin, allowed) in [
        ("http://127.0.0.1:8080", true),
        ("http://evil.example", false),
    ] {
        write!(
            s,
            "GET /status HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n\r\n"
        )
        .unwrap();
        let a = read_answer(&mut r);
        let got = a
            .head
            .contains(&format!("access-control-allow-origin: {origin}"));
        assert_eq!(got, allowed, "{origin}: {}", a.head);
    }

    // The stream carried the appends, each with an id.
    let mut seen = String::new();
    wait_for("an event with an id", Duration::from_secs(20), || {
        let mut line = String::new();
        er.read_line(&mut line).ok()?;
        seen.push_str(&line);
        (seen.contains("text/event-stream")
            && seen.contains("\nid: ")
            && seen.contains("ouroboros."))
        .then_some(())
    });
    drop(node);
}
