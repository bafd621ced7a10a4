//! Orders into Vendure on the customer's behalf (the sequence of
//! `integrations/vendure/graphql/orders.graphql`), idempotent by Fast order id; live stock;
//! customers by e-mail.

use super::catalog::{RawVariant, Stock};
use super::client::{result, VendureClient, ORDERS};
use super::VendureError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A postal address (Vendure's `CreateAddressInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub full_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub street_line1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_line2: Option<String>,
    pub city: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// A customer: found by e-mail, or created with these details.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "emailAddress")]
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    #[serde(default)]
    pub phone_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub sku: String,
    pub quantity: i64,
}

/// A Fast order to place in Vendure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    /// Stored in the order's `fastOrderId` custom field (unique): a retry finds the order.
    pub fast_order_id: String,
    pub customer: Customer,
    pub shipping_address: Address,
    pub billing_address: Address,
    pub lines: Vec<OrderLine>,
    pub coupon_codes: Vec<String>,
    /// The shipping method's code.
    pub shipping_method: String,
    /// The payment method's code (`fast` with the plugin).
    pub payment_method: String,
    /// What Fast charged, minor units with tax; a different Vendure total gets a note.
    pub charged_total: i64,
}

/// The Vendure order for a Fast order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub id: String,
    pub code: String,
    pub state: String,
    pub currency: String,
    pub sub_total: i64,
    pub sub_total_with_tax: i64,
    pub shipping: i64,
    pub shipping_with_tax: i64,
    pub total_with_tax: i64,
    /// The order was already past payment when looked up (an earlier attempt placed it).
    pub already_placed: bool,
    /// A half-placed draft of an earlier attempt was completed.
    pub resumed: bool,
    /// Vendure's total differs from `charged_total` (a note was added to the order).
    pub mismatch: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderTotals {
    id: String,
    code: String,
    state: String,
    currency_code: String,
    sub_total: i64,
    sub_total_with_tax: i64,
    shipping: i64,
    shipping_with_tax: i64,
    total_with_tax: i64,
    #[serde(default)]
    coupon_codes: Vec<String>,
    #[serde(default)]
    lines: Vec<TotalsLine>,
    #[serde(default)]
    customer: Option<CustomerRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TotalsLine {
    quantity: i64,
    product_variant: VariantRef,
}

#[derive(Debug, Clone, Deserialize)]
struct VariantRef {
    sku: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerRef {
    email_address: String,
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct IdCode {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EligibleMethod {
    id: String,
    code: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Paid {
    code: String,
    state: String,
    total_with_tax: i64,
}

/// Stock by SKU with what the threshold needs (a live check reads these only).
const STOCK_BY_SKU: &str = "query StockBySku($skus: [String!]!, $take: Int!) {
  productVariants(options: { filter: { sku: { in: $skus } }, take: $take }) {
    items { id sku stockOnHand stockAllocated trackInventory outOfStockThreshold useGlobalOutOfStockThreshold }
  }
}";

/// Vendure answers at most this many list items per request.
const CHUNK: usize = 100;

fn field(data: &mut Value, name: &str) -> Value {
    data.get_mut(name).map(Value::take).unwrap_or(Value::Null)
}

impl VendureClient {
    /// Places `order`, or finds it: the Vendure order with this `fastOrderId` is returned as
    /// it is once paid, completed when an earlier attempt left it half-placed, and created
    /// otherwise. Returns the Vendure order code and totals.
    pub async fn place_order(&self, order: &PlaceOrder) -> Result<Placed, VendureError> {
        let (mut totals, resumed) = match self.order_by_fast_id(&order.fast_order_id).await? {
            Some(found) if found.state != "Draft" && found.state != "ArrangingPayment" => {
                return Ok(placed(found, true, false, order.charged_total));
            }
            Some(found) => (found, true),
            None => (self.create_draft(&order.fast_order_id).await?, false),
        };
        if totals.state == "Draft" {
            totals = self.fill_draft(&totals, order).await?;
            if totals.total_with_tax != order.charged_total {
                let note = format!(
                    "fast-seller: Fast charged {} {}, Vendure's total is {}",
                    order.charged_total, totals.currency_code, totals.total_with_tax
                );
                self.op::<Value>(
                    ORDERS,
                    "AddNoteToOrder",
                    json!({ "id": totals.id, "note": note }),
                )
                .await?;
            }
            let mut data: Value = self
                .op(
                    ORDERS,
                    "TransitionOrderToState",
                    json!({ "id": totals.id, "state": "ArrangingPayment" }),
                )
                .await?;
            result::<Value>(
                "TransitionOrderToState",
                field(&mut data, "transitionOrderToState"),
                "Order",
            )?;
        }
        let mut data: Value = self
            .op(
                ORDERS,
                "AddManualPaymentToOrder",
                json!({
                    "orderId": totals.id,
                    "method": order.payment_method,
                    "transactionId": order.fast_order_id,
                    "metadata": {
                        "fastOrderId": order.fast_order_id,
                        "amount": order.charged_total,
                        "currency": totals.currency_code,
                    },
                }),
            )
            .await?;
        let paid: Paid = result(
            "AddManualPaymentToOrder",
            field(&mut data, "addManualPaymentToOrder"),
            "Order",
        )?;
        totals.code = paid.code;
        totals.state = paid.state;
        totals.total_with_tax = paid.total_with_tax;
        Ok(placed(totals, false, resumed, order.charged_total))
    }

    async fn order_by_fast_id(
        &self,
        fast_order_id: &str,
    ) -> Result<Option<OrderTotals>, VendureError> {
        #[derive(Deserialize)]
        struct Data {
            orders: Items<OrderTotals>,
        }
        let data: Data = self
            .op(
                ORDERS,
                "OrderByFastId",
                json!({ "fastOrderId": fast_order_id }),
            )
            .await?;
        Ok(data.orders.items.into_iter().next())
    }

    /// A new draft carrying `fastOrderId` (set first, so a crash after this is findable). If
    /// another attempt claimed the id meanwhile (unique), the new draft is deleted and that
    /// attempt's order is the one.
    async fn create_draft(&self, fast_order_id: &str) -> Result<OrderTotals, VendureError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            create_draft_order: IdCode,
        }
        let created: Created = self.op(ORDERS, "CreateDraftOrder", json!({})).await?;
        let id = created.create_draft_order.id;
        let claimed = self
            .op::<Value>(
                ORDERS,
                "SetDraftOrderFastId",
                json!({ "orderId": id, "fastOrderId": fast_order_id }),
            )
            .await;
        match claimed {
            Ok(_) => self.order_by_id(&id).await,
            Err(VendureError::GraphQl { .. }) => {
                self.op::<Value>(ORDERS, "DeleteDraftOrder", json!({ "orderId": id }))
                    .await?;
                self.order_by_fast_id(fast_order_id)
                    .await?
                    .ok_or_else(|| VendureError::NotFound {
                        what: format!(
                            "order with fastOrderId {fast_order_id} (claimed, then gone)"
                        ),
                    })
            }
            Err(e) => Err(e),
        }
    }

    async fn order_by_id(&self, id: &str) -> Result<OrderTotals, VendureError> {
        #[derive(Deserialize)]
        struct Data {
            order: Option<OrderTotals>,
        }
        let data: Data = self.op(ORDERS, "OrderById", json!({ "id": id })).await?;
        data.order.ok_or_else(|| VendureError::NotFound {
            what: format!("order {id}"),
        })
    }

    /// Brings a draft to what `order` asks for; each step is skipped or repeated harmlessly
    /// when an earlier attempt already did it. Returns the totals after the shipping method.
    async fn fill_draft(
        &self,
        draft: &OrderTotals,
        order: &PlaceOrder,
    ) -> Result<OrderTotals, VendureError> {
        let id = draft.id.as_str();
        // Addresses first: setting one re-prices every line for the new tax zone.
        self.op::<Value>(
            ORDERS,
            "SetDraftOrderShippingAddress",
            json!({ "orderId": id, "input": order.shipping_address }),
        )
        .await?;
        self.op::<Value>(
            ORDERS,
            "SetDraftOrderBillingAddress",
            json!({ "orderId": id, "input": order.billing_address }),
        )
        .await?;

        let skus: Vec<String> = order.lines.iter().map(|l| l.sku.clone()).collect();
        let variants = self.variants_by_sku(&skus).await?;
        for line in &order.lines {
            let variant = variants
                .get(&line.sku)
                .ok_or_else(|| VendureError::NotFound {
                    what: format!("SKU {}", line.sku),
                })?;
            let have: i64 = draft
                .lines
                .iter()
                .filter(|l| l.product_variant.sku == line.sku)
                .map(|l| l.quantity)
                .sum();
            let missing = line.quantity - have;
            if missing < 0 {
                return Err(VendureError::Unsupported(format!(
                    "draft {} holds {have} of {}, the Fast order {}",
                    draft.code, line.sku, line.quantity
                )));
            }
            if missing == 0 {
                continue;
            }
            let mut data: Value = self
                .op(
                    ORDERS,
                    "AddItemToDraftOrder",
                    json!({ "orderId": id, "productVariantId": variant.id, "quantity": missing }),
                )
                .await?;
            let added = field(&mut data, "addItemToDraftOrder");
            if added.get("__typename").and_then(Value::as_str) == Some("InsufficientStockError") {
                return Err(VendureError::InsufficientStock {
                    sku: line.sku.clone(),
                    available: added
                        .get("quantityAvailable")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                });
            }
            result::<Value>("AddItemToDraftOrder", added, "Order")?;
        }

        let has_customer = draft
            .customer
            .as_ref()
            .is_some_and(|c| c.email_address.eq_ignore_ascii_case(&order.customer.email));
        if !has_customer {
            let c = &order.customer;
            let variables = match self.customer_by_email(&c.email).await? {
                Some(existing) => json!({ "orderId": id, "customerId": existing.id }),
                None => json!({ "orderId": id, "input": {
                    "firstName": c.first_name,
                    "lastName": c.last_name,
                    "emailAddress": c.email,
                    "phoneNumber": c.phone_number,
                }}),
            };
            let mut data: Value = self
                .op(ORDERS, "SetCustomerForDraftOrder", variables)
                .await?;
            result::<Value>(
                "SetCustomerForDraftOrder",
                field(&mut data, "setCustomerForDraftOrder"),
                "Order",
            )?;
        }

        for coupon in &order.coupon_codes {
            if draft.coupon_codes.contains(coupon) {
                continue;
            }
            let mut data: Value = self
                .op(
                    ORDERS,
                    "ApplyCouponCodeToDraftOrder",
                    json!({ "orderId": id, "couponCode": coupon }),
                )
                .await?;
            result::<Value>(
                "ApplyCouponCodeToDraftOrder",
                field(&mut data, "applyCouponCodeToDraftOrder"),
                "Order",
            )?;
        }

        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Eligible {
            eligible_shipping_methods_for_draft_order: Vec<EligibleMethod>,
        }
        let eligible: Eligible = self
            .op(
                ORDERS,
                "EligibleShippingMethodsForDraftOrder",
                json!({ "orderId": id }),
            )
            .await?;
        let method = eligible
            .eligible_shipping_methods_for_draft_order
            .into_iter()
            .find(|m| m.code == order.shipping_method)
            .ok_or_else(|| VendureError::NotFound {
                what: format!("eligible shipping method {}", order.shipping_method),
            })?;
        let mut data: Value = self
            .op(
                ORDERS,
                "SetDraftOrderShippingMethod",
                json!({ "orderId": id, "shippingMethodId": method.id }),
            )
            .await?;
        result(
            "SetDraftOrderShippingMethod",
            field(&mut data, "setDraftOrderShippingMethod"),
            "Order",
        )
    }

    async fn variants_by_sku(
        &self,
        skus: &[String],
    ) -> Result<BTreeMap<String, RawVariant>, VendureError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            product_variants: Items<RawVariant>,
        }
        let mut found = BTreeMap::new();
        for chunk in skus.chunks(CHUNK) {
            let data: Data = self
                .op(
                    STOCK_BY_SKU,
                    "StockBySku",
                    json!({ "skus": chunk, "take": CHUNK }),
                )
                .await?;
            found.extend(
                data.product_variants
                    .items
                    .into_iter()
                    .map(|v| (v.sku.clone(), v)),
            );
        }
        Ok(found)
    }

    /// Live stock of `skus` (SKUs Vendure does not know are absent from the answer).
    pub async fn stock(&self, skus: &[String]) -> Result<BTreeMap<String, Stock>, VendureError> {
        let globals = self.global_settings().await?;
        Ok(self
            .variants_by_sku(skus)
            .await?
            .into_iter()
            .map(|(sku, v)| {
                let stock = v.stock(&globals);
                (sku, stock)
            })
            .collect())
    }

    /// The customer with this e-mail address, if any.
    pub async fn customer_by_email(&self, email: &str) -> Result<Option<Customer>, VendureError> {
        #[derive(Deserialize)]
        struct Data {
            customers: Items<Customer>,
        }
        let data: Data = self
            .op(ORDERS, "CustomerByEmail", json!({ "email": email }))
            .await?;
        Ok(data.customers.items.into_iter().next())
    }
}

fn placed(t: OrderTotals, already_placed: bool, resumed: bool, charged: i64) -> Placed {
    Placed {
        mismatch: t.total_with_tax != charged,
        id: t.id,
        code: t.code,
        state: t.state,
        currency: t.currency_code,
        sub_total: t.sub_total,
        sub_total_with_tax: t.sub_total_with_tax,
        shipping: t.shipping,
        shipping_with_tax: t.shipping_with_tax,
        total_with_tax: t.total_with_tax,
        already_placed,
        resumed,
    }
}
