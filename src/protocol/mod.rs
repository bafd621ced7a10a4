//! The Fast wire format: lenient on the way in, faithful on the way out. No I/O, no policy.

pub mod envelope;
pub mod fast_call;
pub mod order;
pub mod parse;
pub mod wire;

pub use envelope::*;
pub use fast_call::{FastCall, QueuedFastCall};
pub use order::*;
pub use parse::{parse, parse_known, FastRequest, Fields, Parsed, ProtocolError, Verb};
pub use wire::*;
