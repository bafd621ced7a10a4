//! Refunds in two steps, as in the seed (`003_…txt`): calculate (per line the refundable
//! quantity, the amounts and the restock type; shipping), then create, which must match the
//! calculation to the cent.

use super::audit::{commit, to_detail, AuditAction};
use super::cancel::{CanceledLine, Cancellation, MoneyDelta};
use super::checks::{check_actor, check_text, check_unique, line_index};
use super::codes::CancelReason;
use super::codes::{RefundMethod, RefundReason, RestockType};
use super::ledger::{reconcile, Ledger, LineLedger};
use super::money::{
    recompute_totals, scale_line, share_of_left, shipping_tax_of, LineDelta, LineMoney,
};
use super::payment::check_refundable;
use super::{
    cancel_allowed, fast_order_id, settle_status, status_of, Actor, ManageError, MAX_NOTE_LEN,
    MAX_SHORT_LEN,
};
use crate::domain::pricing::round;
use crate::protocol::{FastOrder, FulfillmentModel, Id, Money, OrderStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// How much shipping to refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShippingRefund {
    /// Everything not yet refunded (cost and its tax).
    Full,
    /// This much of the cost, excl. tax (whole cents, at most what is left); its tax
    /// follows pro rata.
    Amount(Money),
}

/// One line of a refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLineRequest {
    pub line_id: Id,
    pub quantity: i64,
    /// Left out: `no_restock` if the quantity fits in the fulfilled refundable units, else
    /// `cancel` if it fits in the unfulfilled ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restock: Option<RestockType>,
    /// Left out: the refund's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefundReason>,
}

/// A merchant's refund, for both steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundRequest {
    #[serde(default)]
    pub lines: Vec<RefundLineRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingRefund>,
    #[serde(default)]
    pub reason: RefundReason,
    /// Defaults to `REFUND_METHOD_ORIGINAL_METHOD`.
    #[serde(default = "original_method")]
    pub method: RefundMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The id Fast sees (`external_refund_id`): e.g. an RMA number. Defaults to the
    /// refund id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_refund_id: Option<String>,
    #[serde(default, flatten)]
    pub actor: Actor,
}

fn original_method() -> RefundMethod {
    RefundMethod::OriginalMethod
}

impl Default for RefundRequest {
    fn default() -> Self {
        RefundRequest {
            lines: Vec::new(),
            shipping: None,
            reason: RefundReason::Unspecified,
            method: RefundMethod::OriginalMethod,
            note: None,
            external_refund_id: None,
            actor: Actor::default(),
        }
    }
}

/// One line of a calculation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLineCalc {
    pub line_id: Id,
    pub quantity: i64,
    /// Units refundable with this restock type before this refund: fulfilled and not
    /// refunded (`return`, `no_restock`) or unfulfilled (`cancel`).
    pub refundable_quantity: i64,
    pub restock: RestockType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_mode: Option<FulfillmentModel>,
    pub reason: RefundReason,
    pub amount_excl_tax: Money,
    pub tax: Money,
    pub amount_incl_tax: Money,
}

/// The shipping part of a calculation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingRefundCalc {
    /// Shipping cost (excl. tax) left to refund before this refund.
    pub refundable_amount: Money,
    /// Shipping tax left to refund before this refund.
    pub refundable_tax: Money,
    pub amount_excl_tax: Money,
    pub tax: Money,
    pub amount_incl_tax: Money,
}

/// Totals of a calculation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundTotals {
    /// Lines, excl. tax.
    pub subtotal: Money,
    /// Line tax plus shipping tax.
    pub tax: Money,
    /// Shipping excl. tax.
    pub shipping: Money,
    /// `subtotal + tax + shipping`.
    pub total: Money,
}

/// What a refund would do. Hand it to the merchant; the create step takes it back and
/// refuses if anything moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundCalculation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    pub lines: Vec<RefundLineCalc>,
    pub shipping: ShippingRefundCalc,
    pub totals: RefundTotals,
}

/// A recorded refund.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub external_refund_id: String,
    /// The ledger version it produced.
    pub version: u64,
    pub created_at_ms: u64,
    pub reason: RefundReason,
    pub method: RefundMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub actor: Actor,
    pub calculation: RefundCalculation,
    /// Of the total, the part that canceled unfulfilled units before capture: recorded as
    /// a cancellation (naming this refund), not as money refunded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub canceled: Money,
    pub status_after: OrderStatus,
}

