//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`, docs §11) through the very
//! functions the fuzz targets call, on stable Rust and without libFuzzer: every input that once
//! reached new code keeps being checked by `cargo test`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use edge_core::fuzzing::{self, FallbackAead};

/// Runs every file of `fuzz/corpus/<target>` through `run`; fails naming each file that
/// panicked (its message is printed above), and fails if the corpus is missing or nearly empty.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.map(|entry| entry.path()).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{}: only {} files; the corpus is missing", dir.display(), files.len());
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{} of {} {target} inputs failed: {failed:#?}", failed.len(), files.len());
}

#[test]
fn cache_control_corpus() {
    replay("cache_control", fuzzing::cache_control);
}

#[test]
fn session_cookie_corpus() {
    replay("session_cookie", fuzzing::session_cookie);
}

/// AES-256-GCM with RustCrypto's `aes-gcm` (WebCrypto's in the worker), as the fuzz target
/// `fuzz/fuzz_targets/session_fallback.rs` does.
struct AesGcm;

impl FallbackAead for AesGcm {
    fn seal(&self, key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(key.into());
        cipher.encrypt(Nonce::from_slice(nonce), Payload { msg: plaintext, aad }).expect("AES-GCM seals")
    }

    fn open(&self, key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        let cipher = Aes256Gcm::new(key.into());
        cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad }).ok()
    }
}

#[test]
fn session_fallback_corpus() {
    replay("session_fallback", |data| fuzzing::session_fallback(data, &AesGcm));
}

#[test]
fn entry_decode_corpus() {
    replay("entry_decode", fuzzing::entry_decode);
}

#[test]
fn rules_config_corpus() {
    replay("rules_config", fuzzing::rules_config);
}

#[test]
fn upstash_reply_corpus() {
    replay("upstash_reply", fuzzing::upstash_reply);
}
