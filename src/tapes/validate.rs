//! `fast-seller validate`: plays Fast against any seller backend and checks the protocol's
//! invariants without knowing the seller's prices.
//!
//! The flows are those of Fast's old direct-integration validator (`new_user`, `create_cart`,
//! `read_cart`, `update_bill_to`, `update_shipment_contact`, `update_shipping_option`,
//! `convert_cart_to_order`) plus `delete`. Each flow starts its own cart (Fast order id
//! `fsv-<run>-<n>`), so flows are independent and the run can be repeated.
//!
//! Every check names its invariant (the `INV_*` constants). `FAIL` checks break the
//! protocol as Fast relies on it; `WARN` checks are conventions sellers differ on (for
//! instance whether a line's `total_amount` includes tax) and do not fail the run.

use super::compare::{self, IgnoreRules, JsonPath, Mismatch};
use super::{endpoint_url, junit, post, Answer, Signing, TapeError};
use crate::protocol::{
    DiscountOrigin, DiscountType, EntityType, FulfillmentModel, OrderStatus, OrderType,
    SegmentType, ShippingOptionType,
};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The answer is HTTP 200 where the protocol expects success.
pub const INV_HTTP_STATUS: &str = "http_status";
/// The answer body is a JSON object.
pub const INV_JSON_BODY: &str = "json_body";
/// `type` is echoed.
pub const INV_TYPE_ECHO: &str = "type_echo";
/// `request_id` is echoed.
pub const INV_REQUEST_ID_ECHO: &str = "request_id_echo";
/// Fast's order id is echoed in `order.order.id`.
pub const INV_ORDER_ID_ECHO: &str = "order_id_echo";
/// The seller assigns an `external_id` and keeps it (it may change only at conversion).
pub const INV_SELLER_ID: &str = "seller_id";
/// Every line Fast sent is there exactly once, with its quantity and a unique seller id.
pub const INV_LINES: &str = "lines";
/// Every enum is a known name (or number).
pub const INV_ENUMS_VALID: &str = "enums_valid";
/// Every money field is a decimal (string or number), not negative.
pub const INV_MONEY_FORMAT: &str = "money_format";
/// The totals add up (see [`check_totals`]).
pub const INV_TOTALS: &str = "totals_consistent";
/// An update answer has one successful `order.status[]` entry per segment sent.
pub const INV_STATUS_SEGMENTS: &str = "status_segments";
/// Sending the same request again (same `request_id`) returns the same answer.
pub const INV_IDEMPOTENT_REPLAY: &str = "idempotent_replay";
/// A read returns the order as last answered.
pub const INV_READ_CONSISTENT: &str = "read_consistent";
/// After a shipping address: plans with options and a selected one.
pub const INV_SHIPMENT_PLANS: &str = "shipment_plans";
/// The option Fast selected is the plan's `selected_option`.
pub const INV_OPTION_SELECTED: &str = "shipping_option_selected";
/// Conversion makes an order (ORDER_TYPE_ORDER, no longer CART); status updates apply.
pub const INV_CONVERSION: &str = "conversion";
/// Delete answers `{}` (or `{type, order: {}}`) and the cart is gone or DELETED.
pub const INV_DELETE: &str = "delete";
/// A read of an unknown order answers 404.
pub const INV_UNKNOWN_ORDER: &str = "unknown_order";

/// One of the validator's flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    NewUser,
    CreateCart,
    ReadCart,
    UpdateBillTo,
    UpdateShipmentContact,
    UpdateShippingOption,
    ConvertCartToOrder,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 8] = [
        Operation::NewUser,
        Operation::CreateCart,
        Operation::ReadCart,
        Operation::UpdateBillTo,
        Operation::UpdateShipmentContact,
        Operation::UpdateShippingOption,
        Operation::ConvertCartToOrder,
        Operation::Delete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::NewUser => "new_user",
            Operation::CreateCart => "create_cart",
            Operation::ReadCart => "read_cart",
            Operation::UpdateBillTo => "update_bill_to",
            Operation::UpdateShipmentContact => "update_shipment_contact",
            Operation::UpdateShippingOption => "update_shipping_option",
            Operation::ConvertCartToOrder => "convert_cart_to_order",
            Operation::Delete => "delete",
        }
    }
}

impl FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
                format!("unknown operation {s:?} (one of {})", names.join(", "))
            })
    }
}

/// How to validate.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// A product the seller's catalog has (`--product-id`).
    pub product_id: String,
    /// Its variant, if the product needs one.
    pub variant_id: Option<String>,
    /// How requests are signed (`--auth`).
    pub signing: Signing,
    /// The `app_id` sent (and, for fast-jwt, normally the token's audience).
    pub app_id: String,
    /// Flows to run; empty = all.
    pub operations: Vec<Operation>,
    /// Billing and shipping address (defaults to a US address in California / New York).
    pub address: Option<Value>,
    /// Also write a JUnit XML report here.
    pub junit: Option<PathBuf>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            product_id: "hoodie-01".into(),
            variant_id: None,
            signing: Signing::None,
            app_id: "fast-seller-validate".into(),
            operations: Vec::new(),
            address: None,
            junit: None,
            timeout: Duration::from_secs(15),
        }
    }
}

