//! The entry codec and the freshness windows, table- and property-tested.
use super::*;
use proptest::prelude::*;

fn sample(body: Vec<u8>) -> CacheEntry {
    CacheEntry {
        status: 200,
        headers: vec![
            ("content-type".into(), b"application/json".to_vec()),
            ("x-multi".into(), b"a".to_vec()),
            ("x-multi".into(), b"b".to_vec()),
        ],
        body,
        stored_at_ms: 1_700_000_000_000,
        initial_age_secs: 3,
        freshness: Freshness { ttl: 60, swr: 30, sie: 600 },
        tags: vec!["product".into(), "product-42".into()],
        vary: vec!["accept-encoding".into()],
    }
}

fn compressible(len: usize) -> Vec<u8> {
    b"{\"id\":42,\"name\":\"widget\"},".iter().copied().cycle().take(len).collect()
}

#[test]
fn round_trip_small_and_large() {
    for body in [vec![], b"hello".to_vec(), compressible(10 * 1024), vec![7; 1025]] {
        let entry = sample(body);
        assert_eq!(CacheEntry::decode(&entry.encode()), Ok(entry));
    }
}

#[test]
fn small_entries_are_not_compressed_large_ones_are() {
    let small = sample(b"tiny".to_vec()).encode();
    assert_eq!(small.get(..4), Some(&b"EC\x01\x00"[..]));

    let body = compressible(10 * 1024);
    let encoded = sample(body.clone()).encode();
    assert_eq!(encoded.get(..4), Some(&b"EC\x01\x01"[..]));
    assert!(encoded.len() < body.len() / 4, "10 KiB compressible body encoded to {} bytes", encoded.len());
}

#[test]
fn incompressible_large_entries_stay_raw() {
    // A xorshift byte stream: lz4 cannot shrink it.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let body: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let entry = sample(body);
    let encoded = entry.encode();
    assert_eq!(encoded.get(3), Some(&0));
    assert_eq!(CacheEntry::decode(&encoded), Ok(entry));
}

#[test]
fn truncated_at_every_length_is_an_error() {
    for body in [b"abc".to_vec(), compressible(5000)] {
        let encoded = sample(body).encode();
        for len in 0..encoded.len() {
            let prefix = encoded.get(..len).unwrap();
            assert!(CacheEntry::decode(prefix).is_err(), "prefix of {len} bytes decoded");
        }
    }
}

#[test]
fn trailing_garbage_is_an_error() {
    let mut raw = sample(b"abc".to_vec()).encode();
    raw.push(0);
    assert_eq!(CacheEntry::decode(&raw), Err(EntryError::TrailingBytes(1)));

    let mut compressed = sample(compressible(5000)).encode();
    compressed.extend_from_slice(b"junk");
    assert!(CacheEntry::decode(&compressed).is_err());
}

#[test]
fn header_errors() {
    let good = sample(b"x".to_vec()).encode();
    let table: Vec<(Vec<u8>, EntryError)> = vec![
        (vec![], EntryError::BadMagic),
        (b"E".to_vec(), EntryError::BadMagic),
        (b"XX\x01\x00".to_vec(), EntryError::BadMagic),
        (b"EC".to_vec(), EntryError::Truncated),
        (b"EC\x01".to_vec(), EntryError::Truncated),
        ([b"EC\x02".as_slice(), good.get(3..).unwrap()].concat(), EntryError::UnsupportedVersion(2)),
        ([b"EC\x00".as_slice(), good.get(3..).unwrap()].concat(), EntryError::UnsupportedVersion(0)),
        ([b"EC\x01\x02".as_slice(), good.get(4..).unwrap()].concat(), EntryError::UnknownFlags(2)),
    ];
    for (bytes, expected) in table {
        assert_eq!(CacheEntry::decode(&bytes), Err(expected), "{bytes:?}");
    }
}

#[test]
fn decompression_bombs_are_refused() {
    // Declares 64 MiB + 1.
    let mut bytes = b"EC\x01\x01".to_vec();
    bytes.extend_from_slice(&(MAX_DECODED_BYTES as u32 + 1).to_le_bytes());
    bytes.extend_from_slice(&[0u8; 32]);
    assert!(matches!(CacheEntry::decode(&bytes), Err(EntryError::TooLarge(_))));
    // Declares 10 MB from a 10-byte block: more than lz4 can produce.
    let mut bytes = b"EC\x01\x01".to_vec();
    bytes.extend_from_slice(&10_000_000u32.to_le_bytes());
    bytes.extend_from_slice(&[0u8; 10]);
    assert!(matches!(CacheEntry::decode(&bytes), Err(EntryError::TooLarge(_))));
    // A declared size smaller than the real one is a decompress error, not a panic.
    let raw = sample(compressible(5000)).encode_raw();
    let block = lz4_flex::block::compress(&raw);
    let mut bytes = b"EC\x01\x01".to_vec();
    bytes.extend_from_slice(&100u32.to_le_bytes());
    bytes.extend_from_slice(&block);
    assert!(matches!(CacheEntry::decode(&bytes), Err(EntryError::Decompress(_))));
    // And a larger one is too.
    let mut bytes = b"EC\x01\x01".to_vec();
    bytes.extend_from_slice(&(raw.len() as u32 + 1).to_le_bytes());
    bytes.extend_from_slice(&block);
    assert!(matches!(CacheEntry::decode(&bytes), Err(EntryError::Decompress(_))));
}

