//! Store-to-store copies (`fast-seller store migrate --from sled:DIR --to postgres://…`):
//! every order, idempotency record and outbox entry (with its delivery state and attempt
//! log) is read page by page from one [`Store`] and written verbatim into another through
//! [`Store::import`], one transaction per page; then both sides are counted again.
//!
//! The target must be empty unless [`CopyOptions::allow_non_empty`] is set; even then no
//! stored row is ever overwritten (a key that exists already stops the copy). Nothing may
//! write to the source meanwhile: a sled directory is locked by its server, so opening it
//! here proves none runs; for a PostgreSQL source, stop the servers first (a change during
//! the copy is detected by the final count and reported).

use std::fmt;
use std::future::Future;
use std::ops::AddAssign;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::postgres::{redact_url, PgStore};
use super::sled::SledStore;
use super::{
    Attempt, IdempotencyKey, IdempotencyRecord, ImportBatch, OrderRecord, OutboxItem, OutboxState,
    Store, StoreError,
};

/// Rows per page (and per import transaction).
pub const PAGE: usize = 500;
/// Cache of a sled store opened for a copy.
const SLED_CACHE: u64 = 64 * 1024 * 1024;
/// Connections of a PostgreSQL store opened for a copy.
const PG_POOL: usize = 2;

/// Where a store lives, as the command line names it: `sled:DIR` or a `postgres://` URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sled(PathBuf),
    Postgres(String),
}

impl FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Location, String> {
        if let Some(dir) = s.strip_prefix("sled:") {
            if dir.is_empty() {
                return Err("sled: needs a data directory (sled:DIR)".into());
            }
            Ok(Location::Sled(PathBuf::from(dir)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Location::Postgres(s.to_owned()))
        } else {
            Err("expected sled:DIR or a postgres://… URL".into())
        }
    }
}

/// Shown without the password.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sled(dir) => write!(f, "sled:{}", dir.display()),
            Location::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Location {
    /// Opens the store: a sled directory must hold a store already when `must_exist`; a
    /// PostgreSQL database is migrated first.
    pub async fn open(&self, must_exist: bool) -> Result<Arc<dyn Store>, StoreError> {
        match self {
            Location::Sled(dir) => {
                if must_exist && !SledStore::exists_in(dir) {
                    return Err(StoreError::Io(format!(
                        "{} holds no fast-seller sled store",
                        dir.display()
                    )));
                }
                let store = SledStore::open_blocking(dir.clone(), SLED_CACHE).await?;
                Ok(Arc::new(store))
            }
            Location::Postgres(url) => {
                let store = PgStore::connect(url, None, PG_POOL).await?;
                store.migrate().await?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// What a store holds, counted row by row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub orders: u64,
    pub idempotency_records: u64,
    pub outbox_pending: u64,
    pub outbox_delivered: u64,
    pub outbox_dead: u64,
    /// Logged delivery attempts of all outbox entries.
    pub outbox_attempts: u64,
}

impl Tally {
    /// The rows of one import batch.
    fn of(batch: &ImportBatch) -> Tally {
        let mut t = Tally {
            orders: batch.orders.len() as u64,
            idempotency_records: batch.idempotency.len() as u64,
            ..Tally::default()
        };
        for (item, attempts) in &batch.outbox {
            match item.state {
                OutboxState::Pending => t.outbox_pending += 1,
                OutboxState::Delivered => t.outbox_delivered += 1,
                OutboxState::Dead => t.outbox_dead += 1,
            }
            t.outbox_attempts += attempts.len() as u64;
        }
        t
    }

    pub fn outbox_entries(&self) -> u64 {
        self.outbox_pending + self.outbox_delivered + self.outbox_dead
    }

    /// `self - before`, field by field (`None` if anything went down).
    fn since(&self, before: &Tally) -> Option<Tally> {
        Some(Tally {
            orders: self.orders.checked_sub(before.orders)?,
            idempotency_records: self
                .idempotency_records
                .checked_sub(before.idempotency_records)?,
            outbox_pending: self.outbox_pending.checked_sub(before.outbox_pending)?,
            outbox_delivered: self.outbox_delivered.checked_sub(before.outbox_delivered)?,
            outbox_dead: self.outbox_dead.checked_sub(before.outbox_dead)?,
            outbox_attempts: self.outbox_attempts.checked_sub(before.outbox_attempts)?,
        })
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.orders += other.orders;
        self.idempotency_records += other.idempotency_records;
        self.outbox_pending += other.outbox_pending;
        self.outbox_delivered += other.outbox_delivered;
        self.outbox_dead += other.outbox_dead;
        self.outbox_attempts += other.outbox_attempts;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} orders, {} idempotency records, {} outbox entries ({} pending, {} delivered, \
             {} dead) with {} attempts",
            self.orders,
            self.idempotency_records,
            self.outbox_entries(),
            self.outbox_pending,
            self.outbox_delivered,
            self.outbox_dead,
            self.outbox_attempts
        )
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// Copy into a store that holds data already (rows are added, never overwritten).
    pub allow_non_empty: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the target store is not empty ({0}); copy into an empty store, or pass \
         --allow-non-empty to add to what it holds"
    )]
    TargetNotEmpty(Tally),
    #[error(
        "a row of the {what} page after {after:?} exists in the target already; that page was \
         not written (copied before it: {copied})"
    )]
    AlreadyInTarget {
        what: &'static str,
        after: Option<String>,
        copied: Tally,
    },
    #[error("verification failed: copied {copied}, but the target gained {gained}")]
    TargetMismatch { copied: Tally, gained: String },
    #[error(
        "verification failed: copied {copied}, but the source now holds {now} (did a server \
         write to it during the copy?)"
    )]
    SourceChanged { copied: Tally, now: Tally },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies everything in `from` into `to`, then verifies the counts on both sides; returns
