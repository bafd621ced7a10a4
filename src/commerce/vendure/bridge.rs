//! `--backend vendure`: the catalog read from Vendure (and kept as a snapshot), and the
//! outbox's events carried into Vendure: a conversion becomes one Vendure order, placed
//! idempotently by Fast order id.

use super::catalog::{TaxZoneStrategy, VendureCatalog};
use super::orders::{Address, Customer, OrderLine, PlaceOrder, Placed};
use super::snapshot::{Snapshot, SnapshotError};
use super::{VendureClient, VendureError};
use crate::backend::{CommerceBackend, Delivered, DeliveryError, Event};
use crate::domain::{Catalog, CatalogError};
use crate::protocol::{Address as FastAddress, FastOrder, Money, User};
use crate::service::platform::{Platform, PlatformError};
use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The least time an outbox attempt gets with this backend: a placement is a dozen Admin API
/// calls, each re-running Vendure's order calculation.
pub const PLACEMENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Deliveries in flight at once with this backend (at most): Vendure works through each
/// order's calls in sequence, and many placements at once only make each one slower (with the
/// embedded sql.js database it is one thread), until they all miss [`PLACEMENT_TIMEOUT`].
pub const PLACEMENTS_AT_ONCE: usize = 2;

/// Why the catalog could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading the catalog from Vendure: {0}")]
    Vendure(#[from] VendureError),
    #[error("the Vendure catalog cannot be used: {0}")]
    Catalog(#[from] CatalogError),
    #[error("the stored Vendure catalog: {0}")]
    Snapshot(#[from] SnapshotError),
}

pub struct VendureBridge {
    client: VendureClient,
    /// As configured; `None`: found out at the first read (then kept in `detected`).
    strategy: Option<TaxZoneStrategy>,
    detected: std::sync::Mutex<Option<TaxZoneStrategy>>,
    payment_method: String,
    data_dir: PathBuf,
}

/// A catalog ready to price with, from Vendure or from the stored snapshot.
pub struct Synced {
    pub catalog: Catalog,
    pub snapshot: Snapshot,
}

impl VendureBridge {
    pub fn new(
        client: VendureClient,
        strategy: Option<TaxZoneStrategy>,
        payment_method: String,
        data_dir: PathBuf,
    ) -> VendureBridge {
        VendureBridge {
            client,
            strategy,
            detected: std::sync::Mutex::new(None),
            payment_method,
            data_dir,
        }
    }

    /// Reads the catalog from Vendure and maps it, logging what cannot be mapped; stores
    /// nothing (`catalog sync --dry-run`).
    pub async fn read(&self, now_ms: u64) -> Result<Synced, SyncError> {
        let catalog = self.client.catalog().await?;
        for u in &catalog.unmapped {
            tracing::warn!(what = %u.what, why = %u.why, "not mapped from Vendure");
        }
        let strategy = self.strategy_for(&catalog).await?;
        let snapshot = Snapshot {
            fetched_at_ms: now_ms,
            catalog,
            tax_zone: Some(strategy),
        };
        let mapped = snapshot.catalog.to_catalog(strategy)?;
        Ok(Synced {
            catalog: mapped,
            snapshot,
        })
    }

    /// [`VendureBridge::read`], then stores the snapshot as the last good one (only once it
    /// maps to a usable catalog).
    pub async fn sync(&self, now_ms: u64) -> Result<Synced, SyncError> {
        let synced = self.read(now_ms).await?;
        synced.snapshot.save(&self.data_dir)?;
        Ok(synced)
    }

    /// The last good snapshot, `None` before the first sync.
    pub fn stored(&self) -> Result<Option<Synced>, SyncError> {
        let Some(snapshot) = Snapshot::load(&self.data_dir)? else {
            return Ok(None);
        };
        let strategy = self
            .strategy
            .or(snapshot.tax_zone)
            .unwrap_or(TaxZoneStrategy::Address);
        let catalog = snapshot.catalog.to_catalog(strategy)?;
        Ok(Some(Synced { catalog, snapshot }))
    }

    /// The configured strategy, else the one found out earlier, else a probe's (once per
    /// process: the probe makes and deletes a draft order).
    async fn strategy_for(&self, catalog: &VendureCatalog) -> Result<TaxZoneStrategy, SyncError> {
        if let Some(s) = self.strategy.or(self.remembered()) {
            return Ok(s);
        }
        let found = self.client.probe_tax_zone(catalog).await?;
        let strategy = found.unwrap_or(TaxZoneStrategy::Address);
        match found {
            Some(s) => tracing::info!(strategy = ?s, "Vendure's tax zone strategy, found out with a draft order"),
            None => tracing::info!("no variant is taxed differently outside the default zone: the tax zone strategy makes no difference"),
        }
        if let Ok(mut d) = self.detected.lock() {
            *d = Some(strategy);
        }
        Ok(strategy)
    }

    fn remembered(&self) -> Option<TaxZoneStrategy> {
        self.detected.lock().ok().and_then(|d| *d)
    }

    async fn place(&self, order: &FastOrder) -> Result<Placed, DeliveryError> {
        let place = place_order(order, &self.payment_method).map_err(|detail| {
            DeliveryError::Permanent {
                detail,
                status: None,
            }
        })?;
        self.client
            .place_order(&place)
            .await
            .map_err(delivery_error)
    }
}

/// Worth retrying: Vendure down or failing, a refused key the merchant may fix, a database
/// error (a concurrent placement of the same order makes the retry find it).
fn delivery_error(e: VendureError) -> DeliveryError {
    let detail = e.to_string();
    match e {
        VendureError::Transient(_)
        | VendureError::Forbidden { .. }
        | VendureError::GraphQl { .. }
        | VendureError::Http { .. } => DeliveryError::Transient {
            detail,
            status: None,
            retry_after: None,
        },
        VendureError::Result { .. }
        | VendureError::Decode { .. }
        | VendureError::NotFound { .. }
        | VendureError::InsufficientStock { .. }
        | VendureError::Unsupported(_) => DeliveryError::Permanent {
            detail,
            status: None,
        },
    }
}

#[async_trait]
impl Platform for VendureBridge {
    fn name(&self) -> &'static str {
        "Vendure"
    }

    async fn customer_by_email(&self, email: &str) -> Result<Option<User>, PlatformError> {
        let found = self
            .client
            .customer_by_email(email)
            .await
            .map_err(|e| PlatformError(e.to_string()))?;
        Ok(found.map(|c| User {
            external_user_id: c.id,
            email: c.email,
            first_name: c.first_name,
            last_name: c.last_name,
            phone: c.phone_number.filter(|p| !p.is_empty()),
        }))
    }
}

/// The part of an outbox event the bridge reads.
#[derive(Deserialize)]
struct EventBody {
    order: FastOrder,
}

#[async_trait]
impl CommerceBackend for VendureBridge {
    fn name(&self) -> &'static str {
        "vendure"
    }

    async fn deliver(&self, event: &Event<'_>) -> Result<Delivered, DeliveryError> {
        if event.event_type != "order.converted" {
            // Later changes are Fast's and the merchant's; Vendure learns of a conversion only.
            return Ok(Delivered {
                status: None,
                detail: format!("{}: nothing to do in Vendure", event.event_type),
            });
        }
        let body: EventBody =
            serde_json::from_slice(event.body).map_err(|e| DeliveryError::Permanent {
                detail: format!("event {} has no readable order: {e}", event.id),
                status: None,
            })?;
        let placed = self.place(&body.order).await?;
        if placed.mismatch {
            tracing::warn!(
                order_id = event.order_id,
                vendure_order = %placed.code,
                vendure_total = placed.total_with_tax,
                "Vendure's total differs from what Fast charged (a note was added to the Vendure order)"
            );
        }
        Ok(Delivered {
            status: None,
            detail: format!(
                "Vendure order {} ({}){}",
                placed.code,
                placed.state,
                if placed.mismatch {
                    ", total differs from Fast's"
                } else {
                    ""
                }
            ),
        })
    }
}

