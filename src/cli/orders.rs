//! `fast-seller orders …`: the merchant API of a running server from the command line.

use super::admin::AdminClient;
use super::table::{self, cell};
use super::{fail, CommandError};
use crate::domain::manage::{parse_cancel_reason, RestockType};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct OrdersArgs {
    /// Admin API of the running server (token from FAST_SELLER_ADMIN_TOKEN)
    #[arg(
        long,
        env = "FAST_SELLER_ADMIN_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    #[command(subcommand)]
    pub command: OrdersCommand,
}

/// Who acts, and the guards of a change.
#[derive(Debug, clap::Args)]
pub struct ActionArgs {
    /// Refuse the change unless the order is still at this version (as `show` printed it)
    #[arg(long)]
    pub if_match: Option<u64>,
    /// Makes a retried command apply once
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Who acts, for the order's audit history
    #[arg(long)]
    pub employee_id: Option<String>,
    /// Where the action comes from, for the audit history
    #[arg(long, default_value = "cli")]
    pub source: String,
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// List orders, a page at a time
    List(ListArgs),
    /// One order with its management state and history (JSON)
    Show {
        /// The order: its Fast id or its seller id
        id: String,
    },
    /// Cancel the whole order (--reason and --yes), or some line quantities
    /// (--line LINE_ID=QTY, repeated)
    Cancel(CancelArgs),
    /// Calculate a refund (--line LINE_ID=QTY[:cancel|return|no_restock]) and create it
    Refund(RefundArgs),
    /// Fulfil everything left, or some line quantities (--line LINE_ID=QTY)
    Fulfil(FulfilArgs),
    /// Tell Fast to collect the payment (CLEAR_TO_COLLECT_PAYMENT)
    Capture {
        /// The order: its Fast id or its seller id
        id: String,
        #[command(flatten)]
        action: ActionArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// An order status, e.g. booked or ORDER_STATUS_BOOKED
    #[arg(long)]
    pub status: Option<String>,
    /// Created at or after (RFC 3339 or YYYY-MM-DD)
    #[arg(long)]
    pub created_from: Option<String>,
    /// Created before (RFC 3339 or YYYY-MM-DD)
    #[arg(long)]
    pub created_to: Option<String>,
    /// Text in the email, seller id or Fast id
    #[arg(long)]
    pub q: Option<String>,
    /// next_cursor of the previous page
    #[arg(long)]
    pub cursor: Option<String>,
    /// Orders per page
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Leave out the orders `replay` and `validate` created (their Fast ids contain
    /// `fs-test-`)
    #[arg(long)]
    pub no_test_orders: bool,
    /// Print the page as JSON (default: a table)
    #[arg(long)]
    pub json: bool,
}

/// What `--reason` of a cancel accepts, for `--help` and the error.
const CANCEL_REASONS: &str = "customer_initiated, merchant_initiated, no_stock, bad_config or \
     other (or the CANCEL_REASON_CODE_* name, its number 1-5, or seed:1 to seed:6 for the \
     merchant's seed codes)";

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The order: its Fast id or its seller id
    pub id: String,
    /// Cancel only this many units of a line (LINE_ID=QTY, repeated); without it, the
    /// whole order
    #[arg(long = "line", value_name = "LINE_ID=QTY")]
    pub lines: Vec<String>,
    /// Why, required to cancel a whole order: customer_initiated, merchant_initiated,
    /// no_stock, bad_config or other (or the CANCEL_REASON_CODE_* name, its number 1-5,
    /// or seed:1 to seed:6 for the merchant's seed codes)
    #[arg(long)]
    pub reason: Option<String>,
    /// Confirm cancelling a whole order (otherwise asked on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// A finer reason, in your own words
    #[arg(long)]
    pub sub_reason: Option<String>,
    /// A note kept with the cancellation and sent to Fast
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub action: ActionArgs,
}

#[derive(Debug, clap::Args)]
pub struct RefundArgs {
    /// The order: its Fast id or its seller id
    pub id: String,
    /// Refund this many units of a line (LINE_ID=QTY[:cancel|return|no_restock], repeated)
    #[arg(long = "line", value_name = "LINE_ID=QTY[:RESTOCK]")]
    pub lines: Vec<String>,
    /// `full`, or an amount of shipping excl. tax
    #[arg(long)]
    pub shipping: Option<String>,
    /// REFUND_REASON_CODE_* name, short name or number
    #[arg(long)]
    pub reason: Option<String>,
    /// original_method (default) or store_credit
    #[arg(long)]
    pub method: Option<String>,
    /// A note kept with the refund and sent to Fast
    #[arg(long)]
    pub note: Option<String>,
    /// Your own id of this refund (e.g. from the payment system)
    #[arg(long)]
    pub external_refund_id: Option<String>,
    /// Only print the calculation
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub action: ActionArgs,
}

#[derive(Debug, clap::Args)]
pub struct FulfilArgs {
    /// The order: its Fast id or its seller id
    pub id: String,
    /// Fulfil only this many units of a line (LINE_ID=QTY, repeated); without it,
    /// everything left
    #[arg(long = "line", value_name = "LINE_ID=QTY")]
    pub lines: Vec<String>,
    /// Who carries the parcel, e.g. UPS
    #[arg(long, default_value = "")]
    pub carrier: String,
    /// The carrier's tracking number
    #[arg(long, default_value = "")]
    pub tracking_number: String,
    /// YYYY-MM-DD
    #[arg(long)]
    pub estimated_delivery_date: Option<String>,
    #[command(flatten)]
    pub action: ActionArgs,
}

/// `fast-seller orders …`: the answer of the admin API, pretty-printed (`list`: a table
/// unless `--json`).
pub async fn run(args: &OrdersArgs) -> Result<String, CommandError> {
    if let OrdersCommand::Cancel(cancel) = &args.command {
        cancel.confirm()?;
    }
    let admin = AdminClient::new(&args.url)?;
    let value = match &args.command {
        OrdersCommand::List(list) => {
            let mut page = admin
                .send(admin.get(&["orders"])?.query(&list.query()))
                .await?;
            if list.no_test_orders {
                if let Some(orders) = page.get_mut("orders").and_then(Value::as_array_mut) {
                    orders.retain(|o| {
                        !o["id"]
                            .as_str()
                            .is_some_and(|id| id.contains(crate::tapes::TEST_ORDER_MARK))
                    });
                }
            }
            if !list.json {
                return Ok(orders_table(&page));
            }
            page
        }
        OrdersCommand::Show { id } => admin.send(admin.get(&["orders", id])?).await?,
        OrdersCommand::Cancel(cancel) => {
            act(&admin, &cancel.id, "cancel", cancel.body()?, &cancel.action).await?
        }
        OrdersCommand::Refund(refund) => refund.run(&admin).await?,
        OrdersCommand::Fulfil(fulfil) => {
            act(
                &admin,
                &fulfil.id,
                "fulfillments",
                fulfil.body()?,
                &fulfil.action,
            )
            .await?
        }
        OrdersCommand::Capture { id, action } => {
            act(&admin, id, "capture", json!({}), action).await?
        }
    };
    serde_json::to_string_pretty(&value)
        .map(|s| s + "\n")
        .map_err(fail)
}

impl ListArgs {
    /// The query string of `GET /admin/v1/orders`.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![("limit", self.limit.to_string())];
        for (name, value) in [
            ("status", &self.status),
            ("created_from", &self.created_from),
            ("created_to", &self.created_to),
            ("q", &self.q),
            ("cursor", &self.cursor),
        ] {
            if let Some(v) = value {
                query.push((name, v.clone()));
            }
        }
        query
    }
}

