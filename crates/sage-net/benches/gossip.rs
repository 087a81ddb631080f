//! Gossip delivery latency (publish → verified delivery at every other node) for 3 and 16 nodes on
//! loopback, p50/p99, beside a baseline measured in the same run: a one-way 1 KiB write → read over
//! a plain loopback TCP connection. Run with `cargo bench -p sage-net --bench gossip` (release).

use std::time::{Duration, Instant};

use sage_keys::StarkKey;
use sage_net::{NetConfig, NetEvent, NodeHandle, Topic};
use starknet_types_core::felt::Felt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

const MESSAGES: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn tcp_baseline() -> Vec<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 1024];
        for _ in 0..MESSAGES {
            s.read_exact(&mut buf).await.expect("read");
            s.write_all(&buf[..1]).await.expect("ack");
        }
    });
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let mut out = Vec::new();
    let mut ack = [0u8; 1];
    for _ in 0..MESSAGES {
        let t = Instant::now();
        c.write_all(&[7u8; 1024]).await.expect("write");
        c.read_exact(&mut ack).await.expect("ack");
        out.push(t.elapsed() / 2);
    }
    server.await.expect("server");
    out.sort();
    out
}

async fn gossip(n: usize) -> Vec<Duration> {
    let mut nodes = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..n {
        let mut config = NetConfig { mesh_n: 4.min(n - 1), ..NetConfig::default() };
        if let Some(first) = nodes.first() {
            let first: &NodeHandle = first;
            config.bootstrap.push(first.listen_addr().clone());
        }
        let key = StarkKey::from_secret(Felt::from(0x9000 + i as u64)).expect("key");
        let (node, rx) =
            NodeHandle::start(config, libp2p::identity::Keypair::generate_ed25519(), key).await.expect("start");
        nodes.push(node);
        receivers.push(rx);
    }
    // Collect deliveries: (message index, receive time).
    let (tx, mut deliveries) = mpsc::unbounded_channel::<(usize, Instant)>();
    for mut rx in receivers.into_iter().skip(1) {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if let NetEvent::Message { message, .. } = event {
                    let idx = u32::from_be_bytes(message.payload[..4].try_into().expect("4 bytes")) as usize;
                    let _ = tx.send((idx, Instant::now()));
                }
            }
        });
    }
    // Warm-up: wait until a probe reaches every other node (meshes formed).
    let mut probe = 1_000_000u32;
    'warm: loop {
        let _ = nodes[0].publish(Topic::Votes, [probe.to_be_bytes().as_slice(), &[0u8; 256]].concat()).await;
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut seen = 0;
        while let Ok(Some((idx, _))) = tokio::time::timeout_at(deadline.into(), deliveries.recv()).await {
            if idx == probe as usize {
                seen += 1;
                if seen == n - 1 {
                    break 'warm;
                }
            }
        }
        probe += 1;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while deliveries.try_recv().is_ok() {}
    let mut sent = Vec::with_capacity(MESSAGES);
    let mut latencies = Vec::new();
    for i in 0..MESSAGES {
        let payload = [(i as u32).to_be_bytes().as_slice(), &[0u8; 1020]].concat();
        sent.push(Instant::now());
        nodes[0].publish(Topic::Votes, payload).await.expect("publish");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.len() < MESSAGES * (n - 1) {
        match tokio::time::timeout_at(deadline.into(), deliveries.recv()).await {
            Ok(Some((idx, at))) if idx < MESSAGES => latencies.push(at - sent[idx]),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    println!("    n={n}: {} of {} deliveries", latencies.len(), MESSAGES * (n - 1));
    latencies.sort();
    latencies
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let base = tcp_baseline().await;
        let (b50, b99) = (percentile(&base, 0.5), percentile(&base, 0.99));
        println!("baseline: loopback TCP one-way 1 KiB  p50 {b50:?}  p99 {b99:?}");
        for n in [3usize, 16] {
            let lat = gossip(n).await;
            let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
            println!(
                "gossip n={n:<2} 1 KiB signed: p50 {p50:>10.2?} ({:>5.1}x baseline)  p99 {p99:>10.2?} ({:>5.1}x baseline)",
                p50.as_secs_f64() / b50.as_secs_f64(),
                p99.as_secs_f64() / b99.as_secs_f64()
            );
        }
    });
}
