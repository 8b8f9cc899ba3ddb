//! Storage of properties, buckets and the endpoint log: in memory, or in a redb database.
//!
//! One thread owns the storage and applies operations in the order they were sent, so the
//! calls of one device take effect in the order the device made them. With redb, a run of
//! consecutive writes is committed in one durable transaction (group commit) and only then
//! are the writers answered: a bucket write is acknowledged once it is on disk.

// redb's error type is large; it only travels on the (rare) failure path.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use thinger_core::pson::Value;
use tokio::sync::{mpsc, oneshot};

use crate::error::ServerError;
use crate::util::now_ms;
use crate::vocab::HubEvent;

const PROPS: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("properties");
const BUCKET_META: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("bucket_meta");
const BUCKET_DATA: TableDefinition<(&str, &str, u64), &[u8]> = TableDefinition::new("bucket_data");
const ENDPOINTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("endpoint_calls");

/// Most operations applied in one database transaction.
const MAX_BATCH: usize = 512;

/// A stored property.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PropertyRecord {
    pub value: Value,
    pub created: u64,
    pub modified: u64,
}

/// One record of a bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BucketRecord {
    pub ts: u64,
    pub value: Value,
    pub device: String,
}

/// Summary of a bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BucketInfo {
    pub bucket: String,
    pub created: u64,
    pub count: u64,
    pub last_ts: u64,
    pub device: String,
    seq: u64,
}

/// One endpoint call a device made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EndpointCall {
    pub ts: u64,
    pub device: String,
    pub endpoint: String,
    pub data: Value,
}

/// Which records of a bucket to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BucketQuery {
    pub items: usize,
    pub min_ts: Option<u64>,
    pub max_ts: Option<u64>,
    pub descending: bool,
}

type Reply<T> = oneshot::Sender<T>;

/// An operation for the storage thread.
pub(crate) enum Op {
    GetProperty {
        user: String,
        device: String,
        property: String,
        reply: Reply<Option<PropertyRecord>>,
    },
    ListProperties {
        user: String,
        device: String,
        reply: Reply<Vec<(String, PropertyRecord)>>,
    },
    SetProperty {
        user: String,
        device: String,
        property: String,
        value: Value,
        reply: Reply<Result<(), String>>,
    },
    /// Removes a property; `Ok(false)` when there was none.
    DeleteProperty {
        user: String,
        device: String,
        property: String,
        reply: Reply<Result<bool, String>>,
    },
    AppendBucket {
        user: String,
        bucket: String,
        device: String,
        value: Value,
        reply: Reply<Result<u64, String>>,
    },
    ListBuckets {
        user: String,
        reply: Reply<Vec<BucketInfo>>,
    },
    ReadBucket {
        user: String,
        bucket: String,
        query: BucketQuery,
        reply: Reply<Option<Vec<BucketRecord>>>,
    },
    LogEndpoint {
        user: String,
        device: String,
        endpoint: String,
        data: Value,
        reply: Reply<Result<(), String>>,
    },
    ListEndpointCalls {
        user: String,
        reply: Reply<Vec<EndpointCall>>,
    },
    Shutdown {
        done: Reply<()>,
    },
}

impl Op {
    fn is_write(&self) -> bool {
        matches!(
            self,
            Op::SetProperty { .. } | Op::DeleteProperty { .. } | Op::AppendBucket { .. } | Op::LogEndpoint { .. }
        )
    }
}

/// Handle to the storage thread.
#[derive(Clone)]
pub(crate) struct Store {
    tx: mpsc::UnboundedSender<Op>,
}