/// How bad a failed check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// A convention the seller does not follow; does not fail the run.
    Warn,
    Fail,
}

/// One check of one invariant at one step.
#[derive(Debug, Clone)]
pub struct Check {
    pub step: String,
    pub invariant: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.outcome != Outcome::Fail
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.outcome {
            Outcome::Pass => "ok",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        };
        write!(f, "{tag} {}: {}", self.step, self.invariant)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// The checks of one flow.
#[derive(Debug, Clone)]
pub struct FlowResult {
    pub name: String,
    pub checks: Vec<Check>,
    pub duration: Duration,
}

impl FlowResult {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(Check::passed)
    }
}

/// What [`validate`] found.
#[derive(Debug, Clone)]
pub struct ValidateReport {
    pub target: String,
    pub flows: Vec<FlowResult>,
}

impl ValidateReport {
    /// True when no check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.flows.iter().all(FlowResult::passed)
    }

    /// The invariants that failed somewhere, each once, in order of first failure.
    pub fn failed_invariants(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for c in self.flows.iter().flat_map(|f| &f.checks) {
            if c.outcome == Outcome::Fail && !out.contains(&c.invariant) {
                out.push(c.invariant);
            }
        }
        out
    }

    /// One line per flow; under it every failed check and warning.
    pub fn render(&self) -> String {
        let mut out = format!("validate {}\n", self.target);
        let (mut checks, mut failed, mut warned) = (0, 0, 0);
        for flow in &self.flows {
            let f = flow
                .checks
                .iter()
                .filter(|c| c.outcome == Outcome::Fail)
                .count();
            checks += flow.checks.len();
            failed += f;
            out.push_str(&format!(
                "{} {} ({} checks{}, {:.1} s)\n",
                if flow.passed() { "PASS" } else { "FAIL" },
                flow.name,
                flow.checks.len(),
                if f > 0 {
                    format!(", {f} failed")
                } else {
                    String::new()
                },
                flow.duration.as_secs_f64()
            ));
            for c in flow.checks.iter().filter(|c| c.outcome != Outcome::Pass) {
                warned += usize::from(c.outcome == Outcome::Warn);
                out.push_str(&format!("  {c}\n"));
            }
        }
        let flows_failed = self.flows.iter().filter(|f| !f.passed()).count();
        out.push_str(&format!(
            "{} flows: {} passed, {} failed; {checks} checks, {failed} failed, {warned} warnings\n",
            self.flows.len(),
            self.flows.len() - flows_failed,
            flows_failed
        ));
        if !self.passed() {
            out.push_str(&format!(
                "broken invariants: {}\n",
                self.failed_invariants().join(", ")
            ));
        }
        out
    }

    /// The JUnit document: one test suite per flow, one test case per check.
    pub fn junit_xml(&self) -> String {
        let suites: Vec<junit::Suite> = self
            .flows
            .iter()
            .map(|f| junit::Suite {
                name: f.name.clone(),
                seconds: f.duration.as_secs_f64(),
                cases: f
                    .checks
                    .iter()
                    .map(|c| junit::Case {
                        name: format!("{}: {}", c.step, c.invariant),
                        seconds: 0.0,
                        failure: (!c.passed()).then(|| (c.detail.clone(), c.to_string())),
                    })
                    .collect(),
            })
            .collect();
        junit::render("fast-seller validate", &suites)
    }
}

/// Plays Fast against the seller at `target` (base URL) and checks the protocol's
/// invariants. `Err` only when nothing could be run (client setup, JUnit file).
pub async fn validate(target: &str, options: ValidateOptions) -> Result<ValidateReport, TapeError> {
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .build()
        .map_err(|e| TapeError::Http(e.to_string()))?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = run.get(..8).unwrap_or(&run).to_string();
    let ops = if options.operations.is_empty() {
        Operation::ALL.to_vec()
    } else {
        options.operations.clone()
    };
    let mut report = ValidateReport {
        target: format!("{target} (product {})", options.product_id),
        flows: Vec::new(),
    };
    for (n, op) in ops.into_iter().enumerate() {
        let started = Instant::now();
        let mut s = Session {
            client: &client,
            base: target,
            opts: &options,
            fast_id: format!("fsv-{run}-{}", n + 1),
            requests: 0,
            checks: Vec::new(),
            seller_id: None,
            last_order: None,
        };
        s.run(op).await;
        report.flows.push(FlowResult {
            name: op.name().to_string(),
            checks: s.checks,
            duration: started.elapsed(),
        });
    }
    if let Some(path) = &options.junit {
        std::fs::write(path, report.junit_xml()).map_err(|e| TapeError::io(path, e))?;
    }
    Ok(report)
}

