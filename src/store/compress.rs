//! Compression of the bodies a store keeps (orders, stored answers, outbox events).
//!
//! A body is JSON of a Fast order, 1–3 KB: zstd at level 3 shrinks it about 2.3×, and 3×
//! with [`DICTIONARY`], a raw-content dictionary made of the protocol's field names and enum
//! values (no catalog, merchant or customer data). Packed layout: the body's length (`u32`
//! big-endian), then one zstd frame. The length bounds decompression, so a corrupt value
//! cannot make it allocate more than the body it claims.
//!
//! [`DICTIONARY`] is part of the on-disk format: a changed dictionary needs a new format byte
//! in the stores that use it, and this one must stay for what they wrote with it.

use std::cell::RefCell;
use std::sync::LazyLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// zstd's default level: within a few percent of level 6 on orders, at half the CPU.
const LEVEL: i32 = 3;

/// The shape of an order, a stored answer and an outbox event, without values.
const DICTIONARY: &str = concat!(
    r#"{"id":"","type":"order.converted","order_id":"","external_id":"","sequence":1,"#,
    r#""occurred_at":"","detail":null,"order":{"order":{"id":{"value":""},"external_id":"","#,
    r#""order_type":"ORDER_TYPE_CART","status":"ORDER_STATUS_CART","currency_code":"USD","#,
    r#""bill_to":{"country_code":"","state_province_code":"","first_name":"","last_name":"","#,
    r#""email":"","phone":"","address_1":"","address_2":"","city":"","zip":""},"#,
    r#""ship_to":{"country_code":"","state_province_code":"","first_name":"","last_name":"","#,
    r#""email":"","phone":"","address_1":"","address_2":"","city":"","zip":""},"#,
    r#""lines":[{"id":{"value":""},"external_id":"","external_product_id":"","#,
    r#""external_variant_id":"","quantity":1,"name":"","description":"","image_url":"","#,
    r#""fulfillment_mode":"ITEM_FULFILLMENT_MODEL_PHYSICAL","unit_price":"","#,
    r#""discounted_unit_price":"","line_discount_amount":"","subtotal_amount":"","#,
    r#""tax_amount":"","total_amount":"","discounts":[]},{"id":{"value":""},"external_id":"","#,
    r#""external_product_id":"","external_variant_id":"","quantity":1,"name":"","#,
    r#""description":"","image_url":"","fulfillment_mode":"ITEM_FULFILLMENT_MODEL_DIGITAL","#,
    r#""unit_price":"","discounted_unit_price":"","line_discount_amount":"","#,
    r#""subtotal_amount":"","tax_amount":"","total_amount":"","discounts":[]}],"#,
    r#""shipping_options":[],"selected_shipping_option":{},"coupons":[],"sub_total":"","#,
    r#""total_discounts":"","total_tax":"","total_shipping":"","total_amount":"","#,
    r#""user_id":{"value":""}},"status":[{"updated":"","status":true}]},"#,
    r#""created_at_ms":0,"updated_at_ms":0,"events":0,"app_id":"","ledger":{}}"#,
    r#"{"type":"ENTITY_TYPE_ORDER","request_id":{"value":""},"order":{"order":{"id":{"value":""}"#,
);

static ENCODER_DICTIONARY: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARY.as_bytes(), LEVEL));
static DECODER_DICTIONARY: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICTIONARY.as_bytes()));

thread_local! {
    /// One context per thread, reused: creating one per value costs more than compressing.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `body`, packed. Fails only when zstd cannot allocate a context (out of memory).
pub fn pack(body: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(body.len()).map_err(|_| "body larger than 4 GiB".to_string())?;
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(c) => c,
            None => slot.insert(
                Compressor::with_prepared_dictionary(&ENCODER_DICTIONARY)
                    .map_err(|e| format!("zstd: {e}"))?,
            ),
        };
        let mut out = len.to_be_bytes().to_vec();
        out.extend(
            compressor
                .compress(body)
                .map_err(|e| format!("zstd: {e}"))?,
        );
        Ok(out)
    })
}

/// The body [`pack`] packed; any malformation is an error (the caller reports it as corrupt).
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (len, frame) = packed
        .split_first_chunk::<4>()
        .ok_or("truncated compressed value")?;
    let len = u32::from_be_bytes(*len) as usize;
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(d) => d,
            None => slot.insert(
                Decompressor::with_prepared_dictionary(&DECODER_DICTIONARY)
                    .map_err(|_| "cannot create a zstd context")?,
            ),
        };
        let body = decompressor
            .decompress(frame, len)
            .map_err(|_| "compressed value does not decompress")?;
        if body.len() == len {
            Ok(body)
        } else {
            Err("compressed value has the wrong length")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_orders_shrink() {
        let order = br#"{"order":{"id":{"value":"cart-1"},"order_type":"ORDER_TYPE_CART","status":"ORDER_STATUS_CART","currency_code":"USD","lines":[{"id":{"value":"L1"},"external_product_id":"mug-01","quantity":1,"unit_price":"12.00","subtotal_amount":"12.00","tax_amount":"0.99","total_amount":"12.99","discounts":[]},{"id":{"value":"L2"},"external_product_id":"ebook-01","quantity":1,"unit_price":"9.00","subtotal_amount":"9.00","tax_amount":"0.00","total_amount":"9.00","discounts":[]}],"coupons":[],"sub_total":"21.00","total_tax":"0.99","total_amount":"21.99"},"created_at_ms":1764683000000,"updated_at_ms":1764683000000,"events":0}"#;
        for body in [&order[..], b"", b"{}", &[0xff, 0x00, 0x7b]] {
            let packed = pack(body).unwrap();
            assert_eq!(unpack(&packed).unwrap(), body);
        }
        let packed = pack(order).unwrap();
        assert!(
            packed.len() * 2 < order.len(),
            "{} of {} bytes",
            packed.len(),
            order.len()
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        let packed = pack(b"{\"a\":1}").unwrap();
        let mut wrong_length = packed.clone();
        wrong_length[3] ^= 1;
        for bad in [
            &b""[..],
            &b"\x00\x00"[..],
            &packed[..packed.len() - 1],
            &wrong_length,
            b"\x00\x00\x00\x05junk!",
        ] {
            assert!(unpack(bad).is_err(), "{bad:?}");
        }
    }
}
