//! The wire floor: every place the proxy steps around rmcp at the byte level. Each file says which
//! rmcp behaviour it compensates and what to do when rmcp changes, so a reader can tell the
//! design from the compensation for the SDK. It depends on external crates and floor 0 only;
//! the transports (downstream, upstream) call it.
//!
//! - [`core_tasks`]: 2025-11-25 tasks carried as raw JSON (rmcp's model drops their data).
//! - [`framing`]: newline framing for both stdio sides, with a limit of our choosing and an answer
//!   for every line (rmcp's stdio transports drop a line they cannot parse or that passes their
//!   fixed 16 MiB limit).
//! - [`lane`]: a `tools/call` written to a stdio child and its answer taken back raw, beside
//!   rmcp's client service (which encodes, decodes and hops tasks for every request).
//! - [`process_io`]: stdin and stdout as non-blocking streams on the runtime's own thread (tokio's
//!   standard streams, which rmcp's stdio transport takes, go through the blocking pool).
//! - [`json_answers`]: a session's answer as a JSON body instead of an SSE stream (rmcp answers
//!   every request of a session on a stream).
//! - [`typed_answers`]: `tools/call` and `tools/list` answers decoded straight into their types
//!   (rmcp's untagged `ServerResult` tries fifteen variants first).
//!
//! Two more live beside what they need from the floors above, and say the same of themselves:
//! `upstream::tool_pages` answers `tools/list` from pages encoded once per catalog (rmcp encodes
//! its typed result for every request; drop it if rmcp can send pre-encoded results), and
//! `downstream::observe` routes a server's progress and logs from the one receive loop (rmcp gives each
//! notification its own task, so progress could overtake the answer; drop it if rmcp delivers
//! notifications in order) and drops the late answer to a `server/discover` probe rmcp gave up
//! on after its fixed 10 s (rmcp takes it for the answer to the `initialize` it sent next).

pub mod core_tasks;
pub mod framing;
pub mod json_answers;
pub mod lane;
pub mod process_io;
pub mod typed_answers;
