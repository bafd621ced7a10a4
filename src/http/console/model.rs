//! View models: what each console page shows, computed from the services' answers into
//! plain text and numbers. The pages (`pages.rs`) only lay these out; every rule about what
//! is shown (labels, money, which actions an order allows, the timeline's order) lives here
//! and is unit tested.

use crate::clock::rfc3339_ms;
use crate::domain::manage::{AuditAction, AuditEntry, RefundCalculation};
use crate::protocol::{FastOrder, Id, Money, OrderStatus};
use crate::service::admin::{AttemptView, OutboxDetail, OutboxView};
use crate::service::orders::{OrderDetail, OrderSummary};
use serde_json::Value;

/// An amount with its currency: `12.50 USD`.
pub fn money(amount: Money, currency: Option<&str>) -> String {
    match currency {
        Some(c) if !c.is_empty() => format!("{amount} {c}"),
        _ => amount.to_string(),
    }
}

/// `ORDER_STATUS_PENDING_FULFILLMENT` → `Pending fulfillment`.
pub fn status_label(status: OrderStatus) -> String {
    let short = status.name().trim_start_matches("ORDER_STATUS_");
    let mut label = short.replace('_', " ").to_ascii_lowercase();
    if let Some(first) = label.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    label
}

/// The short lowercase name used in filters and CSS classes: `pending_fulfillment`.
pub fn status_key(status: OrderStatus) -> String {
    status
        .name()
        .trim_start_matches("ORDER_STATUS_")
        .to_ascii_lowercase()
}

/// `2026-01-01 09:30:00 UTC`.
pub fn time(ms: u64) -> String {
    let text = rfc3339_ms(ms);
    // 2026-01-01T09:30:00.000Z
    match (text.get(..10), text.get(11..19)) {
        (Some(date), Some(clock)) => format!("{date} {clock} UTC"),
        _ => text,
    }
}

/// Same, from an RFC 3339 text the services give (kept as is if it is not one).
pub fn time_text(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(clock)) if rfc3339.len() >= 20 => format!("{date} {clock} UTC"),
        _ => rfc3339.to_string(),
    }
}

/// The shopper's name from the billing address, when Fast sent one.
pub fn shopper_name(order: &FastOrder) -> Option<String> {
    let part = |k: &str| {
        order
            .bill_to
            .extra
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = [part("first_name"), part("last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

/// One row of the orders list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: String,
    pub seller_id: String,
    pub status: String,
    pub status_key: String,
    pub email: String,
    pub total: String,
    pub created: String,
}

impl OrderRow {
    pub fn of(s: &OrderSummary) -> OrderRow {
        OrderRow {
            id: s.id.clone(),
            seller_id: s.external_id.clone().unwrap_or_default(),
            status: status_label(s.status),
            status_key: status_key(s.status),
            email: s.email.clone().unwrap_or_default(),
            total: money(s.total_amount, s.currency_code.as_deref()),
            created: time_text(&s.created_at),
        }
    }
}

/// Which actions an order allows now (the domain has the last word; this hides buttons
/// that could only be refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actions {
    pub cancel: bool,
    pub refund: bool,
    pub fulfil: bool,
    pub capture: bool,
}

impl Actions {
    pub fn of(status: OrderStatus, captured: bool) -> Actions {
        use OrderStatus as S;
        let cancel = matches!(
            status,
            S::Pending | S::Hold | S::Booked | S::PendingFulfillment
        );
        let ordered = !matches!(status, S::Cart | S::Unspecified | S::Deleted);
        Actions {
            cancel,
            refund: ordered && status != S::Canceled,
            fulfil: matches!(status, S::Booked | S::PendingFulfillment),
            capture: ordered && status != S::Canceled && !captured,
        }
    }
}

/// One line of the order page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow {
    pub id: String,
    pub name: String,
    pub sku: String,
    pub unit_price: String,
    /// Units on the line now (ordered − canceled).
    pub quantity: i64,
    pub ordered: i64,
    pub canceled: i64,
    pub fulfilled: i64,
    pub refunded: i64,
    pub returned: i64,
    pub refunded_amount: String,
    pub total: String,
}

/// One event of the timeline: Fast's updates as the events they caused, and the
/// merchant's actions from the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at_ms: u64,
    pub at: String,
    pub who: String,
    pub what: String,
    pub detail: String,
}

