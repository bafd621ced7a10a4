//! Creating carts and merging Fast's incremental updates into them (docs/pricing.md "Updates").
//!
//! Every segment is applied to a draft; a failed segment leaves the order as it was and is
//! reported in `status[]`, the others still apply. Segments run in the contract's order:
//! items, coupon, bill_to, shipments, shipping_option, status, then conversion; each has
//! its function in [`segments`].

mod segments;

use super::catalog::{Catalog, Sku, SkuQuery};
use super::limits::{self, Limits};
use super::pricing::reprice;
use super::{DomainError, IdSource, ReasonCode};
use crate::protocol::{
    CartToOrderConvert, FastOrder, Id, Money, OrderDiscount, OrderLine, OrderStatus, OrderType,
    SegmentStatus, SegmentType, UpdateOrderSegment,
};
use segments::{
    apply_bill_to, apply_coupon, apply_items, apply_shipments, apply_shipping_option, apply_status,
    convert_cart, Refusal, SegmentResult,
};
use std::collections::HashMap;

/// Builds a new cart from Fast's create request (docs/protocol.md "Create").
pub fn create_cart(
    incoming: FastOrder,
    is_cart: Option<bool>,
    catalog: &Catalog,
    limits: &Limits,
    ids: &mut dyn IdSource,
) -> Result<FastOrder, DomainError> {
    if is_cart == Some(false) {
        return Err(DomainError::unprocessable(
            "order.is_cart",
            "only carts can be created (is_cart must be true)",
        ));
    }
    if incoming.id.as_ref().is_none_or(|id| id.0.is_empty()) {
        return Err(DomainError::invalid(
            "order.order.id",
            "Fast's order id is required",
        ));
    }
    if incoming.lines.len() > limits.lines {
        return Err(DomainError::unprocessable(
            "order.order.lines",
            format!(
                "{} lines; at most {} are allowed (max_order_lines)",
                incoming.lines.len(),
                limits.lines
            ),
        ));
    }
    let mut order = FastOrder {
        external_id: Some(ids.new_id()),
        order_type: Some(OrderType::Cart),
        status: Some(OrderStatus::Cart),
        lines: Vec::with_capacity(incoming.lines.len()),
        shipment_plans: Vec::new(),
        coupons: Vec::new(),
        ..incoming.clone()
    };
    for (i, line) in incoming.lines.into_iter().enumerate() {
        let line = new_line(line, i, &order.lines, catalog, limits.units, ids)?;
        order.lines.push(line);
    }
    if let Some(line) = first_understocked(&order.lines, catalog) {
        return Err(DomainError::unprocessable(
            format!("order.order.lines[{line}]"),
            "insufficient stock",
        ));
    }
    for (i, c) in incoming.coupons.iter().enumerate() {
        if catalog.coupon(&c.code).is_none() {
            return Err(DomainError::unprocessable(
                format!("order.order.coupons[{i}].code"),
                format!("unknown coupon {}", c.code),
            ));
        }
        order.coupons.push(OrderDiscount {
            code: c.code.clone(),
            ..Default::default()
        });
    }
    reprice(&mut order, catalog);
    limits
        .check(None, &order)
        .map_err(|(_, message)| message)
        .and_then(|()| limits::amounts_in_range(&order))
        .map_err(|message| DomainError::unprocessable("order.order", message))?;
    Ok(order)
}

/// Line `i` of a create request, checked (quantity, an id not `earlier` used, a catalog
/// product) and filled from the catalog. A line without an id gets one.
fn new_line(
    line: OrderLine,
    i: usize,
    earlier: &[OrderLine],
    catalog: &Catalog,
    max_units: i64,
    ids: &mut dyn IdSource,
) -> Result<OrderLine, DomainError> {
    let field = format!("order.order.lines[{i}]");
    let qty = line.quantity.0;
    if qty < 0 {
        return Err(DomainError::invalid(
            format!("{field}.quantity"),
            "must not be negative",
        ));
    }
    if qty == 0 || qty > max_units {
        return Err(DomainError::unprocessable(
            format!("{field}.quantity"),
            format!("must be between 1 and {max_units}"),
        ));
    }
    let id = match line.id.clone().filter(|id| !id.0.is_empty()) {
        Some(id) => id,
        None => Id(ids.new_id()),
    };
    if earlier.iter().any(|l| l.id.as_ref() == Some(&id)) {
        return Err(DomainError::unprocessable(
            format!("{field}.id"),
            format!("line id {id} appears twice"),
        ));
    }
    let sku = sku_of(&line, catalog).ok_or_else(|| {
        DomainError::unprocessable(&field, format!("no catalog product matches line {id}"))
    })?;
    let external_id = ids.new_id();
    Ok(hydrate(line, id, external_id, sku))
}

