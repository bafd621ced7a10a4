//! The operator's pages: overview, deliveries (the outbox), catalog and settings.

use super::model::{money, EventRow, Overview};
use super::pages::{self, query, CatalogRow, OverviewExtra};
use super::{page, posted, see_other, signed_in, Back, ConsoleError, Fields};
use crate::http::AppState;
use crate::service::admin::{parse_state, OutboxDetail};
use crate::service::orders::{OrderFilter, MAX_PAGE};
use crate::store::OutboxState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use rust_decimal::Decimal;
use serde::Deserialize;

/// Most orders the overview adds up (then it says so).
const OVERVIEW_BUDGET: usize = 20_000;
/// Most events a deliveries page lists.
const DELIVERIES_SHOWN: usize = 100;
const DAY_MS: u64 = 24 * 3600 * 1000;

pub async fn overview(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = signed_in(&req, &state)?;
    let now = state.clock.now_ms();
    let mut summaries = Vec::new();
    let mut filter = OrderFilter {
        created_from_ms: Some(now.saturating_sub(7 * DAY_MS)),
        limit: MAX_PAGE,
        ..OrderFilter::default()
    };
    let mut truncated = false;
    loop {
        let found = state.service.list_orders(&filter).await?;
        summaries.extend(found.orders);
        match found.next_cursor {
            Some(c) if summaries.len() < OVERVIEW_BUDGET => filter.cursor = Some(c),
            Some(_) => {
                truncated = true;
                break;
            }
            None => break,
        }
    }
    let shared = state.service.catalog();
    let catalog = shared.current();
    let o = Overview::of(&summaries, now, &catalog.currency);
    let backlog = state.outbox.backlog().await?;
    let fast_calls = |items: &[crate::service::admin::OutboxView]| {
        u64::try_from(
            items
                .iter()
                .filter(|i| i.event_type.starts_with("fast."))
                .count(),
        )
        .unwrap_or(u64::MAX)
    };
    let pending = state
        .outbox
        .list(Some(OutboxState::Pending), crate::service::admin::MAX_LIST)
        .await?;
    let dead = state
        .outbox
        .list(Some(OutboxState::Dead), crate::service::admin::MAX_LIST)
        .await?;
    let h = &state.metrics.outbox_delivery_seconds;
    let delivery_latency = match h.get_sample_count() {
        0 => "no delivery since start".to_string(),
        n => format!(
            "{:.0} ms over {n} deliveries since start",
            h.get_sample_sum() * 1000.0 / n as f64
        ),
    };
    let variants: usize = catalog.products().iter().map(|p| p.variants.len()).sum();
    let extra = OverviewExtra {
        pending: backlog.pending,
        dead: backlog.dead,
        fast_waiting: fast_calls(&pending),
        fast_dead: fast_calls(&dead),
        delivery_latency,
        catalog: format!(
            "{} products, {variants} variants ({}) from {}, {}",
            catalog.products().len(),
            catalog.currency,
            shared.source(),
            catalog_age(shared.read_at_ms(), now)
        ),
        scanned_note: truncated.then(|| {
            format!("Only the first {OVERVIEW_BUDGET} orders of the last 7 days are counted.")
        }),
    };
    Ok(page(
        StatusCode::OK,
        pages::overview(&o, &extra, &session.csrf),
    ))
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    state: Option<String>,
    requeued: Option<u64>,
}

pub async fn deliveries(
    req: HttpRequest,
    q: web::Query<DeliveriesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = signed_in(&req, &state)?;
    let backlog = state.outbox.backlog().await?;
    let which = match q.state.as_deref() {
        Some(s) => s.to_string(),
        None if backlog.dead > 0 => "dead".into(),
        None => "pending".into(),
    };
    let filter = parse_state(&which).back_to("/console/deliveries")?;
    let listed = state.outbox.list(Some(filter), DELIVERIES_SHOWN).await?;
    let mut rows = Vec::with_capacity(listed.len());
    for item in &listed {
        // The attempt log of each listed event (its last answer is shown).
        let detail: OutboxDetail = state.outbox.show(&item.id).await?;
        rows.push(EventRow::of_detail(&detail));
    }
    let notice = q
        .requeued
        .map(|n| format!("{n} dead events requeued; they are pending again."));
    Ok(page(
        StatusCode::OK,
        pages::deliveries(
            &rows,
            &which,
            (backlog.pending, backlog.dead),
            &session.csrf,
            notice.as_deref(),
        ),
    ))
}

#[derive(Debug, Deserialize)]
pub struct DeliveryQuery {
    done: Option<String>,
}