/// The money fields of an order and of a line.
const ORDER_MONEY: &[&str] = &[
    "total_amount",
    "sub_total",
    "total_discounts",
    "total_tax",
    "total_shipping",
];
const LINE_MONEY: &[&str] = &[
    "unit_price",
    "discounted_unit_price",
    "line_discount_amount",
    "subtotal_amount",
    "tax_amount",
    "total_amount",
];

/// A money value: decimal string or number; absent = 0 (protojson omits defaults).
fn money(v: Option<&Value>) -> Result<Decimal, String> {
    match v {
        None | Some(Value::Null) => Ok(Decimal::ZERO),
        Some(Value::String(s)) if s.is_empty() => Ok(Decimal::ZERO),
        Some(Value::String(s)) => Decimal::from_str(s)
            .or_else(|_| Decimal::from_scientific(s))
            .map_err(|_| format!("{s:?} is not a decimal")),
        Some(Value::Number(n)) => {
            let t = n.to_string();
            Decimal::from_str(&t)
                .or_else(|_| Decimal::from_scientific(&t))
                .map_err(|_| format!("{t} is not a decimal"))
        }
        Some(other) => Err(format!("{other} is not a money value")),
    }
}

fn field(v: &Value, key: &str) -> Decimal {
    money(v.get(key)).unwrap_or_default()
}

