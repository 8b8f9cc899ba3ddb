//! A gateway: many virtual devices from one process, each with its own connection, resources
//! and offline queue, spread over all cores.
//!
//! ```text
//! cargo run --example gateway                       # 50 devices on a local server, 10 s
//! GATEWAY_DEVICES=500 GATEWAY_SECONDS=30 cargo run --release --example gateway
//! GATEWAY_DEVICES=1000 GATEWAY_SECONDS=1 GATEWAY_TRANSPORT=tcp cargo run --example gateway  # CI
//! ```
//!
//! Every device is a [`Client`](thinger_std::Client) whose [`Runner`](thinger_std::Runner)
//! is `tokio::spawn`ed on the multi-threaded runtime: `Runner::run` is a `Send` future. The
//! example fails unless every device connects. With `THINGER_USER` and `THINGER_CREDENTIAL` set, the devices are
//! `gw-0`, `gw-1`, … of that account on Thinger.io, all with that credential.

use std::time::Duration;

use thinger_examples::{LOCAL_USER, Target, init_logging, run_limit, wait_for_stop};
use thinger_std::dsl::{input, output};
use thinger_std::{Capacity, Client, ClientBuilder, Status, Transport};

fn sensor_value(id: usize) -> f64 {
    20.0 + (id % 10) as f64 / 2.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let count: usize = std::env::var("GATEWAY_DEVICES").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let limit = run_limit("GATEWAY_SECONDS").unwrap_or(Duration::from_secs(10));

    let plain_tcp = std::env::var("GATEWAY_TRANSPORT").is_ok_and(|t| t == "tcp");
    let cloud = std::env::var("THINGER_USER").ok().zip(std::env::var("THINGER_CREDENTIAL").ok());
    let local = match cloud {
        Some(_) => None,
        None => Target::local("gw-0").await?.local,
    };
    let builder_for = |i: usize| -> Result<ClientBuilder, Box<dyn std::error::Error>> {
        let name = format!("gw-{i}");
        Ok(match (&cloud, &local) {
            (Some((user, credential)), _) => Client::builder(user.clone(), name, credential.clone()),
            // Plain TCP to the local server, for many devices fast (CI).
            (None, Some(local)) if plain_tcp => Client::builder(LOCAL_USER, name, "demo-credential")
                .host("127.0.0.1")
                .port(local.server.tcp_addr().port())
                .transport(Transport::Tcp),
            (None, Some(local)) => local.builder(&name)?,
            (None, None) => return Err("no target".into()),
        })
    };

    let mut clients = Vec::with_capacity(count);
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        // Small frames and few resources per device: a 4 KiB session buffer and compact
        // session tables (about 6.4 KiB per idle device in all, docs/benchmarks-std.md).
        let (client, runner) = builder_for(i)?
            .buffer_size(4096)
            .capacity(Capacity::Compact)
            .resource("temperature", output(move || sensor_value(i)))
            .resource("relay", input(move |on: bool| println!("gw-{i}: relay {on}")))
            .build()?;
        tasks.push(tokio::spawn(runner.run()));
        clients.push(client);
    }

    // Wait for everyone, then queue readings once a second until time is up.
    let started = std::time::Instant::now();
    let up = loop {
        let up = clients.iter().filter(|c| c.status() == Status::Connected).count();
        if up == count || started.elapsed() > Duration::from_secs(30) {
            println!("{up} of {count} devices connected in {:?}", started.elapsed());
            break up;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if let Some(local) = &local {
        println!(
            "try: curl {}/v3/users/{LOCAL_USER}/devices/gw-{}/resources/temperature",
            local.http,
            count.saturating_sub(1)
        );
    }
    let writer = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            for (i, client) in clients.iter().enumerate() {
                let _ =
                    client.queue_bucket_write("gateway", &serde_json::json!({"device": i, "t": sensor_value(i)})).await;
            }
        }
    };
    tokio::select! {
        _ = wait_for_stop(Some(limit)) => {}
        _ = writer => {}
    }
    for client in &clients {
        let _ = client.with_timeout(Duration::from_secs(5)).flush().await;
    }
    for client in &clients {
        client.shutdown().await;
    }
    for task in tasks {
        task.await?;
    }

    if let Some(local) = local {
        let stored = local.server.bucket_data(LOCAL_USER, "gateway").await.len();
        println!("the server stored {stored} readings from {count} devices");
        local.server.shutdown().await;
    }
    if up < count {
        return Err(format!("only {up} of {count} devices connected").into());
    }
    Ok(())
}
