//! JSON-RPC over stdio, both directions.
//!
//! Upstream: the bytes are a client's stdin; every line becomes a message for the service or a
//! JSON-RPC error reply on stdout, and nothing else ever reaches stdout. No byte sequence ends the
//! session: a `ping` written after the input always arrives, last.
//!
//! Downstream: the bytes are a server's stdout, fed to the bounded line framer in chunks cut
//! where the input says; the frames must equal what a plain split at `\n` gives (a line over
//! the limit becomes `Oversized`, the unterminated rest at the end is a last line), whatever the
//! chunking.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pluggedin_mcp_proxy::wire::framing::{Frame, LineFramer};
use pluggedin_mcp_proxy::upstream::stdio::StdioTransport;
use rmcp::RoleServer;
use rmcp::transport::Transport;
use tokio::io::AsyncReadExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// A request written after the fuzzed bytes: whatever came before, it must reach the service.
const SENTINEL: &[u8] = b"\n{\"jsonrpc\":\"2.0\",\"id\":424242,\"method\":\"ping\"}\n";

fn upstream(data: &[u8]) {
    runtime().block_on(async {
        let (output, mut reader) = tokio::io::duplex(1 << 20);
        let mut input = data.to_vec();
        input.extend_from_slice(SENTINEL);
        let mut transport = StdioTransport::with_io(std::io::Cursor::new(input), output);
        let mut messages = 0usize;
        let mut last = None;
        while let Some(message) = Transport::<RoleServer>::receive(&mut transport).await {
            messages += 1;
            last = Some(message);
        }
        let last = serde_json::to_value(last.expect("the sentinel arrives")).expect("encodes");
        assert_eq!(last["id"], 424242, "the sentinel is the last message: {last}");
        drop(transport);
        let mut written = Vec::new();
        reader
            .read_to_end(&mut written)
            .await
            .expect("read the output");
        let lines = data.split(|byte| *byte == b'\n').count() + 2;
        assert!(messages <= lines);
        for line in written
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
        {
            let reply: serde_json::Value =
                serde_json::from_slice(line).expect("stdout carries JSON only");
            assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
            assert!(reply["error"]["code"].is_i64(), "{reply}");
        }
    });
}

fn downstream(data: &[u8]) {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let max = 1 + usize::from(control % 64);
    let chunk = 1 + usize::from(control / 64) * 7;
    /// A line's bytes, or `None` for a line over the limit.
    fn owned(frame: Frame<'_>) -> Option<Vec<u8>> {
        match frame {
            Frame::Line(line) => Some(line.to_vec()),
            Frame::Oversized { .. } => None,
        }
    }
    let mut framer = LineFramer::new(max);
    let mut frames = Vec::new();
    for piece in body.chunks(chunk) {
        framer.read_space().extend_from_slice(piece);
        while let Some(frame) = framer.next_frame() {
            frames.push(owned(frame));
        }
    }
    frames.extend(framer.finish().map(owned));
    let mut expected = Vec::new();
    let mut segments: Vec<&[u8]> = body.split(|byte| *byte == b'\n').collect();
    // The part after the last newline is a line only if the stream ends with something there.
    if segments.last().is_some_and(|rest| rest.is_empty()) {
        segments.pop();
    }
    for segment in segments {
        if segment.len() > max {
            expected.push(None);
        } else {
            expected.push(Some(
                segment.strip_suffix(b"\r").unwrap_or(segment).to_vec(),
            ));
        }
    }
    assert_eq!(frames, expected);
}

fuzz_target!(|data: &[u8]| {
    upstream(data);
    downstream(data);
});
