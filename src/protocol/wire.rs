//! Lenient scalar types of the Fast wire format.
//!
//! Fast encodes with protojson: ids are wrapped as `{"value": "…"}`, money is a decimal
//! string of any scale, int64 may be a number or a string, enums may be names or numbers.
//! Each type here accepts every form Fast was seen to send and writes one canonical form.
//! Parsing goes through `serde_json::Value`, which keeps exact number text
//! (`arbitrary_precision`), so no value ever passes through an `f64`.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::str::FromStr;

/// Longest id we accept (request ids, order ids, line ids).
pub const MAX_ID_LEN: usize = 255;

/// An opaque id, sent as `{"value": "…"}` (or, in the seed documents, a plain string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub String);

impl Id {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("value", &self.0)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Other keys inside the wrapper are ignored: a published example nests a misspelled
        // `quanity` inside `item_id`.
        let text = match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Object(mut m) => match m.remove("value") {
                Some(Value::String(s)) => s,
                Some(Value::Null) | None => String::new(),
                Some(_) => return Err(D::Error::custom("id `value` must be a string")),
            },
            _ => {
                return Err(D::Error::custom(
                    "expected an id wrapper {\"value\": \"…\"} or a string",
                ))
            }
        };
        if text.len() > MAX_ID_LEN {
            return Err(D::Error::custom(format!(
                "id is longer than {MAX_ID_LEN} characters"
            )));
        }
        Ok(Id(text))
    }
}

/// An int64 sent as a JSON number or a numeric string; written as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Int64(pub i64);

impl Serialize for Int64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let text = match &v {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            _ => return Err(D::Error::custom("expected an integer (number or string)")),
        };
        text.parse::<i64>()
            .map(Int64)
            .map_err(|_| D::Error::custom(format!("`{text}` is not a 64-bit integer")))
    }
}

/// A money amount: decimal, parsed from a string (or a number's exact text), written as a
/// string with exactly two decimals, rounded half away from zero.
/// Amounts are refused from here on (a quadrillion): sums and `price × quantity` then stay
/// far inside `Decimal`'s 28 digits, and every amount is written with its two decimals.
pub const MAX_MONEY: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Money(pub Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Rounds half away from zero to cents.
    pub fn cents(d: Decimal) -> Money {
        Money(d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }

    /// Parses a decimal string such as `"29.99"`, `"45"` or `"0.0"`.
    pub fn parse(text: &str) -> Result<Money, String> {
        let t = text.trim();
        let valid = !t.is_empty()
            && t.chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && c == '-'));
        if !valid {
            return Err(format!("`{text}` is not a decimal amount"));
        }
        let d = Decimal::from_str(t)
            .map_err(|_| format!("`{text}` is not a decimal amount in range"))?;
        if d.abs() >= Decimal::from(MAX_MONEY) {
            return Err(format!(
                "`{text}` is out of range (amounts stay below {MAX_MONEY})"
            ));
        }
        Ok(Money(d))
    }

    pub fn to_wire(self) -> String {
        let mut d = self
            .0
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        d.rescale(2);
        d.to_string()
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_wire())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Money::parse(&s).map_err(D::Error::custom),
            Value::Number(n) => Money::parse(&n.to_string()).map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "expected a decimal string such as \"29.99\"",
            )),
        }
    }
}

/// Defines a protobuf enum as Fast sends it: parsed from its name, an alias, its number or a
/// numeric string; written as its name.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $num:literal, $wire:literal $(| $alias:literal)*;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            #[default]
            $($variant,)+
        }

        impl $name {
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }
            pub fn number(self) -> i64 {
                match self { $($name::$variant => $num,)+ }
            }
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($wire $(| $alias)* => Some($name::$variant),)+ _ => None }
            }
            pub fn from_number(n: i64) -> Option<Self> {
                match n { $($num => Some($name::$variant),)+ _ => None }
            }
        }

        enum_serde!($name);
    };
}

/// Serde for an enum with `name()`, `from_name` and `from_number`: written as its name, read
/// from a name, a number or a numeric string. Shared with the order-management enums.
macro_rules! enum_serde {
    ($name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
                $crate::protocol::wire::parse_enum(&v, $name::from_name, $name::from_number)
                    .ok_or_else(|| {
                        <D::Error as serde::de::Error>::custom(format!(
                            "{} is not a valid {}",
                            v,
                            stringify!($name)
                        ))
                    })
            }
        }
    };
}
pub(crate) use enum_serde;

