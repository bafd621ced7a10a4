//! Where the catalog comes from: the merchant's file, or the bundled demo catalog.

use crate::domain::{Catalog, CatalogError};
use std::path::Path;

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
