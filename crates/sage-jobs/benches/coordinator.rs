//! `cargo xtask bench coordinator`: the coordinator's store, API and scheduler, each figure beside
//! a baseline measured in the same run.
//!
//! - submissions per second and submit latency (p50/p99) over real HTTP on loopback with 10,000
//!   jobs already stored, beside a raw SQLite insert of the same row size on the same machine;
//! - status (`GET /v1/jobs/{id}`) latency, beside a raw SQLite primary-key read;
//! - the assignment decision (`scheduler::choose`) over 1,000 registered workers, beside a bare
//!   minimum-by-key scan of the same candidates (the floor any decision costs).
//!
//! The last column is the cost relative to the baseline (2.0x: twice the time per operation).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sage_jobs::{
    api::{ApiConfig, ApiState, router},
    keys,
    lifecycle::{JobRecord, Rules},
    scheduler::{Candidate, SchedulerRules, choose},
    service::JobService,
    store::{SqlStore, Store},
};
use sage_protocol::{Felt, JobSpec, api::SubmitJob};
use sqlx::{Row, sqlite::SqliteConnectOptions};

const STORED: u64 = 10_000;
const MEASURED: u64 = 2_000;
const WORKERS: u64 = 1_000;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn row(label: &str, value: f64, unit: &str, baseline: f64, better_is_lower: bool) {
    let ratio = if better_is_lower { value / baseline } else { baseline / value };
    println!("{label:<46} {value:>12.3} {unit:<6} {baseline:>12.3} {unit:<6} {ratio:>8.2}x");
}

fn spec(i: u64) -> JobSpec {
    JobSpec::Matmul { n: 256, seed: Felt::from(i) }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqlStore::open(&dir.path().join("jobs.sqlite")).await.expect("store"));
    let client = Felt::from(0xc11e47u32);

    // 10,000 jobs stored first (through the store, as the API stores them).
    let fill = Instant::now();
    for i in 0..STORED {
        let job = JobRecord::submitted(client, Felt::from(i), spec(i));
        store.insert_job(&job, &job.first_transition(0), None, None).await.expect("insert");
    }
    let fill = fill.elapsed();

    // The raw baseline: one table, one row per job of the same JSON size, one transaction each.
    let raw = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(dir.path().join("raw.sqlite"))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal),
        )
        .await
        .expect("raw sqlite");
    sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL)").execute(&raw).await.expect("table");
    let body = serde_json::to_string(&spec(1)).expect("json");
    let raw_fill = Instant::now();
    for i in 0..STORED {
        sqlx::query("INSERT INTO t (id, body) VALUES (?, ?)")
            .bind(format!("{:#x}", Felt::from(i)))
            .bind(&body)
            .execute(&raw)
            .await
            .expect("raw insert");
    }
    let raw_fill = raw_fill.elapsed();

    // The API on loopback.
    let service = JobService::new(store.clone(), Rules::default());
    let key = keys::generate("bench", u32::MAX, None, 0).expect("key");
    store.create_api_key(&key.row).await.expect("api key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = router(ApiState::new(service, ApiConfig::new(dir.path().to_path_buf())));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    let mut submit = Vec::new();
    let mut ids = Vec::new();
    let submitting = Instant::now();
    for i in STORED..STORED + MEASURED {
        let body = SubmitJob { client, client_job_id: Felt::from(i), spec: spec(i) };
        let t = Instant::now();
        let r = http.post(format!("{base}/v1/jobs")).bearer_auth(&key.text).json(&body).send().await.expect("post");
        assert_eq!(r.status(), 201);
        let view: serde_json::Value = r.json().await.expect("view");
        submit.push(t.elapsed());
        ids.push(view["id"].as_str().expect("id").to_owned());
    }
    let submitting = submitting.elapsed();
    let mut status = Vec::new();
    for id in &ids {
        let t = Instant::now();
        let r = http.get(format!("{base}/v1/jobs/{id}")).bearer_auth(&key.text).send().await.expect("get");
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await.expect("body");
        status.push(t.elapsed());
    }

    let mut raw_insert = Vec::new();
    for i in STORED..STORED + MEASURED {
        let t = Instant::now();
        sqlx::query("INSERT INTO t (id, body) VALUES (?, ?)")
            .bind(format!("{:#x}", Felt::from(i)))
            .bind(&body)
            .execute(&raw)
            .await
            .expect("raw insert");
        raw_insert.push(t.elapsed());
    }
    let mut raw_read = Vec::new();
    for i in 0..MEASURED {
        let t = Instant::now();
        let r = sqlx::query("SELECT body FROM t WHERE id = ?")
            .bind(format!("{:#x}", Felt::from(i * 5)))
            .fetch_one(&raw)
            .await
            .expect("raw read");
        let _: String = r.get(0);
        raw_read.push(t.elapsed());
    }

    // The assignment decision over 1,000 workers (all eligible: every filter runs on each).
    let candidates: Vec<Candidate> = (0..WORKERS)
        .map(|i| Candidate {
            address: Felt::from(i + 1),
            stake_ok: true,
            attested: true,
            last_seen_ms: 1_000_000,
            free: 1,
            throughput: Some(1.0e4 + (i % 97) as f64),
            reputation: (i % 1000) as u32,
        })
        .collect();
    let rules = SchedulerRules::default();
    let job = spec(1);
    let rounds = 2_000;
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(choose(&job, 10_000_000, 1_000_000, std::hint::black_box(&candidates), &rules))
            .expect("a worker");
    }
    let decide = t.elapsed() / rounds;
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(
            std::hint::black_box(&candidates)
                .iter()
                .min_by(|a, b| a.throughput.partial_cmp(&b.throughput).unwrap_or(std::cmp::Ordering::Equal))
                .map(|c| c.address),
        );
    }
    let scan = t.elapsed() / rounds;

    println!("coordinator bench: {STORED} jobs stored, {MEASURED} measured requests, {WORKERS} workers");
    println!("{:<46} {:>19} {:>19} {:>9}", "figure", "sage", "baseline", "cost");
    row(
        "store inserts/s (filling 10k; vs raw INSERT)",
        STORED as f64 / fill.as_secs_f64(),
        "/s",
        STORED as f64 / raw_fill.as_secs_f64(),
        false,
    );
    row(
        "API submissions/s, 10k stored (vs raw INSERT)",
        MEASURED as f64 / submitting.as_secs_f64(),
        "/s",
        MEASURED as f64 / raw_insert.iter().sum::<Duration>().as_secs_f64(),
        false,
    );
    let (s50, s99) = (percentile(&mut submit, 0.5), percentile(&mut submit, 0.99));
    let (r50, r99) = (percentile(&mut raw_insert, 0.5), percentile(&mut raw_insert, 0.99));
    row("POST /v1/jobs p50 (vs raw INSERT p50)", ms(s50), "ms", ms(r50), true);
    row("POST /v1/jobs p99 (vs raw INSERT p99)", ms(s99), "ms", ms(r99), true);
    let (g50, g99) = (percentile(&mut status, 0.5), percentile(&mut status, 0.99));
    let (q50, q99) = (percentile(&mut raw_read, 0.5), percentile(&mut raw_read, 0.99));
    row("GET /v1/jobs/{id} p50 (vs raw SELECT p50)", ms(g50), "ms", ms(q50), true);
    row("GET /v1/jobs/{id} p99 (vs raw SELECT p99)", ms(g99), "ms", ms(q99), true);
    row(
        "choose() over 1,000 workers (vs min-by scan)",
        decide.as_secs_f64() * 1e6,
        "us",
        scan.as_secs_f64() * 1e6,
        true,
    );
}
