use super::money::{recompute_totals, shipping_tax_of, LineMoney};
use super::*;
use crate::domain::pricing::round;
use crate::protocol::{
    FulfillmentModel, Int64, LineReference, Money, OrderDiscount, OrderLine, ShipmentPlan,
    ShippingOption,
};
use rust_decimal::Decimal;

// ---- fixtures ----------------------------------------------------------------------------

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn m(s: &str) -> Money {
    Money(d(s))
}

fn id(s: &str) -> Id {
    Id(s.into())
}

fn w(m: Option<Money>) -> String {
    m.unwrap_or_default().to_wire()
}

/// A line priced as checkout would: subtotal = unit × qty, one SAVE10 entry for the
/// discount.
fn line(
    line_id: &str,
    mode: FulfillmentModel,
    unit: &str,
    qty: i64,
    discount: &str,
    tax: &str,
) -> OrderLine {
    let sub = d(unit) * Decimal::from(qty);
    let net = sub - d(discount);
    let discounts = if d(discount).is_zero() {
        Vec::new()
    } else {
        vec![OrderDiscount {
            code: "SAVE10".into(),
            applied: true,
            total_amount: Some(m(discount)),
            ..Default::default()
        }]
    };
    OrderLine {
        id: Some(id(line_id)),
        quantity: Int64(qty),
        fulfillment_mode: Some(mode),
        unit_price: Some(m(unit)),
        subtotal_amount: Some(Money(sub)),
        line_discount_amount: Some(m(discount)),
        discounted_unit_price: Some(Money(round(net / Decimal::from(qty)))),
        tax_amount: Some(m(tax)),
        total_amount: Some(Money(net + d(tax))),
        discounts,
        ..Default::default()
    }
}

