//! Pricing a cart by a Vendure channel's rules ([`PriceBook`], docs/vendure.md "How the
//! fast-seller adapter maps it"): Vendure's amounts in minor units mapped onto Fast's
//! tax-exclusive fields so that the order's `total_amount` is Vendure's `totalWithTax`.

use super::{choose, round, set_line_money, set_totals, sync_plan_lines, Sums};
use crate::domain::vendure_pricing::{amount as money, price_order, Cart, PriceBook, PricedOrder};
use crate::protocol::{
    DiscountOrigin, DiscountType, FastOrder, Id, Money, OrderDiscount, ShippingOption,
    ShippingOptionType,
};
use rust_decimal::Decimal;

/// A promotion as the order shows it: the coupon code (a coupon) or the promotion's name
/// (automatic).
struct Label {
    code: String,
    coupon: bool,
}

/// Recomputes every money field of a cart by Vendure's rules. A line whose SKU the book
/// does not hold (gone from Vendure since it was added) is priced 0; conversion refuses it.
/// Only the first shipment plan gets a shipping method: a Vendure order ships to one
/// address (the update refuses a second plan).
pub(super) fn reprice(order: &mut FastOrder, book: &PriceBook) {
    sync_plan_lines(order);
    let country = order
        .shipment_plans
        .first()
        .and_then(|p| p.ship_to.country_iso2())
        .or_else(|| order.bill_to.country_iso2());
    let known: Vec<(usize, String, i64)> = order
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let sku = l.external_variant_id.as_deref()?;
            book.variants
                .contains_key(sku)
                .then(|| (i, sku.to_owned(), l.quantity.0))
        })
        .collect();
    let cart_lines: Vec<(&str, i64)> = known.iter().map(|(_, sku, q)| (sku.as_str(), *q)).collect();
    let codes: Vec<String> = order
        .coupons
        .iter()
        .filter(|c| book.coupon(&c.code).is_some())
        .map(|c| c.code.clone())
        .collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let Ok(active) = book.active(&codes) else {
        return;
    };
    let labels: Vec<Label> = active
        .iter()
        .map(|p| match &p.coupon_code {
            Some(code) => Label {
                code: code.clone(),
                coupon: true,
            },
            None => Label {
                code: p.name.clone(),
                coupon: false,
            },
        })
        .collect();
    let cart_with =
        |method: Option<&str>| book.cart(country.as_deref(), &cart_lines, &codes, method);

    // The methods Vendure offers: those whose minimum the discounted net subtotal reaches.
    let Ok(goods) = cart_with(None) else {
        return;
    };
    let goods = price_order(&goods);
    for (p, plan) in order.shipment_plans.iter_mut().enumerate() {
        plan.available_options = if p == 0 {
            offers(book, goods.sub_total)
        } else {
            Vec::new()
        };
        plan.selected_option = choose(plan);
    }
    let method = order
        .shipment_plans
        .first()
        .and_then(|p| p.selected_option.as_ref())
        .and_then(|o| o.external_id.clone());
    let Ok(cart) = cart_with(method.as_deref()) else {
        return;
    };
    let total = price_order(&cart);
    if let Some(o) = order
        .shipment_plans
        .first_mut()
        .and_then(|p| p.selected_option.as_mut())
    {
        o.cost = Some(Money(money(total.shipping)));
        o.tax = Some(Money(money(total.shipping_with_tax - total.shipping)));
        o.total = Some(Money(money(total.shipping_with_tax)));
    }
    let without = without_each(&cart);

    let mut sums = Sums {
        shipping: money(total.shipping),
        shipping_tax: money(total.shipping_with_tax - total.shipping),
        ..Sums::default()
    };
    for line in &mut order.lines {
        set_line_money(line, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        line.discounts.clear();
    }
    for (k, (i, _, quantity)) in known.iter().enumerate() {
        let (Some(line), Some(p)) = (order.lines.get_mut(*i), total.lines.get(k)) else {
            continue;
        };
        let subtotal = money(p.line_price);
        let discount = money(p.line_price - p.prorated_line_price);
        let tax = money(p.prorated_line_price_with_tax - p.prorated_line_price);
        if *quantity > 0 {
            line.unit_price = Some(Money(round(subtotal / Decimal::from(*quantity))));
        }
        set_line_money(line, subtotal, discount, tax);
        let shares: Vec<i64> = without
            .iter()
            .map(|w| {
                w.lines
                    .get(k)
                    .map_or(0, |l| l.prorated_line_price - p.prorated_line_price)
            })
            .collect();
        line.discounts = line_discounts(&labels, &shares, p.line_price - p.prorated_line_price);
        sums.sub_total += subtotal;
        sums.discounts += discount;
        sums.line_tax += tax;
    }
    for coupon in &mut order.coupons {
        let at = labels
            .iter()
            .position(|l| l.coupon && l.code.eq_ignore_ascii_case(&coupon.code));
        let amount = at
            .and_then(|j| without.get(j))
            .map_or(0, |w| (w.total - total.total).max(0));
        if let Some(found) = at.and_then(|j| labels.get(j)) {
            coupon.code = found.code.clone();
        }
        coupon.origin = Some(DiscountOrigin::User);
        coupon.discount_type = Some(DiscountType::Regular);
        coupon.applied = amount > 0;
        coupon.total_amount = Some(Money(money(amount)));
    }
    set_totals(order, sums);
}

/// The shipping options for an order whose discounted net subtotal is `sub_total`.
fn offers(book: &PriceBook, sub_total: i64) -> Vec<ShippingOption> {
    book.shipping
        .iter()
        .filter(|m| sub_total >= m.order_minimum)
        .map(|m| {
            let (net, gross) = book.shipping_price(m);
            ShippingOption {
                id: Some(Id(m.code.clone())),
                external_id: Some(m.code.clone()),
                name: Some(m.name.clone()),
                shipment_type: Some(ShippingOptionType::Other),
                cost: Some(Money(money(net))),
                tax: Some(Money(money(gross - net))),
                total: Some(Money(money(gross))),
                carrier: None,
                service_level: None,
            }
        })
        .collect()
}

/// The order priced without each of its promotions in turn: what a promotion takes off is
/// the difference to the order priced with all of them.
fn without_each(cart: &Cart) -> Vec<PricedOrder> {
    (0..cart.promotions.len())
        .map(|j| {
            let mut c = cart.clone();
            c.promotions.remove(j);
            price_order(&c)
        })
        .collect()
}

/// A line's discount entries, one per promotion whose removal raises the line's price
/// (`shares`, net minor units, by promotion); the entries sum to the line's `discount`
/// whatever the promotions' interplay (the rest goes to the last entry).
fn line_discounts(labels: &[Label], shares: &[i64], discount: i64) -> Vec<OrderDiscount> {
    let mut entries: Vec<(usize, i64)> = shares
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, amount)| *amount > 0)
        .collect();
    let counted: i64 = entries.iter().map(|(_, a)| a).sum();
    match entries.last_mut() {
        Some((_, last)) => *last += discount - counted,
        None if discount > 0 => entries.push((0, discount)),
        None => {}
    }
    entries
        .into_iter()
        .filter(|(_, amount)| *amount > 0)
        .filter_map(|(j, amount)| {
            let label = labels.get(j)?;
            Some(OrderDiscount {
                code: label.code.clone(),
                description: None,
                origin: Some(if label.coupon {
                    DiscountOrigin::User
                } else {
                    DiscountOrigin::Vendor
                }),
                discount_type: Some(DiscountType::Regular),
                applied: true,
                total_amount: Some(Money(money(amount))),
            })
        })
        .collect()
}
