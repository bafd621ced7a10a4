//! Vendure's order arithmetic (Vendure 3.7, default strategies, the standard promotions), so
//! that the total Fast charges for a Vendure-backed cart is the total Vendure books, to the
//! cent. The rules are stated in `docs/vendure.md`; this is a port of
//! `integrations/vendure/lib/pricing.js`, which was checked against a running Vendure.
//!
//! Pure: values in, values out. Every amount is an integer in minor units (Vendure's default
//! `MoneyStrategy` has precision 2 for every currency). Money stays in integers everywhere
//! except inside [`js`], the one place that evaluates Vendure's own double-precision
//! expressions (see there for why).

use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// Minor units as a decimal amount (Vendure's default `MoneyStrategy`: precision 2).
pub fn amount(minor: i64) -> Decimal {
    Decimal::new(minor, 2)
}

/// Whether a flat-rate shipping price includes its tax (`includesTax` of Vendure's
/// `default-shipping-calculator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IncludesTax {
    /// The channel's `pricesIncludeTax`.
    Auto,
    Include,
    Exclude,
}

/// A flat-rate shipping method's calculator arguments.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlatRate {
    /// Minor units.
    pub rate: i64,
    pub includes_tax: IncludesTax,
    /// Percent; the method's own rate, independent of zones and tax categories.
    pub tax_rate: Decimal,
}

impl FlatRate {
    /// Whether the rate includes its tax, on a channel whose prices do or do not.
    pub fn includes_tax(&self, prices_include_tax: bool) -> bool {
        match self.includes_tax {
            IncludesTax::Auto => prices_include_tax,
            IncludesTax::Include => true,
            IncludesTax::Exclude => false,
        }
    }
}

/// `minimum_order_amount`: passes when the (discounted so far) subtotal reaches `amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MinimumOrderAmount {
    pub amount: i64,
    /// Compare with `subTotalWithTax` rather than `subTotal`.
    pub tax_inclusive: bool,
}

/// The promotion actions Vendure ships and fast-seller reproduces.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum PromotionAction {
    /// `order_percentage_discount`: percent off the order.
    OrderPercentage { discount: Decimal },
    /// `order_fixed_discount`: minor units off the order (at most the order).
    OrderFixed { discount: i64 },
    /// `products_percentage_discount`: percent off the listed variants (Vendure ids).
    ProductPercentage {
        discount: Decimal,
        variant_ids: Vec<String>,
    },
    /// `free_shipping`.
    FreeShipping,
}

/// A promotion that applies to the order (automatic, or its coupon code was applied), with
/// its conditions (all must pass) and actions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Promotion {
    pub conditions: Vec<MinimumOrderAmount>,
    pub actions: Vec<PromotionAction>,
}

/// One line of the cart.
#[derive(Debug, Clone, PartialEq)]
pub struct CartLine {
    /// Vendure's variant id (what `products_percentage_discount` lists).
    pub variant_id: String,
    /// The variant's stored channel price: with tax when `prices_include_tax`.
    pub price: i64,
    pub quantity: i64,
    /// Tax percent of the variant's category in the order's tax zone (0 when none).
    pub rate: Decimal,
    /// Tax percent of the variant's category in the channel's default tax zone.
    pub default_zone_rate: Decimal,
}

/// What Vendure needs to price an order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cart {
    /// The channel's `pricesIncludeTax`.
    pub prices_include_tax: bool,
    /// The order's tax zone is the channel's default tax zone.
    pub zone_is_default: bool,
    pub lines: Vec<CartLine>,
    /// In Vendure's application order (`priorityScore` ascending).
    pub promotions: Vec<Promotion>,
    pub shipping: Option<FlatRate>,
}

/// One priced line, minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub variant_id: String,
    /// Net, before promotions (`linePrice`).
    pub line_price: i64,
    /// With tax, before promotions (`linePriceWithTax`).
    pub line_price_with_tax: i64,
    /// Net, after promotions (`proratedLinePrice`).
    pub prorated_line_price: i64,
    /// With tax, after promotions (`proratedLinePriceWithTax`).
    pub prorated_line_price_with_tax: i64,
}

/// Vendure's order totals, minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedOrder {
    pub sub_total: i64,
    pub sub_total_with_tax: i64,
    pub shipping: i64,
    pub shipping_with_tax: i64,
    pub total: i64,
    pub total_with_tax: i64,
    pub lines: Vec<PricedLine>,
}

