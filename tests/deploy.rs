//! A deploy never reads the old shape: a new build of a program gets a
//! cached value only if its type has the shape the old build wrote it with.
//!
//! The program is `deploy/program.rs`, built twice (`deploy-v1`,
//! `deploy-v2`, the second with the feature `v2` that changes some of its
//! types), both as the crate `deploy`: the same function names and type
//! names, so that nothing but a type's shape can tell their keys apart.
//! Each build runs in a process of its own (`bin/deploy_build.rs`), as a
//! deploy runs it, and checks every answer against what its own body
//! computes.
//!
//! - The old build fills the store, the new one reads it: of a type that
//!   changed shape (field order, a variant inserted or renamed, a field's
//!   type, a field added or removed in a `Vec`'s items, a nested struct
//!   renamed, `Option<T>` to `T`, `Vec<u8>` to `String`), not one old value
//!   is read, the body runs for every call and the old entries stay as they
//!   were; of a type that did not (with leaf types whose `Deserialize`
//!   checks its input, maps, pointers, `serde(rename)`, recursive types, a
//!   `try_from` newtype), every value is read and the body never runs. On
//!   one server, a Redis Cluster, and `mem://`.
//! - A rolling deploy: both builds at once on one Redis, over the same
//!   functions and arguments: not one answer of the other's shape, and each
//!   build's hit ratio after its warm-up at least 0.90.
//! - Two functions pinned to one `name` whose return types have the same
//!   name and different shapes, in one process.
//! - The typed API (`Cache::get`, `get_or_compute`, `try_get_or_compute`):
//!   a value written in one shape and read as another is a miss, counted in
//!   `Stats::shape_mismatches`.

mod support;
#[path = "support/cluster.rs"]
mod test_cluster;

use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use redis_cached::{Cache, redis_cached};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use support::{CacheSlot, Calls, TestRedis};
use test_cluster::TestCluster;

/// The arguments each build calls every case with, through each of its
/// three doors (`get`, `get_local`, `get_async`).
const ARGS: u64 = 4;

/// Calls per case and build in a `calls` step.
const CALLS: u64 = 3 * ARGS;

/// How long both builds run at once in the rolling deploy.
const ROLL_MS: u64 = 3000;

/// The least hit ratio of each build in the rolling deploy, after its warm-up.
const MIN_HIT_RATIO: f64 = 0.90;

/// What a build's process said about one case.
#[derive(Debug)]
struct Report {
    build: String,
    case: String,
    calls: u64,
    runs: u64,
    foreign: u64,
    /// The whole line, for failure messages.
    line: String,
}

/// What a build's process printed.
#[derive(Debug, Default)]
struct Printed {
    cases: Vec<Report>,
    /// `(build, hits, misses)` of a rolling step, after its warm-up.
    ratios: Vec<(String, u64, u64)>,
}

/// Starts `deploy-build url steps…`.
fn spawn(url: &str, steps: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_deploy-build"))
        .arg(url)
        .args(steps)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start deploy-build")
}