/// A string field of an address (Fast's `OrderAddress` keeps these untyped).
fn field(a: &FastAddress, key: &str) -> Option<String> {
    a.extra
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn vendure_address(a: &FastAddress) -> Address {
    let name = [field(a, "first_name"), field(a, "last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Address {
        full_name: name,
        company: field(a, "company"),
        street_line1: field(a, "address_1").unwrap_or_default(),
        street_line2: field(a, "address_2"),
        city: field(a, "city_locality").unwrap_or_default(),
        province: field(a, "state_province").or_else(|| a.subdivision_code()),
        postal_code: field(a, "postal_code").unwrap_or_default(),
        country_code: a.country_iso2().unwrap_or_default(),
        phone_number: field(a, "phone"),
    }
}

/// An amount in minor units, exactly (precision 2); anything finer is refused.
fn minor_units(m: Money) -> Result<i64, String> {
    let cents = m.0 * Decimal::ONE_HUNDRED;
    if cents.fract() != Decimal::ZERO {
        return Err(format!("{m} has more than 2 decimals"));
    }
    i64::try_from(cents).map_err(|_| format!("{m} is out of range"))
}

/// What Vendure needs to place a converted Fast order.
fn place_order(order: &FastOrder, payment_method: &str) -> Result<PlaceOrder, String> {
    let fast_order_id = order
        .id
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .filter(|id| !id.is_empty())
        .ok_or("the order has no Fast id")?;
    let plan = order.shipment_plans.first();
    let ship_to = plan.map_or(&order.bill_to, |p| &p.ship_to);
    let email = field(&order.bill_to, "email")
        .or_else(|| field(ship_to, "email"))
        .ok_or(
            "the order has no e-mail address (bill_to.email): Vendure needs one for the customer",
        )?;
    let names = |a: &FastAddress| (field(a, "first_name"), field(a, "last_name"));
    let (first, last) = match names(&order.bill_to) {
        (None, None) => names(ship_to),
        given => given,
    };
    let lines = order
        .lines
        .iter()
        .filter(|l| l.quantity.0 > 0)
        .map(|l| {
            Ok(OrderLine {
                sku: l
                    .external_variant_id
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        format!(
                            "line {} has no variant (SKU)",
                            l.id.as_ref().map_or("?", |i| i.as_str())
                        )
                    })?,
                quantity: l.quantity.0,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let shipping_method = plan
        .and_then(|p| p.selected_option.as_ref())
        .and_then(|o| o.external_id.clone())
        .ok_or("the order has no selected shipping option")?;
    Ok(PlaceOrder {
        fast_order_id,
        customer: Customer {
            id: String::new(),
            email,
            first_name: first.unwrap_or_default(),
            last_name: last.unwrap_or_default(),
            phone_number: field(&order.bill_to, "phone"),
        },
        shipping_address: vendure_address(ship_to),
        billing_address: vendure_address(&order.bill_to),
        lines,
        coupon_codes: order
            .coupons
            .iter()
            .filter(|c| c.applied)
            .map(|c| c.code.clone())
            .collect(),
        shipping_method,
        payment_method: payment_method.to_owned(),
        charged_total: minor_units(order.total_amount.unwrap_or_default())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> FastOrder {
        serde_json::from_value(json!({
            "id": "f-1",
            "bill_to": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                        "address_1": "1 Main St", "city_locality": "Springfield",
                        "postal_code": "12345", "country": "US", "state_province": "Illinois"},
            "lines": [
                {"id": "l1", "external_variant_id": "L2201308", "quantity": 2},
                {"id": "l2", "external_variant_id": "GONE", "quantity": 0}
            ],
            "shipment_plans": [{"ship_to": {"first_name": "Bob", "country_code": "DE",
                                            "address_1": "Weg 1", "city_locality": "Berlin",
                                            "postal_code": "10115"},
                                "lines": [],
                                "selected_option": {"external_id": "standard-shipping"}}],
            "coupons": [{"code": "PCT15", "applied": true}, {"code": "NOPE", "applied": false}],
            "total_amount": "1563.80"
        }))
        .unwrap()
    }

    #[test]
    fn a_converted_order_maps_to_a_placement() {
        let p = place_order(&order(), "fast").unwrap();
        assert_eq!(p.fast_order_id, "f-1");
        assert_eq!(p.customer.email, "ada@example.com");
        assert_eq!(
            (
                p.customer.first_name.as_str(),
                p.customer.last_name.as_str()
            ),
            ("Ada", "Lovelace")
        );
        assert_eq!(
            p.lines,
            [OrderLine {
                sku: "L2201308".into(),
                quantity: 2
            }]
        );
        assert_eq!(p.shipping_address.country_code, "DE");
        assert_eq!(p.shipping_address.full_name, "Bob");
        assert_eq!(p.billing_address.province.as_deref(), Some("Illinois"));
        assert_eq!(p.coupon_codes, ["PCT15"]);
        assert_eq!(p.shipping_method, "standard-shipping");
        assert_eq!(p.charged_total, 156_380);
    }

    #[test]
    fn what_vendure_cannot_take_is_named() {
        let mut o = order();
        o.total_amount = Some(Money("1.005".parse().unwrap()));
        assert!(place_order(&o, "fast").unwrap_err().contains("2 decimals"));
        let mut o = order();
        o.bill_to.extra.remove("email");
        assert!(place_order(&o, "fast").unwrap_err().contains("e-mail"));
        let mut o = order();
        o.shipment_plans.clear();
        assert!(place_order(&o, "fast")
            .unwrap_err()
            .contains("shipping option"));
    }
}
