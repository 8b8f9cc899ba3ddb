//! The server's byte-stream API (`Server::open_stream`) against a scripted device over real
//! loopback sockets: opening with parameters, both directions, refusals, closes from either
//! side, the per-stream buffer limit and the per-device stream cap.

mod common;

use std::time::Duration;

use common::gateway;
use common::{enc, online};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson;
use thinger_core::pson::Value;
use thinger_server::{DeviceError, Limits, Server, ServerConfig, StreamError, TlsMode};

async fn start(limits: Limits) -> Server {
    Server::start(ServerConfig::local().tls(TlsMode::Off).limits(limits).device_timeout(Duration::from_secs(3)))
        .await
        .unwrap()
}

#[tokio::test]
async fn terminal_stream_echoes_and_closes_both_ways() {
    let server = start(Limits::default()).await;
    let dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let mut s = server.open_stream("u", "gw", "$terminal/t1", Some(pson!({"cols": 100, "rows": 30}))).await.unwrap();
    assert_eq!(dev.lock().unwrap().sizes.get("t1"), Some(&(100, 30)));
    s.send_bytes(b"echo hi\n").await.unwrap();
    assert_eq!(s.recv_bytes().await.unwrap(), b"echo hi\n");
    // A write bigger than a frame is split, and arrives whole.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    s.send_bytes(&big).await.unwrap();
    let mut got = Vec::new();
    while got.len() < big.len() {
        got.extend(s.recv_bytes().await.unwrap());
    }
    assert_eq!(got, big);
    let sid = s.stream_id();
    s.close();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(dev.lock().unwrap().stopped.contains(&sid));
    server.shutdown().await;
}

#[tokio::test]
async fn refused_offline_unknown_and_device_stop() {
    let server = start(Limits::default()).await;
    // Unknown device, then a device that is configured but offline.
    let e = server.open_stream("u", "nobody", "$terminal/x", None).await.err().unwrap();
    assert_eq!(e, StreamError::Open(DeviceError::UnknownDevice));
    let _dev = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    // The device refuses a proxy target outside its allow-list with ERROR 403.
    let params = pson!({"protocol": "tcp", "address": "10.1.2.3", "port": 22, "secure": false});
    let e = server.open_stream("u", "gw", "$proxy/p1", Some(params)).await.err().unwrap();
    assert!(matches!(&e, StreamError::Open(DeviceError::Failed { code: Some(403), .. })), "{e:?}");
    assert_eq!(e.status(), 403);
    // A streamed command: the device sends its output and exit code, then STOP_STREAM.
    let mut cmd = server.open_stream("u", "gw", "$cmd/c1", Some(pson!({"cmd": "ls", "timeout": 5}))).await.unwrap();
    assert_eq!(cmd.recv().await.unwrap().get("out"), Some(&Value::Bytes(b"ran ls\n".to_vec())));
    assert!(cmd.recv().await.unwrap().get("err").is_some());
    assert_eq!(cmd.recv().await.unwrap().get("exit").and_then(Value::as_u64), Some(3));
    assert_eq!(cmd.recv().await.err(), Some(StreamError::Closed));
    assert_eq!(cmd.send_bytes(b"late").await.err(), Some(StreamError::Closed));
    server.disconnect_device("u", "gw");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = server.open_stream("u", "gw", "$terminal/x", None).await.err().unwrap();
    assert_eq!(e, StreamError::Open(DeviceError::Offline));
    server.shutdown().await;
}

