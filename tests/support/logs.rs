//! Log lines captured from `tracing`, for tests that count them or look
//! into them. One global subscriber per test binary writes every event, at
//! every level, into a buffer; [`capture`] hands it to one test at a time.

use std::io::Write;
use std::sync::{Mutex, MutexGuard, Once, PoisonError};

static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static ONE_TEST: Mutex<()> = Mutex::new(());

/// The log lines written while it is held; tests holding one run one at a time.
pub struct Capture {
    _one_test: MutexGuard<'static, ()>,
}

/// Starts capturing: waits for any other capturing test of this binary to
/// finish, then empties the buffer.
pub fn capture() -> Capture {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .without_time()
            .with_writer(|| Buffer)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    });
    let one_test = ONE_TEST.lock().unwrap_or_else(PoisonError::into_inner);
    LINES.lock().unwrap_or_else(PoisonError::into_inner).clear();
    Capture {
        _one_test: one_test,
    }
}

impl Capture {
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        let bytes = LINES.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines so far at `level` (`"ERROR"`, `"WARN"`, `"INFO"`, …).
    pub fn at(&self, level: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|line| line.split_whitespace().next() == Some(level))
            .collect()
    }
}

struct Buffer;

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LINES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
