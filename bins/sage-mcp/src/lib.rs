//! `sage-mcp`: the Sage network as MCP tools, so an agent (Claude, Cursor, any MCP client) can
//! buy verifiable compute within a budget the operator sets.
//!
//! - [`config`]: the TOML config (coordinator, the client account that escrows, the budget,
//!   HTTP); secrets live in files it names, never in the config or on argv.
//! - [`governor`]: caps per call, per session and per rolling day, checked before anything is
//!   signed; approval above a threshold; a synced ledger keyed by each call's idempotency key.
//! - [`server`]: the tools, on `sage-sdk` (which verifies every result on this machine).
//! - [`http`]: Streamable HTTP at `/mcp` behind bearer tokens (stored hashed), loopback by default.

pub mod config;
pub mod governor;
pub mod http;
pub mod server;
