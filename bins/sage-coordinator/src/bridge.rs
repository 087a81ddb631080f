//! The coordinator's client of the validators' bridge (`POST /v1/validate`, served by
//! `sage-validator` when its `[bridge] listen` is set).
//!
//! When a worker announces a proof, the coordinator asks the validators named in
//! `[validators] bridges`, in the order given, before it stores and serves the proof. Each one gets
//! up to [`TRIES`] tries while it is unreachable or busy (`429`, `5xx`); a refusal (`4xx`: not in the
//! set, conflict, spec mismatch) moves on to the next at once. An answer counts only when its vote
//! checks against the on-chain validator set, this deployment's vote domain and the proof hash the
//! coordinator computed itself ([`sage_consensus::bridge::ValidateResponse::check`]); an answer
//! that does not is that validator's fault, logged, and the next one is asked.
//!
//! A `valid` vote lets the coordinator skip verifying the proof itself. An `invalid` vote is
//! confirmed by verifying locally before the result is refused: one validator's word alone never
//! costs an honest worker its job. When no validator answers, the coordinator verifies locally.

use std::time::Duration;

use sage_consensus::{
    RoundId, Verdict, VoteDomain,
    bridge::{VALIDATE_PATH, ValidateRequest, ValidateResponse},
};
use sage_protocol::{Felt, api::Problem};

/// Tries per validator while it is unreachable or busy.
pub const TRIES: u32 = 2;

/// Pause between two tries of one validator.
const BACKOFF: Duration = Duration::from_millis(250);

/// The validators asked, in order.
#[derive(Debug, Clone)]
pub struct BridgeClient {
    http: reqwest::Client,
    urls: Vec<String>,
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The verdict the vote signs.
    pub verdict: Verdict,
    /// The bridge that answered.
    pub url: String,
    /// The full answer (its vote checks).
    pub answer: ValidateResponse,
}

/// Why no validator's answer could be used: one line per validator asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no validator bridge answered with a usable vote: {}", .0.join("; "))]
pub struct NoAnswer(pub Vec<String>);

impl BridgeClient {
    /// A client for the bridges at `urls` (base URLs, `http://host:port`), each request bounded by
    /// `timeout`.
    pub fn new(urls: Vec<String>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Self { http, urls }
    }

    /// Whether any bridge is configured.
    pub fn is_configured(&self) -> bool {
        !self.urls.is_empty()
    }

