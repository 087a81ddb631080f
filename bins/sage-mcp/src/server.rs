//! The MCP tools. Every result is JSON (structured content); every failure is a tool error whose
//! body is `{ "code": <stable code>, "message": <a sentence a model can act on> }`. Nothing that
//! moves value happens before the spend governor allowed it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine;
use rmcp::{
    RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ProgressNotificationParam, ProtocolVersion, ServerCapabilities, ServerConfig},
    schemars,
    service::{ElicitationError, RequestContext},
    tool, tool_handler, tool_router,
};
use sage_sdk::{Client, Felt, JobSpec, Outcome, SdkError, SubmitOptions};
use serde::Deserialize;
use serde_json::{Value, json};

use sage_chain::format_sage as sage;

use crate::governor::{self, Caps, Decision, Ledger, Refusal, Spend};

/// What every session shares: the SDK client (with the escrowing account), the caps and the
/// ledger. Spending calls are serialized, so two concurrent calls cannot both pass a cap.
#[derive(Debug)]
pub struct Shared {
    /// The SDK client.
    pub sdk: Client,
    /// The operator's caps.
    pub caps: Caps,
    /// The spend ledger.
    pub ledger: tokio::sync::Mutex<Ledger>,
    /// Tool calls per minute per session.
    pub calls_per_minute: u32,
}

/// One MCP session.
#[derive(Clone)]
pub struct SageMcp {
    shared: Arc<Shared>,
    session: String,
    window: Arc<Mutex<(Instant, u32)>>,
    // Read by the `tool_handler` macro.
    #[allow(dead_code)]
    tool_router: ToolRouter<Self>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A tool error a model can act on.
fn fail(code: &str, message: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::structured_error(json!({ "code": code, "message": message.to_string() }))
}

fn ok(value: Value) -> CallToolResult {
    CallToolResult::structured(value)
}

/// Maps an SDK failure to a stable code and a sentence.
fn sdk_fail(e: &SdkError) -> CallToolResult {
    let code = match e {
        SdkError::InvalidSpec(_) => "invalid_spec",
        SdkError::Api { code, .. } => code.as_str(),
        SdkError::Unreachable { .. } | SdkError::Http { .. } => "coordinator_unavailable",
        SdkError::Verification { .. } => "verification_failed",
        SdkError::EscrowConflict { .. } => "escrow_conflict",
        SdkError::Chain(_) => "chain_error",
        _ => "internal",
    };
    fail(code, e)
}

fn job_id(text: &str) -> Result<Felt, Box<CallToolResult>> {
    let t = text.trim();
    if !t.starts_with("0x") || t.len() > 66 {
        return Err(Box::new(fail("invalid_job_id", format!("job_id {text:?} must be a 0x-prefixed hex felt"))));
    }
    Felt::from_hex(t).map_err(|_| Box::new(fail("invalid_job_id", format!("job_id {text:?} is not a hex felt"))))
}

/// `sage_quote`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct QuoteParams {
    /// Matrix size n of the matmul job (a power of two, 2..=1024).
    pub size: u32,
}

/// `sage_submit_job`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SubmitParams {
    /// Matrix size n (a power of two, 2..=1024): C = A·B over M31 for n×n matrices derived from the seed.
    pub size: u32,
    /// Seed of the matrices (0x-hex felt); random when absent.
    #[serde(default)]
    pub seed: Option<String>,
    /// A key unique to this purchase (e.g. a task id). Retrying the call with the same key never
    /// pays twice: it returns the job the first call created.
    pub idempotency_key: String,
    /// The most you accept to pay, in SAGE (decimal); the call is refused if the quote is higher.
    #[serde(default)]
    pub max_price_sage: Option<String>,
}

/// A job id parameter.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct JobParams {
    /// Job id (0x-hex felt) as returned by sage_submit_job.
    pub job_id: String,
}

/// `sage_wait_job`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct WaitParams {
    /// Job id (0x-hex felt).
    pub job_id: String,
    /// Give up after this many seconds (default 300, at most 3600).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// The user's answer to an approval request.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Approval {
    /// Approve this escrow.
    pub approve: bool,
}
rmcp::elicit_safe!(Approval);

