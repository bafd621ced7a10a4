//! The status machine (docs/pricing.md "Status machine"):
//! CART →(convert) PENDING → BOOKED → PENDING_FULFILLMENT → FULFILLED → COMPLETE;
//! CANCELED from any state before FULFILLED; DELETED only by delete.

use crate::protocol::OrderStatus;

/// Whether an update's `status` segment may move an order from `from` to `to`.
/// Staying in the same state is allowed (a repeated status update is a no-op).
pub fn can_move(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    if from == to {
        return matches!(
            to,
            Pending | Booked | PendingFulfillment | Fulfilled | Complete | Canceled
        );
    }
    matches!(
        (from, to),
        (Pending, Booked)
            | (Booked, PendingFulfillment)
            | (PendingFulfillment, Fulfilled)
            | (Fulfilled, Complete)
            | (
                Cart | Pending | Hold | Booked | PendingFulfillment,
                Canceled
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn forward_chain_and_cancel_before_fulfilment_only() {
        for (from, to) in [
            (Pending, Booked),
            (Booked, PendingFulfillment),
            (PendingFulfillment, Fulfilled),
            (Fulfilled, Complete),
            (Cart, Canceled),
            (Booked, Canceled),
            (PendingFulfillment, Canceled),
            (Booked, Booked),
        ] {
            assert!(can_move(from, to), "{from:?} → {to:?} must be allowed");
        }
        for (from, to) in [
            (Cart, Pending),
            (Cart, Booked),
            (Pending, PendingFulfillment),
            (Fulfilled, Canceled),
            (Complete, Canceled),
            (Canceled, Booked),
            (Booked, Deleted),
            (Deleted, Deleted),
            (Booked, Pending),
            (Cart, Cart),
        ] {
            assert!(!can_move(from, to), "{from:?} → {to:?} must be refused");
        }
    }
}
