//! In-process HTTPS (`PURSER_TLS_CERT`/`PURSER_TLS_KEY`): a real `purser
//! serve` in production mode, reached by clients that trust only the
//! certificate the test made.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::tls::Version;
use reqwest::{Certificate, StatusCode};

use crate::helpers::*;

/// A fresh self-signed certificate for 127.0.0.1, written as PEM files.
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, Certificate) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, Certificate::from_pem(made.cert.pem().as_bytes()).unwrap())
}

/// A client that trusts only `root` and opens a new connection for every
/// request, so each one shows the certificate being served now.
fn trusting(root: &Certificate, max: Option<Version>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root.clone())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5));
    if let Some(max) = max {
        builder = builder.max_tls_version(max);
    }
    builder.build().unwrap()
}

/// A gateway serving a fresh certificate (`live.crt`/`live.key` in the
/// directory), ready, with a client that trusts it.
async fn running() -> (tempfile::TempDir, Process, Certificate) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = make_cert(dir.path(), "live");
    let mut app = Process::production(dir.path(), Some((&cert, &key)), |_| {});
    app.client.http = trusting(&root, None);
    app.until_ready().await;
    (dir, app, root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_its_certificate_and_only_tls_1_3_by_default() {
    let (dir, app, root) = running().await;
    let (cert, key) = (dir.path().join("live.crt"), dir.path().join("live.key"));

    let (status, agents) = app.admin(reqwest::Method::GET, "/v1/agents", None).await;
    assert_eq!(status, StatusCode::OK, "{agents}");
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(resp.headers().contains_key("strict-transport-security"));

    let plain = app.base.replacen("https://", "http://", 1);
    let err = reqwest::get(format!("{plain}/healthz")).await;
    assert!(err.is_err_and(|e| !e.is_status()), "plain http is not answered on the TLS port");
    let tls12 = trusting(&root, Some(Version::TLS_1_2)).get(app.url("/healthz")).send().await;
    assert!(tls12.is_err(), "a TLS 1.2-only client is refused by default");
    let (_, _, stranger) = make_cert(dir.path(), "stranger");
    let untrusted = trusting(&stranger, None).get(app.url("/healthz")).send().await;
    assert!(untrusted.is_err(), "the client checks the certificate it is shown");
    drop(app);

    let mut lenient = Process::production(dir.path(), Some((&cert, &key)), |c| {
        c.env("PURSER_TLS_MIN_VERSION", "1.2");
    });
    lenient.client.http = trusting(&root, Some(Version::TLS_1_2));
    lenient.until_ready().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_a_renewed_certificate_and_a_broken_one_keeps_the_last_good() {
    let (dir, mut app, _) = running().await;
    let key = dir.path().join("live.key");
    let hangup = |app: &Process| {
        let pid = app.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    };

    // Renewal writes new files in place; SIGHUP picks them up.
    let (_, _, new_root) = make_cert(dir.path(), "live");
    let renewed = trusting(&new_root, None);
    assert!(renewed.get(app.url("/healthz")).send().await.is_err(), "not before the reload");
    hangup(&app);
    let mut served = false;
    for _ in 0..100 {
        if renewed.get(app.url("/healthz")).send().await.is_ok() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the renewed certificate is served after SIGHUP");

    // A half-written renewal is refused and the last good one stays.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();
    hangup(&app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = renewed.get(app.url("/healthz")).send().await.expect("still serving the renewed certificate");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(app.child.try_wait().unwrap().is_none(), "a bad reload does not stop the gateway");
}

#[tokio::test]
async fn refuses_to_start_with_half_or_broken_tls_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = make_cert(dir.path(), "a");
    let (_, other_key, _) = make_cert(dir.path(), "b");
    let missing = dir.path().join("missing.crt");
    let cases: [(&[(&str, &Path)], &str); 3] = [
        (&[("PURSER_TLS_CERT", &cert)], "set both PURSER_TLS_CERT and PURSER_TLS_KEY"),
        (&[("PURSER_TLS_CERT", &missing), ("PURSER_TLS_KEY", &key)], "reading TLS certificate"),
        (&[("PURSER_TLS_CERT", &cert), ("PURSER_TLS_KEY", &other_key)], "does not fit certificate"),
    ];
    for (settings, expected) in cases {
        let stderr = Process::refused(dir.path(), |command| {
            command.envs(settings.iter().copied());
        })
        .await;
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_beyond_loopback_warns_unless_tls_or_a_proxy_is_declared() {
    const WARNING: &str = "non-loopback address over plain HTTP";
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = make_cert(dir.path(), "live");
    // (name, TLS?, PURSER_TRUSTED_PROXIES, warned?)
    let cases = [
        ("plain, no proxy", false, None, true),
        ("plain, behind a declared proxy", false, Some("10.0.0.1/32"), false),
        ("https", true, None, false),
    ];
    for (name, tls, proxies, warned) in cases {
        let all_interfaces = |command: &mut tokio::process::Command| {
            let listen = command.as_std().get_envs().find(|(k, _)| *k == "PURSER_LISTEN").unwrap().1.unwrap();
            let listen = listen.to_str().unwrap().replace("127.0.0.1", "0.0.0.0");
            command.env("PURSER_LISTEN", listen).stdout(Stdio::piped());
            if let Some(proxies) = proxies {
                command.env("PURSER_TRUSTED_PROXIES", proxies);
            }
        };
        let mut app = Process::production(dir.path(), tls.then_some((&cert, &key)), all_interfaces);
        if tls {
            app.client.http = trusting(&root, None);
        }
        app.until_ready().await;
        app.child.kill().await.unwrap();
        let mut log = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut app.child.stdout.take().unwrap(), &mut log)
            .await
            .unwrap();
        assert!(log.contains("purser listening"), "{name}: {log}");
        assert_eq!(log.contains(WARNING), warned, "{name}: {log}");
    }
}
