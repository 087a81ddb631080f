//! The store on both backends, each case run twice: on a real SQLite file and on a real
//! PostgreSQL server (a fresh database per case on the server `SAGE_TEST_POSTGRES_URL` names;
//! `cargo xtask test` starts one). It survives a restart, refuses stale writes without changing
//! anything, and serialises concurrent changes to one job through the service's retry. Without a
//! server the PostgreSQL cases fail with the instruction rather than skipping.

use std::sync::Arc;

use sage_jobs::{
    lifecycle::{Input, JobRecord, Rules, apply},
    service::JobService,
    store::{Inserted, OutboxEntry, OutboxStatus, SqlStore, Store, StoreError},
};
use sage_protocol::{Felt, JobSpec, api::JobState};

fn job(id: u64) -> JobRecord {
    JobRecord::submitted(Felt::from(0xc1u8), Felt::from(id), JobSpec::Matmul { n: 16, seed: Felt::ONE })
}

fn escrow(job: &JobRecord) -> Input {
    Input::EscrowSeen {
        client: job.client,
        spec_hash: job.spec.spec_hash(),
        payment: 1_000,
        deadline: 10_000,
        min_price: 1_000,
        tx: Some(Felt::from(0x7u8)),
    }
}

/// A fresh database: a SQLite file, or a database of its own on the PostgreSQL server.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    async fn postgres() -> Self {
        let base = std::env::var("SAGE_TEST_POSTGRES_URL").expect(
            "SAGE_TEST_POSTGRES_URL is not set: run the tests through `cargo xtask test` (which starts PostgreSQL), or \
             point it at a server where the role may CREATE DATABASE",
        );
        let mut id = [0u8; 6];
        getrandom::fill(&mut id).unwrap();
        let name = format!("sage_test_{}", id.iter().map(|b| format!("{b:02x}")).collect::<String>());
        Self::Postgres(SqlStore::create_postgres_database(&base, &name).await.expect("creating a test database"))
    }

    /// Opens (or re-opens: a restart) the store.
    async fn open(&self) -> SqlStore {
        match self {
            Self::Sqlite(dir) => SqlStore::open(&dir.path().join("jobs.db")).await.unwrap(),
            Self::Postgres(url) => SqlStore::connect(url).await.unwrap(),
        }
    }
}

/// Each case, once per backend.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn sqlite() {
                    super::$case(super::Db::sqlite()).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$case(super::Db::postgres().await).await
                }
            }
        )*
    };
}

on_both!(
    jobs_outbox_and_cursors_survive_a_restart,
    a_stale_write_is_refused_and_changes_nothing,
    concurrent_inputs_to_one_job_are_serialised_by_retry,
    histories_and_active_counts_are_read_in_one_query_each,
    keys_workers_and_the_outbox_round_trip,
    one_of_several_coordinators_leads_and_another_takes_over_when_it_goes,
    blobs_are_kept_once_and_survive_a_restart,
);

async fn blobs_are_kept_once_and_survive_a_restart(db: Db) {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    {
        let store = db.open().await;
        assert_eq!(store.blob("aa").await.unwrap(), None);
        store.put_blob("aa", &bytes).await.unwrap();
        // A second upload of the same digest changes nothing (and is no error).
        store.put_blob("aa", &bytes).await.unwrap();
    }
    let store = db.open().await;
    assert_eq!(store.blob("aa").await.unwrap().as_deref(), Some(bytes.as_slice()));
    assert_eq!(store.blob("ab").await.unwrap(), None);
}

async fn insert(store: &SqlStore, job: &JobRecord) {
    let first = job.first_transition(1);
    assert!(matches!(store.insert_job(job, &first, None, None).await.unwrap(), Inserted::Created(_)));
}

