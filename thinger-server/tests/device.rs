//! Device side of the server: authentication, keep-alive, protocol violations, transports,
//! the official client's exact bytes, and many devices at once.

mod common;

use std::time::{Duration, Instant};

use common::{Device, online};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson::Value;
use thinger_server::{DeviceError, GeneratedPki, Server, ServerConfig, TlsMode};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Builds a frame from a type and raw body bytes.
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend(varint(body.len() as u64));
    f.extend_from_slice(body);
    f
}

async fn plain() -> Server {
    Server::start(ServerConfig::local().tls(TlsMode::Off)).await.unwrap()
}

#[tokio::test]
async fn auth_ok_and_refused() {
    let config = ServerConfig::local().allow_any(false).credential("user1", "dev1", "secret").tls(TlsMode::Off);
    let server = Server::start(config).await.unwrap();

    let mut good = Device::tcp(server.tcp_addr()).await;
    let reply = good.connect("user1", "dev1", "secret").await;
    assert!(reply.is(MessageType::Ok));
    assert_eq!(reply.sid, 1);
    assert!(server.is_connected("user1", "dev1"));

    for (user, device, credential) in
        [("user1", "dev1", "wrong"), ("user1", "other", "secret"), ("nobody", "dev1", "secret")]
    {
        let mut bad = Device::tcp(server.tcp_addr()).await;
        let reply = bad.connect(user, device, credential).await;
        assert!(reply.is(MessageType::Error), "{user}/{device}/{credential} accepted");
        assert_eq!(reply.sid, 1);
        assert_eq!(reply.params, Some(Value::Uint(2)), "reason: bad credentials");
        assert!(bad.until_closed().await.is_empty(), "connection must close after a refusal");
    }
    // The refused attempts did not disturb the authenticated device.
    good.send_raw(&[0x05, 0x00]).await;
    assert_eq!(good.frame().await.raw, vec![0x05, 0x00]);
    server.shutdown().await;
}

#[tokio::test]
async fn credentials_file_and_bad_connect_parameters() {
    let dir = common::temp_dir("creds");
    let path = dir.join("devices.toml");
    std::fs::write(&path, "[[device]]\nuser = \"u\"\ndevice = \"d\"\ncredential = \"c\"\n").unwrap();
    let server =
        Server::start(ServerConfig::local().allow_any(false).credentials_file(&path).tls(TlsMode::Off)).await.unwrap();
    let mut d = Device::tcp(server.tcp_addr()).await;
    assert!(d.connect("u", "d", "c").await.is(MessageType::Ok));

    // Keep-alive out of range: ERROR reason 3.
    for ka in [0u64, 5000] {
        let mut d = Device::tcp(server.tcp_addr()).await;
        let reply = d.connect_ka("u", "d", "c", ka).await;
        assert!(reply.is(MessageType::Error));
        assert_eq!(reply.params, Some(Value::Uint(3)));
    }
    // Malformed credentials: not an array of three strings.
    let mut d = Device::tcp(server.tcp_addr()).await;
    d.send(common::enc(OutgoingMessage::new(MessageType::Connect, 9).payload(OutField::Pson(&"just-a-string")))).await;
    let reply = d.frame().await;
    assert!(reply.is(MessageType::Error));
    assert_eq!(reply.sid, 9);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn first_frame_must_be_connect() {
    let server = plain().await;
    let mut d = Device::tcp(server.tcp_addr()).await;
    d.send_raw(&[0x05, 0x00]).await;
    let frames = d.until_closed().await;
    assert_eq!(frames.len(), 1);
    assert!(frames[0].is(MessageType::Disconnect));
    assert_eq!(frames[0].params, Some(Value::Uint(4)));
    assert_eq!(server.connected_devices(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn keep_alive_is_answered_and_silent_devices_are_dropped() {
    let server = plain().await;
    // ka = 1 s: dropped after 1.15 s of silence.
    let mut silent = Device::tcp(server.tcp_addr()).await;
    assert!(silent.connect_ka("u", "silent", "x", 1).await.is(MessageType::Ok));
    // A device that keeps talking stays.
    let mut chatty = Device::tcp(server.tcp_addr()).await;
    assert!(chatty.connect_ka("u", "chatty", "x", 1).await.is(MessageType::Ok));
    let start = Instant::now();
    let chatty_task = tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            chatty.send_raw(&[0x05, 0x00]).await;
            assert_eq!(chatty.frame().await.raw, vec![0x05, 0x00], "KEEP_ALIVE answered with 05 00");
        }
        chatty
    });
    let frames = silent.until_closed().await;
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(1100), "dropped too early: {elapsed:?}");
    assert!(elapsed < Duration::from_millis(2000), "dropped too late: {elapsed:?}");
    assert!(frames.last().unwrap().is(MessageType::Disconnect));
    assert_eq!(frames.last().unwrap().params, Some(Value::Uint(8)));
    let _chatty = chatty_task.await.unwrap();
    assert!(server.is_connected("u", "chatty"));
    assert!(!server.is_connected("u", "silent"));
    server.shutdown().await;
}

