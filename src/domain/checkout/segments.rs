//! One function per update segment. Each works on a draft of the order: `Ok` with a
//! message keeps the draft, a [`Refusal`] drops it and is reported in `status[]`.

use super::{first_understocked, hydrate, sku_of, status_of};
use crate::domain::catalog::{Catalog, Rules, SkuQuery};
use crate::domain::pricing::reprice;
use crate::domain::status::can_move;
use crate::domain::{IdSource, ReasonCode, MAX_QUANTITY};
use crate::protocol::{
    Address, FastOrder, FulfillmentModel, Id, Int64, ItemUpdate, LineReference, Money,
    OrderDiscount, OrderLine, OrderStatus, OrderType, ShipmentPlan, ShipmentPlanUpdate,
    ShippingOptionSelect,
};

/// A failed segment: why, and a message for humans.
pub(super) struct Refusal(pub ReasonCode, pub String);

pub(super) type SegmentResult = Result<String, Refusal>;

fn refuse(code: ReasonCode, message: impl Into<String>) -> Refusal {
    Refusal(code, message.into())
}

/// Refuses a segment that leaves a line wanting more than its catalog item has in stock.
fn check_stock(order: &FastOrder, catalog: &Catalog) -> Result<(), Refusal> {
    let Some(pos) = first_understocked(&order.lines, catalog) else {
        return Ok(());
    };
    let id = order
        .lines
        .get(pos)
        .and_then(|l| l.id.clone())
        .unwrap_or_default();
    Err(refuse(
        ReasonCode::InsufficientStock,
        format!("not enough stock for line {id}"),
    ))
}

/// Only carts take item, coupon and address changes.
fn editable(order: &FastOrder) -> Result<(), Refusal> {
    match status_of(order) {
        OrderStatus::Cart => Ok(()),
        other => Err(refuse(
            ReasonCode::InvalidTransition,
            format!("the order is {} and no longer a cart", other.name()),
        )),
    }
}

pub(super) fn apply_items(
    order: &mut FastOrder,
    items: &[ItemUpdate],
    catalog: &Catalog,
    ids: &mut dyn IdSource,
) -> SegmentResult {
    editable(order)?;
    for (i, item) in items.iter().enumerate() {
        let at = format!("items[{i}]");
        let Some(line_id) = item.line_id().filter(|id| !id.0.is_empty()) else {
            return Err(refuse(
                ReasonCode::ProductNotFound,
                format!("{at}: item_id is required"),
            ));
        };
        let quantity = item.quantity.map(|q| q.0);
        if quantity.is_some_and(|q| !(0..=MAX_QUANTITY).contains(&q)) {
            return Err(refuse(
                ReasonCode::InvalidQuantity,
                format!("{at}: quantity must be between 0 and {MAX_QUANTITY}"),
            ));
        }
        let existing = order
            .lines
            .iter()
            .position(|l| l.id.as_ref() == Some(line_id));
        match (existing, quantity) {
            (Some(pos), None | Some(0)) => {
                order.lines.remove(pos);
            }
            (Some(pos), Some(q)) => {
                if let Some(line) = order.lines.get_mut(pos) {
                    line.quantity = Int64(q);
                }
            }
            (None, Some(0)) => {}
            (None, q) => add_line(order, item, line_id, q.unwrap_or(1), &at, catalog, ids)?,
        }
    }
    check_stock(order, catalog)?;
    reprice(order, catalog);
    Ok("items updated".into())
}