/// Waits for a `deploy-build` process and reads what it printed.
fn printed(child: Child) -> Printed {
    let Output { status, stdout, .. } = child.wait_with_output().expect("run deploy-build");
    let stdout = String::from_utf8(stdout).expect("utf-8");
    assert!(status.success(), "deploy-build failed: {status}\n{stdout}");
    let mut printed = Printed::default();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let field = |i: usize, name: &str| -> u64 {
            let word = words[i]
                .strip_prefix(name)
                .and_then(|w| w.strip_prefix('='));
            word.and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        };
        match words[0] {
            "case" => printed.cases.push(Report {
                build: words[1].to_owned(),
                case: words[2].to_owned(),
                calls: field(3, "calls"),
                runs: field(4, "runs"),
                foreign: field(5, "foreign"),
                line: line.to_owned(),
            }),
            "ratio" => {
                let hits = field(2, "hits");
                let misses = field(3, "misses");
                printed.ratios.push((words[1].to_owned(), hits, misses));
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    printed
}

/// Runs `deploy-build url steps…` to its end.
fn run(url: &str, steps: &[&str]) -> Printed {
    printed(spawn(url, steps))
}

/// Whether the case `name` has a type the second build changed.
fn changed(name: &str) -> bool {
    v1::CHANGED.iter().any(|case| case.name == name)
}

/// Every case of the program, by name.
fn case_names() -> Vec<&'static str> {
    (v1::CHANGED.iter().chain(v1::UNCHANGED))
        .map(|case| case.name)
        .collect()
}

/// The reports of `build`, one per case of the program, in its order.
fn of_build<'a>(printed: &'a Printed, build: &str) -> Vec<&'a Report> {
    let reports: Vec<&Report> = (printed.cases.iter())
        .filter(|report| report.build == build)
        .collect();
    let names: Vec<&str> = reports.iter().map(|r| r.case.as_str()).collect();
    assert_eq!(names, case_names(), "one report per case of {build}");
    reports
}

/// The first build, on an empty store: computed every answer itself, and
/// each right.
fn assert_filled(printed: &Printed) {
    let wrong: Vec<&str> = (of_build(printed, "v1").into_iter())
        .filter(|r| r.calls != CALLS || r.runs != CALLS || r.foreign != 0)
        .map(|r| r.line.as_str())
        .collect();
    assert!(
        wrong.is_empty(),
        "the first build, on an empty store, should run its body for each of its \
         {CALLS} calls of each case:\n{}",
        wrong.join("\n")
    );
}

