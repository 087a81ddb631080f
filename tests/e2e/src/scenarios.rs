//! The scenarios, in the order they run. 1–4 build the network (every later scenario stands on
//! them); 5–9 follow one job from escrow to the private claim; the failure paths come next, and
//! 10 (the cheater) runs last because it stops the honest workers. Each asserts its result
//! on-chain or in the commands' `--json` output, never only an exit code.

use std::{future::Future, pin::Pin, time::Duration};

use anyhow::{Context, Result, bail, ensure};
use sage_chain::{
    Felt, SAGE, StarkKey,
    contracts::{JobStatus, RecordedVerdict, roles},
};
use sage_coordinator::testing::{CoordinatorAddr, TestWorker, staked_account};
use sage_protocol::JobSpec;
use serde_json::Value;

use crate::{
    Pass,
    harness::{LOCK_SECS, Net, VALIDATORS, WORKERS, json, run, wall},
};

/// Scenarios the others depend on: they always run, and when one fails the rest are skipped.
pub const SETUP: [&str; 4] = ["1", "2", "3", "4"];

/// Shared results of earlier scenarios.
#[derive(Default)]
pub struct Facts {
    /// The job of scenario 5.
    pub job: Option<Felt>,
    /// Its escrowed payment.
    pub payment: u128,
    /// The worker that proved it.
    pub worker: Option<usize>,
    /// Its proof hash (as on-chain).
    pub proof_hash: Option<Felt>,
    /// What scenario 8 decrypted.
    pub balance: u128,
    /// The byzantine validator of F6, reused by F7.
    byzantine: Option<Byzantine>,
}

type Run = for<'a> fn(&'a mut Net) -> Pin<Box<dyn Future<Output = Result<Pass>> + 'a>>;

/// One scenario.
pub struct Scenario {
    pub id: &'static str,
    pub name: &'static str,
    pub limit_secs: u64,
    pub run: Run,
}

/// Every scenario, in running order (the table is printed in this order too).
pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            id: "1",
            name: "wallet created (mnemonic once, starkli keystore)",
            limit_secs: 120,
            run: |n| Box::pin(wallet(n)),
        },
        Scenario { id: "2", name: "faucet tokens received", limit_secs: 120, run: |n| Box::pin(faucet(n)) },
        Scenario {
            id: "3",
            name: "stake confirmed on-chain (tier, amount, lock)",
            limit_secs: 120,
            run: |n| Box::pin(stake(n)),
        },
        Scenario {
            id: "4",
            name: "worker registered and heartbeating to the coordinator",
            limit_secs: 300,
            run: |n| Box::pin(register(n)),
        },
        Scenario {
            id: "5",
            name: "job submitted and queued (escrow on-chain)",
            limit_secs: 120,
            run: |n| Box::pin(submit(n)),
        },
        Scenario {
            id: "6",
            name: "proof generated (matmul n=1024, >= 96 bits, verify-proof, output)",
            limit_secs: 400,
            run: |n| Box::pin(proof(n)),
        },
        Scenario {
            id: "7",
            name: "validators reach a QC (verdict on-chain)",
            limit_secs: 60,
            run: |n| Box::pin(qc(n)),
        },
        Scenario {
            id: "8",
            name: "encrypted payment credited (decrypts to the job's amount)",
            limit_secs: 300,
            run: |n| Box::pin(payment(n)),
        },
        Scenario {
            id: "9",
            name: "claim (public SAGE rose by exactly the claim)",
            limit_secs: 300,
            run: |n| Box::pin(claim(n)),
        },
        Scenario {
            id: "F1",
            name: "replayed payment and replayed assignment refused",
            limit_secs: 60,
            run: |n| Box::pin(replays(n)),
        },
        Scenario {
            id: "F2",
            name: "wrong keystore password: a clean error",
            limit_secs: 60,
            run: |n| Box::pin(wrong_password(n)),
        },
        Scenario {
            id: "F3",
            name: "worker SIGKILLed mid-job: reassigned, completed",
            limit_secs: 400,
            run: |n| Box::pin(worker_killed(n)),
        },
        Scenario {
            id: "F4",
            name: "coordinator SIGKILLed and restarted: all paid once",
            limit_secs: 400,
            run: |n| Box::pin(coordinator_restart(n)),
        },
        Scenario {
            id: "F5",
            name: "two of four validators down: no QC, refund",
            limit_secs: 300,
            run: |n| Box::pin(two_down(n)),
        },
        Scenario {
            id: "F6",
            name: "one validator votes the wrong verdict: honest QC stands",
            limit_secs: 200,
            run: |n| Box::pin(wrong_vote(n)),
        },
        Scenario {
            id: "F7",
            name: "equivocating validator: reported and slashed",
            limit_secs: 200,
            run: |n| Box::pin(equivocation(n)),
        },
        Scenario {
            id: "F8",
            name: "TEE evidence the production policy refuses: not assigned",
            limit_secs: 200,
            run: |n| Box::pin(production_policy(n)),
        },
        Scenario {
            id: "10",
            name: "invalid proof: worker slashed, client refunded",
            limit_secs: 300,
            run: |n| Box::pin(cheat(n)),
        },
    ]
}

