//! The shape fingerprint of a type, traced from its `Deserialize` once per
//! process: a deserializer that holds no bytes ([`Trace`]) answers every
//! request with a made-up value and notes what was asked (a struct `Bounds`
//! with fields `min`, `max`; an `i64`; an enum with these variants…). The
//! idea is serde-reflection's `Tracer`, with what a cache needs on top:
//!
//! - Containers (structs, enums, newtype, tuple and unit structs) are known
//!   by their visitor's type (`std::any::type_name_of_val`), unique per Rust
//!   type and instantiation, so two types that share a serde name in two
//!   modules are two containers, and a recursive type is noticed.
//! - An enum is traced again until every variant has been (each occurrence
//!   takes one not yet seen), so the fingerprint covers every variant.
//! - A sequence, map or option is given one element, or `Some`, the first
//!   time, to see inside; a container met again inside itself is built
//!   "cut" (empty sequences, `None`, an enum variant already known to end),
//!   which ends recursion.
//! - Leaf types that check their input (`NonZeroU64` refuses 0, `Uuid` wants
//!   16 bytes, a date-time parses its string) are given samples in turn: when
//!   a visitor refuses one, the trace starts over with the next for that
//!   visitor's type. When a container's own visitor refuses what its fields
//!   gave (a date made of a year 0 and day 0), its leaves move on together.
//!
//! What is hashed is the serde shape only: names, kinds and arities, in
//! order, containers numbered by first appearance. Rust paths and visitor
//! names identify, but are not hashed: the same type gives the same
//! fingerprint in every build.
//!
//! A type whose trace can't finish (it asks for `deserialize_any`, which
//! bincode can't decode either; a leaf that refuses every sample; a
//! `Deserialize` that contradicts itself) is [`Untraceable`]: its values
//! are then checked one by one (`read.rs`).

use std::any::type_name_of_val;
use std::collections::HashMap;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};

use super::tag::Kind;

/// Why a type's shape could not be traced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Untraceable {
    /// Its `Deserialize` asks for something bincode can't decode
    /// (`deserialize_any`, an identifier, an ignored value): no value of
    /// it is ever read back.
    NotBincode(&'static str),
    /// Anything else: a leaf refused every sample, the trace contradicted
    /// itself or grew too large.
    Other(String),
}

impl fmt::Display for Untraceable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBincode(what) => write!(
                f,
                "its Deserialize calls {what}, which bincode can't decode: \
                 it needs a self-describing format"
            ),
            Self::Other(why) => f.write_str(why),
        }
    }
}

/// The shape of `T`: its fingerprint, and whether it holds a string or a
/// byte buffer (which bincode allocates at the length the bytes claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) bytes: [u8; 16],
    pub(crate) holds_strings: bool,
}

/// The shape of `T`, or why it has none.
pub(crate) fn fingerprint<T: DeserializeOwned>() -> Result<Fingerprint, Untraceable> {
    let mut tracer = Tracer::default();
    let mut root = Format::Unknown;
    for _ in 0..ATTEMPTS {
        tracer.start_attempt();
        let mut seen = Format::Unknown;
        let result = T::deserialize(Trace {
            t: &mut tracer,
            out: &mut seen,
            cut: false,
        })
        .map_err(|error| tracer.blame_last(error));
        if let Some(fatal) = tracer.fatal.take() {
            return Err(fatal);
        }
        merge(&mut root, seen).map_err(|()| tracer.conflict("the root"))?;
        match result {
            Ok(_) if tracer.complete(&root) => return Ok(tracer.hash(&root)),
            _ if tracer.learned => continue,
            Ok(_) => return Err(Untraceable::Other("the trace stopped learning".into())),
            Err(error) => return Err(Untraceable::Other(error.0)),
        }
    }
    Err(Untraceable::Other(format!(
        "no complete trace in {ATTEMPTS} attempts"
    )))
}

/// How many times a trace may start over.
const ATTEMPTS: usize = 1024;
/// Requests in one attempt, beyond which a type is taken as too large.
const STEPS: usize = 100_000;
/// Containers being built at once, beyond which a type is taken as too deep.
const DEPTH: usize = 256;
/// Elements of a tuple (an array) beyond which a type is taken as too large.
const TUPLE: usize = 1 << 16;

