// Sage settlement contracts (Cairo 2.4 dialect; compiled by `cargo xtask contracts`).
mod token;
mod faucet;
mod interfaces;
mod admin;
mod crypto;
mod staking;
mod reputation;
mod jobs;
mod verifier;
mod privacy;
mod payments;