/// Fills a line's seller-side data from its catalog item.
fn hydrate(mut line: OrderLine, id: Id, external_id: String, sku: Sku<'_>) -> OrderLine {
    line.id = Some(id);
    line.external_id = Some(external_id);
    line.external_product_id = Some(sku.product.id.clone());
    line.external_variant_id = Some(sku.id().to_string());
    line.name = Some(sku.name().to_string());
    line.description = Some(sku.product.description.clone());
    line.image_url = Some(sku.product.image_url.clone());
    line.fulfillment_mode = Some(sku.product.fulfillment);
    line.unit_price = Some(Money(sku.price()));
    line
}

fn sku_of<'a>(line: &OrderLine, catalog: &'a Catalog) -> Option<Sku<'a>> {
    catalog.resolve(&SkuQuery {
        product_id: line.external_product_id.as_deref(),
        variant_id: line.external_variant_id.as_deref(),
        options: &line.external_options,
        fallback_ids: &[],
    })
}

/// Index of the first line whose catalog item has less stock than the order asks for
/// (all lines of the same item counted together).
fn first_understocked(lines: &[OrderLine], catalog: &Catalog) -> Option<usize> {
    let mut wanted: HashMap<String, i64> = HashMap::new();
    for line in lines {
        if let Some(sku) = sku_of(line, catalog) {
            *wanted.entry(sku.id().to_string()).or_default() += line.quantity.0;
        }
    }
    lines.iter().position(|line| {
        sku_of(line, catalog).is_some_and(|sku| {
            sku.stock()
                .is_some_and(|stock| wanted.get(sku.id()).copied().unwrap_or(0) > stock)
        })
    })
}

/// Refuses what no segment could sensibly apply: negative quantities (HTTP 400).
pub fn validate_update(seg: &UpdateOrderSegment) -> Result<(), DomainError> {
    let items = seg.items.iter().flatten().enumerate();
    for (i, item) in items {
        if item.quantity.is_some_and(|q| q.0 < 0) {
            return Err(DomainError::invalid(
                format!("order.items[{i}].quantity"),
                "must not be negative",
            ));
        }
    }
    let refs = seg
        .shipments
        .iter()
        .flatten()
        .enumerate()
        .flat_map(|(p, s)| s.line_refs.iter().enumerate().map(move |(r, l)| (p, r, l)));
    for (p, r, line_ref) in refs {
        if line_ref.quantity.is_some_and(|q| q.0 < 0) {
            return Err(DomainError::invalid(
                format!("order.shipments[{p}].line_refs[{r}].quantity"),
                "must not be negative",
            ));
        }
    }
    Ok(())
}

/// The result of merging one update request.
#[derive(Debug, Clone)]
pub struct UpdateOutcome {
    pub order: FastOrder,
    pub statuses: Vec<SegmentStatus>,
}

fn status_of(order: &FastOrder) -> OrderStatus {
    order.status.unwrap_or(OrderStatus::Cart)
}

