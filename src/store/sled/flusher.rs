//! Group commit: a thread that makes every write durable, serving all flush requests queued
//! meanwhile with one `Db::flush`.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::store::StoreError;

/// One request for the flusher: completed once a flush covering it has finished.
type FlushWaiter = oneshot::Sender<Result<(), String>>;

/// The flusher thread and its queue.
pub(super) struct Flusher {
    /// Queue of the thread; `None` only while dropping.
    tx: Option<mpsc::Sender<FlushWaiter>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the thread; it holds `db` until the flusher drops.
    pub(super) fn start(db: sled::Db) -> Result<Flusher, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sled-flusher".into())
            .spawn(move || run(&db, &rx))
            .map_err(|e| StoreError::Io(format!("cannot start the flusher thread: {e}")))?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Waits until a flush started after this call has completed.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| StoreError::Io("the flusher has stopped".into()))?
            .send(tx)
            .map_err(|_| StoreError::Io("the flusher has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Io("the flusher dropped a flush request".into()))?
            .map_err(|e| StoreError::Io(format!("flush failed: {e}")))
    }
}

impl Drop for Flusher {
    /// Stops the thread and waits for it, so the database lock is released on return.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the sled flusher thread panicked");
            }
        }
    }
}

/// One `flush` for every request queued meanwhile. Ends when the flusher drops.
fn run(db: &sled::Db, requests: &mpsc::Receiver<FlushWaiter>) {
    while let Ok(first) = requests.recv() {
        let mut waiters = vec![first];
        waiters.extend(requests.try_iter());
        let result = db.flush().map(drop).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "sled flush failed");
        }
        for waiter in waiters {
            // The caller may have gone away (cancelled request); nothing to do then.
            let _ = waiter.send(result.clone());
        }
    }
}
