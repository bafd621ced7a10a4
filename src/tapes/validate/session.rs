//! One flow's conversation with the seller: sending requests, and the checks every answer
//! gets (echoes, enums, money, totals, lines, the seller id, status segments, replays).

use super::checks::{
    bad_enums, bad_money, check_totals, differences, enum_name, id_value, list, segment_of,
    summarize,
};
use super::{
    Check, Outcome, ValidateOptions, INV_ENUMS_VALID, INV_HTTP_STATUS, INV_IDEMPOTENT_REPLAY,
    INV_JSON_BODY, INV_LINES, INV_MONEY_FORMAT, INV_ORDER_ID_ECHO, INV_REQUEST_ID_ECHO,
    INV_SELLER_ID, INV_STATUS_SEGMENTS, INV_TOTALS, INV_TYPE_ECHO,
};
use crate::protocol::{EntityType, SegmentType};
use crate::tapes::{clip, compare, endpoint_url, post, Answer, TapeError};
use serde_json::{json, Value};

/// One flow against the seller.
pub(super) struct Session<'a> {
    pub(super) client: &'a reqwest::Client,
    pub(super) base: &'a str,
    pub(super) opts: &'a ValidateOptions,
    pub(super) fast_id: String,
    pub(super) requests: usize,
    pub(super) checks: Vec<Check>,
    pub(super) seller_id: Option<String>,
    /// The order as last answered by a create or update.
    pub(super) last_order: Option<Value>,
}

/// A request as sent, kept for an idempotent replay.
pub(super) struct Sent {
    pub(super) endpoint: &'static str,
    pub(super) body: Vec<u8>,
}