/// what was copied.
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    options: CopyOptions,
) -> Result<Tally, CopyError> {
    let counts = to.counts().await?;
    let empty = counts.orders == 0 && counts.idempotency_records == 0 && counts.outbox_entries == 0;
    let before = if empty {
        Tally::default()
    } else {
        let before = tally(to).await?;
        if !options.allow_non_empty {
            return Err(CopyError::TargetNotEmpty(before));
        }
        before
    };
    let copied = each_row(from, Some(to)).await?;
    to.flush().await?;

    let after = tally(to).await?;
    if after.since(&before) != Some(copied) {
        let gained = after
            .since(&before)
            .map_or_else(|| format!("{after} (from {before})"), |g| g.to_string());
        return Err(CopyError::TargetMismatch { copied, gained });
    }
    let now = tally(from).await?;
    if now != copied {
        return Err(CopyError::SourceChanged { copied, now });
    }
    tracing::info!(%copied, "store copy verified");
    Ok(copied)
}

/// Counts everything `store` holds by paging through it (what a copy would read).
pub async fn tally(store: &dyn Store) -> Result<Tally, CopyError> {
    each_row(store, None).await
}

/// Pages through every row of `from`, importing each page into `to` when given; returns
/// what it read.
async fn each_row(from: &dyn Store, to: Option<&dyn Store>) -> Result<Tally, CopyError> {
    let mut read = Tally::default();
    pages(
        "orders",
        |after: Option<String>| async move { from.orders_after(after.as_deref(), PAGE).await },
        |o: &OrderRecord| o.id.clone(),
        |orders| ImportBatch {
            orders,
            ..ImportBatch::default()
        },
        to,
        &mut read,
    )
    .await?;
    pages(
        "idempotency records",
        |after: Option<IdempotencyKey>| async move {
            from.idempotency_after(after.as_ref(), PAGE).await
        },
        |(key, _): &(IdempotencyKey, IdempotencyRecord)| key.clone(),
        |idempotency| ImportBatch {
            idempotency,
            ..ImportBatch::default()
        },
        to,
        &mut read,
    )
    .await?;
    pages(
        "outbox",
        |after: Option<String>| async move { from.outbox_after(after.as_deref(), PAGE).await },
        |(item, _): &(OutboxItem, Vec<Attempt>)| item.entry.id.clone(),
        |outbox| ImportBatch {
            outbox,
            ..ImportBatch::default()
        },
        to,
        &mut read,
    )
    .await?;
    Ok(read)
}

/// Fetches pages of one kind of row (`fetch(after)`, keyed by `key`) until one comes back
/// empty; imports each (wrapped by `wrap`) into `to` when given and adds it to `read`.
async fn pages<R, K, F, Fut>(
    what: &'static str,
    mut fetch: F,
    key: fn(&R) -> K,
    wrap: fn(Vec<R>) -> ImportBatch,
    to: Option<&dyn Store>,
    read: &mut Tally,
) -> Result<(), CopyError>
where
    K: Clone + fmt::Debug,
    F: FnMut(Option<K>) -> Fut,
    Fut: Future<Output = Result<Vec<R>, StoreError>>,
{
    let mut after: Option<K> = None;
    loop {
        let page = fetch(after.clone()).await?;
        let Some(last) = page.last().map(key) else {
            return Ok(());
        };
        let batch = wrap(page);
        let added = Tally::of(&batch);
        if let Some(to) = to {
            match to.import(batch).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    return Err(CopyError::AlreadyInTarget {
                        what,
                        after: after.map(|k| format!("{k:?}")),
                        copied: *read,
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        *read += added;
        after = Some(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_hide_passwords() {
        assert_eq!(
            "sled:/var/lib/fast-seller".parse::<Location>(),
            Ok(Location::Sled("/var/lib/fast-seller".into()))
        );
        let pg: Location = "postgres://fast:s3cret@db/fast".parse().unwrap();
        assert_eq!(pg.to_string(), "postgres://fast:***@db/fast");
        assert!(format!("{pg:?}").contains("***"));
        for bad in ["sled:", "/var/lib/x", "mysql://db", ""] {
            assert!(bad.parse::<Location>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tally_differences_are_per_field() {
        let before = Tally {
            orders: 2,
            outbox_attempts: 1,
            ..Tally::default()
        };
        let after = Tally {
            orders: 5,
            outbox_dead: 1,
            outbox_attempts: 4,
            ..Tally::default()
        };
        assert_eq!(
            after.since(&before),
            Some(Tally {
                orders: 3,
                outbox_dead: 1,
                outbox_attempts: 3,
                ..Tally::default()
            })
        );
        assert_eq!(before.since(&after), None);
    }
}
