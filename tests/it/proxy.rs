//! An HTTP/1.1 proxy between the SDK and moto, one upstream connection per request. It mends one emulator
//! bug (moto's AWS Backup `ListTags` reads the ARN from the path segment before a trailing slash that the
//! current SDK no longer sends, `GET /tags/{arn}`: the proxy adds the slash back) and injects faults: a
//! request whose first line or body contains a chosen string is answered `403 AccessDeniedException`
//! without reaching moto.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Proxy {
    pub url: String,
    stop: Arc<AtomicBool>,
    port: u16,
    deny: Arc<Mutex<Option<String>>>,
}

/// A REST-JSON access-denied answer (what AWS Backup, KMS, Logs and the tagging API send).
fn denied() -> String {
    let body = r#"{"__type":"AccessDeniedException","message":"injected by the proxy"}"#;
    format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nx-amzn-ErrorType: AccessDeniedException\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one request: the head's lines and the body (by Content-Length). `None` at end of stream.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(Vec<String>, Vec<u8>)> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let len = head
        .iter()
        .find_map(|h| h.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// The one rewrite: `GET /tags/arn:aws:backup:…` (colons maybe percent-encoded) gets its trailing slash.
fn mend(line: &str) -> String {
    let mut parts: Vec<&str> = line.splitn(3, ' ').collect();
    let fixed;
    let arn = parts.get(1).and_then(|p| p.strip_prefix("/tags/")).unwrap_or_default().replace("%3A", ":");
    if parts.len() == 3 && parts[0] == "GET" && arn.starts_with("arn:aws:backup:") && !arn.ends_with('/') {
        fixed = format!("{}/", parts[1]);
        parts[1] = &fixed;
    }
    parts.join(" ")
}

fn serve(client: TcpStream, upstream: String, deny: Arc<Mutex<Option<String>>>) {
    let mut writer = client.try_clone().unwrap();
    let mut reader = BufReader::new(client);
    while let Some((mut head, body)) = read_request(&mut reader) {
        if let Some(needle) = deny.lock().unwrap().as_deref()
            && (head[0].contains(needle) || String::from_utf8_lossy(&body).contains(needle))
        {
            if writer.write_all(denied().as_bytes()).is_err() {
                return;
            }
            continue;
        }
        head[0] = mend(&head[0]);
        head.retain(|h| !h.to_ascii_lowercase().starts_with("connection:"));
        head.push("Connection: close".into());
        let Ok(mut up) = TcpStream::connect(&upstream) else { return };
        let mut req = head.join("\r\n").into_bytes();
        req.extend_from_slice(b"\r\n\r\n");
        req.extend_from_slice(&body);
        if up.write_all(&req).is_err() {
            return;
        }
        let mut resp = Vec::new();
        if up.read_to_end(&mut resp).is_err() || writer.write_all(&resp).is_err() {
            return;
        }
        // The client may reuse its connection only if the answer said how long it was.
        let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(resp.len());
        let resp_head = String::from_utf8_lossy(&resp[..head_end]).to_ascii_lowercase();
        if !resp_head.contains("content-length:") {
            return;
        }
    }
}

impl Proxy {
    pub fn start(upstream_url: &str) -> Proxy {
        let upstream = upstream_url.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let deny: Arc<Mutex<Option<String>>> = Arc::default();
        let denied = deny.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let (upstream, deny) = (upstream.clone(), denied.clone());
                    std::thread::spawn(move || serve(conn, upstream, deny));
                }
            }
        });
        Proxy { url: format!("http://127.0.0.1:{port}"), stop, port, deny }
    }

    /// From now on, answer requests containing `needle` with access denied; `None` stops.
    pub fn deny(&self, needle: Option<&str>) {
        *self.deny.lock().unwrap() = needle.map(str::to_string);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and the port is released.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
