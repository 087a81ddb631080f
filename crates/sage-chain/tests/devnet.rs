//! sage-chain against a real starknet-devnet 0.10.1 with the real SageToken and Faucet contracts.
//!
//! Each test starts its own devnet on a free loopback port (about a second) and deploys the
//! committed artifacts. The devnet binary comes from `cargo xtask tools`; when it is missing the
//! tests fail with the install instruction rather than skipping.

use std::time::Duration;

use sage_chain::{
    Artifacts, ChainClient, ChainConfig, ChainError, DeployParams, Felt, Manifest, SAGE, SageAccount, StarkKey,
    account::chain_nonce,
    contracts::{Faucet, SageToken, TransferEvent},
    deploy_oz_account, deploy_sage,
    devnet::{Devnet, DevnetOptions},
    oz_account_address,
    testing::TestNet,
};

struct Net {
    devnet: Devnet,
    client: ChainClient,
    owner: SageAccount,
    alice: SageAccount,
    bob: SageAccount,
    manifest: Manifest,
    token: SageToken,
    faucet: Faucet,
    params: DeployParams,
}

async fn net() -> Net {
    let params = DeployParams {
        faucet_drip: 100 * SAGE,
        faucet_cooldown: 3600,
        faucet_funding: 250 * SAGE,
        ..DeployParams::default()
    };
    let TestNet { devnet, client, accounts, manifest, contracts } =
        TestNet::start(3, &params, 0).await.expect("devnet starts and Sage deploys (run `cargo xtask tools` first)");
    let [owner, alice, bob] = <[SageAccount; 3]>::try_from(accounts).expect("three accounts");
    Net { devnet, client, owner, alice, bob, manifest, token: contracts.token, faucet: contracts.faucet, params }
}

fn reason(err: &ChainError) -> &str {
    err.revert_reason().unwrap_or_else(|| panic!("expected a revert, got {err}"))
}

#[tokio::test]
async fn token_metadata_supply_and_owner() {
    let n = net().await;
    let (name, symbol, decimals) = n.token.metadata(&n.client).await.unwrap();
    assert_eq!((name.as_str(), symbol.as_str(), decimals), ("Sage", "SAGE", 18));
    assert_eq!(n.token.total_supply(&n.client).await.unwrap(), n.params.initial_supply);
    assert_eq!(n.token.owner(&n.client).await.unwrap(), n.owner.address());
    assert_eq!(
        n.token.balance_of(&n.client, n.owner.address()).await.unwrap(),
        n.params.initial_supply - n.params.faucet_funding
    );
    assert_eq!(n.faucet.available(&n.client).await.unwrap(), n.params.faucet_funding);
}

#[tokio::test]
async fn transfer_moves_balances_and_emits_a_decodable_event() {
    let n = net().await;
    let before = n.token.balance_of(&n.client, n.owner.address()).await.unwrap();
    let out = n.token.transfer(&n.owner, n.alice.address(), 42 * SAGE).await.unwrap();
    let events = n.token.transfers_in(&out);
    assert_eq!(events, [TransferEvent { from: n.owner.address(), to: n.alice.address(), value: 42 * SAGE }]);
    assert_eq!(n.token.balance_of(&n.client, n.alice.address()).await.unwrap(), 42 * SAGE);
    assert_eq!(n.token.balance_of(&n.client, n.owner.address()).await.unwrap(), before - 42 * SAGE);
    // The same event is found by an event query from the deployment block on.
    let scanned = n.client.events(n.token.address, "Transfer", n.manifest.deployed_at_block).await.unwrap();
    assert!(scanned.iter().any(|e| e.transaction_hash == out.tx_hash && e.keys[2] == n.alice.address()));
}

