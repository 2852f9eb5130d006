//! The table the run prints: one line per comparison, with the ratio, the
//! target and whether this run met it.

use std::io::Write;
use std::time::Duration;

#[derive(Clone, Copy)]
pub(super) enum Target {
    None,
    AtMost(f64),
    AtLeast(f64),
}

#[derive(Clone, Copy)]
pub(super) enum Unit {
    Latency,
    Throughput,
    Bytes,
}

pub(super) struct Table {
    pub(super) missed: usize,
}

impl Table {
    pub(super) fn header() {
        println!(
            "{:<16} {:<15} {:<40} {:>10} {:>10} {:>7} {:>8}  met",
            "row", "value", "ours / other", "ours", "other", "ratio", "target"
        );
    }

    #[allow(clippy::too_many_arguments)] // one table line
    pub(super) fn line(
        &mut self,
        row: &str,
        value: &str,
        comparison: &str,
        unit: Unit,
        ours: f64,
        other: f64,
        target: Target,
    ) {
        let show = |x: f64| match unit {
            Unit::Latency => format!("{:.2?}", Duration::from_secs_f64(x)),
            Unit::Throughput if x >= 1e6 => format!("{:.2}M/s", x / 1e6),
            Unit::Throughput => format!("{:.1}k/s", x / 1e3),
            Unit::Bytes => format!("{:.1}KiB", x / 1024.0),
        };
        let ratio = ours / other;
        let (target, met) = match target {
            Target::None => ("-".to_owned(), ""),
            Target::AtMost(t) => (format!("<= {t:.2}"), if ratio <= t { "yes" } else { "NO" }),
            Target::AtLeast(t) => (format!(">= {t:.2}"), if ratio >= t { "yes" } else { "NO" }),
        };
        if met == "NO" {
            self.missed += 1;
        }
        println!(
            "{row:<16} {value:<15} {comparison:<40} {:>10} {:>10} {ratio:>7.3} {target:>8}  {met}",
            show(ours),
            show(other)
        );
        let _ = std::io::stdout().flush();
    }
}
