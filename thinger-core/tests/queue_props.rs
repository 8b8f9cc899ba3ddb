//! Property tests of the offline queue: the ring against a plain model, the record codec's
//! round trip, and replays of stored logs, whole and damaged.

use std::collections::VecDeque;

use proptest::prelude::*;
use thinger_core::queue::{Entry, Op, Overflow, Pushed, Ring, record, replay};

#[derive(Debug, Clone)]
enum Action {
    Push {
        bucket: bool,
        name: String,
        data: Option<Vec<u8>>,
    },
    /// Remove the entry at this position (modulo the length).
    Remove(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => ("[a-z]{0,12}", any::<bool>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)))
            .prop_map(|(name, bucket, data)| Action::Push { bucket, name, data }),
        2 => any::<usize>().prop_map(Action::Remove),
    ]
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![Just(Overflow::Reject), Just(Overflow::DropOldest), Just(Overflow::DropNewest)]
}

type Owned = (u64, bool, String, Option<Vec<u8>>);

fn op_of(bucket: bool, name: &str, data: &Option<Vec<u8>>) -> Op<'static> {
    let name: &'static str = Box::leak(name.to_string().into_boxed_str());
    let data: Option<&'static [u8]> = data.clone().map(|d| &*Box::leak(d.into_boxed_slice()));
    if bucket {
        Op::WriteBucket { bucket: name, record: data.unwrap_or(&[]) }
    } else {
        Op::CallEndpoint { endpoint: name, data }
    }
}

