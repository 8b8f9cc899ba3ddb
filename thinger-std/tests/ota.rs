//! OTA end to end: the push tool of `thinger-server` (as a library) updates a `thinger-std`
//! device over real loopback sockets, the device installing into a file.

use std::path::PathBuf;
use std::time::Duration;

use md5::Digest;
use thinger_core::ota::OtaStatus;
use thinger_core::pson::Value;
use thinger_server::ota::{DeviceLink, LinkError, LocalDevice, PushError, PushOptions, RestDevice, push};
use thinger_server::{Server, ServerConfig};
use thinger_std::ota::{FileUpdater, SharedOta};
use thinger_std::resources::Resources;
use thinger_std::{Backoff, Client, Transport};

const USER: &str = "user1";

struct Device {
    server: Server,
    ota: SharedOta<FileUpdater>,
    target: PathBuf,
    dir: PathBuf,
    _client: Client,
    name: &'static str,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn device(name: &'static str) -> Device {
    let server = Server::start(ServerConfig::local()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("thinger-ota-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("app.bin");
    std::fs::write(&target, b"old firmware").unwrap();
    let ota = SharedOta::new(FileUpdater::new(&target), SharedOta::config("1.0.0"));
    let mut thing = Resources::new();
    ota.register(&mut thing);
    let addr = server.tcp_addr();
    let client = Client::builder(USER, name, "secret")
        .host(addr.ip().to_string())
        .port(addr.port())
        .transport(Transport::Tcp)
        .backoff(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            multiplier: 2.0,
            jitter: 0.1,
        })
        .resources(thing)
        .spawn()
        .unwrap();
    assert!(server.wait_connected(USER, name, Duration::from_secs(10)).await, "device did not connect");
    Device { server, ota, target, dir, _client: client, name }
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i ^ (i >> 8) ^ (i >> 16)) as u8).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn options() -> PushOptions {
    PushOptions { firmware: "app".into(), version: "2.0.0".into(), reboot: false, ..PushOptions::default() }
}

fn installed(d: &Device) -> Vec<u8> {
    std::fs::read(&d.target).unwrap()
}

fn success(v: &Value) -> bool {
    v.get("success").and_then(Value::as_bool) == Some(true)
}

fn error(v: &Value) -> &str {
    v.get("error").and_then(Value::as_str).unwrap_or("")
}

