//! Checks of answer documents that need no conversation: money formats and totals, enum
//! values, and the differences between two answers.

use super::Outcome;
use crate::protocol::{
    DiscountOrigin, DiscountType, EntityType, FulfillmentModel, OrderStatus, OrderType,
    SegmentType, ShippingOptionType,
};
use crate::tapes::bind::Bindings;
use crate::tapes::compare::{self, IgnoreRules, JsonPath, Mismatch};
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// The money fields of an order and of a line.
const ORDER_MONEY: &[&str] = &[
    "total_amount",
    "sub_total",
    "total_discounts",
    "total_tax",
    "total_shipping",
];
const LINE_MONEY: &[&str] = &[
    "unit_price",
    "discounted_unit_price",
    "line_discount_amount",
    "subtotal_amount",
    "tax_amount",
    "total_amount",
];

/// A money value: decimal string or number; absent = 0 (protojson omits defaults).
fn money(v: Option<&Value>) -> Result<Decimal, String> {
    match v {
        None | Some(Value::Null) => Ok(Decimal::ZERO),
        Some(Value::String(s)) if s.is_empty() => Ok(Decimal::ZERO),
        Some(Value::String(s)) => Decimal::from_str(s)
            .or_else(|_| Decimal::from_scientific(s))
            .map_err(|_| format!("{s:?} is not a decimal")),
        Some(Value::Number(n)) => {
            let t = n.to_string();
            Decimal::from_str(&t)
                .or_else(|_| Decimal::from_scientific(&t))
                .map_err(|_| format!("{t} is not a decimal"))
        }
        Some(other) => Err(format!("{other} is not a money value")),
    }
}

fn field(v: &Value, key: &str) -> Decimal {
    money(v.get(key)).unwrap_or_default()
}

