//! The command line as an operator uses it: the real binary, its output
//! and its exit status.

use std::process::Output;

use tokio::io::AsyncBufReadExt;

use crate::helpers::*;

fn purser(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_purser")).args(args).output().expect("purser runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A rule that can never apply is a warning: the set is valid, `policy
/// check` says where, and `--deny-warnings` fails on it (for CI on policy
/// pull requests). A reachable approval threshold is no warning.
#[test]
fn policy_check_reports_warnings_and_can_deny_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    // 150 × 0.5 = 75 < 100: a first payment to a merchant reaches it.
    std::fs::write(
        dir.path().join("a.toml"),
        "[policies.a]\ncurrency = \"USD\"\nrails = [\"card\"]\ntrust_level = \"custom\"\n\
         per_tx_limit = \"100.00\"\ndaily_limit = \"1000.00\"\napproval_threshold = \"150.00\"\n",
    )
    .unwrap();
    let out = purser(&["policy", "check", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("1 policy valid in {path}\n")), "{}", text(&out.stdout));
    assert_eq!(text(&out.stderr), "");

    std::fs::write(
        dir.path().join("b.toml"),
        "[policies.b]\ncurrency = \"USD\"\nrails = [\"card\"]\nper_tx_limit = \"200.00\"\ndaily_limit = \"100.00\"\n",
    )
    .unwrap();
    let out = purser(&["policy", "check", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 policies valid in"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(", 1 warning\n"), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("warning: ")
            && text(&out.stderr).contains("b.toml:4:16: per_tx_limit 200.00"),
        "{}",
        text(&out.stderr)
    );

    let out = purser(&["policy", "check", "--deny-warnings", path]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--deny-warnings"), "{}", text(&out.stderr));
}

/// `serve --dev` with the operator's own policies (no `demo` policy) and
/// their own admin token starts, serves, and says it skipped the demo
/// agent.
#[tokio::test]
async fn serve_dev_without_a_demo_policy_starts_and_says_it_skipped_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("test.toml"), TEST_POLICY).unwrap();
    let mut process = Process::serve(&["--dev"], &policies, |command| {
        command
            .env("PURSER_DATABASE_URL", format!("sqlite://{}", dir.path().join("purser.db").display()))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
    });
    process.until_ready().await;
    let stdout = process.child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut banner = String::new();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line()).await
    {
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("Demo agent") {
            break;
        }
    }
    assert!(banner.contains("Demo agent   skipped: no policy named \"demo\""), "{banner}");
    // The operator's admin token works, and an agent can be made under
    // their own policy.
    let (status, agent) = process
        .admin(
            reqwest::Method::POST,
            "/v1/agents",
            Some(serde_json::json!({ "name": "a", "policy": "test" })),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{agent}");
}

/// `audit verify` on a mistyped path refuses, creates nothing, and says so
/// once; `audit head` and `verify --expect-head` catch records removed from
/// the end of the chain, which no link inside it can show.
// Several threads: the test blocks one on the CLI while the gateway in
// this process must keep driving its own database connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_refuses_a_missing_store_and_catches_a_cut_end() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.db");
    let out = purser(&["audit", "verify", "--database-url", &format!("sqlite://{}", typo.display())]);
    assert!(!out.status.success());
    assert!(!typo.exists(), "verify created a database");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("no purser database").count(), 1, "{stderr}");

    let app = spawn_app().await;
    for i in 0..8 {
        app.create_approver(&format!("approver-{i}")).await;
    }
    let url = app.database_url.clone();
    let out = purser(&["audit", "head", "--database-url", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let head = text(&out.stdout).trim().to_owned();
    let (seq, hash) = head.split_once(':').unwrap();
    assert!(seq.parse::<i64>().unwrap() >= 8 && hash.len() == 64, "{head}");
    let verify = |expect: &str| purser(&["audit", "verify", "--database-url", &url, "--expect-head", expect]);
    assert!(verify(&head).status.success());

    // Remove the newest five records: the links that remain are sound.
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    let cut = format!("DELETE FROM audit_log WHERE seq > {}", seq.parse::<i64>().unwrap() - 5);
    sqlx::query(&cut).execute(&raw).await.unwrap();
    assert!(purser(&["audit", "verify", "--database-url", &url]).status.success(), "without a head");
    let out = verify(&head);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("removed from its end"), "{}", text(&out.stderr));
    sqlx::query("DELETE FROM audit_log").execute(&raw).await.unwrap();
    assert!(!verify(&head).status.success(), "an emptied log");
}

/// `purser backup` copies a running gateway's SQLite store to a new file
/// and checks the copy's audit chain; the copy verifies against the head
/// taken before. It never overwrites a file.
// Several threads: the test blocks one on the CLI while the gateway in
// this process must keep driving its own database connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_makes_a_verified_copy_of_a_running_store() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_approver(&format!("approver-{i}")).await;
    }
    let url = app.database_url.clone();
    if !url.starts_with("sqlite:") {
        return; // the PostgreSQL path is the next test's
    }
    let head = text(&purser(&["audit", "head", "--database-url", &url]).stdout).trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    let to = copy.to_str().unwrap();
    let out = purser(&["backup", "--database-url", &url, "--to", to]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("audit records intact, head {head}")),
        "{}",
        text(&out.stdout)
    );
    let copied = format!("sqlite://{to}");
    assert!(purser(&["audit", "verify", "--database-url", &copied, "--expect-head", &head]).status.success());
    // The gateway went on serving meanwhile, and the copy is its own file.
    app.create_approver("after").await;
    let out = purser(&["backup", "--database-url", &url, "--to", to]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("exists"), "{}", text(&out.stderr));
}

/// With PostgreSQL, `purser backup` runs `pg_dump` into a custom-format
/// archive that `pg_restore` reads.
// Several threads: the test blocks one on the CLI while the gateway in
// this process must keep driving its own database connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_postgres_is_a_pg_dump_archive() {
    let Some(base) = postgres_url() else { return };
    let name = format!("purser_backup_{}", std::process::id());
    let admin = sqlx::AnyPool::connect(&base).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let url = format!("{prefix}/{name}");
    purser::store::Store::connect(&url).await.unwrap().close().await;

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("purser.dump");
    let out = purser(&["backup", "--database-url", &url, "--to", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = std::process::Command::new("pg_restore").arg("--list").arg(&archive).output().unwrap();
    assert!(
        listed.status.success() && text(&listed.stdout).contains("audit_log"),
        "{}",
        text(&listed.stdout)
    );
    sqlx::query(&format!("DROP DATABASE {name}")).execute(&admin).await.unwrap();
}
