//! Request and response envelopes of the four endpoints.
//!
//! All share `type` (alias `entity_type`), `request_id` and `app_id`; the entity lives in a
//! segment named after it (`order`, `shipping_zones`, …).

use super::order::{Address, CustomValue, Extra, FastOrder, LineReference};
use super::wire::{CartToOrderConvert, EntityType, Id, Int64, OrderStatus, SegmentType};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// What every request carries besides its segment.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Header {
    #[serde(rename = "type", alias = "entity_type", default)]
    pub entity_type: Option<EntityType>,
    #[serde(default)]
    pub request_id: Option<Id>,
    #[serde(default)]
    pub app_id: Option<String>,
}

impl Header {
    /// Requests without a type are about orders (the seed examples omit it).
    pub fn entity(&self) -> EntityType {
        match self.entity_type {
            None | Some(EntityType::Unspecified) => EntityType::Order,
            Some(t) => t,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateRequest {
    #[serde(flatten)]
    pub header: Header,
    pub order: CreateOrderSegment,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CreateOrderSegment {
    #[serde(default)]
    pub is_cart: Option<bool>,
    pub order: FastOrder,
}

/// How read and delete name an order: Fast id, or one of the seller id spellings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderLookup {
    #[serde(default)]
    pub is_cart: Option<bool>,
    #[serde(default)]
    pub order_id: Option<Id>,
    #[serde(default)]
    pub external_order_id: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
}

impl OrderLookup {
    pub fn fast_id(&self) -> Option<&str> {
        self.order_id
            .as_ref()
            .map(Id::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn seller_id(&self) -> Option<&str> {
        self.external_id
            .as_deref()
            .or(self.external_order_id.as_deref())
            .filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReadRequest {
    #[serde(flatten)]
    pub header: Header,
    #[serde(default)]
    pub order: Option<OrderLookup>,
    /// `ENTITY_TYPE_USER`: the shopper to look up.
    #[serde(default)]
    pub user: Option<UserLookup>,
}

/// The `user` segment of a read: a shopper by e-mail (or the seller's user id).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserLookup {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_user_id: Option<String>,
}

/// Fast's `User`, as a read of `ENTITY_TYPE_USER` answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct User {
    pub external_user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// Answer of the user read: `{type, request_id, user: {user}}`.
#[derive(Debug, Clone, Serialize)]
pub struct UserResponse<'a> {
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a Id>,
    pub user: UserSegment,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserSegment {
    pub user: User,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeleteRequest {
    #[serde(flatten)]
    pub header: Header,
    pub order: OrderLookup,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UpdateRequest {
    #[serde(flatten)]
    pub header: Header,
    pub order: UpdateOrderSegment,
}

/// `UpdateOrderRequestSegment`: only the incremental data, several segments at once.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateOrderSegment {
    #[serde(default)]
    pub order_id: Option<Id>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub external_order_id: Option<String>,
    #[serde(default)]
    pub is_cart: Option<bool>,
    #[serde(default)]
    pub items: Option<Vec<ItemUpdate>>,
    #[serde(default)]
    pub coupon: Option<CouponUpdate>,
    #[serde(default)]
    pub bill_to: Option<Address>,
    #[serde(default)]
    pub shipments: Option<Vec<ShipmentPlanUpdate>>,
    #[serde(default)]
    pub shipping_option: Option<ShippingOptionSelect>,
    #[serde(default)]
    pub status: Option<OrderStatus>,
    #[serde(default)]
    pub convert_cart_to_order: Option<bool>,
    #[serde(default)]
    pub convert_mode: Option<CartToOrderConvert>,
    /// `user_info`, `device_info`, `payment`, `updated_segments` and anything newer.
    #[serde(flatten)]
    pub extra: Extra,
}

impl UpdateOrderSegment {
    pub fn lookup(&self) -> OrderLookup {
        OrderLookup {
            is_cart: self.is_cart,
            order_id: self.order_id.clone(),
            external_order_id: self.external_order_id.clone(),
            external_id: self.external_id.clone(),
        }
    }
}

/// `OrderItemUpdate`. The seed documents send `id` as a plain string instead of `item_id`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ItemUpdate {
    #[serde(default)]
    pub item_id: Option<Id>,
    #[serde(default)]
    pub id: Option<Id>,
    #[serde(default)]
    pub quantity: Option<Int64>,
    #[serde(default)]
    pub external_item_id: Option<String>,
    #[serde(default)]
    pub external_product_id: Option<String>,
    #[serde(default)]
    pub external_variant_id: Option<String>,
    #[serde(default)]
    pub external_options: Vec<CustomValue>,
    #[serde(default)]
    pub customizations: Option<Value>,
}

impl ItemUpdate {
    /// The Fast line id this entry is about.
    pub fn line_id(&self) -> Option<&Id> {
        self.item_id.as_ref().or(self.id.as_ref())
    }
}

/// `{code, remove}`, or (seed documents) a plain string code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CouponUpdate {
    pub code: String,
    pub remove: bool,
}

impl<'de> Deserialize<'de> for CouponUpdate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Full {
            #[serde(default)]
            code: String,
            #[serde(default)]
            remove: bool,
        }
        match Value::deserialize(d)? {
            Value::String(code) => Ok(CouponUpdate {
                code,
                remove: false,
            }),
            v @ Value::Object(_) => serde_json::from_value::<Full>(v)
                .map(|f| CouponUpdate {
                    code: f.code,
                    remove: f.remove,
                })
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "expected {\"code\": \"…\", \"remove\": false} or a code string",
            )),
        }
    }
}

/// `ShipmentPlanUpdate`: one shipping address and the lines that ship there.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ShipmentPlanUpdate {
    #[serde(default)]
    pub plan_id: Option<Id>,
    #[serde(default)]
    pub ship_to: Address,
    #[serde(default)]
    pub line_refs: Vec<LineReference>,
}