fn is_zero(m: &Money) -> bool {
    m.0.is_zero()
}

/// A refund worked out: the calculation, the order and ledger after it, and the units it
/// canceled before capture (with what they took off the order).
struct Plan {
    calc: RefundCalculation,
    after: FastOrder,
    led: Ledger,
    canceled: Vec<CanceledLine>,
    canceled_sum: LineDelta,
}

/// Calculates a refund without recording anything.
pub fn refund_calculate(
    order: &FastOrder,
    ledger: &Ledger,
    req: &RefundRequest,
) -> Result<RefundCalculation, ManageError> {
    plan(order, ledger, req).map(|p| p.calc)
}

/// The calculation a merchant who saw only its total agreed to: refused unless the refund,
/// calculated now, comes to exactly `total`.
pub fn calculation_for_total(
    order: &FastOrder,
    ledger: &Ledger,
    req: &RefundRequest,
    total: Money,
) -> Result<RefundCalculation, ManageError> {
    let calc = refund_calculate(order, ledger, req)?;
    if calc.totals.total != total {
        return Err(ManageError::RefundMismatch {
            field: "amount".into(),
            expected: total.to_string(),
            actual: calc.totals.total.to_string(),
        });
    }
    Ok(calc)
}

/// Records a refund. It is recalculated and refused if it differs from `expected` (the
/// calculation the merchant saw) in any line, quantity, restock type or amount, or if it
/// would refund more than was paid. `refund_id` is a fresh id; `req.external_refund_id`
/// defaults to it. Both must be new on this order.
pub fn refund_create(
    order: &FastOrder,
    ledger: &Ledger,
    req: &RefundRequest,
    expected: &RefundCalculation,
    refund_id: &str,
    now_ms: u64,
) -> Result<(FastOrder, Ledger, Refund), ManageError> {
    let external = req
        .external_refund_id
        .clone()
        .unwrap_or_else(|| refund_id.to_string());
    for (field, value) in [("refund_id", refund_id), ("external_refund_id", &external)] {
        if value.trim().is_empty() {
            return Err(ManageError::InvalidField {
                field: field.into(),
                message: "must not be empty".into(),
            });
        }
        check_text(field, Some(value), MAX_SHORT_LEN)?;
    }
    if ledger.refunds.iter().any(|r| r.id == refund_id) {
        return Err(ManageError::DuplicateId {
            kind: "refund",
            id: refund_id.into(),
        });
    }
    if ledger
        .refunds
        .iter()
        .any(|r| r.external_refund_id == external)
    {
        return Err(ManageError::DuplicateId {
            kind: "external refund",
            id: external,
        });
    }
    let Plan {
        calc,
        after,
        mut led,
        canceled,
        canceled_sum,
    } = plan(order, ledger, req)?;
    if let Some((field, exp, act)) = first_difference(expected, &calc) {
        return Err(ManageError::RefundMismatch {
            field,
            expected: exp,
            actual: act,
        });
    }
    let canceled_total = canceled_sum.net() + canceled_sum.tax;
    check_refundable(order, ledger, calc.totals.total.0 - canceled_total)?;
    check_paid(&after, &led, calc.totals.total.0 - canceled_total)?;

    if !canceled.is_empty() {
        led.cancellations.push(Cancellation {
            version: led.version + 1,
            at_ms: now_ms,
            whole: false,
            lines: canceled,
            cancel_total: MoneyDelta {
                subtotal: Money(canceled_sum.subtotal),
                discount: Money(canceled_sum.discount),
                tax: Money(canceled_sum.tax),
                shipping: Money::ZERO,
                total: Money(canceled_total),
            },
            reason: CancelReason::Unspecified,
            seed_code: None,
            sub_reason: None,
            note: req.note.clone(),
            actor: req.actor.clone(),
            status_after: status_of(&after),
            refund_id: Some(refund_id.into()),
        });
    }
    let record = Refund {
        id: refund_id.into(),
        external_refund_id: external,
        version: led.version + 1,
        created_at_ms: now_ms,
        reason: req.reason,
        method: req.method,
        note: req.note.clone(),
        actor: req.actor.clone(),
        calculation: calc,
        canceled: Money(canceled_total),
        status_after: status_of(&after),
    };
    commit(
        &mut led,
        order,
        &after,
        AuditAction::Refund,
        &req.actor,
        to_detail(&record),
        now_ms,
    );
    led.refunds.push(record.clone());
    Ok((after, led, record))
}