pub async fn delivery(
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<DeliveryQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = signed_in(&req, &state)?;
    let detail = state
        .outbox
        .show(&id)
        .await
        .back_to("/console/deliveries")?;
    let body = serde_json::to_string_pretty(&detail.entry.event).unwrap_or_default();
    let notice = (q.done.as_deref() == Some("retry"))
        .then(|| format!("Requeued: the event is {} again.", detail.entry.state));
    Ok(page(
        StatusCode::OK,
        pages::delivery(
            &EventRow::of_detail(&detail),
            &body,
            &session.csrf,
            notice.as_deref(),
        ),
    ))
}

pub async fn retry(
    req: HttpRequest,
    id: web::Path<String>,
    form: Fields,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    posted(&req, &state, &form)?;
    let path = format!("/console/deliveries/{}", pages::seg(&id));
    state.outbox.retry(&id).await.back_to(&path)?;
    tracing::info!(event = %crate::http::echo::Echo(&id), "console retried an event");
    Ok(see_other(&format!("{path}?done=retry")))
}

pub async fn retry_dead(
    req: HttpRequest,
    form: Fields,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    posted(&req, &state, &form)?;
    let n = state
        .outbox
        .retry_all_dead()
        .await
        .back_to("/console/deliveries")?;
    tracing::info!(requeued = n, "console retried every dead event");
    Ok(see_other(&format!(
        "/console/deliveries?{}",
        query(&[("state", "pending"), ("requeued", &n.to_string())])
    )))
}

/// When the catalog was read: `read at start-up`, or the time and how long ago.
fn catalog_age(read_at_ms: u64, now_ms: u64) -> String {
    if read_at_ms == 0 {
        return "read at start-up".into();
    }
    let minutes = now_ms.saturating_sub(read_at_ms) / 60_000;
    format!(
        "read {} ({minutes} min ago)",
        super::model::time(read_at_ms)
    )
}

fn stock_text(stock: Option<i64>) -> String {
    stock.map_or_else(|| "not tracked".into(), |s| s.to_string())
}

fn price_text(price: Decimal, currency: &str) -> String {
    money(crate::protocol::Money(price), Some(currency))
}

pub async fn catalog(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = signed_in(&req, &state)?;
    let shared = state.service.catalog();
    let catalog = shared.current();
    let cur = catalog.currency.as_str();
    let mut rows = Vec::new();
    for p in catalog.products() {
        rows.push(CatalogRow {
            product: p.id.clone(),
            id: String::new(),
            name: p.name.clone(),
            options: String::new(),
            price: price_text(p.price, cur),
            stock: stock_text(p.stock),
            fulfillment: p
                .fulfillment
                .name()
                .trim_start_matches("FULFILLMENT_MODEL_")
                .to_ascii_lowercase(),
        });
        for v in &p.variants {
            rows.push(CatalogRow {
                product: String::new(),
                id: v.id.clone(),
                name: v.name.clone(),
                options: v
                    .options
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                price: price_text(v.price, cur),
                stock: stock_text(v.stock),
                fulfillment: String::new(),
            });
        }
    }
    let summary = format!(
        "{} products in {}, {} shipping rates, tax {}% by default; from {}, {}.",
        catalog.products().len(),
        cur,
        catalog.shipping.len(),
        catalog.tax.default_rate * Decimal::ONE_HUNDRED,
        shared.source(),
        catalog_age(shared.read_at_ms(), state.clock.now_ms())
    );
    Ok(page(
        StatusCode::OK,
        pages::catalog(&rows, &summary, &session.csrf),
    ))
}

pub async fn settings(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = signed_in(&req, &state)?;
    let mut health = vec![
        (
            "Ready".to_string(),
            if state.readiness.get() {
                "yes"
            } else {
                "no (starting or draining)"
            }
            .to_string(),
        ),
        (
            "Authentication of Fast".to_string(),
            state.auth.scheme().to_string(),
        ),
    ];
    match state.service.store().counts().await {
        Ok(c) => {
            health.push(("Store".into(), "answers".into()));
            health.push(("Orders stored".into(), c.orders.to_string()));
            health.push((
                "Idempotency records".into(),
                c.idempotency_records.to_string(),
            ));
            health.push(("Outbox events".into(), c.outbox_entries.to_string()));
            health.push(("Outbox pending".into(), c.outbox_pending.to_string()));
            health.push(("Outbox dead".into(), c.outbox_dead.to_string()));
        }
        Err(e) => health.push(("Store".into(), format!("unavailable: {e}"))),
    }
    Ok(page(
        StatusCode::OK,
        pages::settings(&state.console.config_text, &health, &session.csrf),
    ))
}