fn begin_input(img: &[u8], md5: &str) -> Value {
    thinger_core::pson!({"firmware": "app", "version": "2.0.0", "size": (img.len() as u64), "chunk_size": 4096u32, "checksum": md5})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_image_pushed_over_rest_is_installed_byte_for_byte() {
    let d = device("rest").await;
    let img = image(1 << 20);
    let mut link = RestDevice::new(&format!("http://{}", d.server.http_addr()), USER, d.name).unwrap();
    let mut last = 0;
    let report = push(&mut link, &img, &PushOptions { reboot: true, ..options() }, |o| last = o).await.unwrap();
    assert_eq!((report.size, report.sent, report.chunk_size), (img.len(), img.len(), 8192));
    assert!(report.resumed_at.is_empty());
    assert_eq!(last, img.len());
    assert!(installed(&d) == img, "installed image differs");
    assert_eq!(d.ota.status(), OtaStatus::Rebooting);
    assert!(!FileUpdater::new(&d.target).temp_path().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_checksum_is_refused_at_end_and_nothing_is_installed() {
    let d = device("checksum").await;
    let img = image(100_000);
    let mut link = LocalDevice { server: &d.server, user: USER, device: d.name };
    let wrong = hex(&md5::Md5::digest(b"another image"));
    assert!(success(&link.call("$ota/begin", Some(begin_input(&img, &wrong))).await.unwrap()));
    for chunk in img.chunks(4096) {
        assert!(success(&link.call("$ota/write", Some(Value::Bytes(chunk.to_vec()))).await.unwrap()));
    }
    let end = link.call("$ota/end", None).await.unwrap();
    assert!(!success(&end));
    assert!(error(&end).contains("checksum"), "{end:?}");
    assert_eq!(installed(&d), b"old firmware");
    assert_eq!(d.ota.status(), OtaStatus::Idle);
    assert!(!FileUpdater::new(&d.target).temp_path().exists(), "partial image removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_image_is_refused() {
    let d = device("truncated").await;
    let img = image(50_000);
    let mut link = LocalDevice { server: &d.server, user: USER, device: d.name };
    let md5 = hex(&md5::Md5::digest(&img));
    assert!(success(&link.call("$ota/begin", Some(begin_input(&img, &md5))).await.unwrap()));
    for chunk in img[..20_000].chunks(4096) {
        assert!(success(&link.call("$ota/write", Some(Value::Bytes(chunk.to_vec()))).await.unwrap()));
    }
    let end = link.call("$ota/end", None).await.unwrap();
    assert!(!success(&end));
    assert_eq!(error(&end), "incomplete image");
    assert_eq!(installed(&d), b"old firmware");
    assert_eq!(d.ota.status(), OtaStatus::Receiving { offset: 20_000, size: 50_000 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_beyond_size_is_refused() {
    let d = device("beyond").await;
    let img = image(10_000);
    let mut link = LocalDevice { server: &d.server, user: USER, device: d.name };
    let md5 = hex(&md5::Md5::digest(&img));
    assert!(success(&link.call("$ota/begin", Some(begin_input(&img, &md5))).await.unwrap()));
    for chunk in img.chunks(8192) {
        assert!(success(&link.call("$ota/write", Some(Value::Bytes(chunk.to_vec()))).await.unwrap()));
    }
    let extra = link.call("$ota/write", Some(Value::Bytes(vec![0; 16]))).await.unwrap();
    assert!(!success(&extra));
    assert_eq!(error(&extra), "write beyond image size");
    // The refused write changed nothing: the image still verifies and installs.
    assert!(success(&link.call("$ota/end", None).await.unwrap()));
    assert_eq!(installed(&d), img);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_for_another_image_while_one_runs_restarts_cleanly() {
    let d = device("restart").await;
    let (old, new) = (image(30_000), image(20_000).iter().map(|b| b.wrapping_add(1)).collect::<Vec<_>>());
    let mut link = LocalDevice { server: &d.server, user: USER, device: d.name };
    let md5 = hex(&md5::Md5::digest(&old));
    assert!(success(&link.call("$ota/begin", Some(begin_input(&old, &md5))).await.unwrap()));
    assert!(success(&link.call("$ota/write", Some(Value::Bytes(old[..8192].to_vec()))).await.unwrap()));
    // Same image with `resume`: continues at the offset.
    let mut resume = begin_input(&old, &md5);
    if let Value::Map(pairs) = &mut resume {
        pairs.push(("resume".into(), Value::Bool(true)));
    }
    let again = link.call("$ota/begin", Some(resume)).await.unwrap();
    assert_eq!(again.get("offset").and_then(Value::as_u64), Some(8192));
    // Another image: starts over at 0 and installs only the new bytes.
    let report = push(&mut link, &new, &options(), |_| ()).await.unwrap();
    assert!(report.resumed_at.is_empty(), "{report:?}");
    assert_eq!(installed(&d), new);
}

/// Cuts the device's connection once the device holds half the image, and loses the
/// write that was in flight.
struct CutAtHalf<'a> {
    inner: LocalDevice<'a>,
    half: usize,
    written: usize,
    cut: bool,
}

impl DeviceLink for CutAtHalf<'_> {
    async fn call(&mut self, resource: &str, input: Option<Value>) -> Result<Value, LinkError> {
        if resource == "$ota/write" && !self.cut && self.written >= self.half {
            self.cut = true;
            assert!(self.inner.server.disconnect_device(USER, self.inner.device));
            return Err(LinkError::Transient("link cut".into()));
        }
        let out = self.inner.call(resource, input).await?;
        if let Some(offset) = out.get("offset").and_then(Value::as_u64) {
            self.written = offset as usize;
        }
        Ok(out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_cut_at_half_resumes_from_the_offset() {
    let d = device("resume").await;
    let img = image(1 << 20);
    let inner = LocalDevice { server: &d.server, user: USER, device: d.name };
    let mut link = CutAtHalf { inner, half: img.len() / 2, written: 0, cut: false };
    let opts = PushOptions { chunk_size: Some(4096), resume_timeout: Duration::from_secs(20), ..options() };
    let report = push(&mut link, &img, &opts, |_| ()).await.unwrap();
    assert!(link.cut);
    assert_eq!(report.resumed_at, vec![img.len() / 2], "resumed at the offset, not at 0");
    assert_eq!(report.sent, img.len(), "no byte sent twice");
    assert!(installed(&d) == img, "installed image differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_device_fails_for_good() {
    let d = device("errors").await;
    let mut link = LocalDevice { server: &d.server, user: USER, device: "nobody" };
    let err = push(&mut link, &image(10), &options(), |_| ()).await.unwrap_err();
    assert!(matches!(err, PushError::Link(LinkError::Fatal(_))), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ota_subcommand_pushes_a_file_through_the_rest_api() {
    let d = device("cli").await;
    let img = image(200_000);
    let file = d.dir.join("new.bin");
    std::fs::write(&file, &img).unwrap();
    let url = format!("http://{}", d.server.http_addr());
    let args =
        ["ota", file.to_str().unwrap(), "--user", USER, "--device", d.name, "--server", &url, "--chunk-size", "4096"];
    let code = thinger_server::ota::cli(args.map(std::ffi::OsString::from)).await;
    assert_eq!(format!("{code:?}"), format!("{:?}", std::process::ExitCode::SUCCESS));
    assert!(installed(&d) == img, "installed image differs");
    assert_eq!(d.ota.status(), OtaStatus::Rebooting);

    let missing = ["ota", "/nonexistent/image.bin", "--user", USER, "--device", d.name, "--server", &url];
    let code = thinger_server::ota::cli(missing.map(std::ffi::OsString::from)).await;
    assert_eq!(format!("{code:?}"), format!("{:?}", std::process::ExitCode::FAILURE));
}