/// The calculation, the order and the ledger as they would be after the refund.
fn plan(order: &FastOrder, ledger: &Ledger, req: &RefundRequest) -> Result<Plan, ManageError> {
    fast_order_id(order)?;
    let status = status_of(order);
    if matches!(status, OrderStatus::Cart | OrderStatus::Deleted) {
        let why = if status == OrderStatus::Cart {
            "a cart has not been paid"
        } else {
            "Fast deleted it"
        };
        return Err(ManageError::StatusForbids {
            action: "refund",
            status,
            why: why.into(),
        });
    }
    check_actor(&req.actor)?;
    check_text("note", req.note.as_deref(), MAX_NOTE_LEN)?;
    if req.lines.is_empty() && req.shipping.is_none() {
        return Err(ManageError::EmptyRefund);
    }
    check_unique(req.lines.iter().map(|l| &l.line_id))?;

    let mut led = reconcile(order, ledger)?;
    let mut after = order.clone();
    let shipping = order.total_shipping.unwrap_or_default().0;
    let shipping_tax = shipping_tax_of(order);
    let mut lines = Vec::with_capacity(req.lines.len());
    let mut any_cancel = false;
    let mut canceled = Vec::new();
    let mut canceled_sum = LineDelta::default();
    for rl in &req.lines {
        let (line, delta) = refund_line(&mut after, &mut led, status, rl, req.reason)?;
        any_cancel |= line.restock == RestockType::Cancel;
        if let (Some(d), false) = (delta, ledger.captured) {
            canceled_sum.subtotal += d.subtotal;
            canceled_sum.discount += d.discount;
            canceled_sum.tax += d.tax;
            canceled.push(CanceledLine {
                line_id: line.line_id.clone(),
                quantity: line.quantity,
                remaining: line_index(&after, &line.line_id)
                    .ok()
                    .and_then(|i| after.lines.get(i))
                    .map_or(0, |l| l.quantity.0),
                subtotal: Money(d.subtotal),
                discount: Money(d.discount),
                tax: Money(d.tax),
                total: Money(d.net() + d.tax),
            });
        }
        lines.push(line);
    }
    let ship = refund_shipping(&mut led, req.shipping, shipping, shipping_tax)?;
    if any_cancel {
        // Shipping stays on the order: it is refunded only when asked for.
        recompute_totals(&mut after, shipping, shipping_tax);
        settle_status(&mut after, &led);
    }

    let subtotal: Decimal = lines.iter().map(|l| l.amount_excl_tax.0).sum();
    let line_tax: Decimal = lines.iter().map(|l| l.tax.0).sum();
    let tax = line_tax + ship.tax.0;
    let calc = RefundCalculation {
        currency_code: order.currency_code.clone(),
        lines,
        shipping: ship,
        totals: RefundTotals {
            subtotal: Money(subtotal),
            tax: Money(tax),
            shipping: ship.amount_excl_tax,
            total: Money(subtotal + tax + ship.amount_excl_tax.0),
        },
    };
    Ok(Plan {
        calc,
        after,
        led,
        canceled,
        canceled_sum,
    })
}

/// Checks and applies one refund line to the working order and ledger; for restock
/// `cancel`, also what the units took off the line.
fn refund_line(
    after: &mut FastOrder,
    led: &mut Ledger,
    status: OrderStatus,
    rl: &RefundLineRequest,
    default_reason: RefundReason,
) -> Result<(RefundLineCalc, Option<LineDelta>), ManageError> {
    let idx = line_index(after, &rl.line_id)?;
    let units = LineUnits::of(after, led, idx, rl)?;
    let ((refundable, amount, tax), delta) = match units.restock {
        RestockType::Cancel => {
            units.check_cancel(status)?;
            let (refund, delta) = units.cancel(after, led, idx);
            (refund, Some(delta))
        }
        RestockType::Return | RestockType::NoRestock => {
            units.check_fulfilled()?;
            (units.refund_fulfilled(led), None)
        }
    };
    let calc = RefundLineCalc {
        line_id: rl.line_id.clone(),
        quantity: units.quantity,
        refundable_quantity: refundable,
        restock: units.restock,
        fulfillment_mode: units.mode,
        reason: rl.reason.unwrap_or(default_reason),
        amount_excl_tax: Money(amount),
        tax: Money(tax),
        amount_incl_tax: Money(amount + tax),
    };
    Ok((calc, delta))
}

