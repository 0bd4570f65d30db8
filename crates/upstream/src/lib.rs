//! Connections to real MCP servers behind the sandbox.

#![forbid(unsafe_code)]
