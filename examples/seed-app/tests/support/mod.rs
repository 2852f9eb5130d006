//! What the app's tests share: a throwaway `redis-server` (the workspace's
//! test harness, `tests/harness`), the app itself as a process (`seed-app`,
//! `seed-app web`, `seed-app worker`), a headless Chromium driven over
//! WebDriver, and plain HTTP for tests without one. Every wait goes through
//! the harness's bounded `retry`, with this app's own patience.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
pub use harness::free_port;
use harness::{Server, retry, retry_async};

/// How long a test waits for something that should happen in about a second.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `check` every 50 ms until it gives `Some`, or fails the test with
/// `what` after [`PATIENCE`].
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    retry(PATIENCE, Duration::from_millis(50), || check().ok_or(()))
        .unwrap_or_else(|()| panic!("timed out waiting until {what}"))
}

/// A `redis-server` on a free port, killed when dropped (a
/// [`harness::Server`], started once it answers `PING`).
pub struct TestRedis(Server);

impl TestRedis {
    pub fn start() -> Self {
        Self(Server::start())
    }

    /// A server on `port` (that of a stopped one, to bring Redis back).
    pub fn start_on(port: u16) -> Self {
        Self(Server::builder().port(port).start())
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    pub fn url(&self) -> String {
        self.0.url().to_owned()
    }

    /// A plain connection, to look at what the app wrote.
    pub fn conn(&self) -> redis::Connection {
        self.0.conn()
    }

    /// The keys matching `pattern`, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut self.conn())
            .expect("KEYS");
        keys.sort();
        keys
    }

    /// Stops the server now: the app goes on without Redis.
    pub fn stop(&mut self) {
        self.0.stop();
    }
}

/// The `seed-app` binary of this build.
const APP: &str = env!("CARGO_BIN_EXE_seed-app");

/// A `seed-app` process on `redis`, killed when dropped.
pub struct App {
    child: Child,
    pub port: u16,
}

impl App {
    /// `seed-app`: the web server and a worker.
    pub fn start(redis: &TestRedis) -> Self {
        Self::spawn(redis, None)
    }

    /// `seed-app web`: the web server alone.
    pub fn web(redis: &TestRedis) -> Self {
        Self::spawn(redis, Some("web"))
    }

    /// `seed-app worker`: a worker alone, once it has started.
    pub fn worker(redis: &TestRedis) -> Self {
        Self::spawn(redis, Some("worker"))
    }

