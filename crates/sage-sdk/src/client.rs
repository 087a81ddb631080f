//! The client: REST calls with retries on transient failures only, the client's own escrow, and
//! verification on this machine.

use sage_protocol::spec::MAX_MATRIX_BLOB_BYTES;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::{Stream, StreamExt};
use reqwest::Method;
use sage_chain::{
    ChainClient, SageAccount,
    contracts::{Deployment, JobStatus, RecordedVerdict},
};
use sage_protocol::{
    Felt, JobSpec,
    api::{IDEMPOTENCY_HEADER, JobList, JobState, JobView, Problem, Quote, SubmitJob, Transition, WorkerView},
};
use serde::de::DeserializeOwned;

use crate::SdkError;

/// Which proofs [`Client::verify`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// At least 96 bits (what validators require on a real network).
    #[default]
    Production,
    /// Test-level proofs (local test networks only).
    Test,
}

/// Builds a [`Client`].
#[derive(Default)]
pub struct ClientBuilder {
    url: Option<String>,
    api_key: Option<String>,
    timeout: Option<Duration>,
    retries: Option<u32>,
    account: Option<(SageAccount, Deployment)>,
    chain: Option<(ChainClient, Deployment)>,
    security: Security,
}

impl std::fmt::Debug for ClientBuilder {
    // The API key is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("account", &self.account.as_ref().map(|(a, _)| a.address()))
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder with the defaults: 30 s per request, 3 retries on transient failures,
    /// production security.
    pub fn new() -> Self {
        Self::default()
    }

    /// The coordinator's base URL (`http://host:8640`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The API key the coordinator's operator issued.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Per-request timeout (event streams are bounded by [`Client::wait`]'s own timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retries of a request that failed transiently (unreachable, 5xx, rate limited), with
    /// exponential backoff from 200 ms.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// The client's own account and the deployment: escrow (`approve` + `create_job` in one
    /// multicall), cancel, and the chain reads verification needs.
    pub fn account(mut self, account: SageAccount, contracts: Deployment) -> Self {
        self.account = Some((account, contracts));
        self
    }

    /// Read-only chain access for a client that only follows and verifies jobs (no escrow,
    /// no cancel). [`account`](Self::account) includes it.
    pub fn chain(mut self, client: ChainClient, contracts: Deployment) -> Self {
        self.chain = Some((client, contracts));
        self
    }

    /// Which proofs verification accepts.
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, SdkError> {
        let url = self.url.ok_or_else(|| SdkError::Config("no coordinator URL (ClientBuilder::url)".into()))?;
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SdkError::Config(format!("coordinator URL {url:?} must start with http:// or https://")));
        }
        let api_key = self.api_key.filter(|k| !k.trim().is_empty()).ok_or_else(|| {
            SdkError::Config("no API key (ClientBuilder::api_key; ask the coordinator's operator for one)".into())
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SdkError::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                api_key,
                timeout: self.timeout.unwrap_or(Duration::from_secs(30)),
                retries: self.retries.unwrap_or(3),
                chain: self.chain.or_else(|| self.account.as_ref().map(|(a, c)| (a.client().clone(), *c))),
                account: self.account,
                security: self.security,
                specs: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// A connection to one coordinator (cheap to clone).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.base)
            .field("account", &self.inner.account.as_ref().map(|(a, _)| a.address()))
            .field("security", &self.inner.security)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    api_key: String,
    timeout: Duration,
    retries: u32,
    account: Option<(SageAccount, Deployment)>,
    chain: Option<(ChainClient, Deployment)>,
    security: Security,
    /// Specs this client submitted: verification checks against these, not the served copy.
    specs: Mutex<HashMap<Felt, JobSpec>>,
}

/// Options of [`Client::submit`].
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    payment: Option<u128>,
    deadline_secs: u64,
    idempotency_key: Option<String>,
    client_job_id: Option<Felt>,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        Self { payment: None, deadline_secs: 3600, idempotency_key: None, client_job_id: None }
    }
}

impl SubmitOptions {
    /// Escrow this much (SAGE base units) instead of the coordinator's quote.
    pub fn payment(mut self, base_units: u128) -> Self {
        self.payment = Some(base_units);
        self
    }

    /// Seconds from now to the escrow's deadline (default one hour).
    pub fn deadline_secs(mut self, secs: u64) -> Self {
        self.deadline_secs = secs;
        self
    }

