//! Pricing and totals, to the cent (docs/pricing.md). Pure: takes the order and the catalog,
//! rewrites every computed money field.

mod vendure;

use super::catalog::{Catalog, CouponKind, Rules, ShippingRate};
use crate::protocol::{
    Address, DiscountOrigin, DiscountType, FastOrder, Id, Int64, Money, OrderDiscount, OrderLine,
    ShipmentPlan, ShippingOption,
};
use rust_decimal::{Decimal, RoundingStrategy};

/// To the cent, half away from zero.
pub(crate) fn round(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn trunc(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::ToZero)
}

/// A line's subtotal: unit price × quantity, to the cent.
pub(crate) fn line_subtotal(line: &OrderLine) -> Decimal {
    round(line.unit_price.unwrap_or_default().0 * Decimal::from(line.quantity.0))
}

/// Writes a line's money fields from its subtotal, discount and tax (for its current
/// quantity): the discounted unit price and the total follow.
pub(crate) fn set_line_money(
    line: &mut OrderLine,
    subtotal: Decimal,
    discount: Decimal,
    tax: Decimal,
) {
    let net = subtotal - discount;
    let qty = Decimal::from(line.quantity.0.max(1));
    line.subtotal_amount = Some(Money(subtotal));
    line.line_discount_amount = Some(Money(discount));
    line.discounted_unit_price = Some(Money(round(net / qty)));
    line.tax_amount = Some(Money(tax));
    line.total_amount = Some(Money(net + tax));
}

/// What an order's totals are made of.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sums {
    pub sub_total: Decimal,
    pub discounts: Decimal,
    pub line_tax: Decimal,
    pub shipping: Decimal,
    pub shipping_tax: Decimal,
}

/// Writes the order's totals: `total_amount = sub_total − discounts + tax + shipping`,
/// where tax is the lines' tax plus the shipping tax.
pub(crate) fn set_totals(order: &mut FastOrder, sums: Sums) {
    let total_tax = sums.line_tax + sums.shipping_tax;
    order.sub_total = Some(Money(sums.sub_total));
    order.total_discounts = Some(Money(sums.discounts));
    order.total_tax = Some(Money(total_tax));
    order.total_shipping = Some(Money(sums.shipping));
    order.total_amount = Some(Money(
        sums.sub_total - sums.discounts + total_tax + sums.shipping,
    ));
}

/// Splits `amount` over `weights` in proportion, truncating each share to cents and giving
/// the cents left over one by one to the largest truncated remainders (earliest first on
/// ties), so the shares sum exactly to `amount`.
pub fn allocate(amount: Decimal, weights: &[Decimal]) -> Vec<Decimal> {
    let total: Decimal = weights.iter().sum();
    if total.is_zero() || amount.is_zero() {
        return vec![Decimal::ZERO; weights.len()];
    }
    let exact: Vec<Decimal> = weights.iter().map(|w| amount * *w / total).collect();
    let mut shares: Vec<Decimal> = exact.iter().map(|e| trunc(*e)).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Stable sort keeps the earliest line first among equal remainders.
    order.sort_by(|&a, &b| {
        let ra =
            exact.get(a).copied().unwrap_or_default() - shares.get(a).copied().unwrap_or_default();
        let rb =
            exact.get(b).copied().unwrap_or_default() - shares.get(b).copied().unwrap_or_default();
        rb.cmp(&ra)
    });
    let cent = Decimal::new(1, 2);
    let mut left = amount - shares.iter().sum::<Decimal>();
    // Truncation loses less than a cent per share, so one pass hands out every cent.
    for i in order {
        if left < cent {
            break;
        }
        if let Some(s) = shares.get_mut(i) {
            *s += cent;
            left -= cent;
        }
    }
    shares
}