/// What a position holds, as far as the trace has seen.
#[derive(Debug, Clone, PartialEq)]
enum Format {
    Unknown,
    Leaf(Kind),
    Option(Box<Format>),
    Seq(Box<Format>),
    Map(Box<Format>, Box<Format>),
    Tuple(Vec<Format>),
    Container(usize),
}

/// What a variant holds.
#[derive(Debug, Clone, PartialEq)]
enum Holds {
    Unit,
    Newtype(Format),
    Tuple(Vec<Format>),
    Struct(&'static [&'static str], Vec<Format>),
}

/// A named type, and what it holds.
#[derive(Debug)]
struct Container {
    name: &'static str,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Unit,
    Newtype(Format),
    Tuple(Vec<Format>),
    Struct(&'static [&'static str], Vec<Format>),
    Enum(&'static [&'static str], Vec<Variant>),
}

/// One variant of an enum, as far as the trace has seen.
#[derive(Debug, Clone, Default)]
struct Variant {
    /// What it holds, once traced.
    holds: Option<Holds>,
    /// Tried, and found to need a variant known to end recursion first.
    deferred: bool,
}

impl Body {
    /// Whether `other` (a new sighting) is the same kind of container.
    fn agrees(&self, other: &Body) -> bool {
        match (self, other) {
            (Body::Unit, Body::Unit) | (Body::Newtype(_), Body::Newtype(_)) => true,
            (Body::Tuple(a), Body::Tuple(b)) => a.len() == b.len(),
            (Body::Struct(a, _), Body::Struct(b, _)) | (Body::Enum(a, _), Body::Enum(b, _)) => {
                a == b
            }
            _ => false,
        }
    }
}

/// Adds what one sighting saw to what is known; `Err` if they disagree.
fn merge(known: &mut Format, seen: Format) -> Result<(), ()> {
    match (known, seen) {
        (_, Format::Unknown) => Ok(()),
        (known @ Format::Unknown, seen) => {
            *known = seen;
            Ok(())
        }
        (Format::Leaf(a), Format::Leaf(b)) if *a == b => Ok(()),
        (Format::Container(a), Format::Container(b)) if *a == b => Ok(()),
        (Format::Option(a), Format::Option(b)) | (Format::Seq(a), Format::Seq(b)) => merge(a, *b),
        (Format::Map(ak, av), Format::Map(bk, bv)) => {
            merge(ak, *bk)?;
            merge(av, *bv)
        }
        (Format::Tuple(a), Format::Tuple(b)) => merge_all(a, b),
        _ => Err(()),
    }
}

fn merge_all(known: &mut [Format], seen: Vec<Format>) -> Result<(), ()> {
    if known.len() != seen.len() {
        return Err(());
    }
    known
        .iter_mut()
        .zip(seen)
        .try_for_each(|(k, s)| merge(k, s))
}

fn merge_holds(known: &mut Option<Holds>, seen: Holds) -> Result<(), ()> {
    let Some(known) = known else {
        *known = Some(seen);
        return Ok(());
    };
    match (known, seen) {
        (Holds::Unit, Holds::Unit) => Ok(()),
        (Holds::Newtype(a), Holds::Newtype(b)) => merge(a, b),
        (Holds::Tuple(a), Holds::Tuple(b)) => merge_all(a, b),
        (Holds::Struct(af, a), Holds::Struct(bf, b)) if *af == bf => merge_all(a, b),
        _ => Err(()),
    }
}

/// How the current attempt is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Going,
    /// A visitor refused a sample; what to change next time is noted.
    Blamed,
    /// A cut container could not be built; `true` once the enum variant
    /// that led there has been deferred.
    Restart(bool),
}

/// What the trace knows, across attempts.
#[derive(Default)]
struct Tracer {
    containers: Vec<Container>,
    /// Containers by their visitor's type.
    ids: HashMap<&'static str, usize>,
    /// Containers being built, outermost first, and whether each is cut.
    stack: Vec<(usize, bool)>,
    /// The visitor of the last leaf given a sample, which a check after it
    /// (`#[serde(try_from)]`) may have refused.
    last_leaf: Option<&'static str>,
    /// The sample each leaf visitor's type takes next.
    samples: HashMap<&'static str, usize>,
    /// How far the leaves inside a container move on, by its visitor's type.
    profiles: HashMap<&'static str, usize>,
    /// The move-on of the containers being built.
    bump: usize,
    /// Variants taken this attempt, so that another sighting takes another.
    taken: Vec<(usize, usize)>,
    state: State,
    steps: usize,
    /// Whether this attempt found something new.
    learned: bool,
    fatal: Option<Untraceable>,
}

