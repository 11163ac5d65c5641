//! `keyshift guide`: serves the browser guide on 127.0.0.1.
//!
//! What it is for: giving a developer the guide (web/) with nothing to install and
//! nothing fetched from anywhere: the built files are embedded in the binary at compile
//! time (from `web/dist`, which `npm run build` produces), and served by a minimal
//! HTTP/1.1 static server on the loopback interface only, with a strict
//! Content-Security-Policy (scripts and wasm from this origin only, no connections to
//! any other origin).
//!
//! What it is not: a general web server. It answers GET and HEAD for a fixed list of
//! embedded files, one request per connection, and refuses everything else. There is no
//! filesystem access at run time, so no path can reach outside the list; odd paths
//! (`..`, backslashes, percent-escapes, NUL) are refused outright anyway. The `Host`
//! header must name the loopback address (defence against DNS rebinding).
//!
//! Build order: `npm run build` (wasm + bindings + static files into web/dist) before
//! compiling this crate; `include_bytes!` fails to compile without it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The Content-Security-Policy sent with every response. The page's own
/// `<meta http-equiv>` says the same minus `frame-ancestors` (which only a header can
/// carry).
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file of the built guide.
#[derive(Debug)]
pub struct Asset {
    /// URL path without the leading `/`, e.g. `pkg/keyshift_wasm_bg.wasm`.
    pub path: &'static str,
    /// Content-Type header value.
    pub content_type: &'static str,
    /// The file's bytes.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $ty:literal) => {
        Asset {
            path: $path,
            content_type: $ty,
            body: include_bytes!(concat!("../../web/dist/", $path)),
        }
    };
}

/// Every file of web/dist, embedded. A test checks this list against the directory.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("model.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("pkg/keyshift_wasm.js", "text/javascript; charset=utf-8"),
    asset!("pkg/keyshift_wasm_bg.wasm", "application/wasm"),
];

/// Largest request head accepted (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// More request headers than this is not a browser asking for a page.
const MAX_HEADERS: usize = 64;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A response, ready to write.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Headers, in order (Content-Length included).
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for HEAD, but Content-Length still tells its size).
    pub body: &'static [u8],
}

impl Response {
    fn new(status: u16, content_type: &str, body: &'static [u8], head_only: bool) -> Response {
        let headers = vec![
            ("Content-Type", content_type.to_string()),
            ("Content-Length", body.len().to_string()),
            ("Content-Security-Policy", CSP.to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
            ("Referrer-Policy", "no-referrer".to_string()),
            ("X-Frame-Options", "DENY".to_string()),
            ("Cross-Origin-Opener-Policy", "same-origin".to_string()),
            ("Cross-Origin-Resource-Policy", "same-origin".to_string()),
            ("Cache-Control", "no-store".to_string()),
            ("Connection", "close".to_string()),
        ];
        Response {
            status,
            headers,
            body: if head_only { b"" } else { body },
        }
    }

    fn error(status: u16, body: &'static str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body.as_bytes(), false)
    }

    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status line and headers, as sent.
    pub fn head(&self) -> String {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            421 => "Misdirected Request",
            431 => "Request Header Fields Too Large",
            _ => "Error",
        };
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        out
    }
}

/// Answers one request head (everything up to the blank line) for a server listening
/// on `port`. Pure: no I/O, so every refusal is unit-tested.
pub fn respond(head: &[u8], port: u16) -> Response {
    // `head` stops before the blank line; httparse wants the whole head.
    let mut whole = Vec::with_capacity(head.len() + 4);
    whole.extend_from_slice(head);
    whole.extend_from_slice(b"\r\n\r\n");
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&whole) {
        Ok(httparse::Status::Complete(n)) if n == whole.len() => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Response::error(431, "too many request headers\n");
        }
        _ => return Response::error(400, "bad request\n"),
    }
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return Response::error(400, "bad request\n");
    };
    // DNS rebinding: a page elsewhere must not reach the guide through a name that
    // resolves to 127.0.0.1. Exactly one Host header, naming the loopback address.
    let mut hosts = request
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"));
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => std::str::from_utf8(h.value).ok().map(str::trim),
        _ => None,
    };
    let allowed = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    if !host.is_some_and(|h| allowed.iter().any(|a| a.eq_ignore_ascii_case(h))) {
        return Response::error(421, "wrong host: use http://127.0.0.1 as printed\n");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Response::error(405, "only GET and HEAD\n"),
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    let Some(path) = path.strip_prefix('/') else {
        return Response::error(400, "bad request\n");
    };
    if path.split('/').any(|s| s == ".." || s == ".")
        || path.contains(['\\', '%', '\0'])
        || path.starts_with('/')
        || path.contains("//")
    {
        return Response::error(400, "bad path\n");
    }
    let path = if path.is_empty() { "index.html" } else { path };
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => Response::new(200, a.content_type, a.body, head_only),
        None => Response::new(404, "text/plain; charset=utf-8", b"not found\n", head_only),
    }
}

