//! The approver console in a real browser: headless Chromium driven over
//! WebDriver (chromedriver) against the real server.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// A chromedriver process on a free port, killed on drop.
struct ChromeDriver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    /// `None` when chromedriver is not installed. CI installs it (see
    /// `.ci/run`), and there the test must run, so CI turns a missing
    /// driver into a failure.
    fn start() -> Option<ChromeDriver> {
        let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let profile = tempfile::tempdir().ok()?;
        Some(ChromeDriver { child, url: format!("http://127.0.0.1:{port}"), profile })
    }

    async fn browser(&self) -> Client {
        let caps = json!({
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ]
            }
        });
        let caps: fantoccini::wd::Capabilities = caps.as_object().unwrap().clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        // chromedriver takes a moment to listen.
        for _ in 0..100 {
            if let Ok(client) =
                ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(&self.url).await
            {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not start a headless Chromium session through chromedriver");
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn sign_in(browser: &Client, app: &TestApp, token: &str) {
    browser.goto(&app.url("/console")).await.unwrap();
    browser.find(Locator::Css("#token")).await.unwrap().send_keys(token).await.unwrap();
    browser.find(Locator::Css("form[action='/console/login'] button")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("form[action='/console/logout']")).await.unwrap();
}

async fn card_text(browser: &Client, payment_id: &str) -> String {
    let card = format!("section.pending[data-payment='{payment_id}']");
    browser.wait().for_element(Locator::Css(&card)).await.unwrap().text().await.unwrap()
}

async fn click_in_card(browser: &Client, payment_id: &str, button: &str) {
    let css = format!("section.pending[data-payment='{payment_id}'] {button}");
    browser.find(Locator::Css(&css)).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("p.notice")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvers_approve_a_payment_in_the_console() {
    let Some(driver) = ChromeDriver::start() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: chromedriver is not installed"
        );
        eprintln!("skipped: chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (_, alice) = app.create_approver("Alice").await;
    let (_, bob) = app.create_approver("Bob").await;
    let body = json!({ "amount": "64.00", "currency": "USD", "merchant_id": "gpu-cloud.example",
                       "merchant_category": "cloud", "rail": "card", "description": "8 GPU hours" });
    let (status, p) = app.pay(&agent.key, "console-1", body).await;
    assert_eq!((status, p["status"].as_str()), (StatusCode::CREATED, Some("pending_approval")));
    let payment_id = p["id"].as_str().unwrap().to_owned();

    let browser = driver.browser().await;
    sign_in(&browser, &app, &alice).await;
    let text = card_text(&browser, &payment_id).await;
    for shown in
        ["64.00 USD", "gpu-cloud.example", "cloud", "tester", "64.00 of 100.00 USD", "0 of 2", "Time left"]
    {
        assert!(text.contains(shown), "card lacks {shown:?}: {text}");
    }
    assert!(text.contains("above the approval threshold"), "the reason is shown: {text}");
    browser
        .find(Locator::Css(&format!("section.pending[data-payment='{payment_id}'] textarea")))
        .await
        .unwrap()
        .send_keys("Training run approved by finance")
        .await
        .unwrap();
    click_in_card(&browser, &payment_id, "button.approve").await;
    let notice = browser.find(Locator::Css("p.notice")).await.unwrap().text().await.unwrap();
    assert!(notice.contains("more approvals are needed"), "{notice}");
    assert!(card_text(&browser, &payment_id).await.contains("You have approved this"));

    browser.find(Locator::Css("form[action='/console/logout'] button")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("#token")).await.unwrap();
    sign_in(&browser, &app, &bob).await;
    let text = card_text(&browser, &payment_id).await;
    assert!(text.contains("1 of 2") && text.contains("Alice voted approve"), "{text}");
    std::fs::write(artifacts().join("console.png"), browser.screenshot().await.unwrap()).unwrap();

    click_in_card(&browser, &payment_id, "button.approve").await;
    let notice = browser.find(Locator::Css("p.notice")).await.unwrap().text().await.unwrap();
    assert!(notice.starts_with("Approved"), "{notice}");
    let gone = browser
        .find_all(Locator::Css(&format!("section.pending[data-payment='{payment_id}']")))
        .await
        .unwrap();
    assert!(gone.is_empty(), "the approved payment left the list");
    let recent = browser.find(Locator::Css("#recent")).await.unwrap().text().await.unwrap();
    assert!(recent.contains("gpu-cloud.example") && recent.contains("approved"), "{recent}");
    std::fs::write(artifacts().join("console-after.png"), browser.screenshot().await.unwrap()).unwrap();
    browser.close().await.unwrap();

    // And through the API: the payment went to the provider.
    let done = app.wait_for(&agent.key, &payment_id, "succeeded").await;
    assert_eq!(done["approval"]["status"], "approved");
}

#[tokio::test]
async fn console_forms_need_a_session_and_its_csrf_token() {
    let app = spawn_app().await;
    let agent = app.create_agent("quorum").await;
    let (_, alice) = app.create_approver("Alice").await;
    let (_, p) = app.pay(&agent.key, "c", payment("50.00", "aws.amazon.com")).await;
    let approval = p["approval"]["id"].as_str().unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let bad = http.post(app.url("/console/login")).form(&[("token", "psr_appr_nope")]).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    // Login CSRF: a form posted from another site signs nobody in.
    let forged = http
        .post(app.url("/console/login"))
        .header("origin", "https://evil.example")
        .form(&[("token", alice.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get("set-cookie").is_none());
    let ok = http.post(app.url("/console/login")).form(&[("token", alice.as_str())]).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/console"] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();

    // A forged form without the session's CSRF token changes nothing.
    let forged = http
        .post(app.url(&format!("/console/approvals/{approval}/approve")))
        .header("cookie", &session)
        .form(&[("csrf", "guess"), ("comment", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // So does one from another origin, even with the token.
    let page =
        http.get(app.url("/console")).header("cookie", &session).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let cross = http
        .post(app.url(&format!("/console/approvals/{approval}/approve")))
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("comment", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let (_, a) = app.get(&alice, &format!("/v1/approvals/{approval}")).await;
    assert_eq!(a["votes"], json!([]), "no vote was recorded");
    // Without a session there is only the sign-in page.
    let anon = http.get(app.url("/console")).send().await.unwrap().text().await.unwrap();
    assert!(anon.contains("Sign in") && !anon.contains(approval));
}