/// One refund line against what its order line and ledger entry hold before it.
struct LineUnits {
    line_id: Id,
    quantity: i64,
    restock: RestockType,
    mode: Option<FulfillmentModel>,
    /// Units on the line.
    current: i64,
    money: LineMoney,
    entry: LineLedger,
    /// Fulfilled and not yet refunded.
    refundable_fulfilled: i64,
    unfulfilled: i64,
    fully_refunded: bool,
}

/// `(refundable units, amount excl. tax, tax)` of a refund line.
type LineRefund = (i64, Decimal, Decimal);

impl LineUnits {
    /// Refuses a quantity below 1; picks the default restock type (see the module docs).
    fn of(
        order: &FastOrder,
        led: &Ledger,
        idx: usize,
        rl: &RefundLineRequest,
    ) -> Result<LineUnits, ManageError> {
        let name = rl.line_id.0.clone();
        let q = rl.quantity;
        if q < 1 {
            return Err(ManageError::InvalidQuantity {
                line: name,
                quantity: q,
            });
        }
        let (Some(line), Some(entry)) = (order.lines.get(idx), led.line(&rl.line_id).cloned())
        else {
            return Err(ManageError::UnknownLine { line: name });
        };
        let current = line.quantity.0;
        let refundable_fulfilled = entry.fulfilled - entry.refunded;
        let unfulfilled = current - entry.fulfilled;
        let restock = rl.restock.unwrap_or(if q <= refundable_fulfilled {
            RestockType::NoRestock
        } else if q <= unfulfilled || refundable_fulfilled == 0 {
            RestockType::Cancel
        } else {
            RestockType::NoRestock
        });
        Ok(LineUnits {
            line_id: rl.line_id.clone(),
            quantity: q,
            restock,
            mode: line.fulfillment_mode,
            current,
            money: LineMoney::of(line),
            fully_refunded: current > 0 && entry.refunded >= current,
            entry,
            refundable_fulfilled,
            unfulfilled,
        })
    }

    fn not_allowed(&self, why: String) -> ManageError {
        ManageError::RestockNotAllowed {
            line: self.line_id.0.clone(),
            restock: self.restock,
            why,
        }
    }

    fn exceeds(&self, refundable: i64) -> ManageError {
        ManageError::ExceedsRefundable {
            line: self.line_id.0.clone(),
            requested: self.quantity,
            refundable: refundable.max(0),
            restock: self.restock,
        }
    }

    fn already_refunded(&self) -> ManageError {
        ManageError::LineFullyRefunded {
            line: self.line_id.0.clone(),
        }
    }

    /// Restock `cancel`: unfulfilled units, while the order may still be canceled.
    fn check_cancel(&self, status: OrderStatus) -> Result<(), ManageError> {
        if self.unfulfilled <= 0 && self.fully_refunded {
            return Err(self.already_refunded());
        }
        if self.unfulfilled <= 0 && self.refundable_fulfilled > 0 {
            return Err(self.not_allowed(
                "every unit of the line is fulfilled: use `return` or `no_restock`".into(),
            ));
        }
        if cancel_allowed(status, "cancel").is_err() {
            return Err(self.not_allowed(format!(
                "the order is {}; units can only be canceled before fulfilment",
                status.name()
            )));
        }
        if self.quantity > self.unfulfilled {
            return Err(self.exceeds(self.unfulfilled));
        }
        Ok(())
    }

