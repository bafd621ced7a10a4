//! Canceling a whole order, or some line quantities, before fulfilment.

use super::audit::{commit, to_detail, AuditAction};
use super::checks::{check_actor, check_text, unfulfilled_targets, UnitAction};
use super::codes::{CancelReason, SeedCancelCode};
use super::fast::CancelOrderBody;
use super::ledger::{reconcile, Ledger};
use super::money::{recompute_totals, scale_line, shipping_tax_of, LineDelta};
use super::{
    cancel_allowed, fast_order_id, settle_status, status_of, Actor, LineQuantity, ManageError,
    MAX_NOTE_LEN, MAX_SHORT_LEN,
};
use crate::protocol::{FastOrder, Id, Money, OrderStatus};
use serde::{Deserialize, Serialize};

/// A merchant's cancel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// `None`: the whole order, i.e. every unit not fulfilled and not yet canceled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineQuantity>>,
    /// Fast's reason. Left UNSPECIFIED with a `seed_code`, it comes from the seed code.
    #[serde(default)]
    pub reason: CancelReason,
    /// The seed's finer code (1–6), kept for the record and the notes sent to Fast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_code: Option<SeedCancelCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, flatten)]
    pub actor: Actor,
}

/// Money that left the order (positive amounts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyDelta {
    pub subtotal: Money,
    pub discount: Money,
    /// Line tax, plus shipping tax when shipping went too.
    pub tax: Money,
    pub shipping: Money,
    /// `subtotal − discount + tax + shipping`.
    pub total: Money,
}

/// One line's part of a cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanceledLine {
    pub line_id: Id,
    pub quantity: i64,
    /// Quantity left on the line.
    pub remaining: i64,
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    /// `subtotal − discount + tax`.
    pub total: Money,
}

/// A recorded cancel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cancellation {
    /// The ledger version it produced.
    pub version: u64,
    pub at_ms: u64,
    /// Whether the request was for the whole order.
    pub whole: bool,
    pub lines: Vec<CanceledLine>,
    /// Money no longer owed.
    pub cancel_total: MoneyDelta,
    pub reason: CancelReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_code: Option<SeedCancelCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub actor: Actor,
    pub status_after: OrderStatus,
    /// The refund that canceled these units: a refund of unfulfilled units before capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelOutcome {
    pub cancellation: Cancellation,
    /// Money no longer owed (`cancellation.cancel_total.total`).
    pub cancel_total: Money,
    /// The order's status afterwards.
    pub status: OrderStatus,
    /// Fast's cancel call, when the whole order is now CANCELED (Fast has no partial cancel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_cancel: Option<CancelOrderBody>,
}

/// Cancels the whole order or the given line quantities (see the module docs for the
/// money rules). Refused on a CART and from FULFILLED on.
pub fn cancel(
    order: &FastOrder,
    ledger: &Ledger,
    req: &CancelRequest,
    now_ms: u64,
) -> Result<(FastOrder, Ledger, CancelOutcome), ManageError> {
    let order_id = fast_order_id(order)?;
    cancel_allowed(status_of(order), "cancel")?;
    check_actor(&req.actor)?;
    check_text("sub_reason", req.sub_reason.as_deref(), MAX_SHORT_LEN)?;
    check_text("note", req.note.as_deref(), MAX_NOTE_LEN)?;
    let reason = effective_reason(req)?;
    let mut led = reconcile(order, ledger)?;
    let targets = unfulfilled_targets(order, &led, req.lines.as_deref(), UnitAction::Cancel)?;

    let mut after = order.clone();
    let (lines, sum) = cancel_units(&mut after, &mut led, targets);
    let cancel_total = settle_money(&mut after, order, &led, sum);
    settle_status(&mut after, &led);
    let status = status_of(&after);

    let record = Cancellation {
        version: led.version + 1,
        at_ms: now_ms,
        whole: req.lines.is_none(),
        lines,
        cancel_total,
        reason,
        seed_code: req.seed_code,
        sub_reason: req.sub_reason.clone(),
        note: req.note.clone(),
        actor: req.actor.clone(),
        status_after: status,
        refund_id: None,
    };
    commit(
        &mut led,
        order,
        &after,
        AuditAction::Cancel,
        &req.actor,
        to_detail(&record),
        now_ms,
    );
    led.cancellations.push(record.clone());
    let fast_cancel = (status == OrderStatus::Canceled).then(|| CancelOrderBody {
        order_id,
        reason,
        notes: fast_notes(req),
    });
    let outcome = CancelOutcome {
        cancel_total: cancel_total.total,
        cancellation: record,
        status,
        fast_cancel,
    };
    Ok((after, led, outcome))
}