/// Merges one update into `order` (docs/pricing.md "Updates").
pub fn apply_update(
    order: &FastOrder,
    seg: &UpdateOrderSegment,
    catalog: &Catalog,
    limits: &Limits,
    ids: &mut dyn IdSource,
) -> UpdateOutcome {
    let mut current = order.clone();
    let mut statuses = Vec::new();
    let convert = seg.convert_cart_to_order == Some(true);
    let only_convert = convert && seg.convert_mode == Some(CartToOrderConvert::Only);

    let mut step = |kind: SegmentType, f: &mut dyn FnMut(&mut FastOrder) -> SegmentResult| {
        let mut draft = current.clone();
        // A change that grows the order past a limit, or whose computed amounts leave the
        // storable range, fails like any refusal.
        let result = f(&mut draft).and_then(|message| {
            limits
                .check(Some(&current), &draft)
                .map_err(|(code, m)| Refusal(code, m))?;
            limits::amounts_in_range(&draft)
                .map(|()| message)
                .map_err(|m| Refusal(ReasonCode::InvalidQuantity, m))
        });
        let entry = match result {
            Ok(message) => {
                current = draft;
                SegmentStatus {
                    updated: kind,
                    status: true,
                    reason_code: None,
                    message,
                }
            }
            Err(Refusal(code, message)) => SegmentStatus {
                updated: kind,
                status: false,
                reason_code: Some(code.as_str()),
                message,
            },
        };
        statuses.push(entry);
    };

    if !only_convert {
        if let Some(items) = &seg.items {
            step(SegmentType::LineItem, &mut |o| {
                limits
                    .check_request(Some(items.len()), None)
                    .map_err(|(code, m)| Refusal(code, m))?;
                apply_items(o, items, catalog, ids)
            });
        }
        if let Some(coupon) = &seg.coupon {
            step(SegmentType::Coupon, &mut |o| {
                apply_coupon(o, &coupon.code, coupon.remove, catalog)
            });
        }
        if let Some(bill_to) = &seg.bill_to {
            step(SegmentType::BillingAddress, &mut |o| {
                apply_bill_to(o, bill_to, catalog)
            });
        }
        if let Some(shipments) = &seg.shipments {
            step(SegmentType::ShippingAddress, &mut |o| {
                limits
                    .check_request(None, Some(shipments.len()))
                    .map_err(|(code, m)| Refusal(code, m))?;
                apply_shipments(o, shipments, catalog, ids)
            });
        }
        if let Some(select) = &seg.shipping_option {
            step(SegmentType::ShippingOption, &mut |o| {
                apply_shipping_option(o, select, catalog)
            });
        }
        if let Some(target) = seg.status {
            step(SegmentType::OrderStatus, &mut |o| apply_status(o, target));
        }
    }
    if convert {
        step(SegmentType::ConvertCartToOrder, &mut |o| {
            convert_cart(o, catalog)
        });
    }
    UpdateOutcome {
        order: current,
        statuses,
    }
}

/// The outbox event a change of `before` into `after` causes (docs/pricing.md "Events"): the conversion,
/// and every later status change of a converted order.
pub fn event_for(before: &FastOrder, after: &FastOrder) -> Option<&'static str> {
    let (from, to) = (status_of(before), status_of(after));
    match (from, to) {
        (OrderStatus::Cart, OrderStatus::Pending) => Some("order.converted"),
        (OrderStatus::Cart, _) => None,
        // A cancel, Fast's or the merchant's, is `order.canceled` (docs/pricing.md "Events").
        (_, OrderStatus::Canceled) if from != to => Some("order.canceled"),
        _ if from != to => Some("order.status_changed"),
        _ => None,
    }
}

/// Marks an order deleted (kept for audit). Deleting again changes nothing.
pub fn delete(order: &FastOrder) -> FastOrder {
    FastOrder {
        status: Some(OrderStatus::Deleted),
        ..order.clone()
    }
}

