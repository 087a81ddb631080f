//! Sage's peer-to-peer fabric over libp2p.
//!
//! One behaviour serves workers, validators and coordinators: gossipsub topics for job
//! assignments, heartbeats, votes and job results ([`Topic`]; the job payloads are
//! [`JobAssignment`] and [`JobResult`]); Kademlia + identify for discovery from
//! bootstrap peers; request-response for fetching proofs and job inputs by content hash (proofs
//! exceed gossip's 64 KiB limit); noise + yamux over TCP (QUIC behind the `quic` feature). The
//! node's libp2p identity is persisted next to its keystore ([`load_or_create_identity`]).
//!
//! Every gossip message is a [`SignedMessage`]: versioned, size-limited, Stark-ECDSA-signed for
//! its topic. The node checks all of that before the message reaches the application and before
//! gossipsub forwards it; message ids are content hashes, so duplicates are dropped.
//!
//! The node runs on the caller's tokio runtime ([`NodeHandle::start`] spawns its event loop);
//! this crate owns no runtime.
//!
//! # Example
//!
//! ```no_run
//! use sage_net::{NetConfig, NodeHandle, Topic, load_or_create_identity};
//! # async fn run(key: sage_keys::StarkKey) -> Result<(), sage_net::NetError> {
//! let identity = load_or_create_identity(std::path::Path::new("/var/lib/sage/p2p.key"))?;
//! let (node, mut events) = NodeHandle::start(NetConfig::default(), identity, key).await?;
//! println!("listening on {}", node.listen_addr());
//! node.publish(Topic::Votes, b"a vote".to_vec()).await?;
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

mod job;
mod message;
mod node;

pub use job::{JobAssignment, JobOutcome, JobRequest, JobResult, MAX_REASON_BYTES};
pub use libp2p::{Multiaddr, PeerId};
pub use message::{
    Heartbeat, MAX_HEARTBEAT_JOBS, MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES, MESSAGE_VERSION, MessageError, SignedMessage,
    Topic,
};
pub use node::{
    DEFAULT_MAX_GOSSIP_BYTES, DEFAULT_MAX_SERVED_BYTES, DEFAULT_NETWORK, MAX_BLOB_BYTES, NetConfig, NetError, NetEvent,
    NetStats, NodeHandle, blob_hash, load_or_create_identity, peer_id_digest,
};
pub use sage_types::GpuTier;
