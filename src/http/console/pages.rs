//! The console's HTML, laid out from the view models (`model.rs`). maud escapes every
//! interpolated value; nothing here uses `PreEscaped` except the doctype. No inline script
//! or style: the Content-Security-Policy allows neither.

use super::model::{bars, EventRow, LineRow, OrderPage, OrderRow, Overview, RefundPreview};
use crate::domain::manage::{CancelReason, RefundReason};
use maud::{html, Markup, DOCTYPE};

/// The CSS file, embedded (served at [`CSS_PATH`]).
pub const CSS: &str = include_str!("console.css");
pub const CSS_PATH: &str = "/console/assets/console.css";

/// A path segment with everything but unreserved characters percent-encoded.
pub fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query value, encoded like a path segment.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", seg(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn order_path(id: &str) -> String {
    format!("/console/orders/{}", seg(id))
}

fn delivery_path(id: &str) -> String {
    format!("/console/deliveries/{}", seg(id))
}

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Orders,
    Deliveries,
    Catalog,
    Settings,
    None,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/console", "Overview"),
    (Nav::Orders, "/console/orders", "Orders"),
    (Nav::Deliveries, "/console/deliveries", "Deliveries"),
    (Nav::Catalog, "/console/catalog", "Catalog"),
    (Nav::Settings, "/console/settings", "Settings"),
];

