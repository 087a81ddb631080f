//! The coordinator's durable store: a [`Store`] trait and [`SqlStore`], one implementation over
//! sqlx's `Any` driver that runs on SQLite (the embedded default: one file, WAL) and on PostgreSQL
//! (chosen by a `postgres://` URL), with one migration per backend and the same test suite.
//! Queries are written once, in the SQL both accept (`$n` parameters, `IS NOT DISTINCT FROM`,
//! `ON CONFLICT`, `RETURNING`); no compile-time database.
//!
//! Consistency rules every implementation keeps:
//! - a job and its first transition are inserted together, with the API key's quota charged in
//!   the same transaction; an idempotency key maps to one job for ever;
//! - [`Store::save`] is one guarded `UPDATE … WHERE version = $n` plus the new transitions, in one
//!   transaction: a record read by two drivers is saved by one of them ([`StoreError::Conflict`]
//!   for the other), so a job is never assigned twice;
//! - an outbox entry is keyed by its idempotency key and written before its transaction is sent.

use async_trait::async_trait;
use sage_protocol::{
    Felt, JobSpec,
    api::{EscrowView, JobState, Transition},
};
use sqlx::{
    AnyPool, AssertSqlSafe, Executor, Row,
    any::{AnyPoolOptions, AnyRow},
};

use crate::lifecycle::JobRecord;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record changed since it was read (another driver saved it first).
    #[error("job {0:#x} changed since it was read")]
    Conflict(Felt),
    /// The idempotency key was used for another job.
    #[error("idempotency key {0:?} was used for another job")]
    IdempotencyReuse(String),
    /// The job id exists with another spec or client.
    #[error("job {0:#x} exists with another spec")]
    JobExists(Felt),
    /// The API key's job quota is spent.
    #[error("the API key's quota of {0} jobs is spent")]
    QuotaExceeded(u64),
    /// A stored value could not be read back.
    #[error("corrupt store row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// The outcome of [`Store::insert_job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Stored now.
    Created(JobRecord),
    /// The same submission was stored before (same idempotency key, or same id and spec).
    Existing(JobRecord),
}

/// An API key as stored (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Row id.
    pub id: i64,
    /// Operator's name for it.
    pub name: String,
    /// Public prefix (identifies the key in logs and lists).
    pub prefix: String,
    /// sha256 of the secret, hex.
    pub secret_hash: String,
    /// Requests per minute.
    pub rate_per_min: u32,
    /// Most jobs it may submit (`None`: unlimited).
    pub quota: Option<u64>,
    /// Jobs submitted so far.
    pub used: u64,
    /// Created (Unix ms).
    pub created_ms: u64,
    /// Revoked (Unix ms).
    pub revoked_ms: Option<u64>,
}

/// A worker as the coordinator knows it (from heartbeats and its own jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    /// Account address.
    pub address: Felt,
    /// Stark public key.
    pub public_key: Felt,
    /// GPU tier name.
    pub tier: String,
    /// Jobs it proves at once.
    pub capacity: u32,
    /// Last heartbeat (Unix ms).
    pub last_seen_ms: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Jobs failed.
    pub failed: u64,
    /// Total proving time of completed jobs (ms).
    pub prove_ms_sum: u64,
    /// Total work units of completed jobs.
    pub work_sum: u128,
}

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Written, not known to be sent.
    Pending,
    /// Sent (its hash is known), not yet confirmed.
    Sent,
    /// Confirmed on-chain.
    Confirmed,
    /// Reverted or abandoned (with the reason).
    Failed,
}

impl OutboxStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => Self::Pending,
            "sent" => Self::Sent,
            "confirmed" => Self::Confirmed,
            "failed" => Self::Failed,
            other => return Err(StoreError::Corrupt(format!("outbox status {other:?}"))),
        })
    }
}

/// A chain transaction the coordinator means to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Idempotency key (`assign:{job}:{attempt}`, `pay:{job}`…): one transaction per key, ever.
    pub key: String,
    /// Job it concerns.
    pub job_id: Felt,
    /// `assign`, `reassign`, `pay`, `refund`.
    pub kind: String,
    /// What to send (JSON).
    pub payload: String,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Transaction hash once sent.
    pub tx: Option<Felt>,
    /// Why it failed.
    pub error: Option<String>,
    /// Written (Unix ms).
    pub created_ms: u64,
}

