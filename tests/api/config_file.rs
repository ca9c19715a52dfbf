//! `purser serve --config FILE`: settings from a TOML file, below
//! environment variables and flags.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_the_file_unless_a_variable_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("purser.toml");
    std::fs::write(
        &file,
        r#"
# The test harness sets PURSER_LISTEN, which wins over this.
listen = "127.0.0.1:1"
rate_limit_reads = 2
rate_limit_writes = 1000
"#,
    )
    .unwrap();
    let app = Process::production(dir.path(), None, |command| {
        command.env("PURSER_CONFIG", &file).env("PURSER_RATE_LIMIT_WRITES", "0");
    });
    app.until_ready().await;
    let agent = app.create_agent("test").await;
    for i in 0..2 {
        assert_eq!(app.get(&agent.key, "/v1/payments").await.0, StatusCode::OK, "read {i}");
    }
    let (status, e) = app.get(&agent.key, "/v1/payments").await;
    assert_eq!((status, e["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
    // The file's 1000 writes lost to the variable's 0 (unlimited).
    for i in 0..3 {
        let (status, p) = app.pay(&agent.key, &format!("k{i}"), payment("1.00", "aws.amazon.com")).await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
    }
}

#[tokio::test]
async fn a_config_file_with_an_unknown_setting_stops_serve() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("purser.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nrate_limit_raeds = 5\n").unwrap();
    let stderr = Process::refused(dir.path(), |command| {
        command.arg("--config").arg(&file);
    })
    .await;
    assert!(stderr.contains("unknown setting `rate_limit_raeds`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_variable_counts_as_unset() {
    // As `PURSER_TRUSTED_PROXIES=${PROXIES:-}` in a compose file leaves it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("purser.toml");
    std::fs::write(&file, "rate_limit_reads = 1\n").unwrap();
    let app = Process::production(dir.path(), None, |command| {
        command
            .env("PURSER_TRUSTED_PROXIES", "")
            .env("PURSER_CORS_ORIGINS", "")
            .env("PURSER_CONFIG", &file)
            .env("PURSER_RATE_LIMIT_READS", "");
    });
    app.until_ready().await;
    let agent = app.create_agent("test").await;
    assert_eq!(app.get(&agent.key, "/v1/payments").await.0, StatusCode::OK);
    let (status, _) = app.get(&agent.key, "/v1/payments").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the file's value applies, not an empty variable");
}
