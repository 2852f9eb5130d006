//! The compression rows: ours with `compress = true` against ours without,
//! on the one server, for a ~64 KiB and a ~1 MiB value: the bytes Redis
//! holds for one value (`STRLEN`), and the hit and miss time (async, one
//! caller). Ratio = compressed / uncompressed.
//!
//! The value is what an API might cache: a `Vec` of orders, each with an
//! id, one of 200 customers' e-mail addresses, one of 4 statuses, 1 to 3 of
//! 20 product names and a price. Its strings repeat from order to order, as
//! real ones do; how much it shrinks is in the `stored bytes` row.

use std::time::Duration;

use redis::Commands;
use redis_cached::redis_cached;
use serde::{Deserialize, Serialize};

use super::{
    AsyncCall, Bench, BenchError, CACHE, Ids, Kind, LATENCY_ROUND, ROUNDS, Samples, Target, Unit,
    calls_for, counted, turns,
};

/// One order of the cached list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Order {
    id: u64,
    customer: String,
    status: String,
    items: Vec<String>,
    cents: u64,
}

const STATUSES: [&str; 4] = ["pending", "paid", "shipped", "delivered"];

const PRODUCTS: [&str; 20] = [
    "USB-C cable, 2 m",
    "Wireless mouse",
    "Mechanical keyboard (ISO layout)",
    "27-inch monitor",
    "Laptop stand, aluminium",
    "Noise-cancelling headphones",
    "Webcam 1080p",
    "Desk lamp, LED",
    "Office chair, mesh back",
    "External SSD, 1 TB",
    "HDMI cable, 1.5 m",
    "Docking station",
    "Ergonomic mouse pad",
    "Bluetooth speaker",
    "Phone charger, 65 W",
    "Microphone, USB",
    "Cable organiser set",
    "Standing desk mat",
    "Screen cleaning kit",
    "Laptop sleeve, 14-inch",
];

/// Orders in a value of about 64 KiB encoded (bincode, as stored).
const ORDERS_64K: u64 = 820;
/// Orders in a value of about 1 MiB encoded.
const ORDERS_1M: u64 = 13_100;

/// `n` orders; `id` changes every order id, so that each miss computes a
/// value of its own.
pub(super) fn orders(id: u64, n: u64) -> Vec<Order> {
    (0..n)
        .map(|i| {
            let mix = i.wrapping_mul(2_654_435_761) ^ id;
            let items = (0..1 + mix % 3)
                .map(|k| PRODUCTS[((mix >> 8) + k * 7) as usize % PRODUCTS.len()].to_owned())
                .collect();
            Order {
                id: id * 100_000 + i,
                customer: format!("customer{:03}@example.com", mix % 200),
                status: STATUSES[(mix >> 4) as usize % STATUSES.len()].to_owned(),
                items,
                cents: 500 + mix % 50_000,
            }
        })
        .collect()
}

#[redis_cached(ttl = 600, cache = CACHE, name = "bench::orders")]
async fn ours_orders(id: u64, n: u64) -> Vec<Order> {
    orders(id, n)
}

#[redis_cached(ttl = 600, cache = CACHE, name = "bench::orders_lz4", compress = true)]
async fn ours_orders_compressed(id: u64, n: u64) -> Vec<Order> {
    orders(id, n)
}

/// Ours, with or without `compress = true`, for `n` orders.
struct Orders {
    n: u64,
    compressed: bool,
}

impl AsyncCall<Vec<Order>> for Orders {
    async fn call(&mut self, id: u64) -> Result<Vec<Order>, BenchError> {
        Ok(if self.compressed {
            ours_orders_compressed(id, self.n).await
        } else {
            ours_orders(id, self.n).await
        })
    }
}

impl Bench {
    /// The compression rows, for both value sizes.
    pub(super) fn compression(&mut self) -> Result<(), BenchError> {
        for (label, n) in [("64KiB orders", ORDERS_64K), ("1MiB orders", ORDERS_1M)] {
            self.compression_rows(label, n)?;
        }
        Ok(())
    }

    fn compression_rows(&mut self, label: &str, n: u64) -> Result<(), BenchError> {
        let mut hits: [Samples; 2] = Default::default();
        self.compression_latency(Kind::Hit, n, &mut hits)?;
        // The hit rows stored one value each, at the hit argument.
        let [plain, packed] = ["bench::orders", "bench::orders_lz4"].map(|name| {
            let keys: Vec<String> = (self.admin.keys(format!("*{name}:{{*"))).unwrap_or_default();
            keys.first()
                .and_then(|key| self.admin.strlen::<_, usize>(key).ok())
                .unwrap_or(0)
        });
        if plain == 0 || packed == 0 {
            return Err(format!("{label}: the hit rows stored no value").into());
        }
        let mut misses: [Samples; 2] = Default::default();
        self.compression_latency(Kind::Miss, n, &mut misses)?;
        self.clean_up()?;

        let [hit_plain, hit_packed] = hits.each_mut().map(Samples::median);
        let [miss_plain, miss_packed] = misses.each_mut().map(Samples::median);
        let t = &mut self.table;
        let cmp = "compressed / uncompressed";
        let (bytes, ours) = (packed as f64, plain as f64);
        t.line(
            "stored bytes",
            label,
            cmp,
            Unit::Bytes,
            bytes,
            ours,
            Target::None,
        );
        let l = Unit::Latency;
        t.line("hit", label, cmp, l, hit_packed, hit_plain, Target::None);
        t.line("miss", label, cmp, l, miss_packed, miss_plain, Target::None);
        Ok(())
    }

    /// Warms up, then times [`ROUNDS`] rounds of each contestant in turn.
    fn compression_latency(
        &mut self,
        kind: Kind,
        n: u64,
        s: &mut [Samples; 2],
    ) -> Result<(), BenchError> {
        let mut warm: [Samples; 2] = Default::default();
        self.compression_round(kind, n, 3, true, 0, &mut warm)?;
        let per_call = Duration::from_secs_f64(warm[0].median());
        let calls = calls_for(LATENCY_ROUND, per_call, 10_000);
        for turn in 0..ROUNDS {
            self.compression_round(kind, n, calls, false, turn, s)?;
        }
        Ok(())
    }

    fn compression_round(
        &mut self,
        kind: Kind,
        n: u64,
        calls: u64,
        warm_up: bool,
        turn: usize,
        s: &mut [Samples; 2],
    ) -> Result<(), BenchError> {
        for i in turns(turn, 2) {
            let compressed = i == 1;
            let ids = match kind {
                Kind::Hit => Ids::hit(calls),
                Kind::Miss => self.fresh(calls),
            };
            let before = CACHE.stats();
            let (t, v) = self.timed(&mut Orders { n, compressed }, ids)?;
            if v != orders(ids.last(), n) {
                return Err(
                    format!("ours (compressed: {compressed}) returned wrong orders").into(),
                );
            }
            if !warm_up {
                counted("ours, orders", kind, calls, before, CACHE.stats())?;
            }
            s[i].push(t);
            self.settle(kind)?;
        }
        Ok(())
    }
}