#[tokio::test]
async fn transfer_edge_cases_revert_with_reasons_and_change_nothing() {
    let n = net().await;
    n.token.transfer(&n.owner, n.alice.address(), 10).await.unwrap();
    let err = n.token.transfer(&n.alice, n.bob.address(), 11).await.unwrap_err();
    assert_eq!(reason(&err), "SAGE: insufficient balance");
    let err = n.token.transfer(&n.alice, Felt::ZERO, 1).await.unwrap_err();
    assert_eq!(reason(&err), "SAGE: transfer to zero");
    // A zero transfer is allowed and a self-transfer keeps the balance.
    n.token.transfer(&n.alice, n.bob.address(), 0).await.unwrap();
    n.token.transfer(&n.alice, n.alice.address(), 10).await.unwrap();
    assert_eq!(n.token.balance_of(&n.client, n.alice.address()).await.unwrap(), 10);
    assert_eq!(n.token.balance_of(&n.client, n.bob.address()).await.unwrap(), 0);
}

#[tokio::test]
async fn approve_and_transfer_from_respect_the_allowance() {
    let n = net().await;
    n.token.approve(&n.owner, n.alice.address(), 30).await.unwrap();
    assert_eq!(n.token.allowance(&n.client, n.owner.address(), n.alice.address()).await.unwrap(), 30);
    n.token.transfer_from(&n.alice, n.owner.address(), n.bob.address(), 20).await.unwrap();
    assert_eq!(n.token.allowance(&n.client, n.owner.address(), n.alice.address()).await.unwrap(), 10);
    assert_eq!(n.token.balance_of(&n.client, n.bob.address()).await.unwrap(), 20);
    let err = n.token.transfer_from(&n.alice, n.owner.address(), n.bob.address(), 11).await.unwrap_err();
    assert_eq!(reason(&err), "SAGE: insufficient allowance");
    // Bob was never approved.
    let err = n.token.transfer_from(&n.bob, n.owner.address(), n.bob.address(), 1).await.unwrap_err();
    assert_eq!(reason(&err), "SAGE: insufficient allowance");
    // Re-approving overwrites (ERC20 semantics), it does not add.
    n.token.approve(&n.owner, n.alice.address(), 5).await.unwrap();
    assert_eq!(n.token.allowance(&n.client, n.owner.address(), n.alice.address()).await.unwrap(), 5);
    let err = n.token.approve(&n.owner, Felt::ZERO, 5).await.unwrap_err();
    assert_eq!(reason(&err), "SAGE: approve to zero");
}

#[tokio::test]
async fn only_the_owner_mints() {
    let n = net().await;
    let supply = n.token.total_supply(&n.client).await.unwrap();
    let err = n.token.mint(&n.alice, n.alice.address(), 1).await.unwrap_err();
    assert_eq!(reason(&err), "SAGE: caller is not owner");
    assert_eq!(n.token.total_supply(&n.client).await.unwrap(), supply);
    n.token.mint(&n.owner, n.alice.address(), 7 * SAGE).await.unwrap();
    assert_eq!(n.token.total_supply(&n.client).await.unwrap(), supply + 7 * SAGE);
    assert_eq!(n.token.balance_of(&n.client, n.alice.address()).await.unwrap(), 7 * SAGE);
}

