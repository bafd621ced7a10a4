//! Start-up as a newcomer meets it, with the real binary: every refusal is exit status 2 and
//! one line on standard error naming the setting (never a panic or a stack trace), and
//! `config check` agrees with `serve` on good and bad configurations.

use crate::helpers::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished `fast-seller` run left.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `fast-seller <args>` in `dir` with `envs` as its only `FAST_SELLER_*` variables, to
/// its end (panics if it is still running after 30 s: a refusal must not start a server).
fn run(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fast-seller"));
    cmd.args(args).current_dir(dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("FAST_SELLER_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .envs(envs.iter().copied())
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fast-seller runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "fast-seller {args:?} kept running\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A refusal: exit 2, one line on standard error that names `setting` (its env var) and
/// contains `says`, and no panic. Returns that line.
fn assert_refused(what: &str, r: &Run, setting: &str, says: &str) -> String {
    let context = format!(
        "{what}\n--- stdout ---\n{}--- stderr ---\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.code, Some(2), "exit status 2: {context}");
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("backtrace"),
        "no panic: {context}"
    );
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {context}");
    let line = lines[0];
    assert!(line.starts_with("fast-seller: "), "{context}");
    assert!(
        line.contains(setting),
        "the line names {setting}: {context}"
    );
    assert!(line.contains(says), "the line says `{says}`: {context}");
    line.to_string()
}

/// `serve` with `args` (on a free loopback port unless `args` say otherwise).
fn serve_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["serve", "--log-format", "json"];
    if !args.contains(&"--listen") {
        all.extend(["--listen", "127.0.0.1:0"]);
    }
    all.extend_from_slice(args);
    all
}

/// The same settings for `config check`.
fn check_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["config", "check"];
    all.extend_from_slice(args);
    all
}

/// Bad configurations: `serve` refuses each with one line naming the setting, and
/// `config check` prints the table, then exactly the same line, with the same exit status.
#[test]
fn config_check_and_serve_refuse_the_same_bad_configurations_with_the_same_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a-file"), "not a directory").unwrap();
    std::fs::write(d.join("not-json.json"), "{ nope").unwrap();
    std::fs::write(
        d.join("catalog.json"),
        "{\"currency\": \"USD\", \"products\": [{\"id\": 1}]}",
    )
    .unwrap();
    std::fs::write(d.join("typo.toml"), "lisen = \"127.0.0.1:1\"\n").unwrap();
    let jwt = ["--auth", "fast-jwt", "--app-id", "app"];
    type Case<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<(&'a str, &'a str)>,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "data dir is a file",
            vec!["--data-dir", "a-file"],
            vec![],
            "FAST_SELLER_DATA_DIR",
            "not a directory",
        ),
        (
            "data dir below a file",
            vec!["--data-dir", "a-file/data"],
            vec![],
            "FAST_SELLER_DATA_DIR",
            "is a file",
        ),
        (
            "host name in --listen",
            vec!["--listen", "localhost:8080"],
            vec![],
            "FAST_SELLER_LISTEN",
            "127.0.0.1:8080",
        ),
        (
            "other host name",
            vec!["--listen", "shop.example:80"],
            vec![],
            "FAST_SELLER_LISTEN",
            "IP address",
        ),
        (
            "no port",
            vec!["--listen", "127.0.0.1"],
            vec![],
            "FAST_SELLER_LISTEN",
            "add a port",
        ),
        (
            "cache 0",
            vec![],
            vec![("FAST_SELLER_CACHE_CAPACITY", "0")],
            "FAST_SELLER_CACHE_CAPACITY",
            "1048576",
        ),
        (
            "cache 255",
            vec!["--cache-capacity", "255"],
            vec![],
            "FAST_SELLER_CACHE_CAPACITY",
            "1 MiB",
        ),
        (
            "workers",
            vec!["--workers", "100000"],
            vec![],
            "FAST_SELLER_WORKERS",
            "0 to 256",
        ),
        (
            "body limit",
            vec!["--body-limit", "0"],
            vec![],
            "FAST_SELLER_BODY_LIMIT",
            "1024",
        ),
        (
            "pool size",
            vec!["--store-pool-size", "0"],
            vec![],
            "FAST_SELLER_STORE_POOL_SIZE",
            "1 to 512",
        ),
        (
            "concurrency",
            vec!["--outbox-concurrency", "0"],
            vec![],
            "FAST_SELLER_OUTBOX_CONCURRENCY",
            "1 to 1024",
        ),
        (
            "shutdown 0s",
            vec!["--shutdown-timeout", "0s"],
            vec![],
            "FAST_SELLER_SHUTDOWN_TIMEOUT",
            "from 1s to 1h",
        ),
        (
            "read timeout",
            vec!["--body-read-timeout", "2days"],
            vec![],
            "FAST_SELLER_BODY_READ_TIMEOUT",
            "to 1h",
        ),
        (
            "retention",
            vec!["--idempotency-retention", "100years"],
            vec![],
            "FAST_SELLER_IDEMPOTENCY_RETENTION",
            "3650d",
        ),
        (
            "webhook url",
            vec!["--backend", "webhook", "--webhook-url", "ftp://x"],
            vec![(
                "FAST_SELLER_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            )],
            "FAST_SELLER_WEBHOOK_URL",
            "http",
        ),
        (
            "nats url",
            vec!["--nats-url", "http://x:4222"],
            vec![],
            "FAST_SELLER_NATS_URL",
            "nats://",
        ),
        (
            "missing catalog",
            vec!["--catalog", "nope.json"],
            vec![],
            "catalog",
            "nope.json",
        ),
        (
            "bad catalog",
            vec!["--catalog", "catalog.json"],
            vec![],
            "catalog",
            "catalog.json",
        ),
        (
            "missing JWKS file",
            [&jwt[..], &["--jwks", "nope.json"]].concat(),
            vec![],
            "FAST_SELLER_JWKS",
            "nope.json",
        ),
        (
            "JWKS not JSON",
            [&jwt[..], &["--jwks", "not-json.json"]].concat(),
            vec![],
            "FAST_SELLER_JWKS",
            "not valid JSON",
        ),
        (
            "JWKS without keys",
            [&jwt[..], &["--jwks", "typo.toml"]].concat(),
            vec![],
            "FAST_SELLER_JWKS",
            "JSON",
        ),
        (
            "unknown file key",
            vec!["--config", "typo.toml"],
            vec![],
            "typo.toml",
            "lisen",
        ),
        (
            "short admin token",
            vec![],
            vec![("FAST_SELLER_ADMIN_TOKEN", "short")],
            "FAST_SELLER_ADMIN_TOKEN",
            "16",
        ),
    ];
    for (what, args, envs, setting, says) in &cases {
        let data = format!("data-{}", what.replace(' ', "-"));
        let mut args = args.clone();
        if !args.contains(&"--data-dir") {
            args.extend(["--data-dir", &data]);
        }
        let served = run(d, &serve_args(&args), envs);
        let line = assert_refused(&format!("serve: {what}"), &served, setting, says);
        let checked = run(d, &check_args(&args), envs);
        assert_eq!(
            checked.code,
            Some(2),
            "config check: {what}: {}",
            checked.stderr
        );
        assert_eq!(
            checked.stderr.trim_end(),
            line,
            "config check and serve must refuse {what} with the same line"
        );
    }
}

