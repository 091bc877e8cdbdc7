//! The policy protocol reader on any bytes, fed whole and split at
//! input-chosen points: never a panic, the same requests and error either
//! way, and every reply one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfuse_policy::protocol::{encode, Action, Request, RequestReader};

/// The request limit policy uses by default is larger; a small one reaches
/// the too-large path with small inputs.
const MAX_BYTES: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let whole = read(data.chunks(data.len().max(1)));
    let pieces = read(data.chunks(usize::from(step % 16) + 1));
    assert_eq!(whole, pieces, "framing depends on how the bytes arrive");
});

/// Everything a reader makes of `chunks`: each request as policy reads it,
/// and how it ended.
fn read<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let mut reader = RequestReader::new(MAX_BYTES);
    let mut seen = Vec::new();
    for chunk in chunks {
        reader.feed(chunk);
        loop {
            match reader.next_request() {
                Ok(Some(request)) => seen.push(describe(&request)),
                Ok(None) => break,
                Err(error) => {
                    seen.push(error.to_string());
                    return seen;
                }
            }
        }
    }
    seen
}

fn describe(request: &Request) -> String {
    let sender = String::from_utf8_lossy(request.sender().unwrap_or_default()).into_owned();
    let reply = encode(&Action::Reject(sender.clone()));
    assert!(
        reply.ends_with(b"\n\n") && newlines(&reply) == 2,
        "a reply broke its line: {reply:?}"
    );
    format!(
        "{:?} {:?} {:?} {} {:?} {:?} {:?} {sender}",
        request.protocol_state(),
        request.sasl_username(),
        request.client_address(),
        request.recipient_count(),
        request.recipient(),
        request.instance(),
        request.get("helo_name"),
    )
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}