    /// Takes the units off the line; the refund is exactly what that takes off. Before
    /// capture nothing was collected, so the units are only canceled; after it their money
    /// is refunded too.
    fn cancel(
        &self,
        after: &mut FastOrder,
        led: &mut Ledger,
        idx: usize,
    ) -> (LineRefund, LineDelta) {
        let q = self.quantity;
        let d = scale_line(after, idx, self.current - q, self.entry.refunded_in_line());
        let captured = led.captured;
        if let Some(e) = led.line_mut(&self.line_id) {
            e.canceled += q;
            if captured {
                e.refund_canceled += q;
                e.cancel_refunded_amount.0 += d.net();
                e.cancel_refunded_tax.0 += d.tax;
                e.refunded_amount.0 += d.net();
                e.refunded_tax.0 += d.tax;
            }
        }
        ((self.unfulfilled, d.net(), d.tax), d)
    }

    /// Restock `return` (physical lines only) or `no_restock`: fulfilled, unrefunded units.
    fn check_fulfilled(&self) -> Result<(), ManageError> {
        let physical = !matches!(
            self.mode,
            Some(FulfillmentModel::Digital | FulfillmentModel::Service)
        );
        if self.restock == RestockType::Return && !physical {
            let kind = match self.mode {
                Some(FulfillmentModel::Service) => "service",
                _ => "digital",
            };
            return Err(self.not_allowed(format!(
                "a {kind} line has nothing to restock: use `no_restock`"
            )));
        }
        if self.refundable_fulfilled <= 0 {
            if self.fully_refunded {
                return Err(self.already_refunded());
            }
            if self.unfulfilled > 0 {
                return Err(self.not_allowed(format!(
                    "none of its units is fulfilled and refundable ({} \
                     unfulfilled): unfulfilled units must use `cancel`",
                    self.unfulfilled
                )));
            }
        }
        if self.quantity > self.refundable_fulfilled {
            return Err(self.exceeds(self.refundable_fulfilled));
        }
        Ok(())
    }

    /// Refunds the units' pro-rata share of what is left unrefunded on the line.
    fn refund_fulfilled(&self, led: &mut Ledger) -> LineRefund {
        let q = self.quantity;
        let (refunded_net, refunded_tax) = self.entry.in_line_refunded();
        let units_left = self.current - self.entry.refunded;
        let net_left = self.money.net() - refunded_net;
        let tax_left = self.money.tax - refunded_tax;
        let (part, whole) = (Decimal::from(q), Decimal::from(units_left));
        let amount = share_of_left(net_left, part, whole);
        let tax = share_of_left(tax_left, part, whole);
        if let Some(e) = led.line_mut(&self.line_id) {
            e.refunded += q;
            if self.restock == RestockType::Return {
                e.returned += q;
            }
            e.refunded_amount.0 += amount;
            e.refunded_tax.0 += tax;
        }
        (self.refundable_fulfilled, amount, tax)
    }
}

/// Checks and applies the shipping part.
fn refund_shipping(
    led: &mut Ledger,
    wanted: Option<ShippingRefund>,
    shipping: Decimal,
    shipping_tax: Decimal,
) -> Result<ShippingRefundCalc, ManageError> {
    let left = shipping - led.shipping_refunded.0;
    let tax_left = shipping_tax - led.shipping_tax_refunded.0;
    let (amount, tax) = match wanted {
        None => (Decimal::ZERO, Decimal::ZERO),
        Some(ShippingRefund::Full) => {
            if left <= Decimal::ZERO && tax_left <= Decimal::ZERO {
                return Err(ManageError::ShippingExceeds {
                    requested: Money(left.max(Decimal::ZERO)),
                    refundable: Money(Decimal::ZERO),
                });
            }
            (left, tax_left)
        }
        Some(ShippingRefund::Amount(Money(x))) => {
            if x < Decimal::ZERO {
                return Err(ManageError::NegativeAmount {
                    field: "shipping.amount".into(),
                    value: Money(x),
                });
            }
            if round(x) != x {
                return Err(ManageError::InvalidField {
                    field: "shipping.amount".into(),
                    message: format!("{x} is not a whole number of cents"),
                });
            }
            if x > left {
                return Err(ManageError::ShippingExceeds {
                    requested: Money(x),
                    refundable: Money(left.max(Decimal::ZERO)),
                });
            }
            (x, share_of_left(tax_left, x, left))
        }
    };
    led.shipping_refunded.0 += amount;
    led.shipping_tax_refunded.0 += tax;
    Ok(ShippingRefundCalc {
        refundable_amount: Money(left),
        refundable_tax: Money(tax_left),
        amount_excl_tax: Money(amount),
        tax: Money(tax),
        amount_incl_tax: Money(amount + tax),
    })
}