/// Everything pricing by Vendure's rules needs, keyed by what Fast's lines carry (SKUs,
/// coupon codes, shipping method codes): the platform adapter fills it from a catalog
/// snapshot, the domain prices carts with it ([`PriceBook::cart`], then [`price_order`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriceBook {
    /// The channel's `pricesIncludeTax`.
    pub prices_include_tax: bool,
    pub default_zone: String,
    /// `AddressBasedTaxZoneStrategy` (the zone of the order's country) rather than
    /// `DefaultTaxZoneStrategy` (always the default zone).
    pub zone_by_address: bool,
    /// Zone id and its member countries (ISO codes).
    pub zones: Vec<(String, Vec<String>)>,
    /// `(zone id, tax category id) → percent`; none: 0 %.
    pub rates: BTreeMap<(String, String), Decimal>,
    /// By SKU.
    pub variants: BTreeMap<String, BookVariant>,
    /// Active promotions in Vendure's application order.
    pub promotions: Vec<BookPromotion>,
    /// Flat-rate shipping methods in Vendure's order.
    pub shipping: Vec<BookShipping>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookVariant {
    /// Vendure's variant id.
    pub id: String,
    /// The stored channel price, minor units (with the default zone's tax when the channel's
    /// prices include tax).
    pub price: i64,
    pub tax_category: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookPromotion {
    pub name: String,
    /// `None`: automatic.
    pub coupon_code: Option<String>,
    pub promotion: Promotion,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookShipping {
    /// The method's code (Fast's shipping option id).
    pub code: String,
    pub name: String,
    /// Offered when the order's net subtotal reaches this.
    pub order_minimum: i64,
    pub flat_rate: FlatRate,
}

/// Why a cart cannot be priced from a [`PriceBook`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error("unknown SKU {0}")]
    UnknownSku(String),
    #[error("unknown coupon code {0}")]
    UnknownCoupon(String),
    #[error("unknown shipping method {0}")]
    UnknownShippingMethod(String),
}

impl PriceBook {
    /// The tax zone of an order whose address is in `country` (none: the default zone).
    pub fn zone_for(&self, country: Option<&str>) -> &str {
        let default = self.default_zone.as_str();
        match country {
            Some(cc) if self.zone_by_address => self
                .zones
                .iter()
                .find(|(_, members)| members.iter().any(|m| m.eq_ignore_ascii_case(cc)))
                .map_or(default, |(id, _)| id.as_str()),
            _ => default,
        }
    }

    /// The rate for a category in a zone (none: 0 %).
    pub fn rate(&self, zone: &str, category: &str) -> Decimal {
        self.rates
            .get(&(zone.to_owned(), category.to_owned()))
            .copied()
            .unwrap_or(Decimal::ZERO)
    }

    /// The promotion of a coupon code, case-insensitively.
    pub fn coupon(&self, code: &str) -> Option<&BookPromotion> {
        self.promotions.iter().find(|p| {
            p.coupon_code
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(code.trim()))
        })
    }

    /// The pricing input for an order in `country`: lines by SKU, the automatic promotions
    /// plus those of `coupons`, the shipping method by code.
    pub fn cart(
        &self,
        country: Option<&str>,
        lines: &[(&str, i64)],
        coupons: &[&str],
        shipping_method: Option<&str>,
    ) -> Result<Cart, BookError> {
        let zone = self.zone_for(country);
        let lines = lines
            .iter()
            .map(|&(sku, quantity)| {
                let v = self
                    .variants
                    .get(sku)
                    .ok_or_else(|| BookError::UnknownSku(sku.to_owned()))?;
                Ok(CartLine {
                    variant_id: v.id.clone(),
                    price: v.price,
                    quantity,
                    rate: self.rate(zone, &v.tax_category),
                    default_zone_rate: self.rate(&self.default_zone, &v.tax_category),
                })
            })
            .collect::<Result<Vec<_>, BookError>>()?;
        let promotions = self
            .active(coupons)?
            .into_iter()
            .map(|p| p.promotion.clone())
            .collect();
        let shipping = match shipping_method {
            None => None,
            Some(code) => Some(
                self.shipping_method(code)
                    .ok_or_else(|| BookError::UnknownShippingMethod(code.to_owned()))?
                    .flat_rate
                    .clone(),
            ),
        };
        Ok(Cart {
            prices_include_tax: self.prices_include_tax,
            zone_is_default: zone == self.default_zone,
            lines,
            promotions,
            shipping,
        })
    }

    /// The promotions an order with `coupons` gets, in application order: the automatic
    /// ones and those of its coupons.
    pub fn active(&self, coupons: &[&str]) -> Result<Vec<&BookPromotion>, BookError> {
        let mut chosen = Vec::with_capacity(coupons.len());
        for code in coupons {
            let p = self
                .coupon(code)
                .ok_or_else(|| BookError::UnknownCoupon((*code).to_owned()))?;
            chosen.push(p);
        }
        Ok(self
            .promotions
            .iter()
            .filter(|p| p.coupon_code.is_none() || chosen.iter().any(|c| std::ptr::eq(*c, *p)))
            .collect())
    }

    pub fn shipping_method(&self, code: &str) -> Option<&BookShipping> {
        self.shipping.iter().find(|m| m.code == code)
    }

    /// A shipping method's price before promotions: `(net, with tax)`, minor units.
    pub fn shipping_price(&self, method: &BookShipping) -> (i64, i64) {
        let rate = &method.flat_rate;
        js::line_prices(
            rate.rate,
            &[],
            1,
            rate.tax_rate,
            rate.includes_tax(self.prices_include_tax),
        )
    }
}

