//! The cloud calls a device makes (RUN with a numeric call code): properties, buckets,
//! endpoints, device-to-device calls and sync locks.

use std::sync::Arc;
use std::time::Duration;

use thinger_core::iotmp::{FieldValue, Message, MessageType};
use thinger_core::pson::Value;
use tokio::sync::oneshot;

use super::state::Conn;
use crate::error::DeviceError;
use crate::hub::LockOutcome;
use crate::store::Op;
use crate::util::{F, encode, error, ok, owned};
use crate::vocab::DeviceRequest;
use crate::wire::{call_target, cloud_call};

/// The cloud-call code of subscribe (subscriptions use START_STREAM with this `F4`).
pub(super) const SUBSCRIBE_CODE: u64 = 8;

/// The reply itself when it fits the device's frame limit, else ERROR 413 in its place.
fn fit(frame: Vec<u8>, sid: u16, limit: usize) -> Vec<u8> {
    if frame.len() <= limit {
        frame
    } else {
        error(sid, 413, &format!("reply of {} bytes exceeds the device's frame limit of {limit} bytes", frame.len()))
    }
}

impl Conn {
    pub(super) fn on_cloud_call(&mut self, msg: &Message<'_>) {
        let sid = msg.stream_id;
        let Some((code, id)) = cloud_call(msg) else {
            self.out.send(error(sid, 400, "not a cloud call: no numeric call code in F4 or F2"));
            return;
        };
        let data = owned(msg.payload);
        let name = id.and_then(|f| f.as_str()).map(str::to_owned);
        match (code, name) {
            (1, Some(property)) => self.read_property(sid, property),
            (2, Some(property)) => self.set_property(sid, property, data.unwrap_or_default()),
            (3, _) => self.call_device(sid, id, data),
            (4, Some(endpoint)) => self.call_endpoint(sid, endpoint, data.unwrap_or_default()),
            (5, Some(bucket)) => self.write_bucket(sid, bucket, data.unwrap_or_default()),
            (6, Some(sync)) => self.lock_sync(sid, sync, data),
            (7, Some(sync)) => self.unlock_sync(sid, sync, data),
            (1 | 2 | 4 | 5 | 6 | 7, None) => {
                self.out.send(error(sid, 400, "cloud call without an id"));
            }
            (SUBSCRIBE_CODE, _) => {
                self.out.send(error(sid, 400, "subscriptions use START_STREAM"));
            }
            (other, _) => {
                self.out.send(error(sid, 400, &format!("unknown cloud call {other}")));
            }
        }
    }