fn id_value(v: Option<&Value>) -> Option<&str> {
    let v = v?;
    v.as_str()
        .or_else(|| v.get("value").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

fn enum_ok<T>(v: &Value, by_name: fn(&str) -> Option<T>, by_number: fn(i64) -> Option<T>) -> bool {
    match v {
        Value::String(s) => by_name(s).is_some() || s.parse().ok().and_then(by_number).is_some(),
        Value::Number(n) => n.as_i64().and_then(by_number).is_some(),
        _ => false,
    }
}

fn segment_of(v: &Value) -> Option<SegmentType> {
    match v {
        Value::String(s) => {
            SegmentType::from_name(s).or_else(|| s.parse().ok().and_then(SegmentType::from_number))
        }
        Value::Number(n) => n.as_i64().and_then(SegmentType::from_number),
        _ => None,
    }
}

fn enum_name<T: Copy>(
    v: Option<&Value>,
    by_name: fn(&str) -> Option<T>,
    by_number: fn(i64) -> Option<T>,
) -> Option<T> {
    match v? {
        Value::String(s) => by_name(s).or_else(|| s.parse().ok().and_then(by_number)),
        Value::Number(n) => n.as_i64().and_then(by_number),
        _ => None,
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The internal consistency of an order's money, as `(invariant, outcome, detail)` problems.
/// Failures: `sub_total` ≠ Σ line `subtotal_amount`; `total_amount` ≠ `sub_total −
/// total_discounts + total_tax + total_shipping`; an option's `total` ≠ `cost + tax`.
/// Warnings: a line's `subtotal_amount` ≠ `unit_price × quantity` or `total_amount` ≠
/// `subtotal − line_discount + tax`; `total_discounts` ≠ Σ line discounts; `total_shipping`
/// ≠ Σ selected options' cost (or total); `total_tax` ≠ Σ line tax + Σ selected options' tax.
pub fn check_totals(order: &Value) -> Vec<(Outcome, String)> {
    let mut out = Vec::new();
    let lines = list(order, "lines");
    let sum = |key: &str| -> Decimal { lines.iter().map(|l| field(l, key)).sum() };
    let sub_total = field(order, "sub_total");
    let discounts = field(order, "total_discounts");
    let tax = field(order, "total_tax");
    let shipping = field(order, "total_shipping");
    let total = field(order, "total_amount");
    if sub_total != sum("subtotal_amount") {
        out.push((
            Outcome::Fail,
            format!(
                "sub_total {sub_total} ≠ Σ lines[].subtotal_amount {}",
                sum("subtotal_amount")
            ),
        ));
    }
    let expected = sub_total - discounts + tax + shipping;
    if total != expected {
        out.push((
            Outcome::Fail,
            format!(
                "total_amount {total} ≠ sub_total − total_discounts + total_tax + total_shipping \
                 = {sub_total} − {discounts} + {tax} + {shipping} = {expected}"
            ),
        ));
    }
    for (i, l) in lines.iter().enumerate() {
        let qty = l
            .get("quantity")
            .and_then(|q| {
                q.as_i64()
                    .or_else(|| q.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0);
        if l.get("unit_price").is_some() {
            let want = field(l, "unit_price") * Decimal::from(qty);
            if field(l, "subtotal_amount") != want {
                out.push((
                    Outcome::Warn,
                    format!(
                        "lines[{i}].subtotal_amount {} ≠ unit_price × quantity = {want}",
                        field(l, "subtotal_amount")
                    ),
                ));
            }
        }
        let want =
            field(l, "subtotal_amount") - field(l, "line_discount_amount") + field(l, "tax_amount");
        if field(l, "total_amount") != want {
            out.push((
                Outcome::Warn,
                format!(
                    "lines[{i}].total_amount {} ≠ subtotal − line_discount + tax = {want}",
                    field(l, "total_amount")
                ),
            ));
        }
    }
    if discounts != sum("line_discount_amount") {
        out.push((
            Outcome::Warn,
            format!(
                "total_discounts {discounts} ≠ Σ lines[].line_discount_amount {}",
                sum("line_discount_amount")
            ),
        ));
    }
    let mut selected_cost = Decimal::ZERO;
    let mut selected_total = Decimal::ZERO;
    let mut selected_tax = Decimal::ZERO;
    for (p, plan) in list(order, "shipment_plans").iter().enumerate() {
        let mut options: Vec<(String, &Value)> = list(plan, "available_options")
            .iter()
            .enumerate()
            .map(|(i, o)| (format!("shipment_plans[{p}].available_options[{i}]"), o))
            .collect();
        if let Some(sel) = plan.get("selected_option").filter(|s| s.is_object()) {
            options.push((format!("shipment_plans[{p}].selected_option"), sel));
            selected_cost += field(sel, "cost");
            selected_total += field(sel, "total");
            selected_tax += field(sel, "tax");
        }
        for (path, o) in options {
            if o.get("total").is_some() && field(o, "total") != field(o, "cost") + field(o, "tax") {
                out.push((
                    Outcome::Fail,
                    format!(
                        "{path}.total {} ≠ cost + tax = {}",
                        field(o, "total"),
                        field(o, "cost") + field(o, "tax")
                    ),
                ));
            }
        }
    }
    if shipping != selected_cost && shipping != selected_total {
        out.push((
            Outcome::Warn,
            format!("total_shipping {shipping} ≠ Σ selected options' cost {selected_cost}"),
        ));
    }
    let want_tax = sum("tax_amount") + selected_tax;
    if tax != want_tax && tax != sum("tax_amount") {
        out.push((
            Outcome::Warn,
            format!(
                "total_tax {tax} ≠ Σ lines[].tax_amount + Σ selected options' tax = {want_tax}"
            ),
        ));
    }
    out
}

/// Records `path = value` in `bad` when `v` is present and not a valid enum value.
fn check_enum(bad: &mut Vec<String>, path: String, v: Option<&Value>, ok: fn(&Value) -> bool) {
    if let Some(v) = v {
        if !ok(v) {
            bad.push(format!("{path} = {v}"));
        }
    }
}

fn origin_ok(v: &Value) -> bool {
    enum_ok(v, DiscountOrigin::from_name, DiscountOrigin::from_number)
}

fn discount_type_ok(v: &Value) -> bool {
    enum_ok(v, DiscountType::from_name, DiscountType::from_number)
}

fn shipment_type_ok(v: &Value) -> bool {
    enum_ok(
        v,
        ShippingOptionType::from_name,
        ShippingOptionType::from_number,
    )
}

/// Enum fields with unknown values, as paths.
fn bad_enums(body: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    check_enum(&mut bad, "type".into(), body.get("type"), |v| {
        enum_ok(v, EntityType::from_name, EntityType::from_number)
    });
    let Some(order) = body.pointer("/order/order") else {
        return bad;
    };
    check_enum(
        &mut bad,
        "order_type".into(),
        order.get("order_type"),
        |v| enum_ok(v, OrderType::from_name, OrderType::from_number),
    );
    check_enum(&mut bad, "status".into(), order.get("status"), |v| {
        enum_ok(v, OrderStatus::from_name, OrderStatus::from_number)
    });
    let mut discounts: Vec<(String, &Value)> = list(order, "coupons")
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("coupons[{i}]"), c))
        .collect();
    for (i, l) in list(order, "lines").iter().enumerate() {
        check_enum(
            &mut bad,
            format!("lines[{i}].fulfillment_mode"),
            l.get("fulfillment_mode"),
            |v| {
                enum_ok(
                    v,
                    FulfillmentModel::from_name,
                    FulfillmentModel::from_number,
                )
            },
        );
        for (j, d) in list(l, "discounts").iter().enumerate() {
            discounts.push((format!("lines[{i}].discounts[{j}]"), d));
        }
    }
    for (path, d) in discounts {
        check_enum(
            &mut bad,
            format!("{path}.origin"),
            d.get("origin"),
            origin_ok,
        );
        check_enum(
            &mut bad,
            format!("{path}.type"),
            d.get("type"),
            discount_type_ok,
        );
    }
    for (p, plan) in list(order, "shipment_plans").iter().enumerate() {
        let sel = plan
            .get("selected_option")
            .and_then(|s| s.get("shipment_type"));
        check_enum(
            &mut bad,
            format!("shipment_plans[{p}].selected_option.shipment_type"),
            sel,
            shipment_type_ok,
        );
        for (i, o) in list(plan, "available_options").iter().enumerate() {
            check_enum(
                &mut bad,
                format!("shipment_plans[{p}].available_options[{i}].shipment_type"),
                o.get("shipment_type"),
                shipment_type_ok,
            );
        }
    }
    if let Some(statuses) = body.pointer("/order/status").and_then(Value::as_array) {
        for (i, s) in statuses.iter().enumerate() {
            check_enum(
                &mut bad,
                format!("order.status[{i}].updated"),
                s.get("updated"),
                |v| segment_of(v).is_some(),
            );
        }
    }
    bad
}

/// Money fields that are not decimals or are negative.
fn bad_money(order: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |path: String, v: Option<&Value>| match money(v) {
        Ok(d) if d.is_sign_negative() && !d.is_zero() => {
            bad.push(format!("{path} = {d} is negative"))
        }
        Ok(_) => {}
        Err(e) => bad.push(format!("{path}: {e}")),
    };
    for k in ORDER_MONEY {
        check((*k).to_string(), order.get(*k));
    }
    for (i, l) in list(order, "lines").iter().enumerate() {
        for k in LINE_MONEY {
            check(format!("lines[{i}].{k}"), l.get(*k));
        }
    }
    for (p, plan) in list(order, "shipment_plans").iter().enumerate() {
        for (i, o) in list(plan, "available_options").iter().enumerate() {
            for k in ["cost", "tax", "total"] {
                check(
                    format!("shipment_plans[{p}].available_options[{i}].{k}"),
                    o.get(k),
                );
            }
        }
    }
    bad
}

/// The differences between two JSON documents, as report lines.
fn differences(expected: &Value, got: &Value) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut bindings = super::bind::Bindings::default();
    compare::diff(
        expected,
        Some(got),
        &JsonPath::root("$"),
        &IgnoreRules::default(),
        &mut bindings,
        &mut out,
    );
    out
}

fn summarize(m: &[Mismatch]) -> String {
    let mut text: Vec<String> = m.iter().take(3).map(ToString::to_string).collect();
    if m.len() > 3 {
        text.push(format!("… {} more", m.len() - 3));
    }
    text.join("; ")
}

/// One flow against the seller.
struct Session<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    opts: &'a ValidateOptions,
    fast_id: String,
    requests: usize,
    checks: Vec<Check>,
    seller_id: Option<String>,
    /// The order as last answered by a create or update.
    last_order: Option<Value>,
}

/// A request as sent, kept for an idempotent replay.
struct Sent {
    endpoint: &'static str,
    body: Vec<u8>,
}

impl Session<'_> {
    fn check(
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

    fn require(
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

    fn next_request_id(&mut self) -> String {
        self.requests += 1;
        format!("{}-r{}", self.fast_id, self.requests)
    }

    fn address(&self, state: &str, city: &str, postal: &str) -> Value {
        self.opts.address.clone().unwrap_or_else(|| {
            json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                   "phone": "+1 415 555 0100", "address_1": "1 Market St", "city_locality": city,
                   "state_province_code": state, "country": "US", "country_code": "US",
                   "postal_code": postal})
        })
    }

    fn line(&self, line_id: &str) -> Value {
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
    async fn send(
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
                super::clip(&String::from_utf8_lossy(&answer.bytes), 200)
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
                super::clip(&String::from_utf8_lossy(&answer.bytes), 200)
            ),
        );
        json.is_object().then_some((json, sent))
    }

    async fn post(&self, endpoint: &str, body: Vec<u8>) -> Result<Answer, TapeError> {
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
    fn order_checks(&mut self, step: &str, body: &Value, request_id: Option<&str>) {
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
        // Lines: unique Fast ids, unique non-empty seller ids.
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
        // Seller id: assigned, and stable (it may change at conversion only).
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
    fn segment_checks(&mut self, step: &str, body: &Value, expected: &[SegmentType]) {
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
    async fn replay_check(&mut self, step: &str, sent: &Sent, first: &Value) {
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

    /// Reads the order (by Fast id, or by seller id) and compares it with the last answer.
    async fn read_check(&mut self, step: &str, by_seller: Option<&str>) -> Option<Value> {
        let mut lookup = serde_json::Map::new();
        lookup.insert("is_cart".into(), Value::Bool(true));
        match by_seller {
            Some(key) => {
                let seller = self.seller_id.clone().unwrap_or_default();
                lookup.insert(key.into(), Value::String(seller));
            }
            None => {
                lookup.insert("order_id".into(), json!({"value": self.fast_id}));
            }
        }
        let lookup = Value::Object(lookup);
        let body =
            json!({"type": "ENTITY_TYPE_ORDER", "app_id": self.opts.app_id, "order": lookup});
        let (answer, _) = self.send(step, "read", &body, 200).await?;
        self.order_checks(step, &answer, None);
        let read = answer
            .pointer("/order/order")
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(last) = self.last_order.clone() {
            let diffs = differences(&last, &read);
            self.require(
                step,
                INV_READ_CONSISTENT,
                diffs.is_empty(),
                format!(
                    "the read order differs from the last answer: {}",
                    summarize(&diffs)
                ),
            );
        }
        Some(read)
    }

    /// Sends an update of `segment` (merged into `{order_id, is_cart}`), runs the order and
    /// segment checks, optionally replays it. Returns the answer.
    async fn update(
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

    async fn update_body(
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

    /// Creates the cart with one line `L-1`; replays the create when asked.
    async fn create(&mut self, replay: bool) -> Option<Value> {
        let rid = self.next_request_id();
        let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": self.opts.app_id,
            "request_id": {"value": rid},
            "order": {"is_cart": true, "order": {"id": {"value": self.fast_id},
                "order_type": "ORDER_TYPE_CART", "status": "ORDER_STATUS_CART", "bill_to": {},
                "lines": [self.line("L-1")]}}});
        let (answer, sent) = self.send("create", "create", &body, 200).await?;
        self.order_checks("create", &answer, Some(&rid));
        if let Some(order) = answer.pointer("/order/order") {
            let lines = list(order, "lines");
            let l1 = lines
                .iter()
                .filter(|l| id_value(l.get("id")) == Some("L-1"))
                .count();
            let qty = lines
                .iter()
                .find(|l| id_value(l.get("id")) == Some("L-1"))
                .and_then(|l| l.get("quantity"))
                .and_then(|q| {
                    q.as_i64()
                        .or_else(|| q.as_str().and_then(|s| s.parse().ok()))
                });
            self.require(
                "create",
                INV_LINES,
                lines.len() == 1 && l1 == 1 && qty == Some(1),
                format!(
                    "one line L-1 × 1 was sent; the cart has {} lines (L-1 quantity {qty:?})",
                    lines.len()
                ),
            );
            let status = enum_name(
                order.get("status"),
                OrderStatus::from_name,
                OrderStatus::from_number,
            );
            self.require(
                "create",
                INV_CONVERSION,
                matches!(status, Some(OrderStatus::Cart) | None),
                format!(
                    "a new cart must be ORDER_STATUS_CART, got {}",
                    compare::show(order.get("status"))
                ),
            );
        }
        self.last_order = answer.pointer("/order/order").cloned();
        if replay {
            self.replay_check("create", &sent, &answer).await;
        }
        Some(answer)
    }

    async fn bill_to(&mut self, replay: bool) -> Option<Value> {
        let addr = self.address("CA", "San Francisco", "94105");
        self.update(
            "update_bill_to",
            json!({"bill_to": addr}),
            &[SegmentType::BillingAddress],
            replay,
        )
        .await
    }

    async fn shipments(&mut self) -> Option<Value> {
        let addr = self.address("NY", "New York", "10118");
        let line_refs: Vec<Value> = self
            .last_order
            .as_ref()
            .map(|o| list(o, "lines"))
            .unwrap_or_default()
            .iter()
            .filter_map(|l| {
                Some(json!({"id": {"value": id_value(l.get("id"))?},
                            "quantity": l.get("quantity").cloned().unwrap_or(json!(1))}))
            })
            .collect();
        let answer = self
            .update(
                "update_shipment_contact",
                json!({"shipments": [{"ship_to": addr, "line_refs": line_refs}]}),
                &[SegmentType::ShippingAddress],
                false,
            )
            .await?;
        let order = answer
            .pointer("/order/order")
            .cloned()
            .unwrap_or(Value::Null);
        let plans = list(&order, "shipment_plans");
        let mut problems = Vec::new();
        if plans.is_empty() {
            problems.push("no shipment_plans after a shipping address".to_string());
        }
        for (p, plan) in plans.iter().enumerate() {
            if list(plan, "available_options").is_empty() {
                problems.push(format!("shipment_plans[{p}] has no available_options"));
            }
            if !plan.get("selected_option").is_some_and(Value::is_object) {
                problems.push(format!("shipment_plans[{p}] has no selected_option"));
            }
            if plan
                .get("external_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
                && id_value(plan.get("id")).is_none()
            {
                problems.push(format!(
                    "shipment_plans[{p}] has neither external_id nor id"
                ));
            }
        }
        self.require(
            "update_shipment_contact",
            INV_SHIPMENT_PLANS,
            problems.is_empty(),
            problems.join("; "),
        );
        Some(answer)
    }

    /// Selects an option of the first plan (another than the pre-selected one if any).
    async fn select_option(&mut self, replay: bool) -> Option<Value> {
        let order = self.last_order.clone()?;
        let plan = list(&order, "shipment_plans").first()?.clone();
        let plan_id = plan
            .get("external_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| id_value(plan.get("id")))?
            .to_string();
        let option_key = |o: &Value| -> Option<String> {
            o.get("external_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or_else(|| id_value(o.get("id")))
                .map(str::to_string)
        };
        let selected = plan.get("selected_option").and_then(option_key);
        let options: Vec<String> = list(&plan, "available_options")
            .iter()
            .filter_map(option_key)
            .collect();
        let choice = options
            .iter()
            .find(|o| Some(*o) != selected.as_ref())
            .or_else(|| options.first())?
            .clone();
        let answer = self
            .update(
                "update_shipping_option",
                json!({"shipping_option": {"plan_id": {"value": plan_id},
                       "option_id": {"value": choice}, "external_option_id": choice}}),
                &[SegmentType::ShippingOption],
                replay,
            )
            .await?;
        let now = answer
            .pointer("/order/order/shipment_plans/0/selected_option")
            .and_then(option_key);
        self.require(
            "update_shipping_option",
            INV_OPTION_SELECTED,
            now.as_deref() == Some(choice.as_str()),
            format!("option {choice:?} was selected, the plan's selected_option is {now:?}"),
        );
        Some(answer)
    }

    /// Adds line `L-2` (Fast's batching) and replays the update: no duplicated line.
    async fn add_item(&mut self) -> Option<Value> {
        let mut item = json!({"item_id": {"value": "L-2"}, "external_product_id": self.opts.product_id,
                              "quantity": 1});
        if let (Some(v), Some(o)) = (&self.opts.variant_id, item.as_object_mut()) {
            o.insert("external_variant_id".into(), json!(v));
        }
        let answer = self
            .update(
                "add_item",
                json!({"items": [item]}),
                &[SegmentType::LineItem],
                true,
            )
            .await?;
        let order = answer
            .pointer("/order/order")
            .cloned()
            .unwrap_or(Value::Null);
        let ids: Vec<&str> = list(&order, "lines")
            .iter()
            .filter_map(|l| id_value(l.get("id")))
            .collect();
        self.require(
            "add_item",
            INV_LINES,
            ids.iter().filter(|i| **i == "L-1").count() == 1
                && ids.iter().filter(|i| **i == "L-2").count() == 1,
            format!("lines L-1 and L-2 expected once each, the order has {ids:?}"),
        );
        Some(answer)
    }

    async fn convert(&mut self) -> Option<Value> {
        let answer = self
            .update(
                "convert_cart_to_order",
                json!({"convert_cart_to_order": true,
                       "convert_mode": "CART_TO_ORDER_CONVERT_UPDATE_AND_CONVERT"}),
                &[SegmentType::ConvertCartToOrder],
                true,
            )
            .await?;
        let order = answer
            .pointer("/order/order")
            .cloned()
            .unwrap_or(Value::Null);
        let otype = enum_name(
            order.get("order_type"),
            OrderType::from_name,
            OrderType::from_number,
        );
        let status = enum_name(
            order.get("status"),
            OrderStatus::from_name,
            OrderStatus::from_number,
        );
        self.require(
            "convert_cart_to_order",
            INV_CONVERSION,
            otype == Some(OrderType::Order) && status.is_some_and(|s| s != OrderStatus::Cart),
            format!(
                "a converted cart must be ORDER_TYPE_ORDER and no longer CART, got order_type {} status {}",
                compare::show(order.get("order_type")),
                compare::show(order.get("status"))
            ),
        );
        Some(answer)
    }

    /// A post-conversion status update as Fast sends it: only `external_id`.
    async fn status_update(&mut self, status: OrderStatus) -> Option<Value> {
        let rid = self.next_request_id();
        let step = format!("status {}", status.name());
        let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": self.opts.app_id,
            "request_id": {"value": rid},
            "order": {"external_id": self.seller_id.clone().unwrap_or_default(),
                      "convert_cart_to_order": true, "status": status.name()}});
        let answer = self
            .update_body(&step, &body, &rid, &[SegmentType::OrderStatus], false)
            .await?;
        let got = enum_name(
            answer.pointer("/order/order/status"),
            OrderStatus::from_name,
            OrderStatus::from_number,
        );
        self.require(
            &step,
            INV_CONVERSION,
            got == Some(status),
            format!(
                "status {} expected, got {}",
                status.name(),
                compare::show(answer.pointer("/order/order/status"))
            ),
        );
        Some(answer)
    }

    async fn delete(&mut self) {
        let rid = self.next_request_id();
        let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": self.opts.app_id,
            "request_id": {"value": rid},
            "order": {"is_cart": true, "order_id": {"value": self.fast_id},
                      "external_id": self.seller_id.clone().unwrap_or_default()}});
        let Some((answer, sent)) = self.send("delete", "delete", &body, 200).await else {
            return;
        };
        let empty =
            |v: Option<&Value>| v.is_none_or(|v| v.as_object().is_some_and(|o| o.is_empty()));
        let shape_ok = answer.as_object().is_some_and(|o| {
            o.keys()
                .all(|k| matches!(k.as_str(), "type" | "request_id" | "order"))
                && empty(o.get("order"))
        });
        self.require(
            "delete",
            INV_DELETE,
            shape_ok,
            format!(
                "delete must answer {{}} (or {{type, order: {{}}}}), got {}",
                compare::show(Some(&answer))
            ),
        );
        if let Some(rid_back) = answer.get("request_id") {
            self.require(
                "delete",
                INV_REQUEST_ID_ECHO,
                id_value(Some(rid_back)) == Some(rid.as_str()),
                format!(
                    "request_id {rid:?} sent, {} answered",
                    compare::show(Some(rid_back))
                ),
            );
        }
        self.replay_check("delete", &sent, &answer).await;
        let read = json!({"type": "ENTITY_TYPE_ORDER", "app_id": self.opts.app_id,
                          "order": {"order_id": {"value": self.fast_id}}});
        match self.post("read", read.to_string().into_bytes()).await {
            Ok(a) if a.status == 404 => {
                self.check("read after delete", INV_DELETE, Outcome::Pass, "")
            }
            Ok(a) if a.status == 200 => {
                let status = enum_name(
                    a.json().pointer("/order/order/status"),
                    OrderStatus::from_name,
                    OrderStatus::from_number,
                );
                self.require(
                    "read after delete",
                    INV_DELETE,
                    status == Some(OrderStatus::Deleted),
                    format!(
                        "a deleted cart must be gone (404) or ORDER_STATUS_DELETED, it reads as {}",
                        compare::show(a.json().pointer("/order/order/status"))
                    ),
                );
            }
            Ok(a) => self.check(
                "read after delete",
                INV_DELETE,
                Outcome::Fail,
                format!("read after delete answered HTTP {}", a.status),
            ),
            Err(e) => self.check(
                "read after delete",
                INV_HTTP_STATUS,
                Outcome::Fail,
                e.to_string(),
            ),
        }
    }

    async fn unknown_order(&mut self) {
        let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": self.opts.app_id,
                          "order": {"order_id": {"value": format!("{}-missing", self.fast_id)}}});
        match self.post("read", body.to_string().into_bytes()).await {
            Ok(a) if a.status == 404 => {
                self.check("read unknown order", INV_UNKNOWN_ORDER, Outcome::Pass, "")
            }
            Ok(a) => self.check(
                "read unknown order",
                INV_UNKNOWN_ORDER,
                Outcome::Warn,
                format!("an unknown order should answer 404, got HTTP {}", a.status),
            ),
            Err(e) => self.check(
                "read unknown order",
                INV_HTTP_STATUS,
                Outcome::Fail,
                e.to_string(),
            ),
        }
    }

    async fn run(&mut self, op: Operation) {
        match op {
            Operation::NewUser => {
                if self.create(true).await.is_none() {
                    return;
                }
                self.read_check("read_cart", Some("external_order_id"))
                    .await;
                self.bill_to(true).await;
                self.read_check("read after bill_to", None).await;
                if self.shipments().await.is_some() {
                    self.select_option(true).await;
                }
                self.add_item().await;
                self.read_check("read after items", None).await;
                if self.convert().await.is_some() {
                    self.status_update(OrderStatus::Booked).await;
                    self.status_update(OrderStatus::PendingFulfillment).await;
                    self.read_check("read the order", Some("external_order_id"))
                        .await;
                }
            }
            Operation::CreateCart => {
                self.create(true).await;
            }
            Operation::ReadCart => {
                if self.create(false).await.is_some() {
                    self.read_check("read_cart by order_id", None).await;
                    self.read_check("read_cart by external_order_id", Some("external_order_id"))
                        .await;
                    self.read_check("read_cart by external_id", Some("external_id"))
                        .await;
                }
                self.unknown_order().await;
            }
            Operation::UpdateBillTo => {
                if self.create(false).await.is_some() {
                    self.bill_to(true).await;
                }
            }
            Operation::UpdateShipmentContact => {
                if self.create(false).await.is_some() {
                    self.shipments().await;
                }
            }
            Operation::UpdateShippingOption => {
                if self.create(false).await.is_some() && self.shipments().await.is_some() {
                    self.select_option(true).await;
                }
            }
            Operation::ConvertCartToOrder => {
                if self.create(false).await.is_some() && self.convert().await.is_some() {
                    self.status_update(OrderStatus::Booked).await;
                }
            }
            Operation::Delete => {
                if self.create(false).await.is_some() {
                    self.delete().await;
                }
            }
        }
    }
}
