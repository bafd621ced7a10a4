//! The enums of Fast's order-management calls (README "Order management") and the seed's cancel codes.
//!
//! Like the checkout enums in `protocol::wire`, every Fast enum here parses from its full
//! name (`CANCEL_REASON_CODE_NO_STOCK`), its name without the prefix, in any case
//! (`no_stock`), its number (`3`) or a numeric string (`"3"`), and is written as its full
//! name.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Defines a Fast enum: full name, number, and the common prefix of its names.
macro_rules! fast_enum {
    ($(#[$meta:meta])* $name:ident, $prefix:literal {
        $($(#[$vmeta:meta])* $variant:ident = $num:literal, $wire:literal;)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            #[default]
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in number order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// The common prefix of the wire names.
            pub const PREFIX: &'static str = $prefix;

            /// The wire name, e.g. `CANCEL_REASON_CODE_NO_STOCK`.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }
            /// The protobuf number.
            pub fn number(self) -> i64 {
                match self { $($name::$variant => $num,)+ }
            }
            /// From the full name or the name without its prefix, in any case.
            pub fn from_name(text: &str) -> Option<Self> {
                let upper = text.trim().to_ascii_uppercase();
                let full = if upper.starts_with($prefix) {
                    upper
                } else {
                    format!("{}{}", $prefix, upper)
                };
                Self::ALL.iter().copied().find(|v| v.name() == full)
            }
            pub fn from_number(n: i64) -> Option<Self> {
                match n { $($num => Some($name::$variant),)+ _ => None }
            }
            /// From a name (full or short) or a number written as text.
            pub fn parse(text: &str) -> Option<Self> {
                Self::from_name(text)
                    .or_else(|| text.trim().parse::<i64>().ok().and_then(Self::from_number))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        crate::protocol::wire::enum_serde!($name);
    };
}

fast_enum!(
    /// Why an order is canceled (`CancelReasonCode` of Fast's cancel call).
    ///
    /// Plain numbers are Fast's numbers (0–5). The seed's prose list of codes 1–6 is a
    /// different, older numbering: use [`SeedCancelCode`] / [`CancelReason::from_seed_code`]
    /// (or the `seed:N` form, which [`parse_cancel_reason`] accepts; serde takes Fast's forms only).
    CancelReason, "CANCEL_REASON_CODE_" {
        Unspecified = 0, "CANCEL_REASON_CODE_UNSPECIFIED";
        CustomerInitiated = 1, "CANCEL_REASON_CODE_CUSTOMER_INITIATED";
        MerchantInitiated = 2, "CANCEL_REASON_CODE_MERCHANT_INITIATED";
        NoStock = 3, "CANCEL_REASON_CODE_NO_STOCK";
        BadConfig = 4, "CANCEL_REASON_CODE_BAD_CONFIG";
        Other = 5, "CANCEL_REASON_CODE_OTHER";
    }
);

fast_enum!(
    /// Why money is refunded (`RefundReasonCode`), for the refund and each of its lines.
    RefundReason, "REFUND_REASON_CODE_" {
        Unspecified = 0, "REFUND_REASON_CODE_UNSPECIFIED";
        Unsatisfied = 1, "REFUND_REASON_CODE_UNSATISFIED";
        WrongOption = 2, "REFUND_REASON_CODE_WRONG_OPTION";
        WrongProduct = 3, "REFUND_REASON_CODE_WRONG_PRODUCT";
        DamagedProduct = 4, "REFUND_REASON_CODE_DAMAGED_PRODUCT";
        NotDelivered = 5, "REFUND_REASON_CODE_NOT_DELIVERED";
        WrongTax = 6, "REFUND_REASON_CODE_WRONG_TAX";
        WrongShipping = 7, "REFUND_REASON_CODE_WRONG_SHIPPING";
        Overcharge = 8, "REFUND_REASON_CODE_OVERCHARGE";
        Courtesy = 9, "REFUND_REASON_CODE_COURTESY";
        Other = 10, "REFUND_REASON_CODE_OTHER";
    }
);

fast_enum!(
    /// Where refunded money goes (`RefundMethod`).
    RefundMethod, "REFUND_METHOD_" {
        Unspecified = 0, "REFUND_METHOD_UNSPECIFIED";
        StoreCredit = 1, "REFUND_METHOD_STORE_CREDIT";
        OriginalMethod = 2, "REFUND_METHOD_ORIGINAL_METHOD";
    }
);

fast_enum!(
    /// `event_type` of Fast's business-event call.
    BusinessEventType, "BUSINESS_EVENT_TYPE_" {
        Unspecified = 0, "BUSINESS_EVENT_TYPE_UNSPECIFIED";
        Fulfillment = 1, "BUSINESS_EVENT_TYPE_FULFILLMENT";
        ClearToCollectPayment = 2, "BUSINESS_EVENT_TYPE_CLEAR_TO_COLLECT_PAYMENT";
    }
);

/// The cancel codes of the seed's prose page (`000_…txt`): "1 Buyer canceled … 6 Payment
/// declined". No implementation ever sent these numbers; Fast's contract has
/// [`CancelReason`]. Each maps onto one Fast reason:
///
/// | seed | prose | Fast reason | why |
/// |---|---|---|---|
/// | 1 | Buyer canceled | `CUSTOMER_INITIATED` | the shopper asked for it |
/// | 2 | Entity not found | `BAD_CONFIG` | a product/order id the seller cannot resolve is an integration or catalog setup fault |
/// | 3 | Unprocessable order | `BAD_CONFIG` | the seller's systems cannot take the order: a Fast↔seller integration failure, which is what Fast's cancel is for |
/// | 4 | Insufficient Stock | `NO_STOCK` | same meaning |
/// | 5 | Fraud check failed | `MERCHANT_INITIATED` | the merchant's own fraud screening decided to cancel |
/// | 6 | Payment declined | `OTHER` | neither party chose it, not stock, not configuration |
///
/// The reverse direction ([`CancelReason::seed_codes`]) is therefore one-to-many for
/// `BAD_CONFIG` (2 and 3) and empty for `UNSPECIFIED`. The seed code given by the merchant
/// is kept in the cancellation record and written into the notes sent to Fast, so nothing
/// of the finer code is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeedCancelCode {
    BuyerCanceled,
    EntityNotFound,
    UnprocessableOrder,
    InsufficientStock,
    FraudCheckFailed,
    PaymentDeclined,
}

impl SeedCancelCode {
    pub const ALL: &'static [SeedCancelCode] = &[
        SeedCancelCode::BuyerCanceled,
        SeedCancelCode::EntityNotFound,
        SeedCancelCode::UnprocessableOrder,
        SeedCancelCode::InsufficientStock,
        SeedCancelCode::FraudCheckFailed,
        SeedCancelCode::PaymentDeclined,
    ];

    /// The seed's number, 1–6.
    pub fn number(self) -> u8 {
        match self {
            SeedCancelCode::BuyerCanceled => 1,
            SeedCancelCode::EntityNotFound => 2,
            SeedCancelCode::UnprocessableOrder => 3,
            SeedCancelCode::InsufficientStock => 4,
            SeedCancelCode::FraudCheckFailed => 5,
            SeedCancelCode::PaymentDeclined => 6,
        }
    }

    /// The seed's wording.
    pub fn description(self) -> &'static str {
        match self {
            SeedCancelCode::BuyerCanceled => "Buyer canceled",
            SeedCancelCode::EntityNotFound => "Entity not found",
            SeedCancelCode::UnprocessableOrder => "Unprocessable order",
            SeedCancelCode::InsufficientStock => "Insufficient Stock",
            SeedCancelCode::FraudCheckFailed => "Fraud check failed",
            SeedCancelCode::PaymentDeclined => "Payment declined",
        }
    }

    /// The Fast reason it maps onto (table above).
    pub fn reason(self) -> CancelReason {
        match self {
            SeedCancelCode::BuyerCanceled => CancelReason::CustomerInitiated,
            SeedCancelCode::EntityNotFound | SeedCancelCode::UnprocessableOrder => {
                CancelReason::BadConfig
            }
            SeedCancelCode::InsufficientStock => CancelReason::NoStock,
            SeedCancelCode::FraudCheckFailed => CancelReason::MerchantInitiated,
            SeedCancelCode::PaymentDeclined => CancelReason::Other,
        }
    }

    pub fn from_number(n: i64) -> Option<SeedCancelCode> {
        SeedCancelCode::ALL
            .iter()
            .copied()
            .find(|c| i64::from(c.number()) == n)
    }

    /// `seed:N` (any case, spaces allowed around the parts) or a plain `N`, N in 1–6.
    pub fn parse(text: &str) -> Option<SeedCancelCode> {
        let t = text.trim();
        let digits = match t.split_once(':') {
            Some((tag, rest)) if tag.trim().eq_ignore_ascii_case("seed") => rest.trim(),
            Some(_) => return None,
            None => t,
        };
        digits
            .parse::<i64>()
            .ok()
            .and_then(SeedCancelCode::from_number)
    }
}

impl Serialize for SeedCancelCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for SeedCancelCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let found = match &v {
            Value::String(s) => SeedCancelCode::parse(s),
            Value::Number(n) => n.as_i64().and_then(SeedCancelCode::from_number),
            _ => None,
        };
        found.ok_or_else(|| D::Error::custom(format!("{v} is not a seed cancel code (1–6)")))
    }
}