    /// A key of yours that makes the submission idempotent: the client job id is derived from
    /// it, so a retried submit finds the same job and the same escrow and pays nothing twice.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Use this client job id (the job id is `poseidon(account, client_job_id)`); a resubmission
    /// with the same id is idempotent like one with the same key.
    pub fn client_job_id(mut self, id: Felt) -> Self {
        self.client_job_id = Some(id);
        self
    }
}

/// What [`Client::submit`] did.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// Job id (`poseidon(client, client_job_id)`).
    pub id: Felt,
    /// The client's id for it.
    pub client_job_id: Felt,
    /// Escrowed amount, SAGE base units.
    pub payment: u128,
    /// The escrow transaction; `None` when an earlier attempt with the same idempotency key had
    /// already escrowed it (nothing was paid this time).
    pub escrow_tx: Option<Felt>,
    /// The job as the coordinator recorded it.
    pub view: JobView,
}

/// A result the client checked itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Job.
    pub job: Felt,
    /// The worker the chain recorded (the proof is bound to it).
    pub worker: Felt,
    /// Security of the proof.
    pub security_bits: u32,
    /// Proof hash, as the chain records it.
    pub proof_hash: Felt,
    /// Envelope size.
    pub bytes: usize,
    /// Whether the worker has been paid on-chain.
    pub paid: bool,
    /// The coordinator's state for the job.
    pub state: JobState,
    /// The spec the proof was verified for (it hashes to the escrow's `spec_hash`).
    pub spec: JobSpec,
}

/// How [`Client::wait`] ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outcome {
    /// Certified valid on-chain and verified on this machine.
    Certified(Verified),
    /// Certified invalid: the worker was slashed and the escrow refunded.
    Rejected(JobView),
    /// Deadline passed (or no verdict within the grace): refunded.
    Expired(JobView),
    /// Cancelled before assignment: refunded.
    Cancelled(JobView),
    /// Retry budget spent: refunded.
    Failed(JobView),
    /// Still running when the timeout came; the last state seen.
    TimedOut(Option<JobState>),
}

