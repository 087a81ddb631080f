//! The coordinator's HTTP API (axum). Every error is `application/problem+json` with a stable
//! code ([`ProblemCode`]); bodies are read with a size cap before they are parsed; every `/v1`
//! route needs an API key (`Authorization: Bearer sage_…`) and is rate-limited per key.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/jobs` | submit a spec (idempotency key header) |
//! | `GET /v1/jobs` | list (`?client=&state=&limit=`) |
//! | `GET /v1/jobs/{id}` | one job with its history |
//! | `GET /v1/jobs/{id}/events` | server-sent events: every state change, history first |
//! | `GET /v1/jobs/{id}/proof` | the proof envelope (zstd) once the result is in |
//! | `POST /v1/jobs/{id}/cancel` | cancel before assignment |
//! | `GET /v1/quote?type=&size=` | price and expected time |
//! | `GET /v1/workers`, `GET /v1/workers/{address}` | known workers |
//! | `PUT /v1/blobs/{sha256}`, `GET /v1/blobs/{sha256}` | content-addressed inputs |
//! | `GET /healthz`, `GET /metrics`, `GET /openapi.json` | no key needed |

use std::{
    collections::HashMap,
    convert::Infallible,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response, sse},
    routing::{get, post, put},
};
use futures::stream::{self, Stream, StreamExt};
use sage_protocol::{
    Felt, JobSpec, SpecError,
    api::{
        BodyError, IDEMPOTENCY_HEADER, JobList, JobState, MAX_IDEMPOTENCY_KEY, Problem, ProblemCode, Quote, SubmitJob,
        Transition, WorkerView,
    },
};
use serde::Deserialize;

use crate::{
    keys::{self, KeyError},
    lifecycle::{Input, JobRecord, TransitionError},
    scheduler::{Pricing, SchedulerRules, expected_ms},
    service::{JobService, ServiceError, view_of},
    store::{ApiKeyRow, Inserted, Store, StoreError},
};

/// Computes a job's output bytes from its spec (the coordinator supplies it; `sage-jobs` does not
/// link the prover). For a matmul job: `C = A·B` as little-endian `u32`, row-major.
pub type OutputFn = Arc<dyn Fn(&JobSpec, &[Vec<u8>]) -> Result<Vec<u8>, String> + Send + Sync>;

/// Checks a submitted spec with its input blobs beyond the wire rules (the coordinator runs a VM
/// program to see it halt within its budget): `Err` refuses the job with `invalid_spec`, so no
/// worker is ever assigned a job that cannot be proved and charged with its failure.
pub type CheckFn = Arc<dyn Fn(&JobSpec, &[Vec<u8>]) -> Result<(), String> + Send + Sync>;

/// API settings.
#[derive(Clone)]
pub struct ApiConfig {
    /// Where blobs (`blobs/`) and proofs (`proofs/`) live.
    pub data_dir: PathBuf,
    /// Largest JSON body.
    pub max_body_bytes: usize,
    /// Largest blob.
    pub max_blob_bytes: usize,
    /// Prices.
    pub pricing: Pricing,
    /// For expected times in quotes.
    pub scheduler: SchedulerRules,
    /// Longest page of `GET /v1/jobs`.
    pub max_page: u32,
    /// Computes outputs for `GET /v1/jobs/{id}/output` (none: that route answers 404).
    pub output: Option<OutputFn>,
    /// Checks submissions beyond the wire rules (none: the wire rules only).
    pub check: Option<CheckFn>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("data_dir", &self.data_dir)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_blob_bytes", &self.max_blob_bytes)
            .field("max_page", &self.max_page)
            .field("output", &self.output.is_some())
            .field("check", &self.check.is_some())
            .finish_non_exhaustive()
    }
}

impl ApiConfig {
    /// Defaults under `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            max_body_bytes: 64 * 1024,
            max_blob_bytes: 16 * 1024 * 1024,
            pricing: Pricing::default(),
            scheduler: SchedulerRules::default(),
            max_page: 500,
            output: None,
            check: None,
        }
    }

    /// Where the proof envelope of `job` is kept.
    pub fn proof_path(&self, job: Felt) -> PathBuf {
        self.data_dir.join("proofs").join(format!("{job:#x}.sage-proof"))
    }

    /// Where the computed output of `job` is cached.
    pub fn output_path(&self, job: Felt) -> PathBuf {
        self.data_dir.join("outputs").join(format!("{job:#x}.u32le"))
    }
}

