//! The merchant's catalog: products and variants, tax rates, shipping options, coupons.
//!
//! Parsed and validated once from JSON (README "The catalog"); a malformed catalog is refused with an
//! error naming the bad entry. Lookups are pure.

use super::vendure_pricing::PriceBook;
use crate::protocol::{CustomValue, FulfillmentModel, Money, ShippingOptionType};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Catalog amounts (prices, costs, coupon amounts) stay below this: a line of the most units
/// a line may have (`MAX_QUANTITY`) at such a price stays below the largest amount an order
/// can hold (`MAX_MONEY`), so no catalog price can by itself make an order unstorable.
pub const MAX_CATALOG_AMOUNT: Decimal = Decimal::from_parts(1_410_065_408, 2, 0, false, 0); // 10,000,000,000

#[derive(Debug, thiserror::Error)]
#[error("catalog: {0}")]
pub struct CatalogError(pub String);

#[derive(Debug, Clone)]
pub struct Catalog {
    pub currency: String,
    products: Vec<Product>,
    product_index: HashMap<String, usize>,
    /// variant id → (product index, variant index)
    variant_index: HashMap<String, (usize, usize)>,
    pub tax: TaxTable,
    pub shipping: Vec<ShippingRate>,
    coupons: Vec<Coupon>,
    /// Whose rules price a cart (README "Connect Vendure").
    pub rules: Rules,
}

/// Whose rules price a cart.
#[derive(Debug, Clone, Default)]
pub enum Rules {
    /// fast-seller's own (docs/pricing.md): the catalog's tax table, shipping rates, coupons.
    #[default]
    Standard,
    /// A Vendure channel's (docs/vendure.md), so that the total Fast charges is the total
    /// Vendure books.
    Vendure(Box<PriceBook>),
}

#[derive(Debug, Clone)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub description: String,
    pub image_url: String,
    pub fulfillment: FulfillmentModel,
    pub price: Decimal,
    pub stock: Option<i64>,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub id: String,
    pub name: String,
    pub price: Decimal,
    pub stock: Option<i64>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct TaxTable {
    pub default_rate: Decimal,
    pub rates: HashMap<String, Decimal>,
    pub shipping_taxable: bool,
}

impl TaxTable {
    /// `rates["CC-SS"]`, else `rates["CC"]`, else the default (also with no country).
    pub fn rate_for(&self, country: Option<&str>, subdivision: Option<&str>) -> Decimal {
        let Some(cc) = country else {
            return self.default_rate;
        };
        subdivision
            .and_then(|ss| self.rates.get(&format!("{cc}-{ss}")))
            .or_else(|| self.rates.get(cc))
            .copied()
            .unwrap_or(self.default_rate)
    }
}

#[derive(Debug, Clone)]
pub struct ShippingRate {
    pub id: String,
    pub name: String,
    pub cost: Decimal,
    /// Empty means everywhere.
    pub countries: Vec<String>,
    pub shipment_type: ShippingOptionType,
    pub service_level: Option<String>,
    pub carrier: Option<String>,
    pub free_over: Option<Decimal>,
}

impl ShippingRate {
    pub fn ships_to(&self, country: Option<&str>) -> bool {
        self.countries.is_empty() || country.is_some_and(|c| self.countries.iter().any(|x| x == c))
    }
}

#[derive(Debug, Clone)]
pub struct Coupon {
    pub code: String,
    pub kind: CouponKind,
    pub min_subtotal: Option<Decimal>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CouponKind {
    PercentOff(Decimal),
    AmountOff(Decimal),
    /// A commerce platform's promotion, priced by the platform's [`Rules`].
    Platform,
}

/// The catalog item a line resolved to: a product, and the variant when it has one.
#[derive(Debug, Clone, Copy)]
pub struct Sku<'a> {
    pub product: &'a Product,
    pub variant: Option<&'a Variant>,
}

impl Sku<'_> {
    /// The id a line stores in `external_variant_id` (the product id when no variant).
    pub fn id(&self) -> &str {
        self.variant.map_or(&self.product.id, |v| &v.id)
    }
    pub fn name(&self) -> &str {
        self.variant.map_or(&self.product.name, |v| &v.name)
    }
    pub fn price(&self) -> Decimal {
        self.variant.map_or(self.product.price, |v| v.price)
    }
    pub fn stock(&self) -> Option<i64> {
        match self.variant {
            Some(v) => v.stock,
            None => self.product.stock,
        }
    }
}

