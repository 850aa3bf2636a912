//! `shen viz`: serve the browser simulator's static page (`wasm-viz/www`,
//! built by `scripts/build-viz.sh`) on 127.0.0.1.
//!
//! A deliberately tiny HTTP/1.1 server: `GET`/`HEAD` of files under one
//! directory, `index.html` for directories, the right `Content-Type` for
//! `.wasm` (browsers refuse to stream-compile without it), one thread per
//! connection, `Connection: close`. Paths with `..`, backslashes, NUL or
//! percent-escapes that decode to them never leave the directory.
//!
//! `--live ADDR` prints the page's URL with `#live=ADDR`: the page then
//! draws the running cluster whose node serves its admin API at `ADDR`
//! (`GET /status`, `GET /events`) instead of a simulation.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// Flags of `shen viz`.
#[derive(Args, Debug, Clone)]
pub struct VizArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the URL is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The page directory (default: wasm-viz/www of this checkout).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Open the page in live mode on the `shen run` node whose admin API
    /// listens at ADDR (HOST:PORT, e.g. 127.0.0.1:7600).
    #[arg(long, value_name = "ADDR")]
    pub live: Option<String>,
}

/// Check a live address (`HOST:PORT`, HOST a name, an IPv4 address or a
/// bracketed IPv6 address; PORT 1..=65535) and return the page URL's hash
/// for it.
pub fn live_hash(addr: &str) -> Result<String, String> {
    let bad = || {
        format!("--live {addr}: want HOST:PORT, e.g. 127.0.0.1:7600 (a `shen run` admin address)")
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty()
            && v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    if port == 0 || !host_ok {
        return Err(bad());
    }
    Ok(format!("#live={addr}"))
}

/// The page directory when `--dir` is not given: `wasm-viz/www` under the
/// current directory if it exists there, else in the source tree this
/// binary was built from.
pub fn default_dir() -> PathBuf {
    let here = PathBuf::from("wasm-viz/www");
    if here.is_dir() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-viz/www")
}

/// Run `shen viz`.
pub fn run(args: VizArgs) -> ExitCode {
    let hash = match args.live.as_deref().map(live_hash) {
        None => String::new(),
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    let dir = match dir.canonicalize() {
        Ok(d) if d.is_dir() => d,
        _ => {
            eprintln!("error: --dir {}: not a directory", dir.display());
            return ExitCode::from(2);
        }
    };
    if !dir.join("index.html").is_file() {
        eprintln!("error: --dir {}: no index.html", dir.display());
        return ExitCode::from(2);
    }
    if !dir.join("pkg/shen_wasm_viz_bg.wasm").is_file() {
        eprintln!(
            "error: {} has no pkg/shen_wasm_viz_bg.wasm: build it first with scripts/build-viz.sh",
            dir.display()
        );
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: --port {}: cannot listen on 127.0.0.1: {e}",
                args.port
            );
            return ExitCode::from(2);
        }
    };
    let addr = listener
        .local_addr()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], args.port)));
    println!("serving {} at http://{addr}/ (Ctrl-C stops)", dir.display());
    if !hash.is_empty() {
        println!("live view: open http://{addr}/{hash}");
    }
    let _ = std::io::stdout().flush();
    serve(listener, dir);
    ExitCode::SUCCESS
}

/// Accept connections forever, one thread each.
pub fn serve(listener: TcpListener, dir: PathBuf) {
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let dir = dir.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &dir);
        });
    }
}

/// The content type of a file, by extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The file a request target names under `dir`, or `None` if it tries to
/// leave it (or is malformed).
pub fn resolve(dir: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return None;
    }
    // Percent-decode, then judge the decoded segments.
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let h = hex(*bytes.get(i + 1)?)?;
            let l = hex(*bytes.get(i + 2)?)?;
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).ok()?;
    let mut p = dir.to_path_buf();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg == ".." || seg == "." || seg.contains('\\') || seg.contains('\0') {
            return None;
        }
        p.push(seg);
    }
    if p.is_dir() {
        p.push("index.html");
    }
    Some(p)
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head {
        stream.write_all(body)?;
    }
    stream.flush()
}

fn handle(mut stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(64 * 1024));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Skip the headers.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head = method == "HEAD";
    if method != "GET" && !head {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"GET or HEAD only\n",
            false,
        );
    }
    let Some(path) = resolve(dir, target) else {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"bad path\n",
            head,
        );
    };
    match std::fs::read(&path) {
        Ok(body) => respond(&mut stream, "200 OK", content_type(&path), &body, head),
        Err(_) => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            head,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn serves_files_with_types_and_refuses_to_leave_the_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let www = tmp.path().join("www");
        std::fs::create_dir_all(www.join("pkg")).unwrap();
        std::fs::write(www.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(www.join("pkg/m.wasm"), [0u8, 97, 115, 109]).unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "no").unwrap();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = www.canonicalize().unwrap();
        std::thread::spawn(move || serve(listener, dir));

        let r = get(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
        assert!(r.contains("text/html") && r.ends_with("<p>hi</p>"));
        let r = get(addr, "GET /pkg/m.wasm?v=1 HTTP/1.1\r\n\r\n");
        assert!(r.contains("Content-Type: application/wasm") && r.contains("Content-Length: 4"));
        let r = get(addr, "HEAD /index.html HTTP/1.1\r\n\r\n");
        assert!(r.contains("Content-Length: 9") && !r.contains("<p>"));
        for bad in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/pkg/..%2F..%2Fsecret.txt",
            "/%zz",
            "x",
        ] {
            let r = get(addr, &format!("GET {bad} HTTP/1.1\r\n\r\n"));
            assert!(r.starts_with("HTTP/1.1 400"), "{bad}: {r}");
        }
        assert!(get(addr, "GET /nope.js HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    }

    #[test]
    fn live_addresses_are_checked() {
        assert_eq!(live_hash("127.0.0.1:7600").unwrap(), "#live=127.0.0.1:7600");
        assert_eq!(live_hash("localhost:80").unwrap(), "#live=localhost:80");
        assert_eq!(live_hash("[::1]:7600").unwrap(), "#live=[::1]:7600");
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            ":7600",
            "a b:1",
            "x:y",
            "[]:1",
            "h/x:1",
        ] {
            assert!(
                live_hash(bad).unwrap_err().contains("want HOST:PORT"),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(Path::new("a/b.wasm")), "application/wasm");
        assert!(content_type(Path::new("app.js")).starts_with("text/javascript"));
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }
}
