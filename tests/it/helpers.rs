//! Test server and HTTP helpers shared by every integration test: the in-process server
//! ([`TestApp`]), the real binary as a child process ([`ServerProcess`]), a client that
//! retries like Fast ([`send_retrying`]), the pieces of a loopback webhook receiver
//! ([`read_request`], [`write_answer`]) and a deterministic [`XorShift`].

use fast_seller::clock::ManualClock;
use fast_seller::config::{LogFormat, Settings};
use fast_seller::outbox::Outbox;
use fast_seller::service::Service;
use fast_seller::signing::{self, WebhookSecret};
use fast_seller::startup::Application;
use serde_json::Value;
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// 2026-01-01T00:00:00Z, the start of every test's manual clock.
pub const T0_MS: u64 = 1_767_225_600_000;

/// A running server. Its data directory lives as long as this value (unless kept).
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub service: Arc<Service>,
    /// The outbox worker (also running in the background); `run_once` delivers what is due.
    pub outbox: Arc<Outbox>,
    pub clock: Arc<ManualClock>,
    pub data_dir: PathBuf,
    _dir: Option<TempDir>,
    handle: actix_web::dev::ServerHandle,
    server: tokio::task::JoinHandle<()>,
}

/// An answer: status, headers and the exact body bytes.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| {
            panic!(
                "answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The order inside a create/read/update answer.
    pub fn order(&self) -> Value {
        self.json()["order"]["order"].clone()
    }
}

/// A server on the demo catalog with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose settings `tweak` may change (catalog, limits…) before it is built.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().to_path_buf();
    let mut app = spawn_app_in(&path, tweak).await;
    app._dir = Some(dir);
    app
}

/// A server on an existing data directory (restart tests); the caller owns the directory.
pub async fn spawn_app_in(data_dir: &Path, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), data_dir.to_path_buf());
    settings.workers = 2;
    settings.log_format = LogFormat::Json;
    settings.cache_capacity = 16 * 1024 * 1024;
    tweak(&mut settings);
    if std::env::var_os("TEST_LOG").is_some() {
        fast_seller::telemetry::init(LogFormat::Pretty);
    }
    let clock = Arc::new(ManualClock::new(T0_MS));
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("the server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let service = app.service();
    let outbox = app.outbox();
    let handle = app.handle();
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    TestApp {
        base,
        client: reqwest::Client::new(),
        service,
        outbox,
        clock,
        data_dir: data_dir.to_path_buf(),
        _dir: None,
        handle,
        server,
    }
}

impl TestApp {
    /// POSTs JSON to `/fast/v1/<verb>`.
    pub async fn post(&self, verb: &str, body: &Value) -> Resp {
        self.post_raw(verb, serde_json::to_vec(body).unwrap(), "application/json")
            .await
    }

    /// POSTs raw bytes with the given content type to `/fast/v1/<verb>`.
    pub async fn post_raw(&self, verb: &str, body: Vec<u8>, content_type: &str) -> Resp {
        let r = self
            .client
            .post(format!("{}/fast/v1/{verb}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            bytes: r.bytes().await.expect("body read").to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            bytes: r.bytes().await.expect("body read").to_vec(),
        }
    }

    /// Stops the server gracefully, as SIGTERM would, and waits until it has flushed.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.server.await;
    }
}

/// A create request for Fast order `fast_id` with the given lines
/// (`[(line id, product id, quantity)]`).
pub fn create_body(request_id: &str, fast_id: &str, lines: &[(&str, &str, i64)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(id, product, qty)| {
            serde_json::json!({
                "id": {"value": id},
                "external_product_id": product,
                "quantity": qty,
                "subtotal_amount": "0.00",
                "tax_amount": "0.00",
                "total_amount": "0.00"
            })
        })
        .collect();
    serde_json::json!({
        "type": "ENTITY_TYPE_ORDER",
        "app_id": "test-app",
        "request_id": {"value": request_id},
        "order": {
            "is_cart": true,
            "order": {
                "id": {"value": fast_id},
                "order_type": "ORDER_TYPE_CART",
                "status": "ORDER_STATUS_CART",
                "bill_to": {},
                "lines": lines
            }
        }
    })
}

/// An update request for Fast order `fast_id` carrying `segment` fields.
pub fn update_body(request_id: &str, fast_id: &str, segment: Value) -> Value {
    let mut order = serde_json::json!({"order_id": {"value": fast_id}, "is_cart": true});
    if let (Some(o), Value::Object(extra)) = (order.as_object_mut(), segment) {
        o.extend(extra);
    }
    serde_json::json!({
        "type": "ENTITY_TYPE_ORDER",
        "app_id": "test-app",
        "request_id": {"value": request_id},
        "order": order
    })
}

/// Money string at `v` (panics with the JSON if absent).
pub fn money(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a money string, got {v}"))
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// A client with a 15 s timeout, for servers in child processes.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("reqwest client")
}