fn felt(v: &Value, what: &str) -> Result<Felt> {
    let s = v.as_str().with_context(|| format!("{what} missing in {v}"))?;
    Felt::from_hex(s).with_context(|| format!("{what} {s:?} is not a felt"))
}

fn amount(v: &Value, what: &str) -> Result<u128> {
    v.as_str().with_context(|| format!("{what} missing"))?.parse().with_context(|| format!("{what} is not an amount"))
}

fn tx(what: &str, v: &Value) -> (String, String) {
    (what.to_owned(), v.as_str().unwrap_or("?").to_owned())
}

/// 1: `sage-worker create-wallet` for each worker. The mnemonic goes to a 0600 file and never to
/// stdout or stderr; the keystore decrypts with eth-keystore (what starkli uses) to the key whose
/// account the command printed.
async fn wallet(n: &mut Net) -> Result<Pass> {
    let mut detail = Vec::new();
    for i in 0..WORKERS {
        let out = n.create_worker_wallet(i).await?;
        let w = &n.workers[i];
        let phrase = std::fs::read_to_string(w.home.join("mnemonic.txt"))?;
        ensure!(phrase.split_whitespace().count() == 24, "the mnemonic file does not hold 24 words");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.home.join("mnemonic.txt"))?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "the mnemonic file has mode {mode:o}, not 600");
        let printed = std::fs::read_to_string(n.logs.join("commands.log"))?;
        ensure!(!printed.contains(phrase.trim()), "the mnemonic was printed");
        let secret = eth_keystore::decrypt_key(&w.keystore, &w.password)
            .map_err(|e| anyhow::anyhow!("eth-keystore cannot read the keystore: {e}"))?;
        let key = StarkKey::from_secret(Felt::from_bytes_be_slice(&secret))?;
        ensure!(felt(&out["public_key"], "public_key")? == key.public_key(), "keystore key ≠ printed public key");
        ensure!(
            sage_chain::oz_account_address(key.public_key(), key.public_key()) == w.address,
            "printed address is not the key's account"
        );
        detail.push(format!("{:#x}", w.address));
    }
    Ok(Pass { txs: vec![], detail: format!("wallets {}", detail.join(", ")) })
}

/// 2: `sage-worker request-tokens`: the SAGE balance rises by exactly one drip.
async fn faucet(n: &mut Net) -> Result<Pass> {
    let drip = sage_chain::DeployParams::default().faucet_drip;
    let mut txs = Vec::new();
    for i in 0..WORKERS {
        let address = n.workers[i].address;
        let before = n.c.token.balance_of(&n.client, address).await?;
        let out = n.worker_cmd(i, &["request-tokens"]).await?;
        ensure!(out["dripped"] == true, "no drip: {out}");
        let after = n.c.token.balance_of(&n.client, address).await?;
        ensure!(after == before + drip, "balance {before} → {after}, expected +{drip}");
        txs.push(tx(&format!("drip{i}"), &out["tx"]));
    }
    // A second request inside the cooldown says when the next drip is possible.
    let again = n.worker_cmd(0, &["request-tokens"]).await?;
    ensure!(again["dripped"] == false && again["next_drip_at"].is_u64(), "a second drip was not refused: {again}");
    Ok(Pass { txs, detail: format!("+{} SAGE each; a second request is told to wait", drip / SAGE) })
}

/// 3: `sage-worker stake --amount 1000 --gpu-tier T4`: amount, tier and lock on-chain.
async fn stake(n: &mut Net) -> Result<Pass> {
    let mut txs = Vec::new();
    for i in 0..WORKERS {
        let address = n.workers[i].address;
        // The T4 minimum (1,000 SAGE) is more than one drip: the operator buys the rest.
        n.c.token.transfer(&n.owner, address, 1_000 * SAGE).await?;
        let out = n.worker_cmd(i, &["stake", "--amount", "1000", "--gpu-tier", "T4"]).await?;
        let s = n.c.staking.get_stake(&n.client, address).await?;
        ensure!(s.amount == 1_000 * SAGE, "staked {} on-chain", s.amount);
        ensure!(s.tier == 0, "tier index {} on-chain, T4 is 0", s.tier);
        ensure!(s.locked_until + 120 >= wall() + LOCK_SECS, "locked only until {}", s.locked_until);
        txs.push(tx(&format!("stake{i}"), &out["tx"]));
    }
    Ok(Pass { txs, detail: "1,000 SAGE at T4, locked 30 days, each".into() })
}

