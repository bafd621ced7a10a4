use super::*;
use crate::domain::manage::{Actor, Ledger, LineLedger, Totals};
use crate::service::admin::{AttemptView, OutboxDetail, OutboxView};
use crate::service::orders::{OrderDetail, OrderSummary};
use serde_json::json;

const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn m(text: &str) -> Money {
    Money(text.parse().unwrap())
}

fn order() -> FastOrder {
    serde_json::from_value(json!({
        "id": {"value": "F-1"},
        "external_id": "S-1",
        "status": "ORDER_STATUS_BOOKED",
        "currency_code": "USD",
        "bill_to": {"first_name": "<b>Eve</b>", "last_name": " Doe ", "email": "eve@example.com"},
        "lines": [
            {"id": {"value": "L-1"}, "external_product_id": "mug-01", "name": "Mug",
             "quantity": 1, "unit_price": "12.50", "total_amount": "13.41"},
            {"id": {"value": "L-2"}, "external_product_id": "tee-01",
             "external_variant_id": "tee-01-m", "quantity": 3}
        ],
        "sub_total": "50.00", "total_tax": "3.00", "total_amount": "53.00"
    }))
    .unwrap()
}

fn audit(version: u64, at_ms: u64, action: AuditAction, total_after: &str) -> AuditEntry {
    AuditEntry {
        version,
        at_ms,
        actor: Actor {
            employee_id: Some("emp-7".into()),
            source: Some("console".into()),
        },
        action,
        detail: json!({}),
        status_before: OrderStatus::Booked,
        status_after: OrderStatus::Booked,
        totals_before: Totals {
            total_amount: m("53.00"),
            ..Totals::default()
        },
        totals_after: Totals {
            total_amount: m(total_after),
            ..Totals::default()
        },
    }
}

fn detail(ledger: Ledger) -> OrderDetail {
    OrderDetail {
        id: "F-1".into(),
        version: 4,
        status: OrderStatus::Booked,
        created_at_ms: T0,
        updated_at_ms: T0 + 5000,
        order: order(),
        ledger,
    }
}

fn event(seq: u64, event_type: &str, at: &str, state: &'static str, body: Value) -> OutboxDetail {
    OutboxDetail {
        entry: OutboxView {
            id: format!("ev-{seq}"),
            order_id: "F-1".into(),
            sequence: seq,
            event_type: event_type.into(),
            state,
            attempts: 1,
            failures: 1,
            next_attempt_at: None,
            created_at: at.into(),
            event: body,
        },
        attempt_log: vec![AttemptView {
            at: at.into(),
            latency_ms: 12,
            delivered: false,
            status: Some(400),
            detail: "x".repeat(300),
        }],
    }
}

#[test]
fn labels_money_and_times_read_well() {
    assert_eq!(
        status_label(OrderStatus::PendingFulfillment),
        "Pending fulfillment"
    );
    assert_eq!(status_label(OrderStatus::Booked), "Booked");
    assert_eq!(
        status_key(OrderStatus::PendingFulfillment),
        "pending_fulfillment"
    );
    assert_eq!(money(m("12.5"), Some("USD")), "12.50 USD");
    assert_eq!(money(m("3"), None), "3.00");
    assert_eq!(time(T0 + 90_500), "2026-01-01 00:01:30 UTC");
    assert_eq!(
        time_text("2026-01-01T00:01:30.500Z"),
        "2026-01-01 00:01:30 UTC"
    );
    assert_eq!(time_text("soon"), "soon");
    assert_eq!(parse_ms("2026-01-01T00:01:30.500Z"), Some(T0 + 90_500));
}

#[test]
fn the_shopper_name_is_kept_as_given_and_blank_parts_dropped() {
    assert_eq!(shopper_name(&order()).as_deref(), Some("<b>Eve</b> Doe"));
    assert_eq!(shopper_name(&FastOrder::default()), None);
}