/// The error of a trace attempt (what a visitor said, or why it stopped).
#[derive(Debug)]
struct Stop(String);

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl Tracer {
    fn start_attempt(&mut self) {
        self.stack.clear();
        self.last_leaf = None;
        self.taken.clear();
        self.bump = 0;
        self.state = State::Going;
        self.steps = 0;
        self.learned = false;
    }

    /// Stops the whole trace.
    fn fail(&mut self, why: Untraceable) -> Stop {
        let stop = Stop(why.to_string());
        self.fatal.get_or_insert(why);
        stop
    }

    fn conflict(&mut self, what: &str) -> Untraceable {
        Untraceable::Other(format!("{what} was read two different ways"))
    }

    /// Counts one request; stops a trace that grew too large.
    fn step(&mut self) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps > STEPS || self.stack.len() > DEPTH {
            return Err(self.fail(Untraceable::Other("the type is too large to trace".into())));
        }
        Ok(())
    }

    /// Which of `n` samples the leaf visitor `who` takes.
    fn sample(&mut self, who: &'static str, n: usize) -> Result<usize, Stop> {
        let own = self.samples.get(who).copied().unwrap_or(0);
        if own >= n {
            return Err(self.fail(Untraceable::Other(format!(
                "{who} accepts none of the samples tried"
            ))));
        }
        Ok((own + self.bump).min(n - 1))
    }

    /// Notes, for the next attempt, that `who` refused what it was given.
    fn blame(&mut self, leaf: bool, who: &'static str, error: Stop) -> Stop {
        if self.state == State::Going {
            self.state = State::Blamed;
            let counts = if leaf {
                &mut self.samples
            } else {
                &mut self.profiles
            };
            let count = counts.entry(who).or_default();
            // A container's leaves can't move on further than the longest
            // sample list; past that, no progress.
            if leaf || *count < STRS.len() {
                *count += 1;
                self.learned = true;
            }
        }
        error
    }

    /// Notes, for the next attempt, that what was read at a position was
    /// refused after its leaf accepted it (a `try_from` that checks the
    /// value): the last leaf moves on.
    fn blame_last(&mut self, error: Stop) -> Stop {
        match self.last_leaf {
            Some(who) => self.blame(true, who, error),
            None => error,
        }
    }

    /// The containers being built.
    fn building(&self) -> Vec<usize> {
        self.stack.iter().map(|&(id, _)| id).collect()
    }

    /// The container seen by `who`'s visitor, registered on first sight.
    fn register(
        &mut self,
        who: &'static str,
        name: &'static str,
        body: Body,
    ) -> Result<usize, Stop> {
        if let Some(&id) = self.ids.get(who) {
            let known = &self.containers[id];
            if known.name != name || !known.body.agrees(&body) {
                let why = self.conflict(name);
                return Err(self.fail(why));
            }
            return Ok(id);
        }
        let id = self.containers.len();
        self.containers.push(Container { name, body });
        self.ids.insert(who, id);
        Ok(id)
    }

    /// Adds what one sighting of container `id` saw inside it.
    fn record(&mut self, id: usize, seen: Seen) -> Result<(), Stop> {
        let ok = match (&mut self.containers[id].body, seen) {
            (Body::Unit, Seen::Nothing) => Ok(()),
            (Body::Newtype(known), Seen::One(seen)) => merge(known, seen),
            (Body::Tuple(known) | Body::Struct(_, known), Seen::Many(seen)) => {
                merge_all(known, seen)
            }
            (Body::Enum(_, variants), Seen::Variant(index, seen)) => {
                let variant = &mut variants[index];
                if variant.holds.is_none() {
                    self.learned = true;
                }
                merge_holds(&mut variant.holds, seen)
            }
            _ => Err(()),
        };
        ok.map_err(|()| {
            let why = self.conflict(self.containers[id].name);
            self.fail(why)
        })
    }

    /// The variant a sighting of enum `id` takes: when not cut, one not yet
    /// traced (and not taken this attempt), else one that ends; when cut,
    /// one known to end without building a container being built.
    fn choose(&mut self, id: usize, cut: bool) -> Option<usize> {
        let Body::Enum(_, variants) = &self.containers[id].body else {
            return None;
        };
        let ends = |i: usize| {
            let mut visiting = self.building();
            variants[i]
                .holds
                .as_ref()
                .is_some_and(|holds| self.ends(holds, &mut visiting))
        };
        let untaken = |i: &usize| !self.taken.contains(&(id, *i));
        let n = variants.len();
        let choice = if cut {
            (0..n).find(|&i| ends(i))
        } else {
            (0..n)
                .filter(untaken)
                .find(|&i| variants[i].holds.is_none() && !variants[i].deferred)
                .or_else(|| {
                    (0..n)
                        .filter(untaken)
                        .find(|&i| variants[i].holds.is_none())
                })
                .or_else(|| (0..n).find(|&i| ends(i)))
                .or_else(|| (0..n).find(|&i| variants[i].holds.is_some()))
        };
        if let (Some(i), false) = (choice, cut) {
            self.taken.push((id, i));
        }
        choice
    }

    /// Whether a cut value of what a variant holds can be built, with the
    /// containers in `visiting` (those being built) off limits.
    fn ends(&self, holds: &Holds, visiting: &mut Vec<usize>) -> bool {
        match holds {
            Holds::Unit => true,
            Holds::Newtype(format) => self.ends_format(format, visiting),
            Holds::Tuple(formats) | Holds::Struct(_, formats) => {
                formats.iter().all(|f| self.ends_format(f, visiting))
            }
        }
    }

    fn ends_format(&self, format: &Format, visiting: &mut Vec<usize>) -> bool {
        match format {
            Format::Unknown => false,
            // Cut: empty, or `None`.
            Format::Leaf(_) | Format::Option(_) | Format::Seq(_) | Format::Map(..) => true,
            Format::Tuple(formats) => formats.iter().all(|f| self.ends_format(f, visiting)),
            Format::Container(id) => {
                if visiting.contains(id) {
                    return false;
                }
                visiting.push(*id);
                let ends = match &self.containers[*id].body {
                    Body::Unit => true,
                    Body::Newtype(f) => self.ends_format(f, visiting),
                    Body::Tuple(fs) | Body::Struct(_, fs) => {
                        fs.iter().all(|f| self.ends_format(f, visiting))
                    }
                    Body::Enum(_, variants) => variants.iter().any(|v| {
                        v.holds
                            .as_ref()
                            .is_some_and(|holds| self.ends(holds, visiting))
                    }),
                };
                visiting.pop();
                ends
            }
        }
    }

    /// Whether everything reachable from `root` is known, every variant too.
    fn complete(&self, root: &Format) -> bool {
        let mut seen = vec![false; self.containers.len()];
        self.complete_format(root, &mut seen)
    }

    fn complete_format(&self, format: &Format, seen: &mut [bool]) -> bool {
        match format {
            Format::Unknown => false,
            Format::Leaf(_) => true,
            Format::Option(f) | Format::Seq(f) => self.complete_format(f, seen),
            Format::Map(k, v) => self.complete_format(k, seen) && self.complete_format(v, seen),
            Format::Tuple(fs) => fs.iter().all(|f| self.complete_format(f, seen)),
            Format::Container(id) => {
                if std::mem::replace(&mut seen[*id], true) {
                    return true;
                }
                let all = |fs: &[Format], seen: &mut [bool]| {
                    fs.iter().all(|f| self.complete_format(f, seen))
                };
                match &self.containers[*id].body {
                    Body::Unit => true,
                    Body::Newtype(f) => self.complete_format(f, seen),
                    Body::Tuple(fs) | Body::Struct(_, fs) => all(fs, seen),
                    Body::Enum(_, variants) => variants.iter().all(|v| match &v.holds {
                        None => false,
                        Some(Holds::Unit) => true,
                        Some(Holds::Newtype(f)) => self.complete_format(f, seen),
                        Some(Holds::Tuple(fs) | Holds::Struct(_, fs)) => all(fs, seen),
                    }),
                }
            }
        }
    }

    /// The fingerprint of a complete trace: BLAKE3 over the shape written
    /// out from `root`, containers numbered in order of first appearance.
    fn hash(&self, root: &Format) -> Fingerprint {
        let mut out = Writer {
            tracer: self,
            numbers: vec![None; self.containers.len()],
            next: 0,
            hasher: blake3::Hasher::new(),
            strings: false,
        };
        out.hasher.update(b"redis-cached/shape/1");
        out.format(root);
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&out.hasher.finalize().as_bytes()[..16]);
        Fingerprint {
            bytes,
            holds_strings: out.strings,
        }
    }
}

