//! A stored response ([`CacheEntry`]) and its binary encoding in Redis (docs §7.5: values over
//! 1 KiB are compressed; an entry that does not decode is a miss and is replaced).
//!
//! Encoding, all integers little-endian:
//!
//! ```text
//! "EC" | format version (1) | flags (bit 0: lz4) | payload
//! payload, when lz4:  u32 raw length | lz4 block of the raw payload
//! raw payload:        u16 status | u64 stored_at_ms | u32 initial_age_secs | u32 ttl | u32 swr
//!                     | u32 sie | u32 n, n × (bytes name, bytes value) | bytes body
//!                     | u32 n, n × bytes tag | u32 n, n × bytes vary name
//! bytes:              u32 length | that many bytes
//! ```
//!
//! Decoding refuses (never panics on) a wrong magic or version, unknown flags, truncation,
//! trailing bytes, invalid header names/values or non-UTF-8 tags, and a declared decompressed
//! size over [`MAX_DECODED_BYTES`] or beyond what lz4 can expand the input to. There is no
//! checksum: a flipped byte inside the body decodes to a different body (Redis is trusted to
//! return what was written; the checks catch foreign or truncated values).

use std::fmt;

use crate::cache_control::CacheControl;
use crate::hygiene::{connection_listed, is_reserved, HOP_BY_HOP, TAG_HEADERS};
use crate::policy::Freshness;

const MAGIC: [u8; 2] = *b"EC";
/// The format version written by [`CacheEntry::encode`]; any other version does not decode.
pub const FORMAT_VERSION: u8 = 1;
const FLAG_LZ4: u8 = 0b0000_0001;
/// Raw encodings longer than this are compressed.
pub const COMPRESS_ABOVE_BYTES: usize = 1024;
/// Largest raw payload `decode` will inflate a compressed value to.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// lz4 cannot expand input by more than this factor (plus a small constant).
const LZ4_MAX_RATIO: usize = 255;

/// One stored response. Times are milliseconds since the epoch, passed in by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub status: u16,
    /// Response headers to replay, from [`storable_headers`], in order (a name may repeat).
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// When the entry was stored (the start of `freshness.ttl`).
    pub stored_at_ms: u64,
    /// The origin's `Age` when the response arrived (`policy::origin_age`): added to the `Age`
    /// served to clients. The freshness windows already account for it.
    pub initial_age_secs: u32,
    pub freshness: Freshness,
    pub tags: Vec<String>,
    /// The response's `Vary` names (from `key::vary_names`).
    pub vary: Vec<String>,
}

/// Why stored bytes did not decode. Any of these means: treat as a miss and replace the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    BadMagic,
    UnsupportedVersion(u8),
    UnknownFlags(u8),
    /// The input ended inside a field.
    Truncated,
    /// Bytes were left over after the last field.
    TrailingBytes(usize),
    /// The declared decompressed size is larger than allowed or than the input can hold.
    TooLarge(u64),
    /// The lz4 block is corrupt or does not inflate to the declared size.
    Decompress(String),
    InvalidHeader,
    InvalidUtf8,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::BadMagic => f.write_str("not a cache entry (bad magic bytes)"),
            EntryError::UnsupportedVersion(version) => {
                write!(f, "cache entry format version {version} is not supported (expected {FORMAT_VERSION})")
            }
            EntryError::UnknownFlags(flags) => write!(f, "cache entry has unknown flags {flags:#04x}"),
            EntryError::Truncated => f.write_str("cache entry is truncated"),
            EntryError::TrailingBytes(count) => {
                write!(f, "cache entry has {count} trailing bytes")
            }
            EntryError::TooLarge(size) => {
                write!(f, "cache entry declares {size} decompressed bytes, more than allowed")
            }
            EntryError::Decompress(reason) => write!(f, "cache entry does not decompress: {reason}"),
            EntryError::InvalidHeader => f.write_str("cache entry holds an invalid header"),
            EntryError::InvalidUtf8 => f.write_str("cache entry holds a non-UTF-8 tag or vary name"),
        }
    }
}

impl std::error::Error for EntryError {}

