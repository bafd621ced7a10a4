//! Keys of the trees: ids as UTF-8, separated by `0x00`, times and counters big-endian (so
//! key order is time or number order).

use super::codec::{corrupt, encode};
use super::trees::IDEM;
use crate::store::{IdempotencyKey, IdempotencyRecord, StoreError};

/// `app_id` bytes + `0x00` + `request_id` bytes.
pub(super) fn idem_key(key: &IdempotencyKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.app_id.len() + 1 + key.request_id.len());
    out.extend_from_slice(key.app_id.as_bytes());
    out.push(0);
    out.extend_from_slice(key.request_id.as_bytes());
    out
}

/// The inverse of [`idem_key`].
pub(super) fn parse_idem_key(key: &[u8]) -> Result<IdempotencyKey, StoreError> {
    let zero = key
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| corrupt(IDEM, key, "key has no separator"))?;
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(IDEM, key, "key is not UTF-8"))
    };
    Ok(IdempotencyKey {
        app_id: text(&key[..zero])?,
        request_id: text(&key[zero + 1..])?,
    })
}

/// Idem key, time-index key and encoded record of one idempotency record.
pub(super) type IdemEntry = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The [`IdemEntry`] of one idempotency record.
pub(super) fn idem_entry(
    key: &IdempotencyKey,
    record: &IdempotencyRecord,
) -> Result<IdemEntry, StoreError> {
    let key = idem_key(key);
    let mut time_key = record.created_at_ms.to_be_bytes().to_vec();
    time_key.extend_from_slice(&key);
    let value = encode(record)?;
    Ok((key, time_key, value))
}

pub(super) fn due_key(at_ms: u64, id: &str) -> Vec<u8> {
    let mut k = at_ms.to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// Key of the delivered index: delivery time (big-endian) + entry id, like [`due_key`].
pub(super) fn delivered_key(at_ms: u64, id: &str) -> Vec<u8> {
    due_key(at_ms, id)
}

pub(super) fn order_key(order_id: &str, sequence: u64) -> Vec<u8> {
    let mut k = order_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

pub(super) fn attempt_key(id: &str, number: u32) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&number.to_be_bytes());
    k
}
