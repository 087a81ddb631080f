//! The validators of a test network, started in-process (shared by the devnet tests and the
//! `bench_validators` example).

#![allow(dead_code, reason = "each user takes what it needs")]

use std::time::Duration;

use sage_chain::Felt;
use sage_consensus::StarkKey;
use sage_coordinator::{
    Running,
    testing::{Api, Net},
};

/// The bridge's envelope limit in these tests (test-level proofs are tens of KB).
pub const BRIDGE_LIMIT: usize = 1024 * 1024;

pub struct Validators {
    pub running: Vec<sage_validator::Running>,
}

pub async fn validators(n: &Net, dir: &std::path::Path, running: &Running, api: &Api) -> Validators {
    validators_at(n, dir, running, api, &vec![0; n.validator_accounts.len()]).await
}

/// Free loopback ports (bound, then released) for bridges a coordinator must know in advance.
pub fn free_ports(count: usize) -> Vec<u16> {
    let held: Vec<_> = (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// The network's validators, validator `i` serving its bridge on `bridge_ports[i]` (0: any port).
pub async fn validators_at(
    n: &Net,
    dir: &std::path::Path,
    running: &Running,
    api: &Api,
    bridge_ports: &[u16],
) -> Validators {
    validators_with(n, dir, running, api, bridge_ports, Duration::from_millis(300)).await
}

/// [`validators_at`], each validator watching the chain every `tick`.
pub async fn validators_with(
    n: &Net,
    dir: &std::path::Path,
    running: &Running,
    api: &Api,
    bridge_ports: &[u16],
    tick: Duration,
) -> Validators {
    let api_key_file = dir.join("api.key");
    std::fs::write(&api_key_file, &api.key).unwrap();
    let mut validators = Vec::new();
    let mut first_addr: Option<sage_net::Multiaddr> = None;
    for (i, (account, secret)) in n.validator_accounts.iter().enumerate() {
        let home = dir.join(format!("validator-{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let key_file = home.join("account.key");
        std::fs::write(&key_file, format!("{secret:#x}\n")).unwrap();
        let vote_key_file = home.join("vote.key");
        // The vote keys `Network` registered: 7000 + i.
        std::fs::write(&vote_key_file, format!("{:#x}\n", Felt::from(7_000 + i as u64))).unwrap();
        let settings = sage_validator::Settings {
            data_dir: home.join("data"),
            rpc_url: n.devnet.rpc_url().to_string(),
            manifest: dir.join("manifest.json"),
            account: account.address(),
            key_file,
            vote_key_file,
            coordinator_url: api.base.clone(),
            api_key_file: api_key_file.clone(),
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            bootstrap: first_addr.iter().map(ToString::to_string).chain([running.p2p_addr.to_string()]).collect(),
            network: sage_net::DEFAULT_NETWORK,
            insecure_proofs: true,
            round_timeout_ms: 120_000,
            tick,
            submit_turn: Duration::from_secs(3),
            bridge_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], bridge_ports[i]))),
            max_envelope_bytes: BRIDGE_LIMIT,
            verify_threads: sage_validator::default_verify_threads(),
            verify_queue: sage_validator::DEFAULT_VERIFY_QUEUE,
        };
        let v = sage_validator::start(settings).await.unwrap();
        assert_eq!(v.index, i as u32);
        assert_eq!(v.vote_key, StarkKey::from_secret(Felt::from(7_000 + i as u64)).unwrap().public_key());
        first_addr.get_or_insert(v.p2p_addr.clone());
        validators.push(v);
    }
    Validators { running: validators }
}
