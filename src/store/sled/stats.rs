//! [`Store::stats`](crate::store::Store::stats) for sled: rows and bytes per tree, read by a
//! full scan of each, and the size of the database's files.

use super::trees::{io_error, Trees};
use crate::store::{KindStats, StoreError, StoreStats};

impl Trees {
    pub(super) fn stats(&self) -> Result<StoreStats, StoreError> {
        let kinds = [
            ("orders", &self.orders),
            ("idempotency", &self.idem),
            ("outbox", &self.outbox),
            ("outbox_attempts", &self.outbox_attempts),
            ("order_ext_index", &self.order_ext),
            ("idem_time_index", &self.idem_time),
            ("outbox_due_index", &self.outbox_due),
            ("outbox_order_index", &self.outbox_order),
            ("outbox_dead_index", &self.outbox_dead),
            ("outbox_delivered_index", &self.outbox_delivered),
        ]
        .into_iter()
        .map(|(kind, tree)| tree_stats(kind, tree))
        .collect::<Result<Vec<_>, _>>()?;
        let entries = self.outbox.len() as u64;
        let pending = self.outbox_due.len() as u64;
        let dead = self.outbox_dead.len() as u64;
        Ok(StoreStats {
            kinds,
            outbox_pending: pending,
            outbox_delivered: entries.saturating_sub(pending + dead),
            outbox_dead: dead,
            disk_bytes: self.db.size_on_disk().map_err(io_error)?,
        })
    }
}

fn tree_stats(kind: &str, tree: &sled::Tree) -> Result<KindStats, StoreError> {
    let (mut rows, mut live_bytes) = (0, 0);
    for kv in tree.iter() {
        let (k, v) = kv.map_err(io_error)?;
        rows += 1;
        live_bytes += (k.len() + v.len()) as u64;
    }
    Ok(KindStats {
        kind: kind.to_owned(),
        rows,
        live_bytes,
        disk_bytes: None,
    })
}
