//! Bounds on what one order may hold, checked on the order as computed (after pricing), so
//! that nothing stored is out of range for the next read (README "Limits").

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