/// A line while the promotions are applied.
struct Line {
    quantity: i64,
    rate: Decimal,
    list_price: i64,
    list_price_includes_tax: bool,
    adjustments: Vec<i64>,
}

impl Line {
    /// `(proratedLinePrice, proratedLinePriceWithTax)`.
    fn prorated(&self) -> (i64, i64) {
        if self.quantity <= 0 {
            return (0, 0);
        }
        js::line_prices(
            self.list_price,
            &self.adjustments,
            self.quantity,
            self.rate,
            self.list_price_includes_tax,
        )
    }

    /// `(linePrice, linePriceWithTax)`: before promotions.
    fn undiscounted(&self) -> (i64, i64) {
        if self.quantity <= 0 {
            return (0, 0);
        }
        js::line_prices(
            self.list_price,
            &[],
            self.quantity,
            self.rate,
            self.list_price_includes_tax,
        )
    }

    /// `(unitPrice, unitPriceWithTax)`.
    fn unit(&self) -> (i64, i64) {
        js::line_prices(
            self.list_price,
            &[],
            1,
            self.rate,
            self.list_price_includes_tax,
        )
    }

    /// Adds a promotion adjustment, capped so the line never goes below zero; a zero
    /// adjustment is dropped.
    fn adjust(&mut self, amount: i64) {
        if self.quantity <= 0 {
            return;
        }
        let (net, gross) = self.prorated();
        let floor = -(if self.list_price_includes_tax {
            gross
        } else {
            net
        });
        let limited = amount.max(floor);
        if limited != 0 {
            self.adjustments.push(limited);
        }
    }
}

fn sub_totals(lines: &[Line]) -> (i64, i64) {
    lines
        .iter()
        .map(Line::prorated)
        .fold((0, 0), |(n, g), (ln, lg)| (n + ln, g + lg))
}

fn passes(promotion: &Promotion, lines: &[Line]) -> bool {
    if promotion.conditions.is_empty() {
        return true;
    }
    let (net, gross) = sub_totals(lines);
    promotion.conditions.iter().all(|c| {
        let base = if c.tax_inclusive { gross } else { net };
        base >= c.amount
    })
}

