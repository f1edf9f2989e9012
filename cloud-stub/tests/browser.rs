//! Device Web Access in a real browser: headless Chromium (Debian's,
//! driven through ChromeDriver) signs in with the operator's password and
//! authenticator code, opens an emulated printer from its page in the
//! cloud, and lands on the printer's own status page, served through the
//! cloud and the agent; a screenshot of it is kept, and the device's page
//! in the cloud lists the requests in its access log.

mod support;

use fantoccini::{ClientBuilder, Locator};
use std::process::Command;
use std::time::Duration;
use support::*;

/// How long any one step may take in the browser.
const STEP: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_dealer_opens_a_printers_page_in_a_real_browser() {
    if !peers("the browser test", &["chromium", "chromedriver"]) {
        return;
    }
    let site = WebSite::start("browser", 5);
    let (device, serial, _) = site.device();
    let operator = add_operator(&site.cloud, "dealer", "default");
    let dir = site.state.parent().unwrap().to_path_buf();
    let port = free_port();
    let _driver = Proc::start(
        Command::new("chromedriver").args([
            format!("--port={port}"),
            "--allowed-ips=127.0.0.1".to_string(),
        ]),
        "started successfully",
    )
    .0;
    let shot = dir.join("printer-page.png");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The WebDriver client's TLS (unused: ChromeDriver speaks plain HTTP
    // on loopback) wants a process-wide provider; the cloud's own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (page, log) = runtime.block_on(async {
        let mut caps = serde_json::Map::new();
        // The cloud's certificate is its own, self-signed: the test trusts
        // it as an operator would after checking its fingerprint.
        caps.insert("acceptInsecureCerts".into(), true.into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1024,768",
                    format!("--user-data-dir={}", dir.join("chromium").display()),
                ],
            }),
        );
        let browser = ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        // Sign in: name, password, and the authenticator's code.
        browser
            .goto(&format!("{}/signin", site.cloud.url))
            .await
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for (field, value) in [
            ("name", operator.name.clone()),
            ("password", operator.password.clone()),
            ("code", operator.totp.code_at(now)),
        ] {
            browser
                .find(Locator::Css(&format!("input[name={field}]")))
                .await
                .unwrap()
                .send_keys(&value)
                .await
                .unwrap();
        }
        browser
            .find(Locator::Css("form button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // Signed in: the page says who.
        if let Err(e) = browser
            .wait()
            .at_most(STEP)
            .for_element(Locator::Css("form.who"))
            .await
        {
            let at = browser.current_url().await.unwrap();
            let source = browser.source().await.unwrap();
            panic!("not signed in ({e}) at {at}: {source}");
        }
        // The device's page, and its button.
        browser
            .goto(&format!("{}/devices/{device}", site.cloud.url))
            .await
            .unwrap();
        browser
            .find(Locator::Css("select[name=port]"))
            .await
            .unwrap()
            .select_by_value("8080")
            .await
            .unwrap();
        browser
            .find(Locator::XPath("//button[contains(., 'Open the device')]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // On through the entry point to the printer's own status page (its
        // menu links its firmware form, which no page of the cloud has).
        browser
            .wait()
            .at_most(STEP)
            .for_element(Locator::XPath("//a[@href='/firmware']"))
            .await
            .expect("the printer's own page");
        let url = browser.current_url().await.unwrap();
        let page = browser.source().await.unwrap();
        let png = browser.screenshot().await.unwrap();
        std::fs::write(&shot, &png).unwrap();
        eprintln!("screenshot of {url}: {}", shot.display());
        assert_ne!(
            url.port(),
            Some(
                site.cloud
                    .url
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse::<u16>()
                    .unwrap()
            ),
            "the session's own entry point, not the cloud's pages"
        );
        // The access log, on the device's page in the cloud.
        browser
            .goto(&format!("{}/devices/{device}", site.cloud.url))
            .await
            .unwrap();
        let log = browser
            .find(Locator::Css("table.access"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        browser.close().await.unwrap();
        (page, log)
    });
    assert!(page.contains(&serial), "{page}");
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG screenshot");
    // 1024 x 768 with text on it is tens of kilobytes; a blank or error
    // page is a few.
    assert!(png.len() > 8_000, "a screenshot of {} bytes", png.len());
    assert!(log.contains("GET /"), "{log}");
    assert!(log.contains(&operator.name), "{log}");
    assert!(log.contains("200"), "{log}");
}