    fn spawn(redis: &TestRedis, mode: Option<&str>) -> Self {
        let port = free_port();
        let mut command = Command::new(APP);
        command.args(mode);
        let mut child = command
            .env("REDIS_URL", redis.url())
            .env("PORT", port.to_string())
            // A secret of the test's own, as production would set one.
            .env("SESSION_SECRET", "t".repeat(64))
            // The app's log, on the test's output (shown when it fails);
            // SEED_APP_LOG says what to log, as RUST_LOG would.
            .env(
                "RUST_LOG",
                std::env::var("SEED_APP_LOG").unwrap_or_else(|_| "warn,seed_app=info".to_owned()),
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("start seed-app");
        let stdout = child.stdout.take().expect("its stdout");
        // Made now, so that a failed start below still kills the process.
        let app = Self { child, port };
        let mut lines = BufReader::new(stdout).lines();
        if mode != Some("worker") {
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            assert_eq!(
                first,
                format!("listening on http://127.0.0.1:{port}"),
                "seed-app did not start"
            );
        }
        // Keep reading, so the app never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGTERM, then waits for the process to end (a worker first finishes
    /// its task in progress).
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        harness::eventually_within(
            PATIENCE,
            Duration::from_millis(20),
            "seed-app stops on SIGTERM",
            || self.child.try_wait().expect("wait for seed-app").is_some(),
        );
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 answer, as plain HTTP tests read it.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// `GET path` from the app on `port`.
pub fn get(port: u16, path: &str) -> Answer {
    request(port, &format!("GET {path} HTTP/1.1\r\n"), "")
}

/// `POST path` of a urlencoded form.
pub fn post_form(port: u16, path: &str, form: &str) -> Answer {
    let head = format!(
        "POST {path} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        form.len()
    );
    request(port, &head, form)
}

fn request(port: u16, head: &str, body: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to seed-app");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("a read timeout");
    write!(
        stream,
        "{head}Host: 127.0.0.1\r\nConnection: close\r\n\r\n{body}"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Where a program is: `$VAR` if set (and a file), else the first of
/// `names` found in `/usr/bin` or on `PATH`.
fn find_program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::iter::once(PathBuf::from("/usr/bin"))
        .chain(std::env::split_paths(&path))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium, driven through its own chromedriver: both killed,
/// and the browser's profile deleted, when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a Chromium with a fresh profile. Fails the
    /// test, saying how to install them, if they are missing: a browser
    /// test that passes without a browser would prove nothing.
    pub async fn start() -> Self {
        const INSTALL: &str = "the browser tests need Chromium and its WebDriver: \
             `apt-get install -y chromium chromium-driver` (Debian; .ci/run does it), \
             or set CHROMIUM and CHROMEDRIVER to their paths";
        let chromium = find_program(
            "CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        )
        .unwrap_or_else(|| panic!("Chromium not found: {INSTALL}"));
        let chromedriver = find_program("CHROMEDRIVER", &["chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver not found: {INSTALL}"));
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", chromedriver.display()));
        let profile = tempfile::tempdir().expect("a profile directory");
        let client = connect(port, &chromium, profile.path()).await;
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The path of the page shown now.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current URL")
            .path()
            .to_owned()
    }

    /// The text of the element `css`, waiting for it to be there.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element {css}: {error}"))
            .text()
            .await
            .expect("its text")
    }

    /// The attribute `name` of the element `css`.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no element {css}: {error}"))
            .attr(name)
            .await
            .expect("its attribute")
    }

    /// Types `text` into the field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no field {css}: {error}"))
            .send_keys(text)
            .await
            .expect("type");
    }

    /// Clicks `css` and waits for the page it leads to (every button here
    /// submits a form): until then, what a test finds would be of the old
    /// page, and go stale under it.
    pub async fn click(&self, css: &str) {
        let page = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("the page");
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no button {css}: {error}"))
            .click()
            .await
            .expect("click");
        let page = &page;
        retry_async(PATIENCE, Duration::from_millis(20), || async move {
            match page.tag_name().await {
                Ok(_) => Err(()),
                Err(_) => Ok(()),
            }
        })
        .await
        .unwrap_or_else(|()| panic!("clicking {css} led to no new page"));
    }

    /// Waits until the text of `css` satisfies `check`, and returns it.
    pub async fn wait_for_text(
        &self,
        css: &str,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let check = &check;
        retry_async(PATIENCE, Duration::from_millis(100), || async move {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if check(&text) { Ok(text) } else { Err(text) }
        })
        .await
        .unwrap_or_else(|text| panic!("timed out waiting until {what}; {css} says {text:?}"))
    }

    /// Loads `url` again and again until the text of `css` satisfies
    /// `check`, for what a page shows when it is made.
    pub async fn reload_until(
        &self,
        url: &str,
        css: &str,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) {
        let check = &check;
        retry_async(PATIENCE, Duration::from_millis(200), || async move {
            self.goto(url).await;
            let text = self.text(css).await;
            if check(&text) { Ok(()) } else { Err(text) }
        })
        .await
        .unwrap_or_else(|text| panic!("timed out waiting until {what}; {css} says {text:?}"));
    }

    /// Ends the WebDriver session (closing Chromium), then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn connect(port: u16, chromium: &Path, profile: &Path) -> Client {
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let webdriver = format!("http://127.0.0.1:{port}");
    // chromedriver may still be starting.
    let (connector, capabilities, webdriver) = (&connector, &capabilities, &webdriver);
    retry_async(PATIENCE, Duration::from_millis(100), || async move {
        ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(webdriver)
            .await
    })
    .await
    .unwrap_or_else(|error| panic!("cannot start Chromium through chromedriver: {error}"))
}