/// Takes the target units off their lines (see [`scale_line`]). Returns each line's part
/// and what the lines lost in all.
fn cancel_units(
    after: &mut FastOrder,
    led: &mut Ledger,
    targets: Vec<(usize, Id, i64)>,
) -> (Vec<CanceledLine>, LineDelta) {
    let mut lines = Vec::with_capacity(targets.len());
    let mut sum = LineDelta::default();
    for (idx, id, quantity) in targets {
        let Some(entry) = led.line_mut(&id) else {
            continue;
        };
        let current = after.lines.get(idx).map_or(0, |l| l.quantity.0);
        let remaining = current - quantity;
        let d = scale_line(after, idx, remaining, entry.refunded_in_line());
        entry.canceled += quantity;
        sum.subtotal += d.subtotal;
        sum.discount += d.discount;
        sum.tax += d.tax;
        lines.push(CanceledLine {
            line_id: id,
            quantity,
            remaining,
            subtotal: Money(d.subtotal),
            discount: Money(d.discount),
            tax: Money(d.tax),
            total: Money(d.net() + d.tax),
        });
    }
    (lines, sum)
}

/// Rewrites the order's totals after a cancel whose lines lost `sum` (shipping and its tax
/// go only when every unit did, less what was already refunded of them: that stays, as
/// refunded units stay on their lines). Returns the money no longer owed.
fn settle_money(
    after: &mut FastOrder,
    before: &FastOrder,
    led: &Ledger,
    sum: LineDelta,
) -> MoneyDelta {
    let shipping = before.total_shipping.unwrap_or_default().0;
    let shipping_tax = shipping_tax_of(before);
    let everything = after.lines.iter().all(|l| l.quantity.0 == 0);
    let (kept_shipping, kept_shipping_tax) = if everything {
        (led.shipping_refunded.0, led.shipping_tax_refunded.0)
    } else {
        (shipping, shipping_tax)
    };
    recompute_totals(after, kept_shipping, kept_shipping_tax);
    let dropped_shipping = shipping - kept_shipping;
    let tax = sum.tax + shipping_tax - kept_shipping_tax;
    MoneyDelta {
        subtotal: Money(sum.subtotal),
        discount: Money(sum.discount),
        tax: Money(tax),
        shipping: Money(dropped_shipping),
        total: Money(sum.net() + tax + dropped_shipping),
    }
}

/// The reason to send: the given one, or the seed code's when none was given; a reason
/// that contradicts the seed code is refused.
fn effective_reason(req: &CancelRequest) -> Result<CancelReason, ManageError> {
    match req.seed_code {
        None => Ok(req.reason),
        Some(code) if req.reason == CancelReason::Unspecified => Ok(code.reason()),
        Some(code) if req.reason == code.reason() => Ok(req.reason),
        Some(code) => Err(ManageError::InvalidField {
            field: "reason".into(),
            message: format!(
                "{} contradicts seed code {} ({}), which maps to {}",
                req.reason.name(),
                code.number(),
                code.description(),
                code.reason().name()
            ),
        }),
    }
}

/// The `notes` of Fast's cancel call: the seed code, the sub-reason and the note.
fn fast_notes(req: &CancelRequest) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(code) = req.seed_code {
        parts.push(format!(
            "seed code {}: {}",
            code.number(),
            code.description()
        ));
    }
    if let Some(sub) = req.sub_reason.as_deref().filter(|s| !s.trim().is_empty()) {
        parts.push(format!("sub-reason: {sub}"));
    }
    if let Some(note) = req.note.as_deref().filter(|s| !s.trim().is_empty()) {
        parts.push(note.to_string());
    }
    parts.join("; ")
}
