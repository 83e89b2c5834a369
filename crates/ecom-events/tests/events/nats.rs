//! The NATS bridge against a JetStream server of the test's own (`nats-server -js` on a
//! free loopback port, never the machine's shared one), stopped mid-stream once.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecom_core::events::Wakeups;
use ecom_testkit::TestDb;

use crate::support::{AMY, record};

/// A `nats-server -js` on `port`, its JetStream files under `store`; killed when dropped.
struct NatsServer {
    child: Child,
}

impl NatsServer {
    fn start(port: u16, store: &PathBuf) -> Self {
        // Debian puts it in /usr/sbin, which a non-root PATH may lack.
        let binary = ["nats-server", "/usr/sbin/nats-server"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())
            .expect("nats-server installed (Debian package `nats-server`; .ci/run installs it)");
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (Debian package `nats-server`; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Every `Nats-Msg-Id` stored in the stream, read message by message.
async fn stored_ids(url: &str) -> Vec<i64> {
    let client = async_nats::connect(url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(ecom_events::nats::STREAM)
        .await
        .expect("the stream exists");
    let info = stream.info().await.expect("info");
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let mut ids = Vec::new();
    for seq in first..=last {
        if let Ok(message) = stream.get_raw_message(seq).await {
            let id = message
                .headers
                .get("Nats-Msg-Id")
                .and_then(|v| v.as_str().parse().ok())
                .expect("every message carries its event id");
            assert!(
                message.subject.starts_with("ecom.events."),
                "{}",
                message.subject
            );
            ids.push(id);
        }
    }
    ids
}

#[actix_web::test]
async fn every_event_reaches_jetstream_once_across_a_nats_outage() {
    let db = TestDb::new().await;
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let store = std::env::temp_dir().join(format!("ecom-nats-{}", uuid::Uuid::new_v4().simple()));
    let mut server = NatsServer::start(port, &store);
    let bridge =
        ecom_events::nats::consumer(url.clone()).spawn(db.pool(), Wakeups::listen(db.pool()));

    let mut expected = BTreeSet::new();
    for n in 0..20 {
        expected.insert(record(&db, "order.created", n, Some(AMY)).await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored_ids(&url).await.len() < 20 {
        assert!(Instant::now() < deadline, "the first events reach NATS");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // NATS goes away while events keep being committed: they wait, none is lost.
    server.kill();
    for n in 20..40 {
        expected.insert(record(&db, "order.paid", n, Some(AMY)).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    server = NatsServer::start(port, &store);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let ids = stored_ids(&url).await;
        let distinct: BTreeSet<i64> = ids.iter().copied().collect();
        if distinct == expected {
            assert_eq!(ids.len(), 40, "Nats-Msg-Id kept re-publishes out");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the outage every event arrives: {} of 40",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bridge.abort();
    drop(server);
    let _ = std::fs::remove_dir_all(&store);
}
