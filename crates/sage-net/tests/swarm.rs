//! Real libp2p swarms on 127.0.0.1: discovery from one bootstrap peer, verified gossip, a 200 KiB
//! blob fetch, and peers that send garbage or oversized messages.

use std::time::Duration;

use sage_keys::StarkKey;
use sage_net::{
    Heartbeat, NetConfig, NetError, NetEvent, NodeHandle, PeerId, SignedMessage, Topic, blob_hash,
    load_or_create_identity,
};
use starknet_types_core::felt::Felt;
use tokio::{sync::mpsc::Receiver, time::timeout};

fn key(i: u32) -> StarkKey {
    StarkKey::from_secret(Felt::from(0x5000 + i)).unwrap()
}

async fn node(
    i: u32,
    bootstrap: Option<&NodeHandle>,
    max_gossip_bytes: Option<usize>,
) -> (NodeHandle, Receiver<NetEvent>) {
    let mut config = NetConfig { mesh_n: 2, ..NetConfig::default() };
    if let Some(b) = bootstrap {
        config.bootstrap.push(b.listen_addr().clone());
    }
    if let Some(max) = max_gossip_bytes {
        config.max_gossip_bytes = max;
    }
    NodeHandle::start(config, libp2p_identity(), key(i)).await.unwrap()
}

fn libp2p_identity() -> libp2p::identity::Keypair {
    libp2p::identity::Keypair::generate_ed25519()
}

