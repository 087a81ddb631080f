//! `cargo xtask bench contracts`: execution cost of the settlement entry points on a local
//! starknet-devnet 0.10.1, read from receipts and traces.
//!
//! JSON-RPC 0.10 reports L2 gas, not Cairo steps and builtins: the table gives the whole
//! transaction's L2 gas (account validation and fee transfer included), the L2 gas of the contract
//! call alone (from the trace), its step equivalent (L2 gas / 100, Starknet's `step_gas_cost`;
//! builtins are included at their own gas prices) and the fee actually charged (STRK).

use obelysk_elgamal::{BabyStepTable, SecretKey};
use sage_chain::{
    Artifacts, ChainClient, ChainConfig, DeployParams, Felt, SAGE, TxOutcome,
    contracts::{Deployment, GpuTier, JobManager},
    deploy_sage,
    devnet::{Devnet, DevnetOptions, predeployed_signers},
};
use sage_consensus::{StarkKey, Verdict, VoteDomain, sign_vote};
use sage_staking::{TeeEvidence, register_worker};
use starknet_rust::{
    core::types::{ExecuteInvocation, TransactionReceipt, TransactionTrace},
    providers::Provider,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Row {
    what: String,
    tx_l2_gas: u64,
    tx_l1_data_gas: u64,
    call_l2_gas: u64,
    fee_strk: f64,
}

/// Receipt and trace of `outcome`; `call` picks the multicall entry to attribute.
async fn measure(client: &ChainClient, what: &str, outcome: &TxOutcome, call: usize) -> Res<Row> {
    let TransactionReceipt::Invoke(receipt) = &outcome.receipt.receipt else { return Err("not an invoke".into()) };
    let trace = client.provider().trace_transaction(outcome.tx_hash).await?;
    let TransactionTrace::Invoke(trace) = trace else { return Err("not an invoke trace".into()) };
    let ExecuteInvocation::Success(exec) = trace.execute_invocation else { return Err("reverted".into()) };
    let c = exec.calls.get(call).ok_or("no such call")?;
    let call_l2_gas = c.execution_resources.l2_gas;
    let fee: u128 = receipt.actual_fee.amount.try_into()?;
    Ok(Row {
        what: what.into(),
        tx_l2_gas: receipt.execution_resources.l2_gas,
        tx_l1_data_gas: receipt.execution_resources.l1_data_gas,
        call_l2_gas,
        fee_strk: fee as f64 / 1e18,
    })
}

fn wall() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[tokio::main]
async fn main() -> Res<()> {
    // Three actors plus one staked, registered validator account per member of the largest set.
    const MAX_SET: usize = 64;
    let devnet = Devnet::start(DevnetOptions { accounts: 3 + MAX_SET as u8, ..DevnetOptions::default() }).await?;
    let client = ChainClient::connect(ChainConfig::new(devnet.rpc_url())).await?;
    let accounts = predeployed_signers(&client).await?;
    let account = |i: usize| accounts[i].clone();
    let (owner, worker, buyer) = (account(0), account(1), account(2));
    let manifest = deploy_sage(&owner, &Artifacts::embedded()?, &DeployParams::default()).await?;
    let Deployment { token, staking, jobs, verifier, payments, privacy, .. } = Deployment::from_manifest(&manifest)?;
    for a in [&worker, &buyer] {
        token.transfer(&owner, a.address(), 1_000_000 * SAGE).await?;
    }
    let mut rows = Vec::new();

    let out = staking.stake(&worker, token, 1_000 * SAGE, GpuTier::T4, 10_000_000).await?;
    rows.push(measure(&client, "stake", &out, 1).await?);
    let sk = SecretKey::from_seed(&[9; 32]);
    let tee =
        TeeEvidence { tee_type: sage_staking::TeeType::Tdx, measurement_hash: Felt::TWO, quote_hash: Felt::THREE };
    let out = register_worker(&worker, staking, &sk, tee, Felt::ONE).await?;
    rows.push(measure(&client, "register_worker (Schnorr)", &out, 0).await?);

    // Validators: funded in one multicall, each stakes the validator minimum and registers its key.
    let keys: Vec<_> =
        (0..MAX_SET).map(|i| StarkKey::from_secret(Felt::from(10_000 + i as u64))).collect::<Result<_, _>>()?;
    let validators = &accounts[3..3 + MAX_SET];
    let (_, _, validator_min, _, _) = staking.config(&client).await?;
    let funding =
        validators.iter().map(|v| token.transfer_call(v.address(), validator_min)).collect::<Result<_, _>>()?;
    owner.execute(funding).await?;
    for (v, k) in validators.iter().zip(&keys) {
        v.execute(vec![
            token.approve_call(staking.address, validator_min)?,
            staking.stake_call(validator_min, GpuTier::T4, 10_000_000)?,
            staking.register_validator_call(k.public_key())?,
        ])
        .await?;
    }

    let mut job_no = 0u64;
    for n in [4usize, 16, MAX_SET] {
        let members: Vec<_> = keys.iter().zip(validators).take(n).map(|(k, v)| (k.public_key(), v.address())).collect();
        verifier.set_validators(&owner, &members).await?;
        let (version, _, threshold) = verifier.validator_set(&client).await?;
        job_no += 1;
        let (client_job_id, proof) = (Felt::from(job_no), Felt::from(0x5000 + job_no));
        let job = JobManager::job_id(buyer.address(), client_job_id);
        let out = jobs.create_job(&buyer, token, client_job_id, Felt::ONE, 100 * SAGE, wall() + 3_600).await?;
        if n == 4 {
            rows.push(measure(&client, "create_job", &out, 1).await?);
        }
        jobs.assign(&owner, job, worker.address(), 600).await?;
        jobs.submit_result(&worker, job, Felt::ONE, proof).await?;
        let domain = VoteDomain { chain_id: client.chain_id(), verifier: verifier.address };
        let sigs: Vec<_> = (0..threshold)
            .map(|i| sign_vote(&keys[i as usize], &domain, job, proof, Verdict::Valid).map(|s| (i, s.r, s.s)))
            .collect::<Result<_, _>>()?;
        let out = verifier.submit_qc(&owner, job, proof, true, version, &sigs).await?;
        rows.push(measure(&client, &format!("submit_qc n={n} ({threshold} sigs)"), &out, 0).await?);
        if n == 4 {
            let (_, out) = sage_payments::pay(&owner, payments, worker.address(), job, proof).await?;
            rows.push(measure(&client, "submit_payment_with_proof", &out, 0).await?);
            let out = sage_payments::rollover(&worker, privacy).await?.ok_or("the payment should be pending")?;
            rows.push(measure(&client, "rollover (pending into available)", &out, 0).await?);
            let table = BabyStepTable::build(16)?;
            let (_, out) = sage_payments::claim(&worker, privacy, &sk, &table, 1 << 32).await?;
            rows.push(measure(&client, "claim (Chaum-Pedersen)", &out, 0).await?);
        }
    }

    println!("| entry point | tx L2 gas | tx L1 data gas | call L2 gas | call ≈ steps (gas / 100) | fee (STRK) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.6} |",
            r.what,
            r.tx_l2_gas,
            r.tx_l1_data_gas,
            r.call_l2_gas,
            r.call_l2_gas / 100,
            r.fee_strk
        );
    }
    println!(
        "\nstarknet-devnet 0.10.1 (Starknet 0.14), JSON-RPC 0.10: receipts carry gas, not steps and builtins.\n\
         tx = the whole transaction (account validation, calldata, fee transfer); call = the contract call alone\n\
         (trace). Steps ~ gas / 100 (blockifier step_gas_cost = 100; an ec_op costs 4085 gas, an ECDSA check\n\
         10561, a Poseidon 491: syscalls and storage dominate).\n\
         Anchor: Tongo reports ~120K Cairo steps per private transfer."
    );
    Ok(())
}
