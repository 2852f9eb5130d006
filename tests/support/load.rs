//! A load of cached calls kept up while a test fails Redis over: 4 async
//! tasks on a 2-worker runtime and 2 threads call in a loop over `args`
//! arguments, each result checked against `expected`, the slowest call kept.
#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::task::JoinHandle as TaskHandle;

/// The running load; [`Load::stop`] ends it, [`Load::runtime`] stays.
pub struct Load {
    stop: Arc<AtomicBool>,
    slowest: Arc<Mutex<Duration>>,
    runtime: Runtime,
    tasks: Vec<TaskHandle<u64>>,
    threads: Vec<JoinHandle<u64>>,
}

impl Load {
    /// Starts calling `call_async` and `call_sync` with `0..args`, asserting
    /// each returns `expected` of its argument. Each caller stops after a
    /// minute whatever happens.
    pub fn start<A, F>(
        args: u64,
        call_async: A,
        call_sync: fn(u64) -> u64,
        expected: fn(u64) -> u64,
    ) -> Self
    where
        A: Fn(u64) -> F + Copy + Send + 'static,
        F: Future<Output = u64> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let slowest = Arc::new(Mutex::new(Duration::ZERO));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let record = {
            let slowest = slowest.clone();
            move |took: Duration| {
                let mut slowest = slowest.lock().unwrap();
                *slowest = (*slowest).max(took);
            }
        };
        let tasks = (0..4u64)
            .map(|task| {
                let (stop, record) = (stop.clone(), record.clone());
                runtime.spawn(async move {
                    let mut calls = 0u64;
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(SeqCst) && Instant::now() < deadline {
                        let x = (calls * 4 + task) % args;
                        let start = Instant::now();
                        let got = call_async(x).await;
                        record(start.elapsed());
                        assert_eq!(got, expected(x), "async call for {x}");
                        calls += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    calls
                })
            })
            .collect();
        let threads = (0..2u64)
            .map(|thread| {
                let (stop, record) = (stop.clone(), record.clone());
                std::thread::spawn(move || {
                    let mut calls = 0u64;
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(SeqCst) && Instant::now() < deadline {
                        let x = (calls * 2 + thread) % args;
                        let start = Instant::now();
                        let got = call_sync(x);
                        record(start.elapsed());
                        assert_eq!(got, expected(x), "sync call for {x}");
                        calls += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    calls
                })
            })
            .collect();
        Self {
            stop,
            slowest,
            runtime,
            tasks,
            threads,
        }
    }

    /// The runtime the async callers run on, for a test's own async calls.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Stops the callers; how many calls they made, and the slowest one.
    /// Panics if any caller panicked (a wrong value included).
    pub fn stop(&mut self) -> (u64, Duration) {
        self.stop.store(true, SeqCst);
        let mut calls = 0;
        for task in std::mem::take(&mut self.tasks) {
            calls += self.runtime.block_on(task).expect("no async call panicked");
        }
        for thread in std::mem::take(&mut self.threads) {
            calls += thread.join().expect("no sync call panicked");
        }
        let slowest = *self.slowest.lock().unwrap();
        (calls, slowest)
    }
}
