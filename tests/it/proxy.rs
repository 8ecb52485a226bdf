//! An HTTP/1.1 proxy between the SDK and moto, one upstream connection per request. It mends two emulator
//! bugs (moto's AWS Backup `ListTags` reads the ARN from the path segment before a trailing slash that the
//! current SDK no longer sends, `GET /tags/{arn}`: the proxy adds the slash back; moto's S3
//! `GetBucketVersioning` answers with the root element `GetBucketVersioningResponse` where AWS, and the SDK's
//! parser, have `VersioningConfiguration`: the proxy renames it) and injects faults: a
//! request whose first line or body contains a chosen string is answered `403 AccessDeniedException`
//! without reaching moto (`deny`) or never answered (`hang`); and, at a set rate, a random fault — a
//! throttling answer (503 with the protocol's throttling code), a 500, a slow answer (1.5 s) or a dropped
//! connection (`faults`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Proxy {
    pub url: String,
    stop: Arc<AtomicBool>,
    port: u16,
    rules: Arc<Mutex<Rules>>,
}

#[derive(Default)]
struct Rules {
    deny: Option<String>,
    hang: Option<String>,
    /// Answer this many requests containing the string with S3's 409 ConditionalRequestConflict.
    conflict: Option<(String, u32)>,
    /// Forward the request, then never answer (the call happened; its answer was lost).
    hang_after_forward: bool,
    /// Probability that a request gets a fault, and the generator that decides.
    rate: f64,
    rng: u64,
    /// Faults injected so far, by kind.
    injected: std::collections::BTreeMap<&'static str, u64>,
}

impl Rules {
    /// xorshift64*: reproducible from the seed, no dependency.
    fn next(&mut self) -> f64 {
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick(&mut self) -> Option<&'static str> {
        if self.rate <= 0.0 || self.next() >= self.rate {
            return None;
        }
        let kind = ["throttle", "500", "slow", "drop"][(self.next() * 4.0) as usize % 4];
        *self.injected.entry(kind).or_default() += 1;
        Some(kind)
    }
}