#[tokio::test]
async fn faucet_drips_enforces_cooldown_and_refills() {
    let n = net().await;
    n.faucet.drip(&n.alice).await.unwrap();
    assert_eq!(n.token.balance_of(&n.client, n.alice.address()).await.unwrap(), 100 * SAGE);

    let err = n.faucet.drip(&n.alice).await.unwrap_err();
    let ChainError::FaucetCooldown { account, next_drip_at } = err else { panic!("expected cooldown, got {err}") };
    assert_eq!(account, n.alice.address());
    assert!(next_drip_at > 0);
    assert!(err_message_is_readable(&ChainError::FaucetCooldown { account, next_drip_at }));
    // Bob has his own cooldown.
    n.faucet.drip(&n.bob).await.unwrap();

    // 250 funded, 200 taken: after the cooldown Alice finds the faucet short, and nothing moves.
    n.devnet.increase_time(3601).await.unwrap();
    let err = n.faucet.drip(&n.alice).await.unwrap_err();
    assert_eq!(reason(&err), "FAUCET: empty");
    assert_eq!(n.faucet.available(&n.client).await.unwrap(), 50 * SAGE);
    assert_eq!(n.token.balance_of(&n.client, n.alice.address()).await.unwrap(), 100 * SAGE);

    let err = n.faucet.refill(&n.alice, n.token, 10).await.unwrap_err();
    assert_eq!(reason(&err), "FAUCET: caller is not owner");
    n.faucet.refill(&n.owner, n.token, 1000 * SAGE).await.unwrap();
    assert_eq!(n.faucet.available(&n.client).await.unwrap(), 1050 * SAGE);
    n.faucet.drip(&n.alice).await.unwrap();
    assert_eq!(n.token.balance_of(&n.client, n.alice.address()).await.unwrap(), 200 * SAGE);

    let err = n.faucet.set_drip_amount(&n.alice, 1).await.unwrap_err();
    assert_eq!(reason(&err), "FAUCET: caller is not owner");
    n.faucet.set_drip_amount(&n.owner, 5 * SAGE).await.unwrap();
    n.faucet.set_cooldown(&n.owner, 0).await.unwrap();
    assert_eq!(
        (n.faucet.drip_amount(&n.client).await.unwrap(), n.faucet.cooldown(&n.client).await.unwrap()),
        (5 * SAGE, 0)
    );
    n.faucet.drip(&n.bob).await.unwrap();
    n.faucet.drip(&n.bob).await.unwrap();
    assert_eq!(n.token.balance_of(&n.client, n.bob.address()).await.unwrap(), 110 * SAGE);
}

fn err_message_is_readable(err: &ChainError) -> bool {
    err.to_string().contains("cooldown active") && err.to_string().contains("next drip allowed")
}

#[tokio::test]
async fn concurrent_submissions_get_distinct_nonces() {
    let n = net().await;
    let start = chain_nonce(&n.owner).await.unwrap();
    let sends = (0..8u128).map(|i| {
        let (owner, token, to) = (n.owner.clone(), n.token, n.alice.address());
        tokio::spawn(async move { token.transfer(&owner, to, i + 1).await })
    });
    for handle in sends.collect::<Vec<_>>() {
        handle.await.unwrap().expect("every concurrent transfer lands");
    }
    assert_eq!(chain_nonce(&n.owner).await.unwrap(), start + Felt::from(8u8));
    assert_eq!(n.token.balance_of(&n.client, n.alice.address()).await.unwrap(), (1..=8).sum::<u128>());
}

/// An operator's CLI sends from the account its daemon also uses: the daemon's cached nonce is
/// then stale. The node refuses that transaction without executing it, and the account sends it
/// again once with the chain's nonce, so the daemon's next transaction lands (it failed with
/// "nonce is invalid" before) and exactly once.
#[tokio::test]
async fn a_second_sender_on_the_same_account_does_not_fail_the_first() {
    let n = net().await;
    let key = sage_chain::devnet::predeployed_accounts(&n.devnet.rpc_url()).await.unwrap()[0].private_key;
    let cli = SageAccount::new(n.client.clone(), n.owner.address(), StarkKey::from_secret(key).unwrap());
    let (to, start) = (n.bob.address(), chain_nonce(&n.owner).await.unwrap());
    let before = n.token.balance_of(&n.client, to).await.unwrap();
    n.token.transfer(&n.owner, to, 1).await.unwrap(); // the daemon caches start + 1
    n.token.transfer(&cli, to, 2).await.unwrap(); // the CLI uses start + 1
    n.token.transfer(&n.owner, to, 4).await.expect("the stale cached nonce is replaced, not an error");
    assert_eq!(chain_nonce(&n.owner).await.unwrap(), start + Felt::from(3u8));
    assert_eq!(n.token.balance_of(&n.client, to).await.unwrap(), before + 7, "each transfer landed once");
}