#[tokio::test]
async fn default_keep_alive_is_configurable() {
    let server =
        Server::start(ServerConfig::local().tls(TlsMode::Off).keepalive(Duration::from_millis(200))).await.unwrap();
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let start = Instant::now();
    d.until_closed().await;
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(220) && elapsed < Duration::from_millis(1000), "{elapsed:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_oversized_frames_close_only_that_connection() {
    let server = Server::start(ServerConfig::local().tls(TlsMode::Off).max_frame_size(1024)).await.unwrap();
    let mut bystander = online(server.tcp_addr(), "u", "bystander").await;

    // A header varint longer than 5 bytes.
    let mut bad_varint = online(server.tcp_addr(), "u", "bad-varint").await;
    bad_varint.send_raw(&[0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).await;
    let frames = bad_varint.until_closed().await;
    assert!(frames.last().unwrap().is(MessageType::Disconnect));
    assert_eq!(frames.last().unwrap().params, Some(Value::Uint(4)));

    // A frame announcing 100,000 bytes: refused by its header, before any body arrives.
    let mut oversized = online(server.tcp_addr(), "u", "oversized").await;
    oversized.send_raw(&[0x06, 0xa0, 0x8d, 0x06]).await;
    let frames = oversized.until_closed().await;
    let last = frames.last().unwrap();
    assert!(last.is(MessageType::Disconnect));
    assert!(last.payload.as_ref().unwrap().as_str().unwrap().contains("exceeds"), "{last:?}");

    // Oversized before authentication too.
    let mut early = Device::tcp(server.tcp_addr()).await;
    early.send_raw(&[0x03, 0xa0, 0x8d, 0x06]).await;
    assert!(early.until_closed().await.last().unwrap().is(MessageType::Disconnect));

    // Frames it cannot use but that keep the connection: unknown type, bad PSON in a
    // request (answered ERROR with the stream id), legacy PSON wire type.
    bystander.send_raw(&hex("63020818")).await;
    bystander.send_raw(&frame(6, &[0x08, 0x07, 0x1a, 0x85, b'a'])).await;
    let err = bystander.frame().await;
    assert!(err.is(MessageType::Error));
    assert_eq!(err.sid, 7);
    assert_eq!(err.params, Some(Value::Uint(400)));
    bystander.send_raw(&frame(6, &[0x08, 0x0b, 0x19, 0x01])).await;
    let err = bystander.frame().await;
    assert!(err.is(MessageType::Error));
    assert_eq!(err.sid, 11);
    // A reply matching nothing is dropped.
    bystander.send_raw(&[0x01, 0x03, 0x08, 0xd2, 0x09]).await;

    bystander.send_raw(&[0x05, 0x00]).await;
    assert_eq!(bystander.frame().await.raw, vec![0x05, 0x00]);
    assert!(server.is_connected("u", "bystander"));
    assert_eq!(server.connected_devices(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn official_client_bytes_are_accepted() {
    let server = plain().await;
    let mut d = Device::tcp(server.tcp_addr()).await;
    // CONNECT with F3 before F1, no F2: the exact bytes of the official Linux client.
    d.send_raw(&hex("03181ae385757365723184646576318673656372657408e78a01")).await;
    assert_eq!(d.frame().await.raw, hex("010408e78a01"), "OK F1=17767");
    assert!(server.is_connected("user1", "dev1"));

    // Its three subscriptions, fields in the order F2, F4, F1.
    server.set_property("user1", "dev1", "cfg", thinger_core::pson!({"rate": 5})).await.unwrap();
    d.send_raw(&hex("084312c38763757272656e7461856576656e74966465766963655f70726f70657274795f7570646174658766696c74657273c18870726f706572747983636667200808c647")).await;
    let ok = d.frame().await;
    assert!(ok.is(MessageType::Ok));
    assert_eq!(ok.sid, 9158);
    assert_eq!(ok.payload, Some(thinger_core::pson!({"rate": 5})), "current:true returns the value");
    d.send_raw(&hex("084512c4856576656e74946465766963655f746f7069635f7075626c69736883716f73018573636f70658973756273637269626585746f70696386686f6d652f74200808e9b002")).await;
    assert_eq!(d.frame().await.raw, [vec![0x01, 0x04, 0x08], varint(39017)].concat());
    d.send_raw(&hex("082212c1856576656e74936465766963655f73746174655f6368616e6765200808f39001")).await;
    assert_eq!(d.frame().await.raw, [vec![0x01, 0x04, 0x08], varint(18547)].concat());

    // Replies with F3 before F1 and integers as varints, as the official client sends them.
    let device = tokio::spawn(async move {
        let run = d.frame().await;
        assert!(run.is(MessageType::Run));
        assert_eq!(run.resource, Some(Value::from("millis")));
        let body = [vec![0x18, 0xe1, 0x1d, 0x08], varint(run.sid.into())].concat();
        d.send_raw(&frame(1, &body)).await;
        let run = d.frame().await;
        assert_eq!(run.resource, Some(Value::from("fail")));
        let body = [hex("10a2031ac1856572726f7286746561706f7408"), varint(run.sid.into())].concat();
        d.send_raw(&frame(2, &body)).await;
        let run = d.frame().await;
        assert_eq!(run.resource, Some(Value::from("nope")));
        d.send_raw(&frame(2, &[vec![0x08], varint(run.sid.into())].concat())).await;
        d
    });
    let reply = server.run_resource("user1", "dev1", "millis", None).await.unwrap();
    assert_eq!(reply.payload, Some(Value::Uint(3809)));
    let err = server.run_resource("user1", "dev1", "fail", None).await.unwrap_err();
    assert_eq!(err, DeviceError::Failed { code: Some(418), message: Some("teapot".into()) });
    assert_eq!(err.status(), 418);
    let err = server.run_resource("user1", "dev1", "nope", None).await.unwrap_err();
    assert_eq!(err.status(), 404);
    let mut d = device.await.unwrap();

    // The official client's DISCONNECT ends the session.
    d.send_raw(&[0x04, 0x00]).await;
    d.until_closed().await;
    assert!(!server.is_connected("user1", "dev1"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_new_connection_replaces_the_old_one() {
    let server = plain().await;
    let mut first = online(server.tcp_addr(), "u", "d").await;
    let _second = online(server.tcp_addr(), "u", "d").await;
    let frames = first.until_closed().await;
    assert!(frames.last().unwrap().is(MessageType::Disconnect));
    assert_eq!(frames.last().unwrap().params, Some(Value::Uint(6)));
    assert!(server.is_connected("u", "d"));
    assert_eq!(server.connected_devices(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn device_limit_refuses_extra_devices() {
    let server = Server::start(ServerConfig::local().tls(TlsMode::Off).max_devices(2)).await.unwrap();
    let _a = online(server.tcp_addr(), "u", "a").await;
    let _b = online(server.tcp_addr(), "u", "b").await;
    let mut c = Device::tcp(server.tcp_addr()).await;
    let reply = c.connect("u", "c", "x").await;
    assert!(reply.is(MessageType::Error));
    assert_eq!(reply.params, Some(Value::Uint(503)));
    assert_eq!(server.connected_devices(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_devices_at_once() {
    let server = plain().await;
    let addr = server.tcp_addr();
    let start = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            tokio::spawn(async move {
                let mut d = online(addr, "fleet", &format!("dev{i}")).await;
                d.send_raw(&[0x05, 0x00]).await;
                assert_eq!(d.frame().await.raw, vec![0x05, 0x00]);
                d
            })
        })
        .collect();
    let mut devices = Vec::new();
    for t in tasks {
        devices.push(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    eprintln!("200 devices connected and answered in {elapsed:?}");
    assert_eq!(server.connected_devices(), 200);
    let (status, list) = common::http(server.http_addr(), "GET", "/v1/users/fleet/devices", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 200);
    assert!(list.as_array().unwrap().iter().all(|d| d["connection"]["active"] == true));
    drop(devices);
    server.shutdown().await;
}

#[tokio::test]
async fn tls_with_the_generated_ca() {
    let config = ServerConfig::local().tls(TlsMode::Generate { names: vec!["thinger.test".into()] });
    let server = Server::start(config).await.unwrap();
    let ca = server.ca_cert_pem().unwrap();
    let addr = server.tls_addr().unwrap();
    for name in ["localhost", "thinger.test", "127.0.0.1"] {
        let mut d = Device::tls(addr, &ca, name).await.unwrap();
        assert!(d.connect("u", name, "x").await.is(MessageType::Ok), "{name}");
        d.send_raw(&[0x05, 0x00]).await;
        assert_eq!(d.frame().await.raw, vec![0x05, 0x00]);
    }
    // A client trusting another CA refuses the server.
    let other = GeneratedPki::generate(&[]).unwrap();
    assert!(Device::tls(addr, &other.ca_pem, "localhost").await.is_err());
    // A name the certificate does not carry is refused too.
    assert!(Device::tls(addr, &ca, "example.com").await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn tls_with_certificate_files_and_ca_out() {
    let dir = common::temp_dir("tls-files");
    let pki = GeneratedPki::generate(&[]).unwrap();
    std::fs::write(dir.join("cert.pem"), &pki.server_cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &pki.server_key_pem).unwrap();
    let config = ServerConfig::local().tls(TlsMode::Files { cert: dir.join("cert.pem"), key: dir.join("key.pem") });
    let server = Server::start(config).await.unwrap();
    assert!(server.ca_cert_pem().is_none());
    let mut d = Device::tls(server.tls_addr().unwrap(), &pki.ca_pem, "localhost").await.unwrap();
    assert!(d.connect("u", "d", "x").await.is(MessageType::Ok));
    server.shutdown().await;

    let ca_path = dir.join("ca.pem");
    let server = Server::start(ServerConfig::local().ca_out(&ca_path)).await.unwrap();
    assert_eq!(std::fs::read_to_string(&ca_path).unwrap(), server.ca_cert_pem().unwrap());
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn websocket_transport() {
    let server = plain().await;
    let mut d = Device::ws(&server.ws_url()).await;
    assert!(d.connect("u", "ws-dev", "x").await.is(MessageType::Ok));
    d.send_raw(&[0x05, 0x00]).await;
    assert_eq!(d.frame().await.raw, vec![0x05, 0x00]);
    // Two frames in one binary message.
    d.send_raw(&[0x05, 0x00, 0x05, 0x00]).await;
    assert_eq!(d.frame().await.raw, vec![0x05, 0x00]);
    assert_eq!(d.frame().await.raw, vec![0x05, 0x00]);
    let device = tokio::spawn(async move {
        d.answer_run(Some(&Value::from("pong"))).await;
        d
    });
    let reply = server.run_resource("u", "ws-dev", "ping", None).await.unwrap();
    assert_eq!(reply.payload, Some(Value::from("pong")));
    let _d = device.await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_disconnects_devices() {
    let server = plain().await;
    let mut d = online(server.tcp_addr(), "u", "d").await;
    let waiter = tokio::spawn(async move { d.until_closed().await });
    server.shutdown().await;
    let frames = waiter.await.unwrap();
    assert!(frames.last().unwrap().is(MessageType::Disconnect));
    assert_eq!(frames.last().unwrap().params, Some(Value::Uint(7)));
}

#[tokio::test]
async fn disconnect_device_from_the_server() {
    let server = plain().await;
    let mut d = online(server.tcp_addr(), "u", "d").await;
    assert!(server.disconnect_device("u", "d"));
    assert!(d.until_closed().await.last().unwrap().is(MessageType::Disconnect));
    assert!(!server.disconnect_device("u", "d"));
    server.shutdown().await;
}
