//! Which `TaxZoneStrategy` a Vendure server runs: its Admin API does not say, and guessing
//! wrong taxes every order outside the default zone at the wrong rate. A throwaway draft
//! order shipped to a country whose zone taxes some variant differently from the default
//! zone shows it; the draft is deleted again.

use super::catalog::{TaxZoneStrategy, VendureCatalog};
use super::client::{VendureClient, ORDERS};
use super::VendureError;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::str::FromStr;

/// The probe's address: enough for Vendure to set it, obviously not a customer's.
fn address(country: &str) -> Value {
    json!({
        "fullName": "fast-seller tax-zone probe",
        "streetLine1": "-",
        "city": "-",
        "postalCode": "-",
        "countryCode": country,
    })
}

impl VendureClient {
    /// The server's strategy, or `None` when no variant is taxed differently outside the
    /// default zone (then both strategies price every order alike).
    pub async fn probe_tax_zone(
        &self,
        catalog: &VendureCatalog,
    ) -> Result<Option<TaxZoneStrategy>, VendureError> {
        let by_address = catalog.price_book(TaxZoneStrategy::Address);
        let default = by_address.default_zone.as_str();
        let sellable = catalog
            .variants
            .iter()
            .filter(|v| v.enabled && v.stock.available != Some(0));
        let probe = sellable
            .flat_map(|v| catalog.zones.iter().map(move |z| (v, z)))
            .find_map(|(v, z)| {
                let country = z.countries.first()?;
                let zone = by_address.zone_for(Some(country));
                let (there, home) = (
                    by_address.rate(zone, &v.tax_category_id),
                    by_address.rate(default, &v.tax_category_id),
                );
                (zone != default && there != home).then(|| (v, country.clone(), there, home))
            });
        let Some((variant, country, there, home)) = probe else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            create_draft_order: Id,
        }
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let created: Created = self.op(ORDERS, "CreateDraftOrder", json!({})).await?;
        let id = created.create_draft_order.id;
        let rate = self.probe_rate(&id, &country, &variant.id).await;
        // Always removed, whatever the probe found.
        let deleted = self
            .op::<Value>(ORDERS, "DeleteDraftOrder", json!({ "orderId": id }))
            .await;
        let rate = rate?;
        deleted?;
        if rate == there {
            Ok(Some(TaxZoneStrategy::Address))
        } else if rate == home {
            Ok(Some(TaxZoneStrategy::Channel))
        } else {
            Err(VendureError::Unsupported(format!(
                "a line shipped to {country} is taxed at {rate} %, neither its zone's {there} % \
                 nor the default zone's {home} %: a custom TaxZoneStrategy"
            )))
        }
    }

    /// The tax rate Vendure gives `variant` in draft `id` shipped to `country`.
    async fn probe_rate(
        &self,
        id: &str,
        country: &str,
        variant: &str,
    ) -> Result<Decimal, VendureError> {
        self.op::<Value>(
            ORDERS,
            "SetDraftOrderShippingAddress",
            json!({ "orderId": id, "input": address(country) }),
        )
        .await?;
        self.op::<Value>(
            ORDERS,
            "AddItemToDraftOrder",
            json!({ "orderId": id, "productVariantId": variant, "quantity": 1 }),
        )
        .await?;
        let order: Value = self.op(ORDERS, "OrderById", json!({ "id": id })).await?;
        let rate = &order["order"]["lines"][0]["taxRate"];
        Decimal::from_str(&rate.to_string())
            .map(|d| d.normalize())
            .map_err(|_| VendureError::Decode {
                operation: "OrderById".into(),
                message: format!("the probe's line has no tax rate ({rate})"),
            })
    }
}