impl Store {
    /// Opens the storage (a database file `thinger.redb` in `data_dir`, or memory) and starts
    /// its thread. Committed property changes are reported on `events`, each with the
    /// writer's reply, which the receiver sends once the change has been dispatched.
    pub(crate) fn open(
        data_dir: Option<&Path>,
        events: mpsc::UnboundedSender<Committed>,
    ) -> Result<Store, ServerError> {
        let backend = match data_dir {
            None => Backend::Memory(Box::default()),
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| ServerError::io(format!("cannot create data dir {}", dir.display()), e))?;
                let db = Database::create(dir.join("thinger.redb"))
                    .map_err(|e| ServerError::Storage(format!("cannot open database in {}: {e}", dir.display())))?;
                create_tables(&db).map_err(|e| ServerError::Storage(e.to_string()))?;
                Backend::Redb(Box::new(db))
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("thinger-store".into())
            .spawn(move || run(backend, rx, events))
            .map_err(|e| ServerError::io("cannot start the storage thread", e))?;
        Ok(Store { tx })
    }

    /// Queues an operation; false when the storage thread is gone.
    pub(crate) fn send(&self, op: Op) -> bool {
        self.tx.send(op).is_ok()
    }

    /// Stops the thread after the operations queued before, closing the database.
    pub(crate) async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Op::Shutdown { done }).is_ok() {
            let _ = wait.await;
        }
    }

    /// Sends an operation built around a reply channel and waits for the answer.
    pub(crate) async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Option<T> {
        let (reply, wait) = oneshot::channel();
        if !self.send(make(reply)) {
            return None;
        }
        wait.await.ok()
    }
}

enum Backend {
    Memory(Box<Memory>),
    Redb(Box<Database>),
}

#[derive(Default)]
struct Memory {
    props: BTreeMap<(String, String, String), PropertyRecord>,
    buckets: BTreeMap<(String, String), (BucketInfo, Vec<BucketRecord>)>,
    endpoints: BTreeMap<String, Vec<EndpointCall>>,
}

fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let tx = db.begin_write()?;
    {
        tx.open_table(PROPS)?;
        tx.open_table(BUCKET_META)?;
        tx.open_table(BUCKET_DATA)?;
        tx.open_table(ENDPOINTS)?;
    }
    tx.commit()?;
    Ok(())
}

/// Monotonic server timestamps in milliseconds.
struct Clock {
    last: u64,
}

impl Clock {
    fn now(&mut self) -> u64 {
        self.last = now_ms().max(self.last);
        self.last
    }
}

fn run(mut backend: Backend, mut rx: mpsc::UnboundedReceiver<Op>, events: mpsc::UnboundedSender<Committed>) {
    let mut clock = Clock { last: 0 };
    let mut queued: Option<Op> = None;
    loop {
        let op = match queued.take() {
            Some(op) => op,
            None => match rx.blocking_recv() {
                Some(op) => op,
                None => return,
            },
        };
        if let Op::Shutdown { done } = op {
            drop(backend);
            let _ = done.send(());
            return;
        }
        if !op.is_write() {
            match &mut backend {
                Backend::Memory(m) => read_memory(m, op),
                Backend::Redb(db) => read_redb(db, op),
            }
            continue;
        }
        // A run of consecutive writes goes into one transaction.
        let mut batch = vec![op];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) if next.is_write() => batch.push(next),
                Ok(next) => {
                    queued = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        let outcome = match &mut backend {
            Backend::Memory(m) => {
                Ok(batch.into_iter().filter_map(|op| write_memory(m, &mut clock, op)).collect::<Vec<_>>())
            }
            Backend::Redb(db) => write_redb(db, &mut clock, batch),
        };
        match outcome {
            Ok(done) => {
                for w in done {
                    w.finish(Ok(()), &events);
                }
            }
            Err((done, error)) => {
                tracing::error!(%error, "storage commit failed");
                for w in done {
                    w.finish(Err(error.clone()), &events);
                }
            }
        }
    }
}

/// A write applied (but maybe not yet committed), with what to do once it is.
enum Written {
    Property { reply: Reply<Result<(), String>>, event: Option<HubEvent> },
    Bucket { reply: Reply<Result<u64, String>>, result: Result<u64, String> },
    Endpoint { reply: Reply<Result<(), String>>, result: Result<(), String> },
    Deleted { reply: Reply<Result<bool, String>>, existed: bool },
}

