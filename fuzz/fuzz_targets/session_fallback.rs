#![no_main]
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use edge_core::fuzzing::FallbackAead;

/// AES-256-GCM with RustCrypto's `aes-gcm` (WebCrypto's in the worker), as the corpus replay
/// `crates/edge-core/tests/fuzz_corpus.rs` does.
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

libfuzzer_sys::fuzz_target!(|data: &[u8]| edge_core::fuzzing::session_fallback(data, &AesGcm));
