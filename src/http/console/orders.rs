//! The orders pages: the list, one order, and its actions in two steps — a preview that
//! changes nothing (a refund is calculated by the refund-calculate service), then the
//! confirmation, which sends the previewed request to the same service call as the admin API
//! with the order's version as `If-Match` and a fresh `Idempotency-Key` (a double click
//! applies it once).

use super::model::{money, OrderPage, OrderRow, RefundPreview};
use super::pages::{self, order_path, query, Confirm, OrdersFilter};
use super::{field, page, posted, see_other, signed_in, Back, ConsoleError, Fields};
use crate::domain::manage::RefundCalculation;
use crate::http::admin::{parse_status, parse_time};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::service::orders::{OrderCall, OrderFilter};
use crate::service::ServiceError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Orders per page of the list.
const PAGE_SIZE: usize = 50;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub async fn list(
    req: HttpRequest,
    q: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = signed_in(&req, &state)?;
    let back = "/console/orders";
    let filter = OrderFilter {
        status: given(&q.status)
            .map(parse_status)
            .transpose()
            .back_to(back)?,
        created_from_ms: given(&q.from)
            .map(|t| parse_time("from", t))
            .transpose()
            .back_to(back)?,
        created_to_ms: given(&q.to)
            .map(|t| parse_time("to", t))
            .transpose()
            .back_to(back)?,
        text: given(&q.q).map(str::to_owned),
        cursor: given(&q.cursor).map(str::to_owned),
        limit: PAGE_SIZE,
    };
    let found = state.service.list_orders(&filter).await?;
    let rows: Vec<OrderRow> = found.orders.iter().map(OrderRow::of).collect();
    let shown = OrdersFilter {
        status: given(&q.status).unwrap_or_default().to_ascii_lowercase(),
        from: given(&q.from).unwrap_or_default().to_string(),
        to: given(&q.to).unwrap_or_default().to_string(),
        q: given(&q.q).unwrap_or_default().to_string(),
    };
    let next = found.next_cursor.as_deref().map(|c| {
        let qs = query(&[
            ("status", &shown.status),
            ("from", &shown.from),
            ("to", &shown.to),
            ("q", &shown.q),
            ("cursor", c),
        ]);
        format!("/console/orders?{qs}")
    });
    Ok(page(
        StatusCode::OK,
        pages::orders(&rows, &shown, next.as_deref(), &session.csrf, None),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<ShowQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = signed_in(&req, &state)?;
    let detail = state
        .service
        .order_detail(&id)
        .await
        .back_to("/console/orders")?;
    let events = state
        .outbox
        .for_order(&detail.id, detail.created_at_ms)
        .await?;
    let view = OrderPage::of(&detail, &events);
    let notice = q.done.as_deref().and_then(Action::parse).map(|a| {
        format!(
            "{} done: the order is now {} (version {}).",
            a.title(),
            view.status,
            view.version
        )
    });
    Ok(page(
        StatusCode::OK,
        pages::order(&view, &session.csrf, notice.as_deref()),
    ))
}

/// The merchant's actions on an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Cancel,
    Refund,
    Fulfil,
    Capture,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "cancel" => Some(Action::Cancel),
            "refund" => Some(Action::Refund),
            "fulfil" => Some(Action::Fulfil),
            "capture" => Some(Action::Capture),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Cancel => "cancel",
            Action::Refund => "refund",
            Action::Fulfil => "fulfil",
            Action::Capture => "capture",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Action::Cancel => "Cancel",
            Action::Refund => "Refund",
            Action::Fulfil => "Fulfilment",
            Action::Capture => "Capture",
        }
    }
}

fn action_of(text: &str) -> Result<Action, ConsoleError> {
    Action::parse(text).ok_or_else(|| ConsoleError::Api {
        error: ApiError::NoRoute(format!(
            "/console/orders/…/{}",
            crate::http::echo::Echo(text)
        )),
        back: "/console/orders".into(),
    })
}

/// A quantity picked for one line in the order page's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub line_id: String,
    pub quantity: i64,
    pub restock: Option<String>,
}

/// The lines given a quantity above 0: the form's `line`, `qty` and `restock` fields, in
/// order (one of each per line; `restock` only where offered).
pub fn picks(form: &[(String, String)]) -> Result<Vec<Pick>, ServiceError> {
    let all = |name: &str| -> Vec<&str> {
        form.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let (lines, qtys, restocks) = (all("line"), all("qty"), all("restock"));
    let mut picked = Vec::new();
    for (i, (line, qty)) in lines.iter().zip(&qtys).enumerate() {
        let qty = qty.trim();
        let quantity: i64 = if qty.is_empty() {
            0
        } else {
            qty.parse().ok().filter(|q| *q >= 0).ok_or_else(|| {
                ServiceError::invalid(
                    "invalid_quantity",
                    format!(
                        "line {}: `{}` is not a quantity",
                        i + 1,
                        crate::http::echo::Echo(qty)
                    ),
                )
            })?
        };
        if quantity > 0 {
            picked.push(Pick {
                line_id: (*line).to_string(),
                quantity,
                restock: restocks
                    .get(i)
                    .map(|r| r.trim())
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned),
            });
        }
    }
    Ok(picked)
}