async fn jobs_outbox_and_cursors_survive_a_restart(db: Db) {
    let j = job(1);
    {
        let store = db.open().await;
        insert(&store, &j).await;
        let mut changed = j.clone();
        let step = apply(&mut changed, escrow(&j), &Rules::default(), 5).unwrap();
        store.save(&changed, j.version, &step.transitions).await.unwrap();
        store
            .outbox_put(&OutboxEntry {
                key: "assign:1".into(),
                job_id: j.id,
                kind: "assign".into(),
                payload: "{}".into(),
                status: OutboxStatus::Pending,
                tx: None,
                error: None,
                created_ms: 5,
            })
            .await
            .unwrap();
        store.set_cursor("chain", 42).await.unwrap();
    }
    // Opening again runs the migrations again: they must be no-ops on a current schema.
    let store = db.open().await;
    let back = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(back.state, JobState::Queued);
    let states: Vec<_> = store.history(j.id, 0).await.unwrap().iter().map(|t| t.state).collect();
    assert_eq!(states, [JobState::Submitted, JobState::Escrowed, JobState::Queued]);
    assert_eq!(store.outbox_open().await.unwrap().len(), 1);
    assert_eq!(store.cursor("chain").await.unwrap(), Some(42));
}

async fn a_stale_write_is_refused_and_changes_nothing(db: Db) {
    let store = db.open().await;
    let j = job(2);
    insert(&store, &j).await;
    // Two readers of version 0; the first writer wins.
    let (mut a, mut b) = (j.clone(), j.clone());
    let step_a = apply(&mut a, escrow(&j), &Rules::default(), 5).unwrap();
    let step_b = apply(&mut b, Input::Cancel, &Rules::default(), 6).unwrap();
    store.save(&a, j.version, &step_a.transitions).await.unwrap();
    let err = store.save(&b, j.version, &step_b.transitions).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(id) if id == j.id), "{err}");
    let stored = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Queued, "the loser left no trace");
    assert_eq!(store.history(j.id, 0).await.unwrap().len(), 3);
}

async fn concurrent_inputs_to_one_job_are_serialised_by_retry(db: Db) {
    let store = Arc::new(db.open().await);
    let service = JobService::new(store.clone(), Rules::default());
    let mut events = service.subscribe();
    let j = job(3);
    insert(&store, &j).await;
    service.apply(j.id, escrow(&j), 5).await.unwrap();
    // Eight assignments race; exactly one worker gets the job, the rest see it taken.
    let mut tasks = Vec::new();
    for w in 0..8u8 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            service.apply(j.id, Input::Assigned { worker: Felt::from(0xa0 + w), tx: Felt::ONE }, 10).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "one assignment wins");
    let stored = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Assigned);
    assert_eq!(stored.fence, 1);
    let seqs: Vec<u32> = store.history(j.id, 0).await.unwrap().iter().map(|t| t.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u32).collect::<Vec<_>>(), "no gaps, no duplicates");
    let mut seen = Vec::new();
    while let Ok(t) = events.try_recv() {
        seen.push(t.state);
    }
    assert_eq!(seen, [JobState::Escrowed, JobState::Queued, JobState::Assigned], "published once each");
}

/// A page's histories come back in one query, each complete and in order, and the jobs each
/// worker holds are counted in one grouped query (only assigned and proving jobs count).
async fn histories_and_active_counts_are_read_in_one_query_each(db: Db) {
    let store = Arc::new(db.open().await);
    let service = JobService::new(store.clone(), Rules::default());
    let (w1, w2) = (Felt::from(0xa1u8), Felt::from(0xa2u8));
    let mut ids = Vec::new();
    for (i, worker) in [(1, Some(w1)), (2, Some(w1)), (3, Some(w2)), (4, None)] {
        let j = job(i);
        insert(&store, &j).await;
        service.apply(j.id, escrow(&j), 2).await.unwrap();
        if let Some(worker) = worker {
            service.apply(j.id, Input::Assigned { worker, tx: Felt::from(i) }, 3).await.unwrap();
        }
        ids.push(j.id);
    }
    // Job 2's worker acknowledges (still held); job 4 stays queued (held by nobody).
    service.apply(ids[1], Input::Heartbeat { worker: w1, fence: 1 }, 4).await.unwrap();

    let histories = store.histories(&ids).await.unwrap();
    assert_eq!(histories.len(), 4);
    for id in &ids {
        assert_eq!(histories[id], store.history(*id, 0).await.unwrap(), "job {id:#x}");
        assert!(histories[id].windows(2).all(|w| w[0].seq < w[1].seq));
    }
    assert_eq!(histories[&ids[1]].last().unwrap().state, JobState::Proving);
    let active = store.active_by_worker().await.unwrap();
    assert_eq!(active.get(&w1), Some(&2));
    assert_eq!(active.get(&w2), Some(&1));
    assert_eq!(active.len(), 2);
    assert!(store.histories(&[]).await.unwrap().is_empty());
}

