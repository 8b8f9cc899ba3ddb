//! OTA push throughput over the local server: a 4 MiB image pushed to a `thinger-std`
//! device (installing into a file) at chunk sizes of 1, 4 and 8 KiB, through the server's
//! in-process API and through its REST API (what `thinger-server ota` uses).
//!
//! `cargo bench -p thinger-std --bench ota`; prints the median of 5 pushes per row.

use std::time::{Duration, Instant};

use thinger_server::ota::{DeviceLink, LocalDevice, PushOptions, RestDevice, push};
use thinger_server::{Server, ServerConfig};
use thinger_std::ota::{FileUpdater, SharedOta};
use thinger_std::resources::Resources;
use thinger_std::{Client, Transport};

const IMAGE: usize = 4 << 20;
const RUNS: usize = 5;

async fn measure<L: DeviceLink>(link: &mut L, image: &[u8], chunk: usize) -> f64 {
    let options = PushOptions { chunk_size: Some(chunk), reboot: false, ..PushOptions::default() };
    let mut rates = Vec::new();
    for run in 0..RUNS {
        // A different firmware name each time, so no push resumes the previous one.
        let options = PushOptions { firmware: format!("bench-{chunk}-{run}"), ..options.clone() };
        let start = Instant::now();
        let report = push(link, image, &options, |_| ()).await.expect("push");
        assert_eq!(report.sent, image.len());
        rates.push(image.len() as f64 / 1024.0 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let server = Server::start(ServerConfig::local()).await.unwrap();
        let dir = std::env::temp_dir().join(format!("thinger-ota-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ota = SharedOta::new(FileUpdater::new(dir.join("image.bin")), SharedOta::config("1.0.0"));
        let mut thing = Resources::new();
        ota.register(&mut thing);
        let addr = server.tcp_addr();
        let _client = Client::builder("bench", "dev", "secret")
            .host(addr.ip().to_string())
            .port(addr.port())
            .transport(Transport::Tcp)
            .resources(thing)
            .spawn()
            .unwrap();
        assert!(server.wait_connected("bench", "dev", Duration::from_secs(10)).await);
        let image: Vec<u8> = (0..IMAGE).map(|i| (i ^ (i >> 9)) as u8).collect();
        println!("OTA push of a {} MiB image, median of {RUNS} (KiB/s)", IMAGE >> 20);
        println!("| chunk | in-process API | REST API |");
        println!("|---|---|---|");
        for chunk in [1024, 4096, 8192] {
            let mut local = LocalDevice { server: &server, user: "bench", device: "dev" };
            let local_rate = measure(&mut local, &image, chunk).await;
            let mut rest = RestDevice::new(&format!("http://{}", server.http_addr()), "bench", "dev").unwrap();
            let rest_rate = measure(&mut rest, &image, chunk).await;
            println!("| {} KiB | {local_rate:.0} | {rest_rate:.0} |", chunk / 1024);
        }
        assert!(std::fs::read(dir.join("image.bin")).unwrap() == image);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