/// Adds a line for item `at`, which the order does not have yet, filled from the catalog.
/// A shippable line added after the address is known ships with the first plan.
fn add_line(
    order: &mut FastOrder,
    item: &ItemUpdate,
    line_id: &Id,
    quantity: i64,
    at: &str,
    catalog: &Catalog,
    ids: &mut dyn IdSource,
) -> Result<(), Refusal> {
    let fallback = [
        item.external_item_id.as_deref().unwrap_or(""),
        line_id.as_str(),
    ];
    let sku = catalog
        .resolve(&SkuQuery {
            product_id: item.external_product_id.as_deref(),
            variant_id: item.external_variant_id.as_deref(),
            options: &item.external_options,
            fallback_ids: &fallback,
        })
        .ok_or_else(|| {
            refuse(
                ReasonCode::ProductNotFound,
                format!("{at}: no catalog product matches item {line_id}"),
            )
        })?;
    let mut line = OrderLine {
        quantity: Int64(quantity),
        external_options: item.external_options.clone(),
        ..Default::default()
    };
    if let Some(c) = &item.customizations {
        line.extra.insert("customizations".into(), c.clone());
    }
    let line = hydrate(line, line_id.clone(), ids.new_id(), sku);
    if line.fulfillment_mode == Some(FulfillmentModel::Physical) {
        if let Some(plan) = order.shipment_plans.first_mut() {
            plan.lines.push(LineReference {
                id: line_id.clone(),
                ..Default::default()
            });
        }
    }
    order.lines.push(line);
    Ok(())
}

pub(super) fn apply_coupon(
    order: &mut FastOrder,
    code: &str,
    remove: bool,
    catalog: &Catalog,
) -> SegmentResult {
    editable(order)?;
    let code = code.trim();
    if remove {
        order.coupons.retain(|c| !c.code.eq_ignore_ascii_case(code));
        reprice(order, catalog);
        return Ok(format!("coupon {code} removed"));
    }
    let coupon = catalog
        .coupon(code)
        .ok_or_else(|| refuse(ReasonCode::CouponNotFound, format!("unknown coupon {code}")))?;
    let sub_total = order.sub_total.unwrap_or_default().0;
    if coupon.min_subtotal.is_some_and(|m| sub_total < m) {
        return Err(refuse(
            ReasonCode::CouponNotApplicable,
            format!(
                "coupon {} needs a subtotal of at least {}",
                coupon.code,
                Money(coupon.min_subtotal.unwrap_or_default())
            ),
        ));
    }
    if !order
        .coupons
        .iter()
        .any(|c| c.code.eq_ignore_ascii_case(&coupon.code))
    {
        order.coupons.push(OrderDiscount {
            code: coupon.code.clone(),
            ..Default::default()
        });
    }
    reprice(order, catalog);
    Ok(format!("coupon {} applied", coupon.code))
}

pub(super) fn apply_bill_to(
    order: &mut FastOrder,
    bill_to: &Address,
    catalog: &Catalog,
) -> SegmentResult {
    editable(order)?;
    order.bill_to = bill_to.clone();
    reprice(order, catalog);
    Ok("billing address added".into())
}

pub(super) fn apply_shipments(
    order: &mut FastOrder,
    shipments: &[ShipmentPlanUpdate],
    catalog: &Catalog,
    ids: &mut dyn IdSource,
) -> SegmentResult {
    editable(order)?;
    if matches!(catalog.rules, Rules::Vendure(_)) && shipments.len() > 1 {
        return Err(refuse(
            ReasonCode::AddressNotShippable,
            "a Vendure order ships to one address: send one shipment plan",
        ));
    }
    let mut plans: Vec<ShipmentPlan> = Vec::with_capacity(shipments.len());
    for (p, update) in shipments.iter().enumerate() {
        let country = update.ship_to.country_iso2();
        if !catalog
            .shipping
            .iter()
            .any(|r| r.ships_to(country.as_deref()))
        {
            return Err(refuse(
                ReasonCode::AddressNotShippable,
                format!(
                    "shipments[{p}]: no shipping option ships to {}",
                    country.as_deref().unwrap_or("an address without a country")
                ),
            ));
        }
        let mut refs = Vec::with_capacity(update.line_refs.len());
        for (r, line_ref) in update.line_refs.iter().enumerate() {
            if !order
                .lines
                .iter()
                .any(|l| l.id.as_ref() == Some(&line_ref.id))
            {
                return Err(refuse(
                    ReasonCode::ProductNotFound,
                    format!(
                        "shipments[{p}].line_refs[{r}]: the order has no line {}",
                        line_ref.id
                    ),
                ));
            }
            refs.push(line_ref.clone());
        }
        if refs.is_empty() {
            // No references: the plan takes every line no earlier plan holds.
            refs = order
                .lines
                .iter()
                .filter_map(|l| l.id.clone())
                .filter(|id| !plans.iter().any(|pl| pl.lines.iter().any(|r| &r.id == id)))
                .map(|id| LineReference {
                    id,
                    ..Default::default()
                })
                .collect();
        }
        let previous = update.plan_id.as_ref().and_then(|pid| {
            order.shipment_plans.iter().find(|pl| {
                pl.id.as_ref() == Some(pid) || pl.external_id.as_deref() == Some(pid.as_str())
            })
        });
        plans.push(ShipmentPlan {
            id: update
                .plan_id
                .clone()
                .or_else(|| previous.and_then(|pl| pl.id.clone()))
                .or_else(|| Some(Id(ids.new_id()))),
            external_id: previous
                .and_then(|pl| pl.external_id.clone())
                .or_else(|| Some(ids.new_id())),
            ship_to: update.ship_to.clone(),
            lines: refs,
            // Kept only if still offered for the new address (reprice checks).
            selected_option: previous
                .filter(|pl| pl.ship_to.country_iso2() == country)
                .and_then(|pl| pl.selected_option.clone()),
            available_options: Vec::new(),
            extra: previous.map(|pl| pl.extra.clone()).unwrap_or_default(),
        });
    }
    order.shipment_plans = plans;
    reprice(order, catalog);
    Ok("shipping added".into())
}