/// Good configurations: `config check` exits 0 with its table, and `serve` starts on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_passes_what_serve_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = d.join("keys");
    let generated = run(d, &["keys", "generate", "--dir", "keys"], &[]);
    assert_eq!(generated.code, Some(0), "{}", generated.stderr);
    let jwks = keys.join("jwks.json");
    let jwks = jwks.to_str().unwrap();
    std::fs::write(d.join("c.toml"), "body_limit = 4096\nworkers = 2\n").unwrap();
    let config = d.join("c.toml");
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("defaults", vec![], vec![]),
        ("a file", vec!["--config", config.to_str().unwrap()], vec![]),
        (
            "fast-jwt with a JWKS file",
            vec!["--auth", "fast-jwt", "--jwks", jwks, "--app-id", "app"],
            vec![],
        ),
        (
            "hmac",
            vec!["--auth", "hmac"],
            vec![("FAST_SELLER_HMAC_SECRETS", secret)],
        ),
    ];
    for (what, args, envs) in &cases {
        let data = d.join(format!("data-{}", what.replace(' ', "-")));
        let mut args = args.clone();
        args.extend(["--data-dir", data.to_str().unwrap()]);
        let mut check = check_args(&args);
        check.extend(["--listen", "127.0.0.1:0"]);
        let checked = run(d, &check, envs);
        assert_eq!(
            checked.code,
            Some(0),
            "config check: {what}\n{}{}",
            checked.stdout,
            checked.stderr
        );
        assert!(
            checked.stdout.contains("configuration OK"),
            "{}",
            checked.stdout
        );
        let server = ServerProcess::start_with(&args, envs).await;
        let ready = http_client()
            .get(format!("{}/readyz", server.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{what}: serve starts and is ready");
    }
}

/// `config check` shows where each value came from, redacts secrets, and says the same
/// in `--json`.
#[test]
fn config_check_shows_sources_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("c.toml"), "workers = 3\n").unwrap();
    let token = "a-very-secret-admin-token";
    let args = [
        "config",
        "check",
        "--config",
        "c.toml",
        "--body-limit",
        "4096",
        "--data-dir",
        "data",
    ];
    let envs = [
        ("FAST_SELLER_ADMIN_TOKEN", token),
        ("FAST_SELLER_SHUTDOWN_TIMEOUT", "5s"),
        ("FAST_SELLER_STORE", "postgres://fs:hunter2@127.0.0.1:1/db"),
    ];
    let r = run(d, &args, &envs);
    assert!(
        !r.stdout.contains(token) && !r.stdout.contains("hunter2"),
        "{}",
        r.stdout
    );
    let row = |key: &str| {
        r.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no row {key} in\n{}", r.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("body_limit"), ["body_limit", "4096", "flag"]);
    assert_eq!(row("shutdown_timeout"), ["shutdown_timeout", "5s", "env"]);
    assert_eq!(row("workers"), ["workers", "3", "file"]);
    assert_eq!(row("listen"), ["listen", "127.0.0.1:8080", "default"]);
    assert_eq!(row("admin_token"), ["admin_token", "<redacted>", "env"]);
    // The store cannot be reached: that is a failure, named.
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("store:"), "{}", r.stderr);

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let r = run(d, &json_args, &envs);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("--json prints JSON");
    assert_eq!(v["ok"], false);
    let settings = v["settings"].as_array().expect("settings");
    let workers = settings.iter().find(|s| s["setting"] == "workers").unwrap();
    assert_eq!(workers["source"], "file");
    assert_eq!(workers["env"], "FAST_SELLER_WORKERS");
    assert!(!r.stdout.contains(token) && !r.stdout.contains("hunter2"));
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["check"] == "store" && c["result"] == "fail"));
}

