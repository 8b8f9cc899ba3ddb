//! Removal from the session's fixed-capacity tables (pending requests, open streams,
//! channels) without `ptr::copy`, which links the 1.5 KB `memmove` on microcontrollers.

use heapless::Vec;

/// `Vec::swap_remove` without `ptr::copy` (which links the 1.5 KB `memmove`): the last
/// element takes slot `i`. `None` when `i` is out of range.
pub(super) fn take_at<T: Copy, const N: usize>(v: &mut Vec<T, N>, i: usize) -> Option<T> {
    let last = v.len().checked_sub(1).filter(|&last| i <= last)?;
    // Slot `i` and the last one swapped through disjoint borrows, then a pop: no
    // `ptr::copy`, which for the 16-byte `Pending` was a `memmove` call (1,574 B on
    // thumbv7em "z").
    let (front, back) = v.split_at_mut(last);
    if let (Some(slot), Some(end)) = (front.get_mut(i), back.first_mut()) {
        core::mem::swap(slot, end);
    }
    v.pop()
}

/// `Vec::retain` (order kept) without `ptr::copy`, like [`take_at`].
pub(super) fn keep_where<T: Clone, const N: usize>(v: &mut Vec<T, N>, mut keep: impl FnMut(&T) -> bool) {
    let mut kept = 0;
    for i in 0..v.len() {
        // Disjoint borrows, so the move is a plain copy.
        let Some((front, back)) = v.split_at_mut_checked(i) else { break };
        let Some(item) = back.first() else { break };
        if keep(item) {
            if let Some(slot) = front.get_mut(kept) {
                slot.clone_from(item);
            }
            kept += 1;
        }
    }
    v.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::{keep_where, take_at};
    use proptest::prelude::*;

    #[test]
    fn take_at_is_swap_remove() {
        let mut ours: heapless::Vec<u8, 8> = heapless::Vec::from_slice(&[1, 2, 3, 4, 5]).unwrap();
        let mut std_vec = std::vec![1u8, 2, 3, 4, 5];
        for i in [1, 3, 0, 1, 0] {
            assert_eq!(take_at(&mut ours, i), Some(std_vec.swap_remove(i)));
            assert_eq!(ours.as_slice(), std_vec.as_slice());
        }
        assert_eq!(take_at(&mut ours, 0), None);
        let mut one: heapless::Vec<u8, 2> = heapless::Vec::from_slice(&[9]).unwrap();
        assert_eq!(take_at(&mut one, 1), None);
        assert_eq!(one.as_slice(), &[9]);
    }

    proptest! {
        #[test]
        fn keep_where_is_retain(items in proptest::collection::vec(any::<u8>(), 0..8), modulus in 1u8..5) {
            let mut ours: heapless::Vec<u8, 8> = heapless::Vec::from_slice(&items).unwrap();
            let mut std_vec = items.clone();
            keep_where(&mut ours, |x| x % modulus == 0);
            std_vec.retain(|x| x % modulus == 0);
            prop_assert_eq!(ours.as_slice(), std_vec.as_slice());
        }
    }
}
