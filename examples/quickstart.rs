//! Quickstart: a device with an LED input, a `millis` and a temperature output, an RPC and an
//! event stream (the resources docs/server.md and the Arduino sketch use).
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With `THINGER_USER`, `THINGER_DEVICE` and `THINGER_CREDENTIAL` set it connects to
//! Thinger.io; without them it starts a local server in this process and prints `curl`
//! commands to try. Stops on Ctrl-C, or after `THINGER_QUICKSTART_SECONDS` seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thinger_examples::{LOCAL_USER, Target, init_logging, run_limit, wait_for_stop};
use thinger_std::ClientEvent;
use thinger_std::dsl::{input, input_output, output};
use thinger_std::resources::Resources;

#[derive(Deserialize)]
struct Add {
    a: f64,
    b: f64,
}

#[derive(Serialize)]
struct Sum {
    sum: f64,
}

#[derive(Serialize)]
struct Reading {
    celsius: f64,
    humidity: u8,
}

fn temperature(start: Instant) -> f64 {
    let t = start.elapsed().as_secs_f64();
    ((21.0 + 2.0 * (t / 30.0).sin()) * 10.0).round() / 10.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let device = std::env::var("THINGER_DEVICE").unwrap_or_else(|_| "quickstart".into());
    let target = Target::from_env_or_local(&device).await?;

    // The device: the same DSL as on a microcontroller.
    let start = Instant::now();
    let led = Arc::new(AtomicBool::new(false));
    let presses = Arc::new(AtomicU64::new(0));
    let mut thing = Resources::new();
    let led_state = led.clone();
    thing["led"] <<= input(move |on: bool| {
        led_state.store(on, Ordering::SeqCst);
        println!("💡 led is now {}", if on { "ON" } else { "off" });
    });
    // Milliseconds since start, like the Arduino sketch's `millis()`.
    thing["millis"] >>= output(move || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    thing["temperature"] >>= output(move || Reading { celsius: temperature(start), humidity: 48 });
    thing["add"] >>= input_output(|v: Add| Sum { sum: v.a + v.b });
    let counter = presses.clone();
    thing["button"] >>= output(move || counter.load(Ordering::SeqCst));

    let client = target.builder.resources(thing).spawn()?;
    let mut events = client.events();
    let connected = tokio::time::timeout(
        Duration::from_secs(20),
        events.wait_for(|e| {
            println!("  [{e}]");
            matches!(e, ClientEvent::Connected)
        }),
    )
    .await;
    if !matches!(connected, Ok(Some(_))) {
        return Err("the device did not connect within 20 s".into());
    }
    println!("✅ device {device} connected");

    if let Some(local) = &target.local {
        let base = format!("{}/v3/users/{LOCAL_USER}/devices/{device}/resources", local.http);
        // A self-check through the server, so the output shows the whole path works.
        let reply = local.server.run_resource(LOCAL_USER, &device, "temperature", None).await?;
        let json = reply.payload.map(|v| serde_json::to_string(&v).unwrap_or_default()).unwrap_or_default();
        println!("   self-check: the server read temperature = {json}");
        println!();
        println!("Try these while it runs (Ctrl-C to stop):");
        println!("  curl {}/v1/users/{LOCAL_USER}/devices", local.http);
        println!("  curl {base}");
        println!("  curl {base}/millis");
        println!("  curl {base}/temperature");
        println!("  curl -X POST -H 'Content-Type: application/json' -d '{{\"in\": true}}' {base}/led");
        println!("  curl -X POST -H 'Content-Type: application/json' -d '{{\"a\": 2, \"b\": 40}}' {base}/add");
        println!("  curl -N -H 'Accept: text/event-stream' '{base}/temperature?interval=1000'");
        println!("  curl -N -H 'Accept: text/event-stream' {base}/button");
        println!();
    } else {
        println!("   open the device in the Thinger.io console to use its resources");
    }

    // The event stream: every 3 s a "button press" is pushed to whoever streams `button`.
    let pusher = client.clone();
    let press_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3));
        tick.tick().await;
        loop {
            tick.tick().await;
            presses.fetch_add(1, Ordering::SeqCst);
            let _ = pusher.stream("button").await;
        }
    });
    let printer = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            println!("  [{event}]");
        }
    });

    wait_for_stop(run_limit("THINGER_QUICKSTART_SECONDS")).await;
    press_task.abort();
    client.shutdown().await;
    printer.abort();
    if let Some(local) = target.local {
        local.server.shutdown().await;
    }
    println!("led was {} at the end", if led.load(Ordering::SeqCst) { "ON" } else { "off" });
    Ok(())
}