impl std::fmt::Debug for SageMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SageMcp").field("session", &self.session).finish_non_exhaustive()
    }
}

impl SageMcp {
    /// A new session over the shared state.
    pub fn new(shared: Arc<Shared>) -> Self {
        let mut id = [0u8; 8];
        let _ = getrandom::fill(&mut id);
        Self {
            shared,
            session: id.iter().map(|b| format!("{b:02x}")).collect(),
            window: Arc::new(Mutex::new((Instant::now(), 0))),
            tool_router: Self::tool_router(),
        }
    }

    /// The start of every tool that names a job: count the call, then parse the id.
    fn admit_job(&self, text: &str) -> Result<Felt, Box<CallToolResult>> {
        self.admit()?;
        job_id(text)
    }

    /// Counts one call against the session's per-minute limit.
    fn admit(&self) -> Result<(), Box<CallToolResult>> {
        let mut w = self.window.lock().map_err(|_| Box::new(fail("internal", "rate limiter poisoned")))?;
        if w.0.elapsed() >= Duration::from_secs(60) {
            *w = (Instant::now(), 0);
        }
        if w.1 >= self.shared.calls_per_minute {
            let wait = 60u64.saturating_sub(w.0.elapsed().as_secs());
            return Err(Box::new(fail(
                "rate_limited",
                format!("more than {} calls this minute; retry in {wait} s", self.shared.calls_per_minute),
            )));
        }
        w.1 += 1;
        Ok(())
    }
}

