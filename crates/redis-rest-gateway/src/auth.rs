//! The bearer tokens: `Authorization: Bearer T` or `?_token=T`, compared in constant time
//! against every configured token (several at once, so one can be rotated without downtime),
//! each with full or read-only access.

use subtle::{Choice, ConstantTimeEq};

use crate::errors::GatewayError;

/// What a presented token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Full,
    /// Only commands Redis flags as not writing.
    ReadOnly,
}

/// Every token the gateway accepts.
#[derive(Clone)]
pub struct Tokens {
    full: Vec<Vec<u8>>,
    readonly: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} full, {} read-only)", self.full.len(), self.readonly.len())
    }
}

impl Tokens {
    /// At least one full-access token; no token in both lists.
    pub fn new(full: Vec<String>, readonly: Vec<String>) -> Result<Tokens, String> {
        if full.is_empty() {
            return Err("no full-access token".into());
        }
        if readonly.iter().any(|r| full.contains(r)) {
            return Err(
                "a token cannot be both full-access (--token) and read-only (--readonly-token)".into()
            );
        }
        Ok(Tokens {
            full: full.into_iter().map(String::into_bytes).collect(),
            readonly: readonly.into_iter().map(String::into_bytes).collect(),
        })
    }

    pub fn has_readonly(&self) -> bool {
        !self.readonly.is_empty()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.full.iter().chain(&self.readonly).any(|t| t == token.as_bytes())
    }

    /// The access `presented` grants. Every configured token is compared, each in constant time,
    /// so the time taken says nothing about which token (or which byte) differed.
    pub fn check(&self, presented: Option<&[u8]>) -> Result<Access, GatewayError> {
        let token = match presented {
            None | Some([]) => return Err(GatewayError::MissingToken),
            Some(token) => token,
        };
        let matches = |list: &[Vec<u8>]| list.iter().fold(Choice::from(0), |acc, t| acc | t.ct_eq(token));
        let full = matches(&self.full);
        let readonly = matches(&self.readonly);
        if bool::from(full) {
            Ok(Access::Full)
        } else if bool::from(readonly) {
            Ok(Access::ReadOnly)
        } else {
            Err(GatewayError::WrongToken)
        }
    }
}

/// The token a request presents: the `Authorization` header if there is one,
/// else the `_token` query parameter.
pub fn presented_token(authorization: Option<&[u8]>, query: Option<&str>) -> Option<Vec<u8>> {
    if let Some(header) = authorization {
        let header = header.trim_ascii();
        let token = match header.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => header[7..].trim_ascii(),
            // Some other scheme: present it whole, so it is simply wrong.
            _ => header,
        };
        return Some(token.to_vec());
    }
    let query = query?;
    query.split('&').find_map(|pair| {
        let value = pair.strip_prefix("_token=")?;
        Some(percent_encoding::percent_decode_str(value).collect())
    })
}

/// Ok if `presented` is exactly `expected` (one token, constant time): the metrics token.
pub fn check_one(expected: &[u8], presented: Option<&[u8]>) -> Result<(), GatewayError> {
    match presented {
        None | Some([]) => Err(GatewayError::MissingToken),
        Some(token) if bool::from(expected.ct_eq(token)) => Ok(()),
        Some(_) => Err(GatewayError::WrongToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token() {
        assert_eq!(presented_token(Some(b"Bearer abc"), None).as_deref(), Some(&b"abc"[..]));
        assert_eq!(presented_token(Some(b"bearer  abc "), None).as_deref(), Some(&b"abc"[..]));
        assert_eq!(presented_token(None, Some("a=1&_token=x%2By")).as_deref(), Some(&b"x+y"[..]));
        assert_eq!(presented_token(None, Some("a=1")), None);
        assert_eq!(presented_token(None, None), None);
        assert_eq!(presented_token(Some(b"Basic Zm9v"), None).as_deref(), Some(&b"Basic Zm9v"[..]));
    }

    #[test]
    fn compares_against_every_token() {
        let tokens = Tokens::new(vec!["old".into(), "new".into()], vec!["reader".into()]).unwrap();
        assert_eq!(tokens.check(Some(b"old")), Ok(Access::Full));
        assert_eq!(tokens.check(Some(b"new")), Ok(Access::Full));
        assert_eq!(tokens.check(Some(b"reader")), Ok(Access::ReadOnly));
        assert_eq!(tokens.check(Some(b"ne")), Err(GatewayError::WrongToken));
        assert_eq!(tokens.check(Some(b"newer")), Err(GatewayError::WrongToken));
        assert_eq!(tokens.check(Some(b"")), Err(GatewayError::MissingToken));
        assert_eq!(tokens.check(None), Err(GatewayError::MissingToken));
        assert!(Tokens::new(vec!["a".into()], vec!["a".into()]).is_err());
        assert!(Tokens::new(vec![], vec!["a".into()]).is_err());
    }

    #[test]
    fn one_token() {
        assert_eq!(check_one(b"m", Some(b"m")), Ok(()));
        assert_eq!(check_one(b"m", Some(b"n")), Err(GatewayError::WrongToken));
        assert_eq!(check_one(b"m", None), Err(GatewayError::MissingToken));
    }
}
