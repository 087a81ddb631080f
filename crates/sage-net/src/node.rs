//! The libp2p node: one behaviour for workers, validators and coordinators.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, gossipsub, identify, identity::Keypair, kad, multiaddr::Protocol, noise,
    request_response, swarm::NetworkBehaviour, swarm::SwarmEvent, tcp, yamux,
};
use sage_keys::StarkKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use starknet_types_core::felt::Felt;

use crate::message::{MessageError, SignedMessage, Topic};

/// Largest blob served or fetched by request-response (proof envelopes are capped at 256 KiB).
pub const MAX_BLOB_BYTES: usize = 4 * 1024 * 1024;
/// Default cap on the bytes a node keeps to serve ([`NetConfig::max_served_bytes`]).
pub const DEFAULT_MAX_SERVED_BYTES: usize = 256 * 1024 * 1024;
/// Default gossip transmit limit: the largest encoded message ([`crate::MAX_MESSAGE_BYTES`]), so a
/// maximal payload travels.
pub const DEFAULT_MAX_GOSSIP_BYTES: usize = crate::message::MAX_MESSAGE_BYTES;
/// Default cap on established incoming connections ([`NetConfig::max_incoming_connections`]).
pub const DEFAULT_MAX_INCOMING_CONNECTIONS: u32 = 128;
/// The window of the per-peer gossip rate limit.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Default per-peer limit: 600 messages per [`RATE_WINDOW`] (60 a second, far above a worker's
/// heartbeats and results, far below a flood).
pub const DEFAULT_MAX_MESSAGES_PER_PEER: u32 = 600;
/// `'SN_SEPOLIA'`: the default network (starknet-devnet's chain id too).
pub const DEFAULT_NETWORK: Felt = Felt::from_hex_unchecked("0x534e5f5345504f4c4941");
const BLOB_PROTOCOL: &str = "/sage/blob/1";
const IDENTIFY_PROTOCOL: &str = "/sage/id/1";

