//! Merchant order management, shared by `/admin/v1/orders…` and `fast-seller orders …`:
//! list and show orders, cancel, refund (calculate, then create), fulfil and capture.
//!
//! Every action runs like one of Fast's mutations: under the order's lock, at most once per
//! `Idempotency-Key`, and committed in one durable store commit that holds the new order
//! snapshot, its management ledger, the idempotency record, the Fast call
//! (`fast.cancel`, `fast.refund`, `fast.business_event`: the outbox's Fast client sends
//! them) and the event for the commerce backend (`order.canceled`, `order.refunded`,
//! `order.fulfilled`). The order's store version is the version the merchant sees: every
//! change bumps it (Fast's updates too), and an `If-Match` that is not the current version is
//! refused with 409 before anything is computed.

use super::idempotency::Stamp;
use super::records::{encode, Loaded};
use super::unit_of_work::{Begin, Change};
use super::{Reply, Service, ServiceError};
use crate::clock::rfc3339_ms;
use crate::domain::manage::{
    self, status_of, Actor, BusinessEventBody, CancelRequest, FulfilRequest, Ledger, Payment,
    RefundCalculation, RefundRequest,
};
use crate::metrics::Metrics;
use crate::protocol::{
    parse_known, FastCall, FastOrder, Fields, Id, Money, OrderLookup, OrderStatus, Parsed,
};
use crate::store::Commit;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most orders one page lists.
pub const MAX_PAGE: usize = 500;
/// Most stored orders one listing call looks at (the page then ends early, with a cursor).
const SCAN_BUDGET: usize = 5_000;
const SCAN_BATCH: usize = 200;

/// Which orders a listing returns.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    /// Created at or after (ms since the epoch).
    pub created_from_ms: Option<u64>,
    /// Created before (ms since the epoch).
    pub created_to_ms: Option<u64>,
    /// Case-insensitive text in the email, the seller id or the Fast id.
    pub text: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: usize,
}

/// One order in a listing.
#[derive(Debug, Serialize)]
pub struct OrderSummary {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    pub total_amount: Money,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Ids of stored orders this page passed over because they could not be decoded (also
    /// logged and counted in `fast_seller_undecodable_records_total`); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// An order as the merchant sees it: the snapshot, its version and its management ledger
/// (quantities per line, cancellations, refunds, fulfilments, capture and the audit log).
#[derive(Debug, Serialize)]
struct OrderView<'a> {
    id: &'a str,
    version: u64,
    status: OrderStatus,
    created_at: String,
    updated_at: String,
    order: &'a FastOrder,
    /// What Fast charged and where every cent of it went (kept, canceled, refunded).
    payment: Payment,
    management: &'a Ledger,
}

/// One order as the console shows it: the same content as [`Service::show_order`]'s
/// answer, typed instead of encoded.
#[derive(Debug, Clone)]
pub struct OrderDetail {
    pub id: String,
    pub version: u64,
    pub status: OrderStatus,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub order: FastOrder,
    pub ledger: Ledger,
}

/// The answer to an action: the updated order plus the action's own record.
#[derive(Serialize)]
struct ActionAnswer<'a> {
    #[serde(flatten)]
    view: OrderView<'a>,
    result: Value,
}

/// A merchant action on one order, as the HTTP layer or the CLI hands it over.
#[derive(Debug, Clone, Copy)]
pub struct OrderCall<'a> {
    /// Fast order id or seller id.
    pub order: &'a str,
    /// The version the merchant last saw (`If-Match`).
    pub if_match: Option<u64>,
    pub idempotency_key: Option<&'a str>,
    /// Who acts, when the body does not say (`admin-api`, `cli`).
    pub default_source: &'a str,
    pub body: &'a [u8],
}

/// The create step of a refund: the request, plus what the merchant saw in the calculate
/// step (the whole calculation, or just its total).
#[derive(Debug, Deserialize)]
struct RefundCreateBody {
    #[serde(flatten)]
    request: RefundRequest,
    #[serde(default)]
    calculation: Option<RefundCalculation>,
    #[serde(default)]
    amount: Option<Money>,
}

/// What the merchant saw in the calculate step.
enum Seen {
    Calculation(RefundCalculation),
    Total(Money),
}

#[derive(Debug, Default, Deserialize)]
struct CaptureBody {
    #[serde(flatten)]
    actor: Actor,
}

