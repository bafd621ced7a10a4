//! Bounds on what one order may hold, checked on the order as computed (after pricing), so
//! that nothing stored is out of range for the next read (README "Limits").

use super::{ReasonCode, MAX_QUANTITY};
use crate::protocol::{FastOrder, Money, MAX_MONEY};
use rust_decimal::Decimal;

/// The first computed amount of `order` at or above [`MAX_MONEY`], as a message naming it
/// (`order.total_amount would be 1000000000000000.00; …`).
pub fn amounts_in_range(order: &FastOrder) -> Result<(), String> {
    let limit = Decimal::from(MAX_MONEY);
    let out_of_range = |field: String, m: Option<Money>| {
        m.filter(|m| m.0.abs() >= limit).map(|m| {
            format!(
                "{field} would be {}; amounts must stay below {MAX_MONEY}",
                m.to_wire()
            )
        })
    };
    let totals = [
        ("sub_total", order.sub_total),
        ("total_discounts", order.total_discounts),
        ("total_tax", order.total_tax),
        ("total_shipping", order.total_shipping),
        ("total_amount", order.total_amount),
    ];
    let lines = order.lines.iter().enumerate().flat_map(|(i, l)| {
        [
            ("subtotal_amount", l.subtotal_amount),
            ("line_discount_amount", l.line_discount_amount),
            ("tax_amount", l.tax_amount),
            ("total_amount", l.total_amount),
        ]
        .map(move |(name, m)| (format!("order.lines[{i}].{name}"), m))
    });
    let found = lines
        .chain(totals.map(|(name, m)| (format!("order.{name}"), m)))
        .find_map(|(field, m)| out_of_range(field, m));
    match found {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// How big one order may grow (README "Limits"): each a setting, within safe bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lines per order (`max_order_lines`).
    pub lines: usize,
    /// Units per line (`max_line_units`), at most [`MAX_QUANTITY`].
    pub units: i64,
    /// Coupons per order (`max_order_coupons`).
    pub coupons: usize,
    /// Shipment plans per order (`max_shipment_plans`).
    pub plans: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            lines: 500,
            units: MAX_QUANTITY,
            coupons: 10,
            plans: 20,
        }
    }
}

/// The safe range of each limit, as `(setting, lowest, highest)`.
pub const BOUNDS: [(&str, usize, usize); 4] = [
    ("max_order_lines", 1, 5_000),
    ("max_line_units", 1, MAX_QUANTITY as usize),
    ("max_order_coupons", 1, 100),
    ("max_shipment_plans", 1, 200),
];

impl Limits {
    /// Whether the change of `before` (`None` for a new cart) into `after` keeps within these
    /// limits; if not, the reason code and a message naming the limit and its setting. Only
    /// growth is refused: an order over a limit lowered since it was stored still takes
    /// changes that do not make it bigger.
    pub fn check(
        &self,
        before: Option<&FastOrder>,
        after: &FastOrder,
    ) -> Result<(), (ReasonCode, String)> {
        let grew = |count: fn(&FastOrder) -> usize, most: usize| {
            let n = count(after);
            (n > most && before.is_none_or(|b| n > count(b))).then_some(n)
        };
        let over = |what: &str, n: usize, most: usize, setting: &str| {
            format!("the order would have {n} {what}; at most {most} are allowed ({setting})")
        };
        if let Some(n) = grew(|o| o.lines.len(), self.lines) {
            let m = over("lines", n, self.lines, "max_order_lines");
            return Err((ReasonCode::InvalidQuantity, m));
        }
        if let Some((i, line)) = after.lines.iter().enumerate().find(|(_, line)| {
            line.quantity.0 > self.units
                && before.is_none_or(|b| {
                    b.lines
                        .iter()
                        .find(|old| old.id == line.id)
                        .is_none_or(|old| old.quantity.0 < line.quantity.0)
                })
        }) {
            let m = format!(
                "order.lines[{i}].quantity would be {}; at most {} units a line are allowed \
                 (max_line_units)",
                line.quantity.0, self.units
            );
            return Err((ReasonCode::InvalidQuantity, m));
        }
        if let Some(n) = grew(|o| o.coupons.len(), self.coupons) {
            let m = over("coupons", n, self.coupons, "max_order_coupons");
            return Err((ReasonCode::CouponNotApplicable, m));
        }
        if let Some(n) = grew(|o| o.shipment_plans.len(), self.plans) {
            let m = over("shipment plans", n, self.plans, "max_shipment_plans");
            return Err((ReasonCode::InvalidQuantity, m));
        }
        Ok(())
    }

    /// Refuses, before any work, an update whose lists are longer than any change within
    /// these limits needs (each item adds, changes or removes one line: replacing every line
    /// takes twice the line limit), so a 72k-entry items list costs nothing.
    pub fn check_request(
        &self,
        items: Option<usize>,
        plans: Option<usize>,
    ) -> Result<(), (ReasonCode, String)> {
        let most_items = self.lines.saturating_mul(2);
        if let Some(n) = items.filter(|n| *n > most_items) {
            return Err((
                ReasonCode::InvalidQuantity,
                format!(
                    "{n} items in one update; at most {most_items} (twice max_order_lines) \
                     are taken"
                ),
            ));
        }
        if let Some(n) = plans.filter(|n| *n > self.plans) {
            return Err((
                ReasonCode::InvalidQuantity,
                format!(
                    "{n} shipments in one update; at most {} are allowed (max_shipment_plans)",
                    self.plans
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OrderLine;

    #[test]
    fn an_amount_at_the_limit_is_named() {
        let mut order = FastOrder {
            total_amount: Some(Money(Decimal::from(MAX_MONEY - 1))),
            ..FastOrder::default()
        };
        assert!(amounts_in_range(&order).is_ok());
        order.lines.push(OrderLine {
            subtotal_amount: Some(Money(Decimal::from(MAX_MONEY))),
            ..OrderLine::default()
        });
        let e = amounts_in_range(&order).unwrap_err();
        assert!(
            e.starts_with("order.lines[0].subtotal_amount would be "),
            "{e}"
        );
    }

    #[test]
    fn the_catalog_bound_keeps_one_full_line_in_range() {
        assert_eq!(
            crate::domain::catalog::MAX_CATALOG_AMOUNT,
            Decimal::from(MAX_MONEY / crate::domain::MAX_QUANTITY)
        );
    }
}