/// A shipping rate as offered to a plan whose lines come to `plan_subtotal` after discounts.
pub fn offer(
    rate: &ShippingRate,
    catalog: &Catalog,
    ship_to: &Address,
    plan_subtotal: Decimal,
) -> ShippingOption {
    let free = rate.free_over.is_some_and(|f| plan_subtotal >= f);
    let cost = if free { Decimal::ZERO } else { rate.cost };
    let tax = if catalog.tax.shipping_taxable {
        round(cost * rate_of(catalog, ship_to))
    } else {
        Decimal::ZERO
    };
    ShippingOption {
        id: Some(Id(rate.id.clone())),
        external_id: Some(rate.id.clone()),
        name: Some(rate.name.clone()),
        shipment_type: Some(rate.shipment_type),
        cost: Some(Money(cost)),
        tax: Some(Money(tax)),
        total: Some(Money(cost + tax)),
        carrier: rate.carrier.clone(),
        service_level: rate.service_level.clone(),
    }
}

fn rate_of(catalog: &Catalog, address: &Address) -> Decimal {
    catalog.tax.rate_for(
        address.country_iso2().as_deref(),
        address.subdivision_code().as_deref(),
    )
}

/// Index of the plan holding each line (the first plan that references it).
fn holder(plans: &[ShipmentPlan], line_id: Option<&Id>) -> Option<usize> {
    let id = line_id?;
    plans
        .iter()
        .position(|p| p.lines.iter().any(|r| &r.id == id))
}

/// Cheapest available option, first in catalog order on ties.
pub fn cheapest(options: &[ShippingOption]) -> Option<&ShippingOption> {
    options
        .iter()
        .enumerate()
        .min_by_key(|(i, o)| (o.total.unwrap_or_default(), *i))
        .map(|(_, o)| o)
}

/// Recomputes every money field of a cart from its lines, coupons, addresses and plans.
pub fn reprice(order: &mut FastOrder, catalog: &Catalog) {
    order.currency_code = Some(catalog.currency.clone());
    if let Rules::Vendure(book) = &catalog.rules {
        return vendure::reprice(order, book);
    }
    let subtotals: Vec<Decimal> = order.lines.iter().map(line_subtotal).collect();
    let sub_total: Decimal = subtotals.iter().sum();
    let mut discounts = LineDiscounts::new(&subtotals);
    for coupon in &mut order.coupons {
        discounts.apply(coupon, catalog, sub_total);
    }
    let total_discounts: Decimal = discounts.amounts.iter().sum();
    let (plan_subtotals, line_tax) = price_lines(order, catalog, discounts);
    let (shipping, shipping_tax) = price_plans(order, catalog, &plan_subtotals);
    let sums = Sums {
        sub_total,
        discounts: total_discounts,
        line_tax,
        shipping,
        shipping_tax,
    };
    set_totals(order, sums);
}

/// The coupons' discounts per line, built coupon by coupon.
struct LineDiscounts {
    /// Each line's undiscounted subtotal.
    subtotals: Vec<Decimal>,
    /// Each line's discount so far.
    amounts: Vec<Decimal>,
    /// Each line's discount entries so far.
    entries: Vec<Vec<OrderDiscount>>,
}

impl LineDiscounts {
    fn new(subtotals: &[Decimal]) -> LineDiscounts {
        LineDiscounts {
            subtotals: subtotals.to_vec(),
            amounts: vec![Decimal::ZERO; subtotals.len()],
            entries: vec![Vec::new(); subtotals.len()],
        }
    }