/// 4: the coordinator and the validators start (validators via `sage-validator register`), then
/// `sage-worker register --tee none` and `sage-worker start`; the coordinator lists both workers
/// with fresh heartbeats and the chain shows them registered.
async fn register(n: &mut Net) -> Result<Pass> {
    n.start_coordinator().await?;
    let registered = n.start_validators().await?;
    let mut txs: Vec<_> = registered.iter().enumerate().map(|(i, v)| tx(&format!("validator{i}"), &v["tx"])).collect();
    for i in 0..WORKERS {
        let out = n.worker_cmd(i, &["register", "--tee", "none"]).await?;
        txs.push(tx(&format!("register{i}"), &out["tx"]));
        n.spawn_worker(i).await?;
        let info = n.c.staking.get_worker(&n.client, n.workers[i].address).await?;
        ensure!(info.registered, "worker {i} not registered on-chain");
    }
    let start = std::time::Instant::now();
    loop {
        let mut args = vec!["workers".to_owned()];
        args.extend(n.remote());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let list = json(&n.bins.coordinator, &args, &[], &n.logs).await?;
        let now_ms = wall() * 1000;
        let fresh = n
            .workers
            .iter()
            .filter(|w| {
                list.as_array().into_iter().flatten().any(|v| {
                    felt(&v["address"], "address").ok() == Some(w.address)
                        && v["last_seen_ms"].as_u64().is_some_and(|t| now_ms.saturating_sub(t) < 10_000)
                })
            })
            .count();
        if fresh == WORKERS {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the coordinator sees {fresh} of {WORKERS} workers heartbeating: {list}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (_, size, threshold) = n.c.verifier.validator_set(&n.client).await?;
    ensure!(size as usize == VALIDATORS && threshold == 3, "validator set {size}/{threshold}");
    Ok(Pass { txs, detail: format!("{WORKERS} workers heartbeating; {VALIDATORS} validators, threshold 3") })
}

/// 5: `sage-coordinator submit-job --size 1024`: the escrow is on-chain (client, spec hash,
/// payment at the quote) and the coordinator queues the job.
async fn submit(n: &mut Net) -> Result<Pass> {
    let out = n.submit_job(1024, 3600).await?;
    let job = felt(&out["job"], "job")?;
    let payment = amount(&out["payment"], "payment")?;
    let on_chain = n.c.jobs.get_job(&n.client, job).await?;
    ensure!(on_chain.client == n.client_account.address(), "escrow client {:#x}", on_chain.client);
    ensure!(on_chain.payment == payment && payment > 0, "escrowed {} ≠ printed {payment}", on_chain.payment);
    let view = n.until(job, 60, |s| !matches!(s, "submitted" | "escrowed")).await?;
    ensure!(felt(&view["spec_hash"], "spec_hash")? == on_chain.spec_hash, "the coordinator's spec hash ≠ the escrow's");
    ensure!(view["spec"]["n"] == 1024, "spec {}", view["spec"]);
    n.facts.job = Some(job);
    n.facts.payment = payment;
    Ok(Pass {
        txs: vec![tx("escrow", &out["escrow_tx"])],
        detail: format!("job {job:#x}, {} SAGE escrowed, {}", payment as f64 / SAGE as f64, view["state"]),
    })
}

/// 6: `sage-coordinator wait-job` follows it to the end; `verify-proof` downloads the envelope
/// and verifies it locally at production security.
async fn proof(n: &mut Net) -> Result<Pass> {
    let job = n.facts.job.context("no job from scenario 5")?;
    let mut args = vec!["wait-job".to_owned()];
    args.extend(n.remote());
    args.extend([format!("{job:#x}"), "--timeout".into(), "360".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&n.bins.coordinator, &args, &[], &n.logs).await?;
    let lines = out.lines();
    let states: Vec<&str> = lines.iter().filter_map(|l| l["transition"]["state"].as_str()).collect();
    ensure!(out.ok, "wait-job failed: {}", out.stderr.trim());
    ensure!(lines.last().is_some_and(|l| l["state"] == "paid"), "the job ended {:?}", lines.last());
    let mut args = vec!["verify-proof".to_owned()];
    args.extend(n.remote());
    args.extend(["--rpc-url".into(), n.rpc.clone(), "--manifest".into(), n.manifest.display().to_string()]);
    args.push(format!("{job:#x}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = json(&n.bins.coordinator, &args, &[], &n.logs).await?;
    ensure!(v["valid"] == true && v["verdict"] == "valid", "verify-proof: {v}");
    let bits = v["security_bits"].as_u64().unwrap_or(0);
    ensure!(bits >= 96, "{bits} bits of security");
    // The output, accepted by the CLI only if it matches the certified proof's commitment.
    let mut args = vec!["output".to_owned()];
    args.extend(n.remote());
    args.extend(["--rpc-url".into(), n.rpc.clone(), "--manifest".into(), n.manifest.display().to_string()]);
    args.push(format!("{job:#x}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = json(&n.bins.coordinator, &args, &[], &n.logs).await?;
    ensure!(o["verified"] == true && o["values"] == 1024 * 1024, "output: {o}");
    let view = n.job(job).await?;
    n.facts.worker = n.worker_index(felt(&view["worker"], "worker")?);
    n.facts.proof_hash = Some(felt(&view["proof_hash"], "proof_hash")?);
    let proving = view["history"].as_array().into_iter().flatten().find(|t| t["state"] == "result_submitted");
    Ok(Pass {
        txs: proving.map(|t| tx("submit_result", &t["tx"])).into_iter().collect(),
        detail: format!("{bits} bits, {} bytes, states {}", v["bytes"], states.join("→")),
    })
}

/// 7: the verdict is recorded on-chain as valid, for the proof the worker submitted.
async fn qc(n: &mut Net) -> Result<Pass> {
    let job = n.facts.job.context("no job")?;
    let verdict = n.c.verifier.verdict(&n.client, job).await?;
    ensure!(verdict == RecordedVerdict::Valid, "verdict {verdict:?}");
    let proof = n.c.verifier.verdict_proof(&n.client, job).await?;
    ensure!(Some(proof) == n.facts.proof_hash, "the QC is for proof {proof:#x}, not the submitted one");
    let view = n.job(job).await?;
    let certified = view["history"].as_array().into_iter().flatten().find(|t| t["state"] == "certified").cloned();
    let certified = certified.context("no certified transition")?;
    Ok(Pass { txs: vec![tx("qc", &certified["tx"])], detail: format!("valid, proof {proof:#x}") })
}

/// 8: the PrivacyRouter holds a ciphertext for the worker, and `sage-worker balance` decrypts it
/// to exactly the job's escrowed payment.
async fn payment(n: &mut Net) -> Result<Pass> {
    let i = n.facts.worker.context("the job's worker is not one of ours")?;
    let address = n.workers[i].address;
    let ct = n.c.privacy.pending_of(&n.client, address).await?;
    ensure!(ct.iter().any(|f| *f != Felt::ZERO), "no ciphertext on-chain for {address:#x}");
    let out = n.worker_cmd(i, &["balance"]).await?;
    let balance = amount(&out["base_units"], "base_units")?;
    ensure!(balance == n.facts.payment, "decrypted {balance}, the job paid {}", n.facts.payment);
    n.facts.balance = balance;
    let view = n.job(n.facts.job.context("no job")?).await?;
    let paid = view["history"].as_array().into_iter().flatten().find(|t| t["state"] == "paid").cloned();
    Ok(Pass {
        txs: paid.map(|t| tx("payment", &t["tx"])).into_iter().collect(),
        detail: format!("ciphertext ({:#x}, …) decrypts to {} SAGE", ct[0], out["sage"].as_str().unwrap_or("?")),
    })
}

/// 9: `sage-worker claim`: the public SAGE balance rises by exactly the claimed amount, which
/// is the whole decrypted balance.
async fn claim(n: &mut Net) -> Result<Pass> {
    let i = n.facts.worker.context("no worker")?;
    let address = n.workers[i].address;
    let before = n.c.token.balance_of(&n.client, address).await?;
    let out = n.worker_cmd(i, &["claim"]).await?;
    let claimed = amount(&out["base_units"], "base_units")?;
    let after = n.c.token.balance_of(&n.client, address).await?;
    ensure!(after - before == claimed, "balance rose by {}, claimed {claimed}", after - before);
    ensure!(claimed == n.facts.balance, "claimed {claimed} of {}", n.facts.balance);
    let left = n.worker_cmd(i, &["balance"]).await?;
    ensure!(left["base_units"] == "0", "after the claim the encrypted balance is {}", left["base_units"]);
    Ok(Pass { txs: vec![tx("claim", &out["tx"])], detail: format!("+{} SAGE public", claimed as f64 / SAGE as f64) })
}

/// F1: a second account holding the coordinator role (a leaked backup key, say) replays the
/// payment and the assignment of the paid job: both revert on-chain with the contracts' reasons,
/// and the job still has exactly one payment event.
async fn replays(n: &mut Net) -> Result<Pass> {
    let job = n.facts.job.context("no job")?;
    let worker = n.workers[n.facts.worker.context("no worker")?].address;
    let proof = n.facts.proof_hash.context("no proof")?;
    let key = StarkKey::from_random()?;
    let rogue = staked_account(&n.devnet, &n.client, &n.c, &n.owner, &key, 1_000 * SAGE, LOCK_SECS).await?;
    for admin in [n.c.jobs.admin(), n.c.payments.admin()] {
        admin.grant_role(&n.owner, roles::COORDINATOR, rogue.address()).await?;
    }
    let pay = sage_payments::pay(&rogue, n.c.payments, worker, job, proof).await;
    let pay_err = match pay {
        Ok(_) => bail!("a second payment for job {job:#x} was accepted"),
        Err(sage_payments::PaymentError::Chain(e)) => {
            e.revert_reason().map(str::to_owned).with_context(|| format!("not a contract refusal: {e}"))?
        }
        Err(e) => bail!("refused off-chain, not by the contract: {e}"),
    };
    let assign = n.c.jobs.assign(&rogue, job, worker, 60).await;
    let assign_err = match assign {
        Ok(_) => bail!("a replayed assignment of the paid job was accepted"),
        Err(e) => e.revert_reason().map(str::to_owned).with_context(|| format!("not a contract refusal: {e}"))?,
    };
    let count = payments_for(n, job).await?;
    ensure!(count == 1, "job {job:#x} has {count} payment events");
    Ok(Pass { txs: vec![], detail: format!("payment: {pay_err}; assignment: {assign_err}") })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

async fn payments_for(n: &Net, job: Felt) -> Result<usize> {
    Ok(n.c.payments.payments_for(&n.client, job).await?)
}

/// F2: a wrong keystore password is refused with an error naming it; nothing panics.
async fn wrong_password(n: &mut Net) -> Result<Pass> {
    let w = &n.workers[0];
    let (ks, m) = (w.keystore.to_str().context("path")?, n.manifest.to_str().context("path")?);
    let home = w.home.to_str().context("path")?;
    let env = [("SAGE_KEYSTORE_PASSWORD", "not the password"), ("HOME", home)];
    let out = run(
        &n.bins.worker,
        &["balance", "--keystore", ks, "--rpc-url", n.rpc.as_str(), "--manifest", m],
        &env,
        &n.logs,
    )
    .await?;
    ensure!(!out.ok, "a wrong password opened the keystore");
    let said = format!("{}{}", out.stdout, out.stderr).to_lowercase();
    ensure!(said.contains("password"), "the error does not name the password: {said}");
    ensure!(!said.contains("panicked"), "it panicked: {said}");
    Ok(Pass { txs: vec![], detail: first_line(said.trim()).to_owned() })
}

/// F3: the worker holding a 1024 job is SIGKILLed; once its lease lapses the coordinator
/// reassigns the job on-chain to the other worker, which completes it and is paid.
async fn worker_killed(n: &mut Net) -> Result<Pass> {
    let out = n.submit_job(1024, 3600).await?;
    let job = felt(&out["job"], "job")?;
    let view = n.until(job, 120, |s| matches!(s, "assigned" | "proving")).await?;
    let victim = n.worker_index(felt(&view["worker"], "worker")?).context("assigned to a stranger")?;
    n.workers[victim].proc.take().context("the worker is not running")?.kill().await?;
    let done = n.until(job, 300, |s| s == "paid" || s == "failed" || s == "expired").await?;
    ensure!(done["state"] == "paid", "the job ended {}", done["state"]);
    let history = done["history"].as_array().cloned().unwrap_or_default();
    let assigned: Vec<&Value> = history.iter().filter(|t| t["state"] == "assigned").collect();
    ensure!(assigned.len() >= 2, "assigned {} times", assigned.len());
    let last = felt(&done["worker"], "worker")?;
    ensure!(last != n.workers[victim].address, "the killed worker completed it");
    ensure!(payments_for(n, job).await? == 1, "not paid exactly once");
    n.spawn_worker(victim).await?;
    Ok(Pass {
        txs: vec![tx("assign", &assigned[0]["tx"]), tx("reassign", &assigned[assigned.len() - 1]["tx"])],
        detail: format!("worker {victim} killed; job {job:#x} reassigned and paid"),
    })
}

/// F4: two jobs in flight; the coordinator is SIGKILLed as soon as one is assigned and started
/// again from its store; both complete and each is paid exactly once (on-chain events).
async fn coordinator_restart(n: &mut Net) -> Result<Pass> {
    let a = felt(&n.submit_job(1024, 3600).await?["job"], "job")?;
    let b = felt(&n.submit_job(1024, 3600).await?["job"], "job")?;
    // Killed while the first job is being proved (about 10 s for n = 1024): nothing is settled.
    n.until(a, 120, |s| matches!(s, "assigned" | "proving")).await?;
    n.coordinator.take().context("no coordinator")?.kill().await?;
    n.spawn_coordinator().await?;
    let mut txs = Vec::new();
    for job in [a, b] {
        let done = n.until(job, 300, |s| matches!(s, "paid" | "failed" | "expired" | "rejected")).await?;
        ensure!(done["state"] == "paid", "job {job:#x} ended {}", done["state"]);
        let count = payments_for(n, job).await?;
        ensure!(count == 1, "job {job:#x} paid {count} times");
        if let Some(t) = done["history"].as_array().into_iter().flatten().find(|t| t["state"] == "paid") {
            txs.push(tx("payment", &t["tx"]));
        }
    }
    Ok(Pass { txs, detail: "killed mid-flight, restarted: 2 jobs, 2 payments".into() })
}

/// F5: two of four validators stop; a job is proved and submitted but gets no QC; after its
/// deadline plus the verdict grace the coordinator has it refunded on-chain. The two come back.
async fn two_down(n: &mut Net) -> Result<Pass> {
    for i in [2, 3] {
        n.validators[i].proc.take().context("validator not running")?.stop().await?;
    }
    let client = n.client_account.address();
    let before = n.c.token.balance_of(&n.client, client).await?;
    let out = n.submit_job(64, 40).await?;
    let job = felt(&out["job"], "job")?;
    n.until(job, 60, |s| matches!(s, "result_submitted" | "voting")).await?;
    let done = n.until(job, 150, |s| matches!(s, "expired" | "paid" | "rejected")).await?;
    ensure!(done["state"] == "expired", "the job ended {}", done["state"]);
    let start = std::time::Instant::now();
    while n.c.jobs.get_job(&n.client, job).await?.status != JobStatus::Refunded {
        ensure!(start.elapsed() < Duration::from_secs(60), "not refunded on-chain");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    ensure!(n.c.verifier.verdict(&n.client, job).await? == RecordedVerdict::None, "a QC landed with two validators");
    let after = n.c.token.balance_of(&n.client, client).await?;
    ensure!(after == before, "client SAGE {before} → {after}");
    let refund = done["history"].as_array().into_iter().flatten().filter_map(|t| t["tx"].as_str()).next_back();
    for i in [2, 3] {
        n.spawn_validator(i).await?;
    }
    Ok(Pass {
        txs: refund.map(|t| ("refund".to_owned(), t.to_owned())).into_iter().collect(),
        detail: "result submitted, no quorum, expired after deadline + grace, escrow back".into(),
    })
}

/// 10: the honest workers stop; a cheater (a staked, registered node the harness drives) takes
/// the next job, proves another computation and submits that proof. The validators certify it
/// invalid: its stake is cut by the invalid-proof slash rate and the client gets its escrow back.
async fn cheat(n: &mut Net) -> Result<Pass> {
    for w in &mut n.workers {
        if let Some(p) = w.proc.take() {
            p.stop().await?;
        }
    }
    let key = StarkKey::from_random()?;
    let cheater = staked_account(&n.devnet, &n.client, &n.c, &n.owner, &key, 1_000 * SAGE, LOCK_SECS).await?;
    let evidence = sage_staking::TeeEvidence {
        tee_type: sage_staking::TeeType::None,
        measurement_hash: Felt::from_bytes_be_slice(b"NO-TEE"),
        quote_hash: key.public_key(),
    };
    let elgamal = obelysk_elgamal::SecretKey::generate()?;
    sage_staking::register_worker(&cheater, n.c.staking, &elgamal, evidence, key.public_key()).await?;
    // Wait out the stopped workers' heartbeat window so that only the cheater can be chosen.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let addr = CoordinatorAddr { p2p_addr: n.coordinator_p2p.parse()?, public_key: n.coordinator_key() };
    let mut node = TestWorker::start(cheater.clone(), key, &addr).await;
    let stake_before = n.c.staking.get_stake(&n.client, cheater.address()).await?.amount;
    let client_before = n.c.token.balance_of(&n.client, n.client_account.address()).await?;
    let out = n.submit_job(64, 3600).await?;
    let job = felt(&out["job"], "job")?;
    let a = tokio::time::timeout(Duration::from_secs(120), node.assignments.recv())
        .await
        .context("the cheater was never assigned")?
        .context("the cheater's node stopped")?;
    ensure!(a.job_id == job, "assigned {:#x}, expected {job:#x}", a.job_id);
    let forged = sage_net::JobAssignment { request: JobSpec::Matmul { n: 64, seed: Felt::from(1u8) }, ..a.clone() };
    let (bad_proof, output) = node.announce(&forged).await;
    let submitted = n.c.jobs.submit_result(&cheater, job, output, bad_proof).await?;
    let start = std::time::Instant::now();
    while n.c.verifier.verdict(&n.client, job).await? == RecordedVerdict::None {
        ensure!(start.elapsed() < Duration::from_secs(180), "no verdict after 180 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(n.c.verifier.verdict(&n.client, job).await? == RecordedVerdict::Invalid, "the forged proof was certified");
    let (bps, _) = n.c.verifier.slash_rates(&n.client).await?;
    let stake_after = n.c.staking.get_stake(&n.client, cheater.address()).await?.amount;
    let expected = stake_before - stake_before * u128::from(bps) / 10_000;
    ensure!(stake_after == expected, "stake {stake_before} → {stake_after}, expected {expected} ({bps} bps)");
    let client_after = n.c.token.balance_of(&n.client, n.client_account.address()).await?;
    ensure!(client_after == client_before, "client SAGE {client_before} → {client_after}: not refunded");
    let view = n.until(job, 60, |s| s == "rejected").await?;
    let verdict = view["history"].as_array().into_iter().flatten().find(|t| t["state"] == "rejected").cloned();
    drop(node.alive);
    Ok(Pass {
        txs: [
            Some(("submit_result".to_owned(), format!("{:#x}", submitted.tx_hash))),
            verdict.map(|t| tx("qc", &t["tx"])),
        ]
        .into_iter()
        .flatten()
        .collect(),
        detail: format!(
            "stake {} → {} SAGE ({bps} bps), escrow back to the client",
            stake_before / SAGE,
            stake_after as f64 / SAGE as f64
        ),
    })
}

/// Validator 3's vote key, driven by the harness instead of `sage-validator`: it signs whatever
/// it is told (a wrong verdict, or both verdicts), as a byzantine member would.
struct Byzantine {
    node: sage_net::NodeHandle,
    key: StarkKey,
    domain: sage_consensus::VoteDomain,
}

impl Byzantine {
    /// Stops validator `i`'s process and joins the network with its key.
    async fn replace(n: &mut Net, i: usize) -> Result<Self> {
        if let Some(p) = n.validators[i].proc.take() {
            p.stop().await?;
        }
        let key = n.validators[i].key.clone();
        let config = sage_net::NetConfig {
            bootstrap: vec![n.coordinator_p2p.parse()?, n.validators[0].p2p.parse()?],
            ..sage_net::NetConfig::default()
        };
        let identity = sage_net::load_or_create_identity(&n.dir.join(format!("byzantine-{i}.p2p.key")))?;
        let (node, mut events) = sage_net::NodeHandle::start(config, identity, key.clone()).await?;
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        let domain = sage_consensus::VoteDomain { chain_id: n.client.chain_id(), verifier: n.c.verifier.address };
        Ok(Self { node, key, domain })
    }

    async fn vote(&self, job_id: Felt, proof_hash: Felt, verdict: sage_consensus::Verdict) -> Result<()> {
        let signature = sage_consensus::sign_vote(&self.key, &self.domain, job_id, proof_hash, verdict)?;
        let vote = sage_consensus::SignedVote {
            round: sage_consensus::RoundId { job_id, proof_hash },
            verdict,
            validator: self.key.public_key(),
            signature,
        };
        let message = self.node.sign(sage_net::Topic::Votes, serde_json::to_vec(&vote)?)?;
        self.node.publish_when_ready(&message, Duration::from_secs(30)).await?;
        Ok(())
    }
}

/// A job's on-chain proof hash, as soon as its result is submitted.
async fn submitted_proof(n: &Net, job: Felt) -> Result<Felt> {
    let start = std::time::Instant::now();
    loop {
        let v = n.job(job).await?;
        if let Ok(p) = felt(&v["proof_hash"], "proof_hash") {
            return Ok(p);
        }
        ensure!(start.elapsed() < Duration::from_secs(120), "no result for {job:#x}: {}", v["state"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn validator_account(n: &Net, i: usize) -> Felt {
    let k = n.validators[i].key.public_key();
    sage_chain::oz_account_address(k, k)
}

/// F6: validator 3 is replaced by a byzantine node that votes "invalid" on a valid proof. The
/// three honest validators still certify it valid and the worker is paid; a wrong vote alone is
/// not slashable (only two conflicting signatures are).
async fn wrong_vote(n: &mut Net) -> Result<Pass> {
    let byz = Byzantine::replace(n, 3).await?;
    let account = validator_account(n, 3);
    let stake_before = n.c.staking.get_stake(&n.client, account).await?.amount;
    let job = felt(&n.submit_job(64, 3600).await?["job"], "job")?;
    let proof = submitted_proof(n, job).await?;
    byz.vote(job, proof, sage_consensus::Verdict::Invalid).await?;
    let done = n.until(job, 120, |s| matches!(s, "paid" | "rejected" | "expired")).await?;
    ensure!(done["state"] == "paid", "the job ended {}", done["state"]);
    ensure!(n.c.verifier.verdict(&n.client, job).await? == RecordedVerdict::Valid, "the wrong vote won");
    let stake_after = n.c.staking.get_stake(&n.client, account).await?.amount;
    ensure!(stake_after == stake_before, "a single wrong vote was slashed ({stake_before} → {stake_after})");
    n.facts.byzantine = Some(byz);
    let certified = done["history"].as_array().into_iter().flatten().find(|t| t["state"] == "certified").cloned();
    Ok(Pass {
        txs: certified.map(|t| tx("qc", &t["tx"])).into_iter().collect(),
        detail: "validator 3 voted invalid; 3 honest votes certified valid; paid".into(),
    })
}

/// F7: the byzantine validator signs both verdicts for one round. The honest validators see the
/// two signatures, report them on-chain (`report_equivocation`), and its stake is cut by the
/// equivocation rate; the job is still certified and paid. Validator 3's process then returns.
async fn equivocation(n: &mut Net) -> Result<Pass> {
    let byz = match n.facts.byzantine.take() {
        Some(b) => b,
        None => Byzantine::replace(n, 3).await?,
    };
    let account = validator_account(n, 3);
    let stake_before = n.c.staking.get_stake(&n.client, account).await?.amount;
    let (_, bps) = n.c.verifier.slash_rates(&n.client).await?;
    let job = felt(&n.submit_job(64, 3600).await?["job"], "job")?;
    let proof = submitted_proof(n, job).await?;
    byz.vote(job, proof, sage_consensus::Verdict::Invalid).await?;
    byz.vote(job, proof, sage_consensus::Verdict::Valid).await?;
    let expected = stake_before - stake_before * u128::from(bps) / 10_000;
    let start = std::time::Instant::now();
    loop {
        let now = n.c.staking.get_stake(&n.client, account).await?.amount;
        if now == expected {
            break;
        }
        ensure!(now == stake_before, "stake {stake_before} → {now}, expected {expected} ({bps} bps)");
        ensure!(start.elapsed() < Duration::from_secs(90), "no equivocation slash after 90 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let done = n.until(job, 120, |s| matches!(s, "paid" | "rejected" | "expired")).await?;
    ensure!(done["state"] == "paid", "the job ended {}", done["state"]);
    drop(byz);
    n.spawn_validator(3).await?;
    let reports = n.client.events(n.c.verifier.address, "EquivocationSlashed", 0).await?;
    let report = reports.last().context("no EquivocationSlashed event")?;
    Ok(Pass {
        txs: vec![("report".to_owned(), format!("{:#x}", report.transaction_hash))],
        detail: format!(
            "validator 3 signed both verdicts: stake {} → {} SAGE ({bps} bps); job still paid",
            stake_before / SAGE,
            expected / SAGE
        ),
    })
}

/// F8: a second coordinator that applies the production TEE policy sees both workers heartbeat
/// (registered with `--tee none`) and never assigns them: the job stays queued and open on-chain.
/// The client then cancels it with `sage-coordinator cancel-job` and gets the escrow back.
async fn production_policy(n: &mut Net) -> Result<Pass> {
    let key = StarkKey::from_random()?;
    let account = staked_account(&n.devnet, &n.client, &n.c, &n.owner, &key, 1_000 * SAGE, LOCK_SECS).await?;
    for admin in [n.c.jobs.admin(), n.c.payments.admin()] {
        admin.grant_role(&n.owner, roles::COORDINATOR, account.address()).await?;
    }
    let dir = n.dir.join("coordinator-production");
    std::fs::create_dir_all(&dir)?;
    crate::harness::write_private(&dir.join("coordinator.key"), &format!("{:#x}\n", key.expose_secret()))?;
    let config = dir.join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[api]\nlisten = \"127.0.0.1:0\"\n[chain]\nrpc_url = \"{}\"\nmanifest = \"{}\"\n\
             account = \"{:#x}\"\nkey_file = \"coordinator.key\"\n[network]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\n\
             bootstrap = [\"{}\"]\n[jobs]\nmin_lead_secs = 20\nheartbeat_window_secs = 6\ntick_ms = 300\n\
             tee_policy = \"production\"\n",
            n.rpc,
            n.manifest.display(),
            account.address(),
            n.validators[0].p2p
        ),
    )?;
    let cfg = config.to_str().context("path")?;
    let created =
        json(&n.bins.coordinator, &["api-key", "create", "--name", "e2e", "--config", cfg], &[], &n.logs).await?;
    let key_file = dir.join("api.key");
    crate::harness::write_private(&key_file, created["key"].as_str().context("no key")?)?;
    let mut proc = crate::harness::Proc::spawn(
        &n.bins.coordinator,
        &["--json", "start", "--config", cfg],
        &[],
        &n.logs,
        "coordinator-production",
    )?;
    let started = proc.event("started", Duration::from_secs(60)).await?;
    let api = started["api"].as_str().context("api")?.to_owned();
    let remote = vec!["--url".to_owned(), api, "--api-key-file".into(), key_file.display().to_string()];
    let result = async {
        // Both workers heartbeat to it over the mesh…
        let start = std::time::Instant::now();
        loop {
            let mut args = vec!["workers".to_owned()];
            args.extend(remote.clone());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let list = json(&n.bins.coordinator, &args, &[], &n.logs).await?;
            let seen = n
                .workers
                .iter()
                .filter(|w| {
                    list.as_array().into_iter().flatten().any(|v| felt(&v["address"], "a").ok() == Some(w.address))
                })
                .count();
            if seen == WORKERS {
                break;
            }
            ensure!(start.elapsed() < Duration::from_secs(60), "the production coordinator sees {seen} workers");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // …and a job escrowed with it is never assigned to them.
        let client_before = n.c.token.balance_of(&n.client, n.client_account.address()).await?;
        let mut args = vec!["submit-job".to_owned(), "--size".into(), "64".into()];
        args.extend(remote.clone());
        args.extend(n.client_chain().into_iter().skip(4));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = json(&n.bins.coordinator, &args, &[], &n.logs).await?;
        let job = felt(&out["job"], "job")?;
        tokio::time::sleep(Duration::from_secs(15)).await;
        let mut args = vec!["job".to_owned()];
        args.extend(remote.clone());
        args.push(format!("{job:#x}"));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let view = json(&n.bins.coordinator, &a, &[], &n.logs).await?;
        ensure!(view["state"] == "queued", "the job is {} under the production policy", view["state"]);
        ensure!(n.c.jobs.get_job(&n.client, job).await?.status == JobStatus::Open, "assigned on-chain");
        let mut args = vec!["cancel-job".to_owned()];
        args.extend(remote.clone());
        args.extend(n.client_chain().into_iter().skip(4));
        args.push(format!("{job:#x}"));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let cancelled = json(&n.bins.coordinator, &a, &[], &n.logs).await?;
        let client_after = n.c.token.balance_of(&n.client, n.client_account.address()).await?;
        ensure!(client_after == client_before, "client SAGE {client_before} → {client_after} after the cancel");
        anyhow::Ok(Pass {
            txs: vec![tx("escrow", &out["escrow_tx"]), tx("cancel", &cancelled["refund_tx"])],
            detail: "2 workers heartbeating, TEE none: never assigned; cancelled and refunded".into(),
        })
    }
    .await;
    proc.stop().await?;
    result
}