/// POSTs raw JSON bytes to `/fast/v1/<verb>`; `Err` when no complete answer arrived.
pub async fn post(
    client: &reqwest::Client,
    base: &str,
    verb: &str,
    body: Vec<u8>,
) -> Result<Resp, reqwest::Error> {
    let r = client
        .post(format!("{base}/fast/v1/{verb}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await?.to_vec();
    Ok(Resp {
        status,
        headers,
        bytes,
    })
}

/// POSTs and insists on an answer (the server is known to be up).
pub async fn post_ok(client: &reqwest::Client, base: &str, verb: &str, body: &Value) -> Resp {
    post(client, base, verb, serde_json::to_vec(body).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{verb} got no answer: {e}"))
}

/// "HTTP <status>: <body>" for assertion messages (bodies of big orders are cut short).
pub fn show(r: &Resp) -> String {
    let text = String::from_utf8_lossy(&r.bytes);
    let cut: String = text.chars().take(600).collect();
    let more = if text.chars().count() > 600 {
        "…"
    } else {
        ""
    };
    format!("HTTP {}: {cut}{more}", r.status)
}

/// What [`send_retrying`] had to retry: answers (409/503) and lost connections.
#[derive(Debug, Default, Clone, Copy)]
pub struct Retries {
    pub statuses: usize,
    pub transport: usize,
}

/// Sends like Fast would: until the answer is not one of `retry_on` (409, and 503 where the
/// test allows it), honouring `Retry-After`, which every such answer must carry; a lost
/// connection (keep-alive races on a loaded machine) is retried with the same body, which
/// is exactly what request_id exists for. Returns the final answer and what was retried.
pub async fn send_retrying(
    client: &reqwest::Client,
    base: &str,
    verb: &str,
    body: &[u8],
    retry_on: &[u16],
) -> (Resp, Retries) {
    let mut retried = Retries::default();
    loop {
        let r = match post(client, base, verb, body.to_vec()).await {
            Ok(r) => r,
            Err(e) => {
                retried.transport += 1;
                assert!(
                    retried.transport <= 10,
                    "still no answer after {} tries: {e}",
                    retried.transport
                );
                eprintln!("transport error, retrying the same request: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !retry_on.contains(&r.status) {
            return (r, retried);
        }
        retried.statuses += 1;
        let wait: u64 = r
            .header("Retry-After")
            .unwrap_or_else(|| panic!("a {} must carry Retry-After: {}", r.status, show(&r)))
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!("Retry-After must be seconds: {:?}", r.header("Retry-After"))
            });
        assert!(
            retried.statuses <= 10,
            "still {} after {} retries: {}",
            r.status,
            retried.statuses,
            show(&r)
        );
        tokio::time::sleep(Duration::from_secs(wait.clamp(1, 5))).await;
    }
}

/// `GET /readyz` → `(pending, dead)` of the outbox, when the server answers.
pub async fn outbox_backlog(http: &reqwest::Client, base: &str) -> Option<(u64, u64)> {
    let r = http.get(format!("{base}/readyz")).send().await.ok()?;
    let v: Value = r.json().await.ok()?;
    Some((
        v["outbox"]["pending"].as_u64()?,
        v["outbox"]["dead"].as_u64()?,
    ))
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/// A deterministic xorshift64 (no extra crates).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2545_F491_4F6C_DD1D);
        if rng.0 == 0 {
            rng.0 = 1;
        }
        for _ in 0..8 {
            rng.next();
        }
        rng
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.next() % (i as u64 + 1)).unwrap();
            items.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary as a child process
// ---------------------------------------------------------------------------------------------

/// How long a start may take before the test gives up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Captured stdout lines kept per process (the oldest are dropped).
const KEPT_LINES: usize = 4000;

/// A `fast-seller serve` child process: only a separate process can be killed with SIGKILL.
pub struct ServerProcess {
    child: Child,
    /// `Some` once the process printed its listening line.
    port: Option<u16>,
    /// Spawn until the listening line.
    pub ready_after: Duration,
    port_rx: mpsc::Receiver<u16>,
    stdout: Arc<Mutex<VecDeque<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// `fast-seller serve --listen 127.0.0.1:0 --log-format json` plus `args`, with `envs`
    /// and no other `FAST_SELLER_*` variable; does not wait for it to listen.
    pub fn spawn_with<A: AsRef<OsStr>>(args: &[A], envs: &[(&str, &str)]) -> ServerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fast-seller"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args);
        // Settings from the environment of whoever runs the tests must not leak in.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("FAST_SELLER_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(envs.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("fast-seller starts");
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let stdout = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        {
            // Reads every line (the pipe must never fill up, or the server blocks on logging).
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = listening_port(&line) {
                        let _ = port_tx.send(port);
                    }
                    let mut kept = stdout.lock().unwrap();
                    if kept.len() == KEPT_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            });
        }
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut err = BufReader::new(err);
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        ServerProcess {
            child,
            port: None,
            ready_after: Duration::ZERO,
            port_rx,
            stdout,
            stderr,
        }
    }

    /// The server on a sled data directory, not waiting for it to listen.
    pub fn spawn(data_dir: &Path) -> ServerProcess {
        ServerProcess::spawn_with(&[OsStr::new("--data-dir"), data_dir.as_os_str()], &[])
    }

    /// Spawns like [`ServerProcess::spawn_with`] and waits (polling, up to
    /// [`READY_TIMEOUT`]) for the listening line; panics with the output if none comes.
    pub async fn start_with<A: AsRef<OsStr>>(args: &[A], envs: &[(&str, &str)]) -> ServerProcess {
        let started = Instant::now();
        let mut server = ServerProcess::spawn_with(args, envs);
        loop {
            if let Ok(port) = server.port_rx.try_recv() {
                server.port = Some(port);
                server.ready_after = started.elapsed();
                return server;
            }
            let exited = server.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() >= READY_TIMEOUT {
                // Give the reader threads a moment to collect the last output.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "fast-seller did not print its listening line within {READY_TIMEOUT:?} \
                     (exit status {exited:?})\n{}",
                    server.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The server on a sled data directory, once it listens.
    pub async fn start(data_dir: &Path) -> ServerProcess {
        ServerProcess::start_with(&[OsStr::new("--data-dir"), data_dir.as_os_str()], &[]).await
    }

    /// The server on a sled data directory with the webhook backend delivering to `url`
    /// (`envs` carry `FAST_SELLER_WEBHOOK_SECRET` and the like), once it listens.
    pub async fn start_webhook(data_dir: &Path, url: &str, envs: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_with(
            &[
                OsStr::new("--data-dir"),
                data_dir.as_os_str(),
                OsStr::new("--backend"),
                OsStr::new("webhook"),
                OsStr::new("--webhook-url"),
                OsStr::new(url),
            ],
            envs,
        )
        .await
    }

    pub fn port(&self) -> u16 {
        self.port.expect("the server is listening")
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the listening line has appeared by now (for processes spawned unready).
    pub fn saw_listening_line(&mut self) -> bool {
        if self.port.is_none() {
            self.port = self.port_rx.try_recv().ok();
        }
        self.port.is_some()
    }

    /// SIGKILL (`Child::kill` on Unix), then reap the process.
    pub fn kill9(&mut self) {
        // An error only means the process has already exited; `wait` tells.
        let _ = self.child.kill();
        self.child.wait().expect("wait for the killed server");
    }

    /// Polls for the exit status until `limit` has passed.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The captured output (last stdout lines and all of stderr), for failure messages.
    pub fn output(&self) -> String {
        let stdout = self.stdout.lock().unwrap();
        let skip = stdout.len().saturating_sub(60);
        let tail: Vec<&str> = stdout.iter().skip(skip).map(String::as_str).collect();
        format!(
            "--- stdout (last {} lines) ---\n{}\n--- stderr ---\n{}",
            tail.len(),
            tail.join("\n"),
            self.stderr.lock().unwrap()
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of a `listening on http://127.0.0.1:<port>` log line (JSON: `"addr":"…"`).
fn listening_port(line: &str) -> Option<u16> {
    if !line.contains("listening on") {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(line) {
        if let Some(addr) = v["addr"].as_str() {
            return addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port());
        }
    }
    let rest = &line[line.find("\"addr\":\"127.0.0.1:")? + "\"addr\":\"127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Loopback webhook receivers
// ---------------------------------------------------------------------------------------------

/// One HTTP/1.1 request as a receiver read it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The request target (`/orders/3`).
    pub path: String,
    /// Header names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Standard Webhooks verification of the request by the system clock.
    pub fn verify_now(&self, secret: &WebhookSecret) -> Result<(), String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        self.verify(secret, u64::try_from(now.as_millis()).unwrap())
    }

    /// Standard Webhooks verification of the request at `now_ms`.
    pub fn verify(&self, secret: &WebhookSecret, now_ms: u64) -> Result<(), String> {
        signing::verify(
            std::slice::from_ref(secret),
            &self.headers,
            &self.body,
            i64::try_from(now_ms / 1000).unwrap(),
            signing::DEFAULT_TOLERANCE_SECS,
        )
        .map_err(|e| e.to_string())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP/1.1 request (head up to 1 MiB, body by `content-length`); `None` when the
/// connection ends first.
pub async fn read_request(stream: &mut TcpStream) -> Option<HttpRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = head
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut request = HttpRequest {
        path,
        headers,
        body: buf[head_end..].to_vec(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while request.body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.body.extend_from_slice(&chunk[..n]),
        }
    }
    request.body.truncate(length);
    Some(request)
}

/// Answers `status` with an empty body (plus `extra_headers`, each ending in `\r\n`) and
/// closes the connection; returns whether the answer was written.
pub async fn write_answer(stream: &mut TcpStream, status: u16, extra_headers: &str) -> bool {
    let answer = format!(
        "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\
         {extra_headers}\r\n"
    );
    let written = stream.write_all(answer.as_bytes()).await.is_ok();
    if written {
        let _ = stream.flush().await;
    }
    let _ = stream.shutdown().await;
    written
}

/// Accepts connections on `listener` until aborted, serving each in its own task.
pub fn accept_loop<S, F, Fut>(listener: TcpListener, state: Arc<S>, serve: F) -> JoinHandle<()>
where
    S: Send + Sync + 'static,
    F: Fn(TcpStream, Arc<S>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, state.clone()));
        }
    })
}
