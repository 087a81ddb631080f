// Sage settlement contracts (Cairo 2.4 dialect; compiled by `cargo xtask contracts`).
mod token;
mod faucet;
