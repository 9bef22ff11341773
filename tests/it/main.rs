//! Integration tests: the real proxy binary, real downstream servers (our demo server,
//! server-everything, mcp-server-time) and a real rmcp client. One binary, so the suite links once.

// Legacy sampling, roots and logging are what these tests exercise; helpers are `pub` for the modules.
#![allow(deprecated, unreachable_pub)]

mod support;

mod cli;
mod forwarding;
mod input;
mod reload;
mod resilience;
mod routing;
mod transports;