/// Request counters for `/metrics`.
#[derive(Debug, Default)]
struct Metrics {
    /// (route, status) → count.
    requests: HashMap<(String, u16), u64>,
    /// route → (count, total seconds, buckets).
    latency: HashMap<String, (u64, f64, [u64; LATENCY_BUCKETS.len()])>,
}

const LATENCY_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// A token bucket per API key.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Inner {
    service: JobService,
    config: ApiConfig,
    buckets: Mutex<HashMap<i64, Bucket>>,
    metrics: Mutex<Metrics>,
}

/// Shared state of the API.
#[derive(Debug, Clone)]
pub struct ApiState(Arc<Inner>);

impl ApiState {
    /// API over `service` with `config`.
    pub fn new(service: JobService, config: ApiConfig) -> Self {
        Self(Arc::new(Inner {
            service,
            config,
            buckets: Mutex::new(HashMap::new()),
            metrics: Mutex::new(Metrics::default()),
        }))
    }
}

/// An API error: a problem document.
#[derive(Debug)]
pub struct ApiError(Problem);

impl ApiError {
    fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self(Problem::new(code, detail))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.0.code == ProblemCode::RateLimited {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdempotencyReuse(_) | StoreError::JobExists(_) | StoreError::Conflict(_) => {
                Self::new(ProblemCode::Conflict, e.to_string())
            }
            StoreError::QuotaExceeded(_) => Self::new(ProblemCode::QuotaExceeded, e.to_string()),
            other => {
                tracing::error!(error = %other, "store failed");
                Self::new(ProblemCode::Internal, "the coordinator's store failed; nothing was stored")
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(id) => Self::new(ProblemCode::NotFound, format!("no job {id:#x}")),
            ServiceError::Transition(t @ TransitionError::InvalidState { .. }) => {
                Self::new(ProblemCode::InvalidState, t.to_string())
            }
            ServiceError::Transition(t) => Self::new(ProblemCode::InvalidState, t.to_string()),
            ServiceError::Store(s) => s.into(),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn parse_felt(what: &str, text: &str) -> ApiResult<Felt> {
    let ok = text
        .strip_prefix("0x")
        .is_some_and(|d| !d.is_empty() && d.len() <= 64 && d.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| Felt::from_hex(text).ok())
        .flatten()
        .ok_or_else(|| ApiError::new(ProblemCode::BadQuery, format!("{what} {text:?} is not a 0x-hex felt")))
}

fn now_ms() -> u64 {
    crate::now_ms()
}

/// The router with every route.
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/v1/jobs", post(submit_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/events", get(job_events))
        .route("/v1/jobs/{id}/proof", get(job_proof))
        .route("/v1/jobs/{id}/output", get(job_output))
        .route("/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/quote", get(quote))
        .route("/v1/workers", get(list_workers))
        .route("/v1/workers/{address}", get(get_worker))
        .route("/v1/blobs/{sha256}", put(put_blob).get(get_blob))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .merge(v1)
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { json(StatusCode::OK, &crate::openapi::document()) }))
        .fallback(|| async { ApiError::new(ProblemCode::NotFound, "no such route") })
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state)
}

async fn measure(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let secs = started.elapsed().as_secs_f64();
    if let Ok(mut m) = state.0.metrics.lock() {
        *m.requests.entry((route.clone(), response.status().as_u16())).or_default() += 1;
        let entry = m.latency.entry(route).or_insert((0, 0.0, [0; LATENCY_BUCKETS.len()]));
        entry.0 += 1;
        entry.1 += secs;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                entry.2[i] += 1;
            }
        }
    }
    response
}