/// Prices `cart` exactly as Vendure does (see the module docs and `docs/vendure.md`).
/// A line with a quantity below 1 is priced 0 and gets no promotion share (Vendure removes
/// such lines from an order).
pub fn price_order(cart: &Cart) -> PricedOrder {
    // DefaultProductVariantPriceCalculationStrategy: the list price in the order's zone.
    let mut lines: Vec<Line> = cart
        .lines
        .iter()
        .map(|l| {
            let (list_price, includes_tax) = match (cart.prices_include_tax, cart.zone_is_default) {
                (false, _) => (l.price, false),
                (true, true) => (l.price, true),
                (true, false) => (
                    js::line_prices(l.price, &[], 1, l.default_zone_rate, true).0,
                    false,
                ),
            };
            Line {
                quantity: l.quantity,
                rate: l.rate,
                list_price,
                list_price_includes_tax: includes_tax,
                adjustments: Vec::new(),
            }
        })
        .collect();

    // Item promotions, line by line (OrderCalculator.applyOrderItemPromotions).
    for (i, cart_line) in cart.lines.iter().enumerate() {
        for promotion in &cart.promotions {
            if !passes(promotion, &lines) {
                continue;
            }
            for action in &promotion.actions {
                let PromotionAction::ProductPercentage {
                    discount,
                    variant_ids,
                } = action
                else {
                    continue;
                };
                if !variant_ids.contains(&cart_line.variant_id) {
                    continue;
                }
                if let Some(line) = lines.get_mut(i) {
                    let (net, gross) = line.unit();
                    let unit = if cart.prices_include_tax { gross } else { net };
                    let amount = js::product_discount(unit, *discount, line.quantity);
                    line.adjust(amount);
                }
            }
        }
    }

    // Order promotions, spread over the lines by their prorated price with tax.
    for promotion in &cart.promotions {
        if !passes(promotion, &lines) {
            continue;
        }
        for action in &promotion.actions {
            let (net, gross) = sub_totals(&lines);
            let base = if cart.prices_include_tax { gross } else { net };
            let amount = match action {
                PromotionAction::OrderPercentage { discount } => {
                    js::order_discount(base, *discount)
                }
                PromotionAction::OrderFixed { discount } => -(*discount).min(base),
                _ => continue,
            };
            if amount == 0 {
                continue;
            }
            let weights: Vec<i64> = lines.iter().map(|l| l.prorated().1).collect();
            for (line, share) in lines.iter_mut().zip(js::prorate(&weights, amount)) {
                line.adjust(share);
            }
        }
    }

    let (sub_total, sub_total_with_tax) = sub_totals(&lines);
    let (shipping, shipping_with_tax) = match &cart.shipping {
        None => (0, 0),
        Some(method) => {
            let includes_tax = method.includes_tax(cart.prices_include_tax);
            // free_shipping removes the whole list price (with its tax when it includes it).
            let free = cart
                .promotions
                .iter()
                .filter(|p| passes(p, &lines))
                .flat_map(|p| &p.actions)
                .filter(|a| matches!(a, PromotionAction::FreeShipping))
                .count();
            let adjustment = -method.rate * i64::try_from(free).unwrap_or(i64::MAX);
            js::line_prices(method.rate, &[adjustment], 1, method.tax_rate, includes_tax)
        }
    };
    PricedOrder {
        sub_total,
        sub_total_with_tax,
        shipping,
        shipping_with_tax,
        total: sub_total + shipping,
        total_with_tax: sub_total_with_tax + shipping_with_tax,
        lines: cart
            .lines
            .iter()
            .zip(&lines)
            .map(|(c, l)| {
                let (line_price, line_price_with_tax) = l.undiscounted();
                let (prorated_line_price, prorated_line_price_with_tax) = l.prorated();
                PricedLine {
                    variant_id: c.variant_id.clone(),
                    line_price,
                    line_price_with_tax,
                    prorated_line_price,
                    prorated_line_price_with_tax,
                }
            })
            .collect(),
    }
}

/// Vendure's arithmetic as Vendure evaluates it: in IEEE-754 doubles (JavaScript numbers),
/// rounded by `Math.round`.
///
/// Why doubles here, when money is decimal everywhere else: the total Fast charges must be
/// the total Vendure books, and Vendure computes values such as `(listPrice + adj / qty) ×
/// (1 + rate / 100) × qty` in doubles before rounding. Exactly, such a value sometimes lands
/// on a half cent; in doubles it lands a hair below and rounds down. Exact decimal arithmetic
/// disagrees with Vendure by a cent on ~0.15 % of discounted lines (the `EDGE` carts of
/// `docs/vendure.md` are two, placed in a real Vendure). So these few expressions are
/// evaluated in `f64`, in Vendure's order of operations; every input and output is an integer
/// number of minor units below 2^53 (exact in `f64`), and nothing outside this module sees a
/// double.
mod js {
    use rust_decimal::Decimal;