#[test]
fn actions_follow_the_status_and_the_capture() {
    let all = Actions {
        cancel: true,
        refund: true,
        fulfil: true,
        capture: true,
    };
    assert_eq!(Actions::of(OrderStatus::Booked, false), all);
    assert_eq!(
        Actions::of(OrderStatus::Booked, true),
        Actions {
            capture: false,
            ..all
        }
    );
    assert_eq!(Actions::of(OrderStatus::Cart, false), Actions::default());
    assert_eq!(
        Actions::of(OrderStatus::Fulfilled, false),
        Actions {
            refund: true,
            capture: true,
            ..Actions::default()
        }
    );
    assert_eq!(
        Actions::of(OrderStatus::Canceled, false),
        Actions::default(),
        "a canceled order was refunded by its cancel"
    );
    assert_eq!(
        Actions::of(OrderStatus::Pending, false),
        Actions {
            cancel: true,
            refund: true,
            capture: true,
            fulfil: false
        }
    );
}

#[test]
fn the_order_page_shows_lines_with_their_ledger_and_totals() {
    let ledger = Ledger {
        lines: vec![LineLedger {
            line_id: Id("L-1".into()),
            ordered: 2,
            canceled: 1,
            refund_canceled: 1,
            refunded_amount: m("12.50"),
            refunded_tax: m("0.90"),
            ..LineLedger::default()
        }],
        captured: true,
        captured_at_ms: Some(T0 + 60_000),
        ..Ledger::default()
    };
    let page = OrderPage::of(&detail(ledger), &[]);
    assert_eq!(page.shopper, "<b>Eve</b> Doe");
    assert_eq!(page.email, "eve@example.com");
    assert_eq!(page.seller_id, "S-1");
    assert_eq!(page.status, "Booked");
    assert_eq!(page.captured, "captured 2026-01-01 00:01:00 UTC");
    assert!(!page.actions.capture);
    let l1 = &page.lines[0];
    assert_eq!(
        (
            l1.name.as_str(),
            l1.sku.as_str(),
            l1.quantity,
            l1.ordered,
            l1.canceled,
            l1.refunded
        ),
        ("Mug", "mug-01", 1, 2, 1, 1)
    );
    assert_eq!(l1.unit_price, "12.50 USD");
    assert_eq!(l1.refunded_amount, "13.40 USD");
    let l2 = &page.lines[1];
    assert_eq!(
        (l2.name.as_str(), l2.sku.as_str(), l2.ordered, l2.canceled),
        ("tee-01", "tee-01-m", 3, 0),
        "a line the ledger has not seen yet: ordered = its quantity"
    );
    assert_eq!(l2.unit_price, "");
    assert_eq!(page.totals[0], ("Subtotal", "50.00 USD".to_string()));
    assert_eq!(page.totals[4], ("Total", "53.00 USD".to_string()));
    let names: Vec<&str> = page.totals.iter().map(|t| t.0).collect();
    assert_eq!(
        names[5..],
        ["Charged", "Canceled", "Refunded", "Refundable"],
        "the payment ledger follows the totals"
    );
    assert_eq!(page.totals[7], ("Refunded", "0.00 USD".to_string()));
}

#[test]
fn the_timeline_merges_audit_and_events_in_time_order_without_repeating_actions() {
    let ledger = Ledger {
        audit: vec![audit(5, T0 + 3000, AuditAction::Refund, "39.59")],
        ..Ledger::default()
    };
    let events = vec![
        event(
            1,
            "order.converted",
            "2026-01-01T00:00:01.000Z",
            "dead",
            json!({"order": {"status": "ORDER_STATUS_PENDING"}}),
        ),
        event(
            2,
            "order.refunded",
            "2026-01-01T00:00:03.000Z",
            "pending",
            json!({"detail": {"id": "r"}}),
        ),
        event(
            3,
            "fast.refund",
            "2026-01-01T00:00:03.000Z",
            "pending",
            json!({}),
        ),
        event(
            4,
            "order.status_changed",
            "2026-01-01T00:00:02.000Z",
            "delivered",
            json!({"order": {"status": "ORDER_STATUS_BOOKED"}}),
        ),
    ];
    let t = timeline(&detail(ledger), &events);
    let what: Vec<(&str, &str)> = t
        .iter()
        .map(|e| (e.what.as_str(), e.who.as_str()))
        .collect();
    assert_eq!(
        what,
        vec![
            ("Cart created", "Fast"),
            ("Converted to an order by Fast", "Fast"),
            ("Status changed", "Fast"),
            ("Refunded", "emp-7 (console)"),
            ("Call to Fast: refund", "fast-seller"),
        ],
        "order.refunded carries the action's record: the audit entry says it once"
    );
    assert_eq!(t[1].detail, "status Pending; delivery dead");
    assert_eq!(
        t[3].detail,
        "version 5: Booked → Booked; total 53.00 → 39.59"
    );
}