#[tokio::test]
async fn fresh_oz_account_needs_fee_token_then_works() {
    let n = net().await;
    let key = StarkKey::from_random().unwrap();
    let salt = Felt::from(3u8);
    let err = deploy_oz_account(&n.client, key.clone(), salt).await.unwrap_err();
    assert!(matches!(err, ChainError::InsufficientFeeBalance { .. }), "{err}");
    let address = oz_account_address(key.public_key(), salt);
    assert_eq!(n.client.class_hash_at(address).await.unwrap(), None, "nothing was half-deployed");

    n.devnet.mint_strk(address, 10 * SAGE).await.unwrap();
    assert_eq!(n.client.fee_balance(address).await.unwrap(), 10 * SAGE);
    let user = deploy_oz_account(&n.client, key, salt).await.unwrap();
    assert_eq!(user.address(), address);
    n.faucet.drip(&user).await.unwrap();
    assert_eq!(n.token.balance_of(&n.client, address).await.unwrap(), 100 * SAGE);
    assert!(n.client.fee_balance(address).await.unwrap() < 10 * SAGE, "fees were paid in STRK");
}

#[tokio::test]
async fn manifest_roundtrips_and_detects_a_restarted_chain() {
    let n = net().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.json");
    n.manifest.save(&path).unwrap();
    let loaded = Manifest::load(&path).unwrap();
    loaded.verify_on_chain(&n.client, &path).await.unwrap();
    loaded.verify_artifacts(&Artifacts::embedded().unwrap(), &path).unwrap();

    // A new devnet has none of these contracts: the manifest is stale there.
    let other = Devnet::start(DevnetOptions::default()).await.unwrap();
    let other_client = ChainClient::connect(ChainConfig::new(other.rpc_url())).await.unwrap();
    let err = loaded.verify_on_chain(&other_client, &path).await.unwrap_err();
    assert!(matches!(err, ChainError::StaleManifest { .. }), "{err}");
}

#[tokio::test]
async fn wrong_chain_id_and_unreachable_endpoints_are_typed() {
    let n = net().await;
    let err = ChainClient::connect(ChainConfig::new(n.devnet.rpc_url()).with_chain_id("SN_MAIN")).await.unwrap_err();
    assert!(
        matches!(&err, ChainError::WrongChainId { expected, actual, .. } if expected == "SN_MAIN" && actual == "SN_SEPOLIA"),
        "{err}"
    );
    ChainClient::connect(ChainConfig::new(n.devnet.rpc_url()).with_chain_id("SN_SEPOLIA")).await.unwrap();

    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = ChainConfig::parse(&format!("http://127.0.0.1:{port}/rpc")).unwrap();
    config.tx_timeout = Duration::from_secs(1);
    let err = ChainClient::connect(config).await.unwrap_err();
    assert!(matches!(err, ChainError::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn receipts_time_out_for_unknown_transactions() {
    let n = net().await;
    let mut config = ChainConfig::new(n.devnet.rpc_url());
    config.tx_timeout = Duration::from_millis(300);
    let client = ChainClient::connect(config).await.unwrap();
    let err = client.wait_for_receipt(Felt::from(0xdead_u32)).await.unwrap_err();
    assert!(matches!(err, ChainError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn redeclaring_is_idempotent_and_redeploying_the_same_address_fails_cleanly() {
    let n = net().await;
    let artifacts = Artifacts::embedded().unwrap();
    let token_class = n.owner.declare(artifacts.get("SageToken").unwrap()).await.unwrap();
    assert_eq!(token_class, n.manifest.contract("SageToken").unwrap().class_hash);
    // Same class, salt and constructor as the live faucet: the UDC refuses, with a reason.
    let params = n.params.clone();
    let err = deploy_sage(&n.owner, &artifacts, &params).await.unwrap_err();
    assert!(matches!(err, ChainError::Reverted { .. }), "{err}");
}
