//! A real headless Chromium driven over WebDriver: Debian's `chromium` and `chromium-driver`
//! (`.ci/install-deps` installs them), a chromedriver on a 127.0.0.1 port of its own, and
//! fantoccini as the client. Screenshots go under the tests' output folder.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};

use super::free_port;

/// How long a page may take to show what a step waits for.
const WAIT: Duration = Duration::from_secs(60);

pub struct Browser {
    pub client: Client,
    driver: Child,
    /// Where this browser's screenshots go.
    screenshots: PathBuf,
}

/// The light or dark colour scheme the page is shown in.
#[derive(Clone, Copy)]
pub enum Scheme {
    Light,
    Dark,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at a laptop's screen size; a missing
    /// install is a failure, never a skip.
    pub async fn start(name: &str, scheme: Scheme) -> Browser {
        for binary in ["chromium", "chromedriver"] {
            let found = Command::new("sh").args(["-c", &format!("command -v {binary}")]).output().unwrap();
            assert!(found.status.success(), "{binary} is missing: run .ci/install-deps (it installs chromium and chromium-driver)");
        }
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let scheme = match scheme {
            Scheme::Light => "--blink-settings=preferredColorScheme=1",
            Scheme::Dark => "--blink-settings=preferredColorScheme=0",
        };
        let args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,768", scheme];
        let capabilities: serde_json::Map<String, Value> =
            serde_json::from_value(json!({"browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}})).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("no WebDriver session from chromedriver: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots").join(name);
        std::fs::create_dir_all(&screenshots).unwrap();
        Browser { client, driver, screenshots }
    }

    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Saves what the browser shows as `<step>.png`.
    pub async fn screenshot(&self, step: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.screenshots.join(format!("{step}.png")), png).unwrap();
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    /// Waits until the text of the first element matching `css` satisfies `check`; returns it.
    pub async fn text_until(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = element.text().await {
                    if check(&text) {
                        return text;
                    }
                    last = text;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.screenshot("timed-out").await;
        panic!("{css} never showed {what}; last: {last}");
    }

    /// Waits until `css` matches at least `count` elements; returns their texts.
    pub async fn all_until(&self, css: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut texts = Vec::new();
            for element in self.client.find_all(Locator::Css(css)).await.unwrap_or_default() {
                texts.push(element.text().await.unwrap_or_default());
            }
            if texts.len() >= count {
                return texts;
            }
            if Instant::now() > deadline {
                self.screenshot("timed-out").await;
                panic!("{css} matched {} elements, not {count}: {texts:?}", texts.len());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Replaces the text of a field, as typing would.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("{css} cannot be clicked: {e}"));
    }

    /// Ends the WebDriver session, which closes Chromium.
    pub async fn close(self) {
        self.client.clone().close().await.unwrap();
    }

    /// The value of a script run in the page.
    pub async fn script(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
