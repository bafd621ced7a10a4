//! The money of lines as they stand (no catalog lookup): pro-rata shares, scaling a line
//! down, and the order's totals rewritten from its lines.

use crate::domain::pricing::{allocate, line_subtotal, round, set_line_money, set_totals, Sums};
use crate::protocol::{FastOrder, Int64, Money, OrderLine};
use rust_decimal::Decimal;

/// `round(amount × part / whole)`; 0 when `whole` is not positive.
pub(crate) fn pro_rata(amount: Decimal, part: i64, whole: i64) -> Decimal {
    if whole <= 0 {
        return Decimal::ZERO;
    }
    round(amount * Decimal::from(part) / Decimal::from(whole))
}

/// A share of what is left, by the last-remainder rule: `left` itself when `part` is all
/// of `whole` (so the shares sum exactly to what there was), else `round(left × part /
/// whole)`; 0 when `whole` is not positive.
pub(crate) fn share_of_left(left: Decimal, part: Decimal, whole: Decimal) -> Decimal {
    if part == whole {
        left
    } else if whole > Decimal::ZERO {
        round(left * part / whole)
    } else {
        Decimal::ZERO
    }
}

/// Money of a line as it stands.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineMoney {
    pub subtotal: Decimal,
    pub discount: Decimal,
    pub tax: Decimal,
}

impl LineMoney {
    pub fn of(line: &OrderLine) -> LineMoney {
        let subtotal = line
            .subtotal_amount
            .map_or_else(|| line_subtotal(line), |m| m.0);
        LineMoney {
            subtotal,
            discount: line.line_discount_amount.unwrap_or_default().0,
            tax: line.tax_amount.unwrap_or_default().0,
        }
    }

    pub fn net(&self) -> Decimal {
        self.subtotal - self.discount
    }
}

/// The tax on shipping: the order's tax minus its lines' tax.
pub(crate) fn shipping_tax_of(order: &FastOrder) -> Decimal {
    let lines: Decimal = order.lines.iter().map(|l| LineMoney::of(l).tax).sum();
    order.total_tax.unwrap_or_default().0 - lines
}

/// What a line lost when scaled down (all positive for a reduction).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineDelta {
    pub subtotal: Decimal,
    pub discount: Decimal,
    pub tax: Decimal,
}

impl LineDelta {
    pub fn net(&self) -> Decimal {
        self.subtotal - self.discount
    }
}

/// Refunds already made on units that stay on a line: units, money excl. tax, tax.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Refunded {
    pub units: i64,
    pub net: Decimal,
    pub tax: Decimal,
}

/// Reduces line `idx` to `remaining` units without looking prices up: subtotal from the
/// unit price, discount and tax scaled by `remaining / current` (half away from zero), the
/// line's discount entries re-split and the order's coupon totals and plan references
/// adjusted. On a line with refunds, the refunded units keep exactly what was refunded on
/// them and the other staying units their pro-rata share of the rest, so every cent ends up
/// refunded, canceled or still on the line. Order totals are not touched
/// ([`recompute_totals`]).
pub(crate) fn scale_line(
    order: &mut FastOrder,
    idx: usize,
    remaining: i64,
    refunded: Refunded,
) -> LineDelta {
    let Some(line) = order.lines.get_mut(idx) else {
        return LineDelta::default();
    };
    let current = line.quantity.0;
    let before = LineMoney::of(line);
    let subtotal = match line.unit_price {
        Some(p) => round(p.0 * Decimal::from(remaining)),
        None => pro_rata(before.subtotal, remaining, current),
    };
    let (discount, tax) = if refunded.units <= 0 {
        (
            pro_rata(before.discount, remaining, current).min(subtotal),
            pro_rata(before.tax, remaining, current),
        )
    } else {
        let units = current - refunded.units;
        let kept = remaining - refunded.units;
        let net = refunded.net + pro_rata(before.net() - refunded.net, kept, units);
        let tax = refunded.tax + pro_rata(before.tax - refunded.tax, kept, units);
        ((subtotal - net).max(Decimal::ZERO).min(subtotal), tax)
    };

    // Re-split the line's coupon entries over the new discount.
    let weights: Vec<Decimal> = line
        .discounts
        .iter()
        .map(|d| d.total_amount.unwrap_or_default().0)
        .collect();
    let mut coupon_deltas: Vec<(String, Decimal)> = Vec::new();
    if weights.iter().sum::<Decimal>() > Decimal::ZERO {
        let shares = allocate(discount, &weights);
        for (entry, share) in line.discounts.iter_mut().zip(shares) {
            let old = entry.total_amount.unwrap_or_default().0;
            if old != share {
                coupon_deltas.push((entry.code.clone(), old - share));
                entry.total_amount = Some(Money(share));
            }
        }
    }

    line.quantity.0 = remaining;
    set_line_money(line, subtotal, discount, tax);
    let line_id = line.id.clone();

    for (code, delta) in coupon_deltas {
        if let Some(c) = order.coupons.iter_mut().find(|c| c.code == code) {
            if let Some(total) = c.total_amount.as_mut() {
                total.0 -= delta;
            }
        }
    }
    if let Some(id) = line_id {
        for r in order
            .shipment_plans
            .iter_mut()
            .flat_map(|p| p.lines.iter_mut())
            .filter(|r| r.id == id && r.quantity.is_some())
        {
            r.quantity = Some(Int64(remaining));
        }
    }

    LineDelta {
        subtotal: before.subtotal - subtotal,
        discount: before.discount - discount,
        tax: before.tax - tax,
    }
}

/// Rewrites the order's totals from its lines plus the given shipping and shipping tax.
pub(crate) fn recompute_totals(order: &mut FastOrder, shipping: Decimal, shipping_tax: Decimal) {
    let mut sums = Sums {
        shipping,
        shipping_tax,
        ..Sums::default()
    };
    for line in &order.lines {
        let m = LineMoney::of(line);
        sums.sub_total += m.subtotal;
        sums.discounts += m.discount;
        sums.line_tax += m.tax;
    }
    set_totals(order, sums);
}