#[test]
fn huge_counts_do_not_allocate() {
    let mut raw = sample(vec![]).encode_raw();
    // The header count sits right after the 26 fixed bytes.
    raw.splice(26..30, u32::MAX.to_le_bytes());
    let mut bytes = b"EC\x01\x00".to_vec();
    bytes.extend_from_slice(&raw);
    assert_eq!(CacheEntry::decode(&bytes), Err(EntryError::Truncated));
}

#[test]
fn invalid_contents_are_refused() {
    let mut bad_name = sample(vec![]);
    bad_name.headers = vec![("bad name".into(), b"v".to_vec())];
    assert_eq!(CacheEntry::decode(&bad_name.encode()), Err(EntryError::InvalidHeader));
    let mut bad_value = sample(vec![]);
    bad_value.headers = vec![("x".into(), b"a\nb".to_vec())];
    assert_eq!(CacheEntry::decode(&bad_value.encode()), Err(EntryError::InvalidHeader));

    let raw = sample(vec![]).encode_raw();
    let tag_at = raw.windows(7).position(|w| w == b"product").unwrap();
    let mut raw = raw;
    raw[tag_at] = 0xff;
    let mut bytes = b"EC\x01\x00".to_vec();
    bytes.extend_from_slice(&raw);
    assert_eq!(CacheEntry::decode(&bytes), Err(EntryError::InvalidUtf8));
}

#[test]
fn flipped_bytes_never_panic() {
    for body in [b"abc".to_vec(), compressible(3000)] {
        let encoded = sample(body).encode();
        for index in 0..encoded.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut corrupt = encoded.clone();
                corrupt[index] ^= mask;
                let _ = CacheEntry::decode(&corrupt);
            }
        }
    }
}

#[test]
fn errors_display() {
    assert_eq!(
        EntryError::UnsupportedVersion(9).to_string(),
        "cache entry format version 9 is not supported (expected 1)"
    );
    assert_eq!(EntryError::Truncated.to_string(), "cache entry is truncated");
    assert_eq!(EntryError::TrailingBytes(3).to_string(), "cache entry has 3 trailing bytes");
}

#[test]
fn clock_table() {
    // stored at t=1000 s, initial age 3, ttl 60, swr 30, sie 600
    let entry = sample(vec![]);
    let at = |secs_after: f64| entry.stored_at_ms + (secs_after * 1000.0) as u64;
    // (seconds after store, age, remaining, fresh, swr, sie)
    let table = [
        (0.0, 3, 60, true, true, true),
        (0.5, 3, 60, true, true, true),
        (1.0, 4, 59, true, true, true),
        (59.0, 62, 1, true, true, true),
        (59.999, 62, 1, true, true, true),
        (60.0, 63, 0, false, true, true),
        (60.001, 63, -1, false, true, true),
        (61.0, 64, -1, false, true, true),
        (89.999, 92, -30, false, true, true),
        (90.0, 93, -30, false, false, true),
        (659.999, 662, -600, false, false, true),
        (660.0, 663, -600, false, false, false),
    ];
    for (after, age, remaining, fresh, swr, sie) in table {
        let now = at(after);
        assert_eq!(entry.age_secs(now), age, "age at {after}");
        assert_eq!(entry.fresh_remaining_secs(now), remaining, "remaining at {after}");
        assert_eq!(entry.is_fresh(now), fresh, "fresh at {after}");
        assert_eq!(entry.within_swr(now), swr, "swr at {after}");
        assert_eq!(entry.within_sie(now), sie, "sie at {after}");
    }
    // A clock behind the store time counts as "just stored".
    let before = entry.stored_at_ms - 5_000;
    assert_eq!(entry.age_secs(before), 3);
    assert_eq!(entry.fresh_remaining_secs(before), 60);
    assert!(entry.is_fresh(before));
    // Extreme values do not overflow.
    let mut forever = sample(vec![]);
    forever.freshness = Freshness { ttl: u32::MAX, swr: u32::MAX, sie: u32::MAX };
    forever.stored_at_ms = 0;
    let last_fresh_ms = u64::from(u32::MAX) * 1000 - 1;
    assert!(forever.is_fresh(last_fresh_ms));
    assert_eq!(forever.fresh_remaining_secs(last_fresh_ms), 1);
    assert!(!forever.is_fresh(last_fresh_ms + 1));
    assert!(forever.within_swr(last_fresh_ms + 1));
    assert!(!forever.is_fresh(u64::MAX));
    assert!(!forever.within_swr(u64::MAX));
    assert!(forever.fresh_remaining_secs(u64::MAX) < 0);
    assert!(forever.age_secs(u64::MAX) > u64::from(u32::MAX));
    // A stale-only entry (ttl 0) is never fresh.
    let mut stale_only = sample(vec![]);
    stale_only.freshness = Freshness { ttl: 0, swr: 30, sie: 0 };
    assert!(!stale_only.is_fresh(stale_only.stored_at_ms));
    assert!(stale_only.within_swr(stale_only.stored_at_ms));
    assert!(!stale_only.within_sie(stale_only.stored_at_ms));
}

fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn storable_headers_drop_the_right_ones() {
    let input = headers(&[
        ("content-type", "text/html"),
        ("date", "Tue, 01 Jul 2025 10:00:00 GMT"),
        ("cache-control", "max-age=60, private=\"X-User\", no-cache=\"x-debug\""),
        ("etag", "\"abc\""),
        ("vary", "Accept-Encoding"),
        ("x-multi", "1"),
        ("x-multi", "2"),
        ("connection", "keep-alive, X-Hop"),
        ("x-hop", "secret"),
        ("keep-alive", "timeout=5"),
        ("proxy-authenticate", "Basic"),
        ("proxy-connection", "close"),
        ("te", "trailers"),
        ("trailer", "x-checksum"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "h2c"),
        ("set-cookie", "a=b"),
        ("age", "5"),
        ("content-length", "10"),
        ("x-cache", "HIT"),
        ("cache-status", "other; hit"),
        ("cache-tag", "a,b"),
        ("surrogate-key", "a b"),
        ("edge-purge-tags", "c"),
        ("edge-session-set", "{}"),
        ("edge-session-rotate", "1"),
        ("edge-session", "abc"),
        ("x-user", "alice"),
        ("x-debug", "1"),
    ]);
    let kept = storable_headers(&input);
    let names: Vec<&str> = kept.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, vec!["content-type", "date", "cache-control", "etag", "vary", "x-multi", "x-multi"]);
    let multi: Vec<&[u8]> =
        kept.iter().filter(|(name, _)| name == "x-multi").map(|(_, value)| value.as_slice()).collect();
    assert_eq!(multi, vec![b"1".as_slice(), b"2".as_slice()]);
}

fn arb_entry() -> impl Strategy<Value = CacheEntry> {
    let header = ("[a-z][a-z0-9-]{0,20}", proptest::collection::vec(0x20u8..0x7f, 0..40));
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 1000..3000),
        (1usize..20_000).prop_map(compressible),
    ];
    (
        any::<u16>(),
        proptest::collection::vec(header, 0..8),
        body,
        any::<u64>(),
        any::<u32>(),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        proptest::collection::vec(".{0,12}", 0..5),
        proptest::collection::vec("[a-z-]{1,16}", 0..4),
    )
        .prop_map(
            |(status, headers, body, stored_at_ms, initial_age_secs, (ttl, swr, sie), tags, vary)| {
                CacheEntry {
                    status,
                    headers,
                    body,
                    stored_at_ms,
                    initial_age_secs,
                    freshness: Freshness { ttl, swr, sie },
                    tags,
                    vary,
                }
            },
        )
}

proptest! {
    #[test]
    fn round_trip(entry in arb_entry()) {
        let encoded = entry.encode();
        prop_assert_eq!(CacheEntry::decode(&encoded), Ok(entry));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = CacheEntry::decode(&bytes);
        let mut framed = b"EC\x01\x01".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = CacheEntry::decode(&framed);
        let mut framed = b"EC\x01\x00".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = CacheEntry::decode(&framed);
    }

    #[test]
    fn corrupted_entries_never_panic(entry in arb_entry(), index in any::<usize>(), mask in 1u8..) {
        let mut encoded = entry.encode();
        let len = encoded.len();
        if let Some(byte) = encoded.get_mut(index % len) {
            *byte ^= mask;
        }
        let _ = CacheEntry::decode(&encoded);
    }
}