#[tokio::test]
async fn caller_that_does_not_read_is_cut_off_and_others_are_unharmed() {
    let limits = Limits {
        stream_buffer: 256 * 1024,
        stream_stall_timeout: Duration::from_millis(300),
        max_device_streams: 2,
        ..Limits::default()
    };
    let server = start(limits).await;
    let mut dev = online(server.tcp_addr(), "u", "flood").await;
    let other = gateway::spawn(server.tcp_addr(), "u", "gw").await;
    let open = server.open_stream("u", "flood", "$terminal/a", None);
    let answer = async {
        let f = dev.frame().await;
        assert!(f.is(MessageType::StartStream));
        assert_eq!(f.resource.as_ref().and_then(Value::as_str), Some("$terminal/a"));
        dev.send(enc(OutgoingMessage::new(MessageType::Ok, f.sid))).await;
        f.sid
    };
    let (stream, sid) = tokio::join!(open, answer);
    let mut stream = stream.unwrap();
    // 1 MiB the caller does not read: the server stops reading from the device at half the
    // buffer, and stops the stream once the caller stayed behind for the stall timeout.
    let chunk = Value::Bytes(vec![7; 16 * 1024]);
    for _ in 0..64 {
        dev.send(enc(OutgoingMessage::new(MessageType::StreamData, sid).payload(OutField::Pson(&chunk)))).await;
    }
    let stop = loop {
        let f = dev.frame().await;
        if f.is(MessageType::StopStream) {
            break f;
        }
    };
    assert_eq!(stop.sid, sid);
    let mut got = 0;
    let end = loop {
        match stream.recv_bytes().await {
            Ok(b) => got += b.len(),
            Err(e) => break e,
        }
    };
    assert_eq!(end, StreamError::Overflow { limit: 256 * 1024 });
    assert!(got <= 256 * 1024, "{got}");
    // The other device's streams work meanwhile.
    let mut t = server.open_stream("u", "gw", "$terminal/b", None).await.unwrap();
    t.send_bytes(b"ok").await.unwrap();
    assert_eq!(t.recv_bytes().await.unwrap(), b"ok");
    // The per-device cap: two open, the third refused with a typed error.
    let _t2 = server.open_stream("u", "gw", "$terminal/c", None).await.unwrap();
    let e = server.open_stream("u", "gw", "$terminal/d", None).await.err().unwrap();
    assert_eq!(e, StreamError::Open(DeviceError::TooManyStreams { limit: 2 }));
    assert_eq!(e.status(), 429);
    drop(t);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!other.lock().unwrap().stopped.is_empty());
    let _t3 = server.open_stream("u", "gw", "$terminal/d", None).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn device_that_never_answers_times_out_and_disconnect_ends_streams() {
    let server = start(Limits::default()).await;
    let mut dev = online(server.tcp_addr(), "u", "mute").await;
    let e = server.open_stream("u", "mute", "$terminal/a", None).await.err().unwrap();
    assert_eq!(e, StreamError::Open(DeviceError::Timeout));
    let start = dev.frame().await;
    assert!(start.is(MessageType::StartStream));
    // Its late OK is answered with STOP_STREAM: nothing stays open on the device.
    dev.send(enc(OutgoingMessage::new(MessageType::Ok, start.sid))).await;
    let stop = dev.frame().await;
    assert!(stop.is(MessageType::StopStream) && stop.sid == start.sid, "{stop:?}");
    // An open stream sees the device's disconnect.
    let open = server.open_stream("u", "mute", "$terminal/b", None);
    let answer = async {
        let f = dev.frame().await;
        dev.send(enc(OutgoingMessage::new(MessageType::Ok, f.sid))).await;
    };
    let (s, ()) = tokio::join!(open, answer);
    let mut s = s.unwrap();
    drop(dev);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), s.recv()).await.unwrap().err(),
        Some(StreamError::Disconnected)
    );
    server.shutdown().await;
}

/// A caller that reads slowly is not cut off: the server stops reading from the device while
/// the caller is behind (TCP pushes back), and every byte arrives.
#[tokio::test]
async fn slow_caller_gets_every_byte_through_backpressure() {
    let limits = Limits { stream_buffer: 128 * 1024, ..Limits::default() };
    let server = start(limits).await;
    let mut dev = online(server.tcp_addr(), "u", "fast").await;
    let open = server.open_stream("u", "fast", "$proxy/a", None);
    let answer = async {
        let f = dev.frame().await;
        dev.send(enc(OutgoingMessage::new(MessageType::Ok, f.sid))).await;
        f.sid
    };
    let (stream, sid) = tokio::join!(open, answer);
    let mut stream = stream.unwrap();
    let total = 2 * 1024 * 1024;
    let flood = tokio::spawn(async move {
        let chunk = Value::Bytes(vec![1; 16 * 1024]);
        for _ in 0..total / (16 * 1024) {
            dev.send(enc(OutgoingMessage::new(MessageType::StreamData, sid).payload(OutField::Pson(&chunk)))).await;
        }
        dev
    });
    let mut got = 0;
    while got < total {
        got += stream.recv_bytes().await.unwrap().len();
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert_eq!(got, total);
    let _dev = flood.await.unwrap();
    server.shutdown().await;
}