/// A committed property change on its way to the subscribers, with the writer's reply.
pub(crate) struct Committed {
    event: HubEvent,
    reply: Reply<Result<(), String>>,
}

impl Committed {
    /// Hands the change to `dispatch`, then tells the writer it is committed: whoever
    /// subscribes after the write returned does not get this change as news.
    pub(crate) fn deliver(self, dispatch: impl FnOnce(HubEvent)) {
        dispatch(self.event);
        let _ = self.reply.send(Ok(()));
    }
}

impl Written {
    fn finish(self, commit: Result<(), String>, events: &mpsc::UnboundedSender<Committed>) {
        match self {
            Written::Property { reply, event } => match (commit, event) {
                // The writer hears back only after the change reached the subscribers.
                (Ok(()), Some(event)) => {
                    if let Err(mpsc::error::SendError(unsent)) = events.send(Committed { event, reply }) {
                        unsent.deliver(drop);
                    }
                }
                (commit, _) => {
                    let _ = reply.send(commit);
                }
            },
            Written::Bucket { reply, result } => {
                let _ = reply.send(commit.and(result));
            }
            Written::Endpoint { reply, result } => {
                let _ = reply.send(commit.and(result));
            }
            Written::Deleted { reply, existed } => {
                let _ = reply.send(commit.map(|()| existed));
            }
        }
    }
}

fn property_event(user: &str, device: &str, property: &str, value: &Value) -> HubEvent {
    HubEvent::Property {
        user: user.to_owned(),
        device: device.to_owned(),
        property: property.to_owned(),
        value: value.clone(),
    }
}

fn read_memory(m: &mut Memory, op: Op) {
    match op {
        Op::GetProperty { user, device, property, reply } => {
            let _ = reply.send(m.props.get(&(user, device, property)).cloned());
        }
        Op::ListProperties { user, device, reply } => {
            let list = m
                .props
                .iter()
                .filter(|((u, d, _), _)| *u == user && *d == device)
                .map(|((_, _, p), r)| (p.clone(), r.clone()))
                .collect();
            let _ = reply.send(list);
        }
        Op::ListBuckets { user, reply } => {
            let list = m.buckets.iter().filter(|((u, _), _)| *u == user).map(|(_, (info, _))| info.clone()).collect();
            let _ = reply.send(list);
        }
        Op::ReadBucket { user, bucket, query, reply } => {
            let found = m.buckets.get(&(user, bucket)).map(|(_, records)| select(records.iter().cloned(), query));
            let _ = reply.send(found);
        }
        Op::ListEndpointCalls { user, reply } => {
            let _ = reply.send(m.endpoints.get(&user).cloned().unwrap_or_default());
        }
        Op::SetProperty { .. }
        | Op::DeleteProperty { .. }
        | Op::AppendBucket { .. }
        | Op::LogEndpoint { .. }
        | Op::Shutdown { .. } => {}
    }
}

fn write_memory(m: &mut Memory, clock: &mut Clock, op: Op) -> Option<Written> {
    match op {
        Op::SetProperty { user, device, property, value, reply } => {
            let now = clock.now();
            let event = property_event(&user, &device, &property, &value);
            let key = (user, device, property);
            let created = m.props.get(&key).map_or(now, |r| r.created);
            m.props.insert(key, PropertyRecord { value, created, modified: now });
            Some(Written::Property { reply, event: Some(event) })
        }
        Op::DeleteProperty { user, device, property, reply } => {
            let existed = m.props.remove(&(user, device, property)).is_some();
            Some(Written::Deleted { reply, existed })
        }
        Op::AppendBucket { user, bucket, device, value, reply } => {
            let ts = clock.now();
            let entry = m.buckets.entry((user, bucket.clone())).or_insert_with(|| {
                (BucketInfo { bucket, created: ts, count: 0, last_ts: ts, device: device.clone(), seq: 0 }, Vec::new())
            });
            entry.0.count += 1;
            entry.0.last_ts = ts;
            entry.0.device.clone_from(&device);
            entry.1.push(BucketRecord { ts, value, device });
            Some(Written::Bucket { reply, result: Ok(ts) })
        }
        Op::LogEndpoint { user, device, endpoint, data, reply } => {
            let ts = clock.now();
            m.endpoints.entry(user).or_default().push(EndpointCall { ts, device, endpoint, data });
            Some(Written::Endpoint { reply, result: Ok(()) })
        }
        // Not writes: never batched, but answered all the same.
        other => {
            read_memory(m, other);
            None
        }
    }
}