/// Reads one request head; `None` when the client sent nothing usable in time.
async fn read_head(stream: &mut TcpStream) -> Option<Result<Vec<u8>, ()>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Some(Ok(buf));
        }
        if buf.len() > MAX_HEAD {
            return Some(Err(()));
        }
    }
}

async fn handle(mut stream: TcpStream, port: u16) {
    let response = match read_head(&mut stream).await {
        None => return,
        Some(Err(())) => Response::error(431, "request head too large\n"),
        Some(Ok(head)) => respond(&head, port),
    };
    let _ = stream.write_all(response.head().as_bytes()).await;
    let _ = stream.write_all(response.body).await;
    let _ = stream.shutdown().await;
}

/// Serves the guide on an already bound listener until the future is dropped.
pub async fn run(listener: TcpListener) -> Result<(), String> {
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept failed: {e}"))?;
        tokio::spawn(handle(stream, port));
    }
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("keyshift guide: could not start a browser; open {url} yourself");
    }
}

/// `keyshift guide [--port N] [--no-open]`: binds 127.0.0.1:`port` (0 picks a free
/// port), prints the address, optionally opens the default browser, and serves the
/// embedded guide until Ctrl+C.
pub async fn serve(port: u16, open: bool) -> Result<(), String> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/");
    println!("keyshift guide: {url}  (Ctrl+C to stop)");
    if open {
        open_browser(&url);
    }
    tokio::select! {
        r = run(listener) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Response {
        respond(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*").as_bytes(),
            8080,
        )
    }

    #[test]
    fn index_and_wasm_are_served_with_csp() {
        let r = get("/");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("Content-Security-Policy"), Some(CSP));
        assert!(CSP.contains("script-src 'self' 'wasm-unsafe-eval'"));
        assert!(CSP.contains("connect-src 'self'"));
        assert!(CSP.contains("default-src 'none'"));
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert!(
            std::str::from_utf8(r.body)
                .unwrap()
                .contains("<title>keyshift guide")
        );
        let w = get("/pkg/keyshift_wasm_bg.wasm?v=1");
        assert_eq!(w.status, 200);
        assert_eq!(w.header("content-type"), Some("application/wasm"));
        assert_eq!(&w.body[..4], b"\0asm");
        assert_eq!(
            w.header("content-length"),
            Some(w.body.len().to_string().as_str())
        );
    }

    #[test]
    fn path_traversal_is_refused() {
        for p in [
            "/../Cargo.toml",
            "/pkg/../../native/src/guide.rs",
            "/%2e%2e/etc/passwd",
            "/..%2fetc/passwd",
            "/pkg\\..\\index.html",
            "//etc/passwd",
            "/./index.html",
            "etc/passwd",
        ] {
            let r = get(p);
            assert_eq!(r.status, 400, "{p}");
            assert_eq!(r.header("Content-Security-Policy"), Some(CSP), "{p}");
        }
    }

    #[test]
    fn unknown_paths_are_404_with_the_same_headers() {
        let r = get("/nope.js");
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"not found\n");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("Content-Security-Policy"), Some(CSP));
        assert_eq!(r.header("content-length"), Some("10"));
        assert!(r.head().starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(r.head().ends_with("\r\n\r\n"));
    }

    #[test]
    fn methods_hosts_and_garbage() {
        let post = respond(b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8080", 8080);
        assert_eq!(post.status, 405);
        assert!(post.head().contains("Allow: GET, HEAD\r\n"));
        let head = respond(b"HEAD /app.js HTTP/1.1\r\nHost: localhost:8080", 8080);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_ne!(head.header("content-length"), Some("0"));
        let rebound = respond(b"GET / HTTP/1.1\r\nHost: evil.example:8080", 8080);
        assert_eq!(rebound.status, 421);
        assert_eq!(respond(b"GET / HTTP/1.1", 8080).status, 421);
        for junk in [
            &b""[..],
            b"\xff\xfe",
            b"GET /",
            b"GET / HTTP/1.1 extra",
            b"GET / FTP/1",
        ] {
            assert_eq!(respond(junk, 8080).status, 400, "{junk:?}");
        }
    }

    #[test]
    fn the_embedded_list_is_exactly_web_dist() {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some(dist) = here
            .ancestors()
            .map(|p| p.join("web/dist"))
            .find(|p| p.join("index.html").exists())
        else {
            panic!("web/dist not found: run `npm run build`");
        };
        let mut on_disk = Vec::new();
        let mut stack = vec![dist.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&dist)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    on_disk.push(rel);
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "update ASSETS in native/src/guide.rs");
        for a in ASSETS {
            assert_eq!(
                std::fs::read(dist.join(a.path)).unwrap(),
                a.body,
                "{} is stale",
                a.path
            );
        }
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(run(listener));
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(
            format!("GET /style.css HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains(&format!("Content-Security-Policy: {CSP}\r\n")));
        assert!(text.contains("prefers-color-scheme"));
        server.abort();
    }
}

/// Properties of the request parser over inputs no one would type: whatever bytes
/// arrive, the answer is one of the policy's statuses, never a panic, and only a
/// well-formed GET or HEAD for an embedded file with the right Host gets a 200.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const PORT: u16 = 7468;

    fn request(method: &str, target: &str, host: &str) -> Vec<u8> {
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nAccept: */*").into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_get_a_policy_answer(head in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let r = respond(&head, PORT);
            prop_assert!([200, 400, 404, 405, 421, 431].contains(&r.status), "{}", r.status);
            prop_assert!(r.head().ends_with("\r\n\r\n"));
        }

        #[test]
        fn only_listed_files_on_the_loopback_host_are_served(
            target in "/[a-zA-Z0-9._/%?#-]{0,40}",
            host in prop_oneof![
                Just(format!("127.0.0.1:{PORT}")),
                Just(format!("LOCALHOST:{PORT}")),
                Just("127.0.0.1".to_string()),
                Just(format!("evil.example:{PORT}")),
                "[a-z0-9.:]{0,20}",
            ],
        ) {
            let r = respond(&request("GET", &target, &host), PORT);
            let path = target.split(['?', '#']).next().unwrap().trim_start_matches('/');
            let path = if path.is_empty() { "index.html" } else { path };
            let listed = ASSETS.iter().any(|a| a.path == path);
            let good_host = host.eq_ignore_ascii_case(&format!("127.0.0.1:{PORT}"))
                || host.eq_ignore_ascii_case(&format!("localhost:{PORT}"));
            if r.status == 200 {
                prop_assert!(good_host && listed, "{target} via {host}");
            }
            if !good_host {
                prop_assert_eq!(r.status, 421);
            }
            if good_host && listed && !target.contains("..") && !target.contains('%')
                && !target.contains("//") && !target.contains("/./")
            {
                prop_assert_eq!(r.status, 200, "{}", target);
            }
        }

        #[test]
        fn traversal_never_succeeds(
            prefix in "[a-z/]{0,10}",
            dots in prop_oneof![Just(".."), Just("."), Just("%2e%2e"), Just("\\"), Just("//")],
            suffix in "[a-z/.]{0,10}",
        ) {
            let target = format!("/{prefix}{dots}/{suffix}");
            let r = respond(&request("GET", &target, &format!("127.0.0.1:{PORT}")), PORT);
            prop_assert!(r.status == 400 || r.status == 404, "{target}: {}", r.status);
        }

        #[test]
        fn a_second_host_header_is_refused(second in "[a-z0-9.:]{1,20}") {
            let head = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nHost: {second}");
            prop_assert_eq!(respond(head.as_bytes(), PORT).status, 421);
        }
    }
}
