//! The SQLite store on real files: it survives a restart, refuses stale writes without changing
//! anything, and serialises concurrent changes to one job through the service's retry.

use std::sync::Arc;

use sage_jobs::{
    lifecycle::{Input, JobRecord, Rules, apply},
    service::JobService,
    store::{Inserted, OutboxEntry, OutboxStatus, SqliteStore, Store, StoreError},
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

async fn insert(store: &SqliteStore, job: &JobRecord) {
    let first = job.first_transition(1);
    assert!(matches!(store.insert_job(job, &first, None, None).await.unwrap(), Inserted::Created(_)));
}

#[tokio::test]
async fn jobs_outbox_and_cursors_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let j = job(1);
    {
        let store = SqliteStore::open(&path).await.unwrap();
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
    let store = SqliteStore::open(&path).await.unwrap();
    let back = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(back.state, JobState::Queued);
    let states: Vec<_> = store.history(j.id, 0).await.unwrap().iter().map(|t| t.state).collect();
    assert_eq!(states, [JobState::Submitted, JobState::Escrowed, JobState::Queued]);
    assert_eq!(store.outbox_open().await.unwrap().len(), 1);
    assert_eq!(store.cursor("chain").await.unwrap(), Some(42));
}

#[tokio::test]
async fn a_stale_write_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("jobs.db")).await.unwrap();
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

#[tokio::test]
async fn concurrent_inputs_to_one_job_are_serialised_by_retry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("jobs.db")).await.unwrap());
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
#[tokio::test]
async fn histories_and_active_counts_are_read_in_one_query_each() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("jobs.db")).await.unwrap());
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
