//! The validator bridge: `POST /v1/validate` judges one envelope for one job assigned on-chain and
//! answers with this validator's signed vote (see [`sage_consensus::bridge`] for the wire types).
//!
//! What a caller can and cannot make it do:
//! - The job must exist and be assigned on-chain; the proof is judged for the assigned worker
//!   (the statement binds it), so an envelope proved for another worker is `invalid`.
//! - The spec must hash to the escrowed `spec_hash` (`spec_hash_mismatch`, no vote).
//! - Once a result is on-chain, only the submitted proof is judged (`conflict` for other bytes);
//!   bytes that are not a canonical envelope have no proof hash and get no vote (`malformed_body`).
//! - The vote is journaled (synced) before the answer leaves, exactly as a round's vote: when the
//!   round for that proof starts, this validator repeats the verdict without judging it again,
//!   and can never sign the opposite one.
//! - Judging takes a verification thread from the shared pool; when its queue is full the request
//!   is refused (`rate_limited`) and nothing is judged. Bodies above the limit get
//!   `body_too_large` before they are read in full.
//! - A validator that is not in the current set answers `invalid_state` and signs nothing.

use std::net::SocketAddr;

use anyhow::Result;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use sage_chain::contracts::JobStatus;
use sage_consensus::{
    RoundId, SignedVote,
    bridge::{VALIDATE_PATH, ValidateRequest, ValidateResponse},
};
use sage_protocol::api::{Problem, ProblemCode};

use crate::{Ctx, Judgement, decode, judge};

/// Binds `addr` and serves the bridge until the task set stops; returns the bound address.
pub(crate) async fn serve(
    ctx: Ctx,
    addr: SocketAddr,
    tasks: &mut tokio::task::JoinSet<Result<()>>,
) -> Result<SocketAddr> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("binding the bridge to {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    // Base64 takes 4 bytes per 3; the rest of the body is small.
    let limit = ctx.settings.max_envelope_bytes / 3 * 4 + 64 * 1024;
    let app = Router::new().route(VALIDATE_PATH, post(validate)).layer(DefaultBodyLimit::max(limit)).with_state(ctx);
    tasks.spawn(async move {
        axum::serve(listener, app).await?;
        anyhow::bail!("the bridge stopped")
    });
    Ok(bound)
}

struct Refusal(Problem);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}

fn busy(ctx: &Ctx) -> Refusal {
    refuse(
        ProblemCode::RateLimited,
        format!("the verification queue is full ({} waiting); retry later", ctx.pool.waiting()),
    )
}

fn refuse(code: ProblemCode, detail: impl Into<String>) -> Refusal {
    Refusal(Problem::new(code, detail))
}

async fn validate(State(ctx): State<Ctx>, body: Bytes) -> Result<Json<ValidateResponse>, Refusal> {
    let request: ValidateRequest = serde_json::from_slice(&body)
        .map_err(|e| refuse(ProblemCode::MalformedBody, format!("not a validate request: {e}")))?;
    if request.envelope.len() > ctx.settings.max_envelope_bytes {
        return Err(refuse(
            ProblemCode::BodyTooLarge,
            format!("the envelope has {} bytes; at most {}", request.envelope.len(), ctx.settings.max_envelope_bytes),
        ));
    }
    let membership = ctx.membership();
    let Some(index) = membership.index else {
        return Err(refuse(
            ProblemCode::InvalidState,
            format!("this validator is not in the current validator set (version {})", membership.set.version),
        ));
    };
    let job_id = request.job_id;
    let on_chain = ctx
        .contracts
        .jobs
        .get_job(&ctx.client, job_id)
        .await
        .map_err(|e| refuse(ProblemCode::Internal, format!("reading the job on-chain: {e}")))?;
    let output = match on_chain.status {
        JobStatus::None => return Err(refuse(ProblemCode::NotFound, format!("no job {job_id:#x} on-chain"))),
        JobStatus::Open => {
            return Err(refuse(ProblemCode::InvalidState, format!("job {job_id:#x} is not assigned on-chain yet")));
        }
        JobStatus::Assigned => None,
        JobStatus::Submitted => Some(on_chain.output_commitment),
        JobStatus::Completed | JobStatus::Refunded => {
            return Err(refuse(ProblemCode::InvalidState, format!("job {job_id:#x} is already settled on-chain")));
        }
        other => return Err(refuse(ProblemCode::InvalidState, format!("job {job_id:#x} is {other:?} on-chain"))),
    };
    if request.spec.spec_hash() != on_chain.spec_hash {
        return Err(refuse(ProblemCode::SpecHashMismatch, "the spec does not hash to the escrowed spec_hash"));
    }
    // Decoded once, on a verification thread; judged (if at all) from the decoded envelope.
    let bytes = request.envelope;
    let (envelope, proof_hash) = ctx
        .pool
        .try_run(move || decode(&bytes))
        .await
        .map_err(|e| refuse(ProblemCode::Internal, e.to_string()))?
        .map_err(|_| busy(&ctx))?
        .map_err(|e| refuse(ProblemCode::MalformedBody, format!("not a canonical proof envelope: {e}")))?;
    if output.is_some() && proof_hash != on_chain.proof_hash {
        return Err(refuse(
            ProblemCode::Conflict,
            format!("job {job_id:#x} has proof {:#x} on-chain; this envelope is {proof_hash:#x}", on_chain.proof_hash),
        ));
    }
    let round = RoundId { job_id, proof_hash };
    let journaled =
        ctx.journal.lock().map_err(|_| refuse(ProblemCode::Internal, "journal lock"))?.votes.get(&round).copied();
    let judgement = match journaled {
        // Signed before (a round or an earlier request): the same verdict, not judged again.
        Some(verdict) => Judgement { verdict, security_bits: None, reason: None },
        None => {
            let blobs = crate::fetch_blobs(&ctx, &request.spec)
                .await
                .map_err(|e| refuse(ProblemCode::InvalidState, format!("the job's inputs: {e:#}")))?;
            let (spec, policy, worker) = (request.spec, ctx.policy, on_chain.worker);
            ctx.pool
                .try_run(move || judge(&envelope, job_id, worker, &spec, &blobs, output, &policy))
                .await
                .map_err(|e| refuse(ProblemCode::Internal, e.to_string()))?
                .map_err(|_| busy(&ctx))?
        }
    };
    ctx.journal
        .lock()
        .map_err(|_| refuse(ProblemCode::Internal, "journal lock"))?
        .record(round, judgement.verdict)
        .map_err(|e| refuse(ProblemCode::Conflict, format!("{e:#}")))?;
    let signature = sage_consensus::sign_vote(&ctx.vote_key, &ctx.domain, job_id, proof_hash, judgement.verdict)
        .map_err(|e| refuse(ProblemCode::Internal, e.to_string()))?;
    tracing::info!(job = %format!("{job_id:#x}"), verdict = ?judgement.verdict, "bridge vote signed");
    Ok(Json(ValidateResponse {
        vote: SignedVote { round, verdict: judgement.verdict, validator: membership.vote_key, signature },
        set_version: membership.set.version,
        index,
        security_bits: judgement.security_bits,
        reason: judgement.reason,
    }))
}