    /// Asks the bridges in order for a vote on `request`, whose envelope hashes to `proof_hash`;
    /// returns the first answer whose vote checks against `domain` and `members`.
    pub async fn validate(
        &self,
        domain: &VoteDomain,
        members: &[Felt],
        request: &ValidateRequest,
        proof_hash: Felt,
    ) -> Result<Judged, NoAnswer> {
        let round = RoundId { job_id: request.job_id, proof_hash };
        let mut failures = Vec::new();
        for base in &self.urls {
            let url = format!("{}{VALIDATE_PATH}", base.trim_end_matches('/'));
            let mut last = String::new();
            for attempt in 1..=TRIES {
                let response = match self.http.post(&url).json(request).send().await {
                    Ok(r) => r,
                    Err(e) => {
                        last = format!("{base}: unreachable ({e})");
                        if attempt < TRIES {
                            tokio::time::sleep(BACKOFF).await;
                        }
                        continue;
                    }
                };
                let status = response.status();
                if status.is_success() {
                    last = match response.json::<ValidateResponse>().await {
                        Ok(answer) => match answer.check(domain, members, round) {
                            Ok(verdict) => return Ok(Judged { verdict, url: base.clone(), answer }),
                            Err(e) => {
                                tracing::warn!(bridge = %base, error = %e, "a validator bridge answered with a vote that does not check");
                                format!("{base}: {e}")
                            }
                        },
                        Err(e) => format!("{base}: unreadable answer ({e})"),
                    };
                    break;
                }
                let problem = response.json::<Problem>().await.map_or_else(|_| status.to_string(), |p| p.detail);
                last = format!("{base}: {} ({problem})", status.as_u16());
                let retry = status.as_u16() == 429 || status.is_server_error();
                if !retry {
                    break;
                }
                if attempt < TRIES {
                    tokio::time::sleep(BACKOFF).await;
                }
            }
            failures.push(last);
        }
        Err(NoAnswer(failures))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use axum::{Json, Router, http::StatusCode, response::IntoResponse, routing::post};
    use sage_consensus::{SignedVote, StarkKey, sign_vote};

    use super::*;

    /// Stand-in validators with scripted misbehaviour: what the client must do with each kind of
    /// answer is pure logic over HTTP (real validators answer in the validator's devnet tests).
    async fn serve(answers: Vec<(u16, serde_json::Value)>) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = Router::new().route(
            VALIDATE_PATH,
            post(move || {
                let i = h.fetch_add(1, Ordering::SeqCst);
                let (status, body) = answers[i.min(answers.len() - 1)].clone();
                async move { (StatusCode::from_u16(status).unwrap(), Json(body)).into_response() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), hits)
    }

    fn vote(key: &StarkKey, domain: &VoteDomain, round: RoundId, verdict: Verdict) -> serde_json::Value {
        let signature = sign_vote(key, domain, round.job_id, round.proof_hash, verdict).unwrap();
        serde_json::to_value(ValidateResponse {
            vote: SignedVote { round, verdict, validator: key.public_key(), signature },
            set_version: 1,
            index: 0,
            security_bits: Some(96),
            reason: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn forged_refused_and_busy_answers_fall_through_to_the_next_validator() {
        let domain = VoteDomain { chain_id: Felt::from(9u8), verifier: Felt::from(10u8) };
        let member = StarkKey::from_secret(Felt::from(7_001u32)).unwrap();
        let outsider = StarkKey::from_secret(Felt::from(666u32)).unwrap();
        let members = [member.public_key()];
        let request = ValidateRequest {
            job_id: Felt::from(5u8),
            spec: sage_protocol::JobSpec::Matmul { n: 8, seed: Felt::ONE },
            envelope: vec![1, 2, 3],
        };
        let proof_hash = Felt::from(77u8);
        let round = RoundId { job_id: request.job_id, proof_hash };
        let problem = |code| serde_json::to_value(Problem::new(code, "scripted")).unwrap();
        // 1: a vote by a key outside the set. 2: a member's vote for another proof. 3: not a
        // member any more (409, no retry). 4: busy, then a good answer.
        let (forged, forged_hits) = serve(vec![(200, vote(&outsider, &domain, round, Verdict::Valid))]).await;
        let other = RoundId { proof_hash: Felt::from(78u8), ..round };
        let (replayed, _) = serve(vec![(200, vote(&member, &domain, other, Verdict::Valid))]).await;
        let (left, left_hits) = serve(vec![(409, problem(sage_protocol::api::ProblemCode::InvalidState))]).await;
        let (busy, busy_hits) = serve(vec![
            (429, problem(sage_protocol::api::ProblemCode::RateLimited)),
            (200, vote(&member, &domain, round, Verdict::Invalid)),
        ])
        .await;
        let dead = "http://127.0.0.1:9".to_owned();
        let client = BridgeClient::new(
            vec![dead.clone(), forged.clone(), replayed.clone(), left.clone(), busy.clone()],
            Duration::from_secs(5),
        );
        let judged = client.validate(&domain, &members, &request, proof_hash).await.unwrap();
        assert_eq!((judged.verdict, judged.url.as_str()), (Verdict::Invalid, busy.as_str()));
        assert_eq!(forged_hits.load(Ordering::SeqCst), 1, "a forged answer is not retried");
        assert_eq!(left_hits.load(Ordering::SeqCst), 1, "a refusal is not retried");
        assert_eq!(busy_hits.load(Ordering::SeqCst), 2, "a busy validator is tried again");

        // Nobody usable: every validator's failure is named.
        let client = BridgeClient::new(vec![dead, forged, replayed, left], Duration::from_secs(5));
        let NoAnswer(lines) = client.validate(&domain, &members, &request, proof_hash).await.unwrap_err();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].contains("unreachable"), "{lines:?}");
        assert!(lines[1].contains("not in the validator set"), "{lines:?}");
        assert!(lines[2].contains("not the round asked about"), "{lines:?}");
        assert!(lines[3].contains("409"), "{lines:?}");
        // A vote signed for another deployment is refused too.
        let elsewhere = VoteDomain { verifier: Felt::from(11u8), ..domain };
        let (wrong_domain, _) = serve(vec![(200, vote(&member, &elsewhere, round, Verdict::Valid))]).await;
        let client = BridgeClient::new(vec![wrong_domain], Duration::from_secs(5));
        let NoAnswer(lines) = client.validate(&domain, &members, &request, proof_hash).await.unwrap_err();
        assert!(lines[0].contains("signature does not verify"), "{lines:?}");
    }
}
