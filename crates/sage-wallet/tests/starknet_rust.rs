//! The wallet's `StarkKey` plugs into `starknet-rust` accounts, and our OpenZeppelin address equals what
//! `starknet-rust`'s OpenZeppelin account factory would deploy to. No network is used.

use sage_wallet::{Derivation, Mnemonic, OZ_ACCOUNT_CLASS_HASH, Wallet};
use starknet_rust::accounts::{
    Account, AccountFactory, ExecutionEncoding, OpenZeppelinAccountFactory, SingleOwnerAccount,
};
use starknet_rust::providers::Url;
use starknet_rust::providers::jsonrpc::{HttpTransport, JsonRpcClient};
use starknet_types_core::felt::Felt;

fn provider() -> JsonRpcClient<HttpTransport> {
    // Never contacted: only local computations are exercised.
    JsonRpcClient::new(HttpTransport::new(Url::parse("http://127.0.0.1:9").expect("url")))
}

#[test]
fn oz_address_matches_starknet_rust_factory_and_accounts_accept_the_signer() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let w = Wallet::from_mnemonic(&Mnemonic::from_entropy_32(&[42; 32]), "", Derivation::Braavos, 0).expect("derive");
    let chain_id = Felt::from_hex_unchecked("0x534e5f5345504f4c4941"); // SN_SEPOLIA
    let factory = rt
        .block_on(OpenZeppelinAccountFactory::new(OZ_ACCOUNT_CLASS_HASH, chain_id, w.signer().clone(), provider()))
        .expect("factory");
    assert_eq!(factory.calldata(), vec![w.public_key()]);
    // Sage's salt is the public key.
    assert_eq!(factory.deploy_v3(w.public_key()).address(), w.address());

    let account =
        SingleOwnerAccount::new(provider(), w.signer().clone(), w.address(), chain_id, ExecutionEncoding::New);
    assert_eq!(account.address(), w.address());
    assert_eq!(account.chain_id(), chain_id);
}