/// Waits until `pred` holds, polling every 50 ms, up to 20 s.
async fn eventually<F, Fut>(what: &str, mut pred: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if pred().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn next_message(rx: &mut Receiver<NetEvent>, wait: Duration) -> Option<(PeerId, SignedMessage)> {
    timeout(wait, async {
        loop {
            match rx.recv().await {
                Some(NetEvent::Message { from, message }) => return Some((from, message)),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Signs `payload` with the node's key and publishes it once the topic has peers.
async fn publish_when_ready(node: &NodeHandle, topic: Topic, payload: Vec<u8>) {
    let message = node.sign(topic, payload).unwrap();
    node.publish_when_ready(&message, Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_from_one_bootstrap_peer_and_verified_gossip() {
    let (boot, _boot_rx) = node(0, None, None).await;
    let (b, mut b_rx) = node(1, Some(&boot), None).await;
    let (c, mut c_rx) = node(2, Some(&boot), None).await;
    // B and C only know the bootstrap node; Kademlia tells each about the other.
    eventually("B and C to discover each other", || {
        let (b, c) = (b.clone(), c.clone());
        async move {
            b.routing_table().await.unwrap().contains(&c.peer_id())
                && c.connected_peers().await.unwrap().contains(&b.peer_id())
        }
    })
    .await;

    let hb = Heartbeat {
        worker: sage_keys::oz_account_address(key(1).public_key(), key(1).public_key()),
        gpu_tier: Some(sage_net::GpuTier::H100),
        backend: "gpu".into(),
        load_percent: 12,
        timestamp: 1,
        jobs: Vec::new(),
    };
    let signed = hb.sign(&key(1), b.network()).unwrap();
    b.publish_when_ready(&signed, Duration::from_secs(10)).await.unwrap();
    let (_, msg) = next_message(&mut c_rx, Duration::from_secs(20)).await.expect("C receives B's heartbeat");
    assert_eq!(msg.signer, key(1).public_key());
    assert_eq!(Heartbeat::from_message(&msg).unwrap(), hb);

    // The stated payload limit is the real one: a maximal payload crosses the network.
    let big = b.sign(Topic::Votes, vec![0xff; sage_net::MAX_PAYLOAD_BYTES]).unwrap();
    assert!(big.encode().len() <= sage_net::DEFAULT_MAX_GOSSIP_BYTES);
    b.publish_when_ready(&big, Duration::from_secs(10)).await.unwrap();
    let (_, msg) = next_message(&mut c_rx, Duration::from_secs(20)).await.expect("C receives the maximal payload");
    assert_eq!(msg.payload.len(), sage_net::MAX_PAYLOAD_BYTES);

    publish_when_ready(&c, Topic::Votes, b"vote from C".to_vec()).await;
    let (_, msg) = next_message(&mut b_rx, Duration::from_secs(20)).await.expect("B receives C's vote");
    assert_eq!((msg.topic, msg.payload.as_slice()), (Topic::Votes, &b"vote from C"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_kib_proof_is_fetched_by_hash_and_checked() {
    let (a, _a_rx) = node(10, None, None).await;
    let (b, _b_rx) = node(11, Some(&a), None).await;
    let proof: Vec<u8> = (0..200 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let hash = a.provide(proof.clone()).await.unwrap();
    assert_eq!(hash, blob_hash(&proof));
    eventually("B connected to A", || {
        let b = b.clone();
        let a_id = a.peer_id();
        async move { b.connected_peers().await.unwrap().contains(&a_id) }
    })
    .await;
    let fetched = b.fetch(a.peer_id(), hash).await.unwrap();
    assert_eq!(fetched, proof);
    let err = b.fetch(a.peer_id(), [0u8; 32]).await.unwrap_err();
    assert!(err.to_string().contains("does not have it"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_its_newest_blobs_up_to_its_byte_cap() {
    let config = NetConfig { mesh_n: 2, max_served_bytes: 2048, ..NetConfig::default() };
    let (a, _a_rx) = NodeHandle::start(config, libp2p_identity(), key(20)).await.unwrap();
    let (b, _b_rx) = node(21, Some(&a), None).await;
    let blob = |i: u8| vec![i; 1000];
    let mut hashes = Vec::new();
    for i in 0..3 {
        hashes.push(a.provide(blob(i)).await.unwrap());
    }
    // Providing the same blob again neither duplicates nor evicts anything.
    assert_eq!(a.provide(blob(2)).await.unwrap(), hashes[2]);
    eventually("B connected to A", || {
        let b = b.clone();
        let a_id = a.peer_id();
        async move { b.connected_peers().await.unwrap().contains(&a_id) }
    })
    .await;
    // 3000 bytes over a 2048-byte cap: the oldest blob was forgotten, the two newest are served.
    let err = b.fetch(a.peer_id(), hashes[0]).await.unwrap_err();
    assert!(err.to_string().contains("does not have it"), "{err}");
    assert_eq!(b.fetch(a.peer_id(), hashes[1]).await.unwrap(), blob(1));
    assert_eq!(b.fetch(a.peer_id(), hashes[2]).await.unwrap(), blob(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_gossip_is_rejected_and_harms_nobody() {
    let (honest, mut honest_rx) = node(20, None, None).await;
    // The attacker's codec allows 1 MiB messages; honest peers keep the 64 KiB default.
    let (attacker, _attacker_rx) = node(21, Some(&honest), Some(1024 * 1024)).await;
    let (other, _other_rx) = node(22, Some(&honest), None).await;

    for _ in 0..200 {
        if attacker.publish_unchecked(Topic::Jobs, b"\x00\x01 not a message".to_vec()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A well-formed envelope signed for another topic, replayed on Jobs.
    let net = attacker.network();
    let replayed = SignedMessage::sign(net, Topic::Votes, b"replay".to_vec(), &key(21)).unwrap();
    attacker.publish_unchecked(Topic::Jobs, replayed.encode()).await.unwrap();
    // A forged signer.
    let mut forged = SignedMessage::sign(net, Topic::Jobs, b"forged".to_vec(), &key(21)).unwrap();
    forged.signer = key(20).public_key();
    attacker.publish_unchecked(Topic::Jobs, forged.encode()).await.unwrap();
    // A valid signature over a payload that is not a job assignment (refused on the sending side
    // too: an honest node cannot publish it).
    let not_a_job = SignedMessage::sign(net, Topic::Jobs, b"not a job".to_vec(), &key(21)).unwrap();
    assert!(matches!(attacker.publish_signed(&not_a_job).await, Err(NetError::Message(_))));
    attacker.publish_unchecked(Topic::Jobs, not_a_job.encode()).await.unwrap();
    // A valid vote signed for another network (SN_MAIN), replayed here; an honest node will not
    // even publish it.
    let other_net =
        SignedMessage::sign(Felt::from(0x534e5f4d41494e_u64), Topic::Votes, b"v".to_vec(), &key(21)).unwrap();
    assert!(matches!(attacker.publish_signed(&other_net).await, Err(NetError::Message(_))));
    attacker.publish_unchecked(Topic::Votes, other_net.encode()).await.unwrap();
    // A heartbeat in another worker's name.
    let victim = sage_keys::oz_account_address(key(20).public_key(), key(20).public_key());
    let hb = Heartbeat {
        worker: victim,
        gpu_tier: None,
        backend: "cpu".into(),
        load_percent: 0,
        timestamp: 1,
        jobs: Vec::new(),
    };
    let impostor = hb.sign(&key(21), net).unwrap();
    assert!(matches!(attacker.publish_signed(&impostor).await, Err(NetError::Message(_))));
    attacker.publish_unchecked(Topic::Heartbeats, impostor.encode()).await.unwrap();
    // Last: 100 KiB, over the honest node's transmit limit (its codec drops the stream).
    attacker.publish_unchecked(Topic::Jobs, vec![b'x'; 100 * 1024]).await.unwrap();

    eventually("the honest node to reject the six invalid messages", || {
        let honest = honest.clone();
        async move { honest.stats().await.unwrap().rejected >= 6 }
    })
    .await;
    assert!(
        next_message(&mut honest_rx, Duration::from_millis(500)).await.is_none(),
        "nothing invalid reached the app"
    );
    // Gossipsub scoring remembers who sent the garbage: the attacker's score is negative (it is
    // soon graylisted), the honest peer's is not.
    let attacker_score = honest.peer_score(attacker.peer_id()).await.unwrap().expect("attacker scored");
    assert!(attacker_score < 0.0, "attacker score {attacker_score}");
    let other_score = honest.peer_score(other.peer_id()).await.unwrap().unwrap_or(0.0);
    assert!(other_score >= 0.0, "honest peer score {other_score}");

    // Everyone is still up: a valid message from the other node gets through.
    publish_when_ready(&other, Topic::Votes, b"real vote".to_vec()).await;
    let (_, msg) = next_message(&mut honest_rx, Duration::from_secs(20)).await.expect("valid message after the attack");
    assert_eq!(msg.payload, b"real vote");
    assert_eq!(honest.stats().await.unwrap().delivered, 1);
}

#[test]
fn identity_is_created_once_with_private_permissions_and_reloaded() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("p2p.key");
    let first = load_or_create_identity(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let again = load_or_create_identity(&path).unwrap();
    assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
    std::fs::write(&path, b"garbage").unwrap();
    assert!(load_or_create_identity(&path).is_err());
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_transport_carries_gossip_and_blobs() {
    let quic = |bootstrap: Option<&NodeHandle>| {
        let mut config =
            NetConfig { listen: "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(), mesh_n: 2, ..NetConfig::default() };
        if let Some(b) = bootstrap {
            config.bootstrap.push(b.listen_addr().clone());
        }
        config
    };
    let (a, _a_rx) = NodeHandle::start(quic(None), libp2p_identity(), key(30)).await.unwrap();
    assert!(a.listen_addr().to_string().contains("/quic-v1/"), "{}", a.listen_addr());
    let (b, mut b_rx) = NodeHandle::start(quic(Some(&a)), libp2p_identity(), key(31)).await.unwrap();
    publish_when_ready(&a, Topic::Votes, b"over quic".to_vec()).await;
    let (_, msg) = next_message(&mut b_rx, Duration::from_secs(20)).await.expect("gossip over QUIC");
    assert_eq!(msg.payload, b"over quic");
    let blob = vec![7u8; 150 * 1024];
    let hash = a.provide(blob.clone()).await.unwrap();
    assert_eq!(b.fetch(a.peer_id(), hash).await.unwrap(), blob);
}

/// A peer that floods valid messages is cut at its rate: the excess is neither delivered nor
/// forwarded, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_rate_limited() {
    let config = NetConfig { mesh_n: 2, max_messages_per_peer: 5, ..NetConfig::default() };
    let (limited, mut limited_rx) = NodeHandle::start(config, libp2p_identity(), key(31)).await.unwrap();
    let (flooder, _flooder_rx) = node(32, Some(&limited), None).await;
    publish_when_ready(&flooder, Topic::Votes, b"vote 0".to_vec()).await;
    for i in 1..20 {
        flooder.publish(Topic::Votes, format!("vote {i}").into_bytes()).await.unwrap();
    }
    eventually("the limited node to count the excess", || {
        let limited = limited.clone();
        async move { limited.stats().await.unwrap().rate_limited >= 10 }
    })
    .await;
    let stats = limited.stats().await.unwrap();
    assert_eq!(stats.delivered, 5, "{stats:?}");
    let mut received = 0;
    while next_message(&mut limited_rx, Duration::from_millis(300)).await.is_some() {
        received += 1;
    }
    assert_eq!(received, 5);
}

/// A node accepts at most `max_incoming_connections` peers: one more is refused at the
/// connection level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_connections_are_capped() {
    let config = NetConfig { mesh_n: 2, max_incoming_connections: 1, ..NetConfig::default() };
    let (limited, _rx) = NodeHandle::start(config, libp2p_identity(), key(41)).await.unwrap();
    let (first, _first_rx) = node(42, Some(&limited), None).await;
    eventually("the first peer to connect", || {
        let limited = limited.clone();
        let first = first.peer_id();
        async move { limited.connected_peers().await.unwrap().contains(&first) }
    })
    .await;
    let (second, _second_rx) = node(43, Some(&limited), None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(limited.connected_peers().await.unwrap(), vec![first.peer_id()]);
    assert!(!second.connected_peers().await.unwrap().contains(&limited.peer_id()));
}

/// Eighteen nodes on one host (a coordinator, sixteen validators and a worker, as in
/// `cargo xtask bench validators`): gossipsub's IP-colocation penalty must not silence peers that
/// share a loopback address, or the newest node finds nobody to publish to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eighteen_nodes_on_one_host_still_hear_each_other() {
    let (hub, mut hub_rx) = node(100, None, None).await;
    let mut others = Vec::new();
    for i in 0..16 {
        others.push(node(101 + i, Some(&hub), None).await);
    }
    eventually("the hub to see all sixteen", || {
        let hub = hub.clone();
        async move { hub.connected_peers().await.unwrap().len() >= 16 }
    })
    .await;
    let (last, _last_rx) = node(120, Some(&hub), None).await;
    // Kademlia connects the newcomer to more nodes on 127.0.0.1 than the colocation threshold.
    eventually("the newcomer to know more than ten peers", || {
        let last = last.clone();
        async move { last.connected_peers().await.unwrap().len() > 10 }
    })
    .await;
    publish_when_ready(&last, Topic::Votes, b"newcomer".to_vec()).await;
    let (_, msg) = next_message(&mut hub_rx, Duration::from_secs(20)).await.expect("the hub hears the newcomer");
    assert_eq!(msg.payload, b"newcomer");
    drop(others);
}

/// A node that subscribes to results and votes only (a validator) never hears heartbeats, while a
/// full node beside it does; it still hears votes and can publish on any topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hears_only_the_topics_it_subscribes_to() {
    let (full, mut full_rx) = node(40, None, None).await;
    let config = NetConfig {
        mesh_n: 2,
        bootstrap: vec![full.listen_addr().clone()],
        topics: vec![Topic::Results, Topic::Votes],
        ..NetConfig::default()
    };
    let (narrow, mut narrow_rx) = NodeHandle::start(config, libp2p_identity(), key(41)).await.unwrap();
    let (worker, _worker_rx) = node(42, Some(&full), None).await;
    eventually("the narrow node to be connected", || {
        let (narrow, full_id) = (narrow.clone(), full.peer_id());
        async move { narrow.connected_peers().await.unwrap().contains(&full_id) }
    })
    .await;
    let beat = |timestamp| Heartbeat {
        worker: sage_keys::oz_account_address(key(42).public_key(), key(42).public_key()),
        gpu_tier: None,
        backend: "cpu".into(),
        load_percent: 0,
        timestamp,
        jobs: Vec::new(),
    };
    worker
        .publish_when_ready(&beat(1).sign(&key(42), worker.network()).unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    let (_, msg) = next_message(&mut full_rx, Duration::from_secs(20)).await.expect("the full node hears it");
    assert_eq!(msg.topic, Topic::Heartbeats);
    publish_when_ready(&worker, Topic::Votes, b"vote".to_vec()).await;
    let (_, msg) = next_message(&mut narrow_rx, Duration::from_secs(20)).await.expect("the narrow node hears votes");
    assert_eq!(msg.topic, Topic::Votes, "the first message the narrow node hears is the vote, not the heartbeat");
    worker.publish_signed(&beat(2).sign(&key(42), worker.network()).unwrap()).await.unwrap();
    assert!(
        next_message(&mut narrow_rx, Duration::from_secs(3)).await.is_none(),
        "a heartbeat reached the narrow node"
    );
    // Publishing on an unsubscribed topic still reaches those who subscribe.
    let assignment = sage_net::JobAssignment {
        job_id: Felt::from(5u8),
        worker: Felt::from(6u8),
        request: sage_net::JobRequest::Matmul { n: 8, seed: Felt::from(1u8) },
        expires_at: 1,
        sent_at_ms: 1,
        inputs_from: None,
    };
    let jobs = assignment.sign(&key(41), narrow.network()).unwrap();
    narrow.publish_when_ready(&jobs, Duration::from_secs(10)).await.unwrap();
    let mut heard_jobs = false;
    while let Some((_, msg)) = next_message(&mut full_rx, Duration::from_secs(20)).await {
        if msg.topic == Topic::Jobs {
            assert_eq!(sage_net::JobAssignment::from_message(&msg).unwrap(), assignment);
            heard_jobs = true;
            break;
        }
    }
    assert!(heard_jobs, "the full node never heard the narrow node's assignment");
}