impl Session<'_> {
    pub(super) fn check(
        &mut self,
        step: &str,
        invariant: &'static str,
        outcome: Outcome,
        detail: impl Into<String>,
    ) {
        self.checks.push(Check {
            step: step.to_string(),
            invariant,
            outcome,
            detail: detail.into(),
        });
    }

    pub(super) fn require(
        &mut self,
        step: &str,
        invariant: &'static str,
        ok: bool,
        detail: impl Into<String>,
    ) {
        let detail = if ok { String::new() } else { detail.into() };
        let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
        self.check(step, invariant, outcome, detail);
    }

    pub(super) fn next_request_id(&mut self) -> String {
        self.requests += 1;
        format!("{}-r{}", self.fast_id, self.requests)
    }

    pub(super) fn address(&self, state: &str, city: &str, postal: &str) -> Value {
        self.opts.address.clone().unwrap_or_else(|| {
            json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                   "phone": "+1 415 555 0100", "address_1": "1 Market St", "city_locality": city,
                   "state_province_code": state, "country": "US", "country_code": "US",
                   "postal_code": postal})
        })
    }

    pub(super) fn line(&self, line_id: &str) -> Value {
        let mut l = json!({"id": {"value": line_id}, "external_product_id": self.opts.product_id,
                           "quantity": 1, "subtotal_amount": "0.00", "tax_amount": "0.00",
                           "total_amount": "0.00"});
        if let (Some(v), Some(o)) = (&self.opts.variant_id, l.as_object_mut()) {
            o.insert("external_variant_id".into(), json!(v));
        }
        l
    }

    /// Sends a request; records `http_status` and `json_body`. `None` when there is no
    /// usable answer.
    pub(super) async fn send(
        &mut self,
        step: &str,
        endpoint: &'static str,
        body: &Value,
        want_status: u16,
    ) -> Option<(Value, Sent)> {
        let bytes = body.to_string().into_bytes();
        let sent = Sent {
            endpoint,
            body: bytes.clone(),
        };
        let answer = self.post(endpoint, bytes).await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.check(step, INV_HTTP_STATUS, Outcome::Fail, e.to_string());
                return None;
            }
        };
        let json = answer.json();
        let ok_status = answer.status == want_status;
        self.require(
            step,
            INV_HTTP_STATUS,
            ok_status,
            format!(
                "expected HTTP {want_status}, got {}: {}",
                answer.status,
                clip(&String::from_utf8_lossy(&answer.bytes), 200)
            ),
        );
        if !ok_status {
            return None;
        }
        self.require(
            step,
            INV_JSON_BODY,
            json.is_object(),
            format!(
                "the answer is not a JSON object: {}",
                clip(&String::from_utf8_lossy(&answer.bytes), 200)
            ),
        );
        json.is_object().then_some((json, sent))
    }

    pub(super) async fn post(&self, endpoint: &str, body: Vec<u8>) -> Result<Answer, TapeError> {
        let headers = vec![("content-type".to_string(), "application/json".to_string())];
        post(
            self.client,
            &endpoint_url(self.base, endpoint),
            &headers,
            body,
            &self.opts.signing,
        )
        .await
    }

    /// The echo, enum, money and totals checks of an order answer.
    pub(super) fn order_checks(&mut self, step: &str, body: &Value, request_id: Option<&str>) {
        let t = body.get("type");
        let type_ok = t.is_some_and(|t| {
            enum_name(Some(t), EntityType::from_name, EntityType::from_number)
                == Some(EntityType::Order)
        });
        self.require(
            step,
            INV_TYPE_ECHO,
            type_ok,
            format!("type is {}", compare::show(t)),
        );
        if let Some(rid) = request_id {
            let got = id_value(body.get("request_id"));
            self.require(
                step,
                INV_REQUEST_ID_ECHO,
                got == Some(rid),
                format!(
                    "request_id {:?} sent, {} answered",
                    rid,
                    compare::show(body.get("request_id"))
                ),
            );
        }
        let Some(order) = body.pointer("/order/order") else {
            self.check(
                step,
                INV_JSON_BODY,
                Outcome::Fail,
                "no order.order in the answer",
            );
            return;
        };
        let got = id_value(order.get("id"));
        self.require(
            step,
            INV_ORDER_ID_ECHO,
            got == Some(self.fast_id.as_str()),
            format!(
                "Fast id {:?} expected, {} answered",
                self.fast_id,
                compare::show(order.get("id"))
            ),
        );
        let bad = bad_enums(body);
        self.require(
            step,
            INV_ENUMS_VALID,
            bad.is_empty(),
            format!("unknown values: {}", bad.join(", ")),
        );
        let bad = bad_money(order);
        self.require(step, INV_MONEY_FORMAT, bad.is_empty(), bad.join(", "));
        let problems = check_totals(order);
        if problems.iter().all(|(o, _)| *o != Outcome::Fail) {
            self.check(step, INV_TOTALS, Outcome::Pass, "");
        }
        for (outcome, detail) in problems {
            self.check(step, INV_TOTALS, outcome, detail);
        }
        self.lines_check(step, order);
        self.seller_id_check(step, order);
    }

    /// Lines: unique Fast ids, unique non-empty seller ids.
    fn lines_check(&mut self, step: &str, order: &Value) {
        let lines = list(order, "lines");
        let mut ids = Vec::new();
        let mut ext = Vec::new();
        let mut problems = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            match id_value(l.get("id")) {
                Some(id) if ids.contains(&id) => {
                    problems.push(format!("line id {id} appears twice"))
                }
                Some(id) => ids.push(id),
                None => problems.push(format!("lines[{i}] has no id")),
            }
            match l
                .get("external_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(e) if ext.contains(&e) => {
                    problems.push(format!("seller line id {e} appears twice"))
                }
                Some(e) => ext.push(e),
                None => problems.push(format!("lines[{i}] has no seller external_id")),
            }
        }
        self.require(step, INV_LINES, problems.is_empty(), problems.join("; "));
    }

    /// The seller id: assigned, and stable (it may change at conversion only).
    fn seller_id_check(&mut self, step: &str, order: &Value) {
        let seller = order
            .get("external_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match (seller, self.seller_id.clone()) {
            (None, _) => self.check(
                step,
                INV_SELLER_ID,
                Outcome::Fail,
                "no order.order.external_id",
            ),
            (Some(s), Some(known)) if s != known && !step.starts_with("convert") => self.check(
                step,
                INV_SELLER_ID,
                Outcome::Fail,
                format!("external_id changed from {known:?} to {s:?}"),
            ),
            (Some(s), _) => {
                self.seller_id = Some(s.to_string());
                self.check(step, INV_SELLER_ID, Outcome::Pass, "");
            }
        }
    }

    /// An update answer's `order.status[]` has a successful entry for each segment sent.
    pub(super) fn segment_checks(&mut self, step: &str, body: &Value, expected: &[SegmentType]) {
        let entries = body.pointer("/order/status").and_then(Value::as_array);
        let Some(entries) = entries else {
            self.check(
                step,
                INV_STATUS_SEGMENTS,
                Outcome::Fail,
                "the update answer has no order.status[]",
            );
            return;
        };
        let mut problems = Vec::new();
        for want in expected {
            let found = entries
                .iter()
                .find(|e| e.get("updated").and_then(segment_of) == Some(*want));
            match found {
                None => problems.push(format!("no entry for {}", want.name())),
                Some(e) if e.get("status").and_then(Value::as_bool) != Some(true) => problems.push(
                    format!("{} failed: {}", want.name(), compare::show(Some(e))),
                ),
                Some(_) => {}
            }
        }
        self.require(
            step,
            INV_STATUS_SEGMENTS,
            problems.is_empty(),
            problems.join("; "),
        );
    }

    /// Sends `sent` again: the answer must be the same document.
    pub(super) async fn replay_check(&mut self, step: &str, sent: &Sent, first: &Value) {
        let label = format!("{step} (replayed)");
        let answer = match self.post(sent.endpoint, sent.body.clone()).await {
            Ok(a) => a,
            Err(e) => {
                self.check(&label, INV_IDEMPOTENT_REPLAY, Outcome::Fail, e.to_string());
                return;
            }
        };
        if answer.status != 200 {
            self.check(
                &label,
                INV_IDEMPOTENT_REPLAY,
                Outcome::Fail,
                format!(
                    "the same request_id answered HTTP {} the second time",
                    answer.status
                ),
            );
            return;
        }
        let diffs = differences(first, &answer.json());
        self.require(
            &label,
            INV_IDEMPOTENT_REPLAY,
            diffs.is_empty(),
            format!("the replayed answer differs: {}", summarize(&diffs)),
        );
    }

    /// Sends an update of `segment` (merged into `{order_id, is_cart}`), runs the order and
    /// segment checks, optionally replays it. Returns the answer.
    pub(super) async fn update(
        &mut self,
        step: &str,
        segment: Value,
        segments: &[SegmentType],
        replay: bool,
    ) -> Option<Value> {
        let rid = self.next_request_id();
        let mut order = json!({"order_id": {"value": self.fast_id}, "is_cart": true});
        if let (Some(o), Value::Object(extra)) = (order.as_object_mut(), segment) {
            o.extend(extra);
        }
        let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": self.opts.app_id,
                          "request_id": {"value": rid}, "order": order});
        self.update_body(step, &body, &rid, segments, replay).await
    }

    pub(super) async fn update_body(
        &mut self,
        step: &str,
        body: &Value,
        rid: &str,
        segments: &[SegmentType],
        replay: bool,
    ) -> Option<Value> {
        let (answer, sent) = self.send(step, "update", body, 200).await?;
        self.order_checks(step, &answer, Some(rid));
        self.segment_checks(step, &answer, segments);
        self.last_order = answer.pointer("/order/order").cloned();
        if replay {
            self.replay_check(step, &sent, &answer).await;
        }
        Some(answer)
    }
}