    /// Applies one coupon: computed on the undiscounted subtotals, capped per line so no
    /// line goes below zero. Rewrites the coupon's own fields (code as in the catalog,
    /// whether it applies, its total).
    fn apply(&mut self, coupon: &mut OrderDiscount, catalog: &Catalog, sub_total: Decimal) {
        let found = catalog.coupon(&coupon.code);
        let applicable = found.filter(|c| c.min_subtotal.is_none_or(|m| sub_total >= m));
        let shares: Vec<Decimal> = match applicable.map(|c| c.kind) {
            Some(CouponKind::PercentOff(pct)) => self
                .subtotals
                .iter()
                .map(|s| round(*s * pct / Decimal::ONE_HUNDRED))
                .collect(),
            Some(CouponKind::AmountOff(amount)) => allocate(amount.min(sub_total), &self.subtotals),
            // A platform's promotion only exists in a catalog that the platform's rules price.
            Some(CouponKind::Platform) | None => vec![Decimal::ZERO; self.subtotals.len()],
        };
        let mut total = Decimal::ZERO;
        for (i, share) in shares.into_iter().enumerate() {
            let room = self.subtotals.get(i).copied().unwrap_or_default()
                - self.amounts.get(i).copied().unwrap_or_default();
            let share = share.min(room).max(Decimal::ZERO);
            if share.is_zero() {
                continue;
            }
            if let (Some(d), Some(list)) = (self.amounts.get_mut(i), self.entries.get_mut(i)) {
                *d += share;
                list.push(OrderDiscount {
                    code: coupon.code.clone(),
                    description: coupon.description.clone(),
                    origin: Some(DiscountOrigin::User),
                    discount_type: Some(DiscountType::Regular),
                    applied: true,
                    total_amount: Some(Money(share)),
                });
            }
            total += share;
        }
        if let Some(c) = found {
            coupon.code = c.code.clone();
            coupon.description = coupon.description.take().or_else(|| c.description.clone());
        }
        coupon.origin = Some(DiscountOrigin::User);
        coupon.discount_type = Some(DiscountType::Regular);
        coupon.applied = applicable.is_some();
        coupon.total_amount = Some(Money(total));
    }
}

/// Writes each line's discounts and tax (by the ship-to of the plan holding the line, else
/// the bill-to). Returns each plan's discounted subtotal and the lines' tax.
fn price_lines(
    order: &mut FastOrder,
    catalog: &Catalog,
    mut discounts: LineDiscounts,
) -> (Vec<Decimal>, Decimal) {
    let mut plan_subtotals = vec![Decimal::ZERO; order.shipment_plans.len()];
    let mut line_tax = Decimal::ZERO;
    for (i, line) in order.lines.iter_mut().enumerate() {
        let subtotal = discounts.subtotals.get(i).copied().unwrap_or_default();
        let discount = discounts.amounts.get(i).copied().unwrap_or_default();
        let net = subtotal - discount;
        let plan = holder(&order.shipment_plans, line.id.as_ref());
        let address = plan
            .and_then(|p| order.shipment_plans.get(p))
            .map_or(&order.bill_to, |p| &p.ship_to);
        let tax = round(net * rate_of(catalog, address));
        if let Some(ps) = plan.and_then(|p| plan_subtotals.get_mut(p)) {
            *ps += net;
        }
        set_line_money(line, subtotal, discount, tax);
        line.discounts = discounts
            .entries
            .get_mut(i)
            .map(std::mem::take)
            .unwrap_or_default();
        line_tax += tax;
    }
    (plan_subtotals, line_tax)
}

/// Refreshes each plan's line references, offers and selection (kept if still offered,
/// else the cheapest). Returns the selected options' cost and tax.
fn price_plans(
    order: &mut FastOrder,
    catalog: &Catalog,
    plan_subtotals: &[Decimal],
) -> (Decimal, Decimal) {
    sync_plan_lines(order);
    let mut shipping = Decimal::ZERO;
    let mut shipping_tax = Decimal::ZERO;
    for (p, plan) in order.shipment_plans.iter_mut().enumerate() {
        let country = plan.ship_to.country_iso2();
        let plan_subtotal = plan_subtotals.get(p).copied().unwrap_or_default();
        plan.available_options = catalog
            .shipping
            .iter()
            .filter(|r| r.ships_to(country.as_deref()))
            .map(|r| offer(r, catalog, &plan.ship_to, plan_subtotal))
            .collect();
        let chosen = choose(plan);
        if let Some(o) = &chosen {
            shipping += o.cost.unwrap_or_default().0;
            shipping_tax += o.tax.unwrap_or_default().0;
        }
        plan.selected_option = chosen;
    }
    (shipping, shipping_tax)
}

/// Drops each plan's references to lines the order no longer has and copies the lines'
/// current quantities into the rest.
fn sync_plan_lines(order: &mut FastOrder) {
    let quantities: Vec<(Id, Int64)> = order
        .lines
        .iter()
        .filter_map(|l| l.id.clone().map(|id| (id, l.quantity)))
        .collect();
    for plan in &mut order.shipment_plans {
        plan.lines
            .retain(|r| quantities.iter().any(|(id, _)| id == &r.id));
        for r in &mut plan.lines {
            r.quantity = quantities
                .iter()
                .find(|(id, _)| id == &r.id)
                .map(|(_, q)| *q);
        }
    }
}