/// The seed's simplest cart for tests: one product, demo-like catalog.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Address, CouponUpdate};

    struct Counter(u32);
    impl IdSource for Counter {
        fn new_id(&mut self) -> String {
            self.0 += 1;
            format!("id-{}", self.0)
        }
    }

    fn catalog() -> Catalog {
        Catalog::parse(
            r#"{"currency": "USD",
              "products": [
                {"id": "tee", "name": "Tee", "fulfillment": "physical", "price": "20.00",
                 "variants": [{"id": "tee-M", "stock": 3, "options": {"size": "M"}}]},
                {"id": "mug", "name": "Mug", "fulfillment": "physical", "price": "10.00"}],
              "tax": {"rates": {"US": "0.05"}},
              "shipping": [{"id": "exp", "name": "Express", "cost": "15.00", "countries": ["US"]},
                           {"id": "std", "name": "Standard", "cost": "5.00", "countries": ["US"], "free_over": "100.00"}],
              "coupons": [{"code": "FIVE", "amount_off": "5.00", "min_subtotal": "20.00"}]}"#,
        )
        .unwrap()
    }

    fn cart() -> FastOrder {
        let incoming: FastOrder = serde_json::from_str(
            r#"{"id": {"value": "fast-1"}, "user_id": "u-9",
                "lines": [{"id": {"value": "l1"}, "external_product_id": "mug", "quantity": 1,
                           "subtotal_amount": "0.00", "customizations": [{"key": "gift", "value": "yes"}]}]}"#,
        )
        .unwrap();
        create_cart(
            incoming,
            Some(true),
            &catalog(),
            &Limits::default(),
            &mut Counter(0),
        )
        .unwrap()
    }

    fn update(json: &str) -> UpdateOrderSegment {
        serde_json::from_str(json).unwrap()
    }

    fn run(order: &FastOrder, json: &str) -> UpdateOutcome {
        apply_update(
            order,
            &update(json),
            &catalog(),
            &Limits::default(),
            &mut Counter(100),
        )
    }

    #[test]
    fn create_prices_the_cart_and_keeps_unknown_fields() {
        let o = cart();
        assert_eq!(o.external_id.as_deref(), Some("id-1"));
        assert_eq!(o.status, Some(OrderStatus::Cart));
        assert_eq!(o.lines[0].external_id.as_deref(), Some("id-2"));
        assert_eq!(o.lines[0].name.as_deref(), Some("Mug"));
        assert_eq!(o.total_amount.unwrap().to_wire(), "10.00");
        assert!(o.extra.contains_key("user_id"));
        assert!(o.lines[0].extra.contains_key("customizations"));
    }

    #[test]
    fn create_refuses_non_carts_unknown_products_and_missing_stock() {
        let c = catalog();
        let with_line = |l: &str| -> FastOrder {
            serde_json::from_str(&format!(r#"{{"id": {{"value": "f"}}, "lines": [{l}]}}"#)).unwrap()
        };
        let ok = with_line(r#"{"external_product_id": "mug", "quantity": 1}"#);
        assert!(matches!(
            create_cart(ok, Some(false), &c, &Limits::default(), &mut Counter(0)),
            Err(DomainError::Unprocessable { .. })
        ));
        let unknown = with_line(r#"{"external_product_id": "nope", "quantity": 1}"#);
        let e =
            create_cart(unknown, Some(true), &c, &Limits::default(), &mut Counter(0)).unwrap_err();
        assert!(e.to_string().starts_with("order.order.lines[0]"), "{e}");
        let greedy = with_line(r#"{"external_variant_id": "tee-M", "quantity": 4}"#);
        assert!(create_cart(greedy, Some(true), &c, &Limits::default(), &mut Counter(0)).is_err());
        let negative = with_line(r#"{"external_product_id": "mug", "quantity": -1}"#);
        assert!(matches!(
            create_cart(
                negative,
                Some(true),
                &c,
                &Limits::default(),
                &mut Counter(0)
            ),
            Err(DomainError::Invalid { .. })
        ));
    }

    #[test]
    fn items_add_change_and_remove_lines_by_fast_line_id() {
        let o = cart();
        let out = run(
            &o,
            r#"{"items": [{"item_id": {"value": "l2"}, "external_variant_id": "tee-M", "quantity": 2},
                                        {"item_id": {"value": "l1"}, "quantity": 3}]}"#,
        );
        assert!(out.statuses[0].status, "{:?}", out.statuses);
        assert_eq!(out.order.lines.len(), 2);
        assert_eq!(out.order.sub_total.unwrap().to_wire(), "70.00");
        // The same add again (a new request id for the same line) never duplicates it.
        let again = run(
            &out.order,
            r#"{"items": [{"item_id": {"value": "l2"}, "quantity": 2}]}"#,
        );
        assert_eq!(again.order.lines.len(), 2);
        let removed = run(&again.order, r#"{"items": [{"id": "l1"}]}"#);
        assert_eq!(removed.order.lines.len(), 1);
        assert_eq!(removed.order.total_amount.unwrap().to_wire(), "40.00");
    }

    #[test]
    fn a_failed_segment_changes_nothing_and_the_others_still_apply() {
        let o = cart();
        let out = run(
            &o,
            r#"{"items": [{"item_id": {"value": "l2"}, "external_variant_id": "tee-M", "quantity": 9}],
                "coupon": "NOPE",
                "bill_to": {"country_code": "US", "first_name": "Ada"}}"#,
        );
        let codes: Vec<_> = out
            .statuses
            .iter()
            .map(|s| (s.updated, s.status, s.reason_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                (SegmentType::LineItem, false, Some("INSUFFICIENT_STOCK")),
                (SegmentType::Coupon, false, Some("COUPON_NOT_FOUND")),
                (SegmentType::BillingAddress, true, None),
            ]
        );
        assert_eq!(out.order.lines.len(), 1);
        assert_eq!(out.order.total_tax.unwrap().to_wire(), "0.50");
        let huge = run(
            &o,
            r#"{"items": [{"item_id": {"value": "l1"}, "quantity": 100001}]}"#,
        );
        assert_eq!(huge.statuses[0].reason_code, Some("INVALID_QUANTITY"));
    }

    #[test]
    fn coupon_min_subtotal_and_removal() {
        let o = cart();
        let out = run(&o, r#"{"coupon": {"code": "five"}}"#);
        assert_eq!(out.statuses[0].reason_code, Some("COUPON_NOT_APPLICABLE"));
        let bigger = run(
            &o,
            r#"{"items": [{"item_id": {"value": "l1"}, "quantity": 3}], "coupon": {"code": "five"}}"#,
        );
        assert!(bigger.statuses.iter().all(|s| s.status));
        assert_eq!(bigger.order.total_discounts.unwrap().to_wire(), "5.00");
        let seg = UpdateOrderSegment {
            coupon: Some(CouponUpdate {
                code: "FIVE".into(),
                remove: true,
            }),
            ..Default::default()
        };
        let removed = apply_update(
            &bigger.order,
            &seg,
            &catalog(),
            &Limits::default(),
            &mut Counter(0),
        );
        assert!(removed.order.coupons.is_empty());
        assert_eq!(removed.order.total_amount.unwrap().to_wire(), "30.00");
    }

    #[test]
    fn shipments_preselect_the_cheapest_option_and_selection_changes_totals() {
        let o = cart();
        let out = run(
            &o,
            r#"{"shipments": [{"ship_to": {"country": "US"}, "line_refs": [{"id": {"value": "l1"}, "quantity": 1}]}]}"#,
        );
        assert!(out.statuses[0].status, "{:?}", out.statuses);
        let plan = &out.order.shipment_plans[0];
        assert_eq!(
            plan.selected_option
                .as_ref()
                .unwrap()
                .external_id
                .as_deref(),
            Some("std")
        );
        assert_eq!(out.order.total_amount.unwrap().to_wire(), "15.50");
        let plan_ext = plan.external_id.clone().unwrap();
        let chosen = run(
            &out.order,
            &format!(
                r#"{{"shipping_option": {{"plan_id": {{"value": "{plan_ext}"}}, "option_id": {{"value": "exp"}}}}}}"#
            ),
        );
        assert!(chosen.statuses[0].status, "{:?}", chosen.statuses);
        assert_eq!(chosen.order.total_shipping.unwrap().to_wire(), "15.00");
        let missing = run(
            &chosen.order,
            r#"{"shipping_option": {"option_id": {"value": "teleport"}}}"#,
        );
        assert_eq!(
            missing.statuses[0].reason_code,
            Some("SHIPPING_OPTION_NOT_FOUND")
        );
        let more = run(
            &chosen.order,
            r#"{"items": [{"item_id": {"value": "l7"}, "external_product_id": "mug"}]}"#,
        );
        let refs: Vec<_> = more.order.shipment_plans[0]
            .lines
            .iter()
            .map(|r| r.id.0.clone())
            .collect();
        assert_eq!(
            refs,
            vec!["l1", "l7"],
            "a physical line added later ships with the plan"
        );
        assert_eq!(more.order.total_tax.unwrap().to_wire(), "1.00");
        let abroad = run(
            &o,
            r#"{"shipments": [{"ship_to": {"country_code": "FR"}}]}"#,
        );
        assert_eq!(
            abroad.statuses[0].reason_code,
            Some("ADDRESS_NOT_SHIPPABLE")
        );
        let address = Address {
            country: Some("US".into()),
            ..Default::default()
        };
        assert_eq!(out.order.shipment_plans[0].ship_to, address);
    }

    #[test]
    fn conversion_then_status_chain_and_repeated_convert_is_a_no_op() {
        let o = cart();
        let converted = run(
            &o,
            r#"{"convert_cart_to_order": true, "convert_mode": "CART_TO_ORDER_CONVERT_UPDATE_AND_CONVERT"}"#,
        );
        assert_eq!(converted.order.status, Some(OrderStatus::Pending));
        assert_eq!(converted.order.order_type, Some(OrderType::Order));
        let booked = run(
            &converted.order,
            r#"{"external_id": "x", "convert_cart_to_order": true, "status": "ORDER_STATUS_BOOKED"}"#,
        );
        assert!(
            booked.statuses.iter().all(|s| s.status),
            "{:?}",
            booked.statuses
        );
        assert_eq!(booked.order.status, Some(OrderStatus::Booked));
        let skip = run(&booked.order, r#"{"status": "ORDER_STATUS_COMPLETE"}"#);
        assert_eq!(skip.statuses[0].reason_code, Some("INVALID_TRANSITION"));
        let items = run(
            &booked.order,
            r#"{"items": [{"item_id": {"value": "l9"}, "external_product_id": "mug"}]}"#,
        );
        assert_eq!(items.statuses[0].reason_code, Some("INVALID_TRANSITION"));
        let only = run(
            &o,
            r#"{"convert_cart_to_order": true, "convert_mode": 1, "coupon": "FIVE"}"#,
        );
        assert_eq!(only.statuses.len(), 1);
        assert_eq!(only.statuses[0].updated, SegmentType::ConvertCartToOrder);
        let empty = run(
            &o,
            r#"{"items": [{"item_id": {"value": "l1"}, "quantity": 0}], "convert_cart_to_order": true}"#,
        );
        assert_eq!(empty.statuses[1].reason_code, Some("INVALID_TRANSITION"));
    }

    #[test]
    fn conversion_and_later_status_changes_are_events_cart_changes_are_not() {
        let cart = cart();
        let converted = run(&cart, r#"{"convert_cart_to_order": true}"#).order;
        let booked = run(&converted, r#"{"status": "ORDER_STATUS_BOOKED"}"#).order;
        let canceled_cart = run(&cart, r#"{"status": "ORDER_STATUS_CANCELED"}"#).order;
        assert_eq!(event_for(&cart, &converted), Some("order.converted"));
        assert_eq!(event_for(&converted, &booked), Some("order.status_changed"));
        assert_eq!(
            event_for(&booked, &delete(&booked)),
            Some("order.status_changed")
        );
        let canceled = run(&booked, r#"{"status": "ORDER_STATUS_CANCELED"}"#).order;
        assert_eq!(event_for(&booked, &canceled), Some("order.canceled"));
        assert_eq!(event_for(&canceled, &canceled), None);
        assert_eq!(event_for(&booked, &booked), None);
        assert_eq!(event_for(&cart, &canceled_cart), None);
        assert_eq!(event_for(&cart, &delete(&cart)), None);
    }

    #[test]
    fn negative_quantities_refuse_the_whole_request() {
        let seg = update(r#"{"items": [{"item_id": {"value": "l1"}, "quantity": -1}]}"#);
        let e = validate_update(&seg).unwrap_err();
        assert_eq!(
            e.to_string(),
            "order.items[0].quantity: must not be negative"
        );
    }
}
