//! Duplicates of one `request_id` arriving at different instances that share a store.
//!
//! Within one process the keyed lock makes a duplicate wait for the first copy. Across
//! processes the store keeps a marker per request in flight ([`Store::claim_in_flight`]): a
//! duplicate that finds a live marker polls until the first copy's record appears (then it is
//! a replay), the marker goes away (then it runs, e.g. after the first copy failed without a
//! record), or the in-flight wait runs out (409 with Retry-After). A marker expires after
//! [`MARKER_TTL`], so a crashed instance blocks its request ids for at most that long.
//!
//! Exactly-once never rests on the marker: if one outlives its lifetime and a second copy
//! runs, the unique idempotency key lets only one commit through, and the other is answered
//! with the winner's record.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::service::ServiceError;
use crate::store::{IdempotencyKey, IdempotencyRecord, InFlightClaim, Store};

/// How long a marker holds its request id: longer than a request normally takes (at worst
/// the in-flight and order-lock waits of 5 s each), short enough that Fast's retries after a
/// crash are not refused for long. Outliving it is safe (see the module notes).
pub const MARKER_TTL: Duration = Duration::from_secs(10);
/// How often a duplicate looks again while another instance holds the marker.
const POLL: Duration = Duration::from_millis(20);

/// What a request found when it claimed its marker.
pub(in crate::service) enum Claimed {
    /// Go ahead; the marker (if the store keeps them) is released when this is dropped.
    Run(Option<Marker>),
    /// Another instance finished the request meanwhile: this is its record.
    Recorded(IdempotencyRecord),
}

/// A claimed marker. Dropping it removes the marker in the background: after a commit (the
/// record is there, so duplicates replay it) or when the request failed (so a retry runs).
pub(in crate::service) struct Marker {
    store: Arc<dyn Store>,
    key: IdempotencyKey,
    owner: String,
}

impl Drop for Marker {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // shutting down: the marker expires
        };
        let store = self.store.clone();
        let key = std::mem::replace(
            &mut self.key,
            IdempotencyKey {
                app_id: String::new(),
                request_id: String::new(),
            },
        );
        let owner = std::mem::take(&mut self.owner);
        runtime.spawn(async move {
            if let Err(e) = store.release_in_flight(&key, &owner).await {
                tracing::warn!(error = %e, request_id = %key.request_id,
                    "could not remove an in-flight marker (it expires on its own)");
            }
        });
    }
}

/// Claims the marker of `key`, waiting until `deadline` while another instance holds it.
pub(in crate::service) async fn claim(
    store: &Arc<dyn Store>,
    key: &IdempotencyKey,
    deadline: Instant,
) -> Result<Claimed, ServiceError> {
    let owner = uuid::Uuid::new_v4().to_string();
    loop {
        match store.claim_in_flight(key, &owner, MARKER_TTL).await? {
            InFlightClaim::NotShared => return Ok(Claimed::Run(None)),
            InFlightClaim::Claimed => {
                let marker = Marker {
                    store: store.clone(),
                    key: key.clone(),
                    owner,
                };
                // The first copy may have committed and released its marker just before.
                return Ok(match store.get_idempotency(key).await? {
                    Some(record) => Claimed::Recorded(record),
                    None => Claimed::Run(Some(marker)),
                });
            }
            InFlightClaim::Held => {}
        }
        if let Some(record) = store.get_idempotency(key).await? {
            return Ok(Claimed::Recorded(record));
        }
        if Instant::now() + POLL > deadline {
            return Err(ServiceError::InFlight(key.request_id.clone()));
        }
        tokio::time::sleep(POLL).await;
    }
}
