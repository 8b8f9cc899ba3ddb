//! The `cmd` and `fs` gateway extensions driven through the local server over real loopback
//! TCP: the server's `run_resource` sends the RUN a REST call would.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thinger_core::pson::Value;
use thinger_server::{DeviceError, DeviceReply, Limits, Server, ServerConfig, TlsMode};
use thinger_std::ext::cmd::CmdConfig;
use thinger_std::ext::fs::{DEFAULT_MAX_INLINE, FsConfig};
use thinger_std::resources::Resources;
use thinger_std::{Client, Transport};

const USER: &str = "user1";

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("thinger-ext-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A local server and a device with `thing`, connected; the session buffer fits an inline
/// transfer of the default limit (3/8 of it receives frames, 3/8 sends them).
async fn device(name: &str, thing: Resources) -> (Server, Client) {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    }
    // The server refuses, before sending, what would not fit the device's frames (32 KiB by
    // default): tell it this device takes frames as large as its 3 × inline-limit buffer.
    let limits = Limits { device_frame_limit: 3 * DEFAULT_MAX_INLINE, ..Limits::default() };
    let server = Server::start(ServerConfig::local().tls(TlsMode::Off).limits(limits)).await.unwrap();
    let addr = server.tcp_addr();
    let client = Client::builder(USER, name, "secret")
        .host(addr.ip().to_string())
        .port(addr.port())
        .transport(Transport::Tcp)
        .buffer_size(3 * DEFAULT_MAX_INLINE)
        .request_timeout(Duration::from_secs(10))
        .resources(thing)
        .spawn()
        .unwrap();
    client.connected().await.unwrap();
    assert!(server.wait_connected(USER, name, Duration::from_secs(5)).await);
    (server, client)
}

async fn run(server: &Server, name: &str, resource: &str, input: Option<Value>) -> Result<DeviceReply, DeviceError> {
    server.run_resource(USER, name, resource, input).await
}

async fn ok(server: &Server, name: &str, resource: &str, input: Option<Value>) -> Value {
    match run(server, name, resource, input).await {
        Ok(reply) => reply.payload.unwrap_or(Value::Null),
        Err(e) => panic!("{resource}: {e:?}"),
    }
}

fn error_code(result: Result<DeviceReply, DeviceError>) -> Option<u64> {
    match result {
        Err(DeviceError::Failed { code, .. }) => code,
        other => panic!("expected a device ERROR, got {other:?}"),
    }
}