/// Never more than was paid: per line (excl. tax and tax, for the units still on it),
/// shipping, and the order as a whole.
fn check_paid(after: &FastOrder, led: &Ledger, refunding: Decimal) -> Result<(), ManageError> {
    let exceeds = |what: String, refunded: Decimal, paid: Decimal| {
        if refunded > paid {
            Err(ManageError::ExceedsPaid {
                what,
                refunded: Money(refunded),
                paid: Money(paid),
            })
        } else {
            Ok(())
        }
    };
    let mut canceled_refunds = Decimal::ZERO;
    for line in &after.lines {
        let Some(entry) = line.id.as_ref().and_then(|id| led.line(id)) else {
            continue;
        };
        let money = LineMoney::of(line);
        let (net, tax) = entry.in_line_refunded();
        let id = &entry.line_id.0;
        exceeds(format!("line {id} excl. tax"), net, money.net())?;
        exceeds(format!("line {id} tax"), tax, money.tax)?;
        canceled_refunds += entry.cancel_refunded_amount.0 + entry.cancel_refunded_tax.0;
    }
    let shipping = after.total_shipping.unwrap_or_default().0;
    exceeds(
        "shipping".into(),
        led.shipping_refunded.0,
        shipping.max(Decimal::ZERO),
    )?;
    exceeds(
        "shipping tax".into(),
        led.shipping_tax_refunded.0,
        shipping_tax_of(after).max(Decimal::ZERO),
    )?;
    let refunded = led.total_refunded().0 + refunding;
    let paid = after.total_amount.unwrap_or_default().0 + canceled_refunds;
    exceeds("the order".into(), refunded, paid)
}

/// The actionable facts of a calculation, in a fixed order, as `(field, value)`.
fn facts(calc: &RefundCalculation) -> Vec<(String, String)> {
    let mut out = vec![("lines.count".to_string(), calc.lines.len().to_string())];
    for (i, l) in calc.lines.iter().enumerate() {
        out.push((format!("lines[{i}].line_id"), l.line_id.0.clone()));
        out.push((format!("lines[{i}].quantity"), l.quantity.to_string()));
        out.push((format!("lines[{i}].restock"), l.restock.name().into()));
        out.push((format!("lines[{i}].reason"), l.reason.name().into()));
        out.push((
            format!("lines[{i}].amount_excl_tax"),
            l.amount_excl_tax.to_wire(),
        ));
        out.push((format!("lines[{i}].tax"), l.tax.to_wire()));
        out.push((
            format!("lines[{i}].amount_incl_tax"),
            l.amount_incl_tax.to_wire(),
        ));
    }
    let s = &calc.shipping;
    out.push((
        "shipping.amount_excl_tax".into(),
        s.amount_excl_tax.to_wire(),
    ));
    out.push(("shipping.tax".into(), s.tax.to_wire()));
    out.push((
        "shipping.amount_incl_tax".into(),
        s.amount_incl_tax.to_wire(),
    ));
    let t = &calc.totals;
    out.push(("totals.subtotal".into(), t.subtotal.to_wire()));
    out.push(("totals.tax".into(), t.tax.to_wire()));
    out.push(("totals.shipping".into(), t.shipping.to_wire()));
    out.push(("totals.total".into(), t.total.to_wire()));
    out
}

/// The first actionable difference between two calculations: `(field, expected, actual)`.
/// The informational `refundable_*` figures are not compared.
fn first_difference(
    expected: &RefundCalculation,
    actual: &RefundCalculation,
) -> Option<(String, String, String)> {
    let (a, b) = (facts(expected), facts(actual));
    for (i, (field, exp)) in a.iter().enumerate() {
        match b.get(i) {
            Some((f, act)) if f == field && act == exp => continue,
            Some((f, act)) if f == field => {
                return Some((field.clone(), exp.clone(), act.clone()));
            }
            _ => return Some((field.clone(), exp.clone(), "absent".into())),
        }
    }
    b.get(a.len())
        .map(|(f, act)| (f.clone(), "absent".into(), act.clone()))
}
