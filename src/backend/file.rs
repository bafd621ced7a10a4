//! The `file` backend: each event as one JSON line appended to `<data-dir>/forwarded.jsonl`
//! and synced to disk before it counts as delivered. After a crash between the write and the
//! outbox's "delivered" mark the line can appear twice: readers dedupe by the event `id`.

use super::{CommerceBackend, Delivered, DeliveryError, Event};
use async_trait::async_trait;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

pub struct FileBackend {
    path: PathBuf,
    /// One writer at a time, so lines never interleave.
    lock: Arc<Mutex<()>>,
}

impl FileBackend {
    pub fn new(path: PathBuf) -> FileBackend {
        FileBackend {
            path,
            lock: Arc::new(Mutex::new(())),
        }
    }
}

#[async_trait]
impl CommerceBackend for FileBackend {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn deliver(&self, event: &Event<'_>) -> Result<Delivered, DeliveryError> {
        let mut line = Vec::with_capacity(event.body.len() + 1);
        line.extend(event.body.iter().filter(|b| **b != b'\n'));
        line.push(b'\n');
        let path = self.path.clone();
        let _guard = self.lock.lock().await;
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            // With a PostgreSQL store nothing else creates the data directory.
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(&line)?;
            f.sync_data()
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(Delivered {
                status: None,
                detail: "appended".into(),
            }),
            Ok(Err(e)) => Err(DeliveryError::Transient {
                detail: format!("cannot append to {}: {e}", self.path.display()),
                status: None,
                retry_after: None,
            }),
            Err(e) => Err(DeliveryError::Transient {
                detail: format!("file writer task failed: {e}"),
                status: None,
                retry_after: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_one_line_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-yet").join("forwarded.jsonl");
        let b = FileBackend::new(path.clone());
        for id in ["e1", "e2"] {
            let body = format!("{{\"id\":\"{id}\",\n\"x\":1}}");
            let ev = Event {
                id,
                event_type: "order.converted",
                order_id: "o",
                body: body.as_bytes(),
            };
            b.deliver(&ev).await.unwrap();
        }
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, vec![r#"{"id":"e1","x":1}"#, r#"{"id":"e2","x":1}"#]);
    }
}