pub(super) fn apply_shipping_option(
    order: &mut FastOrder,
    select: &ShippingOptionSelect,
    catalog: &Catalog,
) -> SegmentResult {
    editable(order)?;
    let plan_count = order.shipment_plans.len();
    let plan = match &select.plan_id {
        Some(pid) if !pid.0.is_empty() => order.shipment_plans.iter_mut().find(|pl| {
            pl.external_id.as_deref() == Some(pid.as_str()) || pl.id.as_ref() == Some(pid)
        }),
        _ if plan_count == 1 => order.shipment_plans.first_mut(),
        _ => None,
    }
    .ok_or_else(|| {
        refuse(
            ReasonCode::ShippingOptionNotFound,
            "no shipment plan matches plan_id (send a shipping address first)",
        )
    })?;
    let wanted = select
        .external_option_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(select.option_id.as_ref().map(Id::as_str))
        .unwrap_or("");
    let option = plan
        .available_options
        .iter()
        .find(|o| o.external_id.as_deref() == Some(wanted))
        .cloned()
        .ok_or_else(|| {
            refuse(
                ReasonCode::ShippingOptionNotFound,
                format!("shipping option {wanted} is not available for this plan"),
            )
        })?;
    plan.selected_option = Some(option);
    reprice(order, catalog);
    Ok("shipping options updated".into())
}

pub(super) fn apply_status(order: &mut FastOrder, target: OrderStatus) -> SegmentResult {
    let from = status_of(order);
    if !can_move(from, target) {
        return Err(refuse(
            ReasonCode::InvalidTransition,
            format!("cannot move from {} to {}", from.name(), target.name()),
        ));
    }
    order.status = Some(target);
    Ok(format!("status is {}", target.name()))
}

pub(super) fn convert_cart(order: &mut FastOrder, catalog: &Catalog) -> SegmentResult {
    match status_of(order) {
        OrderStatus::Cart => {}
        OrderStatus::Deleted => {
            return Err(refuse(
                ReasonCode::InvalidTransition,
                "the order is deleted",
            ));
        }
        // Fast repeats `convert_cart_to_order: true` on later status updates.
        _ => return Ok("already converted".into()),
    }
    if order.lines.is_empty() {
        return Err(refuse(
            ReasonCode::InvalidTransition,
            "cannot convert an empty cart",
        ));
    }
    if let Some(line) = order.lines.iter().find(|l| sku_of(l, catalog).is_none()) {
        return Err(refuse(
            ReasonCode::ProductNotFound,
            format!(
                "line {} is no longer in the catalog",
                line.id.clone().unwrap_or_default()
            ),
        ));
    }
    check_stock(order, catalog)?;
    order.status = Some(OrderStatus::Pending);
    order.order_type = Some(OrderType::Order);
    Ok("cart converted to order".into())
}
