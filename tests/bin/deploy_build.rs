//! A process running builds of `tests/deploy/program.rs` for
//! `tests/deploy.rs`: `deploy-build URL STEP…`, both builds' functions on
//! one cache at `URL`, each step in turn:
//!
//! - `v1:calls:N` (or `v2:…`): that build calls every case with each `x` in
//!   `0..N`, once through each of `get`, `get_local` and `get_async`.
//! - `v1:roll:MS:N`: that build calls every case with each `x` in `0..N`
//!   over and over for `MS` milliseconds, `get` and `get_local` on one
//!   thread and `get_async` on another, as a process of a rolling deploy.
//!   Its hit ratio counts from the end of both threads' first pass (the
//!   warm-up) on.
//!
//! A step prints a line per case, `case BUILD NAME calls=C runs=R
//! foreign=F`, where `F` counts the answers the build's body would not have
//! given, followed by ` | DOOR(x) = …, its body computes …` for the first
//! of them. A rolling step then prints `ratio BUILD hits=H misses=M`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use redis_cached::Cache;

/// A case of either build: the fields of the program's `Case`, whose types
/// are the same in both (std types only).
struct Case {
    name: &'static str,
    get: fn(u64) -> Checked,
    get_local: fn(u64) -> Checked,
    get_async: fn(u64) -> Pin<Box<dyn Future<Output = Checked> + Send>>,
    runs: fn() -> usize,
}

type Checked = Result<(), String>;

/// One build of the program.
struct Build {
    name: &'static str,
    cases: Vec<Case>,
}

/// The build of the program's crate `$krate`.
macro_rules! build {
    ($krate:ident) => {
        Build {
            name: $krate::BUILD,
            cases: ($krate::CHANGED.iter().chain($krate::UNCHANGED))
                .map(|case| Case {
                    name: case.name,
                    get: case.get,
                    get_local: case.get_local,
                    get_async: case.get_async,
                    runs: case.runs,
                })
                .collect(),
        }
    };
}

fn main() {
    // A panic on a load thread ends the process (its report, then exit
    // code 101) rather than leave the others waiting at a barrier.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("a URL");
    let cache = Cache::new(&url).expect("a valid URL");
    v1::CACHE.set(cache.clone());
    v2::CACHE.set(cache.clone());
    for step in args {
        let parts: Vec<&str> = step.split(':').collect();
        let build = match parts[0] {
            "v1" => build!(v1),
            "v2" => build!(v2),
            _ => panic!("unknown build in {step:?}"),
        };
        match parts[1..] {
            ["calls", n] => calls(&build, number(n)),
            ["roll", ms, n] => roll(&build, &cache, number(ms), number(n)),
            _ => panic!("unknown step {step:?}"),
        }
    }
}

fn number(text: &str) -> u64 {
    text.parse().expect("a number")
}

/// What one case did in one step.
#[derive(Default)]
struct Tally {
    calls: u64,
    foreign: u64,
    first: Option<String>,
}

impl Tally {
    fn add(&mut self, door: &str, x: u64, checked: Checked) {
        self.calls += 1;
        if let Err(answer) = checked {
            self.foreign += 1;
            self.first
                .get_or_insert_with(|| format!("{door}({x}) = {answer}"));
        }
    }

    fn merge(&mut self, other: Tally) {
        self.calls += other.calls;
        self.foreign += other.foreign;
        if self.first.is_none() {
            self.first = other.first;
        }
    }

    fn print(&self, build: &str, case: &Case, runs: usize) {
        let Self {
            calls,
            foreign,
            first,
        } = self;
        let name = case.name;
        let first = first
            .as_ref()
            .map(|f| format!(" | {f}"))
            .unwrap_or_default();
        println!("case {build} {name} calls={calls} runs={runs} foreign={foreign}{first}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Calls every case once per `x` in `0..n` and door.
fn calls(build: &Build, n: u64) {
    let runtime = runtime();
    for case in &build.cases {
        let runs = (case.runs)();
        let mut tally = Tally::default();
        for x in 0..n {
            tally.add("get", x, (case.get)(x));
            tally.add("get_local", x, (case.get_local)(x));
            tally.add("get_async", x, runtime.block_on((case.get_async)(x)));
        }
        tally.print(build.name, case, (case.runs)() - runs);
    }
}

/// Calls every case over `0..n` until `ms` milliseconds have passed: one
/// thread through `get` and `get_local`, one through `get_async`.
fn roll(build: &Build, cache: &Cache, ms: u64, n: u64) {
    let deadline = Instant::now() + Duration::from_millis(ms);
    // Both threads wait at `warm` after their first pass, while this one
    // reads the counters; then all go on past `counted`.
    let warm = Barrier::new(3);
    let counted = Barrier::new(3);
    let runs: Vec<usize> = build.cases.iter().map(|case| (case.runs)()).collect();
    let load = |doors: &dyn Fn(&Case, u64, &mut Tally)| {
        let mut tallies: Vec<Tally> = build.cases.iter().map(|_| Tally::default()).collect();
        let mut pass = || {
            for (case, tally) in build.cases.iter().zip(&mut tallies) {
                for x in 0..n {
                    doors(case, x, tally);
                }
            }
        };
        pass();
        warm.wait();
        counted.wait();
        while Instant::now() < deadline {
            pass();
        }
        tallies
    };
    let (warmed, tallies) = std::thread::scope(|s| {
        let sync = s.spawn(|| {
            load(&|case, x, tally| {
                tally.add("get", x, (case.get)(x));
                tally.add("get_local", x, (case.get_local)(x));
            })
        });
        let asynchronous = s.spawn(|| {
            let runtime = runtime();
            load(&|case, x, tally| {
                tally.add("get_async", x, runtime.block_on((case.get_async)(x)));
            })
        });
        warm.wait();
        let warmed = cache.stats();
        counted.wait();
        let mut tallies = sync.join().expect("the sync load");
        for (tally, other) in tallies
            .iter_mut()
            .zip(asynchronous.join().expect("the async load"))
        {
            tally.merge(other);
        }
        (warmed, tallies)
    });
    let end = cache.stats();
    for ((case, tally), runs) in build.cases.iter().zip(&tallies).zip(runs) {
        tally.print(build.name, case, (case.runs)() - runs);
    }
    let hits = end.hits - warmed.hits;
    let misses = end.misses - warmed.misses;
    println!("ratio {} hits={hits} misses={misses}", build.name);
}