/// Writes a traced shape into the fingerprint's hasher.
struct Writer<'a> {
    tracer: &'a Tracer,
    numbers: Vec<Option<u64>>,
    next: u64,
    hasher: blake3::Hasher,
    /// Whether a string or byte buffer was written.
    strings: bool,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) {
        self.hasher.update(&[b]);
    }

    fn number(&mut self, n: u64) {
        self.hasher.update(&n.to_le_bytes());
    }

    fn name(&mut self, name: &str) {
        self.number(name.len() as u64);
        self.hasher.update(name.as_bytes());
    }

    fn formats(&mut self, formats: &[Format]) {
        self.number(formats.len() as u64);
        formats.iter().for_each(|f| self.format(f));
    }

    fn fields(&mut self, names: &[&str], formats: &[Format]) {
        self.number(names.len() as u64);
        for (name, format) in names.iter().zip(formats) {
            self.name(name);
            self.format(format);
        }
    }

    fn format(&mut self, format: &Format) {
        match format {
            Format::Unknown => self.byte(b'?'),
            Format::Leaf(kind) => {
                self.strings |= matches!(kind, Kind::Str | Kind::Bytes);
                self.byte(b'L');
                self.byte(*kind as u8);
            }
            Format::Option(f) => {
                self.byte(b'O');
                self.format(f);
            }
            Format::Seq(f) => {
                self.byte(b'S');
                self.format(f);
            }
            Format::Map(k, v) => {
                self.byte(b'M');
                self.format(k);
                self.format(v);
            }
            Format::Tuple(fs) => {
                self.byte(b'T');
                self.formats(fs);
            }
            Format::Container(id) => self.container(*id),
        }
    }

    fn container(&mut self, id: usize) {
        if let Some(number) = self.numbers[id] {
            self.byte(b'R');
            self.number(number);
            return;
        }
        self.numbers[id] = Some(self.next);
        self.next += 1;
        let container = &self.tracer.containers[id];
        self.byte(b'C');
        self.name(container.name);
        match &container.body {
            Body::Unit => self.byte(b'u'),
            Body::Newtype(f) => {
                self.byte(b'n');
                self.format(f);
            }
            Body::Tuple(fs) => {
                self.byte(b't');
                self.formats(fs);
            }
            Body::Struct(names, fs) => {
                self.byte(b's');
                self.fields(names, fs);
            }
            Body::Enum(names, variants) => {
                self.byte(b'e');
                self.number(names.len() as u64);
                for (name, variant) in names.iter().zip(variants) {
                    self.name(name);
                    match &variant.holds {
                        None => self.byte(b'?'),
                        Some(Holds::Unit) => self.byte(b'U'),
                        Some(Holds::Newtype(f)) => {
                            self.byte(b'N');
                            self.format(f);
                        }
                        Some(Holds::Tuple(fs)) => {
                            self.byte(b'T');
                            self.formats(fs);
                        }
                        Some(Holds::Struct(names, fs)) => {
                            self.byte(b'S');
                            self.fields(names, fs);
                        }
                    }
                }
            }
        }
    }
}