fn hex(id: Felt) -> String {
    id.to_hex_string()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The client job id an idempotency key stands for: the first 31 bytes of
/// `sha256("sage-sdk/client-job-id/" ‖ key)`.
fn client_job_id_for(key: &str) -> Felt {
    use sha2::Digest;
    let digest = sha2::Sha256::new().chain_update(b"sage-sdk/client-job-id/").chain_update(key.as_bytes()).finalize();
    Felt::from_bytes_be_slice(&digest[..31])
}

impl Client {
    fn account(&self) -> Result<&(SageAccount, Deployment), SdkError> {
        self.inner.account.as_ref().ok_or(SdkError::NoAccount)
    }

    fn chain(&self) -> Result<(&ChainClient, &Deployment), SdkError> {
        let (client, contracts) = self.inner.chain.as_ref().ok_or(SdkError::NoChain)?;
        Ok((client, contracts))
    }

    /// Sends a request, retrying transient failures with exponential backoff.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Body<'_>>,
        idempotency: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, SdkError> {
        let url = format!("{}{path}", self.inner.base);
        let mut attempt = 0;
        loop {
            let mut request = self.inner.http.request(method.clone(), &url).bearer_auth(&self.inner.api_key);
            if let Some(t) = timeout.or(Some(self.inner.timeout)) {
                request = request.timeout(t);
            }
            if let Some(key) = idempotency {
                request = request.header(IDEMPOTENCY_HEADER, key);
            }
            match body {
                Some(Body::Json(b)) => request = request.json(b),
                Some(Body::Bytes(b)) => request = request.body(b.to_vec()),
                None => {}
            }
            let err = match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) => problem(r).await,
                Err(e) => SdkError::Unreachable { url: self.inner.base.clone(), source: e },
            };
            if !err.is_transient() || attempt >= self.inner.retries {
                return Err(err);
            }
            let wait = Duration::from_millis(200u64 << attempt.min(6));
            tracing::debug!(%path, attempt, error = %err, ?wait, "transient failure; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, what: &'static str) -> Result<T, SdkError> {
        let r = self.send(Method::GET, path, None, None, None).await?;
        r.json().await.map_err(|e| SdkError::Decode { what, reason: e.to_string() })
    }

    /// Price and expected time of a job (by its type and size).
    pub async fn quote(&self, spec: &JobSpec) -> Result<Quote, SdkError> {
        spec.validate()?;
        self.get(&format!("/v1/quote?type={}&size={}", spec.type_name(), spec.size()), "quote").await
    }

    /// Uploads a content-addressed input blob (`PUT /v1/blobs/{sha256}`); returns its sha256.
    /// Uploading the same bytes again is harmless.
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<[u8; 32], SdkError> {
        use sha2::Digest;
        let sha: [u8; 32] = sha2::Sha256::digest(bytes).into();
        let path = format!("/v1/blobs/{}", sage_protocol::hex32::lower_hex(&sha));
        self.send(Method::PUT, &path, Some(Body::Bytes(bytes)), None, None).await?;
        Ok(sha)
    }

    /// A `matmul_data` spec for the client's own n×n matrices (row-major, each entry below
    /// 2^31 − 1): checks them, uploads both as blobs and names them by digest.
    pub async fn matmul_data(&self, n: u32, a: &[u32], b: &[u32]) -> Result<JobSpec, SdkError> {
        let bytes = |m: &[u32]| -> Vec<u8> { m.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let (a, b) = (bytes(a), bytes(b));
        for (which, m) in [("a", &a), ("b", &b)] {
            sage_protocol::spec::check_matrix_blob(n, which, &[0; 32], m)?;
        }
        let spec = JobSpec::MatmulData { n, a: self.put_blob(&a).await?, b: self.put_blob(&b).await? };
        spec.validate()?;
        Ok(spec)
    }

    /// The input blobs `spec` names, from the coordinator (checked against their digests when the
    /// job is built).
    async fn blobs(&self, spec: &JobSpec) -> Result<Vec<Vec<u8>>, SdkError> {
        let mut out = Vec::new();
        for sha in spec.blobs() {
            let path = format!("/v1/blobs/{}", sage_protocol::hex32::lower_hex(&sha));
            let mut r = self.send(Method::GET, &path, None, None, None).await?;
            // Read with a cap (an n = 1024 matrix) whatever the headers claim.
            let mut bytes = Vec::new();
            while let Some(chunk) =
                r.chunk().await.map_err(|e| SdkError::Decode { what: "blob", reason: e.to_string() })?
            {
                if bytes.len() + chunk.len() > MAX_MATRIX_BLOB_BYTES {
                    return Err(SdkError::Decode {
                        what: "blob",
                        reason: format!("larger than {MAX_MATRIX_BLOB_BYTES} bytes"),
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            out.push(bytes);
        }
        Ok(out)
    }

    /// Uploads the spec and escrows it from the client's account (`approve` + `create_job` in
    /// one multicall, at the quote unless [`SubmitOptions::payment`]). Returns as soon as the
    /// escrow lands; the coordinator queues the job when it sees it.
    ///
    /// With an idempotency key, a retry after any failure (even a lost response after the escrow
    /// landed) finds the same job and escrows nothing twice.
    pub async fn submit(&self, spec: &JobSpec, options: SubmitOptions) -> Result<Submitted, SdkError> {
        spec.validate()?;
        let (account, contracts) = self.account()?;
        let client_job_id = match (&options.client_job_id, &options.idempotency_key) {
            (Some(id), _) => *id,
            (None, Some(key)) => client_job_id_for(key),
            (None, None) => {
                let mut bytes = [0u8; 31];
                getrandom::fill(&mut bytes).map_err(|e| SdkError::Randomness(e.to_string()))?;
                Felt::from_bytes_be_slice(&bytes)
            }
        };
        let id = sage_protocol::job_id(account.address(), client_job_id);
        let payment = match options.payment {
            Some(p) => p,
            None => self.quote(spec).await?.price,
        };
        let key = options.idempotency_key.clone().unwrap_or_else(|| hex(client_job_id));
        let view = self.upload(account.address(), client_job_id, spec, &key).await?;
        if view.id != id || view.spec != *spec {
            return Err(SdkError::Verification {
                job: id,
                reason: format!("the coordinator recorded job {:#x} with spec {:?}", view.id, view.spec),
            });
        }
        self.inner.specs.lock().map_err(|_| SdkError::Config("spec cache poisoned".into()))?.insert(id, spec.clone());
        // The chain decides whether this attempt must pay: an earlier one may have escrowed it.
        let existing = contracts.jobs.get_job(account.client(), id).await?;
        let escrow_tx = if existing.status == JobStatus::None {
            let out = contracts
                .jobs
                .create_job(
                    account,
                    contracts.token,
                    client_job_id,
                    spec.spec_hash(),
                    payment,
                    now_secs() + options.deadline_secs,
                )
                .await?;
            Some(out.tx_hash)
        } else if existing.spec_hash != spec.spec_hash() || existing.client != account.address() {
            return Err(SdkError::EscrowConflict {
                job: id,
                reason: format!("escrowed spec hash {:#x}, this spec {:#x}", existing.spec_hash, spec.spec_hash()),
            });
        } else {
            None
        };
        let payment = if escrow_tx.is_some() { payment } else { existing.payment };
        Ok(Submitted { id, client_job_id, payment, escrow_tx, view })
    }

    /// The first half of [`submit`](Self::submit): records the job with the coordinator
    /// (`POST /v1/jobs`, idempotent under `idempotency_key`) without escrowing it. The coordinator
    /// queues it only once the escrow for its id appears on-chain.
    pub async fn upload(
        &self,
        client: Felt,
        client_job_id: Felt,
        spec: &JobSpec,
        idempotency_key: &str,
    ) -> Result<JobView, SdkError> {
        spec.validate()?;
        let body = serde_json::to_value(SubmitJob { client, client_job_id, spec: spec.clone() })
            .map_err(|e| SdkError::Decode { what: "job submission", reason: e.to_string() })?;
        self.send(Method::POST, "/v1/jobs", Some(Body::Json(&body)), Some(idempotency_key), None)
            .await?
            .json()
            .await
            .map_err(|e| SdkError::Decode { what: "job", reason: e.to_string() })
    }

    /// The job as the coordinator sees it, with its history.
    pub async fn status(&self, id: Felt) -> Result<JobView, SdkError> {
        self.get(&format!("/v1/jobs/{}", hex(id)), "job").await
    }

    /// This client's jobs (newest first), with their escrows.
    pub async fn jobs(&self, limit: u32) -> Result<Vec<JobView>, SdkError> {
        let (account, _) = self.account()?;
        self.list(None, Some(account.address()), limit).await
    }

    /// Recent jobs on the coordinator (newest first), optionally only in one state or of one
    /// client.
    pub async fn list(
        &self,
        state: Option<JobState>,
        client: Option<Felt>,
        limit: u32,
    ) -> Result<Vec<JobView>, SdkError> {
        let mut path = format!("/v1/jobs?limit={limit}");
        if let Some(s) = state {
            path.push_str(&format!("&state={}", s.as_str()));
        }
        if let Some(c) = client {
            path.push_str(&format!("&client={}", hex(c)));
        }
        let list: JobList = self.get(&path, "job list").await?;
        Ok(list.jobs)
    }

    /// The job's state changes as they happen (server-sent events; the history first).
    pub async fn events(&self, id: Felt) -> Result<impl Stream<Item = Result<Transition, SdkError>> + use<>, SdkError> {
        // No per-request timeout: the stream lasts as long as the job.
        let response =
            self.send(Method::GET, &format!("/v1/jobs/{}/events", hex(id)), None, None, Some(Duration::MAX)).await?;
        let base = self.inner.base.clone();
        let bytes = response.bytes_stream();
        Ok(futures::stream::unfold((bytes, String::new(), base), |(mut bytes, mut buffer, base)| async move {
            loop {
                if let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
                    let item = serde_json::from_str::<Transition>(data.trim())
                        .map_err(|e| SdkError::Decode { what: "job event", reason: e.to_string() });
                    return Some((item, (bytes, buffer, base)));
                }
                match bytes.next().await? {
                    Ok(chunk) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
                    Err(e) => {
                        return Some((
                            Err(SdkError::Unreachable { url: base.clone(), source: e }),
                            (bytes, buffer, base),
                        ));
                    }
                }
            }
        }))
    }

    /// Waits up to `timeout` for the job to end; a valid result is returned only once
    /// [`verify`](Self::verify) passed.
    pub async fn wait(&self, id: Felt, timeout: Duration) -> Result<Outcome, SdkError> {
        self.wait_with(id, timeout, |_| {}).await
    }

    /// [`wait`](Self::wait), calling `seen` with every state change as it arrives (progress
    /// reporting without a second event stream).
    pub async fn wait_with(
        &self,
        id: Felt,
        timeout: Duration,
        mut seen: impl FnMut(&Transition),
    ) -> Result<Outcome, SdkError> {
        let started = Instant::now();
        let mut last = None;
        'outer: while let Some(left) = timeout.checked_sub(started.elapsed()) {
            let events = match self.events(id).await {
                Ok(e) => e,
                Err(e) if e.is_transient() => {
                    tokio::time::sleep(Duration::from_millis(500).min(left)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut events = std::pin::pin!(events);
            loop {
                let Some(left) = timeout.checked_sub(started.elapsed()) else { break 'outer };
                match tokio::time::timeout(left, events.next()).await {
                    Err(_) => break 'outer,
                    Ok(Some(Ok(t))) => {
                        seen(&t);
                        last = Some(t.state);
                        if t.state.is_terminal() {
                            break 'outer;
                        }
                    }
                    // The stream broke or ended early: re-read the state, then reopen it.
                    Ok(Some(Err(_)) | None) => {
                        let view = self.status(id).await?;
                        last = Some(view.state);
                        if view.state.is_terminal() {
                            break 'outer;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue 'outer;
                    }
                }
            }
        }
        let Some(state) = last.filter(|s| s.is_terminal()) else { return Ok(Outcome::TimedOut(last)) };
        let view = self.status(id).await?;
        Ok(match state {
            JobState::Paid => Outcome::Certified(self.verify(id).await?),
            JobState::Rejected => Outcome::Rejected(view),
            JobState::Expired => Outcome::Expired(view),
            JobState::Cancelled => Outcome::Cancelled(view),
            _ => Outcome::Failed(view),
        })
    }

    /// Cancels a job that is not assigned yet: the client's account calls `cancel` on-chain (the
    /// escrow comes back), then the coordinator is told. Returns the refund transaction.
    pub async fn cancel(&self, id: Felt) -> Result<Felt, SdkError> {
        let (account, contracts) = self.account()?;
        let out = contracts.jobs.cancel(account, id).await?;
        // The coordinator also learns it from the chain; telling it is only faster.
        if let Err(e) = self.send(Method::POST, &format!("/v1/jobs/{}/cancel", hex(id)), None, None, None).await {
            tracing::debug!(error = %e, "the coordinator was not told of the cancel (it reads the chain)");
        }
        Ok(out.tx_hash)
    }

    /// The compressed proof envelope, as served (verify it before trusting it).
    pub async fn proof(&self, id: Felt) -> Result<Vec<u8>, SdkError> {
        let r = self.send(Method::GET, &format!("/v1/jobs/{}/proof", hex(id)), None, None, None).await?;
        Ok(r.bytes().await.map_err(|e| SdkError::Decode { what: "proof", reason: e.to_string() })?.to_vec())
    }

    /// Verifies a job's result on this machine, trusting nothing the coordinator says:
    /// - the spec is the one this client submitted (or, for a job submitted elsewhere, the
    ///   served one, accepted only if it hashes to the escrow's on-chain `spec_hash`);
    /// - the worker is the one the chain recorded; the envelope is verified with
    ///   `obelysk-prover` for that job, that worker and the configured security;
    /// - its proof hash is the one the chain certified, with a valid verdict.
    pub async fn verify(&self, id: Felt) -> Result<Verified, SdkError> {
        Ok(self.checked(id).await?.0)
    }

    /// The job's output as `u32`s (matmul: `C` row-major; VMs: the four final registers),
    /// accepted only if it is the output the verified, certified proof commits to (everything
    /// [`verify`](Self::verify) checks, plus the output commitment recomputed from these values).
    pub async fn output(&self, id: Felt) -> Result<Vec<u32>, SdkError> {
        let (verified, proved) = self.checked(id).await?;
        let r = self.send(Method::GET, &format!("/v1/jobs/{}/output", hex(id)), None, None, None).await?;
        let bytes = r.bytes().await.map_err(|e| SdkError::Decode { what: "output", reason: e.to_string() })?;
        let fail = |reason: String| SdkError::Verification { job: id, reason };
        let output =
            sage_protocol::prover::output_from_bytes(&verified.spec, &bytes).map_err(|e| fail(e.to_string()))?;
        let values = sage_protocol::prover::output_bytes(&output);
        tokio::task::spawn_blocking(move || proved.check_output(&output))
            .await
            .map_err(|e| fail(format!("output check task: {e}")))?
            .map_err(|e| fail(format!("the served output is not the one the proof commits to: {e}")))?;
        Ok(values.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect())
    }

    async fn checked(&self, id: Felt) -> Result<(Verified, obelysk_prover::Verified), SdkError> {
        let (chain, contracts) = self.chain()?;
        let fail = |reason: String| SdkError::Verification { job: id, reason };
        let view = self.status(id).await?;
        let held = self.inner.specs.lock().ok().and_then(|m| m.get(&id).cloned());
        let spec = held.unwrap_or_else(|| view.spec.clone());
        let on_chain = contracts.jobs.get_job(chain, id).await?;
        if on_chain.status == JobStatus::None {
            return Err(fail("no escrow on-chain".into()));
        }
        if on_chain.spec_hash != spec.spec_hash() {
            return Err(fail(format!(
                "the spec {spec:?} hashes to {:#x}, the escrow holds {:#x}",
                spec.spec_hash(),
                on_chain.spec_hash
            )));
        }
        let worker = on_chain.worker;
        if worker == Felt::ZERO {
            return Err(fail("no worker recorded on-chain".into()));
        }
        let bytes = self.proof(id).await?;
        let blobs = self.blobs(&spec).await?;
        let job = spec.prover_job(id, worker, &blobs).map_err(|e| fail(format!("the job's inputs: {e}")))?;
        let policy = match self.inner.security {
            Security::Production => obelysk_prover::VerifyPolicy::default(),
            Security::Test => obelysk_prover::VerifyPolicy::insecure_for_tests(),
        };
        let checked = tokio::task::spawn_blocking({
            let bytes = bytes.clone();
            move || obelysk_prover::verify_bytes(&bytes, &job, &policy)
        })
        .await
        .map_err(|e| fail(format!("verifier task: {e}")))?
        .map_err(|e| fail(format!("the proof does not verify: {e}")))?;
        let hash = obelysk_prover::proof_hash(&bytes).map_err(|e| fail(format!("envelope: {e}")))?;
        let proof_hash = sage_consensus::proof_hash_felt(&hash.0);
        match contracts.verifier.verdict(chain, id).await? {
            RecordedVerdict::Valid => {}
            other => return Err(fail(format!("the on-chain verdict is {other:?}"))),
        }
        let certified = contracts.verifier.verdict_proof(chain, id).await?;
        if certified != proof_hash {
            return Err(fail(format!(
                "the served proof hashes to {proof_hash:#x}; the chain certified {certified:#x}"
            )));
        }
        let paid = contracts.payments.is_paid(chain, id).await?;
        let verified = Verified {
            job: id,
            worker,
            security_bits: checked.security_bits,
            proof_hash,
            bytes: bytes.len(),
            paid,
            state: view.state,
            spec,
        };
        Ok((verified, checked))
    }

    /// Workers the coordinator knows.
    pub async fn workers(&self) -> Result<Vec<WorkerView>, SdkError> {
        self.get("/v1/workers", "workers").await
    }

    /// One worker.
    pub async fn worker(&self, address: Felt) -> Result<WorkerView, SdkError> {
        self.get(&format!("/v1/workers/{}", hex(address)), "worker").await
    }
}

/// A request body.
enum Body<'a> {
    Json(&'a serde_json::Value),
    Bytes(&'a [u8]),
}

async fn problem(response: reqwest::Response) -> SdkError {
    let status = response.status().as_u16();
    match response.json::<Problem>().await {
        Ok(p) => SdkError::Api { status, code: p.code, title: p.title, detail: p.detail },
        Err(_) => SdkError::Http { status },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_names_one_client_job_id() {
        assert_eq!(client_job_id_for("invoice-17"), client_job_id_for("invoice-17"));
        assert_ne!(client_job_id_for("invoice-17"), client_job_id_for("invoice-18"));
        // 31 bytes: always a valid felt.
        assert!(client_job_id_for("x").to_bytes_be()[0] == 0);
    }

    #[test]
    fn builder_refuses_missing_url_key_and_bad_schemes() {
        assert!(matches!(ClientBuilder::new().api_key("k").build(), Err(SdkError::Config(_))));
        assert!(matches!(ClientBuilder::new().url("http://x").build(), Err(SdkError::Config(_))));
        assert!(matches!(ClientBuilder::new().url("ftp://x").api_key("k").build(), Err(SdkError::Config(_))));
        assert!(ClientBuilder::new().url("http://127.0.0.1:1/").api_key("k").build().is_ok());
    }

    #[test]
    fn only_transport_failures_5xx_and_rate_limits_are_retried() {
        let api = |status, code| SdkError::Api { status, code, title: String::new(), detail: String::new() };
        assert!(api(429, sage_protocol::api::ProblemCode::RateLimited).is_transient());
        assert!(api(500, sage_protocol::api::ProblemCode::Internal).is_transient());
        assert!(!api(400, sage_protocol::api::ProblemCode::InvalidSpec).is_transient());
        assert!(!api(404, sage_protocol::api::ProblemCode::NotFound).is_transient());
        assert!(!SdkError::NoAccount.is_transient());
    }
}
