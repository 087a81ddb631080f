//! `cargo xtask bench sdk`: what the SDK costs per call over the HTTP request it makes, measured
//! in the same run against the same coordinator API (real HTTP on loopback, SQLite store):
//!
//! - upload (`Client::upload`, the coordinator half of `submit`; the escrow half is a chain
//!   transaction and is the same for any client) beside a raw `POST /v1/jobs` with the same body;
//! - status (`Client::status`) beside a raw `GET /v1/jobs/{id}` decoded into the same type.
//!
//! The last column is the SDK's time relative to raw HTTP (1.05x: 5 % more per call).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sage_jobs::{
    api::{ApiConfig, ApiState, router},
    keys,
    lifecycle::Rules,
    service::JobService,
    store::{SqlStore, Store},
};
use sage_protocol::api::{IDEMPOTENCY_HEADER, JobView, SubmitJob};
use sage_sdk::{ClientBuilder, Felt, JobSpec};

const CALLS: u64 = 2_000;
const WARMUP: u64 = 100;

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

fn row(label: &str, sdk: &mut [Duration], raw: &mut [Duration]) {
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        let (s, r) = (percentile(sdk, p), percentile(raw, p));
        println!("{:<34} {:>10.3} ms {:>10.3} ms {:>8.2}x", format!("{label} {name}"), s, r, s / r);
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqlStore::open(&dir.path().join("jobs.sqlite")).await.expect("store"));
    let key = keys::generate("bench", u32::MAX, None, 0).expect("key");
    store.create_api_key(&key.row).await.expect("api key");
    let service = JobService::new(store, Rules::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = router(ApiState::new(service, ApiConfig::new(dir.path().to_path_buf())));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sdk = ClientBuilder::new().url(&base).api_key(&key.text).build().expect("sdk");
    let raw = reqwest::Client::new();
    let client = Felt::from(0xc11e47u32);
    let spec = |i: u64| JobSpec::Matmul { n: 256, seed: Felt::from(i) };

    // Upload: SDK and raw alternate call by call, so both see the same store size and machine.
    let (mut sdk_up, mut raw_up) = (Vec::new(), Vec::new());
    let mut last = Felt::ZERO;
    for i in 0..(WARMUP + CALLS) {
        let (a, b) = (2 * i, 2 * i + 1);
        let t = Instant::now();
        let view = sdk.upload(client, Felt::from(a), &spec(a), &format!("k{a}")).await.expect("sdk upload");
        let sdk_t = t.elapsed();
        let body = SubmitJob { client, client_job_id: Felt::from(b), spec: spec(b) };
        let t = Instant::now();
        let r: JobView = raw
            .post(format!("{base}/v1/jobs"))
            .bearer_auth(&key.text)
            .header(IDEMPOTENCY_HEADER, format!("k{b}"))
            .json(&body)
            .send()
            .await
            .expect("raw upload")
            .error_for_status()
            .expect("raw status")
            .json()
            .await
            .expect("raw decode");
        let raw_t = t.elapsed();
        assert_eq!(r.client, client);
        if i >= WARMUP {
            sdk_up.push(sdk_t);
            raw_up.push(raw_t);
        }
        last = view.id;
    }

    let (mut sdk_st, mut raw_st) = (Vec::new(), Vec::new());
    for i in 0..(WARMUP + CALLS) {
        let t = Instant::now();
        let v = sdk.status(last).await.expect("sdk status");
        let sdk_t = t.elapsed();
        let t = Instant::now();
        let r: JobView = raw
            .get(format!("{base}/v1/jobs/{}", last.to_hex_string()))
            .bearer_auth(&key.text)
            .send()
            .await
            .expect("raw get")
            .error_for_status()
            .expect("raw status")
            .json()
            .await
            .expect("raw decode");
        let raw_t = t.elapsed();
        assert_eq!(v, r);
        if i >= WARMUP {
            sdk_st.push(sdk_t);
            raw_st.push(raw_t);
        }
    }

    println!("sage-sdk overhead per call, {CALLS} calls each, same API and store, loopback HTTP");
    println!("{:<34} {:>13} {:>13} {:>9}", "", "sdk", "raw HTTP", "sdk/raw");
    row("upload (POST /v1/jobs)", &mut sdk_up, &mut raw_up);
    row("status (GET /v1/jobs/{id})", &mut sdk_st, &mut raw_st);
}