/// What one sighting of a container saw inside it.
enum Seen {
    Nothing,
    One(Format),
    Many(Vec<Format>),
    Variant(usize, Holds),
}

// Samples, tried in order, for leaves whose visitors check what they get.
const BOOLS: [bool; 2] = [false, true];
const INTS: [u8; 2] = [0, 1];
const FLOATS: [f32; 2] = [0.0, 1.0];
const CHARS: [char; 2] = ['a', '0'];
/// Strings that common validating types accept: numbers and decimals,
/// RFC 3339 date-times (chrono, time), dates, times, UUIDs, IP addresses,
/// socket addresses, e-mail addresses, URLs.
const STRS: [&str; 16] = [
    "",
    "0",
    "a",
    "1970-01-01T00:00:00Z",
    "1970-01-01T00:00:00",
    "1970-01-01",
    "00:00:00",
    "00000000-0000-0000-0000-000000000000",
    "127.0.0.1",
    "::1",
    "127.0.0.1:1",
    "a@a.a",
    "http://a/",
    "1",
    "a.a",
    "A",
];
/// Byte strings of the lengths fixed-size types want (UUIDs 16, IPv4 4…).
const BYTES: [&[u8]; 6] = [&[], &[0; 16], &[0; 4], &[0; 8], &[0; 32], &[0; 12]];