pub(super) fn id_value(v: Option<&Value>) -> Option<&str> {
    let v = v?;
    v.as_str()
        .or_else(|| v.get("value").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

fn enum_ok<T>(v: &Value, by_name: fn(&str) -> Option<T>, by_number: fn(i64) -> Option<T>) -> bool {
    match v {
        Value::String(s) => by_name(s).is_some() || s.parse().ok().and_then(by_number).is_some(),
        Value::Number(n) => n.as_i64().and_then(by_number).is_some(),
        _ => false,
    }
}

pub(super) fn segment_of(v: &Value) -> Option<SegmentType> {
    match v {
        Value::String(s) => {
            SegmentType::from_name(s).or_else(|| s.parse().ok().and_then(SegmentType::from_number))
        }
        Value::Number(n) => n.as_i64().and_then(SegmentType::from_number),
        _ => None,
    }
}

pub(super) fn enum_name<T: Copy>(
    v: Option<&Value>,
    by_name: fn(&str) -> Option<T>,
    by_number: fn(i64) -> Option<T>,
) -> Option<T> {
    match v? {
        Value::String(s) => by_name(s).or_else(|| s.parse().ok().and_then(by_number)),
        Value::Number(n) => n.as_i64().and_then(by_number),
        _ => None,
    }
}

/// The order of an answer (`order.order`), or null.
pub(super) fn order_of(answer: &Value) -> Value {
    answer
        .pointer("/order/order")
        .cloned()
        .unwrap_or(Value::Null)
}

pub(super) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The internal consistency of an order's money, as `(invariant, outcome, detail)` problems.
/// Failures: `sub_total` ≠ Σ line `subtotal_amount`; `total_amount` ≠ `sub_total −
/// total_discounts + total_tax + total_shipping`; an option's `total` ≠ `cost + tax`.
/// Warnings: a line's `subtotal_amount` ≠ `unit_price × quantity` or `total_amount` ≠
/// `subtotal − line_discount + tax`; `total_discounts` ≠ Σ line discounts; `total_shipping`
/// ≠ Σ selected options' cost (or total); `total_tax` ≠ Σ line tax + Σ selected options' tax.
pub fn check_totals(order: &Value) -> Vec<(Outcome, String)> {
    let mut out = Vec::new();
    let lines = list(order, "lines");
    let sum = |key: &str| -> Decimal { lines.iter().map(|l| field(l, key)).sum() };
    let sub_total = field(order, "sub_total");
    let discounts = field(order, "total_discounts");
    let tax = field(order, "total_tax");
    let shipping = field(order, "total_shipping");
    let total = field(order, "total_amount");
    if sub_total != sum("subtotal_amount") {
        out.push((
            Outcome::Fail,
            format!(
                "sub_total {sub_total} ≠ Σ lines[].subtotal_amount {}",
                sum("subtotal_amount")
            ),
        ));
    }
    let expected = sub_total - discounts + tax + shipping;
    if total != expected {
        out.push((
            Outcome::Fail,
            format!(
                "total_amount {total} ≠ sub_total − total_discounts + total_tax + total_shipping \
                 = {sub_total} − {discounts} + {tax} + {shipping} = {expected}"
            ),
        ));
    }
    line_totals(lines, &mut out);
    if discounts != sum("line_discount_amount") {
        out.push((
            Outcome::Warn,
            format!(
                "total_discounts {discounts} ≠ Σ lines[].line_discount_amount {}",
                sum("line_discount_amount")
            ),
        ));
    }
    let (selected_cost, selected_total, selected_tax) = option_totals(order, &mut out);
    if shipping != selected_cost && shipping != selected_total {
        out.push((
            Outcome::Warn,
            format!("total_shipping {shipping} ≠ Σ selected options' cost {selected_cost}"),
        ));
    }
    let want_tax = sum("tax_amount") + selected_tax;
    if tax != want_tax && tax != sum("tax_amount") {
        out.push((
            Outcome::Warn,
            format!(
                "total_tax {tax} ≠ Σ lines[].tax_amount + Σ selected options' tax = {want_tax}"
            ),
        ));
    }
    out
}

/// Warnings about each line's own arithmetic (`subtotal = unit_price × quantity`,
/// `total = subtotal − line_discount + tax`).
fn line_totals(lines: &[Value], out: &mut Vec<(Outcome, String)>) {
    for (i, l) in lines.iter().enumerate() {
        let qty = quantity(l).unwrap_or(0);
        if l.get("unit_price").is_some() {
            let want = field(l, "unit_price") * Decimal::from(qty);
            if field(l, "subtotal_amount") != want {
                out.push((
                    Outcome::Warn,
                    format!(
                        "lines[{i}].subtotal_amount {} ≠ unit_price × quantity = {want}",
                        field(l, "subtotal_amount")
                    ),
                ));
            }
        }
        let want =
            field(l, "subtotal_amount") - field(l, "line_discount_amount") + field(l, "tax_amount");
        if field(l, "total_amount") != want {
            out.push((
                Outcome::Warn,
                format!(
                    "lines[{i}].total_amount {} ≠ subtotal − line_discount + tax = {want}",
                    field(l, "total_amount")
                ),
            ));
        }
    }
}

/// Failures where an option's `total` ≠ `cost + tax`; returns the selected options' summed
/// cost, total and tax.
fn option_totals(order: &Value, out: &mut Vec<(Outcome, String)>) -> (Decimal, Decimal, Decimal) {
    let mut selected_cost = Decimal::ZERO;
    let mut selected_total = Decimal::ZERO;
    let mut selected_tax = Decimal::ZERO;
    for (p, plan) in list(order, "shipment_plans").iter().enumerate() {
        let mut options: Vec<(String, &Value)> = list(plan, "available_options")
            .iter()
            .enumerate()
            .map(|(i, o)| (format!("shipment_plans[{p}].available_options[{i}]"), o))
            .collect();
        if let Some(sel) = plan.get("selected_option").filter(|s| s.is_object()) {
            options.push((format!("shipment_plans[{p}].selected_option"), sel));
            selected_cost += field(sel, "cost");
            selected_total += field(sel, "total");
            selected_tax += field(sel, "tax");
        }
        for (path, o) in options {
            if o.get("total").is_some() && field(o, "total") != field(o, "cost") + field(o, "tax") {
                out.push((
                    Outcome::Fail,
                    format!(
                        "{path}.total {} ≠ cost + tax = {}",
                        field(o, "total"),
                        field(o, "cost") + field(o, "tax")
                    ),
                ));
            }
        }
    }
    (selected_cost, selected_total, selected_tax)
}

/// A line's quantity, a number or a numeric string.
pub(super) fn quantity(line: &Value) -> Option<i64> {
    line.get("quantity").and_then(|q| {
        q.as_i64()
            .or_else(|| q.as_str().and_then(|s| s.parse().ok()))
    })
}

/// Records `path = value` in `bad` when `v` is present and not a valid enum value.
fn check_enum(bad: &mut Vec<String>, path: String, v: Option<&Value>, ok: fn(&Value) -> bool) {
    if let Some(v) = v {
        if !ok(v) {
            bad.push(format!("{path} = {v}"));
        }
    }
}

fn origin_ok(v: &Value) -> bool {
    enum_ok(v, DiscountOrigin::from_name, DiscountOrigin::from_number)
}

fn discount_type_ok(v: &Value) -> bool {
    enum_ok(v, DiscountType::from_name, DiscountType::from_number)
}

fn shipment_type_ok(v: &Value) -> bool {
    enum_ok(
        v,
        ShippingOptionType::from_name,
        ShippingOptionType::from_number,
    )
}

/// Enum fields with unknown values, as paths.
pub(super) fn bad_enums(body: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    check_enum(&mut bad, "type".into(), body.get("type"), |v| {
        enum_ok(v, EntityType::from_name, EntityType::from_number)
    });
    let Some(order) = body.pointer("/order/order") else {
        return bad;
    };
    check_enum(
        &mut bad,
        "order_type".into(),
        order.get("order_type"),
        |v| enum_ok(v, OrderType::from_name, OrderType::from_number),
    );
    check_enum(&mut bad, "status".into(), order.get("status"), |v| {
        enum_ok(v, OrderStatus::from_name, OrderStatus::from_number)
    });
    let mut discounts: Vec<(String, &Value)> = list(order, "coupons")
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("coupons[{i}]"), c))
        .collect();
    for (i, l) in list(order, "lines").iter().enumerate() {
        check_enum(
            &mut bad,
            format!("lines[{i}].fulfillment_mode"),
            l.get("fulfillment_mode"),
            |v| {
                enum_ok(
                    v,
                    FulfillmentModel::from_name,
                    FulfillmentModel::from_number,
                )
            },
        );
        for (j, d) in list(l, "discounts").iter().enumerate() {
            discounts.push((format!("lines[{i}].discounts[{j}]"), d));
        }
    }
    for (path, d) in discounts {
        check_enum(
            &mut bad,
            format!("{path}.origin"),
            d.get("origin"),
            origin_ok,
        );
        check_enum(
            &mut bad,
            format!("{path}.type"),
            d.get("type"),
            discount_type_ok,
        );
    }
    for (p, plan) in list(order, "shipment_plans").iter().enumerate() {
        let sel = plan
            .get("selected_option")
            .and_then(|s| s.get("shipment_type"));
        check_enum(
            &mut bad,
            format!("shipment_plans[{p}].selected_option.shipment_type"),
            sel,
            shipment_type_ok,
        );
        for (i, o) in list(plan, "available_options").iter().enumerate() {
            check_enum(
                &mut bad,
                format!("shipment_plans[{p}].available_options[{i}].shipment_type"),
                o.get("shipment_type"),
                shipment_type_ok,
            );
        }
    }
    if let Some(statuses) = body.pointer("/order/status").and_then(Value::as_array) {
        for (i, s) in statuses.iter().enumerate() {
            check_enum(
                &mut bad,
                format!("order.status[{i}].updated"),
                s.get("updated"),
                |v| segment_of(v).is_some(),
            );
        }
    }
    bad
}