/// The second build, reading what the first wrote: of a changed type, its
/// body ran for every call and no answer was the first build's; of an
/// unchanged one, every answer came from the store (no run).
fn assert_read(printed: &Printed) {
    let wrong: Vec<String> = (of_build(printed, "v2").into_iter())
        .filter(|r| {
            let runs = if changed(&r.case) { CALLS } else { 0 };
            r.calls != CALLS || r.runs != runs || r.foreign != 0
        })
        .map(|r| {
            let rule = match changed(&r.case) {
                true => "changed shape: every call a miss",
                false => "same shape: every call a hit",
            };
            format!("{} [{rule}]", r.line)
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the second build read values of the first build's shapes, or missed its own \
         ({CALLS} calls per case; runs = body runs; foreign = answers its body would \
         not give):\n{}",
        wrong.join("\n")
    );
}

/// Every key and its bytes, through a plain or a cluster connection.
fn dump(conn: &mut impl redis::ConnectionLike) -> BTreeMap<String, Vec<u8>> {
    let keys = harness::sorted_keys(conn);
    keys.into_iter()
        .map(|key| {
            let bytes: Vec<u8> = redis::cmd("GET").arg(&key).query(conn).expect("GET");
            (key, bytes)
        })
        .collect()
}

/// The case a key is an entry of: `deploy::<case>::<door>:{…}`.
fn case_of(key: &str) -> &str {
    let rest = key.strip_prefix("deploy::").expect("a key of the program");
    rest.split("::").next().unwrap_or(rest)
}

/// After the second build: every entry the first wrote is still there,
/// unchanged; the second wrote one entry per call of a changed case, and
/// none of an unchanged one.
fn assert_entries(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) {
    let per_case = |entries: &BTreeMap<String, Vec<u8>>| {
        let mut counts: BTreeMap<&str, u64> = case_names().into_iter().map(|c| (c, 0)).collect();
        for key in entries.keys() {
            *counts.get_mut(case_of(key)).expect("a case of the program") += 1;
        }
        counts
    };
    assert!(
        per_case(before).values().all(|&n| n == CALLS),
        "the first build wrote one entry per call: {:?}",
        per_case(before)
    );
    let lost: Vec<&String> = (before.iter())
        .filter(|(key, bytes)| after.get(*key) != Some(bytes))
        .map(|(key, _)| key)
        .collect();
    assert!(
        lost.is_empty(),
        "the second build overwrote or deleted the first build's entries: {lost:?}"
    );
    let new: BTreeMap<String, Vec<u8>> = (after.iter())
        .filter(|(key, _)| !before.contains_key(*key))
        .map(|(key, bytes)| (key.clone(), bytes.clone()))
        .collect();
    let expected: BTreeMap<&str, u64> = (case_names().into_iter())
        .map(|case| (case, if changed(case) { CALLS } else { 0 }))
        .collect();
    assert_eq!(
        per_case(&new),
        expected,
        "the second build's own entries per case: one per call of a changed type, \
         none of an unchanged one"
    );
}

#[test]
fn a_new_build_reads_only_values_of_its_own_shapes_on_one_server() {
    let redis = TestRedis::start();
    assert_filled(&run(redis.url(), &[&format!("v1:calls:{ARGS}")]));
    let before = dump(&mut redis.conn());
    let read = run(redis.url(), &[&format!("v2:calls:{ARGS}")]);
    assert_read(&read);
    assert_entries(&before, &dump(&mut redis.conn()));
}

#[test]
fn a_new_build_reads_only_values_of_its_own_shapes_on_a_cluster() {
    let cluster = TestCluster::start();
    assert_filled(&run(&cluster.url(), &[&format!("v1:calls:{ARGS}")]));
    let before = dump(&mut cluster.conn());
    let read = run(&cluster.url(), &[&format!("v2:calls:{ARGS}")]);
    assert_read(&read);
    assert_entries(&before, &dump(&mut cluster.conn()));
}

/// Both builds in one process, on one `mem://` cache: the same names, so
/// also the same paths of their types, as two versions of one crate in a
/// binary.
#[test]
fn a_new_build_reads_only_values_of_its_own_shapes_in_memory() {
    let both = run(
        "mem://",
        &[&format!("v1:calls:{ARGS}"), &format!("v2:calls:{ARGS}")],
    );
    assert_filled(&both);
    assert_read(&both);
}

/// Arguments each build calls every case with in the rolling deploy.
const ROLL_ARGS: u64 = 8;

#[test]
fn a_rolling_deploy_answers_each_build_in_its_own_shape_and_keeps_hitting() {
    let redis = TestRedis::start();
    let step = |build: &str| format!("{build}:roll:{ROLL_MS}:{ROLL_ARGS}");
    let old = spawn(redis.url(), &[&step("v1")]);
    let new = spawn(redis.url(), &[&step("v2")]);
    let (old, new) = (printed(old), printed(new));
    let mut wrong = Vec::new();
    let mut ratios = Vec::new();
    for (printed, build) in [(&old, "v1"), (&new, "v2")] {
        let reports = of_build(printed, build);
        wrong.extend(
            (reports.iter())
                .filter(|r| r.foreign != 0)
                .map(|r| r.line.clone()),
        );
        let calls: u64 = reports.iter().map(|r| r.calls).sum();
        let [(_, hits, misses)] = printed.ratios[..] else {
            panic!("one hit ratio from {build}: {:?}", printed.ratios);
        };
        let ratio = hits as f64 / (hits + misses).max(1) as f64;
        println!(
            "rolling deploy, {ROLL_MS} ms: {build} made {calls} calls; after its warm-up, \
             {hits} hits and {misses} misses: hit ratio {ratio:.4}"
        );
        ratios.push((build, ratio, hits, misses));
    }
    assert!(
        wrong.is_empty(),
        "answers of the other build's shape during a rolling deploy:\n{}",
        wrong.join("\n")
    );
    for (build, ratio, hits, misses) in ratios {
        assert!(
            hits > 0 && ratio >= MIN_HIT_RATIO,
            "{build}'s hit ratio after its warm-up: {ratio:.4} ({hits} hits, {misses} misses), \
             below {MIN_HIT_RATIO}: do the builds evict each other's values?"
        );
    }
}

static PINNED: CacheSlot = CacheSlot::new();
static OLD_RUNS: Calls = Calls::new();
static NEW_RUNS: Calls = Calls::new();

/// Two functions pinned to one `name`, the first returning a `Bounds` of
/// the old shape and the second one of the new: each gives the text of its
/// answer, and the name of its return type. Items in blocks of one function
/// share its path, so both types are `deploy::pinned::Bounds`: today's key,
/// which holds the type's name, can't tell them apart either.
type Pinned = fn(u64) -> (String, &'static str);

fn pinned() -> [Pinned; 2] {
    let old: Pinned = {
        #[derive(Debug, Serialize, Deserialize)]
        struct Bounds {
            min: i64,
            max: i64,
        }
        #[redis_cached(ttl = 600, cache = PINNED, name = "bounds")]
        fn bounds(x: u64) -> Bounds {
            OLD_RUNS.inc();
            Bounds {
                min: x as i64,
                max: x as i64 + 10,
            }
        }
        |x| (format!("{:?}", bounds(x)), std::any::type_name::<Bounds>())
    };
    let new: Pinned = {
        #[derive(Debug, Serialize, Deserialize)]
        struct Bounds {
            max: i64,
            min: i64,
        }
        #[redis_cached(ttl = 600, cache = PINNED, name = "bounds")]
        fn bounds(x: u64) -> Bounds {
            NEW_RUNS.inc();
            Bounds {
                max: x as i64 + 10,
                min: x as i64,
            }
        }
        |x| (format!("{:?}", bounds(x)), std::any::type_name::<Bounds>())
    };
    [old, new]
}

#[test]
fn two_shapes_pinned_to_one_name_in_one_process_read_only_their_own_values() {
    PINNED.set(Cache::new("mem://").expect("mem:// is valid"));
    let [old, new] = pinned();
    assert_eq!(old(0).1, new(0).1, "both return types have one name");
    for x in 0..ARGS {
        let own = format!("Bounds {{ min: {x}, max: {} }}", x + 10);
        assert_eq!(old(x).0, own);
    }
    let old_runs = OLD_RUNS.get();
    assert_eq!(
        old_runs, ARGS as usize,
        "the old shape ran once per argument"
    );
    for x in 0..ARGS {
        let own = format!("Bounds {{ max: {}, min: {x} }}", x + 10);
        assert_eq!(new(x).0, own, "the new shape's answer for {x}");
    }
    assert_eq!(
        NEW_RUNS.get(),
        ARGS as usize,
        "the new shape missed each time"
    );
    for x in 0..ARGS {
        old(x);
    }
    assert_eq!(
        OLD_RUNS.get(),
        old_runs,
        "the old shape's values are still there"
    );
}

const TTL: Duration = Duration::from_secs(600);

/// Sets `written(x)` under `key`, and gets it as the type `read` returns;
/// gives that and `read(x)`.
async fn write_then_read<W: Serialize, R: DeserializeOwned>(
    cache: &Cache,
    key: &str,
    written: fn(u64) -> W,
    read: fn(u64) -> R,
    x: u64,
) -> (Option<R>, R) {
    cache.set(key, &written(x), TTL).await.expect("SET");
    let got = cache.get::<R>(key).await.expect("GET");
    (got, read(x))
}

/// What a value written as the first build's type and read as the second's
/// gives, for each case: `(case, got, the second build's value)`, as text.
macro_rules! read_across {
    ($cache:expr, [$($case:ident),* $(,)?]) => {{
        let mut read = Vec::new();
        $(
            let (got, own) = write_then_read(
                $cache,
                concat!("typed:", stringify!($case)),
                v1::$case::value,
                v2::$case::value,
                7,
            )
            .await;
            read.push((stringify!($case), got.map(|got| format!("{got:?}")), format!("{own:?}")));
        )*
        read
    }};
}

/// The typed API across the two builds' types, on `cache` (fresh).
async fn typed_api_reads_only_its_own_shape(cache: &Cache) {
    // One value, written in the old shape, read in the new.
    let old = v1::field_reorder::value(3);
    cache.set("bounds", &old, TTL).await.unwrap();
    assert_eq!(cache.get::<v2::Bounds>("bounds").await.unwrap(), None);
    assert_eq!(cache.stats().shape_mismatches, 1);
    // A read in the old shape still finds it.
    assert_eq!(cache.get::<v1::Bounds>("bounds").await.unwrap(), Some(old));
    assert_eq!(cache.stats().shape_mismatches, 1);

    // Every changed type: a miss.
    let changed = read_across!(
        cache,
        [
            field_reorder,
            variant_inserted,
            variant_renamed,
            u32_to_i32,
            u64_to_f64,
            nested_field_added,
            nested_field_removed,
            struct_renamed,
            option_to_value,
            bytes_to_string,
        ]
    );
    let read: Vec<_> = changed.iter().filter(|(_, got, _)| got.is_some()).collect();
    assert!(
        read.is_empty(),
        "values read in another shape ((case, got, the reader's own value)): {read:#?}"
    );
    assert_eq!(changed.len(), v1::CHANGED.len());
    let mismatches = 1 + changed.len() as u64;
    assert_eq!(cache.stats().shape_mismatches, mismatches);

    // Every unchanged type: a hit, whatever its leaf types.
    let unchanged = read_across!(
        cache,
        [
            point,
            uuid_id,
            chrono_time,
            time_time,
            decimal,
            ip_addr,
            non_zero,
            hash_map,
            btree_map,
            boxed,
            arc,
            serde_rename,
            tree,
            list,
            email,
        ]
    );
    let missed: Vec<_> = (unchanged.iter())
        .filter(|(_, got, own)| got.as_ref() != Some(own))
        .collect();
    assert!(
        missed.is_empty(),
        "values of an unchanged shape not read back ((case, got, expected)): {missed:#?}"
    );
    assert_eq!(unchanged.len(), v1::UNCHANGED.len());
    assert_eq!(cache.stats().shape_mismatches, mismatches);

    // get_or_compute over a value of the old shape: computes once, then hits.
    cache.set("status", &v1::Status::Active, TTL).await.unwrap();
    let computed = Calls::new();
    for _ in 0..2 {
        let status = cache
            .get_or_compute("status", TTL, || async {
                computed.inc();
                v2::Status::Pending
            })
            .await;
        assert_eq!(status, v2::Status::Pending);
    }
    assert_eq!(computed.get(), 1, "computed once, then read back");
    assert_eq!(cache.stats().shape_mismatches, mismatches + 1);

    // try_get_or_compute likewise.
    cache
        .set("money", &v1::u32_to_i32::value(20), TTL)
        .await
        .unwrap();
    let own = v2::u32_to_i32::value(20);
    for _ in 0..2 {
        let money = cache
            .try_get_or_compute("money", TTL, || async {
                computed.inc();
                Ok::<_, String>(own.clone())
            })
            .await;
        assert_eq!(money, Ok(own.clone()));
    }
    assert_eq!(computed.get(), 2, "computed once, then read back");
    assert_eq!(cache.stats().shape_mismatches, mismatches + 2);
}

#[tokio::test]
async fn the_typed_api_reads_only_values_of_its_own_shape_on_one_server() {
    let redis = TestRedis::start();
    typed_api_reads_only_its_own_shape(&redis.cache()).await;
}

#[tokio::test]
async fn the_typed_api_reads_only_values_of_its_own_shape_in_memory() {
    typed_api_reads_only_its_own_shape(&Cache::new("mem://").unwrap()).await;
}