/// The deserializer a trace attempt hands a type: `out` receives what
/// this position holds; `cut` builds the smallest value, seeing nothing new.
struct Trace<'a> {
    t: &'a mut Tracer,
    out: &'a mut Format,
    cut: bool,
}

impl Trace<'_> {
    /// Notes that this position holds `format`.
    fn holds(&mut self, format: Format) -> Result<(), Stop> {
        self.t.step()?;
        merge(self.out, format).map_err(|()| {
            let why = self.t.conflict("a position");
            self.t.fail(why)
        })
    }

    /// Runs `visit` with the move-on of the container `who` for its leaves,
    /// and notes a refusal by `who` itself.
    fn within<R>(
        t: &mut Tracer,
        who: &'static str,
        visit: impl FnOnce(&mut Tracer) -> Result<R, Stop>,
    ) -> Result<R, Stop> {
        let outer = t.bump;
        t.bump = outer.max(t.profiles.get(who).copied().unwrap_or(0));
        let result = visit(t);
        t.bump = outer;
        result.map_err(|error| t.blame(false, who, error))
    }

    /// Builds container `id` with `visit`, cut if it is being built already
    /// (recursion); notes what it saw unless that failed. Cut reaches down
    /// to the next container, which is cut only if it too is being built.
    fn build<R>(
        self,
        id: usize,
        who: &'static str,
        visit: impl FnOnce(&mut Tracer, bool) -> Result<(R, Seen), Stop>,
    ) -> Result<R, Stop> {
        let t = self.t;
        t.step()?;
        merge(self.out, Format::Container(id)).map_err(|()| {
            let why = t.conflict("a position");
            t.fail(why)
        })?;
        let cut = match t.stack.iter().rev().find(|&&(built, _)| built == id) {
            None => false,
            Some(&(_, false)) => true,
            Some(&(_, true)) => {
                // A cut value that needs itself never ends.
                t.state = State::Restart(false);
                return Err(Stop("a recursive value that never ends".into()));
            }
        };
        t.stack.push((id, cut));
        let result = Trace::within(t, who, |t| visit(t, cut));
        t.stack.pop();
        let (value, seen) = result?;
        t.record(id, seen)?;
        Ok(value)
    }
}

macro_rules! leaf {
    ($($method:ident => $visit:ident($samples:ident as $ty:ty), $kind:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
            self.holds(Format::Leaf(Kind::$kind))?;
            let who = type_name_of_val(&visitor);
            let i = self.t.sample(who, $samples.len())?;
            self.t.last_leaf = Some(who);
            visitor
                .$visit($samples[i] as $ty)
                .map_err(|error| self.t.blame(true, who, error))
        }
    )*};
}

macro_rules! not_bincode {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(self.t.fail(Untraceable::NotBincode(stringify!($method))))
        }
    )*};
}

