//! The bearer token check: `Authorization: Bearer T` or `?_token=T`, compared in constant time.

use subtle::ConstantTimeEq;

use crate::errors::GatewayError;

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

/// Ok if `presented` is the expected token. The comparison takes the same time
/// wherever the first differing byte is.
pub fn check(expected: &[u8], presented: Option<&[u8]>) -> Result<(), GatewayError> {
    match presented {
        None => Err(GatewayError::MissingToken),
        Some([]) => Err(GatewayError::MissingToken),
        Some(token) => {
            if bool::from(expected.ct_eq(token)) {
                Ok(())
            } else {
                Err(GatewayError::WrongToken)
            }
        }
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
    fn compares() {
        assert_eq!(check(b"secret", Some(b"secret")), Ok(()));
        assert_eq!(check(b"secret", Some(b"secreT")), Err(GatewayError::WrongToken));
        assert_eq!(check(b"secret", Some(b"secret2")), Err(GatewayError::WrongToken));
        assert_eq!(check(b"secret", Some(b"")), Err(GatewayError::MissingToken));
        assert_eq!(check(b"secret", None), Err(GatewayError::MissingToken));
    }
}
