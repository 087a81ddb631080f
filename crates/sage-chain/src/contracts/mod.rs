//! Typed bindings of the Sage contracts.

pub mod faucet;
pub mod token;

pub use faucet::Faucet;
pub use token::{SageToken, TransferEvent};