/// Money fields that are not decimals or are negative.
pub(super) fn bad_money(order: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |path: String, v: Option<&Value>| match money(v) {
        Ok(d) if d.is_sign_negative() && !d.is_zero() => {
            bad.push(format!("{path} = {d} is negative"))
        }
        Ok(_) => {}
        Err(e) => bad.push(format!("{path}: {e}")),
    };
    for k in ORDER_MONEY {
        check((*k).to_string(), order.get(*k));
    }
    for (i, l) in list(order, "lines").iter().enumerate() {
        for k in LINE_MONEY {
            check(format!("lines[{i}].{k}"), l.get(*k));
        }
    }
    for (p, plan) in list(order, "shipment_plans").iter().enumerate() {
        for (i, o) in list(plan, "available_options").iter().enumerate() {
            for k in ["cost", "tax", "total"] {
                check(
                    format!("shipment_plans[{p}].available_options[{i}].{k}"),
                    o.get(k),
                );
            }
        }
    }
    bad
}

/// The differences between two JSON documents, as report lines.
pub(super) fn differences(expected: &Value, got: &Value) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut bindings = Bindings::default();
    compare::diff(
        expected,
        Some(got),
        &JsonPath::root("$"),
        &IgnoreRules::default(),
        &mut bindings,
        &mut out,
    );
    out
}

pub(super) fn summarize(m: &[Mismatch]) -> String {
    let mut text: Vec<String> = m.iter().take(3).map(ToString::to_string).collect();
    if m.len() > 3 {
        text.push(format!("… {} more", m.len() - 3));
    }
    text.join("; ")
}