/// The plan's selection if its available options still offer it, else the cheapest.
fn choose(plan: &ShipmentPlan) -> Option<ShippingOption> {
    plan.selected_option
        .as_ref()
        .and_then(|s| s.external_id.as_ref())
        .and_then(|id| {
            plan.available_options
                .iter()
                .find(|o| o.external_id.as_ref() == Some(id))
        })
        .or_else(|| cheapest(&plan.available_options))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{LineReference, OrderLine};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn catalog(extra: &str) -> Catalog {
        Catalog::parse(&format!(
            r#"{{"currency": "USD",
              "products": [{{"id": "p", "name": "P", "fulfillment": "physical", "price": "1.00"}}],
              {extra}}}"#
        ))
        .unwrap()
    }

    fn line(id: &str, price: &str, qty: i64) -> OrderLine {
        OrderLine {
            id: Some(Id(id.into())),
            unit_price: Some(Money(d(price))),
            quantity: Int64(qty),
            ..Default::default()
        }
    }

    fn coupon(code: &str) -> OrderDiscount {
        OrderDiscount {
            code: code.into(),
            ..Default::default()
        }
    }

    fn money(m: Option<Money>) -> String {
        m.unwrap_or_default().to_wire()
    }

    #[test]
    fn allocate_gives_left_over_cents_to_largest_remainders_earliest_first() {
        let shares = allocate(d("10.00"), &[d("1"), d("1"), d("1")]);
        assert_eq!(shares, vec![d("3.34"), d("3.33"), d("3.33")]);
        let shares = allocate(d("5.00"), &[d("10.00"), d("20.00"), d("30.00")]);
        // exact: 0.8333, 1.6666, 2.5 → truncated 0.83, 1.66, 2.50; 1 cent left → line 2.
        assert_eq!(shares, vec![d("0.83"), d("1.67"), d("2.50")]);
        assert_eq!(allocate(d("0.01"), &[d("0"), d("0")]), vec![d("0"), d("0")]);
    }

    #[test]
    fn percent_coupon_rounds_per_line_half_away_from_zero() {
        let c = catalog(r#""coupons": [{"code": "SAVE10", "percent_off": "10"}]"#);
        let mut o = FastOrder {
            lines: vec![line("a", "0.25", 1), line("b", "19.99", 3)],
            coupons: vec![coupon("save10")],
            ..Default::default()
        };
        reprice(&mut o, &c);
        // 0.025 → 0.03; 59.97 × 10% = 5.997 → 6.00
        assert_eq!(money(o.lines[0].line_discount_amount), "0.03");
        assert_eq!(money(o.lines[1].line_discount_amount), "6.00");
        assert_eq!(money(o.lines[1].discounted_unit_price), "17.99");
        assert_eq!(o.coupons[0].code, "SAVE10");
        assert!(o.coupons[0].applied);
        assert_eq!(money(o.coupons[0].total_amount), "6.03");
        assert_eq!(money(o.total_discounts), "6.03");
        assert_eq!(money(o.total_amount), "54.19");
        assert_eq!(o.lines[1].discounts[0].origin, Some(DiscountOrigin::User));
    }

    #[test]
    fn amount_coupon_is_capped_at_sub_total_and_checks_min_subtotal() {
        let c = catalog(
            r#""coupons": [{"code": "BIG", "amount_off": "100.00"},
                           {"code": "FIVE", "amount_off": "5.00", "min_subtotal": "20.00"}]"#,
        );
        let mut o = FastOrder {
            lines: vec![line("a", "3.00", 1), line("b", "4.00", 1)],
            coupons: vec![coupon("BIG"), coupon("FIVE")],
            ..Default::default()
        };
        reprice(&mut o, &c);
        assert_eq!(money(o.total_discounts), "7.00");
        assert_eq!(money(o.total_amount), "0.00");
        assert!(!o.coupons[1].applied, "FIVE needs a 20.00 sub_total");
        assert_eq!(money(o.coupons[1].total_amount), "0.00");
    }

    #[test]
    fn several_coupons_never_discount_a_line_below_zero() {
        let c = catalog(
            r#""coupons": [{"code": "HALF", "percent_off": "50"}, {"code": "ALL", "percent_off": "100"}]"#,
        );
        let mut o = FastOrder {
            lines: vec![line("a", "10.00", 1)],
            coupons: vec![coupon("HALF"), coupon("ALL")],
            ..Default::default()
        };
        reprice(&mut o, &c);
        assert_eq!(money(o.lines[0].line_discount_amount), "10.00");
        assert_eq!(money(o.coupons[1].total_amount), "5.00");
    }

    #[test]
    fn tax_uses_ship_to_of_the_holding_plan_else_bill_to_else_default() {
        let c = catalog(
            r#""tax": {"default_rate": "0.10", "rates": {"US": "0.05", "US-CA": "0.0725"}},
               "shipping": [{"id": "std", "name": "Std", "cost": "5.00", "countries": ["US"], "free_over": "100.00"},
                            {"id": "exp", "name": "Exp", "cost": "15.00"}]"#,
        );
        let ca = Address {
            country_code: Some("US".into()),
            state_province_code: Some("CA".into()),
            ..Default::default()
        };
        let ny = Address {
            country: Some("US".into()),
            state_province_code: Some("NY".into()),
            ..Default::default()
        };
        let mut o = FastOrder {
            lines: vec![
                line("a", "10.00", 1),
                line("b", "10.00", 1),
                line("c", "10.00", 1),
            ],
            bill_to: ny,
            shipment_plans: vec![ShipmentPlan {
                ship_to: ca,
                lines: vec![LineReference {
                    id: Id("a".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        reprice(&mut o, &c);
        assert_eq!(money(o.lines[0].tax_amount), "0.73"); // 0.725 → 0.73
        assert_eq!(money(o.lines[1].tax_amount), "0.50");
        o.bill_to = Address::default();
        reprice(&mut o, &c);
        assert_eq!(money(o.lines[1].tax_amount), "1.00");
        let plan = &o.shipment_plans[0];
        assert_eq!(plan.available_options.len(), 2);
        assert_eq!(
            plan.selected_option
                .as_ref()
                .unwrap()
                .external_id
                .as_deref(),
            Some("std")
        );
        assert_eq!(money(o.total_shipping), "5.00");
        assert_eq!(plan.lines[0].quantity, Some(Int64(1)));
        // 30.00 + (0.73 + 1.00 + 1.00) + 5.00
        assert_eq!(money(o.total_amount), "37.73");
    }

    #[test]
    fn free_shipping_threshold_uses_the_plans_discounted_subtotal_and_shipping_can_be_taxed() {
        let c = catalog(
            r#""tax": {"rates": {"US": "0.10"}, "shipping_taxable": true},
               "coupons": [{"code": "TEN", "amount_off": "10.00"}],
               "shipping": [{"id": "std", "name": "Std", "cost": "5.00", "free_over": "100.00"}]"#,
        );
        let us = Address {
            country_code: Some("US".into()),
            ..Default::default()
        };
        let mut o = FastOrder {
            lines: vec![line("a", "100.00", 1)],
            shipment_plans: vec![ShipmentPlan {
                ship_to: us,
                lines: vec![LineReference {
                    id: Id("a".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        reprice(&mut o, &c);
        assert_eq!(money(o.total_shipping), "0.00", "100.00 ≥ free_over");
        o.coupons.push(coupon("TEN"));
        reprice(&mut o, &c);
        let sel = o.shipment_plans[0].selected_option.clone().unwrap();
        assert_eq!(
            (money(sel.cost), money(sel.tax), money(sel.total)),
            ("5.00".into(), "0.50".into(), "5.50".into())
        );
        // 100 − 10 + (9.00 + 0.50) + 5.00
        assert_eq!(money(o.total_tax), "9.50");
        assert_eq!(money(o.total_amount), "104.50");
    }
}
