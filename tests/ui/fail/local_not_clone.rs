use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Report {
    lines: Vec<String>,
}

#[redis_cached::redis_cached(ttl = 60, local = 100)]
fn report(day: u32) -> Report {
    Report {
        lines: vec![day.to_string()],
    }
}

#[redis_cached::redis_cached(ttl = 60, local = 100)]
fn report_or_error(day: u32) -> Result<Report, std::io::Error> {
    Ok(report(day))
}

fn main() {}
