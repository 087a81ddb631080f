//! The HTTP API over real loopback sockets and a real SQLite file: every bad input gets its
//! problem code and stores nothing; idempotency, quotas, rate limits, revocation, cancel
//! ownership, SSE and the OpenAPI document are checked as a client sees them.

use std::{sync::Arc, time::Duration};

use reqwest::{Client, Response, StatusCode};
use sage_jobs::{
    api::{ApiConfig, ApiState, router},
    keys,
    lifecycle::Rules,
    service::JobService,
    store::{SqlStore, Store},
};
use sage_protocol::{
    Felt, JobSpec,
    api::{IDEMPOTENCY_HEADER, JobList, JobState, JobView, Problem, ProblemCode, Quote},
    job_id,
};
use serde_json::{Value, json};

struct Server {
    base: String,
    store: Arc<SqlStore>,
    http: Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqlStore::open(&dir.path().join("jobs.db")).await.unwrap());
        let service = JobService::new(store.clone(), Rules::default());
        let state = ApiState::new(service, ApiConfig::new(dir.path().to_path_buf()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        Self { base, store, http: Client::new(), _dir: dir }
    }

    /// A new API key's text.
    async fn key(&self, name: &str, rate_per_min: u32, quota: Option<u64>) -> String {
        let new = keys::generate(name, rate_per_min, quota, 0).unwrap();
        self.store.create_api_key(&new.row).await.unwrap();
        new.text
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn submit(&self, key: &str, body: &Value, idem: Option<&str>) -> Response {
        let mut req = self.http.post(self.url("/v1/jobs")).bearer_auth(key).json(body);
        if let Some(idem) = idem {
            req = req.header(IDEMPOTENCY_HEADER, idem);
        }
        req.send().await.unwrap()
    }

    async fn jobs(&self, key: &str) -> Vec<JobView> {
        let r = self.http.get(self.url("/v1/jobs")).bearer_auth(key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<JobList>().await.unwrap().jobs
    }
}

fn submission(client: u64, client_job_id: u64, n: u32) -> Value {
    json!({
        "client": format!("{client:#x}"),
        "client_job_id": format!("{client_job_id:#x}"),
        "spec": { "type": "matmul", "n": n, "seed": "0x5" },
    })
}

/// Asserts `r` is a problem document of `code` whose detail mentions `mention`.
async fn problem(r: Response, code: ProblemCode, mention: &str) {
    assert_eq!(r.status().as_u16(), code.status(), "status for {code:?}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Problem = r.json().await.unwrap();
    assert_eq!(p.code, code);
    assert!(p.detail.contains(mention), "detail {:?} should mention {mention:?}", p.detail);
}

#[tokio::test]
async fn a_submitted_job_is_stored_with_its_chain_id_and_read_back() {
    let s = Server::start().await;
    let key = s.key("alice", 600, None).await;
    let r = s.submit(&key, &submission(0xc1, 7, 64), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let view: JobView = r.json().await.unwrap();
    assert_eq!(view.id, job_id(Felt::from(0xc1u8), Felt::from(7u8)), "id is the one JobManager computes");
    assert_eq!(view.state, JobState::Submitted);
    assert_eq!(view.spec, JobSpec::Matmul { n: 64, seed: Felt::from(5u8) });
    assert_eq!(view.history.len(), 1);

    let r = s.http.get(s.url(&format!("/v1/jobs/{:#x}", view.id))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again: JobView = r.json().await.unwrap();
    assert_eq!(again.id, view.id);
    assert_eq!(again.state, JobState::Submitted);

    let listed = s.jobs(&key).await;
    assert_eq!(listed.iter().map(|j| j.id).collect::<Vec<_>>(), [view.id]);
    let r = s
        .http
        .get(s.url("/v1/jobs?state=queued&client=0xc1"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json::<JobList>()
        .await
        .unwrap();
    assert!(r.jobs.is_empty(), "filters apply");
}

#[tokio::test]
async fn every_bad_submission_gets_its_code_and_stores_nothing() {
    let s = Server::start().await;
    let key = s.key("mallory", 600, None).await;
    let mut spec_with_extra = submission(1, 1, 64);
    spec_with_extra["spec"]["rows"] = json!(3);
    let mut unknown_type = submission(1, 1, 64);
    unknown_type["spec"]["type"] = json!("sha256");
    let mut bad_felt = submission(1, 1, 64);
    bad_felt["client"] = json!("0xzz");
    let cases: Vec<(Value, ProblemCode, &str)> = vec![
        (submission(1, 1, 3), ProblemCode::InvalidSpec, "power of two"),
        (submission(1, 1, 2048), ProblemCode::InvalidSpec, "1024"),
        (submission(1, 1, 0), ProblemCode::InvalidSpec, "n"),
        (spec_with_extra, ProblemCode::MalformedBody, "rows"),
        (unknown_type, ProblemCode::MalformedBody, "sha256"),
        (bad_felt, ProblemCode::MalformedBody, "client"),
        (json!({ "client": "0x1" }), ProblemCode::MalformedBody, "client_job_id"),
        (json!([1, 2, 3]), ProblemCode::MalformedBody, "job submission"),
    ];
    for (body, code, mention) in cases {
        problem(s.submit(&key, &body, None).await, code, mention).await;
    }
    let huge = "x".repeat(100 * 1024);
    let r = s.http.post(s.url("/v1/jobs")).bearer_auth(&key).body(huge).send().await.unwrap();
    problem(r, ProblemCode::BodyTooLarge, "65536").await;
    let r = s.http.post(s.url("/v1/jobs")).bearer_auth(&key).body("{not json").send().await.unwrap();
    problem(r, ProblemCode::MalformedBody, "job submission").await;
    let r = s.submit(&key, &submission(1, 1, 64), Some(&"k".repeat(300))).await;
    problem(r, ProblemCode::MalformedBody, IDEMPOTENCY_HEADER).await;

    assert!(s.jobs(&key).await.is_empty(), "no bad input left a job behind");
    let row = s.store.api_key(&key[5..13]).await.unwrap().unwrap();
    assert_eq!(row.used, 0, "no bad input was charged to the quota");
}

#[tokio::test]
async fn keys_are_required_checked_and_revocable() {
    let s = Server::start().await;
    let key = s.key("bob", 600, None).await;
    let get = |k: Option<String>| {
        let mut req = s.http.get(s.url("/v1/jobs"));
        if let Some(k) = k {
            req = req.header("authorization", k);
        }
        req.send()
    };
    problem(get(None).await.unwrap(), ProblemCode::Unauthorized, "Bearer").await;
    problem(get(Some(format!("Basic {key}"))).await.unwrap(), ProblemCode::Unauthorized, "Bearer").await;
    problem(get(Some("Bearer sage_nothex_00".into())).await.unwrap(), ProblemCode::Unauthorized, "malformed").await;
    let unknown = keys::generate("ghost", 1, None, 0).unwrap().text;
    problem(get(Some(format!("Bearer {unknown}"))).await.unwrap(), ProblemCode::Unauthorized, "unknown").await;
    // Right prefix, wrong secret.
    let mut forged = key.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    problem(get(Some(format!("Bearer {forged}"))).await.unwrap(), ProblemCode::Unauthorized, "").await;

    assert_eq!(get(Some(format!("Bearer {key}"))).await.unwrap().status(), StatusCode::OK);
    assert!(s.store.revoke_api_key("bob", 1).await.unwrap());
    problem(get(Some(format!("Bearer {key}"))).await.unwrap(), ProblemCode::Unauthorized, "revoked").await;
    // Public routes need no key.
    assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn idempotent_retries_return_the_same_job_and_charge_once() {
    let s = Server::start().await;
    let key = s.key("carol", 600, Some(5)).await;
    let first = s.submit(&key, &submission(2, 9, 128), Some("req-1")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: JobView = first.json().await.unwrap();
    let retry = s.submit(&key, &submission(2, 9, 128), Some("req-1")).await;
    assert_eq!(retry.status(), StatusCode::OK, "a retry is not a new job");
    let retry: JobView = retry.json().await.unwrap();
    assert_eq!(retry.id, first.id);
    // The same key for a different job is a client bug, not a retry.
    problem(s.submit(&key, &submission(2, 10, 128), Some("req-1")).await, ProblemCode::Conflict, "req-1").await;
    // The same job id with another spec is refused; with the same spec it is the same job.
    problem(s.submit(&key, &submission(2, 9, 256), None).await, ProblemCode::Conflict, "another spec").await;
    assert_eq!(s.submit(&key, &submission(2, 9, 128), None).await.status(), StatusCode::OK);
    assert_eq!(s.jobs(&key).await.len(), 1);
    assert_eq!(s.store.api_key(&key[5..13]).await.unwrap().unwrap().used, 1);
}

#[tokio::test]
async fn a_spent_quota_refuses_new_jobs_and_stores_nothing() {
    let s = Server::start().await;
    let key = s.key("dave", 600, Some(2)).await;
    for id in 0..2 {
        assert_eq!(s.submit(&key, &submission(3, id, 16), None).await.status(), StatusCode::CREATED);
    }
    problem(s.submit(&key, &submission(3, 2, 16), None).await, ProblemCode::QuotaExceeded, "2 jobs").await;
    assert_eq!(s.jobs(&key).await.len(), 2);
    assert_eq!(s.store.api_key(&key[5..13]).await.unwrap().unwrap().used, 2);
}

#[tokio::test]
async fn each_key_is_rate_limited_on_its_own() {
    let s = Server::start().await;
    let slow = s.key("slow", 3, None).await;
    let other = s.key("other", 600, None).await;
    for _ in 0..3 {
        assert_eq!(s.jobs(&slow).await.len(), 0);
    }
    let r = s.http.get(s.url("/v1/jobs")).bearer_auth(&slow).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    problem(r, ProblemCode::RateLimited, "3 requests a minute").await;
    assert!(s.jobs(&other).await.is_empty(), "another key is not throttled");
}

#[tokio::test]
async fn only_the_submitting_key_cancels_and_only_before_assignment() {
    let s = Server::start().await;
    let owner = s.key("owner", 600, None).await;
    let thief = s.key("thief", 600, None).await;
    let view: JobView = s.submit(&owner, &submission(4, 1, 32), None).await.json().await.unwrap();
    let cancel = |key: &str| s.http.post(s.url(&format!("/v1/jobs/{:#x}/cancel", view.id))).bearer_auth(key).send();

    problem(cancel(&thief).await.unwrap(), ProblemCode::NotFound, "this API key").await;
    let r = cancel(&owner).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let after: JobView = r.json().await.unwrap();
    assert_eq!(after.state, JobState::Cancelled);
    assert_eq!(after.history.iter().map(|t| t.state).collect::<Vec<_>>(), [JobState::Submitted, JobState::Cancelled]);
    problem(cancel(&owner).await.unwrap(), ProblemCode::InvalidState, "cancelled").await;
}

#[tokio::test]
async fn bad_ids_and_unknown_jobs_are_told_apart() {
    let s = Server::start().await;
    let key = s.key("erin", 600, None).await;
    for path in ["/v1/jobs/xyz", "/v1/jobs/0x", "/v1/jobs/12", "/v1/workers/0xnope"] {
        let r = s.http.get(s.url(path)).bearer_auth(&key).send().await.unwrap();
        problem(r, ProblemCode::BadQuery, "0x-hex").await;
    }
    let r = s.http.get(s.url("/v1/jobs/0x1234")).bearer_auth(&key).send().await.unwrap();
    problem(r, ProblemCode::NotFound, "0x1234").await;
    let r = s.http.get(s.url("/v1/jobs?state=flying")).bearer_auth(&key).send().await.unwrap();
    problem(r, ProblemCode::BadQuery, "flying").await;
    let r = s.http.get(s.url("/v1/jobs?colour=red")).bearer_auth(&key).send().await.unwrap();
    problem(r, ProblemCode::BadQuery, "colour").await;
    let r = s.http.get(s.url("/v2/anything")).send().await.unwrap();
    problem(r, ProblemCode::NotFound, "route").await;
}

#[tokio::test]
async fn events_replay_history_then_follow_live_until_a_terminal_state() {
    let s = Server::start().await;
    let key = s.key("frank", 600, None).await;
    let view: JobView = s.submit(&key, &submission(5, 1, 8), None).await.json().await.unwrap();
    let mut events =
        s.http.get(s.url(&format!("/v1/jobs/{:#x}/events", view.id))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let first = tokio::time::timeout(Duration::from_secs(10), events.chunk()).await.unwrap().unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"submitted\""));

    let r = s.http.post(s.url(&format!("/v1/jobs/{:#x}/cancel", view.id))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut rest = String::new();
    // The stream ends by itself after the terminal transition.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the event stream closes after a terminal state");
    assert!(rest.contains("event: state") && rest.contains("\"cancelled\"") && rest.contains("id: 1"), "{rest}");

    // A late subscriber gets the whole history and the stream ends at once.
    let late = s.http.get(s.url(&format!("/v1/jobs/{:#x}/events", view.id))).bearer_auth(&key).send().await.unwrap();
    let text = tokio::time::timeout(Duration::from_secs(10), late.text()).await.unwrap().unwrap();
    assert!(text.contains("\"submitted\"") && text.contains("\"cancelled\""), "{text}");
    let r = s.http.get(s.url("/v1/jobs/0x99/events")).bearer_auth(&key).send().await.unwrap();
    problem(r, ProblemCode::NotFound, "0x99").await;
}

#[tokio::test]
async fn blobs_are_content_addressed() {
    let s = Server::start().await;
    let key = s.key("grace", 600, None).await;
    let body = b"matrix bytes".to_vec();
    let sha = "0c0a4ba3ecd0c71e5ad1a95b8f3ad5c1e9ce1f70ef0e3da4bba9fbbf4b2d4f4b";
    let put =
        |sha: &str, body: Vec<u8>| s.http.put(s.url(&format!("/v1/blobs/{sha}"))).bearer_auth(&key).body(body).send();
    problem(put(sha, body.clone()).await.unwrap(), ProblemCode::DigestMismatch, "hashes to").await;
    problem(put("ABC", body.clone()).await.unwrap(), ProblemCode::BadQuery, "sha256").await;
    use sha2::Digest;
    let right: String = sha2::Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(put(&right, body.clone()).await.unwrap().status(), StatusCode::CREATED);
    let got = s.http.get(s.url(&format!("/v1/blobs/{right}"))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().as_ref(), body.as_slice());
    let r = s.http.get(s.url(&format!("/v1/blobs/{sha}"))).bearer_auth(&key).send().await.unwrap();
    problem(r, ProblemCode::NotFound, sha).await;
}

#[tokio::test]
async fn quotes_price_by_work_and_refuse_bad_sizes() {
    let s = Server::start().await;
    let key = s.key("heidi", 600, None).await;
    let quote = |q: &str| s.http.get(s.url(&format!("/v1/quote?{q}"))).bearer_auth(&key).send();
    let small: Quote = quote("type=matmul&size=64").await.unwrap().json().await.unwrap();
    let big: Quote = quote("type=matmul&size=1024").await.unwrap().json().await.unwrap();
    assert!(big.price > small.price && big.expected_ms > small.expected_ms);
    assert_eq!(small.basis, "default", "no worker has reported yet");
    assert!(small.min_deadline_secs >= Rules::default().min_lead_secs);
    problem(quote("type=matmul&size=100").await.unwrap(), ProblemCode::InvalidSpec, "power of two").await;
    problem(quote("type=fft&size=64").await.unwrap(), ProblemCode::InvalidSpec, "fft").await;
    problem(quote("type=matmul").await.unwrap(), ProblemCode::BadQuery, "required").await;
}

#[tokio::test]
async fn the_openapi_document_parses_and_lists_every_route() {
    let s = Server::start().await;
    let doc: openapiv3::OpenAPI = s.http.get(s.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
    for route in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/events",
        "/v1/jobs/{id}/proof",
        "/v1/jobs/{id}/cancel",
        "/v1/quote",
        "/v1/workers",
        "/v1/workers/{address}",
        "/v1/blobs/{sha256}",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.contains(&route), "{route} missing from {paths:?}");
    }
    let codes = serde_json::to_string(&doc.components).unwrap();
    for code in [ProblemCode::InvalidSpec, ProblemCode::QuotaExceeded, ProblemCode::RateLimited] {
        assert!(codes.contains(code.as_str()), "{} missing from the Problem schema", code.as_str());
    }
}

#[tokio::test]
async fn metrics_count_jobs_by_state_and_requests_by_route() {
    let s = Server::start().await;
    let key = s.key("ivan", 600, None).await;
    s.submit(&key, &submission(6, 1, 8), None).await;
    s.submit(&key, &submission(6, 2, 3), None).await;
    let text = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("sage_jobs{state=\"submitted\"} 1"), "{text}");
    assert!(text.contains("sage_queue_depth 0"), "{text}");
    assert!(text.contains("sage_api_requests_total{route=\"/v1/jobs\",status=\"201\"} 1"), "{text}");
    assert!(text.contains("sage_api_requests_total{route=\"/v1/jobs\",status=\"422\"} 1"), "{text}");
}

/// `GET /v1/jobs/{id}/output` answers only for a certified job, computes the output once (the
/// coordinator's function) and serves the cached bytes afterwards.
#[tokio::test]
async fn outputs_are_served_only_once_certified_and_computed_once() {
    use sage_jobs::lifecycle::Input;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open(&dir.path().join("jobs.db")).await.unwrap());
    let service = JobService::new(store.clone(), Rules::default());
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut config = ApiConfig::new(dir.path().to_path_buf());
    let counter = calls.clone();
    config.output = Some(Arc::new(move |spec: &JobSpec, _blobs: &[Vec<u8>]| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let JobSpec::Matmul { n, .. } = spec else { return Err("not matmul".into()) };
        Ok((0..n * n).flat_map(|v| v.to_le_bytes()).collect())
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(ApiState::new(service.clone(), config))).await });
    let key = keys::generate("k", 600, None, 0).unwrap();
    store.create_api_key(&key.row).await.unwrap();
    let http = Client::new();
    let view: JobView = http
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(&key.text)
        .json(&submission(9, 1, 4))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let output = || http.get(format!("{base}/v1/jobs/{:#x}/output", view.id)).bearer_auth(&key.text).send();
    problem(output().await.unwrap(), ProblemCode::InvalidState, "certified").await;

    let service = JobService::new(store.clone(), Rules::default());
    let worker = Felt::from(0xa1u8);
    let spec = JobSpec::Matmul { n: 4, seed: Felt::from(5u8) };
    let escrow = Input::EscrowSeen {
        client: view.client,
        spec_hash: spec.spec_hash(),
        payment: u128::MAX,
        deadline: u64::MAX / 2000,
        min_price: 0,
        tx: None,
    };
    service.apply(view.id, escrow, 1).await.unwrap();
    service.apply(view.id, Input::Assigned { worker, tx: Felt::ONE }, 2).await.unwrap();
    let result =
        Input::ResultSubmitted { worker, proof_hash: Felt::TWO, output_commitment: Felt::THREE, tx: Felt::ONE };
    service.apply(view.id, result, 3).await.unwrap();
    problem(output().await.unwrap(), ProblemCode::InvalidState, "result_submitted").await;
    service.apply(view.id, Input::Verdict { valid: true, tx: Felt::ONE }, 4).await.unwrap();

    for _ in 0..2 {
        let r = output().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-sage-output-format"], "u32le-row-major");
        let bytes = r.bytes().await.unwrap();
        let c: Vec<u32> = bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        assert_eq!(c, (0..16).collect::<Vec<u32>>());
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "computed once, then served from the cache");
    let unknown = http.get(format!("{base}/v1/jobs/0x1234/output")).bearer_auth(&key.text).send().await.unwrap();
    problem(unknown, ProblemCode::NotFound, "0x1234").await;
}

/// A `matmul_data` job is taken only once both matrices are uploaded and are n×n canonical M31;
/// VM programs are checked for shape; nothing half-stored on any refusal.
#[tokio::test]
async fn matrices_and_programs_are_checked_before_anything_is_stored() {
    use sha2::Digest;
    let s = Server::start().await;
    let key = s.key("ivan", 600, None).await;
    let hex = |b: &[u8]| -> String { sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect() };
    let matrix = |v: u32| -> Vec<u8> { std::iter::repeat_n(v, 16).flat_map(u32::to_le_bytes).collect() };
    let (a, b, short, wide) = (matrix(1), matrix(2), vec![0u8; 60], matrix(0x7fff_ffff));
    let data = |id: u8, a: &[u8], b: &[u8]| {
        json!({ "client": "0xd1", "client_job_id": format!("{id:#x}"),
                "spec": { "type": "matmul_data", "n": 4, "a": format!("0x{}", hex(a)), "b": format!("0x{}", hex(b)) } })
    };
    let put = |bytes: Vec<u8>| {
        let sha = hex(&bytes);
        s.http.put(s.url(&format!("/v1/blobs/{sha}"))).bearer_auth(&key).body(bytes).send()
    };
    assert_eq!(put(a.clone()).await.unwrap().status(), StatusCode::CREATED);
    problem(s.submit(&key, &data(1, &a, &b), None).await, ProblemCode::InvalidSpec, "not uploaded").await;
    for bytes in [b.clone(), short.clone(), wide.clone()] {
        assert_eq!(put(bytes).await.unwrap().status(), StatusCode::CREATED);
    }
    problem(s.submit(&key, &data(2, &a, &short), None).await, ProblemCode::InvalidSpec, "60 bytes").await;
    problem(s.submit(&key, &data(3, &wide, &b), None).await, ProblemCode::InvalidSpec, "not below 2^31 - 1").await;

    let vm = |id: u8, program: &str| {
        json!({ "client": "0xd1", "client_job_id": format!("{id:#x}"),
                "spec": { "type": "vm", "program": program, "inputs": [1, 2, 3, 4] } })
    };
    // A jnz in a straight-line program; register 4; 7 bytes; upper-case hex.
    let cases = [
        ("0x0700000002000000", ProblemCode::InvalidSpec, "control flow"),
        ("0x0104000100000000", ProblemCode::InvalidSpec, "register 4"),
        ("0x01020001000000", ProblemCode::InvalidSpec, "whole number"),
        ("0x01020001000000AB", ProblemCode::MalformedBody, "lowercase"),
    ];
    for (i, (program, code, mention)) in cases.into_iter().enumerate() {
        problem(s.submit(&key, &vm(10 + i as u8, program), None).await, code, mention).await;
    }
    let away = json!({ "client": "0xd1", "client_job_id": "0x30",
                       "spec": { "type": "vm_jump", "program": "0x0800000005000000", "inputs": [0, 0, 0, 0], "max_steps": 8 } });
    problem(s.submit(&key, &away, None).await, ProblemCode::InvalidSpec, "outside the program").await;
    assert!(s.jobs(&key).await.is_empty(), "no refused job was stored");

    let r = s.submit(&key, &data(4, &a, &b), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.submit(&key, &vm(20, "0x0102000100000000"), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let view: JobView = r.json().await.unwrap();
    assert_eq!(view.spec.type_name(), "vm");
    assert_eq!(s.jobs(&key).await.len(), 2);
    let q: Quote =
        s.http.get(s.url("/v1/quote?type=vm&size=64")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert!(q.price > 0);
    let r = s.http.get(s.url("/v1/quote?type=vm_jump&size=1000000")).bearer_auth(&key).send().await.unwrap();
    problem(r, ProblemCode::InvalidSpec, "max_steps").await;
}
