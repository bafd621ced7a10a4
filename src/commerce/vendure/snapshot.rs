//! The catalog snapshot as fast-seller prices with it: a [`VendureCatalog`] mapped to the
//! domain's [`Catalog`] (products by slug, variants by SKU, options by group code and option
//! code, priced by Vendure's rules), and the last good snapshot kept in the data directory
//! so that start-up and Fast's calls work while Vendure is down.

use super::catalog::{TaxZoneStrategy, VendureCatalog};
use crate::domain::vendure_pricing::amount;
use crate::domain::{Catalog, CatalogError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the stored snapshot in the data directory.
pub const SNAPSHOT_FILE: &str = "vendure-catalog.json";

/// A catalog read from Vendure, and when (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub fetched_at_ms: u64,
    pub catalog: VendureCatalog,
    /// The server's strategy as configured or found out (absent in older snapshots).
    #[serde(default)]
    pub tax_zone: Option<TaxZoneStrategy>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: not a Vendure catalog snapshot ({message}); delete it and sync again")]
    Decode { path: String, message: String },
}

impl Snapshot {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(SNAPSHOT_FILE)
    }

    /// Writes the snapshot durably: a temporary file beside it, synced, then renamed over it.
    pub fn save(&self, data_dir: &Path) -> Result<(), SnapshotError> {
        let path = Snapshot::path(data_dir);
        let io = |e: std::io::Error| SnapshotError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let bytes = serde_json::to_vec(self).map_err(|e| SnapshotError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        std::fs::create_dir_all(data_dir).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// The stored snapshot, `None` when there is none yet.
    pub fn load(data_dir: &Path) -> Result<Option<Snapshot>, SnapshotError> {
        let path = Snapshot::path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SnapshotError::Io {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SnapshotError::Decode {
                path: path.display().to_string(),
                message: e.to_string(),
            })
    }
}

impl VendureCatalog {
    /// The domain catalog: enabled variants grouped by product slug, each named by its SKU,
    /// with the stock Vendure can still sell (untracked: unlimited), priced by Vendure's
    /// rules with the order's tax zone chosen as `strategy` says.
    pub fn to_catalog(&self, strategy: TaxZoneStrategy) -> Result<Catalog, CatalogError> {
        let mut products: BTreeMap<&str, (usize, Value)> = BTreeMap::new();
        for v in self.variants.iter().filter(|v| v.enabled) {
            let options: Map<String, Value> = v
                .options
                .iter()
                .map(|o| (o.group.clone(), Value::String(o.code.clone())))
                .collect();
            let mut variant = json!({
                "id": v.sku,
                "name": v.name,
                "price": amount(v.price_net).to_string(),
                "options": options,
            });
            if let (Some(stock), Some(obj)) = (v.stock.available, variant.as_object_mut()) {
                obj.insert("stock".into(), json!(stock));
            }
            let next = products.len();
            let (_, product) = products.entry(&v.product_slug).or_insert_with(|| {
                (
                    next,
                    json!({
                        "id": v.product_slug,
                        "name": v.product_name,
                        "fulfillment": "physical",
                        "price": amount(v.price_net).to_string(),
                        "variants": [],
                    }),
                )
            });
            if let Some(list) = product.get_mut("variants").and_then(Value::as_array_mut) {
                list.push(variant);
            }
        }
        let mut products: Vec<(usize, Value)> = products.into_values().collect();
        products.sort_by_key(|(i, _)| *i);
        let book = self.price_book(strategy);
        let shipping: Vec<Value> = book
            .shipping
            .iter()
            .map(|m| {
                json!({
                    "id": m.code,
                    "name": m.name,
                    "cost": amount(book.shipping_price(m).0).to_string(),
                })
            })
            .collect();
        let file = json!({
            "currency": self.channel.currency,
            "products": products.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
            "shipping": shipping,
        });
        Catalog::priced_by_vendure(&file.to_string(), book)
    }
}