#[test]
fn events_show_their_last_answer_cut_short() {
    let e = event(
        1,
        "order.converted",
        "2026-01-01T00:00:01.000Z",
        "dead",
        json!({}),
    );
    let row = EventRow::of_detail(&e);
    assert_eq!(row.state, "dead");
    let a = &row.log[0];
    assert_eq!(
        (a.outcome, a.status.as_str(), a.latency.as_str()),
        ("failed", "400", "12 ms")
    );
    assert_eq!(
        a.detail.chars().count(),
        EXCERPT + 1,
        "cut to the excerpt plus …"
    );
    assert!(a.detail.ends_with('…'));
}

#[test]
fn a_refund_preview_lists_lines_and_totals() {
    let calc: RefundCalculation = serde_json::from_value(json!({
        "currency_code": "USD",
        "lines": [{"line_id": {"value": "L-1"}, "quantity": 1, "refundable_quantity": 2,
                   "restock": "no_restock", "reason": "REFUND_REASON_CODE_OTHER",
                   "amount_excl_tax": "12.50", "tax": "0.90", "amount_incl_tax": "13.40"}],
        "shipping": {"refundable_amount": "5.00", "refundable_tax": "0.00",
                     "amount_excl_tax": "0.00", "tax": "0.00", "amount_incl_tax": "0.00"},
        "totals": {"subtotal": "12.50", "tax": "0.90", "shipping": "0.00", "total": "13.40"}
    }))
    .unwrap();
    let p = RefundPreview::of(&calc);
    assert_eq!(p.total, "13.40 USD");
    assert_eq!(p.lines[0].restock, "no restock");
    assert_eq!(p.lines[0].incl_tax, "13.40 USD");
    assert_eq!(p.totals[3], ("Total to refund", "13.40 USD".to_string()));
}

fn summary(status: OrderStatus, created_ms: u64, total: &str) -> OrderSummary {
    OrderSummary {
        id: format!("F-{created_ms}"),
        external_id: None,
        status,
        email: None,
        currency_code: Some("USD".into()),
        total_amount: m(total),
        version: 1,
        created_at: rfc3339_ms(created_ms),
        updated_at: rfc3339_ms(created_ms),
    }
}

#[test]
fn the_overview_counts_orders_not_carts_by_day_week_and_hour() {
    const H: u64 = 3600 * 1000;
    let now = T0 + 10 * 24 * H + 15 * H + 30 * 60 * 1000; // day 10, 15:30
    let list = vec![
        summary(OrderStatus::Booked, now - 10 * 60 * 1000, "10.00"), // this hour
        summary(OrderStatus::Fulfilled, now - 2 * H, "5.50"),        // today, 13:30
        summary(OrderStatus::Booked, now - 20 * H, "1.00"),          // yesterday 19:30
        summary(OrderStatus::Booked, now - 3 * 24 * H, "2.00"),      // this week
        summary(OrderStatus::Booked, now - 8 * 24 * H, "99.00"),     // too old
        summary(OrderStatus::Cart, now - H, "7.00"),
        summary(OrderStatus::Deleted, now - H, "7.00"),
    ];
    let o = Overview::of(&list, now, "USD");
    assert_eq!((o.orders_today, o.orders_week, o.carts_open), (2, 4, 1));
    assert_eq!(o.revenue_today, "15.50 USD");
    assert_eq!(o.revenue_week, "18.50 USD");
    assert_eq!(o.per_hour.len(), 24);
    assert_eq!(o.per_hour[23], 1, "the current hour is the last bar");
    assert_eq!(o.per_hour[21], 1, "two hours ago");
    assert_eq!(o.per_hour[3], 1, "20 hours ago");
    assert_eq!(o.per_hour.iter().sum::<u64>(), 3);
}

#[test]
fn chart_bars_scale_to_the_tallest() {
    assert_eq!(
        bars(&[0, 2, 1]),
        vec![(0, 100, 0), (10, 0, 100), (20, 50, 50)]
    );
    assert_eq!(bars(&[0, 0]), vec![(0, 100, 0), (10, 100, 0)]);
}
