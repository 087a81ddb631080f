//! `deploy_sage` deploys and wires the settlement contracts, and the manifest lists them.

use sage_chain::{
    Artifacts, ChainClient, ChainConfig, DeployParams, Felt, SageAccount, SettlementParams,
    contracts::{
        Admin, AdminEvent, Deployment, GpuTier, PaymentRouter, PrivacyRouter, ProofVerifier, StakingManager, events_in,
        roles,
    },
    deploy::SETTLEMENT_CONTRACTS,
    deploy_sage,
    devnet::{Devnet, DevnetOptions, predeployed_signers},
    testing::TestNet,
};

async fn owner(devnet: &Devnet) -> (ChainClient, SageAccount) {
    let client = ChainClient::connect(ChainConfig::new(devnet.rpc_url())).await.expect("connect");
    let account = predeployed_signers(&client).await.expect("accounts").remove(0);
    (client, account)
}

#[tokio::test]
async fn deploy_wires_every_settlement_contract_and_the_manifest_lists_them() {
    let devnet = Devnet::start(DevnetOptions::default()).await.expect("devnet starts (run `cargo xtask tools` first)");
    let (client, owner) = owner(&devnet).await;
    let coordinator = Felt::from(0xc0_u32);
    let params = DeployParams {
        settlement: Some(SettlementParams { coordinator: Some(coordinator), ..SettlementParams::default() }),
        ..DeployParams::default()
    };
    let artifacts = Artifacts::embedded().unwrap();
    let manifest = deploy_sage(&owner, &artifacts, &params).await.unwrap();
    for name in SETTLEMENT_CONTRACTS {
        let c = manifest.contract(name).unwrap();
        assert_eq!(c.class_hash, artifacts.get(name).unwrap().class_hash, "{name}");
        assert_eq!(Admin::at(c.address).owner(&client).await.unwrap(), owner.address(), "{name}");
        assert!(!Admin::at(c.address).is_paused(&client).await.unwrap());
    }
    let dir = std::env::temp_dir().join(format!("sage-settlement-{}", std::process::id()));
    let path = dir.join("local.json");
    manifest.save(&path).unwrap();
    manifest.verify_on_chain(&client, &path).await.unwrap();
    std::fs::remove_dir_all(dir).ok();

    let at = |name: &str| manifest.contract(name).unwrap().address;
    let (staking, reputation, jobs) = (at("StakingManager"), at("ReputationManager"), at("JobManager"));
    let (verifier, payments, privacy) = (at("ProofVerifier"), at("PaymentRouter"), at("PrivacyRouter"));
    let wired = [
        (reputation, roles::WRITER, staking),
        (reputation, roles::WRITER, jobs),
        (reputation, roles::WRITER, verifier),
        (staking, roles::SLASHER, verifier),
        (jobs, roles::VERIFIER, verifier),
        (jobs, roles::COORDINATOR, coordinator),
        (payments, roles::COORDINATOR, coordinator),
        (privacy, roles::ROUTER, payments),
    ];
    for (contract, role, holder) in wired {
        assert!(Admin::at(contract).has_role(&client, role, holder).await.unwrap(), "{role:#x} → {holder:#x}");
    }
    // Nothing else holds these roles: not the deployer, not each other.
    assert!(!Admin::at(staking).has_role(&client, roles::SLASHER, owner.address()).await.unwrap());
    assert!(!Admin::at(jobs).has_role(&client, roles::COORDINATOR, owner.address()).await.unwrap());
    assert!(!Admin::at(privacy).has_role(&client, roles::ROUTER, coordinator).await.unwrap());

    let s = SettlementParams::default();
    let staking = StakingManager::at(staking);
    for (tier, min) in GpuTier::ALL.into_iter().zip(s.staking.min_stakes) {
        assert_eq!(staking.min_stake(&client, tier).await.unwrap(), min);
    }
    let (token, treasury, validator_min, cooldown, reporter_bps) = staking.config(&client).await.unwrap();
    assert_eq!(token, manifest.contract("SageToken").unwrap().address);
    assert_eq!(treasury, owner.address());
    assert_eq!(
        (validator_min, cooldown, reporter_bps),
        (s.staking.validator_min_stake, s.staking.unstake_cooldown, 1_000)
    );
    assert_eq!(ProofVerifier::at(verifier).validator_set(&client).await.unwrap(), (0, 0, 1));
    assert_eq!(ProofVerifier::at(verifier).slash_rates(&client).await.unwrap(), (1_000, 5_000));
    assert_eq!(PrivacyRouter::at(privacy).unit(&client).await.unwrap(), s.privacy_unit);
    assert!(!PaymentRouter::at(payments).is_paid(&client, Felt::ONE).await.unwrap());
}

