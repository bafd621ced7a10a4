//! The merchant API's authentication: `Authorization: Bearer <FAST_SELLER_ADMIN_TOKEN>`,
//! compared in constant time (as digests). No token configured: the API is off.

use super::HeaderLookup;
use sha2::{Digest, Sha256};

/// Why an admin request is not authenticated. Never names the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdminAuthError {
    #[error("disabled: set FAST_SELLER_ADMIN_TOKEN to enable it")]
    Disabled,
    #[error("missing bearer token")]
    MissingToken,
    #[error("wrong bearer token")]
    WrongToken,
}

impl AdminAuthError {
    /// The stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            AdminAuthError::Disabled => "admin_api_disabled",
            AdminAuthError::MissingToken => "admin_token_missing",
            AdminAuthError::WrongToken => "admin_token_wrong",
        }
    }
}

/// Checks the bearer token of an admin request against the configured one.
pub fn check_admin_token<H: HeaderLookup + ?Sized>(
    headers: &H,
    expected: Option<&str>,
) -> Result<(), AdminAuthError> {
    let expected = expected.ok_or(AdminAuthError::Disabled)?;
    let given = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AdminAuthError::MissingToken)?;
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if diff != 0 {
        return Err(AdminAuthError::WrongToken);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_bearer_token_passes() {
        let with = |v: &str| vec![("Authorization".to_string(), v.to_string())];
        assert_eq!(
            check_admin_token(with("Bearer s3cret").as_slice(), None),
            Err(AdminAuthError::Disabled)
        );
        assert_eq!(
            check_admin_token(with("Basic s3cret").as_slice(), Some("s3cret")),
            Err(AdminAuthError::MissingToken)
        );
        assert_eq!(
            check_admin_token(with("Bearer s3cre").as_slice(), Some("s3cret")),
            Err(AdminAuthError::WrongToken)
        );
        assert_eq!(
            check_admin_token(with("Bearer s3cret ").as_slice(), Some("s3cret")),
            Ok(())
        );
    }
}