/// A page of `orders list` as a table, with how to get the next page.
fn orders_table(page: &Value) -> String {
    let empty = Vec::new();
    let orders = page["orders"].as_array().unwrap_or(&empty);
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|o| {
            let status = cell(o, "status");
            let status = status
                .strip_prefix("ORDER_STATUS_")
                .unwrap_or(&status)
                .to_lowercase();
            let total = match o["currency_code"].as_str() {
                Some(c) => format!("{} {c}", cell(o, "total_amount")),
                None => cell(o, "total_amount"),
            };
            vec![
                cell(o, "id"),
                cell(o, "external_id"),
                status,
                total,
                cell(o, "email"),
                cell(o, "version"),
                cell(o, "updated_at"),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        "no orders\n".to_string()
    } else {
        table::render(
            &[
                "id",
                "seller id",
                "status",
                "total",
                "email",
                "version",
                "updated",
            ],
            &rows,
        )
    };
    if let Some(cursor) = page["next_cursor"].as_str() {
        out += &format!("more: --cursor {cursor}\n");
    }
    if let Some(skipped) = page["skipped"].as_array().filter(|s| !s.is_empty()) {
        out += &format!(
            "{} stored orders could not be read (see the server log)\n",
            skipped.len()
        );
    }
    out
}

impl CancelArgs {
    /// A whole-order cancel needs a reason, and `--yes` or a "y" on a terminal.
    fn confirm(&self) -> Result<(), CommandError> {
        if !self.lines.is_empty() {
            return Ok(());
        }
        let Some(reason) = &self.reason else {
            return Err(fail(format!(
                "cancelling the whole order {} needs --reason: {CANCEL_REASONS}",
                self.id
            )));
        };
        if self.yes {
            return Ok(());
        }
        use std::io::{BufRead, IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            return Err(fail(format!(
                "cancelling the whole order {} needs --yes (no terminal to ask on)",
                self.id
            )));
        }
        eprint!(
            "Cancel the whole order {} (reason {reason})? [y/N] ",
            self.id
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(fail)?;
        if matches!(answer.trim(), "y" | "Y" | "yes") {
            Ok(())
        } else {
            Err(fail("not canceled"))
        }
    }

    fn body(&self) -> Result<Value, CommandError> {
        let mut body = json!({});
        if let Some(r) = &self.reason {
            let (reason, seed) = parse_cancel_reason(r).ok_or_else(|| {
                fail(format!(
                    "--reason `{r}` is not a cancel reason: {CANCEL_REASONS}"
                ))
            })?;
            body["reason"] = json!(reason.name());
            put(&mut body, &[("seed_code", seed.map(|s| json!(s.number())))]);
        }
        put(
            &mut body,
            &[
                ("lines", parse_lines(&self.lines, false)?),
                ("sub_reason", text(&self.sub_reason)),
                ("note", text(&self.note)),
            ],
        );
        Ok(body)
    }
}

impl RefundArgs {
    /// Calculates the refund and, unless `--dry-run`, creates it with that calculation.
    async fn run(&self, admin: &AdminClient) -> Result<Value, CommandError> {
        let mut body = self.body()?;
        let calc = act(
            admin,
            &self.id,
            "refunds/calculate",
            body.clone(),
            &self.action,
        )
        .await?;
        if self.dry_run {
            return Ok(calc);
        }
        body["calculation"] = calc["calculation"].clone();
        act(admin, &self.id, "refunds", body, &self.action).await
    }

    fn body(&self) -> Result<Value, CommandError> {
        let mut body = json!({});
        let shipping = self.shipping.as_deref().map(|s| match s.trim() {
            "full" => json!("full"),
            amount => json!({ "amount": amount }),
        });
        put(
            &mut body,
            &[
                ("lines", parse_lines(&self.lines, true)?),
                ("shipping", shipping),
                ("reason", text(&self.reason)),
                ("method", text(&self.method)),
                ("note", text(&self.note)),
                ("external_refund_id", text(&self.external_refund_id)),
            ],
        );
        Ok(body)
    }
}

impl FulfilArgs {
    fn body(&self) -> Result<Value, CommandError> {
        let mut body = json!({"carrier": self.carrier, "tracking_number": self.tracking_number});
        put(
            &mut body,
            &[
                ("lines", parse_lines(&self.lines, false)?),
                (
                    "estimated_delivery_date",
                    text(&self.estimated_delivery_date),
                ),
            ],
        );
        Ok(body)
    }
}

/// POSTs a merchant action on order `id`.
async fn act(
    admin: &AdminClient,
    id: &str,
    action: &str,
    mut body: Value,
    args: &ActionArgs,
) -> Result<Value, CommandError> {
    put(
        &mut body,
        &[
            ("employee_id", text(&args.employee_id)),
            ("source", Some(json!(args.source))),
        ],
    );
    let mut segments = vec!["orders", id];
    segments.extend(action.split('/'));
    let mut request = admin.post(&segments)?.json(&body);
    if let Some(v) = args.if_match {
        request = request.header("if-match", v.to_string());
    }
    if let Some(k) = &args.idempotency_key {
        request = request.header("idempotency-key", k);
    }
    admin.send(request).await
}

/// `LINE_ID=QTY` or `LINE_ID=QTY:RESTOCK`.
fn parse_line(text: &str, restock: bool) -> Result<Value, CommandError> {
    let bad = || {
        fail(format!(
            "--line `{text}`: expected LINE_ID=QTY{}",
            if restock { "[:RESTOCK]" } else { "" }
        ))
    };
    let (id, rest) = text.split_once('=').ok_or_else(bad)?;
    let (qty, kind) = match rest.split_once(':') {
        Some((q, k)) if restock => (q, Some(k)),
        Some(_) => return Err(bad()),
        None => (rest, None),
    };
    let quantity: i64 = qty.trim().parse().map_err(|_| bad())?;
    let mut line = json!({"line_id": id.trim(), "quantity": quantity});
    if let Some(k) = kind {
        let kind = RestockType::parse(k).ok_or_else(|| {
            fail(format!(
                "--line `{text}`: `{k}` is not cancel, return or no_restock"
            ))
        })?;
        line["restock"] = json!(kind.name());
    }
    Ok(line)
}

fn parse_lines(lines: &[String], restock: bool) -> Result<Option<Value>, CommandError> {
    if lines.is_empty() {
        return Ok(None);
    }
    let parsed: Result<Vec<_>, _> = lines.iter().map(|l| parse_line(l, restock)).collect();
    Ok(Some(Value::Array(parsed?)))
}

/// Puts the optional fields that are set into `body`.
fn put(body: &mut Value, fields: &[(&str, Option<Value>)]) {
    for (name, value) in fields {
        if let Some(v) = value {
            body[*name] = v.clone();
        }
    }
}

fn text(value: &Option<String>) -> Option<Value> {
    value.clone().map(Value::String)
}