async fn authorize(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    match check_key(&state, request.headers()).await {
        Ok(key) => {
            request.extensions_mut().insert(key);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn check_key(state: &ApiState, headers: &HeaderMap) -> ApiResult<ApiKeyRow> {
    let text = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::new(ProblemCode::Unauthorized, "missing Authorization: Bearer <API key>"))?;
    let (prefix, secret) = keys::parse(text).map_err(|e| ApiError::new(ProblemCode::Unauthorized, e.to_string()))?;
    let row = state
        .0
        .service
        .store()
        .api_key(prefix)
        .await?
        .ok_or_else(|| ApiError::new(ProblemCode::Unauthorized, KeyError::Unknown.to_string()))?;
    keys::check(&row, secret).map_err(|e| ApiError::new(ProblemCode::Unauthorized, e.to_string()))?;
    // Token bucket: `rate_per_min` tokens, refilled continuously.
    let capacity = f64::from(row.rate_per_min.max(1));
    let mut buckets =
        state.0.buckets.lock().map_err(|_| ApiError::new(ProblemCode::Internal, "rate limiter poisoned"))?;
    let now = Instant::now();
    let bucket = buckets.entry(row.id).or_insert(Bucket { tokens: capacity, at: now });
    bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * capacity / 60.0).min(capacity);
    bucket.at = now;
    if bucket.tokens < 1.0 {
        return Err(ApiError::new(
            ProblemCode::RateLimited,
            format!("API key {} is limited to {} requests a minute", row.prefix, row.rate_per_min),
        ));
    }
    bucket.tokens -= 1.0;
    Ok(row)
}

async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::new(ProblemCode::BodyTooLarge, format!("body exceeds {limit} bytes")))
}

async fn submit_job(
    State(state): State<ApiState>,
    axum::Extension(key): axum::Extension<ApiKeyRow>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let idem = match headers.get(IDEMPOTENCY_HEADER) {
        None => None,
        Some(v) => {
            let text =
                v.to_str().ok().filter(|t| !t.is_empty() && t.len() <= MAX_IDEMPOTENCY_KEY).ok_or_else(|| {
                    ApiError::new(
                        ProblemCode::MalformedBody,
                        format!("{IDEMPOTENCY_HEADER} must be 1..={MAX_IDEMPOTENCY_KEY} visible characters"),
                    )
                })?;
            Some(text.to_owned())
        }
    };
    let bytes = read_body(body, state.0.config.max_body_bytes).await?;
    let submit = SubmitJob::from_json(&bytes).map_err(|e| match e {
        BodyError::InvalidSpec(spec) => ApiError::new(ProblemCode::InvalidSpec, spec.to_string()),
        malformed => ApiError::new(ProblemCode::MalformedBody, malformed.to_string()),
    })?;
    let blobs = check_blobs(state.0.service.store().as_ref(), &submit.spec)
        .await?
        .map_err(|e| ApiError::new(ProblemCode::InvalidSpec, e.to_string()))?;
    if let Some(check) = state.0.config.check.clone() {
        let spec = submit.spec.clone();
        tokio::task::spawn_blocking(move || check(&spec, &blobs))
            .await
            .map_err(|e| ApiError::new(ProblemCode::Internal, format!("spec check task: {e}")))?
            .map_err(|e| ApiError::new(ProblemCode::InvalidSpec, e))?;
    }
    let job = JobRecord::submitted(submit.client, submit.client_job_id, submit.spec);
    let first = job.first_transition(now_ms());
    let store = state.0.service.store();
    match store.insert_job(&job, &first, Some(key.id), idem.as_deref()).await? {
        Inserted::Created(job) => {
            state.0.service.publish(std::slice::from_ref(&first));
            Ok(json(StatusCode::CREATED, &view_of(job, vec![first])))
        }
        Inserted::Existing(job) => {
            let history = store.history(job.id, 0).await?;
            Ok(json(StatusCode::OK, &view_of(job, history)))
        }
    }
}

/// The blobs `spec` reads ([`JobSpec::blobs`], in order), from the store.
pub async fn read_blobs(store: &dyn Store, spec: &JobSpec) -> Result<Vec<Vec<u8>>, ApiError> {
    let mut out = Vec::new();
    for sha in spec.blobs() {
        let hex = sage_protocol::hex32::lower_hex(&sha);
        let bytes = store.blob(&hex).await?.ok_or_else(|| {
            ApiError::new(ProblemCode::Internal, format!("input blob {hex} is missing from the store"))
        })?;
        out.push(bytes);
    }
    Ok(out)
}

