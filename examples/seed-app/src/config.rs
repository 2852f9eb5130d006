//! What the process was asked to do, from its command line and environment.

use tower_sessions::cookie::Key;

/// The URL used when `REDIS_URL` is not set.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Which parts of the application this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The web server and a worker (`seed-app`, the default).
    All,
    /// The web server alone (`seed-app web`): tasks wait for a worker process.
    Web,
    /// A worker alone (`seed-app worker`).
    Worker,
}

impl Mode {
    pub fn serves(self) -> bool {
        self != Mode::Worker
    }

    pub fn works(self) -> bool {
        self != Mode::Web
    }
}

pub struct Config {
    pub mode: Mode,
    /// Never printed: it may hold a password.
    pub redis_url: String,
    pub port: u16,
    /// Signs the session cookie: `SESSION_SECRET` (64 bytes or more), else
    /// a key made at random for this process (sessions then end with it).
    pub session_key: Key,
    /// Whether `session_key` came from `SESSION_SECRET`.
    pub session_key_from_env: bool,
}

impl Config {
    /// Reads the command line (`[web|worker]`) and `REDIS_URL`, `PORT`,
    /// `SESSION_SECRET`.
    pub fn from_env() -> Result<Self, String> {
        let mode = match std::env::args().nth(1).as_deref() {
            None => Mode::All,
            Some("web") => Mode::Web,
            Some("worker") => Mode::Worker,
            Some(other) => {
                return Err(format!(
                    "unknown command {other:?}: run `seed-app` (web server and worker), \
                     `seed-app web` or `seed-app worker`"
                ));
            }
        };
        let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        let port = match std::env::var("PORT") {
            Ok(port) => port
                .parse()
                .map_err(|_| format!("PORT must be a port number, not {port:?}"))?,
            Err(_) => 3000,
        };
        let (session_key, session_key_from_env) = match std::env::var("SESSION_SECRET") {
            // The secret itself is never shown, not even in this error.
            Ok(secret) => (
                Key::try_from(secret.as_bytes()).map_err(|_| {
                    format!(
                        "SESSION_SECRET must be at least 64 bytes long (it has {}); \
                         make one with `openssl rand -hex 32`",
                        secret.len()
                    )
                })?,
                true,
            ),
            Err(_) => (Key::generate(), false),
        };
        Ok(Self {
            mode,
            redis_url,
            port,
            session_key,
            session_key_from_env,
        })
    }
}
