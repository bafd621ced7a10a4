//! Checks of a merchant's request shared by the actions: text lengths, the lines it
//! names, and the units a cancel or a fulfilment takes.

use super::ledger::{fulfilled_of, Ledger};
use super::{Actor, LineQuantity, ManageError, MAX_SHORT_LEN};
use crate::protocol::{FastOrder, Id};

/// Refuses over-long text.
pub(crate) fn check_text(field: &str, value: Option<&str>, max: usize) -> Result<(), ManageError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ManageError::InvalidField {
            field: field.into(),
            message: format!("longer than {max} characters"),
        }),
        _ => Ok(()),
    }
}

pub(crate) fn check_actor(actor: &Actor) -> Result<(), ManageError> {
    check_text("employee_id", actor.employee_id.as_deref(), MAX_SHORT_LEN)?;
    check_text("source", actor.source.as_deref(), MAX_SHORT_LEN)
}

/// Finds the order line with this id.
pub(crate) fn line_index(order: &FastOrder, id: &Id) -> Result<usize, ManageError> {
    order
        .lines
        .iter()
        .position(|l| l.id.as_ref() == Some(id))
        .ok_or_else(|| ManageError::UnknownLine { line: id.0.clone() })
}

/// What happens to the units [`unfulfilled_targets`] picks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UnitAction {
    Cancel,
    Fulfil,
}

impl UnitAction {
    fn name(self) -> &'static str {
        match self {
            UnitAction::Cancel => "cancel",
            UnitAction::Fulfil => "fulfil",
        }
    }

    fn nothing_left(self) -> ManageError {
        match self {
            UnitAction::Cancel => ManageError::NothingToCancel,
            UnitAction::Fulfil => ManageError::NothingToFulfil,
        }
    }

    fn exceeds(self, line: &Id, requested: i64, available: i64) -> ManageError {
        let (line, available) = (line.0.clone(), available.max(0));
        match self {
            UnitAction::Cancel => ManageError::ExceedsCancelable {
                line,
                requested,
                available,
            },
            UnitAction::Fulfil => ManageError::ExceedsFulfillable {
                line,
                requested,
                available,
            },
        }
    }
}

/// `(line index, line id, quantity)` of the units a cancel or a fulfilment takes: the given
/// line quantities, or (`None`) every unit on the order not yet fulfilled. Each must fit in
/// what is left unfulfilled on its line.
pub(crate) fn unfulfilled_targets(
    order: &FastOrder,
    ledger: &Ledger,
    lines: Option<&[LineQuantity]>,
    action: UnitAction,
) -> Result<Vec<(usize, Id, i64)>, ManageError> {
    let left = |idx: usize, id: &Id| {
        order.lines.get(idx).map_or(0, |l| l.quantity.0) - fulfilled_of(ledger, id)
    };
    let Some(lines) = lines else {
        let all: Vec<(usize, Id, i64)> = order
            .lines
            .iter()
            .enumerate()
            .filter_map(|(idx, l)| {
                let id = l.id.clone()?;
                let n = left(idx, &id);
                (n > 0).then_some((idx, id, n))
            })
            .collect();
        if all.is_empty() {
            return Err(action.nothing_left());
        }
        return Ok(all);
    };
    if lines.is_empty() {
        return Err(ManageError::NoLines {
            action: action.name(),
        });
    }
    check_unique(lines.iter().map(|l| &l.line_id))?;
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let idx = line_index(order, &l.line_id)?;
        if l.quantity < 1 {
            return Err(ManageError::InvalidQuantity {
                line: l.line_id.0.clone(),
                quantity: l.quantity,
            });
        }
        let n = left(idx, &l.line_id);
        if l.quantity > n {
            return Err(action.exceeds(&l.line_id, l.quantity, n));
        }
        out.push((idx, l.line_id.clone(), l.quantity));
    }
    Ok(out)
}

/// Refuses a line named twice.
pub(crate) fn check_unique<'a>(ids: impl Iterator<Item = &'a Id>) -> Result<(), ManageError> {
    let mut seen: Vec<&Id> = Vec::new();
    for id in ids {
        if seen.contains(&id) {
            return Err(ManageError::DuplicateLine { line: id.0.clone() });
        }
        seen.push(id);
    }
    Ok(())
}