/// The input blobs `spec` names must be stored already (uploaded with `PUT /v1/blobs`) and be
/// the matrices it needs: a job is never queued with inputs nobody can fetch. Returns them, in
/// [`JobSpec::blobs`] order, for the submission's further checks.
pub async fn check_blobs(store: &dyn Store, spec: &JobSpec) -> Result<Result<Vec<Vec<u8>>, SpecError>, StoreError> {
    let JobSpec::MatmulData { n, .. } = spec else { return Ok(Ok(Vec::new())) };
    let mut blobs = Vec::new();
    for (which, sha) in ["a", "b"].into_iter().zip(spec.blobs()) {
        let hex = sage_protocol::hex32::lower_hex(&sha);
        let Some(bytes) = store.blob(&hex).await? else {
            return Ok(Err(SpecError::Blob {
                which,
                sha256: hex.clone(),
                reason: format!("not uploaded; PUT /v1/blobs/{hex} first"),
            }));
        };
        if let Err(e) = sage_protocol::spec::check_matrix_blob(*n, which, &sha, &bytes) {
            return Ok(Err(e));
        }
        blobs.push(bytes);
    }
    Ok(Ok(blobs))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    client: Option<String>,
    state: Option<String>,
    limit: Option<u32>,
}

async fn list_jobs(
    State(state): State<ApiState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::new(ProblemCode::BadQuery, e.body_text()))?;
    let client = q.client.as_deref().map(|c| parse_felt("client", c)).transpose()?;
    let job_state = q
        .state
        .as_deref()
        .map(|s| JobState::parse(s).ok_or_else(|| ApiError::new(ProblemCode::BadQuery, format!("unknown state {s:?}"))))
        .transpose()?;
    let limit = q.limit.unwrap_or(50).min(state.0.config.max_page);
    let store = state.0.service.store();
    let page = store.list_jobs(client, job_state, limit).await?;
    let ids: Vec<Felt> = page.iter().map(|j| j.id).collect();
    // One query for the page's histories (not one per job).
    let mut histories = store.histories(&ids).await?;
    let jobs = page
        .into_iter()
        .map(|job| {
            let history = histories.remove(&job.id).unwrap_or_default();
            view_of(job, history)
        })
        .collect();
    Ok(json(StatusCode::OK, &JobList { jobs }))
}

async fn get_job(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_felt("job id", &id)?;
    Ok(json(StatusCode::OK, &state.0.service.view(id).await?))
}

async fn cancel_job(
    State(state): State<ApiState>,
    axum::Extension(key): axum::Extension<ApiKeyRow>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_felt("job id", &id)?;
    // Only the key that submitted a job may cancel it; to any other key it does not exist.
    if state.0.service.store().job_api_key(id).await? != Some(Some(key.id)) {
        return Err(ApiError::new(ProblemCode::NotFound, format!("no job {id:#x} submitted with this API key")));
    }
    state.0.service.apply(id, Input::Cancel, now_ms()).await?;
    Ok(json(StatusCode::OK, &state.0.service.view(id).await?))
}

/// The job a path names, or the problem saying why not.
async fn job_at(state: &ApiState, id: &str) -> ApiResult<crate::lifecycle::JobRecord> {
    let id = parse_felt("job id", id)?;
    state
        .0
        .service
        .store()
        .job(id)
        .await?
        .ok_or_else(|| ApiError::new(ProblemCode::NotFound, format!("no job {id:#x}")))
}

async fn job_proof(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let job = job_at(&state, &id).await?;
    let id = job.id;
    let path = state.0.config.proof_path(id);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            Ok(response)
        }
        Err(_) => {
            Err(ApiError::new(ProblemCode::NotFound, format!("job {id:#x} is {} and has no stored proof", job.state)))
        }
    }
}

/// The output of a certified job (its proof judged valid on-chain), computed once and cached.
/// Clients check it against the proof's output commitment (`sage-sdk` does).
async fn job_output(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let job = job_at(&state, &id).await?;
    let id = job.id;
    if !matches!(job.state, JobState::Certified | JobState::Paid) {
        return Err(ApiError::new(
            ProblemCode::InvalidState,
            format!("job {id:#x} is {}: its output is served once its proof is certified valid", job.state),
        ));
    }
    let Some(compute) = state.0.config.output.clone() else {
        return Err(ApiError::new(ProblemCode::NotFound, "this coordinator does not serve outputs"));
    };
    let path = state.0.config.output_path(id);
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let spec = job.spec.clone();
            let blobs = read_blobs(state.0.service.store().as_ref(), &spec).await?;
            let bytes = tokio::task::spawn_blocking(move || compute(&spec, &blobs))
                .await
                .map_err(|e| ApiError::new(ProblemCode::Internal, format!("output task: {e}")))?
                .map_err(|e| ApiError::new(ProblemCode::Internal, format!("computing the output: {e}")))?;
            // Written whole, then renamed: a reader never sees a partial file.
            if let Some(dir) = path.parent() {
                let _ = tokio::fs::create_dir_all(dir).await;
            }
            let tmp = path.with_extension("tmp");
            if tokio::fs::write(&tmp, &bytes).await.is_ok() {
                let _ = tokio::fs::rename(&tmp, &path).await;
            }
            bytes
        }
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response.headers_mut().insert("x-sage-output-format", HeaderValue::from_static("u32le-row-major"));
    Ok(response)
}

