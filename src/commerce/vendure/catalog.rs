//! The catalog snapshot: what Vendure sells and how it prices, mapped to fast-seller's terms
//! (Fast `external_product_id` = product slug, `external_variant_id` = variant SKU, options by
//! option-group code and option code). What cannot be mapped is listed in
//! [`VendureCatalog::unmapped`], never dropped silently.

use super::client::{VendureClient, CATALOG};
use super::VendureError;
use crate::domain::vendure_pricing::{
    BookPromotion, BookShipping, BookVariant, FlatRate, IncludesTax, MinimumOrderAmount, PriceBook,
    Promotion, PromotionAction,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::str::FromStr;

/// Which zone taxes an order (the server's `TaxZoneStrategy`; the Admin API does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TaxZoneStrategy {
    /// `AddressBasedTaxZoneStrategy`: the zone of the shipping address's country.
    Address,
    /// `DefaultTaxZoneStrategy`: always the channel's default tax zone.
    Channel,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Channel {
    pub id: String,
    pub code: String,
    pub currency: String,
    pub prices_include_tax: bool,
    pub default_tax_zone_id: String,
}

/// Stock of a variant. `available` is what can still be sold (`stockOnHand − stockAllocated
/// − outOfStockThreshold`); `None` when Vendure does not track this variant's inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stock {
    pub on_hand: i64,
    pub allocated: i64,
    pub available: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OptionRef {
    pub group: String,
    pub code: String,
}

/// A sellable variant. Prices in the channel currency's minor units.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Variant {
    pub id: String,
    /// Fast's `external_variant_id`.
    pub sku: String,
    pub name: String,
    pub product_id: String,
    /// Fast's `external_product_id`.
    pub product_slug: String,
    pub product_name: String,
    /// The variant and its product are enabled.
    pub enabled: bool,
    /// The stored price: with the default zone's tax when the channel's `pricesIncludeTax`.
    pub price: i64,
    /// Net and with tax in the channel's default tax zone (as the Admin API derives them).
    pub price_net: i64,
    pub price_with_tax: i64,
    pub stock: Stock,
    pub tax_category_id: String,
    pub options: Vec<OptionRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaxCategory {
    pub id: String,
    pub name: String,
    pub is_default: bool,
}

/// A zone and its member countries (ISO codes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub countries: Vec<String>,
}

/// An enabled tax rate for every customer (group-specific rates are listed as unmapped).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaxRate {
    pub id: String,
    pub name: String,
    pub zone_id: String,
    pub category_id: String,
    pub rate: Decimal,
}

/// A flat-rate shipping method with the default eligibility checker. Vendure's methods have
/// no zones: every eligible method is offered whatever the address.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShippingMethod {
    pub id: String,
    pub code: String,
    pub name: String,
    /// Offered when the order's net subtotal reaches this.
    pub order_minimum: i64,
    pub flat_rate: FlatRate,
}

/// An enabled promotion of the standard kinds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VendurePromotion {
    pub id: String,
    pub name: String,
    /// `None`: automatic, applies to every order that passes its conditions.
    pub coupon_code: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub promotion: Promotion,
}

/// Something in Vendure that fast-seller does not reproduce, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unmapped {
    pub what: String,
    pub why: String,
}

/// A snapshot of a Vendure channel's catalog.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VendureCatalog {
    pub channel: Channel,
    pub variants: Vec<Variant>,
    pub tax_categories: Vec<TaxCategory>,
    pub zones: Vec<Zone>,
    pub tax_rates: Vec<TaxRate>,
    pub shipping_methods: Vec<ShippingMethod>,
    pub promotions: Vec<VendurePromotion>,
    pub unmapped: Vec<Unmapped>,
}

