//! Subscriptions the device opens (START_STREAM F4=8) and the hub events delivered to them.

use thinger_core::iotmp::{Message, MessageType};
use thinger_core::pson::Value;

use super::cloud::SUBSCRIBE_CODE;
use super::state::{Conn, Subscription};
use crate::hub::topic_matches;
use crate::store::Op;
use crate::util::{F, encode, error, ok, owned};
use crate::vocab::HubEvent;

impl Conn {
    pub(super) fn on_subscribe(&mut self, msg: &Message<'_>) {
        let sid = msg.stream_id;
        let params = match (msg.resource.and_then(|r| r.as_u64()), msg.parameters.and_then(|p| p.as_u64())) {
            (Some(SUBSCRIBE_CODE), _) => msg.parameters,
            (None, Some(SUBSCRIBE_CODE)) => msg.resource,
            _ => {
                self.out.send(error(sid, 404, "unknown stream resource"));
                return;
            }
        };
        let params = owned(params).unwrap_or_default();
        let Some(event) = params.get("event").and_then(Value::as_str) else {
            self.out.send(error(sid, 400, "subscription without an event"));
            return;
        };
        let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
        match event {
            "device_topic_publish" => {
                let Some(topic) = text("topic") else {
                    self.out.send(error(sid, 400, "topic subscription without a topic"));
                    return;
                };
                if text("scope").as_deref() == Some("publish") {
                    let retained = params.get("retained").and_then(Value::as_bool).unwrap_or(false);
                    self.subs.insert(sid, Subscription::Publish { topic, retained });
                    self.out.send(ok(sid, None));
                } else {
                    let retained = self.hub.retained_matching(&self.user, &topic);
                    self.subs.insert(sid, Subscription::Topic { filter: topic });
                    self.listen();
                    self.out.send(ok(sid, None));
                    for (topic, payload) in retained {
                        self.send_event(topic_frame(sid, &topic, &payload));
                    }
                }
            }
            "device_property_update" => {
                let filters = params.get("filters");
                let filter = |key: &str| filters.and_then(|f| f.get(key)).and_then(Value::as_str).map(str::to_owned);
                let property = filter("property");
                let device = filter("device").unwrap_or_else(|| self.device.clone());
                let current = params.get("current").and_then(Value::as_bool).unwrap_or(false);
                self.subs.insert(sid, Subscription::Property { device: device.clone(), property: property.clone() });
                self.listen();
                match property {
                    Some(property) if current => {
                        let user = self.user.clone();
                        self.store_call(
                            sid,
                            |reply| Op::GetProperty { user, device, property, reply },
                            move |found| ok(sid, found.as_ref().map(|r| &r.value)),
                        );
                    }
                    _ => {
                        self.out.send(ok(sid, None));
                    }
                }
            }
            name => {
                let filters = params.get("filters").cloned();
                self.subs.insert(sid, Subscription::Event { name: name.to_owned(), filters });
                self.listen();
                self.out.send(ok(sid, None));
            }
        }
    }

    pub(super) fn on_event(&mut self, event: &HubEvent) {
        let mut frames = Vec::new();
        for (sid, sub) in &self.subs {
            let payload = match (sub, event) {
                (Subscription::Topic { filter }, HubEvent::Topic { topic, payload, .. })
                    if topic_matches(filter, topic) =>
                {
                    frames.push(topic_frame(*sid, topic, payload));
                    continue;
                }
                (
                    Subscription::Property { device: d, property: p },
                    HubEvent::Property { device, property, value, .. },
                ) if d == device && p.as_ref().is_none_or(|p| p == property) => {
                    if p.is_some() {
                        value.clone()
                    } else {
                        pairs(&[("property", property.as_str().into()), ("value", value.clone())])
                    }
                }
                (Subscription::Event { name, filters }, HubEvent::Property { device, property, value, .. })
                    if name == "device_property_update" =>
                {
                    let body = pairs(&[
                        ("device", device.as_str().into()),
                        ("property", property.as_str().into()),
                        ("value", value.clone()),
                    ]);
                    if !filters_match(filters.as_ref(), &body) {
                        continue;
                    }
                    body
                }
                (Subscription::Event { name, filters }, HubEvent::State { device, connected, .. })
                    if name == "device_state_change" =>
                {
                    let state = if *connected { "connected" } else { "disconnected" };
                    let body = pairs(&[("device", device.as_str().into()), ("state", state.into())]);
                    if !filters_match(filters.as_ref(), &body) {
                        continue;
                    }
                    body
                }
                _ => continue,
            };
            frames.push(encode(MessageType::StreamData, *sid, None, Some(F::V(&payload)), None));
        }
        for f in frames {
            self.send_event(f);
        }
    }

    /// Joins the hub's subscribers of this user (once): only then are events sent here.
    fn listen(&mut self) {
        if !self.subscribed {
            self.subscribed = true;
            self.hub.subscribe(&self.user, self.conn_id, self.events.clone());
        }
    }

    /// Sends an event frame unless it would not fit the device's frame limit (then it is
    /// dropped and counted: the device would otherwise drop its session over it).
    fn send_event(&self, frame: Vec<u8>) {
        if frame.len() > self.frame_limit {
            self.hub.count_dropped_event();
            tracing::warn!(device = %self.device, size = frame.len(), limit = self.frame_limit, "event larger than the device's frame limit dropped");
            return;
        }
        self.out.send(frame);
    }
}

fn pairs(items: &[(&str, Value)]) -> Value {
    Value::Map(items.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

/// `STREAM_DATA F1=sid F3={"topic": T, "payload": P}`.
fn topic_frame(sid: u16, topic: &str, payload: &Value) -> Vec<u8> {
    let body = pairs(&[("topic", topic.into()), ("payload", payload.clone())]);
    encode(MessageType::StreamData, sid, None, Some(F::V(&body)), None)
}

/// Every key of the subscription's `filters` map must equal the event's field.
fn filters_match(filters: Option<&Value>, body: &Value) -> bool {
    match filters.and_then(Value::as_map) {
        None => true,
        Some(pairs) => pairs.iter().all(|(k, v)| body.get(k).is_some_and(|b| b.value_eq(v))),
    }
}
