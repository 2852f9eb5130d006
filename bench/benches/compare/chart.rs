//! The benchmark as a picture: hit and miss time by value size, and hits
//! per second by task count, for hand-written, ours and `cached` (async), as
//! one SVG drawn with `plotters` (its SVG backend only: no fonts, no system
//! libraries). The rows hand their medians to [`latency`] and
//! [`throughput`]; [`write`] draws them once every one of those rows ran.
//!
//! It is written to `target/bench-chart.svg`, not over the committed
//! `bench/chart.svg`: a run's chart is copied there by hand when
//! bench/README.md's table is updated from the same run.

use std::path::PathBuf;
use std::sync::Mutex;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::{BenchError, Kind};

/// The contestants, in the order their figures are given.
const WHO: [(&str, RGBColor); 3] = [
    ("hand-written", RGBColor(90, 90, 90)),
    ("ours", RGBColor(31, 119, 180)),
    ("cached 4.1", RGBColor(230, 120, 20)),
];

/// One point of each contestant: `(x label, [hand-written, ours, cached])`.
type Points = Vec<(String, [f64; 3])>;

/// What the rows measured so far.
struct Data {
    hit: Points,
    miss: Points,
    hits_per_sec: Points,
}

static DATA: Mutex<Data> = Mutex::new(Data {
    hit: Vec::new(),
    miss: Vec::new(),
    hits_per_sec: Vec::new(),
});

/// A hit or miss row's medians, in seconds per call, for values of `size`.
pub(super) fn latency(kind: Kind, size: &str, figures: [f64; 3]) {
    if let Ok(mut data) = DATA.lock() {
        let points = match kind {
            Kind::Hit => &mut data.hit,
            Kind::Miss => &mut data.miss,
        };
        points.push((size.to_owned(), figures));
    }
}

/// A hits/s row's medians, for `tasks` tasks.
pub(super) fn throughput(tasks: usize, figures: [f64; 3]) {
    if let Ok(mut data) = DATA.lock() {
        data.hits_per_sec.push((tasks.to_string(), figures));
    }
}

/// Draws the chart if the hit, miss and hits/s rows all ran; where it went.
pub(super) fn write() -> Result<Option<PathBuf>, BenchError> {
    let data = DATA.lock().map_err(|_| "chart data poisoned")?;
    if data.hit.is_empty() || data.miss.is_empty() || data.hits_per_sec.is_empty() {
        return Ok(None);
    }
    // target/release/deps/compare-… → target/
    let exe = std::env::current_exe().map_err(|e| format!("chart: {e}"))?;
    let target = exe
        .ancestors()
        .nth(3)
        .ok_or("chart: no target directory above the benchmark")?;
    let path = target.join("bench-chart.svg");
    draw(&path, &data).map_err(|e| format!("chart: {e}"))?;
    Ok(Some(path))
}

fn draw(path: &std::path::Path, data: &Data) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1260, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "redis-cached, hand-written redis code and cached 4.1: async calls, one redis-server, median of 15 rounds",
        ("sans-serif", 20),
    )?;
    let panels = root.split_evenly((1, 3));
    let micros = |points: &Points| -> Points {
        let scaled = points.iter().map(|(x, f)| (x.clone(), f.map(|s| s * 1e6)));
        scaled.collect()
    };
    let thousands = |points: &Points| -> Points {
        let scaled = points.iter().map(|(x, f)| (x.clone(), f.map(|r| r / 1e3)));
        scaled.collect()
    };
    panel(
        &panels[0],
        "hit: time per call (lower is better)",
        "value",
        "µs per call",
        &micros(&data.hit),
    )?;
    panel(
        &panels[1],
        "miss: time per call (lower is better)",
        "value",
        "µs per call",
        &micros(&data.miss),
    )?;
    panel(
        &panels[2],
        "hits per second, u64 (higher is better)",
        "tasks on 2 worker threads",
        "thousand hits/s",
        &thousands(&data.hits_per_sec),
    )?;
    root.present()?;
    Ok(())
}

/// One panel: a line per contestant over the points' x labels, from 0.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &Points,
) -> Result<(), Box<dyn std::error::Error>> {
    let top = points
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .filter(|y| y.is_finite())
        .fold(0.0, f64::max);
    let labels: Vec<String> = points.iter().map(|(x, _)| x.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (0..labels.len() as i32 - 1).into_segmented(),
            0.0..top * 1.15,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (who, (name, color)) in WHO.iter().enumerate() {
        let line: Vec<(SegmentValue<i32>, f64)> = (points.iter().enumerate())
            .map(|(i, (_, f))| (SegmentValue::CenterOf(i as i32), f[who]))
            .filter(|(_, y)| y.is_finite())
            .collect();
        let color = *color;
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(line.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}