/// A name, a number or a numeric string, as `wire_enum!` and `enum_serde!` read them.
pub fn parse_enum<T>(
    v: &Value,
    by_name: fn(&str) -> Option<T>,
    by_number: fn(i64) -> Option<T>,
) -> Option<T> {
    match v {
        Value::String(s) => by_name(s).or_else(|| s.parse::<i64>().ok().and_then(by_number)),
        Value::Number(n) => n.as_i64().and_then(by_number),
        _ => None,
    }
}

wire_enum!(
    /// The entity a request is about (`type`, or `entity_type` in older documents).
    EntityType {
        Unspecified = 0, "ENTITY_TYPE_UNSPECIFIED";
        Order = 1, "ENTITY_TYPE_ORDER" | "ENTITY_ORDER";
        ShippingOption = 2, "ENTITY_TYPE_SHIPPING_OPTION";
        User = 3, "ENTITY_TYPE_USER";
        ShippingZones = 4, "ENTITY_TYPE_SHIPPING_ZONES";
        CatalogProduct = 5, "ENTITY_TYPE_CATALOG_PRODUCT";
        Webhook = 6, "ENTITY_TYPE_WEBHOOK";
        OrderSync = 7, "ENTITY_TYPE_ORDER_SYNC";
        CatalogCategory = 8, "ENTITY_TYPE_CATALOG_CATEGORY";
    }
);

wire_enum!(
    OrderType {
        Unspecified = 0, "ORDER_TYPE_UNSPECIFIED";
        Cart = 1, "ORDER_TYPE_CART";
        Order = 2, "ORDER_TYPE_ORDER";
        Return = 3, "ORDER_TYPE_RETURN";
        Exchange = 4, "ORDER_TYPE_EXCHANGE";
        Credit = 5, "ORDER_TYPE_CREDIT";
        Refund = 6, "ORDER_TYPE_REFUND";
    }
);

wire_enum!(
    OrderStatus {
        Unspecified = 0, "ORDER_STATUS_UNSPECIFIED";
        Cart = 1, "ORDER_STATUS_CART";
        Pending = 2, "ORDER_STATUS_PENDING";
        Hold = 3, "ORDER_STATUS_HOLD";
        Booked = 4, "ORDER_STATUS_BOOKED";
        PendingFulfillment = 5, "ORDER_STATUS_PENDING_FULFILLMENT";
        Fulfilled = 6, "ORDER_STATUS_FULFILLED";
        Complete = 7, "ORDER_STATUS_COMPLETE";
        Canceled = 8, "ORDER_STATUS_CANCELED";
        Deleted = 9, "ORDER_STATUS_DELETED";
    }
);

wire_enum!(
    /// `fulfillment_mode` of a line.
    FulfillmentModel {
        Unspecified = 0, "ITEM_FULFILLMENT_MODEL_UNSPECIFIED";
        Physical = 1, "ITEM_FULFILLMENT_MODEL_PHYSICAL";
        Digital = 2, "ITEM_FULFILLMENT_MODEL_DIGITAL";
        Service = 3, "ITEM_FULFILLMENT_MODEL_SERVICE";
    }
);

wire_enum!(
    /// `shipment_type` of a shipping option. Captured traffic uses 99 for OTHER.
    ShippingOptionType {
        Unspecified = 0, "SHIPPING_OPTION_TYPE_UNSPECIFIED";
        InStorePickup = 1, "SHIPPING_OPTION_TYPE_IN_STORE_PICKUP";
        Other = 99, "SHIPPING_OPTION_TYPE_OTHER";
    }
);

wire_enum!(
    DiscountOrigin {
        Unspecified = 0, "DISCOUNT_ORIGIN_UNSPECIFIED";
        User = 1, "DISCOUNT_ORIGIN_USER";
        Fast = 2, "DISCOUNT_ORIGIN_FAST";
        Vendor = 3, "DISCOUNT_ORIGIN_VENDOR";
    }
);

wire_enum!(
    DiscountType {
        Unspecified = 0, "DISCOUNT_TYPE_UNSPECIFIED";
        Misc = 1, "DISCOUNT_TYPE_MISC";
        Regular = 2, "DISCOUNT_TYPE_REGULAR";
        Shipping = 3, "DISCOUNT_TYPE_SHIPPING";
        Handling = 4, "DISCOUNT_TYPE_HANDLING";
        Wrapping = 5, "DISCOUNT_TYPE_WRAPPING";
    }
);

wire_enum!(
    CartToOrderConvert {
        Unspecified = 0, "CART_TO_ORDER_CONVERT_UNSPECIFIED";
        Only = 1, "CART_TO_ORDER_CONVERT_ONLY";
        UpdateAndConvert = 2, "CART_TO_ORDER_CONVERT_UPDATE_AND_CONVERT";
    }
);