impl CacheEntry {
    /// The bytes to store in Redis. Compressed with lz4 when the raw encoding is over
    /// [`COMPRESS_ABOVE_BYTES`] and compression makes it smaller.
    ///
    /// Fields longer than `u32::MAX` bytes cannot be represented; they are cut to that length
    /// (far above `CACHE_MAX_BYTES`, so never in practice).
    /// The stored headers as a map (a header that no longer parses is left out).
    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) =
                (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_bytes(value))
            {
                map.append(name, value);
            }
        }
        map
    }

    pub fn encode(&self) -> Vec<u8> {
        let raw = self.encode_raw();
        let mut out = Vec::with_capacity(raw.len().min(COMPRESS_ABOVE_BYTES * 4) + 8);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        if raw.len() > COMPRESS_ABOVE_BYTES {
            if let Ok(raw_len) = u32::try_from(raw.len()) {
                let compressed = lz4_flex::block::compress(&raw);
                if compressed.len() + 4 < raw.len() {
                    out.push(FLAG_LZ4);
                    out.extend_from_slice(&raw_len.to_le_bytes());
                    out.extend_from_slice(&compressed);
                    return out;
                }
            }
        }
        out.push(0);
        out.extend_from_slice(&raw);
        out
    }

    /// Decodes bytes written by [`CacheEntry::encode`]. Never panics; see [`EntryError`].
    pub fn decode(bytes: &[u8]) -> Result<CacheEntry, EntryError> {
        let (magic, rest) = bytes.split_at_checked(2).ok_or(EntryError::BadMagic)?;
        if magic != MAGIC {
            return Err(EntryError::BadMagic);
        }
        let (&version, rest) = rest.split_first().ok_or(EntryError::Truncated)?;
        if version != FORMAT_VERSION {
            return Err(EntryError::UnsupportedVersion(version));
        }
        let (&flags, rest) = rest.split_first().ok_or(EntryError::Truncated)?;
        match flags {
            0 => decode_raw(rest),
            FLAG_LZ4 => {
                let (declared, block) = rest.split_at_checked(4).ok_or(EntryError::Truncated)?;
                let declared = read_u32(declared)? as usize;
                let bound = block.len().saturating_mul(LZ4_MAX_RATIO).saturating_add(64);
                if declared > MAX_DECODED_BYTES || declared > bound {
                    return Err(EntryError::TooLarge(declared as u64));
                }
                let mut raw = vec![0u8; declared];
                let written = lz4_flex::block::decompress_into(block, &mut raw)
                    .map_err(|error| EntryError::Decompress(error.to_string()))?;
                if written != declared {
                    return Err(EntryError::Decompress(format!(
                        "inflated to {written} bytes, declared {declared}"
                    )));
                }
                decode_raw(&raw)
            }
            other => Err(EntryError::UnknownFlags(other)),
        }
    }

    fn encode_raw(&self) -> Vec<u8> {
        let headers_len: usize = self.headers.iter().map(|(name, value)| name.len() + value.len() + 8).sum();
        let mut out = Vec::with_capacity(64 + headers_len + self.body.len());
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&self.stored_at_ms.to_le_bytes());
        out.extend_from_slice(&self.initial_age_secs.to_le_bytes());
        out.extend_from_slice(&self.freshness.ttl.to_le_bytes());
        out.extend_from_slice(&self.freshness.swr.to_le_bytes());
        out.extend_from_slice(&self.freshness.sie.to_le_bytes());
        put_count(&mut out, self.headers.len());
        for (name, value) in self.headers.iter().take(u32::MAX as usize) {
            put_bytes(&mut out, name.as_bytes());
            put_bytes(&mut out, value);
        }
        put_bytes(&mut out, &self.body);
        put_count(&mut out, self.tags.len());
        for tag in self.tags.iter().take(u32::MAX as usize) {
            put_bytes(&mut out, tag.as_bytes());
        }
        put_count(&mut out, self.vary.len());
        for name in self.vary.iter().take(u32::MAX as usize) {
            put_bytes(&mut out, name.as_bytes());
        }
        out
    }

    /// Whole seconds since the origin produced the response: `initial_age_secs` plus the time
    /// since `stored_at_ms` (0 if `now_ms` is earlier, e.g. clock skew between isolates). This is
    /// the `Age` header value to send.
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        u64::from(self.initial_age_secs) + self.elapsed_ms(now_ms) / 1000
    }

    /// Seconds of freshness left: positive while fresh (rounded up), zero or negative once stale
    /// (rounded down, so -1 within the first second of staleness). For `Cache-Status` `ttl=`.
    pub fn fresh_remaining_secs(&self, now_ms: u64) -> i64 {
        let remaining_ms = self.remaining_ms(now_ms);
        if remaining_ms > 0 {
            (remaining_ms + 999) / 1000
        } else {
            remaining_ms.div_euclid(1000)
        }
    }

    /// True while `now_ms` is within `ttl` of `stored_at_ms`.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        self.remaining_ms(now_ms) > 0
    }

    /// True while `now_ms` is before `stored_at + ttl + swr`: the entry may be served while a
    /// refresh runs. Also true while fresh; check [`CacheEntry::is_fresh`] first (an entry read
    /// from the stale key after a soft purge is stale whatever its clock says).
    pub fn within_swr(&self, now_ms: u64) -> bool {
        self.elapsed_ms(now_ms) < window_ms(self.freshness.ttl, self.freshness.swr)
    }

    /// True while `now_ms` is before `stored_at + ttl + sie`: the entry may be served when the
    /// origin fails. Also true while fresh.
    pub fn within_sie(&self, now_ms: u64) -> bool {
        self.elapsed_ms(now_ms) < window_ms(self.freshness.ttl, self.freshness.sie)
    }

    fn elapsed_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_at_ms)
    }

    fn remaining_ms(&self, now_ms: u64) -> i64 {
        let ttl_ms = i64::from(self.freshness.ttl) * 1000;
        let elapsed = i64::try_from(self.elapsed_ms(now_ms)).unwrap_or(i64::MAX);
        ttl_ms.saturating_sub(elapsed)
    }
}