/// API keys (quota charged with the job, revocation), workers (heartbeats never move backwards,
/// outcomes add up), jobs listed and counted by state, and the outbox's idempotent put.
async fn keys_workers_and_the_outbox_round_trip(db: Db) {
    let store = db.open().await;
    let key = sage_jobs::keys::generate("client", 60, Some(1), 7).unwrap();
    let id = store.create_api_key(&key.row).await.unwrap();
    let read = store.api_key(&key.row.prefix).await.unwrap().unwrap();
    assert_eq!((read.id, read.quota, read.used, read.revoked_ms), (id, Some(1), 0, None));
    let j = job(10);
    let first = j.first_transition(1);
    assert!(matches!(store.insert_job(&j, &first, Some(id), Some("k1")).await.unwrap(), Inserted::Created(_)));
    // The same idempotency key returns the same job and charges nothing more.
    assert!(matches!(store.insert_job(&j, &first, Some(id), Some("k1")).await.unwrap(), Inserted::Existing(_)));
    // The quota of one is spent.
    let other = job(11);
    let err = store.insert_job(&other, &other.first_transition(1), Some(id), Some("k2")).await.unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded(1)), "{err}");
    assert!(store.job(other.id).await.unwrap().is_none(), "nothing half-stored");
    assert_eq!(store.job_api_key(j.id).await.unwrap(), Some(Some(id)));
    assert!(store.revoke_api_key("client", 9).await.unwrap());
    assert_eq!(store.api_keys().await.unwrap()[0].revoked_ms, Some(9));
    assert!(!store.revoke_api_key("client", 10).await.unwrap(), "already revoked");

    let w = sage_jobs::store::WorkerRow {
        address: Felt::from(0xa1u8),
        public_key: Felt::from(0xb1u8),
        tier: "T4".into(),
        capacity: 2,
        last_seen_ms: 100,
        completed: 0,
        failed: 0,
        prove_ms_sum: 0,
        work_sum: 0,
    };
    store.upsert_worker(&w).await.unwrap();
    store.upsert_worker(&sage_jobs::store::WorkerRow { last_seen_ms: 50, ..w.clone() }).await.unwrap();
    assert_eq!(store.worker(w.address).await.unwrap().unwrap().last_seen_ms, 100, "a late heartbeat never rewinds");
    store.record_outcome(w.address, true, 30, u128::from(u64::MAX) + 1).await.unwrap();
    store.record_outcome(w.address, false, 0, 0).await.unwrap();
    let back = store.worker(w.address).await.unwrap().unwrap();
    assert_eq!((back.completed, back.failed, back.prove_ms_sum, back.work_sum), (1, 1, 30, u128::from(u64::MAX) + 1));
    assert_eq!(store.workers().await.unwrap().len(), 1);

    assert_eq!(store.list_jobs(Some(j.client), Some(JobState::Submitted), 10).await.unwrap().len(), 1);
    assert!(store.list_jobs(Some(Felt::from(0x99u8)), None, 10).await.unwrap().is_empty());
    assert_eq!(store.count_by_state().await.unwrap(), [(JobState::Submitted, 1)]);
    assert_eq!(store.jobs_in(&[JobState::Submitted, JobState::Queued], 10).await.unwrap().len(), 1);

    let entry = OutboxEntry {
        key: "pay:10".into(),
        job_id: j.id,
        kind: "pay".into(),
        payload: "{}".into(),
        status: OutboxStatus::Pending,
        tx: None,
        error: None,
        created_ms: 5,
    };
    store.outbox_put(&entry).await.unwrap();
    let again = store.outbox_put(&OutboxEntry { payload: "{\"other\":1}".into(), ..entry.clone() }).await.unwrap();
    assert_eq!(again.payload, "{}", "the first write of a key wins");
    store.outbox_update("pay:10", OutboxStatus::Sent, Some(Felt::from(0x77u8)), None, 6).await.unwrap();
    store.outbox_update("pay:10", OutboxStatus::Confirmed, None, None, 7).await.unwrap();
    let done = &store.outbox_for(j.id).await.unwrap()[0];
    assert_eq!(
        (done.status, done.tx),
        (OutboxStatus::Confirmed, Some(Felt::from(0x77u8))),
        "a later update keeps the tx"
    );
    assert!(store.outbox_open().await.unwrap().is_empty());
}

