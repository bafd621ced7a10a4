//! What the services ask of a commerce platform while answering Fast (the platform's side of
//! the seam; `crate::commerce` holds the adapters). Without a platform these calls are not
//! served.

use crate::protocol::User;
use async_trait::async_trait;

/// Why the platform could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlatformError(pub String);

#[async_trait]
pub trait Platform: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The platform's customer with this e-mail address, if any.
    async fn customer_by_email(&self, email: &str) -> Result<Option<User>, PlatformError>;
}