/// What a domain action produced, ready to commit.
struct Applied {
    order: FastOrder,
    ledger: Ledger,
    /// Fast's call and its body, if the action makes one.
    fast: Option<(FastCall, Value)>,
    /// The commerce backend's event type.
    event: Option<&'static str>,
    /// The action's record, for the answer and the backend event.
    result: Value,
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, ServiceError> {
    serde_json::to_value(value).map_err(|e| ServiceError::Internal(format!("encoding: {e}")))
}

const CANCEL_FIELDS: Fields = Fields {
    also: &[],
    top: &[
        "lines",
        "reason",
        "seed_code",
        "sub_reason",
        "note",
        "employee_id",
        "source",
    ],
    line: &["line_id", "quantity"],
};
const REFUND_FIELDS: Fields = Fields {
    also: &[],
    top: &[
        "lines",
        "shipping",
        "reason",
        "method",
        "note",
        "external_refund_id",
        "employee_id",
        "source",
    ],
    line: &["line_id", "quantity", "restock", "reason"],
};
const REFUND_CREATE_FIELDS: Fields = Fields {
    also: &["calculation", "amount"],
    ..REFUND_FIELDS
};
const FULFIL_FIELDS: Fields = Fields {
    also: &[],
    top: &[
        "lines",
        "carrier",
        "tracking_number",
        "estimated_delivery_date",
        "employee_id",
        "source",
    ],
    line: &["line_id", "quantity"],
};
const CAPTURE_FIELDS: Fields = Fields {
    also: &[],
    top: &["employee_id", "source"],
    line: &[],
};

/// Fills the actor's source when the caller did not name one.
fn with_source(actor: &mut Actor, default_source: &str) {
    if actor.source.as_deref().is_none_or(|s| s.trim().is_empty()) {
        actor.source = Some(default_source.to_string());
    }
}

impl Loaded {
    fn view(&self) -> OrderView<'_> {
        OrderView {
            id: &self.record.id,
            version: self.record.version,
            status: status_of(&self.stored.order),
            created_at: rfc3339_ms(self.stored.created_at_ms),
            updated_at: rfc3339_ms(self.stored.updated_at_ms),
            order: &self.stored.order,
            payment: manage::payment(&self.stored.order, &self.stored.ledger),
            management: &self.stored.ledger,
        }
    }

    /// The ledger as the domain works on it: its version is the order's store version, so
    /// the domain's bump yields the version the commit writes.
    fn ledger(&self) -> Ledger {
        Ledger {
            version: self.record.version,
            ..self.stored.ledger.clone()
        }
    }

    fn summary(&self) -> OrderSummary {
        let order = &self.stored.order;
        OrderSummary {
            id: self.record.id.clone(),
            external_id: order.external_id.clone(),
            status: status_of(order),
            email: order.email(),
            currency_code: order.currency_code.clone(),
            total_amount: order.total_amount.unwrap_or_default(),
            version: self.record.version,
            created_at: rfc3339_ms(self.stored.created_at_ms),
            updated_at: rfc3339_ms(self.stored.updated_at_ms),
        }
    }

    fn matches(&self, filter: &OrderFilter) -> bool {
        let order = &self.stored.order;
        let created = self.stored.created_at_ms;
        if filter.status.is_some_and(|s| s != status_of(order))
            || filter.created_from_ms.is_some_and(|from| created < from)
            || filter.created_to_ms.is_some_and(|to| created >= to)
        {
            return false;
        }
        let Some(text) = filter.text.as_deref().map(str::to_lowercase) else {
            return true;
        };
        let mut fields = [
            order.email(),
            order.external_id.clone(),
            Some(self.record.id.clone()),
        ]
        .into_iter()
        .flatten();
        fields.any(|f| f.to_lowercase().contains(&text))
    }
}

