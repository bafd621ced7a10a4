//! Test server and HTTP helpers shared by every integration test.

use fast_seller::clock::ManualClock;
use fast_seller::config::{LogFormat, Settings};
use fast_seller::outbox::Outbox;
use fast_seller::service::Service;
use fast_seller::startup::Application;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;

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