fn text_field(form: &[(String, String)], name: &str) -> Option<String> {
    field(form, name)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The body the action's service call takes, from the order page's form (the same JSON the
/// admin API takes).
pub fn request_for(action: Action, form: &[(String, String)]) -> Result<Value, ServiceError> {
    let picked = picks(form)?;
    let mut body = Map::new();
    let lines = |with_restock: bool| -> Value {
        picked
            .iter()
            .map(|p| {
                let mut l = json!({"line_id": p.line_id, "quantity": p.quantity});
                if let (true, Some(r), Some(obj)) = (with_restock, &p.restock, l.as_object_mut()) {
                    obj.insert("restock".into(), json!(r));
                }
                l
            })
            .collect()
    };
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            body.insert(k.into(), Value::String(v));
        }
    };
    match action {
        Action::Refund => {
            put("reason", text_field(form, "refund_reason"));
            put("note", text_field(form, "refund_note"));
            put("shipping", text_field(form, "shipping"));
            body.insert("lines".into(), lines(true));
        }
        Action::Cancel => {
            put("reason", text_field(form, "cancel_reason"));
            put("note", text_field(form, "cancel_note"));
            if !picked.is_empty() {
                body.insert("lines".into(), lines(false));
            }
        }
        Action::Fulfil => {
            put("carrier", text_field(form, "carrier"));
            put("tracking_number", text_field(form, "tracking_number"));
            put(
                "estimated_delivery_date",
                text_field(form, "estimated_delivery_date"),
            );
            if !picked.is_empty() {
                body.insert("lines".into(), lines(false));
            }
        }
        Action::Capture => {}
    }
    body.insert("source".into(), json!("console"));
    Ok(Value::Object(body))
}

fn version_of(form: &[(String, String)]) -> Result<u64, ServiceError> {
    field(form, "version")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            ServiceError::invalid("invalid_if_match", "the form lost the order's version")
        })
}

fn encode(v: &Value) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(v).map_err(|e| ServiceError::Internal(format!("encoding: {e}")))
}