/// One outbox event of an order (or of the deliveries page), with its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: String,
    pub order_id: String,
    pub sequence: u64,
    pub event_type: String,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt: String,
    pub created: String,
    pub log: Vec<AttemptRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub at: String,
    pub outcome: &'static str,
    pub status: String,
    pub latency: String,
    /// What the receiver answered or what failed, at most [`EXCERPT`] characters.
    pub detail: String,
}

/// Longest answer excerpt shown per attempt.
pub const EXCERPT: usize = 200;

fn excerpt(text: &str) -> String {
    if text.chars().count() <= EXCERPT {
        return text.to_string();
    }
    let cut: String = text.chars().take(EXCERPT).collect();
    format!("{cut}…")
}

impl AttemptRow {
    pub fn of(a: &AttemptView) -> AttemptRow {
        AttemptRow {
            at: time_text(&a.at),
            outcome: if a.delivered { "delivered" } else { "failed" },
            status: a.status.map(|s| s.to_string()).unwrap_or_default(),
            latency: format!("{} ms", a.latency_ms),
            detail: excerpt(&a.detail),
        }
    }
}

impl EventRow {
    pub fn of(view: &OutboxView, log: &[AttemptView]) -> EventRow {
        EventRow {
            id: view.id.clone(),
            order_id: view.order_id.clone(),
            sequence: view.sequence,
            event_type: view.event_type.clone(),
            state: view.state,
            attempts: view.attempts,
            next_attempt: view
                .next_attempt_at
                .as_deref()
                .map(time_text)
                .unwrap_or_default(),
            created: time_text(&view.created_at),
            log: log.iter().map(AttemptRow::of).collect(),
        }
    }

    pub fn of_detail(d: &OutboxDetail) -> EventRow {
        EventRow::of(&d.entry, &d.attempt_log)
    }
}

/// The order page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    pub id: String,
    pub seller_id: String,
    pub version: u64,
    pub status: String,
    pub status_key: String,
    pub shopper: String,
    pub email: String,
    pub currency: String,
    pub created: String,
    pub updated: String,
    pub lines: Vec<LineRow>,
    /// (label, amount) from subtotal to total, then refunded.
    pub totals: Vec<(&'static str, String)>,
    pub captured: String,
    pub timeline: Vec<TimelineEntry>,
    pub events: Vec<EventRow>,
    pub actions: Actions,
}

fn actor_text(e: &AuditEntry) -> String {
    match (&e.actor.employee_id, &e.actor.source) {
        (Some(emp), Some(src)) => format!("{emp} ({src})"),
        (Some(emp), None) => emp.clone(),
        (None, Some(src)) => src.clone(),
        (None, None) => "merchant".into(),
    }
}

fn audit_what(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Cancel => "Canceled",
        AuditAction::Refund => "Refunded",
        AuditAction::Fulfil => "Fulfilled",
        AuditAction::Capture => "Captured",
    }
}

fn event_what(event_type: &str) -> String {
    match event_type {
        "order.converted" => "Converted to an order by Fast".into(),
        "order.status_changed" => "Status changed".into(),
        "order.canceled" => "Cancellation forwarded".into(),
        "order.refunded" => "Refund forwarded".into(),
        "order.fulfilled" => "Fulfilment forwarded".into(),
        other if other.starts_with("fast.") => format!("Call to Fast: {}", &other[5..]),
        other => other.to_string(),
    }
}

/// The new status an event carries, when it carries the order.
fn event_status(event: &Value) -> Option<OrderStatus> {
    event
        .get("order")
        .and_then(|o| o.get("status"))
        .and_then(Value::as_str)
        .and_then(OrderStatus::from_name)
}