/// A data dir whose path holds URL metacharacters still opens the file it names (and only it).
#[tokio::test]
async fn a_sqlite_path_with_url_metacharacters_opens_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("data 50% #1?x");
    std::fs::create_dir_all(&odd).unwrap();
    let store = SqlStore::open(&odd.join("jobs.db")).await.unwrap();
    insert(&store, &job(20)).await;
    drop(store);
    assert!(odd.join("jobs.db").exists(), "{:?}", std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no stray file beside it");
    let again = SqlStore::open(&odd.join("jobs.db")).await.unwrap();
    assert!(again.job(job(20).id).await.unwrap().is_some());
}

/// Several coordinators open one store: on PostgreSQL exactly one leads (a session advisory lock),
/// and when its session ends another takes over; SQLite, which one process opens, always leads.
async fn one_of_several_coordinators_leads_and_another_takes_over_when_it_goes(db: Db) {
    let first = db.open().await;
    assert!(first.lead().await.unwrap());
    assert!(first.lead().await.unwrap(), "a leader keeps leading");
    if matches!(db, Db::Sqlite(_)) {
        return;
    }
    let second = db.open().await;
    let third = db.open().await;
    assert!(!second.lead().await.unwrap());
    assert!(!third.lead().await.unwrap());
    // The leader's process goes away: its connections close, and the lock with its session.
    first.pool().close().await;
    drop(first);
    let start = std::time::Instant::now();
    let (a, b) = loop {
        let (a, b) = (second.lead().await.unwrap(), third.lead().await.unwrap());
        if a || b || start.elapsed() > std::time::Duration::from_secs(10) {
            break (a, b);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(a ^ b, "exactly one takes over (second {a}, third {b})");
}

/// The scheduler reads each queued job's outbox entries on every pass (`outbox_for`): the read
/// must go through an index. Without one each read scanned the whole outbox, which grows with
/// every job ever run (at 10,000 jobs, one pass of 64 reads spent about 230 ms scanning).
#[tokio::test]
async fn the_outbox_of_one_job_is_read_through_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coordinator.sqlite");
    drop(SqlStore::open(&path).await.unwrap());
    let mut conn =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let plan: Vec<(i64, i64, i64, String)> =
        sqlx::query_as("EXPLAIN QUERY PLAN SELECT * FROM outbox WHERE job_id = $1 ORDER BY created_ms, key")
            .bind("0x1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let detail = plan.iter().map(|r| r.3.as_str()).collect::<Vec<_>>().join("; ");
    assert!(detail.contains("USING INDEX outbox_by_job"), "{detail}");
}