impl<'de> Deserializer<'de> for Trace<'_> {
    type Error = Stop;

    leaf! {
        deserialize_i8 => visit_i8(INTS as i8), I8;
        deserialize_i16 => visit_i16(INTS as i16), I16;
        deserialize_i32 => visit_i32(INTS as i32), I32;
        deserialize_i64 => visit_i64(INTS as i64), I64;
        deserialize_i128 => visit_i128(INTS as i128), I128;
        deserialize_u8 => visit_u8(INTS as u8), U8;
        deserialize_u16 => visit_u16(INTS as u16), U16;
        deserialize_u32 => visit_u32(INTS as u32), U32;
        deserialize_u64 => visit_u64(INTS as u64), U64;
        deserialize_u128 => visit_u128(INTS as u128), U128;
        deserialize_f32 => visit_f32(FLOATS as f32), F32;
        deserialize_f64 => visit_f64(FLOATS as f64), F64;
    }

    not_bincode!(
        deserialize_any,
        deserialize_identifier,
        deserialize_ignored_any
    );

    fn deserialize_bool<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        self.holds(Format::Leaf(Kind::Bool))?;
        let who = type_name_of_val(&visitor);
        let i = self.t.sample(who, BOOLS.len())?;
        self.t.last_leaf = Some(who);
        visitor
            .visit_bool(BOOLS[i])
            .map_err(|error| self.t.blame(true, who, error))
    }

    fn deserialize_char<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        self.holds(Format::Leaf(Kind::Char))?;
        let who = type_name_of_val(&visitor);
        let i = self.t.sample(who, CHARS.len())?;
        self.t.last_leaf = Some(who);
        visitor
            .visit_char(CHARS[i])
            .map_err(|error| self.t.blame(true, who, error))
    }

    fn deserialize_str<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        self.holds(Format::Leaf(Kind::Str))?;
        let who = type_name_of_val(&visitor);
        let i = self.t.sample(who, STRS.len())?;
        self.t.last_leaf = Some(who);
        visitor
            .visit_str(STRS[i])
            .map_err(|error| self.t.blame(true, who, error))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        self.holds(Format::Leaf(Kind::Bytes))?;
        let who = type_name_of_val(&visitor);
        let i = self.t.sample(who, BYTES.len())?;
        self.t.last_leaf = Some(who);
        visitor
            .visit_bytes(BYTES[i])
            .map_err(|error| self.t.blame(true, who, error))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        self.holds(Format::Leaf(Kind::Unit))?;
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        let mut inner = Format::Unknown;
        let who = type_name_of_val(&visitor);
        let t = &mut *self.t;
        let cut = self.cut;
        let result = Trace::within(t, who, |t| {
            if cut {
                visitor.visit_none()
            } else {
                visitor.visit_some(Trace {
                    t,
                    out: &mut inner,
                    cut,
                })
            }
        });
        self.holds(Format::Option(Box::new(inner)))?;
        result
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        let mut element = [Format::Unknown];
        let who = type_name_of_val(&visitor);
        let cut = self.cut;
        // Cut, a sequence is empty, unless its visitor refused that.
        let len = usize::from(!cut || self.t.profiles.contains_key(who));
        let result = Trace::within(self.t, who, |t| {
            visitor.visit_seq(Elements::repeating(t, &mut element, len, cut))
        });
        let [element] = element;
        self.holds(Format::Seq(Box::new(element)))?;
        result
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        let (mut key, mut value) = (Format::Unknown, Format::Unknown);
        let who = type_name_of_val(&visitor);
        let cut = self.cut;
        let len = usize::from(!cut || self.t.profiles.contains_key(who));
        let result = Trace::within(self.t, who, |t| {
            visitor.visit_map(Entries {
                t,
                key: &mut key,
                value: &mut value,
                left: len,
                cut,
            })
        });
        self.holds(Format::Map(Box::new(key), Box::new(value)))?;
        result
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        mut self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        if len > TUPLE {
            return Err(self
                .t
                .fail(Untraceable::Other(format!("a tuple of {len} elements"))));
        }
        let mut elements = vec![Format::Unknown; len];
        let who = type_name_of_val(&visitor);
        let cut = self.cut;
        let result = Trace::within(self.t, who, |t| {
            visitor.visit_seq(Elements::each(t, &mut elements, cut))
        });
        self.holds(Format::Tuple(elements))?;
        result
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let who = type_name_of_val(&visitor);
        let id = self.t.register(who, name, Body::Unit)?;
        self.build(id, who, |_, _| Ok((visitor.visit_unit()?, Seen::Nothing)))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let who = type_name_of_val(&visitor);
        let id = self.t.register(who, name, Body::Newtype(Format::Unknown))?;
        self.build(id, who, |t, cut| {
            let mut inner = Format::Unknown;
            let value = visitor.visit_newtype_struct(Trace {
                t,
                out: &mut inner,
                cut,
            })?;
            Ok((value, Seen::One(inner)))
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        if len > TUPLE {
            return Err(self
                .t
                .fail(Untraceable::Other(format!("a tuple of {len} elements"))));
        }
        let who = type_name_of_val(&visitor);
        let id = self
            .t
            .register(who, name, Body::Tuple(vec![Format::Unknown; len]))?;
        self.build(id, who, |t, cut| {
            let mut elements = vec![Format::Unknown; len];
            let value = visitor.visit_seq(Elements::each(t, &mut elements, cut))?;
            Ok((value, Seen::Many(elements)))
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let who = type_name_of_val(&visitor);
        let body = Body::Struct(fields, vec![Format::Unknown; fields.len()]);
        let id = self.t.register(who, name, body)?;
        self.build(id, who, |t, cut| {
            let mut elements = vec![Format::Unknown; fields.len()];
            let value = visitor.visit_seq(Elements::each(t, &mut elements, cut))?;
            Ok((value, Seen::Many(elements)))
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let who = type_name_of_val(&visitor);
        let body = Body::Enum(variants, vec![Variant::default(); variants.len()]);
        let id = self.t.register(who, name, body)?;
        self.build(id, who, |t, cut| {
            let Some(index) = t.choose(id, cut) else {
                // No variant is known to end yet: start over, trying
                // another variant of the enum that led here first.
                t.state = State::Restart(false);
                return Err(Stop(format!("no variant of {name} known to end yet")));
            };
            let mut holds = None;
            let result = visitor.visit_enum(Chosen {
                t: &mut *t,
                index,
                holds: &mut holds,
                cut,
            });
            if let (Err(_), State::Restart(false), false) = (&result, t.state, cut) {
                // What this variant holds needs a variant known to end.
                t.state = State::Restart(true);
                if let Body::Enum(_, variants) = &mut t.containers[id].body {
                    t.learned |= !variants[index].deferred;
                    variants[index].deferred = true;
                }
            }
            let value = result?;
            let holds = holds.ok_or_else(|| Stop(format!("a variant of {name} was not read")))?;
            Ok((value, Seen::Variant(index, holds)))
        })
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a sequence (one format for all), tuple or struct (one
/// each) being traced.
struct Elements<'a> {
    t: &'a mut Tracer,
    formats: &'a mut [Format],
    /// Whether every element has the first format (a sequence).
    repeat: bool,
    read: usize,
    len: usize,
    cut: bool,
}

impl<'a> Elements<'a> {
    fn repeating(t: &'a mut Tracer, formats: &'a mut [Format; 1], len: usize, cut: bool) -> Self {
        Self {
            t,
            formats,
            repeat: true,
            read: 0,
            len,
            cut,
        }
    }

    fn each(t: &'a mut Tracer, formats: &'a mut [Format], cut: bool) -> Self {
        let len = formats.len();
        Self {
            t,
            formats,
            repeat: false,
            read: 0,
            len,
            cut,
        }
    }
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        if self.read == self.len {
            return Ok(None);
        }
        let slot = if self.repeat { 0 } else { self.read };
        self.read += 1;
        let read = seed.deserialize(Trace {
            t: self.t,
            out: &mut self.formats[slot],
            cut: self.cut,
        });
        read.map(Some).map_err(|error| self.t.blame_last(error))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len - self.read)
    }
}

/// The entries of a map being traced: one, or none when cut.
struct Entries<'a> {
    t: &'a mut Tracer,
    key: &'a mut Format,
    value: &'a mut Format,
    left: usize,
    cut: bool,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let read = seed.deserialize(Trace {
            t: self.t,
            out: self.key,
            cut: self.cut,
        });
        read.map(Some).map_err(|error| self.t.blame_last(error))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Stop> {
        let read = seed.deserialize(Trace {
            t: self.t,
            out: self.value,
            cut: self.cut,
        });
        read.map_err(|error| self.t.blame_last(error))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// The variant a trace chose for an enum, and what it holds once read.
struct Chosen<'a> {
    t: &'a mut Tracer,
    index: usize,
    holds: &'a mut Option<Holds>,
    cut: bool,
}

impl<'de, 'a> EnumAccess<'de> for Chosen<'a> {
    type Error = Stop;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Stop> {
        // As bincode does: the variant's index, as a u32.
        let index = u32::try_from(self.index).unwrap_or(u32::MAX);
        let value = seed.deserialize(index.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> VariantAccess<'de> for Chosen<'_> {
    type Error = Stop;

    fn unit_variant(self) -> Result<(), Stop> {
        *self.holds = Some(Holds::Unit);
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Stop> {
        let mut inner = Format::Unknown;
        let value = seed.deserialize(Trace {
            t: self.t,
            out: &mut inner,
            cut: self.cut,
        });
        *self.holds = Some(Holds::Newtype(inner));
        value.map_err(|error| self.t.blame_last(error))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        if len > TUPLE {
            return Err(self
                .t
                .fail(Untraceable::Other(format!("a tuple of {len} elements"))));
        }
        let mut elements = vec![Format::Unknown; len];
        let value = visitor.visit_seq(Elements::each(self.t, &mut elements, self.cut));
        *self.holds = Some(Holds::Tuple(elements));
        value
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let mut elements = vec![Format::Unknown; fields.len()];
        let value = visitor.visit_seq(Elements::each(self.t, &mut elements, self.cut));
        *self.holds = Some(Holds::Struct(fields, elements));
        value
    }
}