impl OrderPage {
    pub fn of(detail: &OrderDetail, events: &[OutboxDetail]) -> OrderPage {
        let order = &detail.order;
        let ledger = &detail.ledger;
        let currency = order.currency_code.clone().unwrap_or_default();
        let cur = Some(currency.as_str());
        let lines = order
            .lines
            .iter()
            .map(|line| {
                let id = line.id.clone().unwrap_or(Id(String::new()));
                let quantity = line.quantity.0;
                let booked = ledger.line(&id);
                LineRow {
                    name: line
                        .name
                        .clone()
                        .or_else(|| line.external_product_id.clone())
                        .unwrap_or_default(),
                    sku: line
                        .external_variant_id
                        .clone()
                        .or_else(|| line.external_product_id.clone())
                        .unwrap_or_default(),
                    unit_price: line.unit_price.map(|p| money(p, cur)).unwrap_or_default(),
                    quantity,
                    ordered: booked.map_or(quantity, |b| b.ordered),
                    canceled: booked.map_or(0, |b| b.canceled),
                    fulfilled: booked.map_or(0, |b| b.fulfilled),
                    refunded: booked.map_or(0, |b| b.refunded + b.refund_canceled),
                    returned: booked.map_or(0, |b| b.returned),
                    refunded_amount: booked
                        .map(|b| money(Money(b.refunded_amount.0 + b.refunded_tax.0), cur))
                        .unwrap_or_default(),
                    total: line.total_amount.map(|t| money(t, cur)).unwrap_or_default(),
                    id: id.0,
                }
            })
            .collect();
        let amount = |m: Option<Money>| money(m.unwrap_or_default(), cur);
        let pay = crate::domain::manage::payment(order, ledger);
        let totals = vec![
            ("Subtotal", amount(order.sub_total)),
            ("Discounts", amount(order.total_discounts)),
            ("Tax", amount(order.total_tax)),
            ("Shipping", amount(order.total_shipping)),
            ("Total", amount(order.total_amount)),
            ("Charged", money(pay.charged, cur)),
            ("Canceled", money(pay.canceled, cur)),
            ("Refunded", money(pay.refunded, cur)),
            ("Refundable", money(pay.refundable, cur)),
        ];
        OrderPage {
            id: detail.id.clone(),
            seller_id: order.external_id.clone().unwrap_or_default(),
            version: detail.version,
            status: status_label(detail.status),
            status_key: status_key(detail.status),
            shopper: shopper_name(order).unwrap_or_default(),
            email: order.email().unwrap_or_default(),
            created: time(detail.created_at_ms),
            updated: time(detail.updated_at_ms),
            lines,
            totals,
            captured: match (ledger.captured, ledger.captured_at_ms) {
                (true, Some(at)) => format!("captured {}", time(at)),
                (true, None) => "captured".into(),
                (false, _) => "not captured".into(),
            },
            timeline: timeline(detail, events),
            events: events.iter().map(EventRow::of_detail).collect(),
            actions: Actions::of(detail.status, ledger.captured),
            currency,
        }
    }
}

/// The order's history, oldest first: its creation, every event its changes queued (Fast's
/// conversion and status changes, the calls to Fast) and every merchant action.
pub fn timeline(detail: &OrderDetail, events: &[OutboxDetail]) -> Vec<TimelineEntry> {
    let mut entries = vec![TimelineEntry {
        at_ms: detail.created_at_ms,
        at: time(detail.created_at_ms),
        who: "Fast".into(),
        what: "Cart created".into(),
        detail: String::new(),
    }];
    for e in &detail.ledger.audit {
        let (before, after) = (e.totals_before.total_amount, e.totals_after.total_amount);
        let mut detail = format!(
            "version {}: {} → {}",
            e.version,
            status_label(e.status_before),
            status_label(e.status_after)
        );
        if before != after {
            detail.push_str(&format!("; total {before} → {after}"));
        }
        entries.push(TimelineEntry {
            at_ms: e.at_ms,
            at: time(e.at_ms),
            who: actor_text(e),
            what: audit_what(e.action).into(),
            detail,
        });
    }
    for d in events {
        let v = &d.entry;
        // The merchant's own actions are already in the audit log.
        if matches!(
            v.event_type.as_str(),
            "order.canceled" | "order.refunded" | "order.fulfilled"
        ) && v
            .event
            .get("detail")
            .is_some_and(|detail| !detail.is_null())
        {
            continue;
        }
        let at_ms = parse_ms(&v.created_at).unwrap_or(detail.created_at_ms);
        let detail_text = match event_status(&v.event) {
            Some(s) => format!("status {}; delivery {}", status_label(s), v.state),
            None => format!("delivery {}", v.state),
        };
        let who = if v.event_type.starts_with("fast.") {
            "fast-seller"
        } else {
            "Fast"
        };
        entries.push(TimelineEntry {
            at_ms,
            at: time(at_ms),
            who: who.into(),
            what: event_what(&v.event_type),
            detail: detail_text,
        });
    }
    // Stable: equal times keep creation, audit, event order.
    entries.sort_by_key(|e| e.at_ms);
    entries
}