fn owned(e: Entry<'_>) -> Owned {
    match e.op {
        Op::WriteBucket { bucket, record } => (e.seq, true, bucket.to_string(), Some(record.to_vec())),
        Op::CallEndpoint { endpoint, data } => (e.seq, false, endpoint.to_string(), data.map(<[u8]>::to_vec)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// With bytes to spare, the ring is exactly a FIFO bounded by its capacity under each
    /// overflow policy, whatever the order of removals.
    #[test]
    fn ring_matches_a_bounded_fifo(capacity in 1usize..8, policy in overflow(), actions in proptest::collection::vec(action(), 0..80)) {
        let mut ring = Ring::new(vec![0u8; 8 * 128], capacity, policy);
        let mut model: VecDeque<Owned> = VecDeque::new();
        let mut next = 1u64;
        for a in actions {
            match a {
                Action::Push { bucket, name, data } => {
                    let data = if bucket { Some(data.unwrap_or_default()) } else { data };
                    let pushed = ring.push(op_of(bucket, &name, &data)).unwrap();
                    if model.len() < capacity {
                        prop_assert_eq!(pushed, Pushed::Queued(next));
                        model.push_back((next, bucket, name, data));
                        next += 1;
                    } else {
                        match policy {
                            Overflow::Reject => prop_assert_eq!(pushed, Pushed::Rejected),
                            Overflow::DropNewest => prop_assert_eq!(pushed, Pushed::Dropped),
                            Overflow::DropOldest => {
                                let old = model.pop_front().unwrap().0;
                                prop_assert_eq!(pushed, Pushed::QueuedDropping { seq: next, dropped: 1, last_dropped: old });
                                model.push_back((next, bucket, name, data));
                                next += 1;
                            }
                        }
                    }
                }
                Action::Remove(i) => {
                    if !model.is_empty() {
                        let (seq, ..) = model.remove(i % model.len()).unwrap();
                        prop_assert!(ring.remove(seq));
                        prop_assert!(!ring.remove(seq));
                    }
                }
            }
            prop_assert_eq!(ring.len(), model.len());
            prop_assert_eq!(ring.iter().map(owned).collect::<Vec<_>>(), model.iter().cloned().collect::<Vec<_>>());
        }
    }

    /// In a small fixed buffer: order kept, numbers increasing, every entry intact, never
    /// more than the capacity, whatever runs out first.
    #[test]
    fn ring_in_a_small_buffer_keeps_its_invariants(size in 0usize..200, capacity in 1usize..20, policy in overflow(), actions in proptest::collection::vec(action(), 0..120)) {
        let mut buf = vec![0u8; size];
        let mut ring = Ring::new(&mut buf[..], capacity, policy);
        let mut pushed_ops: Vec<Owned> = Vec::new();
        for a in actions {
            match a {
                Action::Push { bucket, name, data } => {
                    let data = if bucket { Some(data.unwrap_or_default()) } else { data };
                    let seq = ring.next_seq();
                    match ring.push(op_of(bucket, &name, &data)) {
                        Ok(Pushed::Queued(s) | Pushed::QueuedDropping { seq: s, .. }) => {
                            prop_assert_eq!(s, seq);
                            pushed_ops.push((s, bucket, name, data));
                        }
                        Ok(_) | Err(_) => prop_assert_eq!(ring.next_seq(), seq),
                    }
                }
                Action::Remove(i) => {
                    if let Some(seq) = ring.get(i % ring.len().max(1)).map(|e| e.seq) {
                        prop_assert!(ring.remove(seq));
                    }
                }
            }
            prop_assert!(ring.len() <= capacity);
            prop_assert!(ring.bytes_used() <= size);
            let live: Vec<Owned> = ring.iter().map(owned).collect();
            prop_assert_eq!(live.len(), ring.len());
            prop_assert!(live.windows(2).all(|w| w[0].0 < w[1].0));
            for e in &live {
                prop_assert!(pushed_ops.contains(e));
            }
        }
    }

    /// Every entry survives its record's round trip.
    #[test]
    fn record_round_trip(seq in 1u64.., bucket in any::<bool>(), name in "\\PC{0,40}", data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300))) {
        prop_assume!(name.len() <= record::MAX_NAME);
        let data = if bucket { Some(data.unwrap_or_default()) } else { data };
        let entry = Entry { seq, op: op_of(bucket, &name, &data) };
        let mut buf = vec![0u8; record::encoded_len(&entry.op)];
        let n = record::encode(&entry, &mut buf).unwrap();
        prop_assert_eq!(n, buf.len());
        prop_assert_eq!(record::peek_len(&buf), Ok(n));
        prop_assert_eq!(record::decode(&buf), Ok(entry));
    }

    /// A log of the ring's history replays to the same ring; any damage to it (torn tail,
    /// flipped bytes, garbage spliced in) loses at most the damaged entries, never
    /// replays one twice and never invents one that was not written.
    #[test]
    fn replay_of_a_damaged_log(actions in proptest::collection::vec(action(), 1..40), cut in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 0..4), garbage in proptest::collection::vec(any::<u8>(), 0..20)) {
        let mut ring = Ring::new(Vec::new(), 1000, Overflow::Reject);
        let mut log = Vec::new();
        let mut written: Vec<Owned> = Vec::new();
        for a in actions {
            match a {
                Action::Push { bucket, name, data } => {
                    let data = if bucket { Some(data.unwrap_or_default()) } else { data };
                    if let Ok(Pushed::Queued(seq)) = ring.push(op_of(bucket, &name, &data)) {
                        log.extend_from_slice(ring.record(seq).unwrap());
                        written.push((seq, bucket, name, data));
                    }
                }
                Action::Remove(i) => {
                    if let Some(seq) = ring.get(i % ring.len().max(1)).map(|e| e.seq) {
                        ring.remove(seq);
                        let mut mark = [0u8; record::REMOVAL_LEN];
                        record::encode_removal(seq, &mut mark);
                        log.extend_from_slice(&mark);
                    }
                }
            }
        }
        let whole: Vec<Owned> = ring.iter().map(owned).collect();
        let mut back = Ring::new(Vec::new(), 1000, Overflow::Reject);
        let report = replay(&mut back, &log);
        prop_assert_eq!(report.corrupt, 0);
        prop_assert_eq!(back.iter().map(owned).collect::<Vec<_>>(), whole);
        prop_assert_eq!(back.next_seq(), ring.next_seq());

        // Damage: flip some bytes, splice garbage in, tear the tail.
        let mut damaged = log.clone();
        for (at, x) in &flips {
            if !damaged.is_empty() {
                let i = at.index(damaged.len());
                damaged[i] ^= x;
            }
        }
        let at = cut.index(damaged.len() + 1);
        damaged.splice(at..at, garbage.iter().copied());
        damaged.truncate(damaged.len() - cut.index(damaged.len() / 4 + 1));
        let mut back = Ring::new(Vec::new(), 1000, Overflow::Reject);
        replay(&mut back, &damaged);
        let replayed: Vec<Owned> = back.iter().map(owned).collect();
        prop_assert!(replayed.windows(2).all(|w| w[0].0 < w[1].0), "replayed twice or out of order");
        if flips.is_empty() && garbage.iter().all(|&b| b != record::MAGIC && b != record::REMOVAL_MAGIC) {
            for e in &replayed {
                prop_assert!(written.contains(e), "invented {:?}", e);
            }
        }
    }
}
