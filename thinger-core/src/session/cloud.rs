use crate::pson::{EncodePson, Encoder, Error, Sink};

/// Cloud-call codes: the numeric `F4` of a device → server RUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum CloudCall {
    /// Read a property (F2 = property id; reply F3 = value).
    ReadProperty = 1,
    /// Set a property (F2 = property id, F3 = value).
    SetProperty = 2,
    /// Call another device's resource (F2 = [device, resource], F3 = input).
    CallDevice = 3,
    /// Call an endpoint (F2 = endpoint id, F3 = data).
    CallEndpoint = 4,
    /// Append to a data bucket (F2 = bucket id, F3 = record).
    WriteBucket = 5,
    /// Take a sync lock (F2 = sync id, F3 = {lock, slots, timeout}).
    LockSync = 6,
    /// Release a sync lock (F2 = sync id, F3 = {lock}).
    UnlockSync = 7,
}

/// The `F4` code of a subscription START_STREAM.
pub(crate) const SUBSCRIBE_CODE: u64 = 8;

/// A server-side subscription the device keeps open; re-established after every reconnect.
///
/// Its parameters are written with keys in ascending order, as the official client does, so
/// the bytes match.
///
/// ```
/// use thinger_core::session::Subscription;
/// let mut buf = [0u8; 64];
/// let sub = Subscription::Event { name: "device_state_change" };
/// let n = thinger_core::pson::encode_to_slice(&sub, &mut buf).unwrap();
/// assert_eq!(&buf[..3], &[0xc1, 0x85, b'e']); // {"event": "device_state_change"}
/// # let _ = n;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Subscription<'a> {
    /// Any server event by name.
    Event {
        /// Event name, e.g. `device_state_change`.
        name: &'a str,
    },
    /// Changes of one device property.
    Property {
        /// Property id.
        property: &'a str,
        /// Ask for the current value right away (in the OK).
        current: bool,
    },
    /// MQTT messages on a topic (each event is `{"topic": T, "payload": P}`).
    TopicSubscribe {
        /// Topic filter.
        topic: &'a str,
        /// QoS (sent only when above 0).
        qos: u8,
    },
    /// A stream to publish on a topic: `Session::publish` sends each message.
    TopicPublish {
        /// Topic.
        topic: &'a str,
        /// QoS (sent only when above 0).
        qos: u8,
        /// Retained flag (sent only when set).
        retained: bool,
    },
}

impl Subscription<'_> {
    /// Splits the data of a [`Subscription::TopicSubscribe`] event, `{"topic": T,
    /// "payload": P}`, into its topic and payload.
    ///
    /// ```
    /// use thinger_core::pson::PsonRef;
    /// use thinger_core::session::Subscription;
    /// // {"payload": 21, "topic": "a/b"}
    /// let data = [0xc2, 0x87, b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0x15, 0x85, b't', b'o', b'p', b'i', b'c', 0x83, b'a', b'/', b'b'];
    /// let (topic, payload) = Subscription::topic_message(PsonRef::decode(&data).unwrap()).unwrap();
    /// assert_eq!((topic, payload.and_then(|p| p.as_u64())), ("a/b", Some(21)));
    /// ```
    pub fn topic_message(data: crate::pson::PsonRef<'_>) -> Option<(&str, Option<crate::pson::PsonRef<'_>>)> {
        let topic = data.get("topic")?.as_str()?;
        Some((topic, data.get("payload")))
    }
}

impl EncodePson for Subscription<'_> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        match *self {
            Subscription::Event { name } => {
                enc.map_header(1)?;
                enc.str("event")?;
                enc.str(name)
            }
            Subscription::Property { property, current } => {
                enc.map_header(2 + usize::from(current))?;
                if current {
                    enc.str("current")?;
                    enc.bool(true)?;
                }
                enc.str("event")?;
                enc.str("device_property_update")?;
                enc.str("filters")?;
                enc.map_header(1)?;
                enc.str("property")?;
                enc.str(property)
            }
            Subscription::TopicSubscribe { topic, qos } => {
                enc.map_header(3 + usize::from(qos > 0))?;
                enc.str("event")?;
                enc.str("device_topic_publish")?;
                if qos > 0 {
                    enc.str("qos")?;
                    enc.u64(u64::from(qos))?;
                }
                enc.str("scope")?;
                enc.str("subscribe")?;
                enc.str("topic")?;
                enc.str(topic)
            }
            Subscription::TopicPublish { topic, qos, retained } => {
                enc.map_header(3 + usize::from(qos > 0) + usize::from(retained))?;
                enc.str("event")?;
                enc.str("device_topic_publish")?;
                if qos > 0 {
                    enc.str("qos")?;
                    enc.u64(u64::from(qos))?;
                }
                if retained {
                    enc.str("retained")?;
                    enc.bool(true)?;
                }
                enc.str("scope")?;
                enc.str("publish")?;
                enc.str("topic")?;
                enc.str(topic)
            }
        }
    }
}

/// The payload of a lock-sync call: `{"lock": id, "slots": n (if > 1), "timeout": s (if > 0)}`.
#[cfg_attr(not(feature = "cloud"), allow(dead_code))]
pub(crate) struct LockRequest<'a> {
    pub(crate) lock: &'a str,
    pub(crate) slots: u32,
    pub(crate) timeout_s: u32,
}

impl EncodePson for LockRequest<'_> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        enc.map_header(1 + usize::from(self.slots > 1) + usize::from(self.timeout_s > 0))?;
        enc.str("lock")?;
        enc.str(self.lock)?;
        if self.slots > 1 {
            enc.str("slots")?;
            enc.u64(u64::from(self.slots))?;
        }
        if self.timeout_s > 0 {
            enc.str("timeout")?;
            enc.u64(u64::from(self.timeout_s))?;
        }
        Ok(())
    }
}
