//! `shen viz`: serve the browser simulator's page on 127.0.0.1, from the copy embedded in the binary (or `--dir`).
//!
//! `scripts/build-viz.sh` builds the page (`wasm-viz/www`, with the wasm
//! module gzipped next to it as `pkg/shen_wasm_viz_bg.wasm.gz`); building
//! `shen` afterwards embeds it (`rust-embed`), so `cargo install --path
//! node` gives a working `shen viz` from any directory. A binary built
//! before the page says so and how to fix it. The module is sent gzipped
//! to browsers that accept it (all do) and inflated for other clients.
//!
//! The server is axum: `GET`/`HEAD` of the page's files, `index.html` for
//! directories, the right `Content-Type` for `.wasm` (browsers refuse to
//! stream-compile without it). With `--dir`, paths with `..`, backslashes,
//! NUL or percent-escapes that decode to them never leave the directory.
//!
//! `--live ADDR` prints the page's URL with `#live=ADDR`: the page then
//! draws the running cluster whose node serves its admin API at `ADDR`
//! (`GET /status`, `GET /events`) instead of a simulation.

use std::borrow::Cow;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Args;

/// The port `shen viz` listens on by default (the links `shen sim`
/// prints for failing seeds point there).
pub const DEFAULT_PORT: u16 = 8080;

/// Flags of `shen viz`.
#[derive(Args, Debug, Clone)]
pub struct VizArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the URL is printed).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Serve the page from this directory (a `wasm-viz/www` built by
    /// scripts/build-viz.sh) instead of the copy embedded in the binary.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Open the page in live mode on the `shen run` node whose admin API
    /// listens at ADDR (HOST:PORT, e.g. 127.0.0.1:7600).
    #[arg(long, value_name = "ADDR")]
    pub live: Option<String>,
}

/// The page as it was when this binary was built (debug builds read the
/// same folder at run time).
#[derive(rust_embed::Embed)]
#[folder = "../wasm-viz/www"]
#[exclude = "pkg/*.wasm"]
struct Page;

/// The module every page needs.
pub const MODULE: &str = "pkg/shen_wasm_viz_bg.wasm";

/// Where the page's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Embedded in the binary.
    Embedded,
    /// A directory (canonical).
    Dir(PathBuf),
}

impl Source {
    fn raw(&self, rel: &str) -> Option<Cow<'static, [u8]>> {
        match self {
            Source::Embedded => Page::get(rel).map(|f| f.data),
            Source::Dir(d) => std::fs::read(d.join(rel)).ok().map(Cow::Owned),
        }
    }

    /// The file at `rel` (a checked relative path): its bytes and whether
    /// they are gzipped (a `.gz` sibling is used when the file is absent).
    pub fn file(&self, rel: &str) -> Option<(Cow<'static, [u8]>, bool)> {
        if let Some(b) = self.raw(rel) {
            return Some((b, false));
        }
        self.raw(&format!("{rel}.gz")).map(|b| (b, true))
    }

    fn is_dir(&self, rel: &str) -> bool {
        match self {
            Source::Embedded => {
                rel.is_empty() || Page::iter().any(|f| f.starts_with(&format!("{rel}/")))
            }
            Source::Dir(d) => d.join(rel).is_dir(),
        }
    }

    /// Why this source cannot serve the page, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let what = match self {
            Source::Embedded => "this shen binary has no embedded page".to_string(),
            Source::Dir(d) => format!("--dir {}", d.display()),
        };
        let fix = match self {
            Source::Embedded => ": build it with scripts/build-viz.sh, then rebuild shen (cargo build -p shen-node, or cargo install --path node), or pass --dir wasm-viz/www",
            Source::Dir(_) => ": build it first with scripts/build-viz.sh",
        };
        if self.file("index.html").is_none() {
            return Err(format!("{what}: no index.html{fix}"));
        }
        if self.file(MODULE).is_none() {
            return Err(format!("{what}: no {MODULE}{fix}"));
        }
        Ok(())
    }
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
    let source = match &args.dir {
        None => Source::Embedded,
        Some(dir) => match dir.canonicalize() {
            Ok(d) if d.is_dir() => Source::Dir(d),
            _ => {
                eprintln!("error: --dir {}: not a directory", dir.display());
                return ExitCode::from(2);
            }
        },
    };
    if let Err(e) = source.check() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let listener = match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, args.port)) {
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
    let from = match &source {
        Source::Embedded => "the embedded page".to_string(),
        Source::Dir(d) => d.display().to_string(),
    };
    println!("serving {from} at http://{addr}/ (Ctrl-C stops)");
    if !hash.is_empty() {
        println!("live view: open http://{addr}/{hash}");
    }
    let _ = std::io::stdout().flush();
    serve_blocking(listener, source);
    ExitCode::SUCCESS
}

