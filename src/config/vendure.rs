//! The settings of `--backend vendure` (README "Connect Vendure"): where the Admin API is,
//! how fast-seller signs in, and what the Admin API cannot tell it.

use super::{http_url, invalid, non_blank, optional, value, ConfigError, Secret};
use std::time::Duration;

/// How fast-seller signs in to the Admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendureCredentials {
    /// `FAST_SELLER_VENDURE_API_KEY` (header `vendure-api-key`).
    ApiKey(Secret),
    /// `FAST_SELLER_VENDURE_USERNAME` / `FAST_SELLER_VENDURE_PASSWORD` (a login session).
    Login { username: String, password: Secret },
}

/// Which zone taxes an order, as the Vendure server's `TaxZoneStrategy` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendureTaxZone {
    /// Found out at the first catalog read, with a throwaway draft order.
    Auto,
    /// `AddressBasedTaxZoneStrategy`: the zone of the order's country.
    Address,
    /// `DefaultTaxZoneStrategy` (Vendure's default): always the channel's default zone.
    Channel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendureSettings {
    /// The Admin API endpoint, e.g. `http://127.0.0.1:3000/admin-api`.
    pub url: String,
    pub credentials: VendureCredentials,
    pub channel_token: Option<String>,
    pub tax_zone: VendureTaxZone,
    /// Code of the payment method Fast's payments are recorded with.
    pub payment_method: String,
    /// How often the catalog is read again.
    pub catalog_refresh: Duration,
}

/// The values of the Vendure settings as given.
pub(super) struct Given {
    pub url: Option<String>,
    pub channel_token: Option<String>,
    pub tax_zone: Option<String>,
    pub payment_method: Option<String>,
    pub catalog_refresh: Option<String>,
    pub api_key: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The Vendure settings, required with `--backend vendure`; refused without it (a Vendure
/// URL that is silently ignored would be a surprise).
pub(super) fn resolve(
    given: Given,
    vendure_backend: bool,
) -> Result<Option<VendureSettings>, ConfigError> {
    let url = optional("vendure_url", non_blank(given.url), |v| {
        http_url(v).map(|u| u.trim_end_matches('/').to_string())
    })?;
    if !vendure_backend {
        return match url {
            Some(_) => Err(invalid("vendure_url", "needs --backend vendure")),
            None => Ok(None),
        };
    }
    let url = url.ok_or_else(|| {
        invalid(
            "vendure_url",
            "is required with --backend vendure (the Admin API, e.g. http://127.0.0.1:3000/admin-api)",
        )
    })?;
    let credentials = match (
        non_blank(given.api_key),
        non_blank(given.username),
        non_blank(given.password),
    ) {
        (Some(key), _, _) => VendureCredentials::ApiKey(Secret::new(key.trim())),
        (None, Some(username), Some(password)) => VendureCredentials::Login {
            username: username.trim().to_string(),
            password: Secret::new(password),
        },
        (None, Some(_), None) => {
            return Err(invalid(
                "vendure_password",
                "is required with FAST_SELLER_VENDURE_USERNAME",
            ))
        }
        (None, None, _) => {
            return Err(invalid(
                "vendure_api_key",
                "is required with --backend vendure (or FAST_SELLER_VENDURE_USERNAME and FAST_SELLER_VENDURE_PASSWORD)",
            ))
        }
    };
    Ok(Some(VendureSettings {
        url,
        credentials,
        channel_token: non_blank(given.channel_token).map(|t| t.trim().to_string()),
        tax_zone: value(
            "vendure_tax_zone",
            given.tax_zone,
            VendureTaxZone::Auto,
            |v| match v {
                "auto" => Ok(VendureTaxZone::Auto),
                "address" => Ok(VendureTaxZone::Address),
                "channel" => Ok(VendureTaxZone::Channel),
                _ => Err("expected auto, address or channel".into()),
            },
        )?,
        payment_method: value(
            "vendure_payment_method",
            given.payment_method,
            "fast".to_string(),
            |v| {
                if v.is_empty() {
                    Err("expected a payment method code".into())
                } else {
                    Ok(v.to_string())
                }
            },
        )?,
        catalog_refresh: value(
            "catalog_refresh",
            given.catalog_refresh,
            Duration::from_secs(300),
            |v| match super::duration(v)? {
                d if d < Duration::from_secs(10) => Err("must be at least 10s".into()),
                d => Ok(d),
            },
        )?,
    }))
}