async fn job_events(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_felt("job id", &id)?;
    // Subscribe before reading the history, so no transition falls between the two.
    let live = state.0.service.subscribe();
    let store = state.0.service.store();
    store.job(id).await?.ok_or_else(|| ApiError::new(ProblemCode::NotFound, format!("no job {id:#x}")))?;
    let history = store.history(id, 0).await?;
    Ok(sse::Sse::new(event_stream(id, history, live)).keep_alive(sse::KeepAlive::default()).into_response())
}

fn to_event(t: &Transition) -> sse::Event {
    sse::Event::default().event("state").id(t.seq.to_string()).data(serde_json::to_string(t).unwrap_or_default())
}

/// History first, then live transitions of `id` (skipping any already sent); ends after a
/// terminal state.
fn event_stream(
    id: Felt,
    history: Vec<Transition>,
    live: tokio::sync::broadcast::Receiver<Transition>,
) -> impl Stream<Item = Result<sse::Event, Infallible>> {
    let done = history.iter().any(|t| t.state.is_terminal());
    let next_seq = history.last().map_or(0, |t| t.seq + 1);
    let past = stream::iter(history.into_iter().map(|t| Ok(to_event(&t))));
    let future = stream::unfold((live, next_seq, done), move |(mut rx, mut next, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok(t) if t.job_id == id && t.seq >= next => {
                    next = t.seq + 1;
                    let end = t.state.is_terminal();
                    return Some((Ok(to_event(&t)), (rx, next, end)));
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let event = sse::Event::default().event("lagged").data("events were dropped; re-read the job");
                    return Some((Ok(event), (rx, next, false)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    past.chain(future)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteQuery {
    #[serde(rename = "type")]
    job_type: Option<String>,
    size: Option<u32>,
}

async fn quote(
    State(state): State<ApiState>,
    query: Result<Query<QuoteQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::new(ProblemCode::BadQuery, e.body_text()))?;
    let (Some(job_type), Some(size)) = (q.job_type, q.size) else {
        return Err(ApiError::new(ProblemCode::BadQuery, "type and size are required"));
    };
    let spec = JobSpec::for_quote(&job_type, size)
        .ok_or_else(|| ApiError::new(ProblemCode::InvalidSpec, format!("unknown job type {job_type:?}")))?;
    spec.validate().map_err(|e| ApiError::new(ProblemCode::InvalidSpec, e.to_string()))?;
    let workers = state.0.service.store().workers().await?;
    let (ms, units) = workers.iter().fold((0u64, 0u128), |(m, w), r| (m + r.prove_ms_sum, w + r.work_sum));
    let (throughput, basis) = if ms > 0 && units > 0 {
        (units as f64 / ms as f64, "measured")
    } else {
        (state.0.config.scheduler.default_throughput, "default")
    };
    let expected = expected_ms(&spec, throughput);
    let lead = (expected as f64 * state.0.config.scheduler.safety / 1000.0).ceil() as u64;
    let quote = Quote {
        job_type,
        size,
        price: state.0.config.pricing.price(&spec),
        expected_ms: expected,
        basis: basis.into(),
        min_deadline_secs: lead.max(state.0.service.rules().min_lead_secs),
    };
    Ok(json(StatusCode::OK, &quote))
}

fn worker_view(w: crate::store::WorkerRow, active: u32) -> WorkerView {
    WorkerView {
        address: w.address,
        public_key: w.public_key,
        tier: w.tier,
        capacity: w.capacity,
        active,
        last_seen_ms: w.last_seen_ms,
        completed: w.completed,
        failed: w.failed,
    }
}

async fn active_counts(state: &ApiState) -> ApiResult<HashMap<Felt, u32>> {
    Ok(state.0.service.store().active_by_worker().await?)
}

async fn list_workers(State(state): State<ApiState>) -> ApiResult<Response> {
    let active = active_counts(&state).await?;
    let workers: Vec<WorkerView> = state
        .0
        .service
        .store()
        .workers()
        .await?
        .into_iter()
        .map(|w| {
            let n = active.get(&w.address).copied().unwrap_or(0);
            worker_view(w, n)
        })
        .collect();
    Ok(json(StatusCode::OK, &workers))
}

async fn get_worker(State(state): State<ApiState>, Path(address): Path<String>) -> ApiResult<Response> {
    let address = parse_felt("worker address", &address)?;
    let w = state
        .0
        .service
        .store()
        .worker(address)
        .await?
        .ok_or_else(|| ApiError::new(ProblemCode::NotFound, format!("no worker {address:#x}")))?;
    let n = active_counts(&state).await?.get(&address).copied().unwrap_or(0);
    Ok(json(StatusCode::OK, &worker_view(w, n)))
}

fn check_sha(sha: &str) -> ApiResult<()> {
    if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(ApiError::new(ProblemCode::BadQuery, format!("{sha:?} is not a lowercase hex sha256")))
    }
}

async fn put_blob(State(state): State<ApiState>, Path(sha): Path<String>, body: Body) -> ApiResult<Response> {
    check_sha(&sha)?;
    let bytes = read_body(body, state.0.config.max_blob_bytes).await?;
    let digest = keys::sha256_hex(&bytes);
    if digest != sha {
        return Err(ApiError::new(ProblemCode::DigestMismatch, format!("body hashes to {digest}, not {sha}")));
    }
    state.0.service.store().put_blob(&sha, &bytes).await?;
    Ok(json(StatusCode::CREATED, &serde_json::json!({ "sha256": sha, "bytes": bytes.len() })))
}

async fn get_blob(State(state): State<ApiState>, Path(sha): Path<String>) -> ApiResult<Response> {
    check_sha(&sha)?;
    let bytes = state
        .0
        .service
        .store()
        .blob(&sha)
        .await?
        .ok_or_else(|| ApiError::new(ProblemCode::NotFound, format!("no blob {sha}")))?;
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(response)
}

async fn metrics(State(state): State<ApiState>) -> ApiResult<Response> {
    use std::fmt::Write;
    let counts = state.0.service.store().count_by_state().await?;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP sage_jobs Jobs by state.\n# TYPE sage_jobs gauge");
    for s in JobState::ALL {
        let n = counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "sage_jobs{{state=\"{s}\"}} {n}");
    }
    let depth = counts.iter().filter(|(s, _)| *s == JobState::Queued).map(|(_, n)| n).sum::<u64>();
    let _ = writeln!(
        out,
        "# HELP sage_queue_depth Jobs waiting for a worker.\n# TYPE sage_queue_depth gauge\nsage_queue_depth {depth}"
    );
    let m = state.0.metrics.lock().map_err(|_| ApiError::new(ProblemCode::Internal, "metrics poisoned"))?;
    let _ = writeln!(
        out,
        "# HELP sage_api_requests_total API requests by route and status.\n# TYPE sage_api_requests_total counter"
    );
    let mut requests: Vec<_> = m.requests.iter().collect();
    requests.sort();
    for ((route, status), n) in requests {
        let _ = writeln!(out, "sage_api_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP sage_api_latency_seconds API latency by route.\n# TYPE sage_api_latency_seconds histogram"
    );
    let mut latency: Vec<_> = m.latency.iter().collect();
    latency.sort_by(|a, b| a.0.cmp(b.0));
    for (route, (count, sum, buckets)) in latency {
        for (bound, n) in LATENCY_BUCKETS.iter().zip(buckets) {
            let _ = writeln!(out, "sage_api_latency_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "sage_api_latency_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "sage_api_latency_seconds_sum{{route=\"{route}\"}} {sum}");
        let _ = writeln!(out, "sage_api_latency_seconds_count{{route=\"{route}\"}} {count}");
    }
    let mut response = (StatusCode::OK, out).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    Ok(response)
}
