//! The Fast wire format: lenient on the way in, faithful on the way out. No I/O, no policy.

pub mod envelope;
pub mod order;
pub mod wire;

pub use envelope::*;
pub use order::*;
pub use wire::*;
