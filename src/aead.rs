//! AES-256-GCM through the runtime's WebCrypto (`crypto.subtle`), for the session fallback
//! cookie (docs §5.11): the wasm carries no AES of its own. The raw key is imported per call
//! (non-extractable, usable for this one operation); sealing only happens while the session
//! store is down, and opening only for a fallback cookie.

use edge_core::js_await::settled_of;
use edge_core::CryptoError;
use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{AesGcmParams, CryptoKey, SubtleCrypto, WorkerGlobalScope};

#[derive(Clone, Copy)]
pub enum Direction {
    Seal,
    Open,
}

/// Encrypts (`Seal`: ciphertext ‖ 16-byte tag) or decrypts and authenticates (`Open`) `data`.
pub async fn aes_gcm(
    direction: Direction,
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let subtle = subtle().ok_or(CryptoError::Unsupported)?;
    let usage = match direction {
        Direction::Seal => "encrypt",
        Direction::Open => "decrypt",
    };
    let usages = Array::of1(&JsValue::from_str(usage));
    let key_data: Object = Uint8Array::from(&key[..]).into();
    let import = subtle
        .import_key_with_str("raw", &key_data, "AES-GCM", false, &usages)
        .map_err(|_| CryptoError::Unsupported)?;
    let crypto_key: CryptoKey = settled_of(&import)
        .await
        .map_err(|_| CryptoError::Failed)?
        .dyn_into()
        .map_err(|_| CryptoError::Failed)?;
    let params = AesGcmParams::new("AES-GCM", &Uint8Array::from(&nonce[..]));
    params.set_additional_data(&Uint8Array::from(aad));
    let promise = match direction {
        Direction::Seal => subtle.encrypt_with_object_and_u8_array(&params, &crypto_key, data),
        Direction::Open => subtle.decrypt_with_object_and_u8_array(&params, &crypto_key, data),
    }
    .map_err(|_| CryptoError::Failed)?;
    // A tag that does not verify rejects the promise: Failed, never a panic.
    let buffer = settled_of(&promise).await.map_err(|_| CryptoError::Failed)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

fn subtle() -> Option<SubtleCrypto> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    Some(scope.crypto().ok()?.subtle())
}
