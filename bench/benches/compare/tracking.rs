//! The tracking rows: what the in-process tier's invalidations cost the
//! writers of a Redis. `redis-benchmark -t set -c 20 -r 100000` writes
//! `key:<n>` for n below 100,000 into a fresh `redis-server` (started here,
//! its own) while the trackers of 0, 10 and 50 application instances are
//! connected, and this process drains every push they get:
//! - broadcast (what the tier used up to now): each instance holds one RESP3
//!   connection with `CLIENT TRACKING ON BCAST PREFIX key:`, so Redis sends
//!   every write to every instance;
//! - default mode (what the tier uses now on one server): each instance holds
//!   one RESP3 connection with `CLIENT TRACKING ON` that has read its own
//!   2,000 of the 100,000 keys over it, as the tier reads what it keeps;
//!   Redis sends a write only to the instances that read the key, and each
//!   instance reads an invalidated key again, as a tier whose keys are hot
//!   would, so its share stays tracked.
//!
//! The rounds of the rows are interleaved and each row's figure is the
//! median. The same on a Redis Cluster, with the tier's own instances,
//! follows (`fleet.rs`). Everything (`redis-server`, `redis-benchmark`, the trackers'
//! drains) shares this machine's CPUs: on 2 busy cores the absolute figures
//! are low and noisy, the ratios between rows are what to read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use super::BenchError;

#[path = "fleet.rs"]
mod fleet;

/// The keys `redis-benchmark -r` writes: `key:000000000000` and on.
const KEYS: u64 = 100_000;
/// How many keys each default-mode instance reads.
const SHARE: u64 = 2_000;
/// SETs per `redis-benchmark` run.
const REQUESTS: &str = "50000";
/// Interleaved rounds per row.
const TRACKING_ROUNDS: usize = 5;

/// How an instance's tier learns of writes.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Broadcast,
    Default,
}

/// Prints the rows.
pub(super) fn rows(rt: &Runtime) -> Result<(), BenchError> {
    // Its own server, started (and answering) by the workspace's test harness.
    let server = harness::Server::start();
    let (host, port) = ("127.0.0.1", server.port());
    let client = Client::open(server.url())?;
    let mut admin = client.get_connection()?;
    let rows = [
        (0, Mode::Broadcast),
        (10, Mode::Broadcast),
        (10, Mode::Default),
        (50, Mode::Broadcast),
        (50, Mode::Default),
    ];
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut pushes = vec![0u64; rows.len()];
    for _ in 0..TRACKING_ROUNDS {
        for (row, &(instances, mode)) in rows.iter().enumerate() {
            let baseline = connected(&mut admin)?;
            let received = Arc::new(AtomicU64::new(0));
            let held = rt.block_on(hold(&client, instances, mode, &received))?;
            figures[row].push(sets_per_sec(host, port)?);
            // The last pushes of the run are still on their way.
            std::thread::sleep(Duration::from_millis(200));
            pushes[row] += received.load(Ordering::Relaxed);
            drop(held);
            // Give the closed connections up to 10 s to be gone from the
            // server; the next round goes on either way.
            harness::retry(
                Duration::from_secs(10),
                Duration::from_millis(20),
                || match connected(&mut admin) {
                    Ok(n) if n > baseline => Err(None),
                    Ok(_) => Ok(()),
                    Err(e) => Err(Some(e)),
                },
            )
            .or_else(|e| e.map_or(Ok(()), Err))?;
        }
    }
    println!();
    println!(
        "tracking rows: SETs/s of redis-benchmark -t set -c 20 -r {KEYS} -n {REQUESTS} while \
         the trackers of N instances are held and drained; median of {TRACKING_ROUNDS} \
         interleaved rounds; one redis-server, the benchmark and the drains on this machine"
    );
    println!(
        "{:<44} {:>12} {:>22} {:>10}",
        "row", "SETs/s", "invalidate pushes/run", "vs 0"
    );
    let base = median(&mut figures[0].clone());
    for (row, &(instances, mode)) in rows.iter().enumerate() {
        let name = match (instances, mode) {
            (0, _) => "no trackers".to_owned(),
            (n, Mode::Broadcast) => format!("{n} instances, BCAST PREFIX"),
            (n, Mode::Default) => format!("{n} instances, default mode ({SHARE} keys each)"),
        };
        let sets = median(&mut figures[row]);
        println!(
            "{name:<44} {sets:>12.0} {:>22} {:>10.2}",
            pushes[row] / TRACKING_ROUNDS as u64,
            sets / base
        );
    }
    fleet::rows(rt)
}