/// The coordinator's durable state.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Whether this process may drive the chain now (escrow checks, assignment, leases, the
    /// settlement outbox). Several coordinators may share one PostgreSQL database; exactly one of
    /// them leads at a time, and another takes over when its session ends. A store only one
    /// process can open (SQLite) always leads.
    async fn lead(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Stores a new job with its first transition, charging `api_key`'s quota.
    async fn insert_job(
        &self,
        job: &JobRecord,
        first: &Transition,
        api_key: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<Inserted, StoreError>;
    /// A job by id.
    async fn job(&self, id: Felt) -> Result<Option<JobRecord>, StoreError>;
    /// The API key a job was submitted with: `None` when there is no such job, `Some(None)`
    /// when it came without one (from the chain).
    async fn job_api_key(&self, id: Felt) -> Result<Option<Option<i64>>, StoreError>;
    /// A job's transitions, oldest first, from `from_seq`.
    async fn history(&self, id: Felt, from_seq: u32) -> Result<Vec<Transition>, StoreError>;
    /// The whole histories of `ids` in one query (a page of jobs), each oldest first.
    async fn histories(&self, ids: &[Felt]) -> Result<std::collections::HashMap<Felt, Vec<Transition>>, StoreError>;
    /// How many jobs each worker holds (assigned or proving), in one grouped query.
    async fn active_by_worker(&self) -> Result<std::collections::HashMap<Felt, u32>, StoreError>;
    /// Jobs, newest first, optionally of one client and one state.
    async fn list_jobs(
        &self,
        client: Option<Felt>,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError>;
    /// Jobs in any of `states`, oldest first (what the driver works on).
    async fn jobs_in(&self, states: &[JobState], limit: u32) -> Result<Vec<JobRecord>, StoreError>;
    /// The jobs `worker` holds (assigned or proving), oldest first: what one heartbeat concerns.
    async fn jobs_held_by(&self, worker: Felt) -> Result<Vec<JobRecord>, StoreError>;
    /// Saves `job` over `expected_version` with its new transitions, or [`StoreError::Conflict`].
    async fn save(&self, job: &JobRecord, expected_version: u64, transitions: &[Transition]) -> Result<(), StoreError>;
    /// Number of jobs in each state.
    async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>, StoreError>;

    /// Stores a new API key.
    async fn create_api_key(&self, key: &ApiKeyRow) -> Result<i64, StoreError>;
    /// The key with this prefix.
    async fn api_key(&self, prefix: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    /// Every key.
    async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError>;
    /// Revokes the key with this prefix or name; false when none was live.
    async fn revoke_api_key(&self, prefix_or_name: &str, now_ms: u64) -> Result<bool, StoreError>;

    /// Records a heartbeat (creating the worker on first sight).
    async fn upsert_worker(&self, worker: &WorkerRow) -> Result<(), StoreError>;
    /// Every known worker.
    async fn workers(&self) -> Result<Vec<WorkerRow>, StoreError>;
    /// One worker.
    async fn worker(&self, address: Felt) -> Result<Option<WorkerRow>, StoreError>;
    /// Counts a finished job for `address` (`prove_ms`/`work` only for a completed one).
    async fn record_outcome(&self, address: Felt, completed: bool, prove_ms: u64, work: u128)
    -> Result<(), StoreError>;

    /// Writes an entry unless its key exists; returns the stored entry (the old one if it did).
    async fn outbox_put(&self, entry: &OutboxEntry) -> Result<OutboxEntry, StoreError>;
    /// Updates an entry's status.
    async fn outbox_update(
        &self,
        key: &str,
        status: OutboxStatus,
        tx: Option<Felt>,
        error: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError>;
    /// Entries not yet confirmed or failed, oldest first.
    async fn outbox_open(&self) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Every entry of one job.
    async fn outbox_for(&self, job_id: Felt) -> Result<Vec<OutboxEntry>, StoreError>;

    /// A named cursor (e.g. the last chain block processed).
    async fn cursor(&self, name: &str) -> Result<Option<u64>, StoreError>;
    /// Sets a named cursor.
    async fn set_cursor(&self, name: &str, value: u64) -> Result<(), StoreError>;

    /// Keeps a content-addressed blob under its sha256 (lowercase hex; the caller checked the
    /// digest). Storing the same blob again changes nothing.
    async fn put_blob(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// A blob by its sha256, if stored.
    async fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// The migrations, in order (applied once each, recorded in `schema_migrations`).
fn hex(f: Felt) -> String {
    format!("{f:#x}")
}

fn felt(text: &str) -> Result<Felt, StoreError> {
    Felt::from_hex(text).map_err(|_| StoreError::Corrupt(format!("felt {text:?}")))
}

fn opt_felt(text: Option<String>) -> Result<Option<Felt>, StoreError> {
    text.as_deref().map(felt).transpose()
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn job_from_row(row: &AnyRow) -> Result<JobRecord, StoreError> {
    let spec: JobSpec =
        serde_json::from_str(row.try_get::<&str, _>("spec")?).map_err(|e| StoreError::Corrupt(format!("spec: {e}")))?;
    let state_text: String = row.try_get("state")?;
    let state = JobState::parse(&state_text).ok_or_else(|| StoreError::Corrupt(format!("state {state_text:?}")))?;
    let escrow = match (
        row.try_get::<Option<String>, _>("payment")?,
        row.try_get::<Option<i64>, _>("deadline")?,
        row.try_get::<Option<String>, _>("escrow_spec_hash")?,
    ) {
        (Some(p), Some(d), Some(h)) => Some(EscrowView {
            payment: p.parse().map_err(|_| StoreError::Corrupt(format!("payment {p:?}")))?,
            deadline: u(d),
            spec_hash: felt(&h)?,
        }),
        _ => None,
    };
    Ok(JobRecord {
        id: felt(row.try_get("id")?)?,
        client: felt(row.try_get("client")?)?,
        client_job_id: felt(row.try_get("client_job_id")?)?,
        spec,
        state,
        escrow,
        worker: opt_felt(row.try_get("worker")?)?,
        fence: u(row.try_get("fence")?),
        lease_until_ms: row.try_get::<Option<i64>, _>("lease_until_ms")?.map(u),
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        assigned_on_chain: row.try_get::<i64, _>("assigned_on_chain")? != 0,
        proof_hash: opt_felt(row.try_get("proof_hash")?)?,
        output_commitment: opt_felt(row.try_get("output_commitment")?)?,
        version: u(row.try_get("version")?),
        seq: u32::try_from(row.try_get::<i64, _>("seq")?).unwrap_or(u32::MAX),
    })
}

fn transition_from_row(row: &AnyRow) -> Result<Transition, StoreError> {
    let state_text: String = row.try_get("state")?;
    Ok(Transition {
        job_id: felt(row.try_get("job_id")?)?,
        seq: u32::try_from(row.try_get::<i64, _>("seq")?).unwrap_or(u32::MAX),
        state: JobState::parse(&state_text).ok_or_else(|| StoreError::Corrupt(format!("state {state_text:?}")))?,
        at_ms: u(row.try_get("at_ms")?),
        tx: opt_felt(row.try_get("tx")?)?,
        detail: row.try_get("detail")?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<ApiKeyRow, StoreError> {
    Ok(ApiKeyRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        secret_hash: row.try_get("secret_hash")?,
        rate_per_min: u32::try_from(row.try_get::<i64, _>("rate_per_min")?).unwrap_or(u32::MAX),
        quota: row.try_get::<Option<i64>, _>("quota")?.map(u),
        used: u(row.try_get("used")?),
        created_ms: u(row.try_get("created_ms")?),
        revoked_ms: row.try_get::<Option<i64>, _>("revoked_ms")?.map(u),
    })
}

fn worker_from_row(row: &AnyRow) -> Result<WorkerRow, StoreError> {
    let work: String = row.try_get("work_sum")?;
    Ok(WorkerRow {
        address: felt(row.try_get("address")?)?,
        public_key: felt(row.try_get("public_key")?)?,
        tier: row.try_get("tier")?,
        capacity: u32::try_from(row.try_get::<i64, _>("capacity")?).unwrap_or(0),
        last_seen_ms: u(row.try_get("last_seen_ms")?),
        completed: u(row.try_get("completed")?),
        failed: u(row.try_get("failed")?),
        prove_ms_sum: u(row.try_get("prove_ms_sum")?),
        work_sum: work.parse().map_err(|_| StoreError::Corrupt(format!("work_sum {work:?}")))?,
    })
}

fn outbox_from_row(row: &AnyRow) -> Result<OutboxEntry, StoreError> {
    Ok(OutboxEntry {
        key: row.try_get("key")?,
        job_id: felt(row.try_get("job_id")?)?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        status: OutboxStatus::parse(row.try_get("status")?)?,
        tx: opt_felt(row.try_get("tx")?)?,
        error: row.try_get("error")?,
        created_ms: u(row.try_get("created_ms")?),
    })
}

/// Which database a [`SqlStore`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file (WAL): the embedded default.
    Sqlite,
    /// A PostgreSQL server (several coordinators may share it).
    Postgres,
}

impl Backend {
    fn migrations(self) -> [(i64, &'static str); 3] {
        match self {
            Self::Sqlite => [
                (1, include_str!("../migrations/0001_init.sql")),
                (2, include_str!("../migrations/0002_outbox_by_job.sql")),
                (3, include_str!("../migrations/0003_blobs.sql")),
            ],
            Self::Postgres => [
                (1, include_str!("../migrations/postgres/0001_init.sql")),
                (2, include_str!("../migrations/postgres/0002_outbox_by_job.sql")),
                (3, include_str!("../migrations/postgres/0003_blobs.sql")),
            ],
        }
    }

    /// How a write transaction starts: SQLite takes its write lock up front (`BEGIN IMMEDIATE`
    /// waits for it, where a deferred transaction that read first would fail with "database is
    /// locked" when another connection wrote in between); PostgreSQL locks rows as it writes.
    fn begin(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }
}

/// The store on SQLite (one file, WAL) or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// On PostgreSQL: the connection whose session holds the leader lock, while this process
    /// leads.
    leader: std::sync::Arc<tokio::sync::Mutex<Option<sqlx::AnyConnection>>>,
}

/// The session advisory lock whose holder leads ([`Store::lead`]).
const LEADER_LOCK: i64 = 7_356_615;

impl SqlStore {
    /// Opens (creating if missing) the SQLite database at `path` and applies pending migrations.
    pub async fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        // The path is percent-encoded: a `?`, `#`, `%` or space in it is part of the file name,
        // not of the URL (sqlx decodes it back).
        let mut encoded = String::new();
        for b in path.as_os_str().as_encoded_bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                    encoded.push(char::from(*b))
                }
                other => encoded.push_str(&format!("%{other:02X}")),
            }
        }
        Self::connect(&format!("sqlite://{encoded}?mode=rwc")).await
    }

    /// Connects to `url` (`sqlite://FILE?mode=rwc` or `postgres://user:pass@host/db`) and applies
    /// pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Corrupt(format!("unsupported database URL {:?}", redact(url))));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        let store = Self { pool, backend, leader: std::sync::Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    /// Creates database `name` on the PostgreSQL server `server_url` names (its role needs
    /// CREATEDB) and returns the URL of the new database: first-time setup, and a fresh database
    /// per test.
    pub async fn create_postgres_database(server_url: &str, name: &str) -> Result<String, StoreError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(StoreError::Corrupt(format!("database name {name:?}: use a-z, 0-9 and _")));
        }
        let (prefix, _) = server_url
            .split('?')
            .next()
            .and_then(|u| u.rsplit_once('/'))
            .ok_or_else(|| StoreError::Corrupt(format!("{:?} has no database part", redact(server_url))))?;
        sqlx::any::install_default_drivers();
        let admin = AnyPoolOptions::new().max_connections(1).connect(server_url).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
        admin.close().await;
        Ok(format!("{prefix}/{name}"))
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (benchmarks compare against raw queries on it).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(self.backend.begin()).await?;
        if self.backend == Backend::Postgres {
            // Coordinators starting together: one migrates, the others wait for it.
            sqlx::query("SELECT pg_advisory_xact_lock(7356614)").execute(&mut *tx).await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let applied: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?
            .try_get("v")?;
        for (version, sql) in self.backend.migrations() {
            if version <= applied {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)")
                .bind(version)
                .bind(i(crate::now_ms()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A database URL with its password replaced (for messages and logs).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `($first, $first+1, …)`: `n` numbered parameters.
fn params(first: usize, n: usize) -> String {
    let list: Vec<String> = (first..first + n).map(|k| format!("${k}")).collect();
    format!("({})", list.join(", "))
}

#[async_trait]
impl Store for SqlStore {
    async fn lead(&self) -> Result<bool, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(true);
        }
        let mut held = self.leader.lock().await;
        if let Some(conn) = held.as_mut() {
            // The lock lives as long as the session: a live session still holds it.
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                return Ok(true);
            }
            *held = None;
        }
        let mut conn = self.pool.acquire().await?.detach();
        let row = sqlx::query(AssertSqlSafe(format!("SELECT pg_try_advisory_lock({LEADER_LOCK}) AS got")))
            .fetch_one(&mut conn)
            .await?;
        let got: bool = row.try_get("got")?;
        if got {
            *held = Some(conn);
        }
        Ok(got)
    }

    async fn insert_job(
        &self,
        job: &JobRecord,
        first: &Transition,
        api_key: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<Inserted, StoreError> {
        let mut tx = self.pool.begin_with(self.backend.begin()).await?;
        if let Some(idem) = idempotency_key {
            let existing =
                sqlx::query("SELECT * FROM jobs WHERE api_key IS NOT DISTINCT FROM $1 AND idempotency_key = $2")
                    .bind(api_key)
                    .bind(idem)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(row) = existing {
                let stored = job_from_row(&row)?;
                if stored.client != job.client || stored.client_job_id != job.client_job_id || stored.spec != job.spec {
                    return Err(StoreError::IdempotencyReuse(idem.to_owned()));
                }
                return Ok(Inserted::Existing(stored));
            }
        }
        if let Some(row) =
            sqlx::query("SELECT * FROM jobs WHERE id = $1").bind(hex(job.id)).fetch_optional(&mut *tx).await?
        {
            let stored = job_from_row(&row)?;
            return if stored.spec == job.spec {
                Ok(Inserted::Existing(stored))
            } else {
                Err(StoreError::JobExists(job.id))
            };
        }
        if let Some(key) = api_key {
            let charged = sqlx::query(
                "UPDATE api_keys SET used = used + 1 WHERE id = $1 AND (quota IS NULL OR used < quota) RETURNING used",
            )
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if charged.is_none() {
                let quota: Option<i64> = sqlx::query("SELECT quota FROM api_keys WHERE id = $1")
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("quota")?;
                return Err(StoreError::QuotaExceeded(quota.map(u).unwrap_or(0)));
            }
        }
        let spec = serde_json::to_string(&job.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO jobs (id, client, client_job_id, spec, spec_type, spec_size, state, version, seq, api_key, idempotency_key, created_ms, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(hex(job.id))
        .bind(hex(job.client))
        .bind(hex(job.client_job_id))
        .bind(spec)
        .bind(job.spec.type_name())
        .bind(i64::from(job.spec.size()))
        .bind(job.state.as_str())
        .bind(i(job.version))
        .bind(i64::from(job.seq))
        .bind(api_key)
        .bind(idempotency_key)
        .bind(i(first.at_ms))
        .bind(i(first.at_ms))
        .execute(&mut *tx)
        .await?;
        insert_transitions(&mut tx, std::slice::from_ref(first)).await?;
        tx.commit().await?;
        Ok(Inserted::Created(job.clone()))
    }

    async fn job(&self, id: Felt) -> Result<Option<JobRecord>, StoreError> {
        sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(hex(id))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    async fn job_api_key(&self, id: Felt) -> Result<Option<Option<i64>>, StoreError> {
        Ok(sqlx::query("SELECT api_key FROM jobs WHERE id = $1")
            .bind(hex(id))
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get::<Option<i64>, _>("api_key"))
            .transpose()?)
    }

    async fn history(&self, id: Felt, from_seq: u32) -> Result<Vec<Transition>, StoreError> {
        sqlx::query("SELECT * FROM transitions WHERE job_id = $1 AND seq >= $2 ORDER BY seq")
            .bind(hex(id))
            .bind(i64::from(from_seq))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(transition_from_row)
            .collect()
    }

    async fn histories(&self, ids: &[Felt]) -> Result<std::collections::HashMap<Felt, Vec<Transition>>, StoreError> {
        let mut out: std::collections::HashMap<Felt, Vec<Transition>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        for chunk in ids.chunks(500) {
            let sql =
                format!("SELECT * FROM transitions WHERE job_id IN {} ORDER BY job_id, seq", params(1, chunk.len()));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(hex(*id));
            }
            for row in &q.fetch_all(&self.pool).await? {
                let t = transition_from_row(row)?;
                out.entry(t.job_id).or_default().push(t);
            }
        }
        Ok(out)
    }

    async fn active_by_worker(&self) -> Result<std::collections::HashMap<Felt, u32>, StoreError> {
        let rows = sqlx::query(
            "SELECT worker, COUNT(*) AS n FROM jobs WHERE state IN ('assigned', 'proving') AND worker IS NOT NULL
             GROUP BY worker",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let worker: String = r.try_get("worker")?;
                let n: i64 = r.try_get("n")?;
                Ok((felt(&worker)?, u32::try_from(n).unwrap_or(u32::MAX)))
            })
            .collect()
    }

    async fn list_jobs(
        &self,
        client: Option<Felt>,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<JobRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM jobs WHERE ($1 IS NULL OR client = $1) AND ($2 IS NULL OR state = $2)
             ORDER BY created_ms DESC, id LIMIT $3",
        )
        .bind(client.map(hex))
        .bind(state.map(JobState::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(job_from_row)
        .collect()
    }

    async fn jobs_in(&self, states: &[JobState], limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM jobs WHERE state IN {} ORDER BY created_ms, id LIMIT ${}",
            params(1, states.len()),
            states.len() + 1
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for state in states {
            q = q.bind(state.as_str());
        }
        q.bind(i64::from(limit)).fetch_all(&self.pool).await?.iter().map(job_from_row).collect()
    }

    async fn jobs_held_by(&self, worker: Felt) -> Result<Vec<JobRecord>, StoreError> {
        sqlx::query("SELECT * FROM jobs WHERE worker = $1 AND state IN ('assigned', 'proving') ORDER BY created_ms, id")
            .bind(hex(worker))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(job_from_row)
            .collect()
    }

    async fn save(&self, job: &JobRecord, expected_version: u64, transitions: &[Transition]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(self.backend.begin()).await?;
        let now = transitions.last().map_or_else(crate::now_ms, |t| t.at_ms);
        let updated = sqlx::query(
            "UPDATE jobs SET state = $1, payment = $2, deadline = $3, escrow_spec_hash = $4, worker = $5, fence = $6,
                 lease_until_ms = $7, attempts = $8, assigned_on_chain = $9, proof_hash = $10, output_commitment = $11,
                 version = $12, seq = $13, updated_ms = $14
             WHERE id = $15 AND version = $16 RETURNING version",
        )
        .bind(job.state.as_str())
        .bind(job.escrow.as_ref().map(|e| e.payment.to_string()))
        .bind(job.escrow.as_ref().map(|e| i(e.deadline)))
        .bind(job.escrow.as_ref().map(|e| hex(e.spec_hash)))
        .bind(job.worker.map(hex))
        .bind(i(job.fence))
        .bind(job.lease_until_ms.map(i))
        .bind(i64::from(job.attempts))
        .bind(i64::from(job.assigned_on_chain))
        .bind(job.proof_hash.map(hex))
        .bind(job.output_commitment.map(hex))
        .bind(i(job.version))
        .bind(i64::from(job.seq))
        .bind(i(now))
        .bind(hex(job.id))
        .bind(i(expected_version))
        .fetch_optional(&mut *tx)
        .await?;
        if updated.is_none() {
            return Err(StoreError::Conflict(job.id));
        }
        insert_transitions(&mut tx, transitions).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_by_state(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let name: String = row.try_get("state")?;
                let state = JobState::parse(&name).ok_or_else(|| StoreError::Corrupt(format!("state {name:?}")))?;
                Ok((state, u(row.try_get("n")?)))
            })
            .collect()
    }

    async fn create_api_key(&self, key: &ApiKeyRow) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO api_keys (name, prefix, secret_hash, rate_per_min, quota, used, created_ms) VALUES ($1, $2, $3, $4, $5, 0, $6) RETURNING id",
        )
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.secret_hash)
        .bind(i64::from(key.rate_per_min))
        .bind(key.quota.map(i))
        .bind(i(key.created_ms))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    async fn api_key(&self, prefix: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        sqlx::query("SELECT * FROM api_keys WHERE prefix = $1")
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        sqlx::query("SELECT * FROM api_keys ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn revoke_api_key(&self, prefix_or_name: &str, now_ms: u64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE (prefix = $2 OR name = $2) AND revoked_ms IS NULL")
                .bind(i(now_ms))
                .bind(prefix_or_name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn upsert_worker(&self, w: &WorkerRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workers (address, public_key, tier, capacity, last_seen_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (address) DO UPDATE SET public_key = excluded.public_key, tier = excluded.tier,
                 capacity = excluded.capacity,
                 last_seen_ms = CASE WHEN excluded.last_seen_ms > workers.last_seen_ms THEN excluded.last_seen_ms
                                     ELSE workers.last_seen_ms END",
        )
        .bind(hex(w.address))
        .bind(hex(w.public_key))
        .bind(&w.tier)
        .bind(i64::from(w.capacity))
        .bind(i(w.last_seen_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn workers(&self) -> Result<Vec<WorkerRow>, StoreError> {
        sqlx::query("SELECT * FROM workers ORDER BY address")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(worker_from_row)
            .collect()
    }

    async fn worker(&self, address: Felt) -> Result<Option<WorkerRow>, StoreError> {
        sqlx::query("SELECT * FROM workers WHERE address = $1")
            .bind(hex(address))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(worker_from_row)
            .transpose()
    }

    async fn record_outcome(
        &self,
        address: Felt,
        completed: bool,
        prove_ms: u64,
        work: u128,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(self.backend.begin()).await?;
        let Some(row) = sqlx::query("SELECT work_sum FROM workers WHERE address = $1")
            .bind(hex(address))
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(());
        };
        let sum: String = row.try_get("work_sum")?;
        let sum: u128 = sum.parse().map_err(|_| StoreError::Corrupt(format!("work_sum {sum:?}")))?;
        if completed {
            sqlx::query("UPDATE workers SET completed = completed + 1, prove_ms_sum = prove_ms_sum + $1, work_sum = $2 WHERE address = $3")
                .bind(i(prove_ms))
                .bind(sum.saturating_add(work).to_string())
                .bind(hex(address))
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE workers SET failed = failed + 1 WHERE address = $1")
                .bind(hex(address))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_put(&self, e: &OutboxEntry) -> Result<OutboxEntry, StoreError> {
        sqlx::query(
            "INSERT INTO outbox (key, job_id, kind, payload, status, tx, error, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&e.key)
        .bind(hex(e.job_id))
        .bind(&e.kind)
        .bind(&e.payload)
        .bind(e.status.as_str())
        .bind(e.tx.map(hex))
        .bind(&e.error)
        .bind(i(e.created_ms))
        .bind(i(e.created_ms))
        .execute(&self.pool)
        .await?;
        outbox_from_row(&sqlx::query("SELECT * FROM outbox WHERE key = $1").bind(&e.key).fetch_one(&self.pool).await?)
    }

    async fn outbox_update(
        &self,
        key: &str,
        status: OutboxStatus,
        tx: Option<Felt>,
        error: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET status = $1, tx = COALESCE($2, tx), error = $3, updated_ms = $4 WHERE key = $5")
            .bind(status.as_str())
            .bind(tx.map(hex))
            .bind(error)
            .bind(i(now_ms))
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn outbox_open(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox WHERE status IN ('pending', 'sent') ORDER BY created_ms, key")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(outbox_from_row)
            .collect()
    }

    async fn outbox_for(&self, job_id: Felt) -> Result<Vec<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox WHERE job_id = $1 ORDER BY created_ms, key")
            .bind(hex(job_id))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(outbox_from_row)
            .collect()
    }

    async fn cursor(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(sqlx::query("SELECT value FROM cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get::<i64, _>("value"))
            .transpose()?
            .map(u))
    }

    async fn set_cursor(&self, name: &str, value: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cursors (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(i(value))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn put_blob(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blobs (sha256, bytes, created_ms) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(bytes.to_vec())
        .bind(i(crate::now_ms()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query("SELECT bytes FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get::<Vec<u8>, _>("bytes"))
            .transpose()?)
    }
}

async fn insert_transitions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    transitions: &[Transition],
) -> Result<(), StoreError> {
    for t in transitions {
        sqlx::query("INSERT INTO transitions (job_id, seq, state, at_ms, tx, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(hex(t.job_id))
            .bind(i64::from(t.seq))
            .bind(t.state.as_str())
            .bind(i(t.at_ms))
            .bind(t.tx.map(hex))
            .bind(&t.detail)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
