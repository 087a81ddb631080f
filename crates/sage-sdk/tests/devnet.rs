//! The SDK against a real coordinator on a real starknet-devnet with the real contracts: a job is
//! submitted (escrowed from the client's own account), proved by a worker node, certified by a
//! quorum certificate of staked validators, paid, and verified on the client. A retried submit
//! with the same idempotency key escrows once; a proof tampered with on its way to the client is
//! rejected; bad input is refused before anything is spent.
//!
//! The devnet binary comes from `cargo xtask tools`; without it these tests fail with the install
//! instruction rather than skipping.

use std::time::Duration;

use sage_chain::contracts::JobStatus;
use sage_consensus::Verdict;
use sage_coordinator::testing::{Net, coordinator, net, worker};
use sage_protocol::api::ProblemCode;
use sage_sdk::{Client, ClientBuilder, Felt, JobSpec, Outcome, SdkError, Security, SubmitOptions};

fn client(n: &Net, url: &str, key: &str) -> Client {
    ClientBuilder::new()
        .url(url)
        .api_key(key)
        .account(n.net.client_acc.clone(), n.net.contracts)
        .security(Security::Test)
        .build()
        .unwrap()
}

/// Runs `job` through the worker node and the validators' QC (valid).
async fn prove_and_certify(n: &Net, w: &mut sage_coordinator::testing::TestWorker, job: Felt) -> Felt {
    let a = w.next_assignment().await;
    assert_eq!(a.job_id, job);
    let proof = w.prove_and_submit(n, &a).await;
    n.net.certify(job, proof, Verdict::Valid).await;
    proof
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_wait_and_verify_on_the_client() {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 60).await;
    let mut w = worker(&n, 0, &running).await;
    let sdk = client(&n, &format!("http://{}", running.api_addr), &key);

    let spec = JobSpec::Matmul { n: 8, seed: Felt::from(0x5d4u32) };
    let quote = sdk.quote(&spec).await.unwrap();
    let submitted = sdk.submit(&spec, SubmitOptions::default().idempotency_key("sdk-test-1")).await.unwrap();
    assert!(submitted.escrow_tx.is_some());
    assert_eq!(submitted.payment, quote.price);
    let on_chain = n.net.contracts.jobs.get_job(&n.net.client, submitted.id).await.unwrap();
    assert_eq!((on_chain.client, on_chain.payment), (n.net.client_acc.address(), quote.price));

    let proof = prove_and_certify(&n, &mut w, submitted.id).await;
    match sdk.wait(submitted.id, Duration::from_secs(120)).await.unwrap() {
        Outcome::Certified(v) => {
            assert_eq!(v.proof_hash, proof);
            assert_eq!(v.worker, w.account.address());
            assert!(v.paid, "wait returns once the job is paid");
            assert!(v.security_bits > 0);
        }
        other => panic!("expected a certified result, got {other:?}"),
    }
    // The output, accepted only because it matches the verified proof's output commitment.
    let c = sdk.output(submitted.id).await.unwrap();
    let (a, b) = obelysk_prover::matmul::derive_matrices(8, &Felt::from(0x5d4u32).to_bytes_be());
    assert_eq!(c, obelysk_prover::matmul::native_matmul(8, &a, &b));
    let history = sdk.jobs(10).await.unwrap();
    assert!(
        history.iter().any(|j| j.id == submitted.id && j.escrow.as_ref().is_some_and(|e| e.payment == quote.price))
    );
    drop(w.alive);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_submit_makes_one_job_and_one_escrow() {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 60).await;
    let sdk = client(&n, &format!("http://{}", running.api_addr), &key);
    let token = n.net.contracts.token;
    let before = token.balance_of(&n.net.client, n.net.client_acc.address()).await.unwrap();

    let spec = JobSpec::Matmul { n: 8, seed: Felt::from(0x77u8) };
    let options = SubmitOptions::default().idempotency_key("order-42");
    let first = sdk.submit(&spec, options.clone()).await.unwrap();
    let again = sdk.submit(&spec, options.clone()).await.unwrap();
    assert_eq!(again.id, first.id);
    assert!(first.escrow_tx.is_some());
    assert_eq!(again.escrow_tx, None, "the retry found the escrow and paid nothing");
    assert_eq!(again.payment, first.payment);
    let after = token.balance_of(&n.net.client, n.net.client_acc.address()).await.unwrap();
    assert_eq!(before - after, first.payment, "escrowed exactly once");
    let jobs = sdk.jobs(50).await.unwrap();
    assert_eq!(jobs.iter().filter(|j| j.id == first.id).count(), 1);

    // The same key with another spec is a conflict, not a second job.
    let other = JobSpec::Matmul { n: 8, seed: Felt::from(0x78u8) };
    let err = sdk.submit(&other, options).await.unwrap_err();
    assert!(
        matches!(&err, SdkError::Api { code: ProblemCode::Conflict, .. } | SdkError::EscrowConflict { .. }),
        "{err}"
    );
    assert_eq!(token.balance_of(&n.net.client, n.net.client_acc.address()).await.unwrap(), after);

    // Cancel before assignment (no worker is running): the escrow comes back.
    sdk.cancel(first.id).await.unwrap();
    assert_eq!(n.net.contracts.jobs.get_job(&n.net.client, first.id).await.unwrap().status, JobStatus::Refunded);
    assert_eq!(token.balance_of(&n.net.client, n.net.client_acc.address()).await.unwrap(), before);
    running.shutdown().await;
}