/// What a confirmation says the action will do.
pub fn summary(action: Action, request: &Value, total: &str) -> Vec<String> {
    let lines: Vec<String> = request
        .get("lines")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    format!(
                        "{} × line {}",
                        l.get("quantity").and_then(Value::as_i64).unwrap_or(0),
                        l.get("line_id").and_then(Value::as_str).unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let text = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or("");
    let mut out = match action {
        Action::Cancel if lines.is_empty() => {
            vec![format!(
                "Cancel the whole order (total {total}); Fast is asked to cancel it."
            )]
        }
        Action::Cancel => vec![format!("Cancel {}.", lines.join(", "))],
        Action::Refund => vec![format!(
            "Refund {}{}.",
            if lines.is_empty() {
                "no lines".into()
            } else {
                lines.join(", ")
            },
            if text("shipping") == "full" {
                " and the shipping"
            } else {
                ""
            }
        )],
        Action::Fulfil if lines.is_empty() => vec!["Ship every unit left.".into()],
        Action::Fulfil => vec![format!("Ship {}.", lines.join(", "))],
        Action::Capture => vec![format!(
            "Ask Fast to collect the payment (order total {total})."
        )],
    };
    for (label, key) in [
        ("Reason", "reason"),
        ("Note", "note"),
        ("Carrier", "carrier"),
        ("Tracking number", "tracking_number"),
        ("Estimated delivery", "estimated_delivery_date"),
    ] {
        if !text(key).is_empty() {
            out.push(format!("{label}: {}", text(key)));
        }
    }
    out
}

pub async fn preview(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: Fields,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = posted(&req, &state, &form)?;
    let (id, action) = path.into_inner();
    let back = order_path(&id);
    let action = action_of(&action)?;
    let version = version_of(&form).back_to(&back)?;
    let mut request = request_for(action, &form).back_to(&back)?;
    let detail = state.service.order_detail(&id).await.back_to(&back)?;
    let total = money(
        detail.order.total_amount.unwrap_or_default(),
        detail.order.currency_code.as_deref(),
    );
    let mut refund = None;
    if action == Action::Refund {
        #[derive(Deserialize)]
        struct Calculated {
            calculation: RefundCalculation,
        }
        let body = encode(&request).back_to(&back)?;
        let answer = state
            .service
            .refund_calculate(OrderCall {
                order: &id,
                if_match: Some(version),
                idempotency_key: None,
                default_source: "console",
                body: &body,
            })
            .await
            .back_to(&back)?;
        let calc = serde_json::from_slice::<Calculated>(&answer)
            .map_err(|e| ServiceError::Internal(format!("refund calculation: {e}")))
            .back_to(&back)?
            .calculation;
        refund = Some(RefundPreview::of(&calc));
        if let Some(obj) = request.as_object_mut() {
            obj.insert(
                "calculation".into(),
                serde_json::to_value(&calc)
                    .map_err(|e| ServiceError::Internal(format!("encoding: {e}")))
                    .back_to(&back)?,
            );
        }
    }
    let mut summary = summary(action, &request, &total);
    if let Some(r) = &refund {
        summary.push(format!("Total to refund: {}", r.total));
    }
    let request_text = serde_json::to_string(&request)
        .map_err(|e| ServiceError::Internal(format!("encoding: {e}")))
        .back_to(&back)?;
    let key = super::session::nonce();
    Ok(page(
        StatusCode::OK,
        pages::confirm(&Confirm {
            order_id: &detail.id,
            action: action.name(),
            version,
            request: &request_text,
            key: &key,
            csrf: &session.csrf,
            summary,
            refund: refund.as_ref(),
        }),
    ))
}

pub async fn confirm(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: Fields,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    posted(&req, &state, &form)?;
    let (id, action) = path.into_inner();
    let back = order_path(&id);
    let action = action_of(&action)?;
    let version = version_of(&form).back_to(&back)?;
    let body = field(&form, "request")
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let key = text_field(&form, "key");
    let call = OrderCall {
        order: &id,
        if_match: Some(version),
        idempotency_key: key.as_deref(),
        default_source: "console",
        body: &body,
    };
    let service = &state.service;
    let reply = match action {
        Action::Cancel => service.cancel_order(call).await,
        Action::Refund => service.refund_order(call).await,
        Action::Fulfil => service.fulfil_order(call).await,
        Action::Capture => service.capture_order(call).await,
    }
    .back_to(&back)?;
    tracing::info!(
        action = action.name(),
        version = reply.version,
        "console action"
    );
    Ok(see_other(&format!("{back}?done={}", action.name())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_lines_given_a_quantity_are_picked_with_their_restock() {
        let f = form(&[
            ("line", "L1"),
            ("qty", "0"),
            ("restock", "return"),
            ("line", "L2"),
            ("qty", "2"),
            ("restock", ""),
            ("line", "L3"),
            ("qty", " 1 "),
            ("restock", "no_restock"),
        ]);
        assert_eq!(
            picks(&f).unwrap(),
            vec![
                Pick {
                    line_id: "L2".into(),
                    quantity: 2,
                    restock: None
                },
                Pick {
                    line_id: "L3".into(),
                    quantity: 1,
                    restock: Some("no_restock".into())
                },
            ]
        );
        let bad = form(&[("line", "L1"), ("qty", "-1")]);
        assert_eq!(picks(&bad).unwrap_err().code(), "invalid_quantity");
        let bad = form(&[("line", "L1"), ("qty", "two")]);
        assert_eq!(picks(&bad).unwrap_err().code(), "invalid_quantity");
    }

    #[test]
    fn requests_carry_what_the_admin_api_takes() {
        let f = form(&[
            ("line", "L1"),
            ("qty", "1"),
            ("restock", "cancel"),
            ("refund_reason", "REFUND_REASON_CODE_COURTESY"),
            ("refund_note", ""),
            ("cancel_reason", "CANCEL_REASON_CODE_NO_STOCK"),
            ("shipping", "full"),
        ]);
        assert_eq!(
            request_for(Action::Refund, &f).unwrap(),
            json!({"reason": "REFUND_REASON_CODE_COURTESY", "shipping": "full",
                   "lines": [{"line_id": "L1", "quantity": 1, "restock": "cancel"}],
                   "source": "console"})
        );
        assert_eq!(
            request_for(Action::Cancel, &f).unwrap(),
            json!({"reason": "CANCEL_REASON_CODE_NO_STOCK",
                   "lines": [{"line_id": "L1", "quantity": 1}], "source": "console"})
        );
        let whole = form(&[("line", "L1"), ("qty", "0"), ("cancel_reason", "OTHER")]);
        assert_eq!(
            request_for(Action::Cancel, &whole).unwrap(),
            json!({"reason": "OTHER", "source": "console"})
        );
        assert_eq!(
            request_for(Action::Capture, &f).unwrap(),
            json!({"source": "console"})
        );
    }

    #[test]
    fn the_confirmation_says_what_will_happen() {
        let whole = json!({"reason": "CANCEL_REASON_CODE_OTHER"});
        assert_eq!(
            summary(Action::Cancel, &whole, "10.00 USD"),
            vec![
                "Cancel the whole order (total 10.00 USD); Fast is asked to cancel it.".to_string(),
                "Reason: CANCEL_REASON_CODE_OTHER".to_string()
            ]
        );
        let refund = json!({"lines": [{"line_id": "L1", "quantity": 2}], "shipping": "full"});
        assert_eq!(
            summary(Action::Refund, &refund, "")[0],
            "Refund 2 × line L1 and the shipping."
        );
        assert_eq!(
            summary(Action::Fulfil, &json!({}), "")[0],
            "Ship every unit left."
        );
    }
}