fn window_ms(ttl: u32, extra: u32) -> u64 {
    (u64::from(ttl) + u64::from(extra)) * 1000
}

/// Response headers worth storing: everything except hop-by-hop fields (`Connection` and the
/// names it lists, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`),
/// `Set-Cookie`, `Age` (recomputed on serve), `Content-Length` (recomputed on serve), the
/// cache's own `X-Cache` and `Cache-Status`, tag headers (`Cache-Tag`, `Surrogate-Key`,
/// `Edge-Purge-Tags`), every `Edge-Session*` header, and the fields named by a qualified
/// `private="..."` or `no-cache="..."` (RFC 9111 §5.2.2.4, §5.2.2.7). `Date` is kept. Names
/// come out lower case, in the map's order.
pub fn storable_headers(headers: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    let cc = CacheControl::from_headers(headers);
    let connection_listed = connection_listed(headers);
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !HOP_BY_HOP.contains(&name)
                && !TAG_HEADERS.contains(&name)
                && !matches!(name, "set-cookie" | "age" | "content-length" | "x-cache" | "cache-status")
                && !name.starts_with("proxy-")
                && !is_reserved(name)
                && !connection_listed.iter().any(|listed| listed == name)
                && !cc.private_fields.iter().any(|field| field == name)
                && !cc.no_cache_fields.iter().any(|field| field == name)
        })
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect()
}

fn put_count(out: &mut Vec<u8>, count: usize) {
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes.get(..len as usize).unwrap_or(bytes));
}

fn read_u32(bytes: &[u8]) -> Result<u32, EntryError> {
    let array: [u8; 4] = bytes.try_into().map_err(|_| EntryError::Truncated)?;
    Ok(u32::from_le_bytes(array))
}

/// Cursor over a raw payload; every read checks bounds.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], EntryError> {
        let (taken, rest) = self.rest.split_at_checked(count).ok_or(EntryError::Truncated)?;
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EntryError> {
        self.take(N)?.try_into().map_err(|_| EntryError::Truncated)
    }

    fn u16(&mut self) -> Result<u16, EntryError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, EntryError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, EntryError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], EntryError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, EntryError> {
        std::str::from_utf8(self.bytes()?).map(str::to_string).map_err(|_| EntryError::InvalidUtf8)
    }

    /// A count of items each at least `min_item_bytes` long; refuses counts the rest cannot hold,
    /// so a corrupt count never drives a huge allocation.
    fn count(&mut self, min_item_bytes: usize) -> Result<usize, EntryError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(min_item_bytes) > self.rest.len() {
            return Err(EntryError::Truncated);
        }
        Ok(count)
    }
}

fn decode_raw(raw: &[u8]) -> Result<CacheEntry, EntryError> {
    let mut reader = Reader { rest: raw };
    let status = reader.u16()?;
    let stored_at_ms = reader.u64()?;
    let initial_age_secs = reader.u32()?;
    let freshness = Freshness { ttl: reader.u32()?, swr: reader.u32()?, sie: reader.u32()? };
    let header_count = reader.count(8)?;
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let name = reader.bytes()?;
        let value = reader.bytes()?;
        let name = http::HeaderName::from_bytes(name).map_err(|_| EntryError::InvalidHeader)?;
        http::HeaderValue::from_bytes(value).map_err(|_| EntryError::InvalidHeader)?;
        headers.push((name.as_str().to_string(), value.to_vec()));
    }
    let body = reader.bytes()?.to_vec();
    let tag_count = reader.count(4)?;
    let tags = (0..tag_count).map(|_| reader.string()).collect::<Result<Vec<String>, EntryError>>()?;
    let vary_count = reader.count(4)?;
    let vary = (0..vary_count).map(|_| reader.string()).collect::<Result<Vec<String>, EntryError>>()?;
    if !reader.rest.is_empty() {
        return Err(EntryError::TrailingBytes(reader.rest.len()));
    }
    Ok(CacheEntry { status, headers, body, stored_at_ms, initial_age_secs, freshness, tags, vary })
}

#[cfg(test)]
mod tests;