/// What `serve` refuses but `config check` only warns about, since it is the state of the
/// machine and not the configuration: the port is taken, the data directory is held by a
/// running server (named by its process id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_and_a_held_data_directory_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let served = run(d, &serve_args(&["--listen", &addr, "--data-dir", "p"]), &[]);
    assert_refused(
        "port in use",
        &served,
        "FAST_SELLER_LISTEN",
        "already in use",
    );
    assert!(served.stderr.contains("--listen"), "{}", served.stderr);
    let checked = run(d, &check_args(&["--listen", &addr, "--data-dir", "p"]), &[]);
    assert_eq!(checked.code, Some(0), "a warning only: {}", checked.stdout);
    assert!(
        checked.stdout.contains("already in use"),
        "{}",
        checked.stdout
    );

    let data = d.join("held");
    let server = ServerProcess::start(&data).await;
    let data_arg = data.to_str().unwrap();
    let second = run(d, &serve_args(&["--data-dir", data_arg]), &[]);
    let line = assert_refused(
        "data dir locked",
        &second,
        "FAST_SELLER_DATA_DIR",
        "locked by another fast-seller process",
    );
    assert!(line.contains(&format!("pid {}", server.pid())), "{line}");
    assert!(line.contains("--url"), "{line}");
    let checked = run(
        d,
        &check_args(&["--data-dir", data_arg, "--listen", "127.0.0.1:0"]),
        &[],
    );
    assert_eq!(checked.code, Some(0), "a warning only: {}", checked.stdout);
    assert!(
        checked.stdout.contains(&format!("pid {}", server.pid())),
        "{}",
        checked.stdout
    );
}