wire_enum!(
    /// `status[].updated` of an update answer: which segment an entry is about.
    SegmentType {
        Unspecified = 0, "UPDATE_ORDER_SEGMENT_TYPE_UNSPECIFIED";
        Coupon = 1, "UPDATE_ORDER_SEGMENT_TYPE_COUPON";
        ShippingAddress = 2, "UPDATE_ORDER_SEGMENT_TYPE_SHIPPING_ADDRESS";
        BillingAddress = 3, "UPDATE_ORDER_SEGMENT_TYPE_BILLING_ADDRESS";
        LineItem = 4, "UPDATE_ORDER_SEGMENT_TYPE_LINE_ITEM";
        ShippingOption = 5, "UPDATE_ORDER_SEGMENT_TYPE_SHIPPING_OPTION";
        ConvertCartToOrder = 6, "UPDATE_ORDER_SEGMENT_TYPE_CONVERT_CART_TO_ORDER";
        OrderStatus = 7, "UPDATE_ORDER_SEGMENT_TYPE_ORDER_STATUS";
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_accepts_wrapper_and_plain_string_and_ignores_extra_keys() {
        let a: Id = serde_json::from_str(r#"{"value":"abc","quanity":3}"#).unwrap();
        let b: Id = serde_json::from_str(r#""abc""#).unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"value":"abc"}"#);
        assert!(serde_json::from_str::<Id>("5").is_err());
        let long = format!("\"{}\"", "x".repeat(MAX_ID_LEN + 1));
        assert!(serde_json::from_str::<Id>(&long).is_err());
    }

    #[test]
    fn int64_accepts_number_or_string_and_refuses_overflow_and_fractions() {
        assert_eq!(serde_json::from_str::<Int64>("7").unwrap(), Int64(7));
        assert_eq!(serde_json::from_str::<Int64>(r#""-7""#).unwrap(), Int64(-7));
        assert!(serde_json::from_str::<Int64>("18446744073709551616").is_err());
        assert!(serde_json::from_str::<Int64>("1.5").is_err());
        assert!(serde_json::from_str::<Int64>("1e3").is_err());
        assert_eq!(serde_json::to_string(&Int64(3)).unwrap(), "3");
    }

    #[test]
    fn money_parses_any_scale_and_writes_two_decimals() {
        for (input, wire) in [
            (r#""29.99""#, "29.99"),
            (r#""0.0""#, "0.00"),
            (r#""45""#, "45.00"),
            (r#""31.990000000000002""#, "31.99"),
            ("32.04", "32.04"),
            (r#""0.005""#, "0.01"),
            (r#""-0.005""#, "-0.01"),
        ] {
            let m: Money = serde_json::from_str(input).unwrap();
            assert_eq!(m.to_wire(), wire, "{input}");
        }
        for bad in [r#""1e400""#, r#""abc""#, r#""""#, "true", r#""1.2.3""#] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
        // Found by fuzzing: above ~7.9e26 two decimals no longer fit; refused well before.
        let most = "999999999999999.99";
        assert_eq!(Money::parse(most).unwrap().to_wire(), most);
        for huge in [
            "1000000000000000",
            "-1000000000000000.00",
            "790000000000000000000000000",
        ] {
            let err = Money::parse(huge).unwrap_err();
            assert!(err.contains("out of range"), "{huge}: {err}");
        }
    }

    #[test]
    fn enums_parse_names_aliases_numbers_and_write_names() {
        let s: OrderStatus = serde_json::from_str(r#""ORDER_STATUS_BOOKED""#).unwrap();
        assert_eq!(s, OrderStatus::Booked);
        assert_eq!(serde_json::from_str::<OrderStatus>("4").unwrap(), s);
        assert_eq!(serde_json::from_str::<OrderStatus>(r#""4""#).unwrap(), s);
        assert_eq!(
            serde_json::from_str::<EntityType>(r#""ENTITY_ORDER""#).unwrap(),
            EntityType::Order
        );
        assert_eq!(
            serde_json::from_str::<ShippingOptionType>("99").unwrap(),
            ShippingOptionType::Other
        );
        assert!(serde_json::from_str::<OrderStatus>(r#""BOOKED""#).is_err());
        assert!(serde_json::from_str::<OrderStatus>("42").is_err());
        assert_eq!(
            serde_json::to_string(&SegmentType::LineItem).unwrap(),
            r#""UPDATE_ORDER_SEGMENT_TYPE_LINE_ITEM""#
        );
    }
}
