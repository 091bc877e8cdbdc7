//! Headless Chromium for tests, driven through `chromedriver` (Debian's
//! `chromium` and `chromium-driver`; `scripts/install-test-deps` installs
//! them). [`Browser`] is synchronous: it owns a runtime for the WebDriver
//! client. The driver is killed when the browser is dropped, even when the
//! test panics.
//!
//! Use it from a test file with
//! `#[path = "support/browser.rs"] mod browser;`.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Where Debian puts the programs, besides `PATH`.
const DIRS: [&str; 3] = ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"];

/// A headless Chromium session.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
}

/// The installed program `name`, or a test failure saying how to get it.
fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(DIRS.map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run scripts/install-test-deps (as root) first")
        })
}

#[path = "ports.rs"]
mod ports;
pub use ports::free_port;
// For the dashboard's tests (clients at several addresses), not the report's.
#[allow(unused_imports)]
pub use ports::connect_from;

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium.
    pub fn start() -> Browser {
        let chromium = program("chromium");
        let port = free_port();
        let driver = Command::new(program("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // From here on, a panic drops the browser and so kills the driver.
        let mut browser = Browser {
            runtime,
            client: None,
            driver,
        };
        wait_for_port(port, "chromedriver");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=1280,1500",
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = browser
            .runtime
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Loads `url` and waits for it.
    pub fn open(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Loads a local file.
    pub fn open_file(&self, path: &Path) {
        let path = path.canonicalize().expect("the file exists");
        self.open(&format!("file://{}", path.display()));
    }

    /// The URL shown now.
    pub fn url(&self) -> String {
        self.runtime
            .block_on(self.client().current_url())
            .expect("the current URL")
            .to_string()
    }

    /// The page's HTML as the browser holds it now.
    pub fn source(&self) -> String {
        self.runtime
            .block_on(self.client().source())
            .expect("the page source")
    }

    /// Runs `script` in the page (`return …` gives a value).
    pub fn execute(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("cannot run {script:?}: {e}"))
    }

    /// The visible text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.runtime.block_on(async {
            let element = self
                .client()
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css:?}: {e}"));
            element.text().await.expect("its text")
        })
    }

    /// The visible texts of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.runtime.block_on(async {
            let elements = self
                .client()
                .find_all(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("cannot look for {css:?}: {e}"));
            let mut texts = Vec::new();
            for element in elements {
                texts.push(element.text().await.expect("its text"));
            }
            texts
        })
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.runtime
            .block_on(self.client().find_all(Locator::Css(css)))
            .map(|found| found.len())
            .unwrap_or(0)
    }

    /// Waits (up to 10 s) until an element matches `css`: a click that
    /// submits a form returns before the next page is there.
    pub fn wait_for(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count(css) == 0 {
            assert!(
                Instant::now() < deadline,
                "nothing matches {css:?} in {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into the element matching `css`.
    pub fn fill(&self, css: &str, text: &str) {
        self.runtime.block_on(async {
            let element = self
                .client()
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css:?}: {e}"));
            element.send_keys(text).await.expect("typed");
        });
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        self.click_on(Locator::Css(css));
    }

    /// Clicks the element matching the XPath `xpath`.
    pub fn click_xpath(&self, xpath: &str) {
        self.click_on(Locator::XPath(xpath));
    }

    fn click_on(&self, locator: Locator<'_>) {
        self.runtime.block_on(async {
            let element = self
                .client()
                .find(locator)
                .await
                .unwrap_or_else(|e| panic!("nothing to click at {locator:?}: {e}"));
            element.click().await.expect("clicked");
        });
    }

    /// Writes a PNG of the window to `path`, creating its directory.
    pub fn screenshot(&self, path: &Path) {
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .expect("a screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot directory");
        }
        std::fs::write(path, png).expect("the screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), client.close()).await
            });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `target/screenshots/` of the workspace.
pub fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots").join(name)
}