/// Selection of a shipping option: plan by `id` or `external_id`, option by `external_id`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ShippingOptionSelect {
    #[serde(default)]
    pub plan_id: Option<Id>,
    #[serde(default)]
    pub option_id: Option<Id>,
    #[serde(default)]
    pub external_option_id: Option<String>,
}

/// One `status[]` entry of an update answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentStatus {
    pub updated: SegmentType,
    pub status: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<&'static str>,
    pub message: String,
}

/// `{type, request_id, order: {order, status?}}`: the answer of create, read and update.
#[derive(Debug, Clone, Serialize)]
pub struct OrderResponse<'a> {
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a Id>,
    pub order: OrderResponseSegment<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderResponseSegment<'a> {
    pub order: &'a FastOrder,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a [SegmentStatus]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippingZone {
    pub country_iso2: String,
    pub subdivision_iso2: String,
}

/// Answer of the shipping-zones read.
#[derive(Debug, Clone, Serialize)]
pub struct ShippingZonesResponse<'a> {
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a Id>,
    pub shipping_zones: ShippingZonesSegment,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShippingZonesSegment {
    pub shipping_zones: Vec<ShippingZone>,
}

/// The error body of every failure: grpc-gateway's `rpcStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcStatus {
    pub code: i32,
    pub message: String,
    #[serde(default)]
    pub details: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_accepts_spec_and_seed_forms() {
        let spec = r#"{"type":"ENTITY_TYPE_ORDER","request_id":{"value":"r1"},"app_id":"a",
            "order":{"order_id":{"value":"o1"},"items":[{"item_id":{"value":"l2","quanity":2}}],
            "coupon":{"code":"SAVE10","remove":true},"device_info":{"ip_address":"1.2.3.4"}}}"#;
        let u: UpdateRequest = serde_json::from_str(spec).unwrap();
        assert_eq!(u.header.entity(), EntityType::Order);
        assert_eq!(
            u.order.items.as_ref().unwrap()[0]
                .line_id()
                .unwrap()
                .as_str(),
            "l2"
        );
        assert!(u.order.coupon.as_ref().unwrap().remove);
        assert!(u.order.extra.contains_key("device_info"));

        let seed = r#"{"entity_type":"ENTITY_ORDER","order":{"items":[{"id":"item_1","quantity":2}],"coupon":"COUPONCODE"}}"#;
        let u: UpdateRequest = serde_json::from_str(seed).unwrap();
        assert_eq!(
            u.order.items.as_ref().unwrap()[0]
                .line_id()
                .unwrap()
                .as_str(),
            "item_1"
        );
        assert_eq!(u.order.coupon.unwrap().code, "COUPONCODE");
        assert!(u.header.request_id.is_none());
    }

    #[test]
    fn lookup_prefers_external_id_then_external_order_id() {
        let l: OrderLookup =
            serde_json::from_str(r#"{"external_order_id":"a","external_id":"b"}"#).unwrap();
        assert_eq!(l.seller_id(), Some("b"));
        let l: OrderLookup = serde_json::from_str(r#"{"order_id":{"value":""}}"#).unwrap();
        assert_eq!(l.fast_id(), None);
    }
}