    /// Sends a storage operation and answers the device from a task once it is done.
    pub(super) fn store_call<T: Send + 'static>(
        &self,
        sid: u16,
        make: impl FnOnce(oneshot::Sender<T>) -> Op,
        answer: impl FnOnce(T) -> Vec<u8> + Send + 'static,
    ) {
        let (tx, rx) = oneshot::channel();
        if !self.hub.store.send(make(tx)) {
            self.out.send(error(sid, 500, "storage unavailable"));
            return;
        }
        let out = self.out.clone();
        let limit = self.frame_limit;
        tokio::spawn(async move {
            let frame = match rx.await {
                Ok(result) => answer(result),
                Err(_) => error(sid, 500, "storage failure"),
            };
            out.send(fit(frame, sid, limit));
        });
    }

    pub(super) fn read_property(&self, sid: u16, property: String) {
        let (user, device) = (self.user.clone(), self.device.clone());
        self.store_call(
            sid,
            |reply| Op::GetProperty { user, device, property, reply },
            move |found| match found {
                Some(record) => ok(sid, Some(&record.value)),
                None => error(sid, 404, "unknown property"),
            },
        );
    }

    pub(super) fn set_property(&self, sid: u16, property: String, value: Value) {
        let (user, device) = (self.user.clone(), self.device.clone());
        self.store_call(
            sid,
            |reply| Op::SetProperty { user, device, property, value, reply },
            move |r| match r {
                Ok(()) => ok(sid, None),
                Err(e) => error(sid, 500, &e),
            },
        );
    }

    pub(super) fn write_bucket(&self, sid: u16, bucket: String, value: Value) {
        let (user, device) = (self.user.clone(), self.device.clone());
        self.store_call(
            sid,
            |reply| Op::AppendBucket { user, bucket, device, value, reply },
            move |r| match r {
                Ok(_) => ok(sid, None),
                Err(e) => error(sid, 500, &e),
            },
        );
    }

    pub(super) fn call_endpoint(&self, sid: u16, endpoint: String, data: Value) {
        let endpoints = &self.hub.config.endpoints;
        let response = match endpoints.iter().find(|e| e.name == endpoint) {
            Some(e) => e.response.clone(),
            None if endpoints.is_empty() => None,
            None => {
                self.out.send(error(sid, 404, "unknown endpoint"));
                return;
            }
        };
        let (user, device) = (self.user.clone(), self.device.clone());
        self.store_call(
            sid,
            |reply| Op::LogEndpoint { user, device, endpoint, data, reply },
            move |r| match r {
                Ok(()) => ok(sid, response.as_ref()),
                Err(e) => error(sid, 500, &e),
            },
        );
    }

    pub(super) fn call_device(&self, sid: u16, target: Option<FieldValue<'_>>, input: Option<Value>) {
        let Some((device, resource)) = call_target(target) else {
            self.out.send(error(sid, 400, "call device needs [device, resource]"));
            return;
        };
        let hub = Arc::clone(&self.hub);
        let out = self.out.clone();
        let user = self.user.clone();
        let limit = self.frame_limit;
        tokio::spawn(async move {
            let frame = match hub.request(&user, &device, DeviceRequest::Run { resource, input }).await {
                Ok(r) => {
                    let kind = if r.ok { MessageType::Ok } else { MessageType::Error };
                    encode(kind, sid, r.code.map(F::U), r.payload.as_ref().map(F::V), None)
                }
                Err(DeviceError::Timeout) => error(sid, 504, "device did not answer in time"),
                Err(DeviceError::TooLarge { .. }) => error(sid, 413, "request too large for the target device"),
                Err(_) => error(sid, 503, "device offline"),
            };
            out.send(fit(frame, sid, limit));
        });
    }

    pub(super) fn lock_name(&self, data: Option<&Value>) -> String {
        match data.and_then(|d| d.get("lock")) {
            Some(Value::Str(s)) => s.clone(),
            Some(v) if !v.is_null() => serde_json::to_string(v).unwrap_or_default(),
            _ => self.device.clone(),
        }
    }

    pub(super) fn lock_sync(&self, sid: u16, sync: String, data: Option<Value>) {
        let name = self.lock_name(data.as_ref());
        let param = |key: &str| data.as_ref().and_then(|d| d.get(key)).and_then(Value::as_u64);
        let slots = usize::try_from(param("slots").unwrap_or(1)).unwrap_or(usize::MAX).max(1);
        let timeout = param("timeout").filter(|s| *s > 0).map(Duration::from_secs);
        match self.hub.lock_sync(&self.user, &sync, &name, slots, self.conn_id) {
            LockOutcome::Granted => {
                self.out.send(ok(sid, None));
            }
            LockOutcome::Wait { waiter, granted } => {
                let hub = Arc::clone(&self.hub);
                let out = self.out.clone();
                let user = self.user.clone();
                tokio::spawn(async move {
                    let result = match timeout {
                        Some(t) => tokio::time::timeout(t, granted).await,
                        None => Ok(granted.await),
                    };
                    match result {
                        Ok(Ok(())) => {
                            out.send(ok(sid, None));
                        }
                        // The connection went away: its wait was dropped.
                        Ok(Err(_)) => {}
                        Err(_) => {
                            if hub.cancel_wait(&user, &sync, waiter) {
                                out.send(error(sid, 408, "lock not granted in time"));
                            } else {
                                out.send(ok(sid, None));
                            }
                        }
                    }
                });
            }
        }
    }

    pub(super) fn unlock_sync(&self, sid: u16, sync: String, data: Option<Value>) {
        let name = self.lock_name(data.as_ref());
        if self.hub.unlock_sync(&self.user, &sync, &name) {
            self.out.send(ok(sid, None));
        } else {
            self.out.send(error(sid, 409, "lock not held"));
        }
    }
}