impl CancelReason {
    /// The Fast reason for one of the seed's codes, given as `seed:N` or a plain `N` (1–6).
    /// Note that a plain number means the *seed's* numbering here, unlike
    /// [`CancelReason::parse`], where it is Fast's.
    pub fn from_seed_code(text: &str) -> Option<CancelReason> {
        SeedCancelCode::parse(text).map(SeedCancelCode::reason)
    }

    /// The seed codes that map onto this reason (the reverse of [`SeedCancelCode::reason`]).
    pub fn seed_codes(self) -> Vec<SeedCancelCode> {
        SeedCancelCode::ALL
            .iter()
            .copied()
            .filter(|c| c.reason() == self)
            .collect()
    }
}

/// Parses what a merchant may type as a cancel reason: a Fast name (full or short, any
/// case), a Fast number (0–5), or a seed code `seed:N` (1–6), which also comes back so it
/// can be recorded.
pub fn parse_cancel_reason(text: &str) -> Option<(CancelReason, Option<SeedCancelCode>)> {
    if text.contains(':') {
        return SeedCancelCode::parse(text).map(|c| (c.reason(), Some(c)));
    }
    CancelReason::parse(text).map(|r| (r, None))
}

/// What happens to the goods of a refunded line (the seed's `restock_type`).
///
/// - unfulfilled units: `cancel` only (they are taken off the order);
/// - fulfilled physical units: `return` (they come back to stock) or `no_restock`;
/// - fulfilled digital or service units: `no_restock` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestockType {
    Cancel,
    Return,
    NoRestock,
}

impl RestockType {
    pub fn name(self) -> &'static str {
        match self {
            RestockType::Cancel => "cancel",
            RestockType::Return => "return",
            RestockType::NoRestock => "no_restock",
        }
    }

    /// `cancel`, `return` or `no_restock` (any case; `-` or `_`).
    pub fn parse(text: &str) -> Option<RestockType> {
        match text.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "cancel" => Some(RestockType::Cancel),
            "return" => Some(RestockType::Return),
            "no_restock" => Some(RestockType::NoRestock),
            _ => None,
        }
    }
}

impl std::fmt::Display for RestockType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Writes an int64 as a JSON string (protojson's canonical form, what Fast's outbound
/// examples send) and reads a number or a numeric string.
pub(crate) mod int64_text {
    use crate::protocol::Int64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&n.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        Int64::deserialize(d).map(|n| n.0)
    }
}