/// What a malicious or broken coordinator (or anyone on the path) can try against the client, and
/// why it fails: a tampered proof envelope does not verify. And bad input (an unknown job, an
/// invalid spec, an unknown API key, no account, a coordinator that is down) is a typed error,
/// refused before anything is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampered_proofs_and_bad_input_are_refused() {
    let n = net(1).await;
    let dir = tempfile::tempdir().unwrap();
    let (running, key) = coordinator(&n, dir.path(), 60).await;
    let mut w = worker(&n, 0, &running).await;
    let upstream = format!("http://{}", running.api_addr);
    let sdk = client(&n, &upstream, &key);
    let spec = JobSpec::Matmul { n: 8, seed: Felt::from(0x99u8) };
    let job = sdk.submit(&spec, SubmitOptions::default()).await.unwrap().id;
    prove_and_certify(&n, &mut w, job).await;
    assert!(matches!(sdk.wait(job, Duration::from_secs(120)).await.unwrap(), Outcome::Certified(_)));

    // A proxy that flips one byte of every proof it relays.
    let proxy = tamper_proxy(upstream.clone(), "/proof").await;
    let fooled = client(&n, &proxy, &key);
    let err = fooled.verify(job).await.unwrap_err();
    assert!(matches!(err, SdkError::Verification { .. }), "{err}");
    // One that serves the true proof but a changed output: the output check catches it.
    let proxy = tamper_proxy(upstream.clone(), "/output").await;
    let fooled = client(&n, &proxy, &key);
    assert!(fooled.verify(job).await.is_ok());
    let err = fooled.output(job).await.unwrap_err();
    assert!(matches!(&err, SdkError::Verification { reason, .. } if reason.contains("output")), "{err}");
    // A client that did not submit the job itself still checks the served spec against the
    // escrow (here: the honest path passes).
    let other = client(&n, &upstream, &key);
    assert!(other.verify(job).await.is_ok());

    // Bad input.
    let err = sdk.status(Felt::from(0xdeadu32)).await.unwrap_err();
    assert!(matches!(err, SdkError::Api { code: ProblemCode::NotFound, status: 404, .. }), "{err}");
    let before = n.net.contracts.token.balance_of(&n.net.client, n.net.client_acc.address()).await.unwrap();
    let err = sdk.submit(&JobSpec::Matmul { n: 3, seed: Felt::ONE }, SubmitOptions::default()).await.unwrap_err();
    assert!(matches!(err, SdkError::InvalidSpec(_)), "{err}");
    let after = n.net.contracts.token.balance_of(&n.net.client, n.net.client_acc.address()).await.unwrap();
    assert_eq!(before, after, "nothing escrowed for an invalid spec");
    let unauthenticated = ClientBuilder::new().url(&upstream).api_key("sk_not_a_key").build().unwrap();
    let err = unauthenticated.workers().await.unwrap_err();
    assert!(matches!(err, SdkError::Api { code: ProblemCode::Unauthorized, .. }), "{err}");
    let err = unauthenticated.submit(&spec, SubmitOptions::default()).await.unwrap_err();
    assert!(matches!(err, SdkError::NoAccount), "{err}");
    let down = ClientBuilder::new().url("http://127.0.0.1:9").api_key("k").retries(1).build().unwrap();
    let err = down.workers().await.unwrap_err();
    assert!(matches!(err, SdkError::Unreachable { .. }) && err.is_transient(), "{err}");
    drop(w.alive);
    running.shutdown().await;
}

/// A loopback HTTP proxy to `upstream` that flips a byte in the middle of every body whose path
/// ends with `suffix`.
async fn tamper_proxy(upstream: String, suffix: &'static str) -> String {
    use axum::{
        body::Bytes,
        extract::State,
        http::{HeaderMap, StatusCode, Uri},
        response::IntoResponse,
    };
    async fn relay(
        State((upstream, suffix)): State<(String, &'static str)>,
        uri: Uri,
        headers: HeaderMap,
    ) -> impl IntoResponse {
        let mut request = reqwest::Client::new().get(format!("{upstream}{uri}"));
        if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let mut body = response.bytes().await.unwrap().to_vec();
        if uri.path().ends_with(suffix) && !body.is_empty() {
            let mid = body.len() / 2;
            body[mid] ^= 0x01;
        }
        (status, Bytes::from(body))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(relay).with_state((upstream, suffix));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
