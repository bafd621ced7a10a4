//! `fast-seller validate`: plays Fast against any seller backend and checks the protocol's
//! invariants without knowing the seller's prices.
//!
//! The flows are those of Fast's old direct-integration validator (`new_user`, `create_cart`,
//! `read_cart`, `update_bill_to`, `update_shipment_contact`, `update_shipping_option`,
//! `convert_cart_to_order`) plus `delete`. Each flow starts its own cart (Fast order id
//! `fs-test-<run>-<n>`), so flows are independent and the run can be repeated.
//!
//! Every check names its invariant (the `INV_*` constants). `FAIL` checks break the
//! protocol as Fast relies on it; `WARN` checks are conventions sellers differ on (for
//! instance whether a line's `total_amount` includes tax) and do not fail the run.
//!
//! Here: the invariants, the operations and [`validate`], which runs each flow. The steps of
//! a flow by verb: `create`, `read`, `update`, `delete`; `session` sends requests and runs
//! the checks every answer gets, `checks` holds the pure document checks (totals, enums,
//! money), `report` what a run found.

mod checks;
mod create;
mod delete;
mod read;
mod report;
mod session;
mod update;

pub use checks::check_totals;
pub use report::{Check, FlowResult, Outcome, ValidateReport};

use super::{Signing, TapeError};
use crate::protocol::OrderStatus;
use serde_json::Value;
use session::Session;
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
            fast_id: format!("{}{run}-{}", crate::tapes::TEST_ORDER_MARK, n + 1),
            requests: 0,
            checks: Vec::new(),
            seller_id: None,
            last_order: None,
        };
        run_flow(&mut s, op).await;
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

/// Runs one flow: a fresh cart taken through the steps the operation names.
async fn run_flow(s: &mut Session<'_>, op: Operation) {
    match op {
        Operation::NewUser => {
            if create::create_cart(s, true).await.is_none() {
                return;
            }
            read::read_check(s, "read_cart", Some("external_order_id")).await;
            update::bill_to(s, true).await;
            read::read_check(s, "read after bill_to", None).await;
            if update::shipments(s).await.is_some() {
                update::select_option(s, true).await;
            }
            update::add_item(s).await;
            read::read_check(s, "read after items", None).await;
            if update::convert(s).await.is_some() {
                update::status_update(s, OrderStatus::Booked).await;
                update::status_update(s, OrderStatus::PendingFulfillment).await;
                read::read_check(s, "read the order", Some("external_order_id")).await;
            }
        }
        Operation::CreateCart => {
            create::create_cart(s, true).await;
        }
        Operation::ReadCart => {
            if create::create_cart(s, false).await.is_some() {
                read::read_check(s, "read_cart by order_id", None).await;
                read::read_check(
                    s,
                    "read_cart by external_order_id",
                    Some("external_order_id"),
                )
                .await;
                read::read_check(s, "read_cart by external_id", Some("external_id")).await;
            }
            read::unknown_order(s).await;
        }
        Operation::UpdateBillTo => {
            if create::create_cart(s, false).await.is_some() {
                update::bill_to(s, true).await;
            }
        }
        Operation::UpdateShipmentContact => {
            if create::create_cart(s, false).await.is_some() {
                update::shipments(s).await;
            }
        }
        Operation::UpdateShippingOption => {
            if create::create_cart(s, false).await.is_some() && update::shipments(s).await.is_some()
            {
                update::select_option(s, true).await;
            }
        }
        Operation::ConvertCartToOrder => {
            if create::create_cart(s, false).await.is_some() && update::convert(s).await.is_some() {
                update::status_update(s, OrderStatus::Booked).await;
            }
        }
        Operation::Delete => {
            if create::create_cart(s, false).await.is_some() {
                delete::delete_cart(s).await;
            }
        }
    }
}