#[tool_router]
impl SageMcp {
    #[tool(
        description = "Price (SAGE) and expected proving time of a verifiable matmul job of size n, from the coordinator's measured throughput. Spends nothing.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_quote(&self, Parameters(p): Parameters<QuoteParams>) -> CallToolResult {
        if let Err(e) = self.admit() {
            return *e;
        }
        match self.shared.sdk.quote(&JobSpec::Matmul { n: p.size, seed: Felt::ZERO }).await {
            Ok(q) => ok(json!({ "size": q.size, "price_sage": sage(q.price), "price_base_units": q.price.to_string(),
                                "expected_ms": q.expected_ms, "basis": q.basis, "min_deadline_secs": q.min_deadline_secs })),
            Err(e) => sdk_fail(&e),
        }
    }

    #[tool(
        description = "Buy a verifiable matmul computation: escrows the quoted price from the operator's account and submits the job. Checked against the operator's budget first; above the approval threshold the user is asked. Returns the job id at once; follow it with sage_wait_job. Retrying with the same idempotency_key never pays twice.",
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_submit_job(
        &self,
        Parameters(p): Parameters<SubmitParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        if let Err(e) = self.admit() {
            return *e;
        }
        let key = p.idempotency_key.trim().to_owned();
        if key.is_empty() || key.len() > 128 {
            return fail("invalid_idempotency_key", "idempotency_key must be 1..=128 characters");
        }
        let seed = match p.seed.as_deref().map(job_id) {
            Some(Ok(s)) => s,
            Some(Err(_)) => return fail("invalid_spec", "seed must be a 0x-prefixed hex felt"),
            None => {
                let mut b = [0u8; 31];
                if getrandom::fill(&mut b).is_err() {
                    return fail("internal", "OS randomness unavailable");
                }
                Felt::from_bytes_be_slice(&b)
            }
        };
        let spec = JobSpec::Matmul { n: p.size, seed };
        if let Err(e) = spec.validate() {
            return fail("invalid_spec", e);
        }
        // One spending call at a time: the caps see every earlier spend.
        let mut ledger = self.shared.ledger.lock().await;
        if let Some(earlier) = ledger.by_key(&key) {
            return ok(
                json!({ "job_id": earlier.job, "escrow_tx": earlier.tx, "paid_sage": sage(earlier.amount.parse().unwrap_or(0)),
                              "repeated": true, "note": "this idempotency key already bought this job; nothing was paid again" }),
            );
        }
        let price = match self.shared.sdk.quote(&spec).await {
            Ok(q) => q.price,
            Err(e) => return sdk_fail(&e),
        };
        if let Some(max) = p.max_price_sage.as_deref() {
            match crate::config::parse_sage(max) {
                Ok(max) if price > max => {
                    return fail(
                        "price_above_max",
                        format!("the quote is {} SAGE, above your max of {max_s} SAGE", sage(price), max_s = sage(max)),
                    );
                }
                Ok(_) => {}
                Err(e) => return fail("invalid_max_price", e),
            }
        }
        let caps = self.shared.caps;
        let decision = governor::check(&caps, ledger.session_total(&self.session), ledger.day_total(now_ms()), price);
        match decision {
            Err(refusal) => return fail(refusal.code(), &refusal),
            Ok(Decision::AskUser) => {
                let question = format!(
                    "An agent wants to escrow {} SAGE for a verifiable {n}×{n} matmul job (approval is required above {} SAGE). Approve?",
                    sage(price),
                    sage(caps.approval_above),
                    n = p.size
                );
                let answer = ctx.peer.elicit_with_timeout::<Approval>(question, Some(Duration::from_secs(300))).await;
                let why = match answer {
                    Ok(Some(Approval { approve: true })) => None,
                    Ok(Some(_)) | Err(ElicitationError::UserDeclined) => Some("the user declined".to_owned()),
                    Ok(None) | Err(ElicitationError::UserCancelled) => {
                        Some("the user dismissed the request".to_owned())
                    }
                    Err(e) => Some(format!("this client cannot ask the user ({e})")),
                };
                if let Some(why) = why {
                    let r = Refusal::NotApproved { amount: price, threshold: caps.approval_above, why };
                    return fail(r.code(), &r);
                }
            }
            Ok(Decision::Allowed) => {}
        }
        let options = SubmitOptions::default().idempotency_key(format!("mcp/{key}")).payment(price);
        let submitted = match self.shared.sdk.submit(&spec, options).await {
            Ok(s) => s,
            Err(e) => return sdk_fail(&e),
        };
        let tx = submitted.escrow_tx.map(|t| format!("{t:#x}"));
        if let Some(t) = &tx {
            let spend = Spend {
                at_ms: now_ms(),
                key: key.clone(),
                job: format!("{:#x}", submitted.id),
                amount: submitted.payment.to_string(),
                tx: t.clone(),
                session: self.session.clone(),
            };
            if let Err(e) = ledger.record(spend) {
                tracing::error!(error = %e, job = %format!("{:#x}", submitted.id), "spend not recorded in the ledger");
            }
        }
        ok(json!({ "job_id": format!("{:#x}", submitted.id), "escrow_tx": tx, "paid_sage": sage(submitted.payment),
                   "state": submitted.view.state.as_str(), "spec": { "type": "matmul", "n": p.size, "seed": format!("{seed:#x}") } }))
    }

    #[tool(
        description = "A job's state (submitted, queued, assigned, proving, result_submitted, voting, certified, paid, rejected, expired, cancelled, failed) with its history and transactions.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_job_status(&self, Parameters(p): Parameters<JobParams>) -> CallToolResult {
        let id = match self.admit_job(&p.job_id) {
            Ok(id) => id,
            Err(e) => return *e,
        };
        match self.shared.sdk.status(id).await {
            Ok(v) => ok(serde_json::to_value(&v).unwrap_or(Value::Null)),
            Err(e) => sdk_fail(&e),
        }
    }

    #[tool(
        description = "Wait for a job to end (progress notifications on each state change). A certified job is returned only after its proof was verified on this server against the escrowed job and the on-chain verdict.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_wait_job(
        &self,
        Parameters(p): Parameters<WaitParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let id = match self.admit_job(&p.job_id) {
            Ok(id) => id,
            Err(e) => return *e,
        };
        let timeout = Duration::from_secs(p.timeout_secs.unwrap_or(300).clamp(1, 3600));
        // Progress: one notification per state change the SDK's own event stream delivers.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        let progress = ctx.meta.get_progress_token().map(|token| {
            let peer = ctx.peer.clone();
            tokio::spawn(async move {
                let mut n = 0.0;
                while let Some(state) = rx.recv().await {
                    n += 1.0;
                    let _ = peer
                        .notify_progress(ProgressNotificationParam::new(token.clone(), n).with_message(state))
                        .await;
                }
            })
        });
        let outcome = self
            .shared
            .sdk
            .wait_with(id, timeout, |t| {
                let _ = tx.send(t.state.as_str());
            })
            .await;
        drop(tx);
        if let Some(p) = progress {
            // Sends what is queued, then ends (the channel is closed).
            let _ = p.await;
        }
        match outcome {
            Ok(Outcome::Certified(v)) => {
                ok(json!({ "job_id": format!("{id:#x}"), "outcome": "certified", "verified": true,
                "security_bits": v.security_bits, "proof_hash": format!("{:#x}", v.proof_hash), "worker": format!("{:#x}", v.worker),
                "paid": v.paid, "state": v.state.as_str() }))
            }
            Ok(Outcome::TimedOut(last)) => fail(
                "timed_out",
                format!(
                    "job {id:#x} is still {} after {} s; call sage_wait_job again",
                    last.map_or("unknown", |s| s.as_str()),
                    timeout.as_secs()
                ),
            ),
            Ok(other) => {
                let (name, view) = match other {
                    Outcome::Rejected(v) => ("rejected", Some(v)),
                    Outcome::Expired(v) => ("expired", Some(v)),
                    Outcome::Cancelled(v) => ("cancelled", Some(v)),
                    Outcome::Failed(v) => ("failed", Some(v)),
                    _ => ("unknown", None),
                };
                ok(json!({ "job_id": format!("{id:#x}"), "outcome": name, "verified": false,
                           "refunded": name != "unknown", "history": view.map(|v| v.history) }))
            }
            Err(e) => sdk_fail(&e),
        }
    }

    #[tool(
        description = "The job's compressed proof envelope (base64) and its hash. Verify it with sage_verify_proof before trusting it.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_get_proof(&self, Parameters(p): Parameters<JobParams>) -> CallToolResult {
        let id = match self.admit_job(&p.job_id) {
            Ok(id) => id,
            Err(e) => return *e,
        };
        match self.shared.sdk.proof(id).await {
            Ok(bytes) => ok(json!({ "job_id": format!("{id:#x}"), "bytes": bytes.len(),
                                    "envelope_base64": base64::engine::general_purpose::STANDARD.encode(&bytes) })),
            Err(e) => sdk_fail(&e),
        }
    }

    #[tool(
        description = "Verify a job's proof on this server, trusting nothing the coordinator says: the spec against the on-chain escrow, the worker the chain recorded, the STARK proof itself, and the on-chain verdict and certified proof hash. Says what was checked.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_verify_proof(&self, Parameters(p): Parameters<JobParams>) -> CallToolResult {
        let id = match self.admit_job(&p.job_id) {
            Ok(id) => id,
            Err(e) => return *e,
        };
        match self.shared.sdk.verify(id).await {
            Ok(v) => ok(json!({ "job_id": format!("{id:#x}"), "valid": true, "security_bits": v.security_bits,
                "proof_hash": format!("{:#x}", v.proof_hash), "worker": format!("{:#x}", v.worker), "paid": v.paid,
                "checked": ["spec hash = on-chain escrow".to_owned(), "worker = on-chain assignment".to_owned(),
                            format!("STARK proof verifies at {} bits", v.security_bits),
                            "on-chain verdict valid for this proof hash".to_owned()] })),
            Err(e) => sdk_fail(&e),
        }
    }

    #[tool(
        description = "The output of a certified job (matmul: the n×n matrix C = A·B over M31), accepted only after it was checked here against the verified proof's output commitment. Returns every row for n ≤ 64, otherwise the first row and the sha256 of all values (u32 little-endian, row-major).",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_get_output(&self, Parameters(p): Parameters<JobParams>) -> CallToolResult {
        let id = match self.admit_job(&p.job_id) {
            Ok(id) => id,
            Err(e) => return *e,
        };
        let c = match self.shared.sdk.output(id).await {
            Ok(c) => c,
            Err(e) => return sdk_fail(&e),
        };
        let n = c.len().isqrt();
        let bytes: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
        let digest: String = {
            use sha2::Digest;
            sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
        };
        let rows: Vec<&[u32]> = c.chunks(n.max(1)).collect();
        let mut out = json!({ "job_id": format!("{id:#x}"), "n": n, "verified": true, "sha256_u32le": digest,
                              "first_row": rows.first() });
        if n <= 64 {
            out["rows"] = json!(rows);
        }
        ok(out)
    }

    #[tool(
        description = "Cancel a job before a worker is assigned: the escrow is refunded on-chain to the operator's account.",
        annotations(destructive_hint = true, idempotent_hint = false, open_world_hint = true)
    )]
    async fn sage_cancel_job(&self, Parameters(p): Parameters<JobParams>) -> CallToolResult {
        let id = match self.admit_job(&p.job_id) {
            Ok(id) => id,
            Err(e) => return *e,
        };
        match self.shared.sdk.cancel(id).await {
            Ok(tx) => ok(json!({ "job_id": format!("{id:#x}"), "cancelled": true, "refund_tx": format!("{tx:#x}") })),
            Err(e) => sdk_fail(&e),
        }
    }

    #[tool(
        description = "Workers the coordinator knows: tier, capacity, jobs in flight, completed and failed jobs, last heartbeat.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_list_workers(&self) -> CallToolResult {
        if let Err(e) = self.admit() {
            return *e;
        }
        match self.shared.sdk.workers().await {
            Ok(w) => ok(json!({ "workers": w })),
            Err(e) => sdk_fail(&e),
        }
    }

    #[tool(
        description = "Network statistics: workers known and heartbeating, and recent jobs by state.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn sage_network_stats(&self) -> CallToolResult {
        if let Err(e) = self.admit() {
            return *e;
        }
        let (workers, jobs) = match (self.shared.sdk.workers().await, self.shared.sdk.list(None, None, 500).await) {
            (Ok(w), Ok(j)) => (w, j),
            (Err(e), _) | (_, Err(e)) => return sdk_fail(&e),
        };
        let now = now_ms();
        let live = workers.iter().filter(|w| now.saturating_sub(w.last_seen_ms) < 60_000).count();
        let mut by_state = serde_json::Map::new();
        for j in &jobs {
            let n = by_state.get(j.state.as_str()).and_then(Value::as_u64).unwrap_or(0);
            by_state.insert(j.state.as_str().into(), json!(n + 1));
        }
        ok(
            json!({ "workers": workers.len(), "workers_heartbeating": live, "recent_jobs": jobs.len(), "jobs_by_state": by_state }),
        )
    }

    #[tool(
        description = "The spend budget: caps per call, per session and per day, what this session and the last 24 hours spent, and the recent spends (job, amount, time, transaction).",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn sage_budget(&self) -> CallToolResult {
        let ledger = self.shared.ledger.lock().await;
        let caps = self.shared.caps;
        let session = ledger.session_total(&self.session);
        let day = ledger.day_total(now_ms());
        ok(json!({
            "caps_sage": { "per_call": sage(caps.per_call), "per_session": sage(caps.per_session),
                           "per_day": sage(caps.per_day), "approval_above": sage(caps.approval_above) },
            "spent_sage": { "this_session": sage(session), "last_24h": sage(day) },
            "left_sage": { "this_session": sage(caps.per_session.saturating_sub(session)),
                           "today": sage(caps.per_day.saturating_sub(day)) },
            "recent": ledger.recent(20),
        }))
    }
}

#[tool_handler]
impl ServerHandler for SageMcp {
    /// Up to 2025-11-25: the approval question is a server-to-client elicitation request, which
    /// 2026-07-28 replaced with input-required results.
    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(&[
            ProtocolVersion::V_2025_11_25,
            ProtocolVersion::V_2025_06_18,
            ProtocolVersion::V_2025_03_26,
        ])
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Sage sells verifiable compute: a job (today a matmul of size n) is proved by a staked worker with a STARK \
             proof, certified by validators on Starknet, and verified again here before you see a result. Quote first \
             (sage_quote), buy with sage_submit_job (give each purchase its own idempotency_key; the operator's budget \
             applies), then sage_wait_job. sage_budget shows what is left.",
        )
    }
}
