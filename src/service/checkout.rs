//! Fast's four calls: create a cart, read an order (or the shipping zones), merge an
//! incremental update, delete. Each is parsed once (`protocol`), run at most once per
//! `request_id` and committed in one unit of work.

use super::idempotency::Stamp;
use super::records::{encode, Loaded, StoredOrder};
use super::unit_of_work::{retry_on_conflict, Begin, Change};
use super::{Caller, Reply, Service, ServiceError};
use crate::domain::ErrorKind;
use crate::domain::{self, IdSource};
use crate::metrics::Metrics;
use crate::protocol::{
    CreateRequest, DeleteRequest, EntityType, FastOrder, FastRequest, Header, Id, OrderResponse,
    OrderResponseSegment, OrderStatus, ReadRequest, SegmentStatus, ShippingZone,
    ShippingZonesResponse, ShippingZonesSegment, UpdateRequest, UserResponse, UserSegment, Verb,
};
use crate::store::Commit;
use serde_json::Value;
use tracing::Span;

struct UuidIds;

impl IdSource for UuidIds {
    fn new_id(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

impl Caller {
    /// The app id in the token must match the request's `app_id` when both are present.
    fn check(&self, header: &Header) -> Result<(), ServiceError> {
        match (&self.app_id, &header.app_id) {
            (Some(authenticated), Some(claimed)) if authenticated != claimed => {
                Err(ServiceError::Unauthenticated(
                    "app id mismatch: the request's app_id is not the token's audience".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

fn require_orders(header: &Header, verb: &str) -> Result<(), ServiceError> {
    match header.entity() {
        EntityType::Order => Ok(()),
        other => Err(ServiceError::Unimplemented(format!(
            "{verb} of {} is not supported",
            other.name()
        ))),
    }
}

fn order_response(
    request_id: Option<&Id>,
    order: &FastOrder,
    status: Option<&[SegmentStatus]>,
) -> Result<Vec<u8>, ServiceError> {
    encode(&OrderResponse {
        entity_type: EntityType::Order,
        request_id,
        order: OrderResponseSegment { order, status },
    })
}

fn record_ids(header: &Header, order_id: Option<&str>) {
    let span = Span::current();
    if let Some(r) = &header.request_id {
        span.record("request_id", r.as_str());
    }
    if let Some(o) = order_id.filter(|o| !o.is_empty()) {
        span.record("order_id", o);
    }
}

impl Service {
    /// Runs one Fast call on its raw body, for an authenticated `caller`.
    pub async fn handle(
        &self,
        verb: Verb,
        body: &[u8],
        caller: &Caller,
    ) -> Result<Reply, ServiceError> {
        match FastRequest::parse(verb, body)? {
            (FastRequest::Create(req), value) => self.create(req, &value, caller).await,
            (FastRequest::Read(req), _) => self.read(req, caller).await,
            (FastRequest::Update(req), value) => self.update(req, &value, caller).await,
            (FastRequest::Delete(req), value) => self.delete(req, &value, caller).await,
        }
    }

    /// `POST /fast/v1/create`: a new cart, or the existing one for the same Fast order id.
    async fn create(
        &self,
        req: CreateRequest,
        value: &Value,
        caller: &Caller,
    ) -> Result<Reply, ServiceError> {
        require_orders(&req.header, "create")?;
        caller.check(&req.header)?;
        let fast_id = req
            .order
            .order
            .id
            .as_ref()
            .map(|i| i.0.clone())
            .unwrap_or_default();
        record_ids(&req.header, Some(&fast_id));
        let (stamp, _slot) = match self
            .begin(Stamp::fast("create", &req.header, value)?)
            .await?
        {
            Begin::Replay(reply) => return Ok(reply),
            Begin::Run(stamp, slot) => (stamp, slot),
        };
        let app_id = req.header.app_id.clone().filter(|a| !a.is_empty());
        let request_id = req.header.request_id.as_ref();
        let order = domain::create_cart(
            req.order.order.clone(),
            req.order.is_cart,
            &self.catalog.current(),
            &self.settings.limits,
            &mut UuidIds,
        )?;
        let _order_lock = self.lock_order(&fast_id).await?;
        let result = retry_on_conflict(|| async {
            if let Some(existing) = self.store.get_order(&fast_id).await? {
                // Never a second cart: answer with the order we already have.
                let loaded = Loaded::decode(existing)?;
                let body = order_response(request_id, &loaded.stored.order, None)?;
                self.commit(Commit::default(), stamp.as_ref(), &body)
                    .await?;
                return Ok(Reply::ok(body));
            }
            let stored = StoredOrder::created(order.clone(), app_id.clone(), self.clock.now_ms());
            let body = order_response(request_id, &stored.order, None)?;
            let commit = Commit {
                order: Some(stored.first_write()?),
                ..Commit::default()
            };
            self.commit(commit, stamp.as_ref(), &body).await?;
            Metrics::inc(&self.metrics.order_status, &[OrderStatus::Cart.name()]);
            Ok(Reply::ok(body))
        })
        .await;
        self.finish(stamp.as_ref(), result).await
    }

    /// `POST /fast/v1/read`: an order by Fast or seller id, or the shipping zones.
    async fn read(&self, req: ReadRequest, caller: &Caller) -> Result<Reply, ServiceError> {
        caller.check(&req.header)?;
        record_ids(&req.header, None);
        match req.header.entity() {
            EntityType::ShippingZones => {
                let zones = self.shipping_zones();
                let body = encode(&ShippingZonesResponse {
                    entity_type: EntityType::ShippingZones,
                    request_id: req.header.request_id.as_ref(),
                    shipping_zones: ShippingZonesSegment {
                        shipping_zones: zones,
                    },
                })?;
                Ok(Reply::ok(body))
            }
            EntityType::Order => {
                let lookup = req.order.ok_or_else(|| {
                    ServiceError::invalid(
                        "order_segment_missing",
                        "order: the order segment is required",
                    )
                })?;
                let loaded = self.find(&lookup).await?;
                let body =
                    order_response(req.header.request_id.as_ref(), &loaded.stored.order, None)?;
                Ok(Reply::ok(body))
            }
            EntityType::User if self.platform.is_some() => self.read_user(&req).await,
            other => Err(ServiceError::Unimplemented(format!(
                "read of {} is not supported",
                other.name()
            ))),
        }
    }

    /// A shopper by e-mail, from the commerce platform.
    async fn read_user(&self, req: &ReadRequest) -> Result<Reply, ServiceError> {
        let Some(platform) = &self.platform else {
            return Err(ServiceError::Unimplemented(
                "read of ENTITY_TYPE_USER needs a commerce platform (--backend vendure)".into(),
            ));
        };
        let email = req
            .user
            .as_ref()
            .and_then(|u| u.email.as_deref())
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                ServiceError::invalid("user_email_missing", "user: email is required")
            })?;
        let user = platform
            .customer_by_email(email)
            .await
            .map_err(|e| ServiceError::Refused {
                kind: ErrorKind::Unavailable,
                code: "platform_unavailable",
                message: format!("{} cannot be asked now: {e}", platform.name()),
            })?
            .ok_or_else(|| ServiceError::Refused {
                kind: ErrorKind::NotFound,
                code: "user_not_found",
                message: format!("no {} customer with this e-mail address", platform.name()),
            })?;
        Ok(Reply::ok(encode(&UserResponse {
            entity_type: EntityType::User,
            request_id: req.header.request_id.as_ref(),
            user: UserSegment { user },
        })?))
    }

    /// `POST /fast/v1/update`: merges the incremental segments into the stored order.
    async fn update(
        &self,
        req: UpdateRequest,
        value: &Value,
        caller: &Caller,
    ) -> Result<Reply, ServiceError> {
        require_orders(&req.header, "update")?;
        caller.check(&req.header)?;
        domain::validate_update(&req.order)?;
        record_ids(&req.header, req.order.order_id.as_ref().map(Id::as_str));
        let (stamp, _slot) = match self
            .begin(Stamp::fast("update", &req.header, value)?)
            .await?
        {
            Begin::Replay(reply) => return Ok(reply),
            Begin::Run(stamp, slot) => (stamp, slot),
        };
        let request_id = req.header.request_id.as_ref();
        let result = self
            .modify(&req.order.lookup(), stamp.as_ref(), |loaded| {
                let outcome = domain::apply_update(
                    &loaded.stored.order,
                    &req.order,
                    &self.catalog.current(),
                    &self.settings.limits,
                    &mut UuidIds,
                );
                for failed in outcome.statuses.iter().filter(|s| !s.status) {
                    let reason = failed.reason_code.unwrap_or("UNKNOWN");
                    Metrics::inc(
                        &self.metrics.segment_failures,
                        &[failed.updated.name(), reason],
                    );
                }
                let body = order_response(request_id, &outcome.order, Some(&outcome.statuses))?;
                self.change(loaded, outcome.order, body)
            })
            .await;
        self.finish(stamp.as_ref(), result).await
    }

    /// `POST /fast/v1/delete`: marks the order DELETED (kept for audit) and answers `{}`,
    /// also for an order this server does not hold (a storefront cart Fast clears).
    async fn delete(
        &self,
        req: DeleteRequest,
        value: &Value,
        caller: &Caller,
    ) -> Result<Reply, ServiceError> {
        require_orders(&req.header, "delete")?;
        caller.check(&req.header)?;
        record_ids(&req.header, req.order.fast_id());
        let (stamp, _slot) = match self
            .begin(Stamp::fast("delete", &req.header, value)?)
            .await?
        {
            Begin::Replay(reply) => return Ok(reply),
            Begin::Run(stamp, slot) => (stamp, slot),
        };
        let result = match self
            .modify(&req.order, stamp.as_ref(), |loaded| {
                let order = domain::delete(&loaded.stored.order);
                self.change(loaded, order, b"{}".to_vec())
            })
            .await
        {
            // Fast clears a shopper's storefront cart this way after a cart-page checkout:
            // an order this server does not hold is already gone, so the delete succeeds.
            Err(ServiceError::Refused {
                code: "order_not_found",
                message,
                ..
            }) => {
                tracing::info!(%message, "delete of an order this server does not hold: answered {{}}");
                Ok(Reply::ok(b"{}".to_vec()))
            }
            other => other,
        };
        self.finish(stamp.as_ref(), result).await
    }

    /// The change that turns `loaded` into `order`, answered with `body`: nothing when it did
    /// not change, else the new version and, for a conversion or a later status change, its
    /// outbox event.
    fn change(
        &self,
        loaded: &Loaded,
        order: FastOrder,
        body: Vec<u8>,
    ) -> Result<Change, ServiceError> {
        let entered = order
            .status
            .filter(|s| Some(*s) != loaded.stored.order.status);
        let reply = Reply::ok(body);
        if order == loaded.stored.order {
            return Ok(Change {
                commit: Commit::default(),
                entered,
                reply,
            });
        }
        let now = self.clock.now_ms();
        let mut stored = loaded.revised(order, loaded.stored.ledger.clone(), now);
        let mut outbox = Vec::new();
        if let Some(event_type) = domain::event_for(&loaded.stored.order, &stored.order) {
            outbox.push(stored.backend_event(&loaded.record.id, event_type, now, None)?);
        }
        Ok(Change {
            commit: Commit {
                order: Some(loaded.write(&stored)?),
                idempotency: None,
                outbox,
            },
            entered,
            reply,
        })
    }

    fn shipping_zones(&self) -> Vec<ShippingZone> {
        let mut zones: Vec<ShippingZone> = Vec::new();
        let catalog = self.catalog.current();
        for country in catalog.shipping.iter().flat_map(|r| r.countries.iter()) {
            if !zones.iter().any(|z| &z.country_iso2 == country) {
                zones.push(ShippingZone {
                    country_iso2: country.clone(),
                    subdivision_iso2: String::new(),
                });
            }
        }
        zones
    }
}