/// Serve the page on `listener` until the process ends (its own
/// single-threaded runtime).
pub fn serve_blocking(listener: std::net::TcpListener, source: Source) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let app = axum::Router::new()
            .fallback(page)
            .with_state(Arc::new(source));
        crate::admin::serve_http1(listener, app).await;
    });
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

/// The relative file path a request path names, or `None` if it tries to
/// leave the page (or is malformed): percent-decoded, then every segment
/// judged.
pub fn resolve(target: &str) -> Option<String> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let rest = path.strip_prefix('/')?;
    let b = rest.as_bytes();
    let escapes_ok = b
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .all(|(i, _)| {
            b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
    if !escapes_ok {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .ok()?;
    let mut segs = Vec::new();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg == ".." || seg == "." || seg.contains('\\') || seg.contains('\0') {
            return None;
        }
        segs.push(seg);
    }
    Some(segs.join("/"))
}

fn plain(code: StatusCode, text: &'static str) -> Response {
    (code, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

async fn page(State(source): State<Arc<Source>>, req: Request) -> Response {
    let method = req.method().clone();
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Some(mut rel) = resolve(&target) else {
        return plain(StatusCode::BAD_REQUEST, "bad path\n");
    };
    if source.is_dir(&rel) {
        rel = if rel.is_empty() {
            "index.html".into()
        } else {
            format!("{rel}/index.html")
        };
    }
    let Some((body, gzipped)) = source.file(&rel) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(Path::new(&rel))),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let body: Vec<u8> = if gzipped && accepts_gzip(req.headers()) {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        body.into_owned()
    } else if gzipped {
        let mut out = Vec::new();
        let mut d = flate2::read::GzDecoder::new(&body[..]);
        if std::io::Read::read_to_end(&mut d, &mut out).is_err() {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "corrupt gzip file\n");
        }
        out
    } else {
        body.into_owned()
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if method == axum::http::Method::HEAD {
        return (StatusCode::OK, headers).into_response();
    }
    (StatusCode::OK, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpStream;

    /// One raw request on its own connection (`Connection: close` added
    /// after the request line), the whole answer.
    fn get(addr: SocketAddr, req: &str) -> String {
        let req = match req.split_once("\r\n") {
            Some((line, rest)) => format!("{line}\r\nConnection: close\r\n{rest}"),
            None => req.to_string(),
        };
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
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
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = www.canonicalize().unwrap();
        std::thread::spawn(move || serve_blocking(listener, Source::Dir(dir)));

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
    fn gzipped_files_are_served_compressed_or_plain() {
        use std::io::Write as _;
        let tmp = tempfile::tempdir().unwrap();
        let www = tmp.path().join("www");
        std::fs::create_dir_all(www.join("pkg")).unwrap();
        std::fs::write(www.join("index.html"), "<p>hi</p>").unwrap();
        let wasm = b"\0asm-module-bytes".repeat(50);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&wasm).unwrap();
        std::fs::write(www.join("pkg/m.wasm.gz"), gz.finish().unwrap()).unwrap();
        let src = Source::Dir(www.canonicalize().unwrap());
        let (body, gzipped) = src.file("pkg/m.wasm").unwrap();
        assert!(gzipped && body.len() < wasm.len());
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve_blocking(listener, src));
        let r = get(
            addr,
            "GET /pkg/m.wasm HTTP/1.1\r\nAccept-Encoding: gzip, br\r\n\r\n",
        );
        assert!(
            r.contains("Content-Encoding: gzip") && r.contains("application/wasm"),
            "{r}"
        );
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /pkg/m.wasm HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(
            out.ends_with(&wasm),
            "a client without gzip gets the plain module"
        );
        assert!(!String::from_utf8_lossy(&out).contains("Content-Encoding"));
    }

    #[test]
    fn a_page_that_was_not_built_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Source::Dir(tmp.path().to_path_buf());
        assert!(dir.check().unwrap_err().contains("no index.html"));
        std::fs::write(tmp.path().join("index.html"), "x").unwrap();
        let e = dir.check().unwrap_err();
        assert!(
            e.contains(MODULE) && e.contains("scripts/build-viz.sh"),
            "{e}"
        );
        std::fs::create_dir_all(tmp.path().join("pkg")).unwrap();
        std::fs::write(tmp.path().join("pkg/shen_wasm_viz_bg.wasm.gz"), "x").unwrap();
        assert_eq!(dir.check(), Ok(()));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(Path::new("a/b.wasm")), "application/wasm");
        assert!(content_type(Path::new("app.js")).starts_with("text/javascript"));
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }
}