/// Node configuration.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The Starknet chain id this network settles on; every message is signed for it and
    /// messages for any other network are rejected.
    pub network: Felt,
    /// Listen address (`/ip4/127.0.0.1/tcp/0` picks a free port).
    pub listen: Multiaddr,
    /// Bootstrap peers, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Gossip transmit limit in bytes; larger messages are dropped by peers' codecs.
    pub max_gossip_bytes: usize,
    /// Gossip mesh degree (lower for small networks).
    pub mesh_n: usize,
    /// Most established incoming connections (each peer at most 2, pending handshakes at most
    /// 32): a peer cannot exhaust the node with connections.
    pub max_incoming_connections: u32,
    /// Most gossip messages accepted from one peer per [`RATE_WINDOW`] (10 s); the excess is
    /// ignored unvalidated and counted in [`NetStats::rate_limited`].
    pub max_messages_per_peer: u32,
    /// Most bytes of provided blobs kept to serve; beyond it the oldest are forgotten (a
    /// long-running worker provides a proof per job).
    pub max_served_bytes: usize,
    /// The topics this node subscribes to, hears and relays (default: all). A node may still
    /// publish on the others. Validators leave out heartbeats and assignments: with a thousand
    /// workers, checking every heartbeat's signature on every validator is most of their work.
    pub topics: Vec<Topic>,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            network: DEFAULT_NETWORK,
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap_or_else(|_| Multiaddr::empty()),
            bootstrap: Vec::new(),
            max_gossip_bytes: DEFAULT_MAX_GOSSIP_BYTES,
            mesh_n: 6,
            max_incoming_connections: DEFAULT_MAX_INCOMING_CONNECTIONS,
            max_messages_per_peer: DEFAULT_MAX_MESSAGES_PER_PEER,
            max_served_bytes: DEFAULT_MAX_SERVED_BYTES,
            topics: Topic::ALL.to_vec(),
        }
    }
}

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Building the transport or behaviour, listening or subscribing failed.
    #[error("cannot start the node: {step}")]
    Start {
        /// Which step failed (`listen`, `subscribe`, `tcp transport`, `behaviour`).
        step: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The node stopped.
    #[error("the network node has stopped")]
    Stopped,
    /// No peer subscribes to the topic yet (a fresh node, a mesh still forming): the one
    /// publish error worth retrying ([`NodeHandle::publish_when_ready`] does).
    #[error("no peer subscribes to {0:?} yet")]
    NoPeers(Topic),
    /// Publishing failed for another reason (too large, all peer queues full, signing).
    #[error("publish failed")]
    Publish(#[source] gossipsub::PublishError),
    /// A message could not be built.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A blob fetch failed.
    #[error("fetching blob {hash} from {peer}: {reason}")]
    Fetch {
        /// Peer asked (boxed: a peer id is large).
        peer: Box<PeerId>,
        /// Hex content hash.
        hash: String,
        /// What went wrong.
        reason: String,
    },
    /// The identity file could not be read or written.
    #[error("identity file {path}: {reason}")]
    Identity {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// What the node reports to the application. Gossip arrives here only after verification.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NetEvent {
    /// A verified message.
    Message {
        /// Peer that relayed it.
        from: PeerId,
        /// The message.
        message: SignedMessage,
    },
    /// A peer subscribed to a topic.
    Subscribed {
        /// Peer.
        peer: PeerId,
        /// Topic.
        topic: Topic,
    },
    /// A connection to a peer was established.
    Connected(PeerId),
}

#[derive(Debug, Serialize, Deserialize)]
struct BlobRequest {
    #[serde(with = "serde_bytes")]
    hash: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BlobResponse {
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    found: bool,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: libp2p::connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    identify: identify::Behaviour,
    blobs: request_response::cbor::Behaviour<BlobRequest, BlobResponse>,
}

enum Command {
    Publish { topic: Topic, bytes: Vec<u8>, reply: oneshot::Sender<Result<(), NetError>> },
    Provide { data: Arc<Vec<u8>>, reply: oneshot::Sender<[u8; 32]> },
    Fetch { peer: PeerId, hash: [u8; 32], reply: oneshot::Sender<Result<Vec<u8>, NetError>> },
    Peers { reply: oneshot::Sender<Vec<PeerId>> },
    RoutingTable { reply: oneshot::Sender<Vec<PeerId>> },
    Stats { reply: oneshot::Sender<NetStats> },
    PeerScore { peer: PeerId, reply: oneshot::Sender<Option<f64>> },
}

/// Counters of what the node refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Gossip messages rejected by validation (garbage, bad signature, wrong topic, too large).
    pub rejected: u64,
    /// Gossip messages accepted and delivered.
    pub delivered: u64,
    /// Gossip messages ignored because their sender exceeded its rate.
    pub rate_limited: u64,
}

/// Messages per peer in the current window (fixed windows; forgotten once a window has passed).
#[derive(Debug)]
struct PeerRate {
    max: u32,
    window: Duration,
    seen: HashMap<PeerId, (std::time::Instant, u32)>,
}

impl PeerRate {
    fn new(max: u32, window: Duration) -> Self {
        Self { max, window, seen: HashMap::new() }
    }

    /// Counts one message from `peer` at `now`; false when it is over the limit.
    fn allow(&mut self, peer: PeerId, now: std::time::Instant) -> bool {
        if self.seen.len() > 4096 {
            let window = self.window;
            self.seen.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = self.seen.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.max
    }
}

/// A handle to a running node (cheap to clone; the node stops when every handle is dropped).
#[derive(Debug, Clone)]
pub struct NodeHandle {
    peer_id: PeerId,
    listen: Multiaddr,
    key: StarkKey,
    network: Felt,
    tx: mpsc::Sender<Command>,
}

/// The felt a worker registers on-chain for its libp2p peer id (`StakingManager.register_worker`):
/// sha256 of the peer id's bytes, mapped to a felt like every 32-byte hash.
pub fn peer_id_digest(peer: &PeerId) -> starknet_types_core::felt::Felt {
    sage_protocol::hash32_to_felt(&blob_hash(&peer.to_bytes()))
}

/// Content hash of a blob (sha256).
pub fn blob_hash(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Loads the node's libp2p identity from `path`, or creates one (ed25519, OS randomness) and
/// writes it there with 0600 permissions. Keep it next to the node's keystore.
pub fn load_or_create_identity(path: &Path) -> Result<Keypair, NetError> {
    let err = |reason: String| NetError::Identity { path: path.display().to_string(), reason };
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| err(format!("not a libp2p key: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| err(e.to_string()))?;
            write_private(path, &bytes).map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl NodeHandle {
    /// Starts a node on the current tokio runtime and returns once it listens.
    pub async fn start(
        config: NetConfig,
        identity: Keypair,
        key: StarkKey,
    ) -> Result<(Self, mpsc::Receiver<NetEvent>), NetError> {
        let mut swarm = build_swarm(&config, identity)?;
        swarm.listen_on(config.listen.clone()).map_err(|e| start_error("listen", e))?;
        let listen = loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => break address,
                SwarmEvent::ListenerError { error, .. } => return Err(start_error("listen", error)),
                _ => {}
            }
        };
        for topic in &config.topics {
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&gossipsub::IdentTopic::new(topic.name()))
                .map_err(|e| start_error("subscribe", e))?;
        }
        for addr in &config.bootstrap {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            }
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial bootstrap peer");
            }
        }
        let peer_id = *swarm.local_peer_id();
        let (tx, rx) = mpsc::channel(256);
        let (events_tx, events_rx) = mpsc::channel(1024);
        let rate = PeerRate::new(config.max_messages_per_peer, RATE_WINDOW);
        tokio::spawn(run(swarm, rx, events_tx, config.max_served_bytes, config.network, rate));
        let listen = listen.with(Protocol::P2p(peer_id));
        Ok((Self { peer_id, listen, key, network: config.network, tx }, events_rx))
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The chain id this node signs for and accepts.
    pub fn network(&self) -> Felt {
        self.network
    }

    /// Full listen address including `/p2p/<peer id>` (give it to others as a bootstrap).
    pub fn listen_addr(&self) -> &Multiaddr {
        &self.listen
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Signs `payload` with this node's Stark key and gossips it on `topic`. Bytes identical to a
    /// message gossiped moments ago are not sent again (and this returns `Ok`).
    pub async fn publish(&self, topic: Topic, payload: Vec<u8>) -> Result<(), NetError> {
        self.publish_signed(&self.sign(topic, payload)?).await
    }

    /// Signs `payload` for `topic` with this node's Stark key, without publishing it.
    pub fn sign(&self, topic: Topic, payload: Vec<u8>) -> Result<SignedMessage, NetError> {
        Ok(SignedMessage::sign(self.network, topic, payload, &self.key)?)
    }

    /// [`NodeHandle::publish_signed`], retried every 100 ms while no peer subscribes to the topic
    /// (a mesh still forming), until `wait` has passed; every other error returns at once.
    pub async fn publish_when_ready(&self, message: &SignedMessage, wait: Duration) -> Result<(), NetError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.publish_signed(message).await {
                Err(NetError::NoPeers(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    /// Publishes an already signed message (e.g. a heartbeat built with `Heartbeat::sign`).
    pub async fn publish_signed(&self, message: &SignedMessage) -> Result<(), NetError> {
        if message.network != self.network {
            return Err(MessageError::WrongNetwork { signed: message.network, expected: self.network }.into());
        }
        check_payload(message)?;
        let bytes = message.encode();
        let topic = message.topic;
        self.call(|reply| Command::Publish { topic, bytes, reply }).await?
    }

    /// Gossips raw bytes without an envelope. Honest nodes never do this: it exists so tests can
    /// show that peers reject such traffic.
    #[doc(hidden)]
    pub async fn publish_unchecked(&self, topic: Topic, bytes: Vec<u8>) -> Result<(), NetError> {
        self.call(|reply| Command::Publish { topic, bytes, reply }).await?
    }

    /// Serves `data` to peers by its content hash; returns the hash. The node keeps at most
    /// [`NetConfig::max_served_bytes`] of blobs: the oldest are forgotten first.
    pub async fn provide(&self, data: Vec<u8>) -> Result<[u8; 32], NetError> {
        self.call(|reply| Command::Provide { data: Arc::new(data), reply }).await
    }

    /// Fetches a blob by hash from `peer`; the bytes are checked against the hash.
    pub async fn fetch(&self, peer: PeerId, hash: [u8; 32]) -> Result<Vec<u8>, NetError> {
        self.call(|reply| Command::Fetch { peer, hash, reply }).await?
    }

    /// The input blobs an assignment's spec names ([`sage_protocol::JobSpec::blobs`], in order),
    /// fetched from [`JobAssignment::inputs_from`](crate::JobAssignment::inputs_from) and each
    /// checked against its digest. None for a spec that reads none.
    pub async fn fetch_inputs(&self, assignment: &crate::JobAssignment) -> Result<Vec<Vec<u8>>, NetError> {
        let wanted = assignment.request.blobs();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let missing = |reason: &str| NetError::Fetch {
            peer: Box::new(self.peer_id),
            hash: sage_protocol::hex32::lower_hex(&wanted[0]),
            reason: reason.to_owned(),
        };
        let peer: PeerId = assignment
            .inputs_from
            .as_deref()
            .ok_or_else(|| missing("the assignment names no peer serving its inputs"))?
            .parse()
            .map_err(|_| missing("inputs_from is not a peer id"))?;
        let mut out = Vec::with_capacity(wanted.len());
        for hash in wanted {
            out.push(self.fetch(peer, hash).await?);
        }
        Ok(out)
    }

    /// Currently connected peers.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.call(|reply| Command::Peers { reply }).await
    }

    /// Peers in the Kademlia routing table.
    pub async fn routing_table(&self) -> Result<Vec<PeerId>, NetError> {
        self.call(|reply| Command::RoutingTable { reply }).await
    }

    /// Validation counters.
    pub async fn stats(&self) -> Result<NetStats, NetError> {
        self.call(|reply| Command::Stats { reply }).await
    }

    /// This node's gossipsub score of `peer` (`None` when it does not know the peer): negative
    /// after invalid messages; below -80 the peer is ignored.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetError> {
        self.call(|reply| Command::PeerScore { peer, reply }).await
    }
}

/// Gossipsub peer scoring: every message that fails Sage's checks costs its sender (P4: the count
/// squared, forgotten slowly), so a peer that sends garbage stops being gossiped to after about
/// 4 invalid messages, published to after about 8 and is ignored (graylisted) after about 10, at
/// gossipsub's default thresholds (-10, -50, -80); good behaviour earns at most a few points. Few deliveries are not penalised (P3 off): quiet honest peers are
/// normal in a small network.
fn peer_scoring() -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let mut params = gossipsub::PeerScoreParams::default();
    // The IP-colocation penalty is a Sybil defence between hosts: peers on this host's loopback
    // are local processes (a coordinator beside its validators, a test network), and past ten of
    // them the penalty would graylist them all.
    params.ip_colocation_factor_whitelist.extend([
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ]);
    for topic in Topic::ALL {
        let topic_params = gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            // Good behaviour earns at most +1 per topic for time in the mesh and +1 for first
            // deliveries (the defaults allow thousands, which would drown any penalty).
            time_in_mesh_weight: 0.1,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 10.0,
            first_message_deliveries_weight: 0.1,
            first_message_deliveries_cap: 10.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -1.0,
            invalid_message_deliveries_decay: 0.9,
            ..gossipsub::TopicScoreParams::default()
        };
        params.topics.insert(gossipsub::IdentTopic::new(topic.name()).hash(), topic_params);
    }
    (params, gossipsub::PeerScoreThresholds::default())
}

fn connection_limits(max_incoming: u32) -> libp2p::connection_limits::Behaviour {
    libp2p::connection_limits::Behaviour::new(
        libp2p::connection_limits::ConnectionLimits::default()
            .with_max_established_incoming(Some(max_incoming))
            .with_max_pending_incoming(Some(32))
            .with_max_established_per_peer(Some(2)),
    )
}

fn make_behaviour(
    key: &Keypair,
    max: usize,
    mesh_n: usize,
    limits: u32,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(500))
        .validation_mode(gossipsub::ValidationMode::Strict)
        // Nothing is forwarded or delivered before the application-level checks.
        .validate_messages()
        // Content-addressed ids: identical payloads are duplicates whoever sends them.
        .message_id_fn(|m: &gossipsub::Message| gossipsub::MessageId::from(Sha256::digest(&m.data).to_vec()))
        .max_transmit_size(max)
        .mesh_n(mesh_n)
        .mesh_n_low(1.max(mesh_n / 2))
        .mesh_n_high(mesh_n * 2)
        .mesh_outbound_min(1.min(mesh_n / 2))
        .build()
        .map_err(|e| e.to_string())?;
    let mut gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)?;
    let (params, thresholds) = peer_scoring();
    gossipsub.with_peer_score(params, thresholds)?;
    let peer_id = key.public().to_peer_id();
    let mut kad = kad::Behaviour::new(peer_id, kad::store::MemoryStore::new(peer_id));
    // On loopback Kademlia would stay in client mode: serve queries explicitly.
    kad.set_mode(Some(kad::Mode::Server));
    let identify = identify::Behaviour::new(identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public()));
    let blobs = request_response::cbor::Behaviour::with_codec(
        request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(1024)
            .set_response_size_maximum(MAX_BLOB_BYTES as u64 + 1024),
        [(StreamProtocol::new(BLOB_PROTOCOL), request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
    );
    Ok(Behaviour { limits: connection_limits(limits), gossipsub, kad, identify, blobs })
}

/// TCP with noise + yamux; with the `quic` feature, QUIC as well (listen on a
/// `/ip4/…/udp/…/quic-v1` address to use it).
fn build_swarm(config: &NetConfig, identity: Keypair) -> Result<Swarm<Behaviour>, NetError> {
    let max = config.max_gossip_bytes;
    let mesh_n = config.mesh_n.max(2);
    let limits = config.max_incoming_connections;
    let builder = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| start_error("tcp transport", e))?;
    #[cfg(feature = "quic")]
    let builder = builder.with_quic();
    Ok(builder
        .with_behaviour(|key| make_behaviour(key, max, mesh_n, limits))
        .map_err(|e| start_error("behaviour", e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build())
}

fn start_error(step: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> NetError {
    NetError::Start { step, source: Box::new(e) }
}

fn fetch_error(peer: PeerId, hash: &[u8; 32], reason: impl Into<String>) -> NetError {
    let hash = hash.iter().map(|b| format!("{b:02x}")).collect();
    NetError::Fetch { peer: Box::new(peer), hash, reason: reason.into() }
}

type PendingFetch = (PeerId, [u8; 32], oneshot::Sender<Result<Vec<u8>, NetError>>);

/// Checks a verified message's payload against its topic's type (votes are checked by the
/// consensus layer, which knows the validator set): a malformed assignment, heartbeat or result
/// is neither delivered nor forwarded, and is refused before it is sent.
fn check_payload(msg: &SignedMessage) -> Result<(), MessageError> {
    match msg.topic {
        Topic::Jobs => crate::JobAssignment::from_message(msg).map(drop),
        Topic::Heartbeats => crate::Heartbeat::from_message(msg).map(drop),
        Topic::Results => crate::JobResult::from_message(msg).map(drop),
        Topic::Votes => Ok(()),
    }
}

/// The blobs a node serves, oldest forgotten first once they exceed the byte cap.
struct Served {
    blobs: HashMap<[u8; 32], Arc<Vec<u8>>>,
    order: std::collections::VecDeque<[u8; 32]>,
    bytes: usize,
    max: usize,
}

impl Served {
    fn insert(&mut self, hash: [u8; 32], data: Arc<Vec<u8>>) {
        if self.blobs.contains_key(&hash) {
            // Provided again (an assignment sent again): it is the newest, forgotten last.
            if let Some(at) = self.order.iter().position(|h| *h == hash) {
                self.order.remove(at);
            }
            self.order.push_back(hash);
            return;
        }
        self.bytes += data.len();
        self.blobs.insert(hash, data);
        self.order.push_back(hash);
        // The newest blob is always kept, even alone over the cap.
        while self.bytes > self.max && self.order.len() > 1 {
            if let Some(old) = self.order.pop_front()
                && let Some(d) = self.blobs.remove(&old)
            {
                self.bytes -= d.len();
            }
        }
    }
}

async fn run(
    mut swarm: Swarm<Behaviour>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    max_served_bytes: usize,
    network: Felt,
    mut rate: PeerRate,
) {
    let mut served = Served { blobs: HashMap::new(), order: Default::default(), bytes: 0, max: max_served_bytes };
    let mut pending: HashMap<request_response::OutboundRequestId, PendingFetch> = HashMap::new();
    let mut stats = NetStats::default();
    let mut bootstrapped = HashSet::new();
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { return };
                match command {
                    Command::Publish { topic, bytes, reply } => {
                        // The same bytes again within gossipsub's duplicate window were already
                        // gossiped: publishing them is a no-op, not an error (signatures are
                        // deterministic, so an honest resend is byte-identical).
                        let result = match swarm
                            .behaviour_mut()
                            .gossipsub
                            .publish(gossipsub::IdentTopic::new(topic.name()), bytes)
                        {
                            Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
                            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Err(NetError::NoPeers(topic)),
                            Err(e) => Err(NetError::Publish(e)),
                        };
                        let _ = reply.send(result);
                    }
                    Command::Provide { data, reply } => {
                        let hash = blob_hash(&data);
                        served.insert(hash, data);
                        let _ = reply.send(hash);
                    }
                    Command::Fetch { peer, hash, reply } => {
                        let id = swarm.behaviour_mut().blobs.send_request(&peer, BlobRequest { hash: hash.to_vec() });
                        pending.insert(id, (peer, hash, reply));
                    }
                    Command::Peers { reply } => {
                        let _ = reply.send(swarm.connected_peers().copied().collect());
                    }
                    Command::RoutingTable { reply } => {
                        let mut peers = Vec::new();
                        for bucket in swarm.behaviour_mut().kad.kbuckets() {
                            peers.extend(bucket.iter().map(|e| *e.node.key.preimage()));
                        }
                        let _ = reply.send(peers);
                    }
                    Command::Stats { reply } => {
                        let _ = reply.send(stats);
                    }
                    Command::PeerScore { peer, reply } => {
                        let _ = reply.send(swarm.behaviour().gossipsub.peer_score(&peer));
                    }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                    if !rate.allow(propagation_source, std::time::Instant::now()) {
                        // Over its rate: neither validated (cheap to drop) nor forwarded.
                        stats.rate_limited += 1;
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &propagation_source, gossipsub::MessageAcceptance::Ignore);
                        continue;
                    }
                    let verdict = Topic::from_name(message.topic.as_str())
                        .ok_or_else(|| MessageError::Malformed("unknown topic".into()))
                        .and_then(|topic| SignedMessage::decode_and_verify(&message.data, network, topic))
                        .and_then(|msg| check_payload(&msg).map(|()| msg));
                    let acceptance = match verdict {
                        Ok(msg) => {
                            stats.delivered += 1;
                            if events.try_send(NetEvent::Message { from: propagation_source, message: msg }).is_err() {
                                tracing::warn!("application is not reading network events; message dropped");
                            }
                            gossipsub::MessageAcceptance::Accept
                        }
                        Err(e) => {
                            stats.rejected += 1;
                            tracing::debug!(peer = %propagation_source, error = %e, "rejected gossip message");
                            gossipsub::MessageAcceptance::Reject
                        }
                    };
                    swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &propagation_source, acceptance);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic, .. })) => {
                    if let Some(topic) = Topic::from_name(topic.as_str()) {
                        let _ = events.try_send(NetEvent::Subscribed { peer: peer_id, topic });
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                    for addr in info.listen_addrs {
                        swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                    if bootstrapped.insert(peer_id) {
                        let _ = swarm.behaviour_mut().kad.bootstrap();
                    }
                }
                // Small networks: connect to every peer we learn about so gossip meshes form.
                SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, .. }))
                    if !swarm.is_connected(&peer) && peer != *swarm.local_peer_id() =>
                {
                    let _ = swarm.dial(peer);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Blobs(request_response::Event::Message { message, .. })) => match message {
                    request_response::Message::Request { request, channel, .. } => {
                        let found = <[u8; 32]>::try_from(request.hash.as_slice()).ok().and_then(|h| served.blobs.get(&h).cloned());
                        let response = match found {
                            Some(data) => BlobResponse { data: data.as_ref().clone(), found: true },
                            None => BlobResponse { data: Vec::new(), found: false },
                        };
                        let _ = swarm.behaviour_mut().blobs.send_response(channel, response);
                    }
                    request_response::Message::Response { request_id, response } => {
                        if let Some((peer, hash, reply)) = pending.remove(&request_id) {
                            let result = if !response.found {
                                Err(fetch_error(peer, &hash, "peer does not have it"))
                            } else if blob_hash(&response.data) != hash {
                                Err(fetch_error(peer, &hash, "content does not match its hash"))
                            } else {
                                Ok(response.data)
                            };
                            let _ = reply.send(result);
                        }
                    }
                },
                SwarmEvent::Behaviour(BehaviourEvent::Blobs(request_response::Event::OutboundFailure { request_id, error, .. })) => {
                    if let Some((peer, hash, reply)) = pending.remove(&request_id) {
                        let _ = reply.send(Err(fetch_error(peer, &hash, error.to_string())));
                    }
                }
                SwarmEvent::ConnectionEstablished { peer_id, num_established, .. } if num_established.get() == 1 => {
                    let _ = events.try_send(NetEvent::Connected(peer_id));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn a_peer_over_its_rate_is_refused_until_the_window_passes() {
        let mut rate = PeerRate::new(3, Duration::from_secs(10));
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = std::time::Instant::now();
        assert!((0..3).all(|_| rate.allow(a, t0)));
        assert!(!rate.allow(a, t0 + Duration::from_secs(1)), "fourth message in the window");
        assert!(rate.allow(b, t0 + Duration::from_secs(1)), "other peers are unaffected");
        assert!(rate.allow(a, t0 + Duration::from_secs(10)), "a new window");
    }

    #[test]
    fn the_table_of_peers_stays_bounded() {
        let mut rate = PeerRate::new(1, Duration::from_secs(10));
        let t0 = std::time::Instant::now();
        for _ in 0..5000 {
            rate.allow(PeerId::random(), t0);
        }
        rate.allow(PeerId::random(), t0 + Duration::from_secs(11));
        assert!(rate.seen.len() <= 4097, "{}", rate.seen.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_provided_again_is_forgotten_last() {
        let mut served = Served { blobs: HashMap::new(), order: Default::default(), bytes: 0, max: 20 };
        let blob = |b: u8| Arc::new(vec![b; 10]);
        served.insert([1; 32], blob(1));
        served.insert([2; 32], blob(2));
        // Provided again: now the newest, so the next insert forgets [2] instead.
        served.insert([1; 32], blob(1));
        served.insert([3; 32], blob(3));
        assert!(served.blobs.contains_key(&[1; 32]) && served.blobs.contains_key(&[3; 32]));
        assert!(!served.blobs.contains_key(&[2; 32]));
        assert_eq!(served.bytes, 20);
        assert_eq!(served.order.len(), 2);
    }
}