// ---- the answers, as the documents ask for them ------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelData {
    active_channel: RawChannel,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawChannel {
    id: String,
    code: String,
    default_currency_code: String,
    prices_include_tax: bool,
    default_tax_zone: Option<IdOnly>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    #[serde(default)]
    total_items: Option<i64>,
    items: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariantsData {
    product_variants: Page<RawVariant>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawVariant {
    pub(super) id: String,
    pub(super) sku: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    price: i64,
    #[serde(default)]
    price_with_tax: i64,
    #[serde(default)]
    prices: Vec<RawPrice>,
    pub(super) stock_on_hand: i64,
    pub(super) stock_allocated: i64,
    pub(super) track_inventory: String,
    #[serde(default)]
    pub(super) out_of_stock_threshold: i64,
    #[serde(default)]
    pub(super) use_global_out_of_stock_threshold: Option<bool>,
    #[serde(default)]
    tax_category: Option<IdOnly>,
    #[serde(default)]
    options: Vec<RawOption>,
    #[serde(default)]
    product: Option<RawProduct>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPrice {
    currency_code: String,
    price: i64,
}

#[derive(Deserialize)]
struct RawOption {
    code: String,
    group: RawCode,
}

#[derive(Deserialize)]
struct RawCode {
    code: String,
}

#[derive(Deserialize)]
struct RawProduct {
    id: String,
    slug: String,
    name: String,
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaxData {
    zones: Page<RawZone>,
    tax_categories: Page<RawTaxCategory>,
    tax_rates: Page<RawTaxRate>,
}

#[derive(Deserialize)]
struct RawZone {
    id: String,
    name: String,
    members: Vec<RawCode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTaxCategory {
    id: String,
    name: String,
    is_default: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTaxRate {
    id: String,
    name: String,
    value: serde_json::Number,
    enabled: bool,
    zone: IdOnly,
    category: IdOnly,
    customer_group: Option<IdOnly>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShippingData {
    shipping_methods: Page<RawShippingMethod>,
}

#[derive(Deserialize)]
struct RawShippingMethod {
    id: String,
    code: String,
    name: String,
    checker: RawOperation,
    calculator: RawOperation,
}

#[derive(Deserialize)]
struct RawOperation {
    code: String,
    args: Vec<RawArg>,
}

#[derive(Deserialize)]
struct RawArg {
    name: String,
    value: String,
}

impl RawOperation {
    fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromotionsData {
    promotions: Page<RawPromotion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromotion {
    id: String,
    name: String,
    coupon_code: Option<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    conditions: Vec<RawOperation>,
    actions: Vec<RawOperation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServerConfigData {
    pub(super) global_settings: GlobalSettings,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GlobalSettings {
    pub(super) track_inventory: bool,
    pub(super) out_of_stock_threshold: i64,
    server_config: RawServerConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawServerConfig {
    money_strategy_precision: i64,
    custom_field_config: RawCustomFields,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCustomFields {
    #[serde(rename = "Order")]
    order: Vec<RawCode2>,
}

#[derive(Deserialize)]
struct RawCode2 {
    name: String,
}

/// Page size of the variant listing (the Admin API's default list limit allows 1000).
const PAGE: i64 = 100;

impl RawVariant {
    /// Stock with the global defaults applied (`trackInventory` INHERIT, the global threshold).
    pub(super) fn stock(&self, globals: &GlobalSettings) -> Stock {
        let tracked = match self.track_inventory.as_str() {
            "TRUE" => true,
            "FALSE" => false,
            _ => globals.track_inventory,
        };
        let threshold = if self.use_global_out_of_stock_threshold.unwrap_or(true) {
            globals.out_of_stock_threshold
        } else {
            self.out_of_stock_threshold
        };
        Stock {
            on_hand: self.stock_on_hand,
            allocated: self.stock_allocated,
            available: tracked
                .then(|| (self.stock_on_hand - self.stock_allocated - threshold).max(0)),
        }
    }
}

impl VendureClient {
    pub(super) async fn global_settings(&self) -> Result<GlobalSettings, VendureError> {
        let data: ServerConfigData = self.op(CATALOG, "ServerConfig", json!({})).await?;
        Ok(data.global_settings)
    }

    /// Reads the whole catalog (products and variants paged) and maps it.
    pub async fn catalog(&self) -> Result<VendureCatalog, VendureError> {
        let globals = self.global_settings().await?;
        let precision = globals.server_config.money_strategy_precision;
        if precision != 2 {
            return Err(VendureError::Unsupported(format!(
                "MoneyStrategy precision {precision} (only 2 is supported)"
            )));
        }
        let channel: ChannelData = self.op(CATALOG, "Channel", json!({})).await?;
        let mut variants = Vec::new();
        let mut skip = 0;
        loop {
            let page: VariantsData = self
                .op(CATALOG, "Variants", json!({ "skip": skip, "take": PAGE }))
                .await?;
            let n = page.product_variants.items.len() as i64;
            variants.extend(page.product_variants.items);
            skip += PAGE;
            if n == 0 || skip >= page.product_variants.total_items.unwrap_or(0) {
                break;
            }
        }
        let tax: TaxData = self.op(CATALOG, "Tax", json!({})).await?;
        let shipping: ShippingData = self.op(CATALOG, "ShippingMethods", json!({})).await?;
        let promotions: PromotionsData = self.op(CATALOG, "Promotions", json!({})).await?;
        let has_fast_order_id = globals
            .server_config
            .custom_field_config
            .order
            .iter()
            .any(|f| f.name == "fastOrderId");
        Ok(map(
            channel.active_channel,
            &globals,
            has_fast_order_id,
            variants,
            tax,
            shipping.shipping_methods.items,
            promotions.promotions.items,
        ))
    }
}

fn unmapped(what: impl Into<String>, why: impl Into<String>) -> Unmapped {
    Unmapped {
        what: what.into(),
        why: why.into(),
    }
}

fn map(
    channel: RawChannel,
    globals: &GlobalSettings,
    has_fast_order_id: bool,
    variants: Vec<RawVariant>,
    tax: TaxData,
    shipping: Vec<RawShippingMethod>,
    promotions: Vec<RawPromotion>,
) -> VendureCatalog {
    let mut skipped = Vec::new();
    if !has_fast_order_id {
        skipped.push(unmapped(
            "Order custom field fastOrderId",
            "not declared: install the fast-seller plugin, or orders cannot be placed idempotently",
        ));
    }
    let channel = Channel {
        id: channel.id,
        code: channel.code,
        currency: channel.default_currency_code,
        prices_include_tax: channel.prices_include_tax,
        default_tax_zone_id: channel.default_tax_zone.map(|z| z.id).unwrap_or_default(),
    };
    if channel.default_tax_zone_id.is_empty() {
        skipped.push(unmapped(
            format!("channel {}", channel.code),
            "no default tax zone: lines are taxed only in a zone that contains the address",
        ));
    }

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut mapped_variants = Vec::new();
    for v in variants {
        let what = format!("variant {} ({})", v.id, v.sku);
        let Some(product) = &v.product else {
            skipped.push(unmapped(what, "no product"));
            continue;
        };
        if v.sku.trim().is_empty() {
            skipped.push(unmapped(what, "no SKU: Fast names variants by SKU"));
            continue;
        }
        if let Some(other) = seen.get(&v.sku) {
            skipped.push(unmapped(what, format!("SKU also used by variant {other}")));
            continue;
        }
        let Some(price) = v
            .prices
            .iter()
            .find(|p| p.currency_code == channel.currency)
        else {
            skipped.push(unmapped(what, format!("no price in {}", channel.currency)));
            continue;
        };
        let Some(category) = &v.tax_category else {
            skipped.push(unmapped(what, "no tax category"));
            continue;
        };
        seen.insert(v.sku.clone(), v.id.clone());
        mapped_variants.push(Variant {
            stock: v.stock(globals),
            id: v.id.clone(),
            sku: v.sku.clone(),
            name: v.name.clone(),
            product_id: product.id.clone(),
            product_slug: product.slug.clone(),
            product_name: product.name.clone(),
            enabled: v.enabled.unwrap_or(true) && product.enabled,
            price: price.price,
            price_net: v.price,
            price_with_tax: v.price_with_tax,
            tax_category_id: category.id.clone(),
            options: v
                .options
                .iter()
                .map(|o| OptionRef {
                    group: o.group.code.clone(),
                    code: o.code.clone(),
                })
                .collect(),
        });
    }

    let zones = tax
        .zones
        .items
        .into_iter()
        .map(|z| Zone {
            id: z.id,
            name: z.name,
            countries: z.members.into_iter().map(|m| m.code).collect(),
        })
        .collect();
    let tax_categories = tax
        .tax_categories
        .items
        .into_iter()
        .map(|c| TaxCategory {
            id: c.id,
            name: c.name,
            is_default: c.is_default,
        })
        .collect();
    let mut tax_rates = Vec::new();
    for r in tax.tax_rates.items {
        let what = format!("tax rate {} ({})", r.id, r.name);
        if !r.enabled {
            continue; // Vendure does not apply it either.
        }
        if r.customer_group.is_some() {
            skipped.push(unmapped(what, "customer-group tax rates are not supported"));
            continue;
        }
        match Decimal::from_str(&r.value.to_string()) {
            Ok(rate) => tax_rates.push(TaxRate {
                id: r.id,
                name: r.name,
                zone_id: r.zone.id,
                category_id: r.category.id,
                rate,
            }),
            Err(_) => skipped.push(unmapped(what, format!("rate {} is not a number", r.value))),
        }
    }

    let mut shipping_methods = Vec::new();
    for m in shipping {
        match shipping_method(&m) {
            Ok(method) => shipping_methods.push(method),
            Err(why) => skipped.push(unmapped(format!("shipping method {}", m.code), why)),
        }
    }

    let mut mapped_promotions = Vec::new();
    for p in promotions {
        match promotion(&p) {
            Ok(promotion) => mapped_promotions.push(VendurePromotion {
                id: p.id,
                name: p.name,
                coupon_code: p.coupon_code.filter(|c| !c.is_empty()),
                starts_at: p.starts_at,
                ends_at: p.ends_at,
                promotion,
            }),
            Err(why) => skipped.push(unmapped(format!("promotion {} ({})", p.id, p.name), why)),
        }
    }

    VendureCatalog {
        channel,
        variants: mapped_variants,
        tax_categories,
        zones,
        tax_rates,
        shipping_methods,
        promotions: mapped_promotions,
        unmapped: skipped,
    }
}

fn int_arg(op: &RawOperation, name: &str) -> Result<i64, String> {
    parsed_arg(op, name, "an integer")
}

fn decimal_arg(op: &RawOperation, name: &str) -> Result<Decimal, String> {
    parsed_arg(op, name, "a number")
}

/// The operation's argument `name`, parsed; the error names the operation, the argument and
/// the `kind` of value it should have been.
fn parsed_arg<T: FromStr>(op: &RawOperation, name: &str, kind: &str) -> Result<T, String> {
    let value = op
        .arg(name)
        .ok_or_else(|| format!("{}: no argument {name}", op.code))?;
    value
        .trim()
        .parse()
        .map_err(|_| format!("{}: {name} {value:?} is not {kind}", op.code))
}

fn shipping_method(m: &RawShippingMethod) -> Result<ShippingMethod, String> {
    if m.checker.code != "default-shipping-eligibility-checker" {
        return Err(format!(
            "eligibility checker {} is not supported",
            m.checker.code
        ));
    }
    if m.calculator.code != "default-shipping-calculator" {
        return Err(format!(
            "calculator {} is not supported (only the flat rate)",
            m.calculator.code
        ));
    }
    let includes_tax = match m.calculator.arg("includesTax") {
        Some("include") => IncludesTax::Include,
        Some("exclude") => IncludesTax::Exclude,
        Some("auto") | None => IncludesTax::Auto,
        Some(other) => return Err(format!("includesTax {other:?} is not supported")),
    };
    Ok(ShippingMethod {
        id: m.id.clone(),
        code: m.code.clone(),
        name: m.name.clone(),
        order_minimum: int_arg(&m.checker, "orderMinimum").unwrap_or(0),
        flat_rate: FlatRate {
            rate: int_arg(&m.calculator, "rate")?,
            includes_tax,
            tax_rate: decimal_arg(&m.calculator, "taxRate")?,
        },
    })
}

fn promotion(p: &RawPromotion) -> Result<Promotion, String> {
    let mut conditions = Vec::new();
    for c in &p.conditions {
        if c.code != "minimum_order_amount" {
            return Err(format!("condition {} is not supported", c.code));
        }
        conditions.push(MinimumOrderAmount {
            amount: int_arg(c, "amount")?,
            tax_inclusive: c.arg("taxInclusive") == Some("true"),
        });
    }
    let mut actions = Vec::new();
    for a in &p.actions {
        actions.push(match a.code.as_str() {
            "order_percentage_discount" => PromotionAction::OrderPercentage {
                discount: decimal_arg(a, "discount")?,
            },
            "order_fixed_discount" => PromotionAction::OrderFixed {
                discount: int_arg(a, "discount")?,
            },
            "products_percentage_discount" => {
                let ids = a.arg("productVariantIds").unwrap_or("[]");
                let ids: Vec<Value> = serde_json::from_str(ids)
                    .map_err(|_| format!("{}: productVariantIds {ids:?} is not a list", a.code))?;
                PromotionAction::ProductPercentage {
                    discount: decimal_arg(a, "discount")?,
                    variant_ids: ids
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect(),
                }
            }
            "free_shipping" => PromotionAction::FreeShipping,
            other => return Err(format!("action {other} is not supported")),
        });
    }
    if actions.is_empty() {
        return Err("no action".into());
    }
    Ok(Promotion {
        conditions,
        actions,
    })
}

impl VendureCatalog {
    pub fn variant_by_sku(&self, sku: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.sku == sku)
    }

    /// What the domain prices this channel's carts with, the order's tax zone chosen as the
    /// server's `strategy` does.
    pub fn price_book(&self, strategy: TaxZoneStrategy) -> PriceBook {
        PriceBook {
            prices_include_tax: self.channel.prices_include_tax,
            default_zone: self.channel.default_tax_zone_id.clone(),
            zone_by_address: strategy == TaxZoneStrategy::Address,
            zones: self
                .zones
                .iter()
                .map(|z| (z.id.clone(), z.countries.clone()))
                .collect(),
            rates: self
                .tax_rates
                .iter()
                .map(|r| ((r.zone_id.clone(), r.category_id.clone()), r.rate))
                .collect(),
            variants: self
                .variants
                .iter()
                .map(|v| {
                    let book = BookVariant {
                        id: v.id.clone(),
                        price: v.price,
                        tax_category: v.tax_category_id.clone(),
                    };
                    (v.sku.clone(), book)
                })
                .collect(),
            promotions: self
                .promotions
                .iter()
                .map(|p| BookPromotion {
                    name: p.name.clone(),
                    coupon_code: p.coupon_code.clone(),
                    promotion: p.promotion.clone(),
                })
                .collect(),
            shipping: self
                .shipping_methods
                .iter()
                .map(|m| BookShipping {
                    code: m.code.clone(),
                    name: m.name.clone(),
                    order_minimum: m.order_minimum,
                    flat_rate: m.flat_rate.clone(),
                })
                .collect(),
        }
    }
}