/// What a line or an item update says about its product.
#[derive(Debug, Clone, Copy, Default)]
pub struct SkuQuery<'a> {
    pub product_id: Option<&'a str>,
    pub variant_id: Option<&'a str>,
    pub options: &'a [CustomValue],
    /// Ids tried last, each as a variant id then as a product id
    /// (`external_item_id`, then the Fast item id itself).
    pub fallback_ids: &'a [&'a str],
}

impl Catalog {
    pub fn parse(json: &str) -> Result<Catalog, CatalogError> {
        let raw: raw::Catalog =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(json))
                .map_err(|e| CatalogError(format!("{} (at `{}`)", e.inner(), e.path())))?;
        raw.validate()
    }

    /// A catalog in the file's format (README "The catalog") that a commerce platform's
    /// rules price: its coupons are the book's coupon codes.
    pub fn priced_by_vendure(json: &str, book: PriceBook) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::parse(json)?;
        for code in book
            .promotions
            .iter()
            .filter_map(|p| p.coupon_code.as_ref())
        {
            if catalog.coupon(code).is_none() {
                catalog.coupons.push(Coupon {
                    code: code.clone(),
                    kind: CouponKind::Platform,
                    min_subtotal: None,
                    description: None,
                });
            }
        }
        catalog.rules = Rules::Vendure(Box::new(book));
        Ok(catalog)
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.product_index
            .get(id)
            .and_then(|&i| self.products.get(i))
    }

    fn variant(&self, id: &str) -> Option<Sku<'_>> {
        let &(p, v) = self.variant_index.get(id)?;
        let product = self.products.get(p)?;
        Some(Sku {
            product,
            variant: product.variants.get(v),
        })
    }

    /// docs/pricing.md "Catalog lookup": the variant named by id; else the variant whose options equal the line's
    /// options; else the product itself if it has no variants.
    pub fn resolve(&self, q: &SkuQuery<'_>) -> Option<Sku<'_>> {
        fn nonempty(s: Option<&str>) -> Option<&str> {
            s.filter(|s| !s.is_empty())
        }
        if let Some(vid) = nonempty(q.variant_id) {
            let sku = self.variant(vid).or_else(|| {
                // A product without variants may be named by its own id.
                self.product(vid)
                    .filter(|p| p.variants.is_empty())
                    .map(|product| Sku {
                        product,
                        variant: None,
                    })
            })?;
            return match nonempty(q.product_id) {
                Some(pid) if pid != sku.product.id => None,
                _ => Some(sku),
            };
        }
        if let Some(pid) = nonempty(q.product_id) {
            return self.resolve_in_product(self.product(pid)?, q.options);
        }
        q.fallback_ids
            .iter()
            .filter(|id| !id.is_empty())
            .find_map(|id| {
                self.variant(id)
                    .or_else(|| self.resolve_in_product(self.product(id)?, q.options))
            })
    }

    fn resolve_in_product<'a>(
        &'a self,
        product: &'a Product,
        options: &[CustomValue],
    ) -> Option<Sku<'a>> {
        if product.variants.is_empty() {
            return Some(Sku {
                product,
                variant: None,
            });
        }
        let wanted: BTreeMap<&str, &str> = options
            .iter()
            .map(|o| (o.key.as_str(), o.value.as_str()))
            .collect();
        product
            .variants
            .iter()
            .find(|v| {
                v.options.len() == wanted.len()
                    && v.options
                        .iter()
                        .all(|(k, val)| wanted.get(k.as_str()) == Some(&val.as_str()))
            })
            .map(|variant| Sku {
                product,
                variant: Some(variant),
            })
    }

    /// Coupon by code, case-insensitively.
    pub fn coupon(&self, code: &str) -> Option<&Coupon> {
        let code = code.trim();
        self.coupons
            .iter()
            .find(|c| c.code.eq_ignore_ascii_case(code))
    }

    pub fn shipping_rate(&self, id: &str) -> Option<&ShippingRate> {
        self.shipping.iter().find(|r| r.id == id)
    }
}