/// A BOOKED order with these lines; physical lines ship through plan P1.
fn order_of(lines: Vec<OrderLine>, shipping: &str, shipping_tax: &str) -> FastOrder {
    let coupon_total: Decimal = lines
        .iter()
        .flat_map(|l| l.discounts.iter())
        .map(|x| x.total_amount.unwrap_or_default().0)
        .sum();
    let plan_lines = lines
        .iter()
        .filter(|l| l.fulfillment_mode == Some(FulfillmentModel::Physical))
        .map(|l| LineReference {
            id: l.id.clone().unwrap(),
            quantity: Some(l.quantity),
            external_id: None,
        })
        .collect();
    let mut o = FastOrder {
        id: Some(id("O1")),
        external_id: Some("S1".into()),
        status: Some(OrderStatus::Booked),
        currency_code: Some("USD".into()),
        lines,
        coupons: vec![OrderDiscount {
            code: "SAVE10".into(),
            applied: true,
            total_amount: Some(Money(coupon_total)),
            ..Default::default()
        }],
        shipment_plans: vec![ShipmentPlan {
            id: Some(id("P1")),
            lines: plan_lines,
            selected_option: Some(ShippingOption {
                cost: Some(m(shipping)),
                tax: Some(m(shipping_tax)),
                total: Some(Money(d(shipping) + d(shipping_tax))),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    recompute_totals(&mut o, d(shipping), d(shipping_tax));
    o
}

/// L1: 3 physical at 10.00, discount 3.00, tax 2.16 (29.16). L2: 1 digital at 9.99,
/// discount 1.00, tax 0.72 (9.71). Shipping 5.00 + 0.40 tax. Total 44.27.
fn fixture() -> FastOrder {
    order_of(
        vec![
            line("L1", FulfillmentModel::Physical, "10.00", 3, "3.00", "2.16"),
            line("L2", FulfillmentModel::Digital, "9.99", 1, "1.00", "0.72"),
        ],
        "5.00",
        "0.40",
    )
}

/// One physical line R: 3 at 4.00, discount 2.00 → net 10.00, tax 0.80. No shipping.
fn thirds() -> FastOrder {
    order_of(
        vec![line(
            "R",
            FulfillmentModel::Physical,
            "4.00",
            3,
            "2.00",
            "0.80",
        )],
        "0.00",
        "0.00",
    )
}

fn actor() -> Actor {
    Actor {
        employee_id: Some("emp-7".into()),
        source: Some("CSR".into()),
    }
}

fn lq(line_id: &str, quantity: i64) -> LineQuantity {
    LineQuantity {
        line_id: id(line_id),
        quantity,
    }
}

fn rl(line_id: &str, quantity: i64, restock: Option<RestockType>) -> RefundLineRequest {
    RefundLineRequest {
        line_id: id(line_id),
        quantity,
        restock,
        reason: None,
    }
}

fn refund_req(lines: Vec<RefundLineRequest>, shipping: Option<ShippingRefund>) -> RefundRequest {
    RefundRequest {
        lines,
        shipping,
        reason: RefundReason::DamagedProduct,
        actor: actor(),
        ..Default::default()
    }
}

fn cancel_req(lines: Option<Vec<LineQuantity>>) -> CancelRequest {
    CancelRequest {
        lines,
        reason: CancelReason::CustomerInitiated,
        actor: actor(),
        ..Default::default()
    }
}

fn ship(
    order: &FastOrder,
    ledger: &Ledger,
    lines: Option<Vec<LineQuantity>>,
    fid: &str,
) -> (FastOrder, Ledger, FulfilOutcome) {
    let req = FulfilRequest {
        lines,
        carrier: "UPS".into(),
        tracking_number: "1Z999".into(),
        estimated_delivery_date: Some("2024-03-01".into()),
        actor: actor(),
    };
    fulfil(order, ledger, &req, 1_000, fid).unwrap()
}

/// Calculates, then creates with the same calculation.
fn refund(
    order: &FastOrder,
    ledger: &Ledger,
    req: &RefundRequest,
    rid: &str,
) -> Result<(FastOrder, Ledger, Refund), ManageError> {
    let calc = refund_calculate(order, ledger, req)?;
    refund_create(order, ledger, req, &calc, rid, 2_000)
}

fn totals(o: &FastOrder) -> [String; 5] {
    [
        w(o.sub_total),
        w(o.total_discounts),
        w(o.total_tax),
        w(o.total_shipping),
        w(o.total_amount),
    ]
}

fn line_money(o: &FastOrder, i: usize) -> (i64, String, String, String, String) {
    let l = &o.lines[i];
    (
        l.quantity.0,
        w(l.subtotal_amount),
        w(l.line_discount_amount),
        w(l.tax_amount),
        w(l.total_amount),
    )
}

fn with_status(mut o: FastOrder, s: OrderStatus) -> FastOrder {
    o.status = Some(s);
    o
}

// ---- cancel ------------------------------------------------------------------------------

#[test]
fn fixture_totals_are_consistent() {
    assert_eq!(
        totals(&fixture()),
        ["39.99", "4.00", "3.28", "5.00", "44.27"]
    );
}

#[test]
fn partial_cancel_recomputes_line_and_order_totals_to_the_cent() {
    let o = fixture();
    let (after, led, out) = cancel(
        &o,
        &Ledger::default(),
        &cancel_req(Some(vec![lq("L1", 1)])),
        7,
    )
    .unwrap();
    // L1 3 → 2: subtotal 20.00, discount 3.00 × 2/3 = 2.00, tax 2.16 × 2/3 = 1.44.
    assert_eq!(
        line_money(&after, 0),
        (
            2,
            "20.00".into(),
            "2.00".into(),
            "1.44".into(),
            "19.44".into()
        )
    );
    assert_eq!(w(after.lines[0].discounted_unit_price), "9.00");
    assert_eq!(w(after.lines[0].discounts[0].total_amount), "2.00");
    assert_eq!(w(after.coupons[0].total_amount), "3.00");
    assert_eq!(after.shipment_plans[0].lines[0].quantity, Some(Int64(2)));
    // L2 untouched, shipping stays.
    assert_eq!(after.lines[1], o.lines[1]);
    assert_eq!(totals(&after), ["29.99", "3.00", "2.56", "5.00", "34.55"]);
    assert_eq!(out.cancel_total, m("9.72"));
    let ct = out.cancellation.cancel_total;
    assert_eq!(
        [ct.subtotal, ct.discount, ct.tax, ct.shipping, ct.total],
        [m("10.00"), m("1.00"), m("0.72"), m("0.00"), m("9.72")]
    );
    assert_eq!(out.status, OrderStatus::Booked);
    assert!(out.fast_cancel.is_none(), "Fast has no partial cancel");
    assert!(!out.cancellation.whole);
    let l1 = led.line(&id("L1")).unwrap();
    assert_eq!((l1.ordered, l1.canceled, l1.fulfilled), (3, 1, 0));
    assert_eq!(led.version, 1);
    assert_eq!(led.cancellations.len(), 1);
    let audit = &led.audit[0];
    assert_eq!(audit.action, AuditAction::Cancel);
    assert_eq!((audit.version, audit.at_ms), (1, 7));
    assert_eq!(audit.actor, actor());
    assert_eq!(audit.totals_before.total_amount, m("44.27"));
    assert_eq!(audit.totals_after.total_amount, m("34.55"));
    assert_eq!(audit.detail["lines"][0]["line_id"]["value"], "L1");
}

#[test]
fn cancel_scales_discount_and_tax_half_away_from_zero() {
    // (unit, qty, discount, tax, cancel) → kept (subtotal, discount, tax), canceled total
    let cases = [
        (
            "10.00",
            3,
            "3.00",
            "2.17",
            1,
            ("20.00", "2.00", "1.45"),
            "9.72",
        ),
        // 0.25 × 1/2 = 0.125 → 0.13 (banker's rounding would give 0.12)
        (
            "1.00",
            2,
            "0.00",
            "0.25",
            1,
            ("1.00", "0.00", "0.13"),
            "1.12",
        ),
        (
            "4.00",
            3,
            "2.00",
            "0.80",
            2,
            ("4.00", "0.67", "0.27"),
            "7.20",
        ),
        (
            "19.99",
            3,
            "6.00",
            "3.91",
            1,
            ("39.98", "4.00", "2.61"),
            "19.29",
        ),
        (
            "0.99",
            7,
            "0.35",
            "0.05",
            6,
            ("0.99", "0.05", "0.01"),
            "5.68",
        ),
    ];
    for (unit, qty, disc, tax, n, kept, canceled) in cases {
        let o = order_of(
            vec![line("X", FulfillmentModel::Physical, unit, qty, disc, tax)],
            "0.00",
            "0.00",
        );
        let (after, _, out) = cancel(
            &o,
            &Ledger::default(),
            &cancel_req(Some(vec![lq("X", n)])),
            1,
        )
        .unwrap();
        let (_, sub, dis, tx, _) = line_money(&after, 0);
        assert_eq!(
            (sub.as_str(), dis.as_str(), tx.as_str()),
            kept,
            "{unit}×{qty} cancel {n}"
        );
        assert_eq!(
            out.cancel_total.to_wire(),
            canceled,
            "{unit}×{qty} cancel {n}"
        );
        assert_eq!(
            Totals::of(&o).total_amount.0 - Totals::of(&after).total_amount.0,
            out.cancel_total.0
        );
    }
}

#[test]
fn repeated_partial_cancels_scale_from_the_order_as_it_stands() {
    let o = fixture();
    let (a, led, _) = cancel(
        &o,
        &Ledger::default(),
        &cancel_req(Some(vec![lq("L1", 1)])),
        1,
    )
    .unwrap();
    let (b, led, out) = cancel(&a, &led, &cancel_req(Some(vec![lq("L1", 1)])), 2).unwrap();
    // 2 → 1: discount 2.00 / 2 = 1.00, tax 1.44 / 2 = 0.72.
    assert_eq!(
        line_money(&b, 0),
        (
            1,
            "10.00".into(),
            "1.00".into(),
            "0.72".into(),
            "9.72".into()
        )
    );
    assert_eq!(out.cancel_total, m("9.72"));
    assert_eq!(led.line(&id("L1")).unwrap().canceled, 2);
    assert_eq!(led.version, 2);
}

#[test]
fn whole_cancel_zeroes_lines_drops_shipping_and_tells_fast() {
    let o = fixture();
    let mut req = cancel_req(None);
    req.seed_code = Some(SeedCancelCode::FraudCheckFailed);
    req.reason = CancelReason::Unspecified;
    req.sub_reason = Some("velocity".into());
    req.note = Some("two cards in an hour".into());
    let (after, led, out) = cancel(&o, &Ledger::default(), &req, 9).unwrap();
    assert_eq!(status_of(&after), OrderStatus::Canceled);
    for i in 0..2 {
        assert_eq!(
            line_money(&after, i),
            (
                0,
                "0.00".into(),
                "0.00".into(),
                "0.00".into(),
                "0.00".into()
            )
        );
    }
    assert_eq!(after.lines.len(), 2, "canceled lines stay with quantity 0");
    assert_eq!(totals(&after), ["0.00", "0.00", "0.00", "0.00", "0.00"]);
    assert_eq!(w(after.coupons[0].total_amount), "0.00");
    assert_eq!(out.cancel_total, m("44.27"));
    let ct = out.cancellation.cancel_total;
    assert_eq!(
        [ct.subtotal, ct.discount, ct.tax, ct.shipping],
        [m("39.99"), m("4.00"), m("3.28"), m("5.00")]
    );
    assert!(out.cancellation.whole);
    let body = out.fast_cancel.unwrap();
    assert_eq!(body.order_id, id("O1"));
    assert_eq!(body.reason, CancelReason::MerchantInitiated);
    assert_eq!(
        body.notes,
        "seed code 5: Fraud check failed; sub-reason: velocity; two cards in an hour"
    );
    let json = serde_json::to_value(&body).unwrap();
    assert_eq!(json["reason"], "CANCEL_REASON_CODE_MERCHANT_INITIATED");
    assert_eq!(json["order_id"]["value"], "O1");
    assert_eq!(led.line(&id("L2")).unwrap().canceled, 1);
    assert_eq!(led.audit[0].status_after, OrderStatus::Canceled);
}

#[test]
fn cancelling_every_line_by_quantity_also_cancels_the_order() {
    let o = fixture();
    let (after, _, out) = cancel(
        &o,
        &Ledger::default(),
        &cancel_req(Some(vec![lq("L1", 3), lq("L2", 1)])),
        1,
    )
    .unwrap();
    assert_eq!(out.status, OrderStatus::Canceled);
    assert_eq!(out.cancel_total, m("44.27"));
    assert_eq!(w(after.total_amount), "0.00");
    assert!(out.fast_cancel.is_some());
}

#[test]
fn cancel_is_refused_on_a_cart_and_from_fulfilled_on() {
    let cases = [
        (OrderStatus::Cart, "open checkout"),
        (OrderStatus::Unspecified, "open checkout"),
        (OrderStatus::Fulfilled, "before fulfilment"),
        (OrderStatus::Complete, "before fulfilment"),
        (OrderStatus::Canceled, "already canceled"),
        (OrderStatus::Deleted, "deleted"),
    ];
    for (status, why) in cases {
        let o = with_status(fixture(), status);
        let err = cancel(&o, &Ledger::default(), &cancel_req(None), 1).unwrap_err();
        assert!(
            matches!(
                err,
                ManageError::StatusForbids {
                    action: "cancel",
                    ..
                }
            ),
            "{status:?}: {err}"
        );
        assert!(err.to_string().contains(why), "{status:?}: {err}");
        assert_eq!(err.kind(), crate::domain::ErrorKind::Conflict);
    }
    for status in [
        OrderStatus::Pending,
        OrderStatus::Hold,
        OrderStatus::Booked,
        OrderStatus::PendingFulfillment,
    ] {
        let o = with_status(fixture(), status);
        assert!(
            cancel(&o, &Ledger::default(), &cancel_req(None), 1).is_ok(),
            "{status:?}"
        );
    }
    let err = cancel(
        &with_status(fixture(), OrderStatus::Fulfilled),
        &Ledger::default(),
        &cancel_req(None),
        1,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot cancel: the order is ORDER_STATUS_FULFILLED; cancel is only possible before \
         fulfilment (PENDING, HOLD, BOOKED, PENDING_FULFILLMENT)"
    );
}

#[test]
fn cancel_never_takes_fulfilled_or_already_canceled_units() {
    let o = fixture();
    let (o, led, _) = ship(&o, &Ledger::default(), Some(vec![lq("L1", 2)]), "F1");
    let err = cancel(&o, &led, &cancel_req(Some(vec![lq("L1", 2)])), 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line L1: cancel of 2 exceeds the 1 unfulfilled and not yet canceled"
    );
    let (o, led, _) = cancel(&o, &led, &cancel_req(Some(vec![lq("L1", 1)])), 1).unwrap();
    let err = cancel(&o, &led, &cancel_req(Some(vec![lq("L1", 1)])), 1).unwrap_err();
    assert!(matches!(
        err,
        ManageError::ExceedsCancelable { available: 0, .. }
    ));
}

#[test]
fn whole_cancel_of_a_partly_fulfilled_order_cancels_the_rest_and_it_is_fulfilled() {
    let o = fixture();
    let (o, led, _) = ship(&o, &Ledger::default(), Some(vec![lq("L1", 3)]), "F1");
    let (after, led, out) = cancel(&o, &led, &cancel_req(None), 1).unwrap();
    assert_eq!(out.cancellation.lines.len(), 1);
    assert_eq!(out.cancellation.lines[0].line_id, id("L2"));
    assert_eq!(out.status, OrderStatus::Fulfilled);
    assert!(out.fast_cancel.is_none());
    assert_eq!(
        w(after.total_shipping),
        "5.00",
        "shipping stays: units were shipped"
    );
    assert_eq!(out.cancel_total, m("9.71"));
    // Nothing left to cancel now (and the order is FULFILLED anyway).
    let err = cancel(
        &with_status(after, OrderStatus::Booked),
        &led,
        &cancel_req(None),
        1,
    )
    .unwrap_err();
    assert_eq!(err, ManageError::NothingToCancel);
}

#[test]
fn cancel_request_validation() {
    let o = fixture();
    let led = Ledger::default();
    let cases: Vec<(Option<Vec<LineQuantity>>, &str)> = vec![
        (
            Some(vec![]),
            "`lines` is empty: leave it out to cancel everything",
        ),
        (Some(vec![lq("nope", 1)]), "line nope is not on the order"),
        (
            Some(vec![lq("L1", 1), lq("L1", 1)]),
            "line L1 is listed twice",
        ),
        (
            Some(vec![lq("L1", 0)]),
            "line L1: quantity 0 must be at least 1",
        ),
        (
            Some(vec![lq("L1", -2)]),
            "line L1: quantity -2 must be at least 1",
        ),
        (
            Some(vec![lq("L2", 2)]),
            "line L2: cancel of 2 exceeds the 1 unfulfilled and not yet canceled",
        ),
    ];
    for (lines, message) in cases {
        let err = cancel(&o, &led, &cancel_req(lines), 1).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    let mut req = cancel_req(None);
    req.seed_code = Some(SeedCancelCode::InsufficientStock);
    req.reason = CancelReason::CustomerInitiated;
    let err = cancel(&o, &led, &req, 1).unwrap_err();
    assert!(err.to_string().contains("contradicts seed code 4"), "{err}");
    req.reason = CancelReason::NoStock;
    assert!(cancel(&o, &led, &req, 1).is_ok());
    req.note = Some("x".repeat(MAX_NOTE_LEN + 1));
    assert!(matches!(
        cancel(&o, &led, &req, 1),
        Err(ManageError::InvalidField { .. })
    ));
    let mut no_id = fixture();
    no_id.id = None;
    assert_eq!(
        cancel(&no_id, &led, &cancel_req(None), 1).unwrap_err(),
        ManageError::MissingOrderId
    );
}

#[test]
fn cancel_after_refunds_never_leaves_a_line_below_what_was_refunded() {
    // R: 3 units, net 10.00, tax 0.80. Ship 2, refund them one at a time:
    // 3.33 + 0.27, then 3.34 + 0.27 (0.53 / 2 = 0.265 → 0.27).
    let o = thirds();
    let (o, led, _) = ship(&o, &Ledger::default(), Some(vec![lq("R", 2)]), "F1");
    let one = refund_req(vec![rl("R", 1, Some(RestockType::Return))], None);
    let (o, led, r1) = refund(&o, &led, &one, "r1").unwrap();
    let (o, led, r2) = refund(&o, &led, &one, "r2").unwrap();
    assert_eq!(
        (r1.calculation.totals.total, r2.calculation.totals.total),
        (m("3.60"), m("3.61"))
    );
    // Cancel the unshipped unit: 0.80 × 2/3 = 0.53 would be less than the 0.54 refunded.
    let (after, _, out) = cancel(&o, &led, &cancel_req(Some(vec![lq("R", 1)])), 1).unwrap();
    assert_eq!(
        line_money(&after, 0),
        (
            2,
            "8.00".into(),
            "1.33".into(),
            "0.54".into(),
            "7.21".into()
        )
    );
    assert_eq!(out.cancel_total, m("3.59"));
    assert_eq!(
        out.status,
        OrderStatus::Fulfilled,
        "only shipped units are left"
    );
}

// ---- refund: restock rules ---------------------------------------------------------------

/// (fulfil L1 first?, fulfil L2 first?, line, restock, Ok or the start of the error)
type RestockCase = (
    bool,
    bool,
    &'static str,
    RestockType,
    Result<(), &'static str>,
);

/// Quantities refunded one after the other, and the (excl. tax, tax) each must get.
type Split = (&'static [i64], &'static [(&'static str, &'static str)]);

#[test]
fn refund_restock_types_follow_fulfilment_and_product_kind() {
    use RestockType::*;
    let cases: Vec<RestockCase> = vec![
        // Unfulfilled: cancel only.
        (false, false, "L1", Cancel, Ok(())),
        (
            false,
            false,
            "L1",
            Return,
            Err("line L1: restock `return` is not allowed: none of its units is fulfilled"),
        ),
        (
            false,
            false,
            "L1",
            NoRestock,
            Err("line L1: restock `no_restock` is not allowed: none of its units is fulfilled"),
        ),
        (false, false, "L2", Cancel, Ok(())),
        (
            false,
            false,
            "L2",
            NoRestock,
            Err("line L2: restock `no_restock` is not allowed"),
        ),
        // Fulfilled physical: return or no_restock.
        (true, false, "L1", Return, Ok(())),
        (true, false, "L1", NoRestock, Ok(())),
        (
            true,
            false,
            "L1",
            Cancel,
            Err("line L1: restock `cancel` is not allowed: every unit of the line is fulfilled"),
        ),
        // Fulfilled digital: no_restock only.
        (false, true, "L2", NoRestock, Ok(())),
        (
            false,
            true,
            "L2",
            Return,
            Err("line L2: restock `return` is not allowed: a digital line has nothing to restock"),
        ),
        (
            false,
            true,
            "L2",
            Cancel,
            Err("line L2: restock `cancel` is not allowed: every unit of the line is fulfilled"),
        ),
    ];
    for (f1, f2, line_id, restock, want) in cases {
        let mut o = fixture();
        let mut led = Ledger::default();
        if f1 {
            (o, led, _) = ship(&o, &led, Some(vec![lq("L1", 3)]), "F1");
        }
        if f2 {
            (o, led, _) = ship(&o, &led, Some(vec![lq("L2", 1)]), "F2");
        }
        let req = refund_req(vec![rl(line_id, 1, Some(restock))], None);
        let got = refund_calculate(&o, &led, &req);
        match want {
            Ok(()) => {
                let calc = got.unwrap_or_else(|e| panic!("{line_id} {restock}: {e}"));
                assert_eq!(calc.lines[0].restock, restock);
            }
            Err(start) => {
                let err = got.unwrap_err().to_string();
                assert!(err.starts_with(start), "{line_id} {restock}: {err}");
            }
        }
    }
}

#[test]
fn restock_defaults_to_no_restock_for_fulfilled_units_and_cancel_for_the_rest() {
    let o = fixture();
    let (o, led, _) = ship(&o, &Ledger::default(), Some(vec![lq("L1", 1)]), "F1");
    let calc = refund_calculate(&o, &led, &refund_req(vec![rl("L1", 1, None)], None)).unwrap();
    assert_eq!(calc.lines[0].restock, RestockType::NoRestock);
    assert_eq!(calc.lines[0].refundable_quantity, 1);
    let calc = refund_calculate(&o, &led, &refund_req(vec![rl("L1", 2, None)], None)).unwrap();
    assert_eq!(calc.lines[0].restock, RestockType::Cancel);
    assert_eq!(calc.lines[0].refundable_quantity, 2);
}

#[test]
fn refunding_unfulfilled_units_cancels_them_and_returns_exactly_what_they_cost() {
    let o = fixture();
    let req = refund_req(vec![rl("L1", 1, Some(RestockType::Cancel))], None);
    let (after, led, first) = refund(&o, &Ledger::default(), &req, "r1").unwrap();
    let l = &first.calculation.lines[0];
    assert_eq!(
        (l.amount_excl_tax, l.tax, l.amount_incl_tax),
        (m("9.00"), m("0.72"), m("9.72"))
    );
    assert_eq!(
        line_money(&after, 0),
        (
            2,
            "20.00".into(),
            "2.00".into(),
            "1.44".into(),
            "19.44".into()
        )
    );
    // Shipping stays on the order: it is refunded only when asked for.
    assert_eq!(totals(&after), ["29.99", "3.00", "2.56", "5.00", "34.55"]);
    // Before capture nothing was collected: the units are canceled, not refunded.
    let e = led.line(&id("L1")).unwrap();
    assert_eq!((e.canceled, e.refund_canceled, e.refunded), (1, 0, 0));
    assert_eq!((e.refunded_amount, e.refunded_tax), (m("0.00"), m("0.00")));
    assert_eq!(first.status_after, OrderStatus::Booked);
    assert_eq!(first.canceled, m("9.72"));
    assert_eq!(led.total_refunded(), m("0.00"));
    let c = &led.cancellations[0];
    assert_eq!(c.refund_id.as_deref(), Some("r1"));
    assert_eq!(c.cancel_total.total, m("9.72"));
    assert_eq!((c.lines[0].quantity, c.lines[0].remaining), (1, 2));
    let p = payment(&after, &led);
    assert_eq!((p.canceled, p.refunded), (m("9.72"), m("0.00")));
    assert_eq!(p.kept, m("34.55"));

    // After capture the same refund returns the money.
    let (_, captured, _) = capture(&o, &Ledger::default(), &Actor::default(), 1).unwrap();
    let (after, led, r) = refund(&o, &captured, &req, "r1").unwrap();
    let e = led.line(&id("L1")).unwrap();
    assert_eq!((e.canceled, e.refund_canceled, e.refunded), (1, 1, 0));
    assert_eq!((e.refunded_amount, e.refunded_tax), (m("9.00"), m("0.72")));
    assert_eq!(r.canceled, m("0.00"));
    assert!(led.cancellations.is_empty());
    let p = payment(&after, &led);
    assert_eq!(
        (p.canceled, p.refunded, p.kept),
        (m("0.00"), m("9.72"), m("34.55"))
    );
}

#[test]
fn refund_cancelling_everything_cancels_the_order_and_can_refund_shipping_too() {
    let o = fixture();
    let req = refund_req(
        vec![rl("L1", 3, Some(RestockType::Cancel)), rl("L2", 1, None)],
        Some(ShippingRefund::Full),
    );
    let (after, led, refund) = refund(&o, &Ledger::default(), &req, "r1").unwrap();
    assert_eq!(refund.calculation.totals.total, m("44.27"));
    assert_eq!(status_of(&after), OrderStatus::Canceled);
    assert_eq!(refund.status_after, OrderStatus::Canceled);
    assert_eq!(led.shipping_refunded, m("5.00"));
    // Before capture only shipping is money refunded; the lines are canceled.
    let shipping = led.shipping_refunded.0 + led.shipping_tax_refunded.0;
    assert_eq!(led.total_refunded(), Money(shipping));
    assert_eq!(refund.canceled.0 + shipping, d("44.27"));
    let p = payment(&after, &led);
    assert_eq!(p.charged, m("44.27"));
    assert_eq!((p.kept, p.refundable), (m("0.00"), m("0.00")));
}

// ---- refund: amounts ---------------------------------------------------------------------

#[test]
fn refunds_of_a_line_sum_exactly_to_what_it_cost_in_any_split() {
    // R: net 10.00, tax 0.80 over 3 fulfilled units.
    let splits: [Split; 4] = [
        (&[1, 2], &[("3.33", "0.27"), ("6.67", "0.53")]),
        (&[2, 1], &[("6.67", "0.53"), ("3.33", "0.27")]),
        (
            &[1, 1, 1],
            &[("3.33", "0.27"), ("3.34", "0.27"), ("3.33", "0.26")],
        ),
        (&[3], &[("10.00", "0.80")]),
    ];
    for (split, want) in splits {
        let (mut o, mut led, _) = ship(&thirds(), &Ledger::default(), None, "F1");
        let (mut net, mut tax) = (Decimal::ZERO, Decimal::ZERO);
        for (i, (q, (wn, wt))) in split.iter().zip(want.iter()).enumerate() {
            let req = refund_req(vec![rl("R", *q, Some(RestockType::NoRestock))], None);
            let r;
            (o, led, r) = refund(&o, &led, &req, &format!("r{i}")).unwrap();
            let l = &r.calculation.lines[0];
            assert_eq!(
                (l.amount_excl_tax.to_wire(), l.tax.to_wire()),
                (wn.to_string(), wt.to_string()),
                "{split:?}"
            );
            net += l.amount_excl_tax.0;
            tax += l.tax.0;
        }
        assert_eq!((net, tax), (d("10.00"), d("0.80")), "{split:?}");
        let e = led.line(&id("R")).unwrap();
        assert_eq!((e.refunded_amount, e.refunded_tax), (m("10.00"), m("0.80")));
    }
}

#[test]
fn shipping_refunds_full_partial_and_over_the_limit() {
    let (o, led, _) = ship(&fixture(), &Ledger::default(), None, "F1");
    let calc =
        |led: &Ledger, s: ShippingRefund| refund_calculate(&o, led, &refund_req(vec![], Some(s)));

    let full = calc(&led, ShippingRefund::Full).unwrap();
    assert_eq!(
        (
            full.shipping.amount_excl_tax,
            full.shipping.tax,
            full.shipping.amount_incl_tax
        ),
        (m("5.00"), m("0.40"), m("5.40"))
    );
    assert_eq!(full.totals.total, m("5.40"));
    assert_eq!(
        (full.totals.shipping, full.totals.tax),
        (m("5.00"), m("0.40"))
    );

    // 2.00 of 5.00: tax 0.40 × 2/5 = 0.16; then the rest takes the remainder.
    let req = refund_req(vec![], Some(ShippingRefund::Amount(m("2.00"))));
    let (o2, led2, r) = refund(&o, &led, &req, "s1").unwrap();
    assert_eq!(
        (r.calculation.shipping.tax, r.calculation.totals.total),
        (m("0.16"), m("2.16"))
    );
    let rest =
        refund_calculate(&o2, &led2, &refund_req(vec![], Some(ShippingRefund::Full))).unwrap();
    assert_eq!(
        (
            rest.shipping.refundable_amount,
            rest.shipping.amount_excl_tax,
            rest.shipping.tax
        ),
        (m("3.00"), m("3.00"), m("0.24"))
    );
    let err = refund_calculate(
        &o2,
        &led2,
        &refund_req(vec![], Some(ShippingRefund::Amount(m("3.01")))),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "shipping refund of 3.01 exceeds the 3.00 left to refund"
    );

    let cases = [
        (
            "5.01",
            "shipping refund of 5.01 exceeds the 5.00 left to refund",
        ),
        ("-1.00", "shipping.amount: -1.00 must not be negative"),
        (
            "1.005",
            "shipping.amount: 1.005 is not a whole number of cents",
        ),
    ];
    for (amount, message) in cases {
        let err = calc(&led, ShippingRefund::Amount(m(amount))).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    let (o3, led3, _) = refund(
        &o,
        &led,
        &refund_req(vec![], Some(ShippingRefund::Full)),
        "s2",
    )
    .unwrap();
    let err =
        refund_calculate(&o3, &led3, &refund_req(vec![], Some(ShippingRefund::Full))).unwrap_err();
    assert!(matches!(err, ManageError::ShippingExceeds { .. }), "{err}");
}

#[test]
fn over_refund_and_double_refund_are_refused() {
    let (o, led, _) = ship(&fixture(), &Ledger::default(), None, "F1");
    let err = refund_calculate(
        &o,
        &led,
        &refund_req(vec![rl("L1", 4, Some(RestockType::Return))], None),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line L1: refund of 4 exceeds the 3 refundable"),
        "{err}"
    );
    let (o, led, _) = refund(
        &o,
        &led,
        &refund_req(vec![rl("L1", 2, Some(RestockType::Return))], None),
        "r1",
    )
    .unwrap();
    let err = refund_calculate(
        &o,
        &led,
        &refund_req(vec![rl("L1", 2, Some(RestockType::Return))], None),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line L1: refund of 2 exceeds the 1 refundable"),
        "{err}"
    );
    let (o, led, _) = refund(&o, &led, &refund_req(vec![rl("L1", 1, None)], None), "r2").unwrap();
    for restock in [
        None,
        Some(RestockType::NoRestock),
        Some(RestockType::Return),
        Some(RestockType::Cancel),
    ] {
        let err =
            refund_calculate(&o, &led, &refund_req(vec![rl("L1", 1, restock)], None)).unwrap_err();
        assert_eq!(
            err,
            ManageError::LineFullyRefunded { line: "L1".into() },
            "{restock:?}"
        );
        assert_eq!(err.to_string(), "line L1 is already fully refunded");
    }
    let e = led.line(&id("L1")).unwrap();
    assert_eq!((e.refunded, e.returned), (3, 2));
    assert_eq!((e.refunded_amount, e.refunded_tax), (m("27.00"), m("2.16")));
}

#[test]
fn refund_request_validation() {
    let (o, led, _) = ship(&fixture(), &Ledger::default(), None, "F1");
    let cases: Vec<(RefundRequest, &str)> = vec![
        (
            refund_req(vec![], None),
            "the refund is empty: give lines or shipping",
        ),
        (
            refund_req(vec![rl("zz", 1, None)], None),
            "line zz is not on the order",
        ),
        (
            refund_req(vec![rl("L1", 0, None)], None),
            "line L1: quantity 0 must be at least 1",
        ),
        (
            refund_req(vec![rl("L1", 1, None), rl("L1", 1, None)], None),
            "line L1 is listed twice",
        ),
    ];
    for (req, message) in cases {
        assert_eq!(
            refund_calculate(&o, &led, &req).unwrap_err().to_string(),
            message
        );
    }
    for status in [OrderStatus::Cart, OrderStatus::Deleted] {
        let err = refund_calculate(
            &with_status(o.clone(), status),
            &led,
            &refund_req(vec![rl("L1", 1, None)], None),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ManageError::StatusForbids {
                    action: "refund",
                    ..
                }
            ),
            "{err}"
        );
    }
    // Restock `cancel` needs a status before FULFILLED.
    let err = refund_calculate(
        &with_status(fixture(), OrderStatus::Fulfilled),
        &Ledger::default(),
        &refund_req(vec![rl("L1", 1, Some(RestockType::Cancel))], None),
    );
    // FULFILLED from Fast: every unit counts as fulfilled, so `cancel` has nothing to take.
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("every unit of the line is fulfilled"));
}

#[test]
fn refund_create_must_match_its_calculation_to_the_cent() {
    let (o, led, _) = ship(&fixture(), &Ledger::default(), None, "F1");
    let req = refund_req(
        vec![rl("L1", 1, Some(RestockType::Return))],
        Some(ShippingRefund::Full),
    );
    let calc = refund_calculate(&o, &led, &req).unwrap();
    assert_eq!(calc.totals.total, m("15.12")); // 9.00 + 0.72 + 5.00 + 0.40

    assert_eq!(
        calculation_for_total(&o, &led, &req, m("15.12")).unwrap(),
        calc
    );
    let err = calculation_for_total(&o, &led, &req, m("15.13")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the refund does not match its calculation: amount was 15.13, is now 15.12"
    );
    assert_eq!(err.kind(), crate::domain::ErrorKind::Conflict);

    let mut tampered = calc.clone();
    tampered.lines[0].amount_excl_tax = m("9.01");
    let err = refund_create(&o, &led, &req, &tampered, "r1", 5).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the refund does not match its calculation: lines[0].amount_excl_tax was 9.01, is now 9.00"
    );
    let mut fewer = calc.clone();
    fewer.lines.clear();
    let err = refund_create(&o, &led, &req, &fewer, "r1", 5).unwrap_err();
    assert!(
        matches!(err, ManageError::RefundMismatch { ref field, .. } if field == "lines.count"),
        "{err}"
    );

    // Something else happened in between: another refund took 1.00 of the shipping.
    let other = refund_req(
        vec![rl("L1", 1, Some(RestockType::Return))],
        Some(ShippingRefund::Amount(m("1.00"))),
    );
    let (o2, led2, _) = refund(&o, &led, &other, "r0").unwrap();
    let err = refund_create(&o2, &led2, &req, &calc, "r1", 5).unwrap_err();
    assert!(
        matches!(err, ManageError::RefundMismatch { ref field, .. } if field == "shipping.amount_excl_tax"),
        "{err}"
    );
    assert_eq!(err.kind(), crate::domain::ErrorKind::Conflict);

    // Unchanged: recorded.
    let (_, led3, r) = refund_create(&o, &led, &req, &calc, "r1", 5).unwrap();
    assert_eq!(r.calculation, calc);
    assert_eq!(
        (
            r.id.as_str(),
            r.external_refund_id.as_str(),
            r.created_at_ms
        ),
        ("r1", "r1", 5)
    );
    assert_eq!(led3.version, led.version + 1);
    assert_eq!(led3.refunds.len(), 1);
    let audit = led3.audit.last().unwrap();
    assert_eq!(audit.action, AuditAction::Refund);
    assert_eq!(audit.detail["calculation"]["totals"]["total"], "15.12");
}

#[test]
fn refund_ids_are_unique_per_order() {
    let (o, led, _) = ship(&fixture(), &Ledger::default(), None, "F1");
    let mut req = refund_req(vec![rl("L1", 1, None)], None);
    req.external_refund_id = Some("RMA-1".into());
    let (o, led, r) = refund(&o, &led, &req, "r1").unwrap();
    assert_eq!(r.external_refund_id, "RMA-1");
    let err = refund(&o, &led, &req, "r2").unwrap_err();
    assert_eq!(
        err.to_string(),
        "external refund id RMA-1 is already used on this order"
    );
    req.external_refund_id = None;
    let err = refund(&o, &led, &req, "r1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "refund id r1 is already used on this order"
    );
    assert!(matches!(
        refund(&o, &led, &req, " "),
        Err(ManageError::InvalidField { .. })
    ));
}

#[test]
fn the_fast_refund_body_carries_totals_tax_shipping_and_lines() {
    let (o, led, _) = ship(&fixture(), &Ledger::default(), None, "F1");
    let mut req = refund_req(
        vec![rl("L1", 1, Some(RestockType::Return)), rl("L2", 1, None)],
        Some(ShippingRefund::Full),
    );
    req.lines[1].reason = Some(RefundReason::NotDelivered);
    req.note = Some("box crushed".into());
    let (_, _, r) = refund(&o, &led, &req, "r1").unwrap();
    let body = fast_refund_body(&o, &r).unwrap();
    let json = serde_json::to_value(&body).unwrap();
    // Lines 9.00 + 8.99, tax 0.72 + 0.72 + 0.40, shipping 5.00.
    assert_eq!(json["amount"], "24.83");
    assert_eq!(json["tax_amount"], "1.84");
    assert_eq!(json["shipping_amount"], "5.40");
    assert_eq!(json["reason"], "REFUND_REASON_CODE_DAMAGED_PRODUCT");
    assert_eq!(json["method"], "REFUND_METHOD_ORIGINAL_METHOD");
    assert_eq!(json["note"], "box crushed");
    assert_eq!(json["external_refund_id"], "r1");
    assert_eq!(json["order_id"]["value"], "O1");
    assert_eq!(json["order_lines"][0]["line"]["id"]["value"], "L1");
    assert_eq!(json["order_lines"][0]["line"]["quantity"], "1");
    assert_eq!(
        json["order_lines"][0]["reason"],
        "REFUND_REASON_CODE_DAMAGED_PRODUCT"
    );
    assert_eq!(
        json["order_lines"][1]["reason"],
        "REFUND_REASON_CODE_NOT_DELIVERED"
    );
    let back: RefundOrderBody = serde_json::from_value(json).unwrap();
    assert_eq!(back, body);
}

#[test]
fn an_order_fast_marked_fulfilled_counts_every_unit_as_fulfilled() {
    let o = with_status(fixture(), OrderStatus::Fulfilled);
    let calc = refund_calculate(
        &o,
        &Ledger::default(),
        &refund_req(vec![rl("L1", 3, Some(RestockType::Return))], None),
    )
    .unwrap();
    assert_eq!(calc.lines[0].refundable_quantity, 3);
    assert_eq!(calc.totals.total, m("29.16"));
}

// ---- fulfil ------------------------------------------------------------------------------

#[test]
fn fulfil_some_then_the_rest_makes_the_order_fulfilled() {
    let o = with_status(fixture(), OrderStatus::PendingFulfillment);
    let (o, led, out) = ship(&o, &Ledger::default(), Some(vec![lq("L1", 2)]), "F1");
    assert_eq!(out.status, OrderStatus::PendingFulfillment);
    assert!(!out.fulfilment.complete);
    assert_eq!(o.lines[0].extra["quantity_fulfilled"], serde_json::json!(2));
    let json = serde_json::to_value(&out.event).unwrap();
    assert_eq!(json["event_type"], "BUSINESS_EVENT_TYPE_FULFILLMENT");
    assert_eq!(json["order_id"]["value"], "O1");
    let shipment = &json["fulfillment"]["shipment"];
    assert_eq!(shipment["plan_id"]["value"], "P1");
    assert_eq!(shipment["carrier"], "UPS");
    assert_eq!(shipment["tracking_number"], "1Z999");
    assert_eq!(shipment["estimated_delivery_date"], "2024-03-01");
    assert_eq!(shipment["order_lines"][0]["id"]["value"], "L1");
    assert_eq!(shipment["order_lines"][0]["quantity"], "2");
    assert_eq!(
        json["fulfillment"]["status"],
        "ORDER_STATUS_PENDING_FULFILLMENT"
    );
    assert_eq!(
        out.shipping_info,
        out.event.fulfillment.clone().unwrap().shipment
    );

    let err = fulfil(
        &o,
        &led,
        &FulfilRequest {
            lines: Some(vec![lq("L1", 2)]),
            ..Default::default()
        },
        1,
        "F2",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "line L1: fulfilment of 2 exceeds the 1 left to fulfil"
    );

    let (o, led, out) = ship(&o, &led, None, "F2");
    assert_eq!(out.fulfilment.lines, vec![lq("L1", 1), lq("L2", 1)]);
    assert!(out.fulfilment.complete);
    assert_eq!(out.status, OrderStatus::Fulfilled);
    assert_eq!(status_of(&o), OrderStatus::Fulfilled);
    assert_eq!(out.shipping_info.plan_id, None, "L2 is in no plan");
    assert_eq!(
        serde_json::to_value(&out.event).unwrap()["fulfillment"]["status"],
        "ORDER_STATUS_FULFILLED"
    );
    assert_eq!(o.lines[0].extra["quantity_fulfilled"], serde_json::json!(3));
    assert_eq!(led.fulfilments.len(), 2);
    assert_eq!(led.version, 2);
    assert_eq!(led.audit[1].status_after, OrderStatus::Fulfilled);
    let err = fulfil(&o, &led, &FulfilRequest::default(), 1, "F3").unwrap_err();
    assert!(
        matches!(
            err,
            ManageError::StatusForbids {
                action: "fulfil",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn fulfil_skips_canceled_units_and_from_booked_goes_straight_to_fulfilled() {
    let (o, led, _) = cancel(
        &fixture(),
        &Ledger::default(),
        &cancel_req(Some(vec![lq("L1", 1)])),
        1,
    )
    .unwrap();
    let (o, _, out) = ship(&o, &led, None, "F1");
    assert_eq!(out.fulfilment.lines, vec![lq("L1", 2), lq("L2", 1)]);
    assert_eq!(status_of(&o), OrderStatus::Fulfilled);
}

#[test]
fn fulfil_refusals() {
    for status in [
        OrderStatus::Cart,
        OrderStatus::Pending,
        OrderStatus::Hold,
        OrderStatus::Canceled,
        OrderStatus::Deleted,
        OrderStatus::Complete,
    ] {
        let err = fulfil(
            &with_status(fixture(), status),
            &Ledger::default(),
            &FulfilRequest::default(),
            1,
            "F1",
        )
        .unwrap_err();
        assert!(
            matches!(err, ManageError::StatusForbids { .. }),
            "{status:?}"
        );
    }
    let o = fixture();
    let led = Ledger::default();
    for date in [
        "2024-02-30",
        "2023-02-29",
        "2024-13-01",
        "24-01-01",
        "2024/01/01",
        "2024-1-01",
        "tomorrow",
        "",
    ] {
        let req = FulfilRequest {
            estimated_delivery_date: Some(date.into()),
            ..Default::default()
        };
        assert_eq!(
            fulfil(&o, &led, &req, 1, "F1").unwrap_err(),
            ManageError::InvalidDate { value: date.into() },
            "{date}"
        );
    }
    for date in ["2024-02-29", "2000-02-29", "2023-12-31"] {
        let req = FulfilRequest {
            estimated_delivery_date: Some(date.into()),
            ..Default::default()
        };
        assert!(fulfil(&o, &led, &req, 1, "F1").is_ok(), "{date}");
    }
    let cases: Vec<(Option<Vec<LineQuantity>>, &str, &str)> = vec![
        (
            Some(vec![]),
            "F1",
            "`lines` is empty: leave it out to fulfil everything",
        ),
        (Some(vec![lq("L9", 1)]), "F1", "line L9 is not on the order"),
        (
            Some(vec![lq("L1", 0)]),
            "F1",
            "line L1: quantity 0 must be at least 1",
        ),
        (
            Some(vec![lq("L1", 4)]),
            "F1",
            "line L1: fulfilment of 4 exceeds the 3 left to fulfil",
        ),
        (None, "", "fulfilment_id: must not be empty"),
    ];
    for (lines, fid, message) in cases {
        let req = FulfilRequest {
            lines,
            ..Default::default()
        };
        assert_eq!(
            fulfil(&o, &led, &req, 1, fid).unwrap_err().to_string(),
            message
        );
    }
    let (o2, led2, _) = ship(&o, &led, Some(vec![lq("L1", 1)]), "F1");
    let err = fulfil(&o2, &led2, &FulfilRequest::default(), 1, "F1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "fulfilment id F1 is already used on this order"
    );
    // Everything left is canceled: nothing to fulfil.
    let (o3, led3, _) = cancel(&o2, &led2, &cancel_req(None), 1).unwrap();
    let err = fulfil(
        &with_status(o3, OrderStatus::Booked),
        &led3,
        &FulfilRequest::default(),
        1,
        "F9",
    )
    .unwrap_err();
    assert_eq!(err, ManageError::NothingToFulfil);
}

// ---- capture -----------------------------------------------------------------------------

#[test]
fn capture_once_then_refuse() {
    let o = fixture();
    let (after, led, body) = capture(&o, &Ledger::default(), &actor(), 42).unwrap();
    assert_eq!(after, o, "capture does not change the order");
    assert!(led.captured);
    assert_eq!(led.captured_at_ms, Some(42));
    assert_eq!(led.version, 1);
    assert_eq!(led.audit[0].action, AuditAction::Capture);
    let json = serde_json::to_value(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"order_id": {"value": "O1"}, "event_type": "BUSINESS_EVENT_TYPE_CLEAR_TO_COLLECT_PAYMENT"})
    );
    let err = capture(&o, &led, &actor(), 43).unwrap_err();
    assert_eq!(err, ManageError::AlreadyCaptured { at_ms: 42 });
    assert_eq!(err.kind(), crate::domain::ErrorKind::Conflict);
}

#[test]
fn capture_is_refused_on_carts_canceled_and_deleted_orders() {
    for status in [
        OrderStatus::Cart,
        OrderStatus::Canceled,
        OrderStatus::Deleted,
    ] {
        let err = capture(
            &with_status(fixture(), status),
            &Ledger::default(),
            &actor(),
            1,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ManageError::StatusForbids {
                    action: "capture",
                    ..
                }
            ),
            "{status:?}"
        );
    }
    for status in [
        OrderStatus::Pending,
        OrderStatus::Booked,
        OrderStatus::PendingFulfillment,
        OrderStatus::Fulfilled,
        OrderStatus::Complete,
    ] {
        assert!(
            capture(
                &with_status(fixture(), status),
                &Ledger::default(),
                &actor(),
                1
            )
            .is_ok(),
            "{status:?}"
        );
    }
}

// ---- versions, ledger --------------------------------------------------------------------

#[test]
fn version_checks_and_every_action_bumps_it() {
    let led = Ledger::default();
    assert!(check_version(&led, None).is_ok());
    assert!(check_version(&led, Some(0)).is_ok());
    let (o, led, _) = cancel(&fixture(), &led, &cancel_req(Some(vec![lq("L1", 1)])), 1).unwrap();
    let (o, led, _) = ship(&o, &led, Some(vec![lq("L1", 1)]), "F1");
    let (o, led, _) = refund(&o, &led, &refund_req(vec![rl("L1", 1, None)], None), "r1").unwrap();
    let (_, led, _) = capture(&o, &led, &actor(), 1).unwrap();
    assert_eq!(led.version, 4);
    let versions: Vec<u64> = led.audit.iter().map(|a| a.version).collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    let actions: Vec<AuditAction> = led.audit.iter().map(|a| a.action).collect();
    assert_eq!(
        actions,
        vec![
            AuditAction::Cancel,
            AuditAction::Fulfil,
            AuditAction::Refund,
            AuditAction::Capture
        ]
    );
    assert!(check_version(&led, Some(4)).is_ok());
    let err = check_version(&led, Some(3)).unwrap_err();
    assert_eq!(
        err,
        ManageError::VersionMismatch {
            current: 4,
            expected: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "version 3 is stale: the order is at version 4"
    );
    assert_eq!(err.kind(), crate::domain::ErrorKind::Conflict);
}

#[test]
fn a_refused_action_changes_nothing() {
    let o = fixture();
    let led = Ledger::default();
    let before = (o.clone(), led.clone());
    let _ = cancel(&o, &led, &cancel_req(Some(vec![lq("L1", 9)])), 1).unwrap_err();
    let _ = refund(
        &o,
        &led,
        &refund_req(vec![rl("L1", 1, Some(RestockType::Return))], None),
        "r",
    )
    .unwrap_err();
    assert_eq!((o, led), before);
}

#[test]
fn the_ledger_round_trips_through_json() {
    let (o, led, _) = ship(
        &fixture(),
        &Ledger::default(),
        Some(vec![lq("L1", 2)]),
        "F1",
    );
    let (o, led, _) = refund(
        &o,
        &led,
        &refund_req(
            vec![rl("L1", 1, Some(RestockType::Return))],
            Some(ShippingRefund::Amount(m("1.50"))),
        ),
        "r1",
    )
    .unwrap();
    let (_, led, _) = cancel(&o, &led, &cancel_req(Some(vec![lq("L2", 1)])), 3).unwrap();
    let text = serde_json::to_string(&led).unwrap();
    let back: Ledger = serde_json::from_str(&text).unwrap();
    assert_eq!(back, led);
    let fresh: Ledger = serde_json::from_str(r#"{"version": 0}"#).unwrap();
    assert_eq!(fresh, Ledger::default());
}

#[test]
fn an_order_changed_behind_the_ledgers_back_is_refused() {
    let (mut o, led, _) = cancel(
        &fixture(),
        &Ledger::default(),
        &cancel_req(Some(vec![lq("L1", 1)])),
        1,
    )
    .unwrap();
    o.lines[0].quantity = Int64(3);
    let err = cancel(&o, &led, &cancel_req(None), 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line L1: the order has quantity 3 but the ledger expects 2; the order changed outside order management"
    );
    let mut o = fixture();
    o.lines[1].id = None;
    assert_eq!(
        cancel(&o, &Ledger::default(), &cancel_req(None), 1).unwrap_err(),
        ManageError::LineWithoutId { index: 1 }
    );
}

// ---- codes -------------------------------------------------------------------------------

#[test]
fn seed_cancel_codes_map_onto_fast_reasons_both_ways() {
    use CancelReason::*;
    let table = [
        (1, "Buyer canceled", CustomerInitiated),
        (2, "Entity not found", BadConfig),
        (3, "Unprocessable order", BadConfig),
        (4, "Insufficient Stock", NoStock),
        (5, "Fraud check failed", MerchantInitiated),
        (6, "Payment declined", Other),
    ];
    for (n, text, reason) in table {
        let code = SeedCancelCode::from_number(n).unwrap();
        assert_eq!(
            (code.number(), code.description(), code.reason()),
            (n as u8, text, reason)
        );
        assert_eq!(
            CancelReason::from_seed_code(&format!("seed:{n}")),
            Some(reason)
        );
        assert_eq!(CancelReason::from_seed_code(&n.to_string()), Some(reason));
        assert_eq!(
            CancelReason::from_seed_code(&format!(" SEED : {n} ")),
            Some(reason)
        );
        assert!(reason.seed_codes().contains(&code));
        assert_eq!(
            parse_cancel_reason(&format!("seed:{n}")),
            Some((reason, Some(code)))
        );
        assert_eq!(serde_json::to_string(&code).unwrap(), n.to_string());
        assert_eq!(
            serde_json::from_str::<SeedCancelCode>(&format!("\"seed:{n}\"")).unwrap(),
            code
        );
    }
    assert_eq!(
        BadConfig.seed_codes(),
        vec![
            SeedCancelCode::EntityNotFound,
            SeedCancelCode::UnprocessableOrder
        ]
    );
    assert!(Unspecified.seed_codes().is_empty());
    for bad in ["seed:0", "seed:7", "0", "x:1", "seed:", "Buyer canceled"] {
        assert_eq!(CancelReason::from_seed_code(bad), None, "{bad}");
    }
    // A plain number is Fast's numbering in `parse`, the seed's in `from_seed_code`.
    assert_eq!(CancelReason::parse("5"), Some(Other));
    assert_eq!(CancelReason::from_seed_code("5"), Some(MerchantInitiated));
    assert_eq!(parse_cancel_reason("5"), Some((Other, None)));
}

#[test]
fn fast_enums_parse_names_short_names_and_numbers_and_write_names() {
    use CancelReason::*;
    for (text, want) in [
        ("CANCEL_REASON_CODE_NO_STOCK", Some(NoStock)),
        ("no_stock", Some(NoStock)),
        ("Bad_Config", Some(BadConfig)),
        ("3", Some(NoStock)),
        (" 0 ", Some(Unspecified)),
        ("6", None),
        ("NOSTOCK", None),
    ] {
        assert_eq!(CancelReason::parse(text), want, "{text}");
    }
    for r in CancelReason::ALL {
        assert_eq!(CancelReason::from_number(r.number()), Some(*r));
        let json = serde_json::to_string(r).unwrap();
        assert_eq!(json, format!("\"{}\"", r.name()));
        assert_eq!(serde_json::from_str::<CancelReason>(&json).unwrap(), *r);
        assert_eq!(
            serde_json::from_str::<CancelReason>(&r.number().to_string()).unwrap(),
            *r
        );
    }
    assert_eq!(RefundReason::ALL.len(), 11);
    assert_eq!(RefundReason::from_number(10), Some(RefundReason::Other));
    assert_eq!(
        RefundReason::parse("courtesy"),
        Some(RefundReason::Courtesy)
    );
    assert_eq!(
        RefundReason::from_number(9).unwrap().name(),
        "REFUND_REASON_CODE_COURTESY"
    );
    assert_eq!(RefundMethod::parse("2"), Some(RefundMethod::OriginalMethod));
    assert_eq!(
        RefundMethod::parse("store_credit"),
        Some(RefundMethod::StoreCredit)
    );
    assert_eq!(BusinessEventType::ClearToCollectPayment.number(), 2);
    assert!(serde_json::from_str::<RefundMethod>("3").is_err());
    assert!(serde_json::from_str::<CancelReason>("\"seed:1\"").is_err());
    for (text, want) in [
        ("cancel", Some(RestockType::Cancel)),
        ("RETURN", Some(RestockType::Return)),
        ("no-restock", Some(RestockType::NoRestock)),
        ("restock", None),
    ] {
        assert_eq!(RestockType::parse(text), want, "{text}");
    }
    assert_eq!(
        serde_json::to_string(&RestockType::NoRestock).unwrap(),
        "\"no_restock\""
    );
}

#[test]
fn requests_deserialize_from_plain_json() {
    let req: CancelRequest = serde_json::from_str(
        r#"{"lines": [{"line_id": "L1", "quantity": 1}], "reason": "CUSTOMER_INITIATED",
            "seed_code": "seed:1", "actor": {"employee_id": "e1", "source": "POS"}}"#,
    )
    .unwrap();
    assert_eq!(req.lines, Some(vec![lq("L1", 1)]));
    assert_eq!(req.seed_code, Some(SeedCancelCode::BuyerCanceled));
    let req: RefundRequest = serde_json::from_str(
        r#"{"lines": [{"line_id": {"value": "L1"}, "quantity": 2, "restock": "return"}],
            "shipping": {"amount": "3.99"}, "reason": 4}"#,
    )
    .unwrap();
    assert_eq!(req.method, RefundMethod::OriginalMethod);
    assert_eq!(req.shipping, Some(ShippingRefund::Amount(m("3.99"))));
    assert_eq!(req.lines[0].restock, Some(RestockType::Return));
    assert_eq!(req.reason, RefundReason::DamagedProduct);
    let full: RefundRequest = serde_json::from_str(r#"{"shipping": "full"}"#).unwrap();
    assert_eq!(full.shipping, Some(ShippingRefund::Full));
}

// ---- invariants over many interleavings --------------------------------------------------

/// Every order total equals its parts, and coupons equal their line entries.
fn assert_consistent(o: &FastOrder, context: &str) {
    let mut sub = Decimal::ZERO;
    let mut disc = Decimal::ZERO;
    let mut tax = Decimal::ZERO;
    for l in &o.lines {
        let lm = LineMoney::of(l);
        let entries: Decimal = l.discounts.iter().map(|x| x.total_amount.unwrap().0).sum();
        if !l.discounts.is_empty() {
            assert_eq!(entries, lm.discount, "{context}: line entries");
        }
        assert_eq!(
            l.total_amount.unwrap().0,
            lm.net() + lm.tax,
            "{context}: line total"
        );
        assert!(
            lm.discount <= lm.subtotal,
            "{context}: discount over subtotal"
        );
        sub += lm.subtotal;
        disc += lm.discount;
        tax += lm.tax;
    }
    let t = Totals::of(o);
    assert_eq!(
        (t.sub_total.0, t.total_discounts.0),
        (sub, disc),
        "{context}"
    );
    assert!(
        t.total_tax.0 >= tax,
        "{context}: shipping tax went negative"
    );
    assert_eq!(
        t.total_amount.0,
        sub - disc + t.total_tax.0 + t.total_shipping.0,
        "{context}: order total"
    );
    for c in &o.coupons {
        let lines: Decimal = o
            .lines
            .iter()
            .flat_map(|l| l.discounts.iter())
            .filter(|x| x.code == c.code)
            .map(|x| x.total_amount.unwrap().0)
            .sum();
        assert_eq!(
            c.total_amount.unwrap().0,
            lines,
            "{context}: coupon {}",
            c.code
        );
    }
}

#[test]
fn any_interleaving_of_fulfil_cancel_and_refunds_accounts_for_every_cent() {
    let lines = [
        ("4.00", 3, "2.00", "0.80"),
        ("19.99", 7, "13.99", "9.07"),
        ("0.33", 5, "0.05", "0.01"),
        ("10.00", 1, "0.00", "0.73"),
        ("2.50", 6, "1.25", "1.11"),
    ];
    let mut rng: u64 = 7;
    let mut next = |n: usize| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 33) as usize) % n
    };
    for round_no in 0..300 {
        let (unit, qty, disc, tax) = lines[round_no % lines.len()];
        let original = order_of(
            vec![line("X", FulfillmentModel::Physical, unit, qty, disc, tax)],
            "0.00",
            "0.00",
        );
        let original_total = Totals::of(&original).total_amount.0;
        let (mut o, mut led) = (original.clone(), Ledger::default());
        let mut out_money = Decimal::ZERO;
        let mut step = 0;
        loop {
            step += 1;
            let ctx = format!("round {round_no} step {step}");
            let e = led.line(&id("X")).cloned().unwrap_or_default();
            let current = o.lines[0].quantity.0;
            let fulfilled = e
                .fulfilled
                .max(if matches!(status_of(&o), OrderStatus::Fulfilled) {
                    current
                } else {
                    0
                });
            let unfulfilled = current - fulfilled;
            let before_cancel = cancel_allowed(status_of(&o), "cancel").is_ok();
            let mut ops: Vec<u8> = Vec::new();
            if unfulfilled > 0 && before_cancel {
                ops.extend([0, 1, 3]); // fulfil, cancel, refund-cancel
            }
            if fulfilled - e.refunded > 0 {
                ops.push(2); // refund a fulfilled unit
            }
            if ops.is_empty() {
                break;
            }
            let n = 1 + next(2) as i64;
            match ops[next(ops.len())] {
                0 => {
                    let q = n.min(unfulfilled);
                    (o, led, _) = ship(&o, &led, Some(vec![lq("X", q)]), &format!("f{step}"));
                }
                1 => {
                    let q = n.min(unfulfilled);
                    let out;
                    (o, led, out) = cancel(&o, &led, &cancel_req(Some(vec![lq("X", q)])), 1)
                        .unwrap_or_else(|err| panic!("{ctx}: {err}"));
                    out_money += out.cancel_total.0;
                }
                op => {
                    let (q, restock) = if op == 2 {
                        (n.min(fulfilled - e.refunded), RestockType::NoRestock)
                    } else {
                        (n.min(unfulfilled), RestockType::Cancel)
                    };
                    let req = refund_req(vec![rl("X", q, Some(restock))], None);
                    let r;
                    (o, led, r) = refund(&o, &led, &req, &format!("r{step}"))
                        .unwrap_or_else(|err| panic!("{ctx}: {err}"));
                    out_money += r.calculation.totals.total.0;
                }
            }
            assert_consistent(&o, &ctx);
            let e = led.line(&id("X")).unwrap();
            let l = &o.lines[0];
            assert_eq!(l.quantity.0, e.ordered - e.canceled, "{ctx}");
            assert!(
                e.refunded <= e.fulfilled && e.fulfilled <= l.quantity.0,
                "{ctx}"
            );
            let (net, tax) = e.in_line_refunded();
            let lm = LineMoney::of(l);
            assert!(
                net <= lm.net() && tax <= lm.tax,
                "{ctx}: refunded over paid"
            );
            assert!(
                out_money <= original_total,
                "{ctx}: more out than the order was worth"
            );
        }
        // Every unit ended canceled or refunded: every cent is accounted for, exactly.
        assert_eq!(out_money, original_total, "round {round_no}");
        assert_eq!(led.version as usize, led.audit.len());
    }
}

#[test]
fn orders_priced_by_checkout_stay_consistent_through_management() {
    use crate::domain::catalog::Catalog;
    use crate::domain::pricing::reprice;
    use crate::protocol::Address;
    let catalog = Catalog::parse(
        r#"{"currency": "USD",
            "products": [{"id": "p", "name": "P", "fulfillment": "physical", "price": "1.00"}],
            "tax": {"rates": {"US-CA": "0.0725"}, "shipping_taxable": true},
            "coupons": [{"code": "SAVE10", "percent_off": "10"},
                        {"code": "FIVE", "amount_off": "5.00"}],
            "shipping": [{"id": "std", "name": "Std", "cost": "7.95"}]}"#,
    )
    .unwrap();
    let priced = |line_id: &str, price: &str, qty: i64, mode| OrderLine {
        id: Some(id(line_id)),
        unit_price: Some(m(price)),
        quantity: Int64(qty),
        fulfillment_mode: Some(mode),
        ..Default::default()
    };
    let mut o = FastOrder {
        id: Some(id("O9")),
        lines: vec![
            priced("a", "19.99", 3, FulfillmentModel::Physical),
            priced("b", "4.35", 7, FulfillmentModel::Physical),
            priced("c", "12.50", 1, FulfillmentModel::Digital),
        ],
        coupons: vec![
            OrderDiscount {
                code: "SAVE10".into(),
                ..Default::default()
            },
            OrderDiscount {
                code: "FIVE".into(),
                ..Default::default()
            },
        ],
        shipment_plans: vec![ShipmentPlan {
            id: Some(id("plan")),
            ship_to: Address {
                country_code: Some("US".into()),
                state_province_code: Some("CA".into()),
                ..Default::default()
            },
            lines: ["a", "b"]
                .iter()
                .map(|l| LineReference {
                    id: id(l),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        bill_to: Address {
            country_code: Some("US".into()),
            state_province_code: Some("CA".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    reprice(&mut o, &catalog);
    o.status = Some(OrderStatus::Booked);
    assert_consistent(&o, "priced");
    let start = Totals::of(&o).total_amount.0;
    let shipping_tax = shipping_tax_of(&o);
    assert_eq!(Money(shipping_tax).to_wire(), "0.58"); // 7.95 × 7.25 % = 0.576

    let led = Ledger::default();
    let (o1, led, c1) =
        cancel(&o, &led, &cancel_req(Some(vec![lq("b", 4), lq("a", 1)])), 1).unwrap();
    assert_consistent(&o1, "after cancel");
    assert_eq!(start - Totals::of(&o1).total_amount.0, c1.cancel_total.0);
    assert_eq!(shipping_tax_of(&o1), shipping_tax, "shipping tax stays");
    let (o2, led, _) = ship(&o1, &led, Some(vec![lq("a", 2), lq("c", 1)]), "F1");
    let req = refund_req(
        vec![
            rl("a", 1, Some(RestockType::Return)),
            rl("c", 1, None),
            rl("b", 2, Some(RestockType::Cancel)),
        ],
        Some(ShippingRefund::Amount(m("2.00"))),
    );
    let (o3, led, r) = refund(&o2, &led, &req, "r1").unwrap();
    assert_consistent(&o3, "after refund");
    assert_eq!(
        r.calculation.shipping.tax,
        Money(round(shipping_tax * d("2.00") / d("7.95")))
    );
    let (o4, led, c2) = cancel(&o3, &led, &cancel_req(None), 2).unwrap();
    assert_consistent(&o4, "after whole cancel");
    assert_eq!(c2.status, OrderStatus::Fulfilled, "a and c were shipped");
    assert_eq!(led.version, 4);
    // What left the order plus what is still on it is what it was worth.
    let still = Totals::of(&o4).total_amount.0;
    let refunded_lines: Decimal = r
        .calculation
        .lines
        .iter()
        .filter(|l| l.restock == RestockType::Cancel)
        .map(|l| l.amount_incl_tax.0)
        .sum();
    assert_eq!(
        c1.cancel_total.0 + refunded_lines + c2.cancel_total.0 + still,
        start
    );
}

mod prop;
