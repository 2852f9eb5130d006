struct Report;

#[redis_cached::redis_cached(ttl = 60)]
fn report(id: u64) -> Report {
    let _ = id;
    Report
}

#[redis_cached::redis_cached(ttl = 60)]
fn fallible(id: u64) -> Result<Report, String> {
    let _ = id;
    Ok(Report)
}

fn main() {}