/// The trackers of some instances: their connections and the tasks that
/// drain them; dropping this closes them.
struct Held {
    conns: Vec<MultiplexedConnection>,
    drains: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // A drain holds a clone of its connection: the connection closes
        // once both are gone.
        self.drains.iter().for_each(tokio::task::JoinHandle::abort);
        self.conns.clear();
    }
}

/// The connections of `instances` instances' trackers, connected (and, in
/// default mode, their shares read); their pushes are counted in `received`.
async fn hold(
    client: &Client,
    instances: u64,
    mode: Mode,
    received: &Arc<AtomicU64>,
) -> Result<Held, BenchError> {
    let mut held = Held {
        conns: Vec::new(),
        drains: Vec::new(),
    };
    for instance in 0..instances {
        let (tx, mut rx) = mpsc::unbounded_channel::<PushInfo>();
        let mut tracking = resp3(client)
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new().set_push_sender(tx),
            )
            .await?;
        let mut on = redis::cmd("CLIENT");
        on.arg(&["TRACKING", "ON"]);
        if mode == Mode::Broadcast {
            on.arg(&["BCAST", "PREFIX", "key:"]);
        }
        on.exec_async(&mut tracking).await?;
        if mode == Mode::Default {
            let first = instance * SHARE % KEYS;
            let share = (first..first + SHARE).map(|n| format!("key:{n:012}"));
            read(&mut tracking, share).await?;
        }
        let received = received.clone();
        let mut reader = (mode == Mode::Default).then(|| tracking.clone());
        held.drains.push(tokio::spawn(async move {
            while let Some(push) = rx.recv().await {
                if push.kind != PushKind::Invalidate {
                    continue;
                }
                let keys = match push.data.first() {
                    Some(Value::Array(keys)) => keys.clone(),
                    _ => Vec::new(),
                };
                received.fetch_add(1, Ordering::Relaxed);
                if let Some(reader) = &mut reader {
                    let keys = keys.into_iter().filter_map(|key| match key {
                        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
                        _ => None,
                    });
                    let _ = read(reader, keys).await;
                }
            }
        }));
        held.conns.push(tracking);
    }
    Ok(held)
}

/// `client` speaking RESP3, which carries the invalidation pushes.
fn resp3(client: &Client) -> Client {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Client::open(info.set_redis_settings(settings)).unwrap_or_else(|_| client.clone())
}

/// `GET`s `keys` in one pipeline, which tracks them.
async fn read(
    conn: &mut MultiplexedConnection,
    keys: impl Iterator<Item = String>,
) -> Result<(), BenchError> {
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("GET").arg(key).ignore();
    }
    pipe.exec_async(conn).await?;
    Ok(())
}

/// What `redis-benchmark` measured, in SETs per second.
fn sets_per_sec(host: &str, port: u16) -> Result<f64, BenchError> {
    let port = port.to_string();
    let args = [
        "-h", host, "-p", &port, "-t", "set", "-c", "20", "-r", "100000", "-n", REQUESTS, "-q",
    ];
    let out = std::process::Command::new("redis-benchmark")
        .args(args)
        .output()
        .map_err(|e| format!("redis-benchmark (from redis-tools) is needed here: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line: "SET: 88105.73 requests per second, p50=0.127 msec".
    text.split(['\r', '\n'])
        .rev()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("SET: ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| format!("redis-benchmark printed no SET figure: {text}").into())
}

/// How many clients the server has.
fn connected(admin: &mut redis::Connection) -> Result<u64, BenchError> {
    let info: String = redis::cmd("INFO").arg("clients").query(admin)?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0))
}

fn median(figures: &mut [f64]) -> f64 {
    figures.sort_by(f64::total_cmp);
    figures.get(figures.len() / 2).copied().unwrap_or(0.0)
}
