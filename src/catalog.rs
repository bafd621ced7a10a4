//! Where the catalog comes from: the merchant's file, the bundled demo catalog, or a
//! commerce platform (replaced while serving when the platform's catalog is read again).

use crate::domain::{Catalog, CatalogError};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The catalog the service prices with: swapped whole when a fresh one arrives, so a request
/// prices with one catalog from start to end.
pub struct SharedCatalog {
    current: RwLock<Arc<Catalog>>,
    /// `demo`, `file` or the platform's name.
    source: &'static str,
    /// When the current catalog was read from its source (ms since the epoch; 0: at start).
    read_at_ms: AtomicU64,
}

impl SharedCatalog {
    pub fn new(catalog: Catalog, source: &'static str, read_at_ms: u64) -> SharedCatalog {
        SharedCatalog {
            current: RwLock::new(Arc::new(catalog)),
            source,
            read_at_ms: AtomicU64::new(read_at_ms),
        }
    }

    pub fn current(&self) -> Arc<Catalog> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, catalog: Catalog, read_at_ms: u64) {
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = Arc::new(catalog);
        self.read_at_ms.store(read_at_ms, Ordering::Relaxed);
    }

    pub fn source(&self) -> &'static str {
        self.source
    }

    pub fn read_at_ms(&self) -> u64 {
        self.read_at_ms.load(Ordering::Relaxed)
    }
}

/// The bundled demo catalog (`fixtures/catalog/demo.json`), used when no file is given.
pub const DEMO_CATALOG: &str = include_str!("../fixtures/catalog/demo.json");

pub fn load(path: Option<&Path>) -> Result<Catalog, CatalogError> {
    match path {
        None => Catalog::parse(DEMO_CATALOG),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| CatalogError(format!("cannot read {}: {e}", p.display())))?;
            Catalog::parse(&text).map_err(|e| CatalogError(format!("{}: {}", p.display(), e.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_catalog_is_valid() {
        let c = super::load(None).unwrap();
        assert_eq!(c.currency, "USD");
        assert!(c.product("tee-01").is_some());
    }
}
