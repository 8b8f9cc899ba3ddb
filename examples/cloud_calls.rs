//! Cloud calls as `async fn`s: properties, buckets, endpoints, a call to another device, MQTT,
//! event subscriptions and sync locks.
//!
//! ```text
//! cargo run --example cloud_calls
//! ```
//!
//! Runs against a local server started in this process (set the `THINGER_*` variables to use
//! your Thinger.io account instead; the device-to-device call then needs a device named
//! `helper` with a `double` resource).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thinger_examples::{LOCAL_USER, Target, init_logging};
use thinger_std::dsl::input_output;
use thinger_std::{Error, MqttMessage};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Settings {
    interval_s: u32,
    unit: String,
}

#[derive(Debug, Serialize)]
struct Reading {
    celsius: f64,
    battery: u8,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let target = Target::from_env_or_local("cloud-calls").await?;

    // A second device to call, on the local server.
    let helper = match &target.local {
        Some(local) => {
            let helper = local.builder("helper")?.resource("double", input_output(|x: i64| x * 2)).spawn()?;
            helper.connected().await?;
            Some(helper)
        }
        None => None,
    };

    let client = target.builder.spawn()?;
    client.connected().await?;
    println!("connected");

    // Properties: any serde type in and out.
    let settings = Settings { interval_s: 30, unit: "C".into() };
    client.set_property("settings", &settings).await?;
    let back: Settings = client.get_property("settings").await?;
    println!("property settings = {back:?}");
    match client.get_property::<Settings>("no-such-property").await {
        Err(e @ Error::Server { .. }) => println!("missing property: {e}"),
        other => println!("missing property: {other:?}"),
    }

    // Bucket writes go through the offline queue and resolve when the server stored them.
    for i in 0..3 {
        client.write_bucket("readings", &Reading { celsius: 20.0 + f64::from(i), battery: 90 }).await?;
    }
    println!("3 bucket writes acknowledged");
    client.call_endpoint("alarm", Some(&serde_json::json!({"level": "warning"}))).await?;
    println!("endpoint alarm called");

    // Another device of the account.
    match client.call_device::<i64, i64>("helper", "double", Some(&21)).await {
        Ok(v) => println!("helper/double(21) = {v}"),
        Err(e) => println!("helper/double: {e}"),
    }

    // MQTT through the server's broker: subscribe, then publish to ourselves.
    let mut messages = client.mqtt_subscribe::<serde_json::Value>("sensors/#", thinger_std::QoS::AtMostOnce).await?;
    let mut received = None;
    for _ in 0..20 {
        client.mqtt_publish("sensors/room1", &serde_json::json!({"co2": 412})).await?;
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), messages.next()).await {
            received = Some(m?);
            break;
        }
    }
    if let Some(MqttMessage { topic, payload }) = received {
        println!("MQTT {topic}: {payload}");
    }

    // Property changes made elsewhere arrive as a stream.
    let mut changes = client.subscribe_property::<Settings>("settings", true).await?;
    if let Ok(Some(current)) = tokio::time::timeout(Duration::from_secs(2), changes.next()).await {
        println!("settings now: {:?}", current?);
    }
    if let Some(local) = &target.local {
        let new = thinger_core::pson::Value::from_iter([
            ("interval_s", thinger_core::pson::Value::from(60u32)),
            ("unit", thinger_core::pson::Value::from("F")),
        ]);
        local.server.set_property(LOCAL_USER, "cloud-calls", "settings", new).await?;
        if let Ok(Some(changed)) = tokio::time::timeout(Duration::from_secs(2), changes.next()).await {
            println!("settings changed to: {:?}", changed?);
        }
    }

    // A sync lock shared by the devices of the account.
    client.lock_sync("printer", "cloud-calls", 1, Some(Duration::from_secs(10))).await?;
    println!("lock taken");
    client.unlock_sync("printer", "cloud-calls").await?;
    println!("lock released");

    client.shutdown().await;
    if let Some(helper) = helper {
        helper.shutdown().await;
    }
    if let Some(local) = target.local {
        let stored = local.server.bucket_data(LOCAL_USER, "readings").await;
        println!("the server holds {} readings", stored.len());
        local.server.shutdown().await;
    }
    Ok(())
}