#[tokio::test]
async fn settlement_can_be_left_out_and_every_contract_pauses() {
    let devnet = Devnet::start(DevnetOptions::default()).await.expect("devnet starts");
    let (client, owner) = owner(&devnet).await;
    let artifacts = Artifacts::embedded().unwrap();
    let bare =
        deploy_sage(&owner, &artifacts, &DeployParams { settlement: None, ..DeployParams::default() }).await.unwrap();
    assert_eq!(bare.contracts.keys().collect::<Vec<_>>(), ["Faucet", "SageToken"]);

    let full = deploy_sage(&owner, &artifacts, &DeployParams::default()).await.unwrap();
    let other = { predeployed_signers(&client).await.unwrap().remove(1) };
    for name in SETTLEMENT_CONTRACTS {
        let admin = Admin::at(full.contract(name).unwrap().address);
        let err = admin.pause(&other).await.unwrap_err();
        assert!(err.revert_reason().unwrap().ends_with("caller is not owner"), "{name}: {err}");
        let err = admin.grant_role(&other, roles::WRITER, other.address()).await.unwrap_err();
        assert!(err.revert_reason().unwrap().ends_with("caller is not owner"), "{name}: {err}");
        let out = admin.pause(&owner).await.unwrap();
        assert_eq!(events_in(&out, admin.address, AdminEvent::decode), [AdminEvent::PauseChanged { paused: true }]);
        assert!(admin.is_paused(&client).await.unwrap(), "{name}");
    }
    // Paused contracts refuse their state changes, but never an exit: a refund is judged on its
    // own terms (here: there is no such job), not refused for the pause.
    let Deployment { jobs, token, payments, privacy, verifier, .. } = Deployment::from_manifest(&full).unwrap();
    let err = jobs.create_job(&owner, token, Felt::ONE, Felt::ONE, 1, u64::MAX / 2).await.unwrap_err();
    assert_eq!(err.revert_reason(), Some("JOB: paused"));
    let err = jobs.refund_expired(&other, Felt::ONE).await.unwrap_err();
    assert_ne!(err.revert_reason(), Some("JOB: paused"));
    let err = payments
        .submit_payment_with_proof(&owner, other.address(), Felt::ONE, Felt::ONE, Felt::ONE, Felt::ONE)
        .await
        .unwrap_err();
    assert_eq!(err.revert_reason(), Some("PAY: paused"));
    let err = privacy.claim(&other, 1, [Felt::ZERO; 5]).await.unwrap_err();
    assert_eq!(err.revert_reason(), Some("PRIV: nothing to claim"), "a claim is an exit: judged, not paused");
    let err = verifier.submit_qc(&other, Felt::ONE, Felt::ONE, true, 0, &[]).await.unwrap_err();
    assert_eq!(err.revert_reason(), Some("PV: paused"));
    let admin = Admin::at(full.contract("StakingManager").unwrap().address);
    admin.unpause(&owner).await.unwrap();
    assert!(!admin.is_paused(&client).await.unwrap());
}

