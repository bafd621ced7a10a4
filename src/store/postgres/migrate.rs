//! The schema: migrations embedded in the binary, applied once each under an advisory lock.

use sha2::{Digest, Sha256};

use super::error::Fail;
use super::PgStore;
use crate::store::StoreError;

/// First key of the advisory lock that serializes migrations (the second is the schema).
const MIGRATION_LOCK: i32 = 0x0fa5_7001;

/// A migration embedded in the binary.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Never edit an applied one: add a new file.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_in_flight",
        sql: include_str!("migrations/0002_in_flight.sql"),
    },
    Migration {
        version: 3,
        name: "0003_outbox_delivered",
        sql: include_str!("migrations/0003_outbox_delivered.sql"),
    },
];

impl PgStore {
    /// Applies the pending embedded migrations in one transaction, under an advisory lock
    /// (so concurrent instances apply each once), and returns their names.
    ///
    /// Refuses ([`StoreError::Io`]) when an applied migration's checksum differs from the
    /// embedded one. Creates the schema given to [`PgStore::connect`] when missing.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let schema = self.schema.as_deref();
        let applied = retrying!(self, "migrate", |client| migrate_once(&mut client, schema))?;
        for name in &applied {
            tracing::info!(migration = %name, "applied PostgreSQL migration");
        }
        Ok(applied)
    }
}

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn migrate_once(
    client: &mut deadpool_postgres::Client,
    schema: Option<&str>,
) -> Result<Vec<String>, Fail> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&MIGRATION_LOCK, &schema.unwrap_or("")],
    )
    .await?;
    if let Some(schema) = schema {
        let exists = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .await?
            .is_some();
        if !exists {
            // `schema` was checked to be a plain identifier by `connect`.
            tx.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
        }
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS fast_seller_migrations (\
             version integer PRIMARY KEY, \
             name text NOT NULL, \
             checksum text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let rows = tx
        .query(
            "SELECT version, name, checksum FROM fast_seller_migrations ORDER BY version",
            &[],
        )
        .await?;
    let mut done = Vec::with_capacity(rows.len());
    for row in &rows {
        let version: i32 = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let sum: String = row.try_get(2)?;
        match MIGRATIONS.iter().find(|m| m.version == version) {
            Some(m) if checksum(m.sql) != sum => {
                return Err(StoreError::Io(format!(
                    "migrate: migration {} was changed after it was applied (checksum \
                     mismatch); refusing to run",
                    m.name
                ))
                .into());
            }
            Some(_) => {}
            None => tracing::warn!(
                version,
                name = %name,
                "the database has a migration this build does not know (a newer fast-seller?)"
            ),
        }
        done.push(version);
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO fast_seller_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .await?;
        applied.push(m.name.to_owned());
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.version).unwrap(), i + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
