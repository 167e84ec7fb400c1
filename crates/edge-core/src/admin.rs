//! Who may call the admin API (`/__edge/purge`, `/__edge/stats`): a bearer token compared in
//! constant time. With no `ADMIN_TOKEN` configured the admin API does not exist (404).

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAccess {
    /// `ADMIN_TOKEN` is unset: answer 404, as if the path did not exist.
    Disabled,
    /// Missing, malformed or wrong credentials: 401, nothing done.
    Denied,
    Allowed,
}

/// Checks an `Authorization` header value against the configured token.
///
/// Both sides are hashed first so that the comparison takes the same time whatever the
/// lengths and wherever the first difference is.
pub fn admin_access(authorization: Option<&str>, configured: Option<&str>) -> AdminAccess {
    let Some(configured) = configured else { return AdminAccess::Disabled };
    let presented = authorization
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("");
    if constant_time_eq(presented.as_bytes(), configured.as_bytes()) && !presented.is_empty() {
        AdminAccess::Allowed
    } else {
        AdminAccess::Denied
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter().zip(db.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        assert_eq!(admin_access(Some("Bearer s3cret"), None), AdminAccess::Disabled);
        assert_eq!(admin_access(Some("Bearer s3cret"), Some("s3cret")), AdminAccess::Allowed);
        assert_eq!(admin_access(Some("bearer  s3cret "), Some("s3cret")), AdminAccess::Allowed);
        for bad in [
            None,
            Some(""),
            Some("s3cret"),
            Some("Basic s3cret"),
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("Bearer "),
        ] {
            assert_eq!(admin_access(bad, Some("s3cret")), AdminAccess::Denied, "{bad:?}");
        }
    }
}
