//! `FastOrder` and its parts, as they travel on the wire.
//!
//! Only the fields fast-seller reads or computes are typed. Everything else Fast sends
//! (`user_id`, notes, `custom_values`, `refunds`, fields added later) lands in `extra` and is
//! written back unchanged, in the order it came.

use super::wire::{
    DiscountOrigin, DiscountType, FulfillmentModel, Id, Int64, Money, OrderStatus, OrderType,
    ShippingOptionType,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields Fast sent that this version does not model: kept and returned verbatim.
pub type Extra = Map<String, Value>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FastOrder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<OrderType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    #[serde(default)]
    pub bill_to: Address,
    #[serde(default)]
    pub lines: Vec<OrderLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shipment_plans: Vec<ShipmentPlan>,
    #[serde(default)]
    pub coupons: Vec<OrderDiscount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_total: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_discounts: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tax: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_shipping: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<Money>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_variant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_options: Vec<CustomValue>,
    #[serde(default)]
    pub quantity: Int64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_mode: Option<FulfillmentModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discounted_unit_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_discount_amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtotal_amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<Money>,
    #[serde(default)]
    pub discounts: Vec<OrderDiscount>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl FastOrder {
    /// The shopper's e-mail: the billing address's, else the order's own `email` field.
    pub fn email(&self) -> Option<String> {
        self.bill_to
            .extra
            .get("email")
            .or_else(|| self.extra.get("email"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

/// `OrderAddress` (and the identical `AddressUpdate`). Only what pricing needs is typed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_province_code: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Address {
    /// ISO 3166-1 alpha-2 country code: `country_code`, or `country` when it holds a code.
    pub fn country_iso2(&self) -> Option<String> {
        let code = self
            .country_code
            .as_deref()
            .filter(|c| !c.trim().is_empty());
        let from_country = self
            .country
            .as_deref()
            .map(str::trim)
            .filter(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()));
        code.or(from_country).map(|c| c.trim().to_ascii_uppercase())
    }

    /// Subdivision code (`CA` for California), if any.
    pub fn subdivision_code(&self) -> Option<String> {
        self.state_province_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_ascii_uppercase)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// `OrderDiscount`: order-level `coupons[]` and line-level `discounts[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderDiscount {
    #[serde(default)]
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<DiscountOrigin>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub discount_type: Option<DiscountType>,
    #[serde(default)]
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<Money>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShipmentPlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub ship_to: Address,
    #[serde(default)]
    pub lines: Vec<LineReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_option: Option<ShippingOption>,
    #[serde(default)]
    pub available_options: Vec<ShippingOption>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShippingOption {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_type: Option<ShippingOptionType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_level: Option<String>,
}

/// `LineReference`: a Fast line id and a quantity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineReference {
    pub id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Int64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip_with_exact_number_text() {
        let input = r#"{"id":{"value":"o1"},"user_id":"u","bill_to":{"first_name":"Ada","x":{"deep":[1.10]}},"lines":[{"id":{"value":"l1"},"quantity":"2","customizations":[{"key":"k","value":"v"}],"big":12345678901234567890123}],"coupons":[],"later_field":{"a":1.10}}"#;
        let order: FastOrder = serde_json::from_str(input).unwrap();
        assert_eq!(order.lines[0].quantity, Int64(2));
        let out = serde_json::to_string(&order).unwrap();
        for kept in [
            r#""user_id":"u""#,
            r#""first_name":"Ada""#,
            r#""x":{"deep":[1.10]}"#,
            r#""big":12345678901234567890123"#,
            r#""customizations":[{"key":"k","value":"v"}]"#,
            r#""later_field":{"a":1.10}"#,
        ] {
            assert!(out.contains(kept), "{kept} missing from {out}");
        }
    }

    #[test]
    fn country_code_comes_from_country_code_or_a_two_letter_country() {
        let a = Address {
            country: Some("United States".into()),
            country_code: Some("us".into()),
            ..Default::default()
        };
        assert_eq!(a.country_iso2().as_deref(), Some("US"));
        let b = Address {
            country: Some("CA".into()),
            ..Default::default()
        };
        assert_eq!(b.country_iso2().as_deref(), Some("CA"));
        let c = Address {
            country: Some("Canada".into()),
            ..Default::default()
        };
        assert_eq!(c.country_iso2(), None);
    }
}