fn command(text: &str) -> Option<Value> {
    Some(map(&[("command", Value::Str(text.into()))]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmd_returns_output_and_exit_code() {
    let mut thing = Resources::new();
    CmdConfig::allow(["echo", "ls"]).install(&mut thing);
    let (server, _client) = device("cmd-out", thing).await;

    let reply = ok(&server, "cmd-out", "cmd", command("echo hello gateway")).await;
    assert_eq!(reply["retcode"], 0u32);
    assert_eq!(reply["stdout"], "hello gateway\n");
    assert_eq!(reply["stderr"], "");

    let reply = ok(&server, "cmd-out", "cmd", command("ls /definitely/not/here")).await;
    assert_eq!(reply["retcode"], 2u32, "{reply:?}");
    assert_eq!(reply["stdout"], "");
    assert!(reply["stderr"].as_str().unwrap().contains("/definitely/not/here"), "{reply:?}");

    let text = map(&[("command", Value::Str("echo plain".into())), ("mode", Value::Str("text".into()))]);
    assert_eq!(ok(&server, "cmd-out", "cmd", Some(text)).await, "plain\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmd_past_its_timeout_is_killed_with_its_children() {
    let dir = temp_dir("cmd-timeout");
    let marker = dir.join("marker");
    let mut thing = Resources::new();
    CmdConfig::allow_any_shell_command().timeout(Duration::from_millis(300)).install(&mut thing);
    let (server, _client) = device("cmd-timeout", thing).await;

    // A background child that would leave a marker after 1.5 s, and a foreground sleep.
    let script = format!("(sleep 1.5; touch {}) & echo started; sleep 30", marker.display());
    let started = Instant::now();
    let reply = ok(&server, "cmd-timeout", "cmd", command(&script)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(reply["timed_out"], true, "{reply:?}");
    assert_eq!(reply["retcode"], -1i32);
    assert_eq!(reply["stdout"], "started\n");
    // The whole process group died: the background child never touches the marker.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!marker.exists(), "a child of the command survived its timeout");

    // A request may shorten the timeout, never lengthen it.
    let long = map(&[("command", Value::Str("sleep 30".into())), ("timeout", Value::Uint(60))]);
    let started = Instant::now();
    let reply = ok(&server, "cmd-timeout", "cmd", Some(long)).await;
    assert_eq!(reply["timed_out"], true);
    assert!(started.elapsed() < Duration::from_secs(3));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmd_outside_the_allow_list_is_refused() {
    let dir = temp_dir("cmd-refused");
    let marker = dir.join("marker");
    let mut thing = Resources::new();
    CmdConfig::allow(["echo"]).install(&mut thing);
    let (server, _client) = device("cmd-refused", thing).await;

    let touch = format!("touch {}", marker.display());
    for refused in [touch.as_str(), "/bin/echo hi", "sh -c id", "echoo"] {
        assert_eq!(error_code(run(&server, "cmd-refused", "cmd", command(refused)).await), Some(403), "{refused}");
    }
    assert_eq!(error_code(run(&server, "cmd-refused", "cmd", command("  ")).await), Some(400));
    // No shell: the `;` is an argument of echo, `touch` never runs.
    let reply = ok(&server, "cmd-refused", "cmd", command(&format!("echo x; {touch}"))).await;
    assert_eq!(reply["stdout"], format!("x; {touch}\n"));
    assert!(!marker.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Deterministic bytes that compress badly.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_upload_and_download_at_the_inline_limit_keep_the_hash() {
    let root = temp_dir("fs-roundtrip");
    let mut thing = Resources::new();
    FsConfig::new().root("data", &root).writable(true).install(&mut thing).unwrap();
    let (server, _client) = device("fs-rt", thing).await;
    let name = "fs-rt";

    let data = pseudo_random(DEFAULT_MAX_INLINE);
    let reply = ok(&server, name, "$fs/put/data/sub/blob.bin", Some(Value::Bytes(data.clone()))).await;
    assert_eq!(reply["success"], true);
    assert_eq!(reply["size"], DEFAULT_MAX_INLINE as u64);
    assert_eq!(std::fs::read(root.join("sub/blob.bin")).unwrap(), data);

    let down = ok(&server, name, "$fs/get/data/sub/blob.bin", None).await;
    assert_eq!(sha256_hex(down.as_bytes().unwrap()), sha256_hex(&data));
    let hashed = ok(&server, name, "$fs/hash/data/sub/blob.bin", None).await;
    assert_eq!(hashed["hash"], sha256_hex(&data));
    assert_eq!(hashed["algorithm"], "sha256");
    assert_eq!(hashed["size"], DEFAULT_MAX_INLINE as u64);

    // One byte over the inline limit, either way: 413, nothing written.
    let big = Value::Bytes(pseudo_random(DEFAULT_MAX_INLINE + 1));
    assert_eq!(error_code(run(&server, name, "$fs/put/data/big.bin", Some(big)).await), Some(413));
    assert!(!root.join("big.bin").exists());
    std::fs::write(root.join("big.bin"), pseudo_random(DEFAULT_MAX_INLINE + 1)).unwrap();
    assert_eq!(error_code(run(&server, name, "$fs/get/data/big.bin", None).await), Some(413));

    // overwrite=false keeps the file; the map form takes text too.
    let keep = map(&[("data", Value::Str("new".into())), ("overwrite", Value::Bool(false))]);
    assert_eq!(error_code(run(&server, name, "$fs/put/data/sub/blob.bin", Some(keep)).await), Some(409));
    let note = map(&[("data", Value::Str("hello".into()))]);
    ok(&server, name, "$fs/put/data/note.txt", Some(note)).await;
    assert_eq!(std::fs::read_to_string(root.join("note.txt")).unwrap(), "hello");

    // Stat, listing, directories, move, delete.
    let info = ok(&server, name, "$fs/info/data/note.txt", None).await;
    assert_eq!(
        (info["type"].as_str(), info["size"].as_u64(), info["name"].as_str()),
        (Some("file"), Some(5), Some("note.txt"))
    );
    ok(&server, name, "$fs/put/data/empty/", None).await;
    assert!(root.join("empty").is_dir());
    std::fs::write(root.join(".hidden"), b"h").unwrap();
    let listing = ok(&server, name, "$fs/get/data", None).await;
    let names: Vec<&str> = listing.as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["big.bin", "empty", "note.txt", "sub"]);
    let all = ok(&server, name, "$fs/get/data", Some(map(&[("include_hidden", Value::Bool(true))]))).await;
    assert_eq!(all.as_array().unwrap().len(), 5);
    let roots = ok(&server, name, "$fs/get", None).await;
    assert_eq!(roots[0]["name"], "data");

    let to = map(&[("destination", Value::Str("data/empty/moved.txt".into()))]);
    let moved = ok(&server, name, "$fs/move/data/note.txt", Some(to.clone())).await;
    assert_eq!(moved["destination"], "data/empty/moved.txt");
    assert!(root.join("empty/moved.txt").exists() && !root.join("note.txt").exists());
    std::fs::write(root.join("note.txt"), b"again").unwrap();
    assert_eq!(error_code(run(&server, name, "$fs/move/data/note.txt", Some(to)).await), Some(409));
    assert_eq!(error_code(run(&server, name, "$fs/delete/data/empty", None).await), Some(409));
    let recursive = Some(map(&[("recursive", Value::Bool(true))]));
    assert_eq!(ok(&server, name, "$fs/delete/data/empty", recursive).await["deleted"], "data/empty");
    assert!(!root.join("empty").exists());
    assert_eq!(error_code(run(&server, name, "$fs/get/data/missing", None).await), Some(404));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_is_read_only_unless_made_writable() {
    let root = temp_dir("fs-ro");
    std::fs::write(root.join("a.txt"), b"a").unwrap();
    let mut thing = Resources::new();
    FsConfig::new().root("data", &root).install(&mut thing).unwrap();
    assert!(!thing.contains("$fs/put/*path") && !thing.contains("$fs/delete/*path"));
    let (server, _client) = device("fs-ro", thing).await;
    assert_eq!(ok(&server, "fs-ro", "$fs/get/data/a.txt", None).await.as_bytes(), Some(&b"a"[..]));
    // Unknown resources: a bare ERROR.
    let put = run(&server, "fs-ro", "$fs/put/data/b.txt", Some(Value::Bytes(b"b".to_vec()))).await;
    assert!(matches!(put, Err(DeviceError::Failed { .. })), "{put:?}");
    assert!(run(&server, "fs-ro", "$fs/delete/data/a.txt", None).await.is_err());
    assert!(root.join("a.txt").exists() && !root.join("b.txt").exists());
    let _ = std::fs::remove_dir_all(&root);
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            all.extend(snapshot(&path));
        } else {
            all.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_traversal_attempts_are_refused() {
    let base = temp_dir("fs-traversal");
    let root = base.join("root");
    std::fs::create_dir_all(root.join("inner")).unwrap();
    std::fs::write(base.join("secret.txt"), b"secret").unwrap();
    std::fs::write(root.join("inner/ok.txt"), b"ok").unwrap();
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link")).unwrap();
    std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
    let mut thing = Resources::new();
    FsConfig::new().root("data", &root).writable(true).install(&mut thing).unwrap();
    let (server, _client) = device("fs-trav", thing).await;
    let before = snapshot(&base);

    let long = format!("data/{}x", "a/".repeat(600));
    let attempts: Vec<(&str, String, u64)> = vec![
        ("parent dir", "data/../secret.txt".into(), 403),
        ("nested parent dir", "data/inner/../../secret.txt".into(), 403),
        ("root is ..", "../secret.txt".into(), 403),
        ("current dir", "data/./inner/ok.txt".into(), 403),
        ("absolute path", "/etc/passwd".into(), 403),
        ("backslash", "data\\..\\secret.txt".into(), 403),
        ("drive prefix", "C:/Windows/win.ini".into(), 403),
        ("NUL byte", "data/inner/ok.txt\0.png".into(), 403),
        ("control char", "data/inner/ok\n.txt".into(), 403),
        ("empty segment", "data//inner/ok.txt".into(), 403),
        ("percent-encoded ..", "data/%2e%2e/secret.txt".into(), 403),
        ("too long", long, 403),
        ("symlink to a file outside", "data/link".into(), 403),
        ("symlink to a dir outside", "data/up/secret.txt".into(), 403),
        ("unknown root", "etc/passwd".into(), 404),
    ];
    let mut refused = 0;
    for (kind, path, code) in &attempts {
        for op in ["get", "info", "hash", "put", "delete"] {
            let input = (op == "put").then(|| Value::Bytes(b"pwned".to_vec()));
            let result = run(&server, "fs-trav", &format!("$fs/{op}/{path}"), input).await;
            assert_eq!(error_code(result), Some(*code), "{kind} via {op}: {path:?}");
        }
        refused += 1;
    }
    assert!(refused >= 10);
    // A move out of the root through its destination, and a write through a symlinked dir.
    let out = map(&[("destination", Value::Str("data/../stolen.txt".into()))]);
    assert_eq!(error_code(run(&server, "fs-trav", "$fs/move/data/inner/ok.txt", Some(out)).await), Some(403));
    let up = map(&[("destination", Value::Str("data/up/stolen.txt".into()))]);
    assert_eq!(error_code(run(&server, "fs-trav", "$fs/move/data/inner/ok.txt", Some(up)).await), Some(403));
    let into_link = run(&server, "fs-trav", "$fs/put/data/up/new.txt", Some(Value::Bytes(b"x".to_vec()))).await;
    assert_eq!(error_code(into_link), Some(403));
    // The root itself cannot be deleted or moved.
    let recursive = Some(map(&[("recursive", Value::Bool(true))]));
    assert!(run(&server, "fs-trav", "$fs/delete/data", recursive).await.is_err());
    // Nothing changed anywhere, inside or outside the root.
    assert_eq!(snapshot(&base), before);
    assert_eq!(ok(&server, "fs-trav", "$fs/get/data/inner/ok.txt", None).await.as_bytes(), Some(&b"ok"[..]));
    let _ = std::fs::remove_dir_all(&base);
}
