//! Integration tests: the real proxy binary, real downstream servers (our demo server,
//! server-everything, mcp-server-time) and a real rmcp client. One binary, so the suite links once.

// Legacy sampling, roots and logging are what these tests exercise; helpers are `pub` for the modules.
#![allow(deprecated, unreachable_pub)]
// Test code: panicking on the unexpected is the point, and a failing test prints the proxy log.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod app_stub;
mod architecture;
mod llm_standin;
mod pg_cluster;
mod support;
// The tool-search benchmark's data module, shared with the benchmark.
#[path = "../../benches/tool_search/data.rs"]
mod tool_search_data;
mod webdriver;

mod api;
mod api_console;
mod app;
mod app_contract;
mod builtin;
mod cli;
mod clients;
mod console;
mod control;
mod core_tasks;
mod cross_generation;
mod documents;
mod first_contact;
mod fleet;
mod forwarding;
mod generations;
mod headers;
mod hostile_servers;
mod http;
mod http_hostile_clients;
mod import;
mod input;
mod listing;
mod llm;
mod oauth;
mod observability;
mod playground;
mod playground_console;
mod postgres;
mod registry;
mod relay;
mod reload;
mod replicas;
mod resilience;
mod resume;
mod roots;
mod routing;
mod security;
mod session_layer;
mod tasks;
mod tool_exposure;
mod tool_hints;
mod tool_search;
mod transports;