fn select(records: impl DoubleEndedIterator<Item = BucketRecord>, q: BucketQuery) -> Vec<BucketRecord> {
    let keep = move |r: &BucketRecord| q.min_ts.is_none_or(|min| r.ts >= min) && q.max_ts.is_none_or(|max| r.ts <= max);
    if q.descending {
        records.rev().filter(keep).take(q.items).collect()
    } else {
        records.filter(keep).take(q.items).collect()
    }
}

// ----- redb -----

fn map(pairs: Vec<(&str, Value)>) -> Vec<u8> {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).encode_to_vec()
}

fn field_u64(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn field_str(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn decode_property(bytes: &[u8]) -> Option<PropertyRecord> {
    let mut v = Value::decode(bytes).ok()?;
    let created = field_u64(&v, "created");
    let modified = field_u64(&v, "modified");
    let value = v.get_mut("value").map(Value::take).unwrap_or_default();
    Some(PropertyRecord { value, created, modified })
}

fn encode_property(r: &PropertyRecord) -> Vec<u8> {
    map(vec![("value", r.value.clone()), ("created", Value::Uint(r.created)), ("modified", Value::Uint(r.modified))])
}

fn decode_bucket_info(bucket: &str, bytes: &[u8]) -> Option<BucketInfo> {
    let v = Value::decode(bytes).ok()?;
    Some(BucketInfo {
        bucket: bucket.to_owned(),
        created: field_u64(&v, "created"),
        count: field_u64(&v, "count"),
        last_ts: field_u64(&v, "last_ts"),
        device: field_str(&v, "device"),
        seq: field_u64(&v, "seq"),
    })
}

fn encode_bucket_info(i: &BucketInfo) -> Vec<u8> {
    map(vec![
        ("created", Value::Uint(i.created)),
        ("count", Value::Uint(i.count)),
        ("last_ts", Value::Uint(i.last_ts)),
        ("device", Value::Str(i.device.clone())),
        ("seq", Value::Uint(i.seq)),
    ])
}

fn decode_record(bytes: &[u8]) -> Option<BucketRecord> {
    let mut v = Value::decode(bytes).ok()?;
    let ts = field_u64(&v, "ts");
    let device = field_str(&v, "device");
    let value = v.get_mut("val").map(Value::take).unwrap_or_default();
    Some(BucketRecord { ts, value, device })
}

fn decode_call(bytes: &[u8]) -> Option<EndpointCall> {
    let mut v = Value::decode(bytes).ok()?;
    Some(EndpointCall {
        ts: field_u64(&v, "ts"),
        device: field_str(&v, "device"),
        endpoint: field_str(&v, "endpoint"),
        data: v.get_mut("data").map(Value::take).unwrap_or_default(),
    })
}

fn read_redb(db: &Database, op: Op) {
    if let Err(error) = try_read_redb(db, op) {
        // The reply channel was dropped with the op: the caller sees no answer.
        tracing::error!(%error, "storage read failed");
    }
}

fn try_read_redb(db: &Database, op: Op) -> Result<(), redb::Error> {
    let tx = db.begin_read()?;
    match op {
        Op::GetProperty { user, device, property, reply } => {
            let t = tx.open_table(PROPS)?;
            let found =
                t.get((user.as_str(), device.as_str(), property.as_str()))?.and_then(|g| decode_property(g.value()));
            let _ = reply.send(found);
        }
        Op::ListProperties { user, device, reply } => {
            let t = tx.open_table(PROPS)?;
            let mut list = Vec::new();
            for item in t.range((user.as_str(), device.as_str(), "")..)? {
                let (k, v) = item?;
                let (u, d, p) = k.value();
                if u != user || d != device {
                    break;
                }
                if let Some(r) = decode_property(v.value()) {
                    list.push((p.to_owned(), r));
                }
            }
            let _ = reply.send(list);
        }
        Op::ListBuckets { user, reply } => {
            let t = tx.open_table(BUCKET_META)?;
            let mut list = Vec::new();
            for item in t.range((user.as_str(), "")..)? {
                let (k, v) = item?;
                let (u, b) = k.value();
                if u != user {
                    break;
                }
                if let Some(info) = decode_bucket_info(b, v.value()) {
                    list.push(info);
                }
            }
            let _ = reply.send(list);
        }
        Op::ReadBucket { user, bucket, query, reply } => {
            let meta = tx.open_table(BUCKET_META)?;
            if meta.get((user.as_str(), bucket.as_str()))?.is_none() {
                let _ = reply.send(None);
                return Ok(());
            }
            let t = tx.open_table(BUCKET_DATA)?;
            let range = t.range((user.as_str(), bucket.as_str(), 0u64)..=(user.as_str(), bucket.as_str(), u64::MAX))?;
            let mut records = Vec::new();
            for item in range {
                let (_, v) = item?;
                if let Some(r) = decode_record(v.value()) {
                    records.push(r);
                }
            }
            let _ = reply.send(Some(select(records.into_iter(), query)));
        }
        Op::ListEndpointCalls { user, reply } => {
            let t = tx.open_table(ENDPOINTS)?;
            let mut list = Vec::new();
            for item in t.range((user.as_str(), 0u64)..=(user.as_str(), u64::MAX))? {
                let (_, v) = item?;
                if let Some(c) = decode_call(v.value()) {
                    list.push(c);
                }
            }
            let _ = reply.send(list);
        }
        Op::SetProperty { .. }
        | Op::DeleteProperty { .. }
        | Op::AppendBucket { .. }
        | Op::LogEndpoint { .. }
        | Op::Shutdown { .. } => {}
    }
    Ok(())
}

type BatchFailure = (Vec<Written>, String);

fn write_redb(db: &Database, clock: &mut Clock, batch: Vec<Op>) -> Result<Vec<Written>, BatchFailure> {
    let mut done = Vec::with_capacity(batch.len());
    let result = (|| -> Result<(), redb::Error> {
        let tx = db.begin_write()?;
        {
            let mut props = tx.open_table(PROPS)?;
            let mut meta = tx.open_table(BUCKET_META)?;
            let mut data = tx.open_table(BUCKET_DATA)?;
            let mut calls = tx.open_table(ENDPOINTS)?;
            for op in batch {
                match op {
                    Op::SetProperty { user, device, property, value, reply } => {
                        let now = clock.now();
                        let key = (user.as_str(), device.as_str(), property.as_str());
                        let created =
                            props.get(key)?.and_then(|g| decode_property(g.value())).map_or(now, |r| r.created);
                        let event = property_event(&user, &device, &property, &value);
                        let record = PropertyRecord { value, created, modified: now };
                        props.insert(key, encode_property(&record).as_slice())?;
                        done.push(Written::Property { reply, event: Some(event) });
                    }
                    Op::DeleteProperty { user, device, property, reply } => {
                        let existed = props.remove((user.as_str(), device.as_str(), property.as_str()))?.is_some();
                        done.push(Written::Deleted { reply, existed });
                    }
                    Op::AppendBucket { user, bucket, device, value, reply } => {
                        let ts = clock.now();
                        let key = (user.as_str(), bucket.as_str());
                        let mut info =
                            meta.get(key)?.and_then(|g| decode_bucket_info(&bucket, g.value())).unwrap_or(BucketInfo {
                                bucket: bucket.clone(),
                                created: ts,
                                count: 0,
                                last_ts: ts,
                                device: device.clone(),
                                seq: 0,
                            });
                        info.seq += 1;
                        info.count += 1;
                        info.last_ts = ts;
                        info.device.clone_from(&device);
                        let record =
                            map(vec![("ts", Value::Uint(ts)), ("val", value), ("device", Value::Str(device.clone()))]);
                        data.insert((user.as_str(), bucket.as_str(), info.seq), record.as_slice())?;
                        meta.insert(key, encode_bucket_info(&info).as_slice())?;
                        done.push(Written::Bucket { reply, result: Ok(ts) });
                    }
                    Op::LogEndpoint { user, device, endpoint, data: payload, reply } => {
                        let ts = clock.now();
                        let seq = match calls.range((user.as_str(), 0u64)..=(user.as_str(), u64::MAX))?.next_back() {
                            Some(item) => item?.0.value().1 + 1,
                            None => 1,
                        };
                        let record = map(vec![
                            ("ts", Value::Uint(ts)),
                            ("device", Value::Str(device)),
                            ("endpoint", Value::Str(endpoint)),
                            ("data", payload),
                        ]);
                        calls.insert((user.as_str(), seq), record.as_slice())?;
                        done.push(Written::Endpoint { reply, result: Ok(()) });
                    }
                    // Not writes: the batch never holds one.
                    Op::GetProperty { .. }
                    | Op::ListProperties { .. }
                    | Op::ListBuckets { .. }
                    | Op::ReadBucket { .. }
                    | Op::ListEndpointCalls { .. }
                    | Op::Shutdown { .. } => {}
                }
            }
        }
        tx.commit()?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(done),
        Err(e) => Err((done, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(items: usize, descending: bool) -> BucketQuery {
        BucketQuery { items, min_ts: None, max_ts: None, descending }
    }

    #[test]
    fn select_orders_and_limits() {
        let records: Vec<BucketRecord> =
            (1..=5).map(|ts| BucketRecord { ts, value: Value::Uint(ts), device: "d".into() }).collect();
        let asc = select(records.clone().into_iter(), query(2, false));
        assert_eq!(asc.iter().map(|r| r.ts).collect::<Vec<_>>(), vec![1, 2]);
        let desc = select(records.clone().into_iter(), query(2, true));
        assert_eq!(desc.iter().map(|r| r.ts).collect::<Vec<_>>(), vec![5, 4]);
        let q = BucketQuery { items: 10, min_ts: Some(2), max_ts: Some(3), descending: false };
        assert_eq!(select(records.into_iter(), q).len(), 2);
    }

    /// A property write is answered only once its change has been dispatched, so a device
    /// that subscribes after the write returned (and reads the value as current) does not
    /// get the same change again as an update.
    #[tokio::test]
    async fn a_property_write_is_answered_after_its_change_is_dispatched() {
        let (events_tx, mut events_rx) = mpsc::unbounded_channel();
        let store = Store::open(None, events_tx).unwrap();
        let write = tokio::spawn(async move {
            store
                .ask(|reply| Op::SetProperty {
                    user: "u".into(),
                    device: "d".into(),
                    property: "mode".into(),
                    value: Value::Str("eco".into()),
                    reply,
                })
                .await
        });
        let committed = events_rx.recv().await.expect("the change is reported");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!write.is_finished(), "the writer was answered before the change was dispatched");
        let mut dispatched = None;
        committed.deliver(|event| dispatched = Some(event));
        assert!(matches!(dispatched, Some(HubEvent::Property { .. })));
        assert_eq!(write.await.unwrap(), Some(Ok(())));
    }

    #[test]
    fn property_encoding_round_trips() {
        let r = PropertyRecord { value: thinger_core::pson!({"a": [1, "x"]}), created: 5, modified: 9 };
        assert_eq!(decode_property(&encode_property(&r)), Some(r));
    }
}