/// The frame of every page; `csrf` is `None` on pages shown before sign-in.
pub fn layout(title: &str, nav: Nav, csrf: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · fast-seller console" }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "fast-seller" }
                    @if let Some(csrf) = csrf {
                        nav aria-label="Console" {
                            ul {
                                @for (id, href, label) in NAV {
                                    li {
                                        @if *id == nav {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.sign-out method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn sign_in(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        Nav::None,
        None,
        html! {
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            form.card method="post" action="/console/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Admin token" }
                input id="token" name="token" type="password" autocomplete="current-password"
                    required autofocus;
                p.hint { "The value of FAST_SELLER_ADMIN_TOKEN on this server." }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// A status line after an action or a refusal.
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(t) = text {
            p.notice role="status" { (t) }
        }
    }
}

fn stat(label: &str, value: &str) -> Markup {
    html! { div.stat { dt { (label) } dd { (value) } } }
}

/// The overview's figures that do not come from orders.
pub struct OverviewExtra {
    pub pending: u64,
    pub dead: u64,
    pub fast_waiting: u64,
    pub fast_dead: u64,
    pub delivery_latency: String,
    pub catalog: String,
    pub scanned_note: Option<String>,
}

pub fn overview(o: &Overview, x: &OverviewExtra, csrf: &str) -> Markup {
    let chart = bars(&o.per_hour);
    let total_24h: u64 = o.per_hour.iter().sum();
    layout(
        "Overview",
        Nav::Overview,
        Some(csrf),
        html! {
            dl.stats {
                (stat("Orders today", &o.orders_today.to_string()))
                (stat("Revenue today", &o.revenue_today))
                (stat("Orders, 7 days", &o.orders_week.to_string()))
                (stat("Revenue, 7 days", &o.revenue_week))
                (stat("Open carts", &o.carts_open.to_string()))
                (stat("Deliveries pending", &x.pending.to_string()))
                (stat("Deliveries dead", &x.dead.to_string()))
                (stat("Fast calls waiting", &x.fast_waiting.to_string()))
                (stat("Fast calls refused", &x.fast_dead.to_string()))
                (stat("Delivery latency (mean)", &x.delivery_latency))
                (stat("Catalog", &x.catalog))
            }
            @if let Some(note) = &x.scanned_note { p.hint { (note) } }
            h2 { "Orders per hour, last 24 hours" }
            figure {
                svg.chart viewBox="0 0 240 110" role="img"
                    aria-label=(format!("{total_24h} orders in the last 24 hours, by hour")) {
                    @for (i, (x, y, h)) in chart.iter().enumerate() {
                        rect x=(x) y=(y) width="8" height=(h) {
                            title { (o.per_hour.get(i).copied().unwrap_or(0)) " orders" }
                        }
                    }
                    line x1="0" y1="100" x2="240" y2="100" {}
                }
                figcaption { "Each bar is one hour, oldest on the left; " (total_24h) " orders in all." }
            }
            @if x.dead > 0 {
                p { a href="/console/deliveries?state=dead" { "See the dead deliveries" } }
            }
        },
    )
}

/// The orders list's filter, as given.
#[derive(Debug, Clone, Default)]
pub struct OrdersFilter {
    pub status: String,
    pub from: String,
    pub to: String,
    pub q: String,
}

const STATUSES: &[&str] = &[
    "cart",
    "pending",
    "hold",
    "booked",
    "pending_fulfillment",
    "fulfilled",
    "complete",
    "canceled",
    "deleted",
];

pub fn orders(
    rows: &[OrderRow],
    filter: &OrdersFilter,
    next: Option<&str>,
    csrf: &str,
    notice_text: Option<&str>,
) -> Markup {
    layout(
        "Orders",
        Nav::Orders,
        Some(csrf),
        html! {
            (notice(notice_text))
            form.filters method="get" action="/console/orders" role="search" {
                div {
                    label for="q" { "Search" }
                    input id="q" name="q" type="search" value=(filter.q)
                        placeholder="Fast id, seller id or e-mail";
                }
                div {
                    label for="status" { "Status" }
                    select id="status" name="status" {
                        option value="" { "any" }
                        @for s in STATUSES {
                            option value=(s) selected[filter.status == *s] { (s.replace('_', " ")) }
                        }
                    }
                }
                div {
                    label for="from" { "Created from" }
                    input id="from" name="from" type="date" value=(filter.from);
                }
                div {
                    label for="to" { "Created before" }
                    input id="to" name="to" type="date" value=(filter.to);
                }
                button type="submit" { "Filter" }
            }
            @if rows.is_empty() {
                p { "No orders match." }
            } @else {
                div.scroll {
                    table {
                        caption { (rows.len()) " orders on this page" }
                        thead { tr {
                            th scope="col" { "Fast id" } th scope="col" { "Seller id" }
                            th scope="col" { "Status" } th scope="col" { "E-mail" }
                            th scope="col" class="num" { "Total" } th scope="col" { "Created" }
                        } }
                        tbody {
                            @for r in rows {
                                tr {
                                    td { a href=(order_path(&r.id)) { (r.id) } }
                                    td { (r.seller_id) }
                                    td { span class=(format!("badge s-{}", r.status_key)) { (r.status) } }
                                    td { (r.email) }
                                    td.num { (r.total) }
                                    td { (r.created) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(n) = next {
                p { a rel="next" href=(n) { "Next page" } }
            }
        },
    )
}

fn line_inputs(i: usize, l: &LineRow, with_restock: bool) -> Markup {
    html! {
        td {
            input type="hidden" name="line" value=(l.id);
            input type="number" name="qty" min="0" max=(l.ordered) value="0" inputmode="numeric"
                aria-label=(format!("Quantity of line {} ({})", i + 1, l.name));
        }
        @if with_restock {
            td {
                select name="restock" aria-label=(format!("Restock for line {}", i + 1)) {
                    option value="" { "automatic" }
                    option value="cancel" { "cancel (unfulfilled)" }
                    option value="return" { "return" }
                    option value="no_restock" { "no restock" }
                }
            }
        }
    }
}

pub fn order(p: &OrderPage, csrf: &str, notice_text: Option<&str>) -> Markup {
    let path = order_path(&p.id);
    let can_act = p.actions.cancel || p.actions.refund || p.actions.fulfil || p.actions.capture;
    layout(
        &format!("Order {}", p.id),
        Nav::Orders,
        Some(csrf),
        html! {
            (notice(notice_text))
            dl.facts {
                (stat("Status", &p.status))
                (stat("Shopper", &p.shopper))
                (stat("E-mail", &p.email))
                (stat("Seller id", &p.seller_id))
                (stat("Version", &p.version.to_string()))
                (stat("Payment", &p.captured))
                (stat("Created", &p.created))
                (stat("Updated", &p.updated))
            }
            form #actions method="post" action=(format!("{path}/refund/preview")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="version" value=(p.version);
                h2 #lines { "Lines" }
                div.scroll {
                    table {
                        thead { tr {
                            th scope="col" { "Line" } th scope="col" { "Item" }
                            th scope="col" class="num" { "Unit price" }
                            th scope="col" class="num" { "Qty" }
                            th scope="col" class="num" { "Canceled" }
                            th scope="col" class="num" { "Fulfilled" }
                            th scope="col" class="num" { "Refunded" }
                            th scope="col" class="num" { "Total" }
                            @if can_act { th scope="col" { "Act on" } th scope="col" { "Restock" } }
                        } }
                        tbody {
                            @for (i, l) in p.lines.iter().enumerate() {
                                tr {
                                    td { (l.id) }
                                    td { (l.name) @if !l.sku.is_empty() && l.sku != l.name { br; small { (l.sku) } } }
                                    td.num { (l.unit_price) }
                                    td.num { (l.quantity) }
                                    td.num { (l.canceled) }
                                    td.num { (l.fulfilled) }
                                    td.num { (l.refunded) @if !l.refunded_amount.is_empty() && l.refunded > 0 { br; small { (l.refunded_amount) } } }
                                    td.num { (l.total) }
                                    @if can_act { (line_inputs(i, l, true)) }
                                }
                            }
                        }
                    }
                }
                h2 { "Totals" }
                dl.totals {
                    @for (label, amount) in &p.totals { (stat(label, amount)) }
                }
                @if can_act {
                    h2 { "Actions" }
                    p.hint { "Set quantities in the lines above, then preview: nothing changes until you confirm." }
                    div.actions {
                        @if p.actions.refund {
                            fieldset {
                                legend { "Refund" }
                                label for="refund_reason" { "Reason" }
                                select id="refund_reason" name="refund_reason" {
                                    @for r in RefundReason::ALL {
                                        option value=(r.name()) { (short(r.name(), RefundReason::PREFIX)) }
                                    }
                                }
                                label.check { input type="checkbox" name="shipping" value="full"; " Refund the shipping too" }
                                label for="refund_note" { "Note" }
                                input id="refund_note" name="refund_note" type="text" maxlength="500";
                                button type="submit" formaction=(format!("{path}/refund/preview")) { "Preview refund" }
                            }
                        }
                        @if p.actions.cancel {
                            fieldset {
                                legend { "Cancel" }
                                p.hint { "All quantities at 0 cancels the whole order." }
                                label for="cancel_reason" { "Reason" }
                                select id="cancel_reason" name="cancel_reason" {
                                    @for r in CancelReason::ALL {
                                        option value=(r.name()) selected[*r == CancelReason::MerchantInitiated] { (short(r.name(), CancelReason::PREFIX)) }
                                    }
                                }
                                label for="cancel_note" { "Note" }
                                input id="cancel_note" name="cancel_note" type="text" maxlength="500";
                                button type="submit" formaction=(format!("{path}/cancel/preview")) { "Preview cancel" }
                            }
                        }
                        @if p.actions.fulfil {
                            fieldset {
                                legend { "Fulfil" }
                                p.hint { "All quantities at 0 ships everything left." }
                                label for="carrier" { "Carrier" }
                                input id="carrier" name="carrier" type="text" maxlength="100";
                                label for="tracking_number" { "Tracking number" }
                                input id="tracking_number" name="tracking_number" type="text" maxlength="100";
                                label for="estimated_delivery_date" { "Estimated delivery" }
                                input id="estimated_delivery_date" name="estimated_delivery_date" type="date";
                                button type="submit" formaction=(format!("{path}/fulfil/preview")) { "Preview fulfilment" }
                            }
                        }
                        @if p.actions.capture {
                            fieldset {
                                legend { "Capture" }
                                p.hint { "Tells Fast to collect the payment." }
                                button type="submit" formaction=(format!("{path}/capture/preview")) { "Preview capture" }
                            }
                        }
                    }
                }
            }
            h2 #timeline { "Timeline" }
            ol.timeline {
                @for t in &p.timeline {
                    li {
                        time { (t.at) } " "
                        strong { (t.what) } " "
                        span.who { "by " (t.who) }
                        @if !t.detail.is_empty() { br; small { (t.detail) } }
                    }
                }
            }
            h2 #events { "Outbox events" }
            (events_table(&p.events, csrf, false))
        },
    )
}

fn short(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix)
        .replace('_', " ")
        .to_ascii_lowercase()
}

/// Events with their attempts; `with_order` adds the order column (deliveries page).
pub fn events_table(events: &[EventRow], csrf: &str, with_order: bool) -> Markup {
    html! {
        @if events.is_empty() {
            p { "No events." }
        } @else {
            div.scroll {
                table.events {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Event" }
                        @if with_order { th scope="col" { "Order" } }
                        th scope="col" { "State" } th scope="col" class="num" { "Attempts" }
                        th scope="col" { "Last attempt" } th scope="col" { "" }
                    } }
                    tbody {
                        @for e in events {
                            tr {
                                td { (e.sequence) }
                                td { a href=(delivery_path(&e.id)) { (e.event_type) } br; small { (e.id) } }
                                @if with_order { td { a href=(order_path(&e.order_id)) { (e.order_id) } } }
                                td { span class=(format!("badge d-{}", e.state)) { (e.state) }
                                     @if !e.next_attempt.is_empty() { br; small { "next " (e.next_attempt) } } }
                                td.num { (e.attempts) }
                                td {
                                    @if let Some(a) = e.log.last() {
                                        (a.outcome) " " (a.status) " · " (a.latency) br; small { (a.detail) }
                                    }
                                }
                                td {
                                    @if e.state == "dead" {
                                        form method="post" action=(format!("{}/retry", delivery_path(&e.id))) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button type="submit" aria-label=(format!("Retry event {}", e.id)) { "Retry" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The confirmation step of an action: what it will do, and the button that does it.
pub struct Confirm<'a> {
    pub order_id: &'a str,
    pub action: &'a str,
    pub version: u64,
    /// The request the confirm button sends (JSON).
    pub request: &'a str,
    pub key: &'a str,
    pub csrf: &'a str,
    /// What it will do, one sentence per item.
    pub summary: Vec<String>,
    pub refund: Option<&'a RefundPreview>,
}

pub fn confirm(c: &Confirm<'_>) -> Markup {
    let path = order_path(c.order_id);
    layout(
        &format!("Confirm {} of order {}", c.action, c.order_id),
        Nav::Orders,
        Some(c.csrf),
        html! {
            ul.summary { @for s in &c.summary { li { (s) } } }
            @if let Some(r) = c.refund {
                div.scroll {
                    table {
                        caption { "The refund as calculated now" }
                        thead { tr {
                            th scope="col" { "Line" } th scope="col" class="num" { "Qty" }
                            th scope="col" class="num" { "Refundable" } th scope="col" { "Restock" }
                            th scope="col" class="num" { "Excl. tax" } th scope="col" class="num" { "Tax" }
                            th scope="col" class="num" { "Incl. tax" }
                        } }
                        tbody {
                            @for l in &r.lines {
                                tr {
                                    td { (l.line_id) } td.num { (l.quantity) } td.num { (l.refundable) }
                                    td { (l.restock) } td.num { (l.excl_tax) } td.num { (l.tax) }
                                    td.num { (l.incl_tax) }
                                }
                            }
                        }
                    }
                }
                dl.totals { (stat("Shipping incl. tax", &r.shipping)) @for (label, v) in &r.totals { (stat(label, v)) } }
            }
            form method="post" action=(format!("{path}/{}", c.action)) {
                input type="hidden" name="csrf" value=(c.csrf);
                input type="hidden" name="version" value=(c.version);
                input type="hidden" name="key" value=(c.key);
                input type="hidden" name="request" value=(c.request);
                button.primary type="submit" { "Confirm " (c.action) }
                " "
                a href=(path) { "Back to the order" }
            }
        },
    )
}

pub fn deliveries(
    events: &[EventRow],
    state: &str,
    counts: (u64, u64),
    csrf: &str,
    notice_text: Option<&str>,
) -> Markup {
    layout(
        "Deliveries",
        Nav::Deliveries,
        Some(csrf),
        html! {
            (notice(notice_text))
            nav.tabs aria-label="Delivery state" {
                @for (s, label) in [("pending", format!("Pending ({})", counts.0)), ("dead", format!("Dead ({})", counts.1)), ("delivered", "Delivered".to_string())] {
                    @if s == state {
                        a href=(format!("/console/deliveries?state={s}")) aria-current="page" { (label) }
                    } @else {
                        a href=(format!("/console/deliveries?state={s}")) { (label) }
                    }
                }
            }
            @if state == "dead" && counts.1 > 0 {
                form method="post" action="/console/deliveries/retry-dead" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Retry all dead (" (counts.1) ")" }
                }
            }
            (events_table(events, csrf, true))
        },
    )
}

pub fn delivery(e: &EventRow, body: &str, csrf: &str, notice_text: Option<&str>) -> Markup {
    layout(
        &format!("Event {}", e.id),
        Nav::Deliveries,
        Some(csrf),
        html! {
            (notice(notice_text))
            dl.facts {
                (stat("Type", &e.event_type))
                (stat("Order", &e.order_id))
                (stat("Sequence", &e.sequence.to_string()))
                (stat("State", e.state))
                (stat("Created", &e.created))
                (stat("Next attempt", &e.next_attempt))
            }
            p { a href=(order_path(&e.order_id)) { "Open the order" } }
            @if e.state == "dead" {
                form method="post" action=(format!("{}/retry", delivery_path(&e.id))) {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Retry this event" }
                }
            }
            h2 { "Attempts" }
            @if e.log.is_empty() { p { "No attempt yet." } } @else {
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Outcome" } th scope="col" { "Status" } th scope="col" class="num" { "Latency" } th scope="col" { "Answer" } } }
                        tbody { @for a in &e.log { tr { td { (a.at) } td { (a.outcome) } td { (a.status) } td.num { (a.latency) } td { (a.detail) } } } }
                    }
                }
            }
            h2 { "Event as delivered" }
            pre.json { (body) }
        },
    )
}

/// One product or variant row of the catalog page.
pub struct CatalogRow {
    pub product: String,
    pub id: String,
    pub name: String,
    pub options: String,
    pub price: String,
    pub stock: String,
    pub fulfillment: String,
}

pub fn catalog(rows: &[CatalogRow], summary: &str, csrf: &str) -> Markup {
    layout(
        "Catalog",
        Nav::Catalog,
        Some(csrf),
        html! {
            p { (summary) }
            p.hint { "Stock on hand is the catalog's starting stock. Reserved stock and setting stock come with the stock API." }
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Product" } th scope="col" { "Variant / SKU" } th scope="col" { "Name" }
                        th scope="col" { "Options" } th scope="col" class="num" { "Price" }
                        th scope="col" class="num" { "Stock on hand" } th scope="col" { "Fulfilment" }
                    } }
                    tbody {
                        @for r in rows {
                            tr { td { (r.product) } td { (r.id) } td { (r.name) } td { (r.options) }
                                 td.num { (r.price) } td.num { (r.stock) } td { (r.fulfillment) } }
                        }
                    }
                }
            }
        },
    )
}

pub fn settings(config: &str, health: &[(String, String)], csrf: &str) -> Markup {
    layout(
        "Settings",
        Nav::Settings,
        Some(csrf),
        html! {
            h2 { "Health" }
            dl.facts { @for (k, v) in health { (stat(k, v)) } }
            h2 { "Effective configuration" }
            p.hint { "As `fast-seller config check` prints it; secrets are shown as <redacted>." }
            pre.config { (config) }
        },
    )
}

pub fn error(status: u16, message: &str, back: &str, back_label: &str) -> Markup {
    layout(
        &format!("Error {status}"),
        Nav::None,
        None,
        html! {
            p.error role="alert" { (message) }
            p { a href=(back) { (back_label) } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::console::model::{Actions, OrderPage, TimelineEntry};

    fn page_with(shopper: &str) -> OrderPage {
        OrderPage {
            id: "F/1 <x>".into(),
            seller_id: String::new(),
            version: 3,
            status: "Booked".into(),
            status_key: "booked".into(),
            shopper: shopper.into(),
            email: "\"quoted\"@example.com".into(),
            currency: "USD".into(),
            created: String::new(),
            updated: String::new(),
            lines: Vec::new(),
            totals: vec![("Total", "1.00 USD".into())],
            captured: String::new(),
            timeline: vec![TimelineEntry {
                at_ms: 0,
                at: String::new(),
                who: "<i>me</i>".into(),
                what: "Refunded".into(),
                detail: String::new(),
            }],
            events: Vec::new(),
            actions: Actions::of(crate::protocol::OrderStatus::Booked, false),
        }
    }

    #[test]
    fn every_value_is_escaped_and_no_page_has_inline_script_or_style() {
        let html = order(&page_with("<script>alert(1)</script>"), "tok\"en", None).into_string();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;i&gt;me&lt;/i&gt;"));
        assert!(html.contains("&quot;quoted&quot;@example.com"));
        assert!(
            html.contains("value=\"tok&quot;en\""),
            "attribute values escaped"
        );
        assert!(
            html.contains("action=\"/console/orders/F%2F1%20%3Cx%3E/refund/preview\""),
            "ids are percent-encoded in paths"
        );
        for page in [html, sign_in("t", Some("<b>")).into_string()] {
            assert!(!page.contains("<script"), "no script element");
            assert!(!page.contains(" style="), "no inline style (CSP)");
            let handler = page.match_indices(" on").any(|(i, _)| {
                let rest = &page[i + 3..];
                let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
                !name.is_empty() && rest[name.len()..].starts_with('=')
            });
            assert!(!handler, "no inline event handler (CSP)");
        }
    }

    #[test]
    fn paths_and_queries_encode_everything_but_unreserved_characters() {
        assert_eq!(seg("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(seg("a/b?c#d é"), "a%2Fb%3Fc%23d%20%C3%A9");
        assert_eq!(
            query(&[("q", "a&b"), ("status", ""), ("cursor", "F 1")]),
            "q=a%26b&cursor=F%201"
        );
    }
}
