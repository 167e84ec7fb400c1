//! A [`Served`] response from the core, as the runtime's `Response`.

use edge_core::{Served, ServedBody};
use web_sys::{Response, ResponseInit};

use crate::headers::to_web_headers;

/// Statuses that must not carry a body, not even an empty stream.
fn null_body(status: u16) -> bool {
    matches!(status, 101 | 204 | 205 | 304)
}

pub fn to_response(served: Served<Response>) -> worker::Result<Response> {
    let init = ResponseInit::new();
    init.set_status(served.status);
    init.set_headers_headers(&to_web_headers(&served.headers)?);
    let response = match served.body {
        _ if null_body(served.status) => Response::new_with_opt_str_and_init(None, &init)?,
        ServedBody::Empty => Response::new_with_opt_str_and_init(None, &init)?,
        ServedBody::Bytes(mut bytes) => Response::new_with_opt_u8_array_and_init(Some(&mut bytes), &init)?,
        ServedBody::Stream(origin) => {
            init.set_status_text(&origin.status_text());
            Response::new_with_opt_readable_stream_and_init(origin.body().as_ref(), &init)?
        }
    };
    Ok(response)
}