/// The catalog file as written (README "The catalog"), before validation.
mod raw {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Catalog {
        currency: String,
        products: Vec<Product>,
        #[serde(default)]
        tax: Option<Tax>,
        #[serde(default)]
        shipping: Vec<Shipping>,
        #[serde(default)]
        coupons: Vec<Coupon>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Product {
        id: String,
        name: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        image_url: String,
        fulfillment: String,
        price: Money,
        #[serde(default)]
        stock: Option<i64>,
        #[serde(default)]
        variants: Vec<Variant>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Variant {
        id: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        price: Option<Money>,
        #[serde(default)]
        stock: Option<i64>,
        #[serde(default)]
        options: BTreeMap<String, String>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Tax {
        #[serde(default)]
        default_rate: Option<Money>,
        #[serde(default)]
        rates: BTreeMap<String, Money>,
        #[serde(default)]
        shipping_taxable: bool,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Shipping {
        id: String,
        name: String,
        cost: Money,
        #[serde(default)]
        countries: Vec<String>,
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        service_level: Option<String>,
        #[serde(default)]
        carrier: Option<String>,
        #[serde(default)]
        free_over: Option<Money>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Coupon {
        code: String,
        #[serde(default)]
        percent_off: Option<Money>,
        #[serde(default)]
        amount_off: Option<Money>,
        #[serde(default)]
        min_subtotal: Option<Money>,
        #[serde(default)]
        description: Option<String>,
    }

    fn err(at: &str, msg: impl std::fmt::Display) -> CatalogError {
        CatalogError(format!("{at}: {msg}"))
    }

    fn non_negative(at: &str, m: Money) -> Result<Decimal, CatalogError> {
        if m.0.is_sign_negative() && !m.0.is_zero() {
            return Err(err(at, format!("must not be negative (got {})", m.0)));
        }
        if m.0 >= super::MAX_CATALOG_AMOUNT {
            return Err(err(
                at,
                format!(
                    "must be below {} (got {}): one line of {} units must stay below the \
                     largest amount an order can hold",
                    super::MAX_CATALOG_AMOUNT,
                    m.0,
                    crate::domain::MAX_QUANTITY
                ),
            ));
        }
        Ok(m.0)
    }

    /// A tax rate: a fraction from 0 to 1 (`0.0725` is 7.25 %).
    fn rate(at: &str, m: Money) -> Result<Decimal, CatalogError> {
        let r = non_negative(at, m)?;
        if r > Decimal::ONE {
            return Err(err(at, format!("a tax rate is at most 1 (got {r})")));
        }
        Ok(r)
    }

    fn stock(at: &str, s: Option<i64>) -> Result<Option<i64>, CatalogError> {
        match s {
            Some(n) if n < 0 => Err(err(at, "stock must not be negative")),
            other => Ok(other),
        }
    }

    fn id(at: &str, s: &str) -> Result<(), CatalogError> {
        if s.trim().is_empty() {
            return Err(err(at, "id must not be empty"));
        }
        Ok(())
    }

    fn currency(code: &str) -> Result<String, CatalogError> {
        let currency = code.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(err("currency", "must be an ISO 4217 code such as USD"));
        }
        Ok(currency)
    }

    fn fulfillment(at: &str, name: &str) -> Result<FulfillmentModel, CatalogError> {
        match name {
            "physical" => Ok(FulfillmentModel::Physical),
            "digital" => Ok(FulfillmentModel::Digital),
            "service" => Ok(FulfillmentModel::Service),
            other => Err(err(
                at,
                format!("fulfillment `{other}` is not physical, digital or service"),
            )),
        }
    }

    /// Where each product and variant is, filled as products are validated.
    #[derive(Default)]
    struct Index {
        products: HashMap<String, usize>,
        variants: HashMap<String, (usize, usize)>,
    }

    impl Catalog {
        /// Checks every entry in file order; the first bad one is named in the error.
        pub fn validate(self) -> Result<super::Catalog, CatalogError> {
            let currency = currency(&self.currency)?;
            let mut index = Index::default();
            let mut products = Vec::with_capacity(self.products.len());
            for (pi, p) in self.products.into_iter().enumerate() {
                products.push(p.validate(pi, &mut index)?);
            }
            let tax = self.tax.unwrap_or_default().validate()?;
            let mut shipping = Vec::with_capacity(self.shipping.len());
            for (i, s) in self.shipping.into_iter().enumerate() {
                let rate = s.validate(i, &shipping)?;
                shipping.push(rate);
            }
            let mut coupons = Vec::with_capacity(self.coupons.len());
            for (i, c) in self.coupons.into_iter().enumerate() {
                let coupon = c.validate(i, &coupons)?;
                coupons.push(coupon);
            }
            Ok(super::Catalog {
                currency,
                products,
                product_index: index.products,
                variant_index: index.variants,
                tax,
                shipping,
                coupons,
                rules: super::Rules::Standard,
            })
        }
    }

    impl Product {
        /// Product `pi`, its variants entered in `index` (ids must be unique).
        fn validate(self, pi: usize, index: &mut Index) -> Result<super::Product, CatalogError> {
            let at = format!("products[{pi}] ({})", self.id);
            id(&at, &self.id)?;
            let fulfillment = fulfillment(&at, &self.fulfillment)?;
            let price = non_negative(&format!("{at}.price"), self.price)?;
            let mut variants = Vec::with_capacity(self.variants.len());
            for (vi, v) in self.variants.into_iter().enumerate() {
                let vat = format!("{at}.variants[{vi}] ({})", v.id);
                id(&vat, &v.id)?;
                if index.variants.insert(v.id.clone(), (pi, vi)).is_some() {
                    return Err(err(&vat, "duplicate variant id"));
                }
                variants.push(v.validate(&vat, &self.name, price)?);
            }
            if index.products.insert(self.id.clone(), pi).is_some() {
                return Err(err(&at, "duplicate product id"));
            }
            Ok(super::Product {
                stock: stock(&at, self.stock)?,
                id: self.id,
                name: self.name,
                description: self.description,
                image_url: self.image_url,
                fulfillment,
                price,
                variants,
            })
        }
    }

    impl Variant {
        /// A variant inherits the product's name and price unless it has its own.
        fn validate(
            self,
            at: &str,
            product_name: &str,
            product_price: Decimal,
        ) -> Result<super::Variant, CatalogError> {
            Ok(super::Variant {
                name: self.name.unwrap_or_else(|| product_name.to_string()),
                price: match self.price {
                    Some(m) => non_negative(&format!("{at}.price"), m)?,
                    None => product_price,
                },
                stock: stock(at, self.stock)?,
                options: self.options,
                id: self.id,
            })
        }
    }

    impl Tax {
        fn validate(self) -> Result<TaxTable, CatalogError> {
            Ok(TaxTable {
                default_rate: match self.default_rate {
                    Some(m) => rate("tax.default_rate", m)?,
                    None => Decimal::ZERO,
                },
                rates: self
                    .rates
                    .into_iter()
                    .map(|(k, m)| {
                        rate(&format!("tax.rates.{k}"), m)
                            .map(|r| (k.trim().to_ascii_uppercase(), r))
                    })
                    .collect::<Result<_, _>>()?,
                shipping_taxable: self.shipping_taxable,
            })
        }
    }

    impl Shipping {
        /// Shipping option `i`; its id must differ from the `earlier` ones'.
        fn validate(
            self,
            i: usize,
            earlier: &[ShippingRate],
        ) -> Result<ShippingRate, CatalogError> {
            let at = format!("shipping[{i}] ({})", self.id);
            id(&at, &self.id)?;
            if earlier.iter().any(|r| r.id == self.id) {
                return Err(err(&at, "duplicate shipping option id"));
            }
            let shipment_type = match self.kind.as_deref().unwrap_or("other") {
                "other" => ShippingOptionType::Other,
                "in_store_pickup" | "pickup" => ShippingOptionType::InStorePickup,
                other => {
                    return Err(err(
                        &at,
                        format!("type `{other}` is not other or in_store_pickup"),
                    ))
                }
            };
            Ok(ShippingRate {
                cost: non_negative(&format!("{at}.cost"), self.cost)?,
                free_over: self
                    .free_over
                    .map(|m| non_negative(&format!("{at}.free_over"), m))
                    .transpose()?,
                countries: self
                    .countries
                    .iter()
                    .map(|c| c.trim().to_ascii_uppercase())
                    .collect(),
                id: self.id,
                name: self.name,
                shipment_type,
                service_level: self.service_level,
                carrier: self.carrier,
            })
        }
    }

    impl Coupon {
        /// Coupon `i`; its code must differ (in any case) from the `earlier` ones'.
        fn validate(
            self,
            i: usize,
            earlier: &[super::Coupon],
        ) -> Result<super::Coupon, CatalogError> {
            let at = format!("coupons[{i}] ({})", self.code);
            id(&at, &self.code)?;
            if earlier
                .iter()
                .any(|x| x.code.eq_ignore_ascii_case(&self.code))
            {
                return Err(err(&at, "duplicate coupon code"));
            }
            let kind = match (self.percent_off, self.amount_off) {
                (Some(p), None) => {
                    let p = non_negative(&format!("{at}.percent_off"), p)?;
                    if p > Decimal::ONE_HUNDRED {
                        return Err(err(&at, "percent_off must be at most 100"));
                    }
                    CouponKind::PercentOff(p)
                }
                (None, Some(a)) => {
                    CouponKind::AmountOff(non_negative(&format!("{at}.amount_off"), a)?)
                }
                _ => return Err(err(&at, "needs exactly one of percent_off and amount_off")),
            };
            Ok(super::Coupon {
                min_subtotal: self
                    .min_subtotal
                    .map(|m| non_negative(&format!("{at}.min_subtotal"), m))
                    .transpose()?,
                code: self.code,
                kind,
                description: self.description,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = r#"{
      "currency": "usd",
      "products": [
        {"id": "tee", "name": "Tee", "fulfillment": "physical", "price": "20.00", "stock": 100,
         "variants": [
           {"id": "tee-M", "name": "Tee (M)", "stock": 5, "options": {"size": "M"}},
           {"id": "tee-L", "price": "22.00", "options": {"size": "L"}}
         ]},
        {"id": "mug", "name": "Mug", "fulfillment": "physical", "price": "9.50"}
      ],
      "tax": {"default_rate": "0.01", "rates": {"US": "0.05", "US-CA": "0.0725"}},
      "shipping": [{"id": "std", "name": "Standard", "cost": "5.00", "countries": ["us"]}],
      "coupons": [{"code": "SAVE10", "percent_off": "10"}]
    }"#;

    fn catalog() -> Catalog {
        Catalog::parse(CATALOG).unwrap()
    }

    #[test]
    fn variants_inherit_price_and_name_and_resolve_by_id_or_options() {
        let c = catalog();
        assert_eq!(c.currency, "USD");
        let by_id = c
            .resolve(&SkuQuery {
                variant_id: Some("tee-M"),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            (by_id.id(), by_id.price(), by_id.stock()),
            ("tee-M", Decimal::new(2000, 2), Some(5))
        );
        let opts = [CustomValue {
            key: "size".into(),
            value: "L".into(),
        }];
        let by_opts = c
            .resolve(&SkuQuery {
                product_id: Some("tee"),
                options: &opts,
                ..Default::default()
            })
            .unwrap();
        assert_eq!((by_opts.id(), by_opts.name()), ("tee-L", "Tee"));
        assert!(c
            .resolve(&SkuQuery {
                product_id: Some("tee"),
                ..Default::default()
            })
            .is_none());
        let plain = c
            .resolve(&SkuQuery {
                fallback_ids: &["nope", "mug"],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(plain.id(), "mug");
        assert!(c
            .resolve(&SkuQuery {
                product_id: Some("mug"),
                variant_id: Some("tee-M"),
                ..Default::default()
            })
            .is_none());
    }

    #[test]
    fn tax_rate_prefers_subdivision_then_country_then_default() {
        let t = &catalog().tax;
        assert_eq!(t.rate_for(Some("US"), Some("CA")), Decimal::new(725, 4));
        assert_eq!(t.rate_for(Some("US"), Some("NY")), Decimal::new(5, 2));
        assert_eq!(t.rate_for(Some("FR"), None), Decimal::new(1, 2));
        assert_eq!(t.rate_for(None, None), Decimal::new(1, 2));
    }

    #[test]
    fn malformed_catalogs_name_the_bad_entry() {
        let cases = [
            (
                CATALOG.replace(r#""price": "9.50""#, r#""price": "-1""#),
                "products[1] (mug).price",
            ),
            (
                CATALOG.replace(
                    "physical\", \"price\": \"9.50",
                    "boxed\", \"price\": \"9.50",
                ),
                "products[1] (mug)",
            ),
            (
                CATALOG.replace(r#""percent_off": "10""#, r#""percent_off": "110""#),
                "coupons[0] (SAVE10)",
            ),
            (
                CATALOG.replace(r#""id": "mug""#, r#""id": "tee""#),
                "duplicate product id",
            ),
            (
                CATALOG.replace(r#""cost": "5.00""#, r#""cost": "five""#),
                "shipping[0].cost",
            ),
            (
                CATALOG.replace(r#""currency""#, r#""colour": 1, "currency""#),
                "colour",
            ),
        ];
        for (text, expected) in cases {
            let e = Catalog::parse(&text).unwrap_err().to_string();
            assert!(e.contains(expected), "`{e}` should mention `{expected}`");
        }
    }
}