/// Ownership moves in two steps on every settlement contract, and each attempt to shortcut it is
/// refused: a stranger proposing, a stranger accepting, the old owner acting after the hand-over.
#[tokio::test]
async fn ownership_moves_in_two_steps_and_only_to_the_proposed_account() {
    let net = TestNet::start(3, &DeployParams::default(), 0).await.expect("devnet starts and Sage deploys");
    let client = &net.client;
    let [owner, next, stranger] = &net.accounts[..] else { panic!("three accounts") };
    for name in SETTLEMENT_CONTRACTS {
        let admin = Admin::at(net.manifest.contract(name).unwrap().address);
        let reason = |err: sage_chain::ChainError| err.revert_reason().unwrap_or_default().to_owned();
        // Only the owner proposes; nobody can accept before a proposal.
        let err = admin.transfer_ownership(stranger, stranger.address()).await.unwrap_err();
        assert!(reason(err).ends_with("caller is not owner"), "{name}");
        let err = admin.accept_ownership(stranger).await.unwrap_err();
        assert!(reason(err).ends_with("not pending owner"), "{name}");
        let err = admin.transfer_ownership(owner, Felt::ZERO).await.unwrap_err();
        assert!(reason(err).ends_with("owner is zero"), "{name}");

        let out = admin.transfer_ownership(owner, next.address()).await.unwrap();
        assert_eq!(
            events_in(&out, admin.address, AdminEvent::decode),
            [AdminEvent::OwnershipTransferStarted { previous_owner: owner.address(), new_owner: next.address() }]
        );
        // Proposed, not yet moved: the owner still rules and a stranger cannot take the proposal.
        assert_eq!(admin.owner(client).await.unwrap(), owner.address(), "{name}");
        assert_eq!(admin.pending_owner(client).await.unwrap(), next.address(), "{name}");
        let err = admin.accept_ownership(stranger).await.unwrap_err();
        assert!(reason(err).ends_with("not pending owner"), "{name}");

        let out = admin.accept_ownership(next).await.unwrap();
        assert_eq!(
            events_in(&out, admin.address, AdminEvent::decode),
            [AdminEvent::OwnershipTransferred { previous_owner: owner.address(), new_owner: next.address() }]
        );
        assert_eq!(admin.owner(client).await.unwrap(), next.address(), "{name}");
        assert_eq!(admin.pending_owner(client).await.unwrap(), Felt::ZERO, "{name}");
        // The old owner is an outsider now; the proposal cannot be replayed.
        let err = admin.pause(owner).await.unwrap_err();
        assert!(reason(err).ends_with("caller is not owner"), "{name}");
        let err = admin.accept_ownership(next).await.unwrap_err();
        assert!(reason(err).ends_with("not pending owner"), "{name}");
        admin.pause(next).await.unwrap();
        assert!(admin.is_paused(client).await.unwrap(), "{name}");
    }
}

