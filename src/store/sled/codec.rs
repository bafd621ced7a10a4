//! Value encoding: a format byte ([`FORMAT`]) followed by a length-prefixed binary layout,
//! integers big-endian, byte strings as a `u64` big-endian length plus the bytes.
//!
//! Format 2 (since this release) stores the bodies of orders, stored answers and outbox
//! events packed by [`compress`]; format 1 stored them as they are. Both are read: a store
//! written by an earlier release is served as it is, and each value it rewrites moves on.

use crate::store::{
    compress, Attempt, IdempotencyRecord, OrderRecord, OutboxEntry, OutboxItem, OutboxState,
    StoreError,
};

/// Leading byte of every value written now: bodies packed.
const FORMAT: u8 = 2;
/// Leading byte of the values of earlier releases: bodies as they are.
const FORMAT_PLAIN: u8 = 1;

/// A stored value: written after the [`FORMAT`] byte, read back by [`decode`].
pub(super) trait Codec: Sized {
    fn write(&self, w: &mut Vec<u8>) -> Result<(), StoreError>;
    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str>;
}

pub(super) fn encode<T: Codec>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT];
    value.write(&mut out)?;
    Ok(out)
}

/// Decodes a value of `tree` at `key`; any malformation is [`StoreError::Corrupt`].
pub(super) fn decode<T: Codec>(tree: &str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    let mut r = Reader {
        rest: bytes,
        format: FORMAT,
    };
    let value = match r.u8() {
        Ok(format @ (FORMAT | FORMAT_PLAIN)) => {
            r.format = format;
            T::read(&mut r)
        }
        Ok(_) => Err("unknown format byte"),
        Err(e) => Err(e),
    }
    .map_err(|e| corrupt(tree, key, e))?;
    if r.rest.is_empty() {
        Ok(value)
    } else {
        Err(corrupt(tree, key, "trailing bytes"))
    }
}

pub(super) fn corrupt(tree: &str, key: &[u8], reason: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "tree {tree}, key {:?}: {reason}",
        String::from_utf8_lossy(key)
    ))
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_be_bytes());
}

/// Length-prefixed bytes (`u64` big-endian length).
fn put_bytes(w: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(w, bytes.len() as u64);
    w.extend_from_slice(bytes);
}

/// A body (order, answer, event), packed.
fn put_body(w: &mut Vec<u8>, body: &[u8]) -> Result<(), StoreError> {
    let packed = compress::pack(body).map_err(StoreError::Io)?;
    put_bytes(w, &packed);
    Ok(())
}

/// A cursor over an encoded value of one format.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    format: u8,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.rest.len() < n {
            return Err("truncated value");
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        self.take(N)?.try_into().map_err(|_| "truncated value")
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, &'static str> {
        let len = usize::try_from(self.u64()?).map_err(|_| "length out of range")?;
        Ok(self.take(len)?.to_vec())
    }

    fn string(&mut self) -> Result<String, &'static str> {
        String::from_utf8(self.bytes()?).map_err(|_| "string is not UTF-8")
    }

    /// What [`put_body`] wrote (or, in format 1, the plain bytes).
    fn body(&mut self) -> Result<Vec<u8>, &'static str> {
        let bytes = self.bytes()?;
        if self.format == FORMAT_PLAIN {
            Ok(bytes)
        } else {
            compress::unpack(&bytes)
        }
    }
}

impl Codec for OrderRecord {
    fn write(&self, w: &mut Vec<u8>) -> Result<(), StoreError> {
        put_bytes(w, self.id.as_bytes());
        put_u64(w, self.external_ids.len() as u64);
        for ext in &self.external_ids {
            put_bytes(w, ext.as_bytes());
        }
        put_u64(w, self.version);
        put_body(w, &self.body)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        let id = r.string()?;
        let count = r.u64()?;
        let external_ids = (0..count).map(|_| r.string()).collect::<Result<_, _>>()?;
        Ok(OrderRecord {
            id,
            external_ids,
            version: r.u64()?,
            body: r.body()?,
        })
    }
}

impl Codec for IdempotencyRecord {
    fn write(&self, w: &mut Vec<u8>) -> Result<(), StoreError> {
        w.extend_from_slice(&self.fingerprint);
        w.extend_from_slice(&self.status.to_be_bytes());
        put_u64(w, self.created_at_ms);
        put_body(w, &self.body)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        Ok(IdempotencyRecord {
            fingerprint: r.array()?,
            status: r.u16()?,
            created_at_ms: r.u64()?,
            body: r.body()?,
        })
    }
}

impl Codec for OutboxItem {
    fn write(&self, w: &mut Vec<u8>) -> Result<(), StoreError> {
        let e = &self.entry;
        put_bytes(w, e.id.as_bytes());
        put_bytes(w, e.order_id.as_bytes());
        put_u64(w, e.sequence);
        put_bytes(w, e.event_type.as_bytes());
        put_u64(w, e.created_at_ms);
        put_body(w, &e.body)?;
        w.push(match self.state {
            OutboxState::Pending => 0,
            OutboxState::Delivered => 1,
            OutboxState::Dead => 2,
        });
        w.extend_from_slice(&self.attempts.to_be_bytes());
        w.extend_from_slice(&self.failures.to_be_bytes());
        put_u64(w, self.next_attempt_ms);
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        let entry = OutboxEntry {
            id: r.string()?,
            order_id: r.string()?,
            sequence: r.u64()?,
            event_type: r.string()?,
            created_at_ms: r.u64()?,
            body: r.body()?,
        };
        let state = match r.u8()? {
            0 => OutboxState::Pending,
            1 => OutboxState::Delivered,
            2 => OutboxState::Dead,
            _ => return Err("unknown outbox state"),
        };
        Ok(OutboxItem {
            entry,
            state,
            attempts: u32::from_be_bytes(r.array()?),
            failures: u32::from_be_bytes(r.array()?),
            next_attempt_ms: r.u64()?,
        })
    }
}

impl Codec for Attempt {
    fn write(&self, w: &mut Vec<u8>) -> Result<(), StoreError> {
        put_u64(w, self.at_ms);
        put_u64(w, self.latency_ms);
        w.push(u8::from(self.delivered));
        w.extend_from_slice(&self.status.unwrap_or(0).to_be_bytes());
        put_bytes(w, self.detail.as_bytes());
        Ok(())
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        Ok(Attempt {
            at_ms: r.u64()?,
            latency_ms: r.u64()?,
            delivered: r.u8()? != 0,
            status: Some(r.u16()?).filter(|s| *s != 0),
            detail: r.string()?,
        })
    }
}