/// Milliseconds of an RFC 3339 time.
pub fn parse_ms(text: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(text)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
}

/// One line of a refund preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPreviewLine {
    pub line_id: String,
    pub quantity: i64,
    pub refundable: i64,
    pub restock: String,
    pub excl_tax: String,
    pub tax: String,
    pub incl_tax: String,
}

/// What a refund would do, before it is confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPreview {
    pub lines: Vec<RefundPreviewLine>,
    pub shipping: String,
    pub totals: Vec<(&'static str, String)>,
    pub total: String,
}

impl RefundPreview {
    pub fn of(calc: &RefundCalculation) -> RefundPreview {
        let cur = calc.currency_code.as_deref();
        let lines = calc
            .lines
            .iter()
            .map(|l| RefundPreviewLine {
                line_id: l.line_id.0.clone(),
                quantity: l.quantity,
                refundable: l.refundable_quantity,
                restock: l.restock.name().replace('_', " "),
                excl_tax: money(l.amount_excl_tax, cur),
                tax: money(l.tax, cur),
                incl_tax: money(l.amount_incl_tax, cur),
            })
            .collect();
        let t = &calc.totals;
        RefundPreview {
            lines,
            shipping: money(calc.shipping.amount_incl_tax, cur),
            totals: vec![
                ("Lines excl. tax", money(t.subtotal, cur)),
                ("Tax", money(t.tax, cur)),
                ("Shipping excl. tax", money(t.shipping, cur)),
                ("Total to refund", money(t.total, cur)),
            ],
            total: money(t.total, cur),
        }
    }
}

/// The overview's numbers, from the orders created in the last seven days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub orders_today: u64,
    pub revenue_today: String,
    pub orders_week: u64,
    pub revenue_week: String,
    /// Orders (not carts) created in each of the last 24 hours, oldest first.
    pub per_hour: Vec<u64>,
    pub carts_open: u64,
}

const HOUR_MS: u64 = 3600 * 1000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Whether an order counts as one (a cart or a deleted cart does not).
fn is_order(status: OrderStatus) -> bool {
    !matches!(
        status,
        OrderStatus::Cart | OrderStatus::Deleted | OrderStatus::Unspecified
    )
}

impl Overview {
    /// `summaries`: orders created since `now_ms − 7 days`. "Today" is the UTC day of
    /// `now_ms`; revenue is the orders' current totals, in the catalog's currency.
    pub fn of(summaries: &[OrderSummary], now_ms: u64, currency: &str) -> Overview {
        let day_start = now_ms - now_ms % DAY_MS;
        let week_start = now_ms.saturating_sub(7 * DAY_MS);
        let hour_now = now_ms - now_ms % HOUR_MS;
        let first_hour = hour_now.saturating_sub(23 * HOUR_MS);
        let mut o = Overview {
            orders_today: 0,
            revenue_today: String::new(),
            orders_week: 0,
            revenue_week: String::new(),
            per_hour: vec![0; 24],
            carts_open: 0,
        };
        let (mut today, mut week) = (Money::ZERO, Money::ZERO);
        for s in summaries {
            let Some(created) = parse_ms(&s.created_at) else {
                continue;
            };
            if s.status == OrderStatus::Cart {
                o.carts_open += 1;
            }
            if !is_order(s.status) || created < week_start {
                continue;
            }
            o.orders_week += 1;
            week = Money(week.0 + s.total_amount.0);
            if created >= day_start {
                o.orders_today += 1;
                today = Money(today.0 + s.total_amount.0);
            }
            if created >= first_hour {
                let slot = usize::try_from((created - first_hour) / HOUR_MS).unwrap_or(usize::MAX);
                if let Some(n) = o.per_hour.get_mut(slot) {
                    *n += 1;
                }
            }
        }
        o.revenue_today = money(today, Some(currency));
        o.revenue_week = money(week, Some(currency));
        o
    }
}

/// A chart's bars: (x, y, width, height) in a 24×100 box per bar, tallest = 100.
pub fn bars(counts: &[u64]) -> Vec<(u64, u64, u64)> {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let h = n * 100 / max;
            (u64::try_from(i).unwrap_or(0) * 10, 100 - h, h)
        })
        .collect()
}

#[cfg(test)]
mod tests;