impl Service {
    /// Orders matching `filter`, by Fast id, a page at a time.
    pub async fn list_orders(&self, filter: &OrderFilter) -> Result<OrderPage, ServiceError> {
        let limit = filter.limit.clamp(1, MAX_PAGE);
        let mut cursor = filter.cursor.clone();
        let mut orders = Vec::new();
        let mut skipped = Vec::new();
        let mut scanned = 0;
        loop {
            let batch = self
                .store
                .orders_after(cursor.as_deref(), SCAN_BATCH)
                .await?;
            let exhausted = batch.len() < SCAN_BATCH;
            for record in batch {
                scanned += 1;
                cursor = Some(record.id.clone());
                let id = record.id.clone();
                // One record that cannot be read must not hide every other order.
                let loaded = match Loaded::decode(record) {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        tracing::error!(order_id = %id, error = %e, "undecodable order skipped in a listing");
                        Metrics::inc(&self.metrics.undecodable, &["order"]);
                        skipped.push(id);
                        continue;
                    }
                };
                if loaded.matches(filter) {
                    orders.push(loaded.summary());
                    if orders.len() == limit {
                        return Ok(OrderPage {
                            orders,
                            next_cursor: cursor,
                            skipped,
                        });
                    }
                }
            }
            if exhausted || scanned >= SCAN_BUDGET {
                return Ok(OrderPage {
                    orders,
                    next_cursor: cursor.filter(|_| !exhausted),
                    skipped,
                });
            }
        }
    }

    /// One order with its management state and history.
    pub async fn show_order(&self, order: &str) -> Result<Reply, ServiceError> {
        let loaded = self.find(&admin_lookup(order)).await?;
        Ok(Reply {
            version: Some(loaded.record.version),
            ..Reply::ok(encode(&loaded.view())?)
        })
    }

    /// One order with its management ledger, typed (the console renders it).
    pub async fn order_detail(&self, order: &str) -> Result<OrderDetail, ServiceError> {
        let loaded = self.find(&admin_lookup(order)).await?;
        Ok(OrderDetail {
            status: status_of(&loaded.stored.order),
            created_at_ms: loaded.stored.created_at_ms,
            updated_at_ms: loaded.stored.updated_at_ms,
            id: loaded.record.id,
            version: loaded.record.version,
            order: loaded.stored.order,
            ledger: loaded.stored.ledger,
        })
    }

    /// A refund's amounts, per line and for shipping, without recording anything.
    pub async fn refund_calculate(&self, call: OrderCall<'_>) -> Result<Vec<u8>, ServiceError> {
        let req: RefundRequest = parse_known(call.body, &REFUND_FIELDS)?.request;
        let loaded = self.find(&admin_lookup(call.order)).await?;
        manage::check_version(&loaded.ledger(), call.if_match)?;
        let calculation = manage::refund_calculate(&loaded.stored.order, &loaded.ledger(), &req)?;
        encode(&serde_json::json!({
            "order_id": loaded.record.id,
            "version": loaded.record.version,
            "calculation": calculation,
        }))
    }

    pub async fn cancel_order(&self, call: OrderCall<'_>) -> Result<Reply, ServiceError> {
        let Parsed {
            request: mut req,
            value,
        } = parse_known::<CancelRequest>(call.body, &CANCEL_FIELDS)?;
        with_source(&mut req.actor, call.default_source);
        self.act("cancel", call, &value, |order, ledger, now| {
            let (order, ledger, outcome) = manage::cancel(order, ledger, &req, now)?;
            let fast = outcome
                .fast_cancel
                .as_ref()
                .map(|body| to_value(body).map(|b| (FastCall::Cancel, b)))
                .transpose()?;
            Ok(Applied {
                order,
                ledger,
                fast,
                event: Some("order.canceled"),
                result: to_value(&outcome)?,
            })
        })
        .await
    }

    pub async fn refund_order(&self, call: OrderCall<'_>) -> Result<Reply, ServiceError> {
        let Parsed {
            request: mut req,
            value,
        } = parse_known::<RefundCreateBody>(call.body, &REFUND_CREATE_FIELDS)?;
        with_source(&mut req.request.actor, call.default_source);
        let seen = match (req.calculation.take(), req.amount) {
            (Some(calc), _) => Seen::Calculation(calc),
            (None, Some(total)) => Seen::Total(total),
            (None, None) => {
                return Err(ServiceError::invalid(
                    "refund_not_calculated",
                    "give `calculation` (as answered by refunds/calculate) or its total \
                     `amount`: a refund is created only as calculated",
                ))
            }
        };
        self.act("refund", call, &value, |order, ledger, now| {
            let expected = match &seen {
                Seen::Calculation(calc) => calc.clone(),
                Seen::Total(total) => {
                    manage::calculation_for_total(order, ledger, &req.request, *total)?
                }
            };
            let refund_id = uuid::Uuid::now_v7().to_string();
            let (order, ledger, refund) =
                manage::refund_create(order, ledger, &req.request, &expected, &refund_id, now)?;
            let body = to_value(&manage::fast_refund_body(&order, &refund)?)?;
            Ok(Applied {
                order,
                ledger,
                fast: Some((FastCall::Refund, body)),
                event: Some("order.refunded"),
                result: to_value(&refund)?,
            })
        })
        .await
    }

    pub async fn fulfil_order(&self, call: OrderCall<'_>) -> Result<Reply, ServiceError> {
        let Parsed {
            request: mut req,
            value,
        } = parse_known::<FulfilRequest>(call.body, &FULFIL_FIELDS)?;
        with_source(&mut req.actor, call.default_source);
        self.act("fulfil", call, &value, |order, ledger, now| {
            let id = uuid::Uuid::now_v7().to_string();
            let (order, ledger, outcome) = manage::fulfil(order, ledger, &req, now, &id)?;
            Ok(Applied {
                order,
                ledger,
                fast: Some((FastCall::BusinessEvent, to_value(&outcome.event)?)),
                event: Some("order.fulfilled"),
                result: to_value(&outcome)?,
            })
        })
        .await
    }

    pub async fn capture_order(&self, call: OrderCall<'_>) -> Result<Reply, ServiceError> {
        let Parsed {
            request: mut req,
            value,
        } = if call.body.iter().all(u8::is_ascii_whitespace) {
            Parsed {
                request: CaptureBody::default(),
                value: Value::Null,
            }
        } else {
            parse_known(call.body, &CAPTURE_FIELDS)?
        };
        with_source(&mut req.actor, call.default_source);
        self.act("capture", call, &value, |order, ledger, now| {
            let (order, ledger, event): (_, _, BusinessEventBody) =
                manage::capture(order, ledger, &req.actor, now)?;
            Ok(Applied {
                order,
                ledger,
                fast: Some((FastCall::BusinessEvent, to_value(&event)?)),
                event: None,
                result: to_value(&event)?,
            })
        })
        .await
    }

    /// One action, at most once per idempotency key, committed with its outbox entries.
    async fn act(
        &self,
        action: &'static str,
        call: OrderCall<'_>,
        value: &Value,
        f: impl Fn(&FastOrder, &Ledger, u64) -> Result<Applied, ServiceError>,
    ) -> Result<Reply, ServiceError> {
        let endpoint = format!("admin.{action}:{}", call.order);
        let stamp = Stamp::merchant(&endpoint, call.idempotency_key, value)?;
        let (stamp, _slot) = match self.begin(stamp).await? {
            Begin::Replay(reply) => return Ok(with_version(reply)),
            Begin::Run(stamp, slot) => (stamp, slot),
        };
        let result = self
            .modify(&admin_lookup(call.order), stamp.as_ref(), |loaded| {
                manage::check_version(&loaded.ledger(), call.if_match)?;
                let now = self.clock.now_ms();
                let applied = f(&loaded.stored.order, &loaded.ledger(), now)?;
                self.action_change(loaded, applied, now)
            })
            .await;
        if let Ok(reply) = &result {
            tracing::info!(action, version = reply.version, "order managed");
        }
        self.finish(stamp.as_ref(), result).await.map(with_version)
    }

    /// The change an applied action makes, answered with the order as it will be stored.
    fn action_change(
        &self,
        loaded: &Loaded,
        applied: Applied,
        now: u64,
    ) -> Result<Change, ServiceError> {
        let id = loaded.record.id.as_str();
        let version = loaded.record.version + 1;
        let ledger = Ledger {
            version,
            ..applied.ledger
        };
        let mut stored = loaded.revised(applied.order, ledger, now);
        let mut outbox = Vec::new();
        if let Some((call, body)) = applied.fast {
            outbox.push(stored.fast_call(id, call, body, now)?);
        }
        if let Some(event_type) = applied.event {
            outbox.push(stored.backend_event(id, event_type, now, Some(&applied.result))?);
        }
        let entered =
            Some(status_of(&stored.order)).filter(|s| *s != status_of(&loaded.stored.order));
        let write = loaded.write(&stored)?;
        let after = Loaded {
            stored,
            record: write.record.clone(),
        };
        let body = encode(&ActionAnswer {
            view: after.view(),
            result: applied.result,
        })?;
        Ok(Change {
            commit: Commit {
                order: Some(write),
                idempotency: None,
                outbox,
            },
            entered,
            reply: Reply {
                version: Some(version),
                ..Reply::ok(body)
            },
        })
    }
}

/// A stored answer to an action carries the order's version at its top level.
fn with_version(reply: Reply) -> Reply {
    #[derive(Deserialize)]
    struct Versioned {
        version: u64,
    }
    if reply.version.is_some() {
        return reply;
    }
    let version = serde_json::from_slice::<Versioned>(&reply.body)
        .ok()
        .map(|v| v.version);
    Reply { version, ..reply }
}

/// Finds a merchant-named order by Fast id, then by seller id.
fn admin_lookup(order: &str) -> OrderLookup {
    OrderLookup {
        is_cart: None,
        order_id: Some(Id(order.to_string())),
        external_order_id: None,
        external_id: Some(order.to_string()),
    }
}