/// Issue 14 item 8: after the setup window an owner cannot hand itself (or anyone) a role at once.
/// The attack: the owner grants itself SLASHER and slashes in the same breath. With the default
/// deployment (setup closed in its last transaction) the grant is only scheduled, the role is not
/// held, carrying it out early is refused, a cancelled grant stays dead, and the wiring (payout,
/// reputation) can no longer be repointed. Eight days later anyone may carry the grant out, in
/// the open. A deployment that keeps its setup open grants at once.
#[tokio::test]
async fn after_setup_a_role_moves_only_behind_the_timelock_and_the_wiring_is_fixed() {
    use sage_chain::contracts::ROLE_GRANT_DELAY;
    let net = TestNet::start(3, &DeployParams::default(), 0).await.expect("devnet starts and Sage deploys");
    let client = &net.client;
    let [owner, stranger, _] = &net.accounts[..] else { panic!("three accounts") };
    let reason = |err: sage_chain::ChainError| err.revert_reason().unwrap_or_default().to_owned();
    for name in SETTLEMENT_CONTRACTS {
        let admin = Admin::at(net.manifest.contract(name).unwrap().address);
        assert!(admin.is_setup_closed(client).await.unwrap(), "{name}: the default deployment closes its setup");
        let err = admin.close_setup(owner).await.unwrap_err();
        assert!(reason(err).ends_with("setup closed"), "{name}: closing twice");
    }
    let staking = Admin::at(net.contracts.staking.address);
    let out = staking.grant_role(owner, roles::SLASHER, owner.address()).await.unwrap();
    let scheduled = events_in(&out, staking.address, AdminEvent::decode);
    let [AdminEvent::RoleGrantScheduled { role, account, ready_at }] = scheduled[..] else {
        panic!("a grant after setup is only scheduled: {scheduled:?}")
    };
    assert_eq!((role, account), (roles::SLASHER, owner.address()));
    assert_eq!(staking.role_grant_ready_at(client, roles::SLASHER, owner.address()).await.unwrap(), ready_at);
    assert!(!staking.has_role(client, roles::SLASHER, owner.address()).await.unwrap(), "not held yet");
    // The slash the owner wanted is refused: it does not hold the role.
    let err = net
        .contracts
        .staking
        .slash(owner, stranger.address(), 5_000, Felt::from(1u8), owner.address())
        .await
        .unwrap_err();
    assert_eq!(reason(err), "STAKE: not slasher");
    let err = staking.execute_role_grant(stranger, roles::SLASHER, owner.address()).await.unwrap_err();
    assert_eq!(reason(err), "STAKE: grant not ready");
    // A grant never scheduled cannot be executed either.
    let err = staking.execute_role_grant(stranger, roles::BONDER, stranger.address()).await.unwrap_err();
    assert_eq!(reason(err), "STAKE: grant not ready");
    // Setup-only wiring is fixed.
    let err = owner.execute(vec![net.contracts.jobs.set_payout_call(owner.address()).unwrap()]).await.unwrap_err();
    assert_eq!(reason(err), "JOB: setup closed");
    let err =
        owner.execute(vec![net.contracts.staking.set_reputation_call(owner.address()).unwrap()]).await.unwrap_err();
    assert_eq!(reason(err), "STAKE: setup closed");
    // A second grant, cancelled by the owner, stays dead after the delay.
    staking.grant_role(owner, roles::BONDER, owner.address()).await.unwrap();
    let err = staking.cancel_role_grant(stranger, roles::BONDER, owner.address()).await.unwrap_err();
    assert!(reason(err).ends_with("caller is not owner"));
    staking.cancel_role_grant(owner, roles::BONDER, owner.address()).await.unwrap();
    assert_eq!(staking.role_grant_ready_at(client, roles::BONDER, owner.address()).await.unwrap(), 0);

    net.devnet.increase_time(ROLE_GRANT_DELAY + 1).await.unwrap();
    let err = staking.execute_role_grant(stranger, roles::BONDER, owner.address()).await.unwrap_err();
    assert_eq!(reason(err), "STAKE: grant not ready", "a cancelled grant");
    // Anyone carries out the scheduled grant once its delay has passed, and only once.
    let out = staking.execute_role_grant(stranger, roles::SLASHER, owner.address()).await.unwrap();
    assert_eq!(
        events_in(&out, staking.address, AdminEvent::decode),
        [AdminEvent::RoleChanged { role: roles::SLASHER, account: owner.address(), granted: true }]
    );
    assert!(staking.has_role(client, roles::SLASHER, owner.address()).await.unwrap());
    let err = staking.execute_role_grant(stranger, roles::SLASHER, owner.address()).await.unwrap_err();
    assert_eq!(reason(err), "STAKE: grant not ready", "carried out once");
    // Revoking is immediate.
    staking.revoke_role(owner, roles::SLASHER, owner.address()).await.unwrap();
    assert!(!staking.has_role(client, roles::SLASHER, owner.address()).await.unwrap());

    // A deployment that keeps its setup open grants at once (and can close it later).
    let mut params = DeployParams::default();
    params.settlement.as_mut().unwrap().close_setup = false;
    let open = deploy_sage(owner, &Artifacts::embedded().unwrap(), &DeployParams { salt: Felt::from(7u8), ..params })
        .await
        .unwrap();
    let jobs = Admin::at(open.contract("JobManager").unwrap().address);
    assert!(!jobs.is_setup_closed(client).await.unwrap());
    jobs.grant_role(owner, roles::COORDINATOR, stranger.address()).await.unwrap();
    assert!(jobs.has_role(client, roles::COORDINATOR, stranger.address()).await.unwrap());
    let out = jobs.close_setup(owner).await.unwrap();
    assert_eq!(events_in(&out, jobs.address, AdminEvent::decode), [AdminEvent::SetupClosed]);
}
