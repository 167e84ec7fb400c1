//! Reading an origin body up to `CACHE_MAX_BYTES` without losing the rest.
//!
//! The response is cloned (the runtime tees its stream) and the copy is read chunk by chunk.
//! If it ends within the limit, the bytes are the entry's body and the original branch is
//! cancelled. If it grows past the limit, the copy is cancelled and the untouched original is
//! handed back to be streamed to the client: memory stays bounded by the limit (what the tee
//! buffers while we read), and nothing of the body is lost.

use edge_core::js_await::settled_of;
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use web_sys::{ReadableStreamDefaultReader, Response};

pub enum Read {
    Whole(Vec<u8>),
    TooLarge(Response),
}

pub async fn read_up_to(response: Response, limit: u64) -> Result<Read, String> {
    let Some(_) = response.body() else { return Ok(Read::Whole(Vec::new())) };
    let copy = response.clone().map_err(|e| format!("cannot clone the origin response: {e:?}"))?;
    let Some(stream) = copy.body() else { return Ok(Read::Whole(Vec::new())) };
    let reader: ReadableStreamDefaultReader =
        stream.get_reader().dyn_into().map_err(|_| "the origin body has no default reader".to_string())?;
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        let chunk = settled_of(&reader.read()).await.map_err(|e| format!("origin body broke: {e:?}"))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map(|v| v.is_truthy()).unwrap_or(true);
        if done {
            break;
        }
        let value =
            js_sys::Reflect::get(&chunk, &"value".into()).map_err(|_| "origin body chunk without value")?;
        let Ok(array) = value.dyn_into::<Uint8Array>() else {
            return Err("origin body chunk is not bytes".into());
        };
        if bytes.len() as u64 + u64::from(array.length()) > limit {
            let _ = reader.cancel();
            return Ok(Read::TooLarge(response));
        }
        let start = bytes.len();
        bytes.resize(start + array.length() as usize, 0);
        array.copy_to(&mut bytes[start..]);
    }
    if let Some(original) = response.body() {
        let _ = original.cancel();
    }
    Ok(Read::Whole(bytes))
}