/// An answer the SDK retries: 503 with the throttling code of the request's protocol, or a 500.
fn transient(head: &[String], status: u16) -> String {
    let query = head.iter().any(|h| h.to_ascii_lowercase().contains("application/x-www-form-urlencoded"));
    let json = head.iter().any(|h| {
        let h = h.to_ascii_lowercase();
        h.starts_with("content-type:") && h.contains("json")
    });
    let (code, reason) = if status == 503 {
        ("Throttling", "Service Unavailable")
    } else {
        ("InternalFailure", "Internal Server Error")
    };
    let (ctype, body) = if json {
        ("application/json", format!(r#"{{"__type":"{code}","message":"injected by the proxy"}}"#))
    } else if query {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>injected by the proxy</Message></Error></ErrorResponse>"
            ),
        )
    } else {
        (
            "application/xml",
            format!(
                "<Error><Code>{}</Code><Message>injected by the proxy</Message></Error>",
                if status == 503 { "SlowDown" } else { "InternalError" }
            ),
        )
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A REST-JSON access-denied answer (what AWS Backup, KMS, Logs and the tagging API send).
/// S3's answer to a conditional write while another one on the same key is in flight (the S3 guide on
/// conditional writes: "409 ConditionalRequestConflict ... Please try again").
fn conflict() -> String {
    let body = "<Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional operation is \
                currently in progress against this resource. Please try again.</Message></Error>";
    format!("HTTP/1.1 409 Conflict\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

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

/// The answer to `GET /{bucket}?versioning` with the root element AWS sends (moto 5.2.5 names it
/// `GetBucketVersioningResponse`), its length set again.
fn mend_response(request: &str, resp: Vec<u8>) -> Vec<u8> {
    if !(request.starts_with("GET ") && request.contains("?versioning")) {
        return resp;
    }
    let Some(head_end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else { return resp };
    let body = String::from_utf8_lossy(&resp[head_end + 4..])
        .replace("GetBucketVersioningResponse", "VersioningConfiguration");
    let head: Vec<String> = String::from_utf8_lossy(&resp[..head_end])
        .split("\r\n")
        .map(|h| {
            if h.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {}", body.len())
            } else {
                h.to_string()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

fn serve(client: TcpStream, upstream: String, rules: Arc<Mutex<Rules>>, stop: Arc<AtomicBool>) {
    let mut writer = client.try_clone().unwrap();
    let mut reader = BufReader::new(client);
    while let Some((mut head, body)) = read_request(&mut reader) {
        let matches = |needle: &Option<String>| {
            needle.as_deref().is_some_and(|n| head[0].contains(n) || String::from_utf8_lossy(&body).contains(n))
        };
        let (deny, hang, forward, fault) = {
            let mut r = rules.lock().unwrap();
            let conflicted = match &mut r.conflict {
                Some((needle, left)) if *left > 0 && head[0].contains(needle.as_str()) => {
                    *left -= 1;
                    true
                }
                _ => false,
            };
            if conflicted {
                *r.injected.entry("conflict").or_default() += 1;
                drop(r);
                if writer.write_all(conflict().as_bytes()).is_err() {
                    return;
                }
                continue;
            }
            (matches(&r.deny), matches(&r.hang), r.hang_after_forward, r.pick())
        };
        if deny {
            if writer.write_all(denied().as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if hang {
            if forward {
                head[0] = mend(&head[0]);
                let mut req = head.join("\r\n").into_bytes();
                req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
                req.extend_from_slice(&body);
                if let Ok(mut up) = TcpStream::connect(&upstream) {
                    let _ = up.write_all(&req);
                    let _ = up.read_to_end(&mut Vec::new());
                }
            }
            // Never answer; hold the connection until the proxy stops.
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            return;
        }
        match fault {
            Some("drop") => return,
            Some(k @ ("throttle" | "500")) => {
                if writer.write_all(transient(&head, if k == "throttle" { 503 } else { 500 }).as_bytes()).is_err() {
                    return;
                }
                continue;
            }
            Some("slow") => std::thread::sleep(std::time::Duration::from_millis(1500)),
            _ => {}
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
        if up.read_to_end(&mut resp).is_err() {
            return;
        }
        let resp = mend_response(&head[0], resp);
        if writer.write_all(&resp).is_err() {
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
        let rules: Arc<Mutex<Rules>> = Arc::default();
        let shared = rules.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let (upstream, rules, stop) = (upstream.clone(), shared.clone(), flag.clone());
                    std::thread::spawn(move || serve(conn, upstream, rules, stop));
                }
            }
        });
        Proxy { url: format!("http://127.0.0.1:{port}"), stop, port, rules }
    }

    /// From now on, answer requests containing `needle` with access denied; `None` stops.
    pub fn deny(&self, needle: Option<&str>) {
        self.rules.lock().unwrap().deny = needle.map(str::to_string);
    }

    /// From now on, never answer requests containing `needle` — after forwarding them to moto when
    /// `forward` (the call took effect, its answer was lost); `None` stops (for new requests).
    pub fn hang(&self, needle: Option<&str>, forward: bool) {
        let mut r = self.rules.lock().unwrap();
        r.hang = needle.map(str::to_string);
        r.hang_after_forward = forward;
    }

    /// Answer the next `times` requests whose first line contains `needle` with 409 ConditionalRequestConflict.
    pub fn conflict(&self, needle: &str, times: u32) {
        self.rules.lock().unwrap().conflict = Some((needle.to_string(), times));
    }

    /// From now on, give a random fault to this share of requests (0 stops), reproducibly from `seed`.
    pub fn faults(&self, rate: f64, seed: u64) {
        let mut r = self.rules.lock().unwrap();
        r.rate = rate;
        r.rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.rules.lock().unwrap().injected.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and the port is released.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