    /// `Math.round`: to the nearest integer, halves toward +∞ (`-2.5 → -2`), unlike
    /// `f64::round`.
    fn round(x: f64) -> i64 {
        let f = x.floor();
        let r = if x - f >= 0.5 { f + 1.0 } else { f };
        // Integers below 2^53 in magnitude: exact.
        r as i64
    }

    /// The double JavaScript has for a percentage: `Number` of its decimal text, the correctly
    /// rounded nearest double (Vendure reads rates and arguments from JSON and strings).
    fn percent(d: Decimal) -> f64 {
        d.to_string().parse().unwrap_or(f64::NAN)
    }

    /// `netPriceOf` (common/tax-utils), unrounded.
    fn net_of(gross: f64, rate: f64) -> f64 {
        gross - (gross - gross / ((100.0 + rate) / 100.0))
    }

    /// `grossPriceOf` (common/tax-utils), unrounded.
    fn gross_of(net: f64, rate: f64) -> f64 {
        net + net * (rate / 100.0)
    }

    /// `(round(unitNet × q), round(unitGross × q))` with `u = listPrice + Σ adj / q` (in the
    /// order the adjustments were added): a line's prorated prices (OrderLine), and, with
    /// `q = 1`, unit prices, shipping prices and a gross price taken apart.
    pub(super) fn line_prices(
        list_price: i64,
        adjustments: &[i64],
        quantity: i64,
        rate: Decimal,
        includes_tax: bool,
    ) -> (i64, i64) {
        let q = quantity as f64;
        let r = percent(rate);
        let adj = adjustments.iter().fold(0.0, |t, a| t + *a as f64 / q);
        let u = list_price as f64 + adj;
        let (net, gross) = if includes_tax {
            (net_of(u, r), u)
        } else {
            (u, gross_of(u, r))
        };
        (round(net * q), round(gross * q))
    }

    /// `products_percentage_discount`: `round(-unit × (discount / 100) × q)`.
    pub(super) fn product_discount(unit: i64, discount: Decimal, quantity: i64) -> i64 {
        round(-(unit as f64) * (percent(discount) / 100.0) * quantity as f64)
    }

    /// `order_percentage_discount`: `round(-base × (discount / 100))`.
    pub(super) fn order_discount(base: i64, discount: Decimal) -> i64 {
        round(-(base as f64) * (percent(discount) / 100.0))
    }

    /// Vendure's `prorate()`: integer shares of `amount` in proportion to `weights`; each
    /// share floored, then the missing units one at a time to the largest remaining fraction
    /// (the first on ties).
    pub(super) fn prorate(weights: &[i64], amount: i64) -> Vec<i64> {
        let total = weights.iter().map(|w| *w as f64).sum::<f64>();
        let amount_f = amount as f64;
        let n = weights.len() as f64;
        let actual: Vec<f64> = weights
            .iter()
            .map(|w| {
                if total == 0.0 {
                    amount_f / n
                } else {
                    amount_f * (*w as f64 / total)
                }
            })
            .collect();
        let mut shares: Vec<i64> = actual.iter().map(|a| a.floor() as i64).collect();
        let mut error: Vec<f64> = actual.iter().map(|a| a - a.floor()).collect();
        let mut added: i64 = shares.iter().sum();
        while added < amount {
            let mut max_error = 0.0;
            let mut at = None;
            for (i, e) in error.iter().enumerate() {
                if *e > max_error {
                    max_error = *e;
                    at = Some(i);
                }
            }
            // Without a fraction left Vendure's loop writes past the array: the unit is lost.
            let Some(i) = at else { break };
            if let (Some(s), Some(e)) = (shares.get_mut(i), error.get_mut(i)) {
                *s += 1;
                *e -= 1.0;
            }
            added += 1;
        }
        shares
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn math_round_takes_halves_up() {
            assert_eq!(round(2.5), 3);
            assert_eq!(round(-2.5), -2);
            assert_eq!(round(-2.6), -3);
            assert_eq!(round(4_190_554.499_999_999), 4_190_554);
        }

        #[test]
        fn prorate_sums_to_the_amount() {
            assert_eq!(prorate(&[100, 200, 300], -100), vec![-17, -33, -50]);
            assert_eq!(prorate(&[1, 1, 1], -100).iter().sum::<i64>(), -100);
            assert_eq!(prorate(&[0, 0], -3), vec![-1, -2]);
        }
    }
}

#[cfg(test)]
mod tests;
