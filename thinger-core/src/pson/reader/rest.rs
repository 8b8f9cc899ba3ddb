//! The unread rest of a PSON input on hosts, as two pointers (next byte, end) instead of a
//! slice (start, length): a read moves one register, not two, and the end stays fixed, so
//! the loops over pairs and elements carry one changing register for the input where the
//! value paths meet. Every `pub(crate)` method is safe and checks the length first, as the slice
//! methods of the same names do. This module holds the reader's `unsafe` blocks (each one a
//! pointer step or a slice rebuilt within the input this was made from); nothing here is
//! compiled for microcontrollers, which keep the slice.
//!
//! Not forced inline in debug builds: there every inlined call keeps its own stack slots,
//! and the frame of each nesting level of `Cursor::value_other` grew past what the
//! depth-limit test's 2 MiB thread allows for 256 levels.

use core::marker::PhantomData;

/// A sub-slice `p..end` of one input slice borrowed for `'a`.
///
/// Invariant: `p <= end`, and both point into (or one past the end of) the slice given to
/// [`Rest::new`]; every constructor and step keeps it.
#[derive(Clone, Copy)]
pub(crate) struct Rest<'a> {
    p: *const u8,
    end: *const u8,
    _input: PhantomData<&'a [u8]>,
}

// SAFETY: a `Rest` is a shared borrow of bytes (`&'a [u8]`, which is `Send` and `Sync`)
// kept as two pointers; it never writes through them. Without these the public readers
// holding it (`MapReader`, `MapIter`, the serde `Deserializer`, ...) would stop being
// `Send` / `Sync` on hosts (test `pson_readers_are_send_and_sync`).
#[allow(unsafe_code)]
unsafe impl Send for Rest<'_> {}
#[allow(unsafe_code)]
unsafe impl Sync for Rest<'_> {}

impl core::fmt::Debug for Rest<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl<'a> Rest<'a> {
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn new(input: &'a [u8]) -> Self {
        let range = input.as_ptr_range();
        Rest { p: range.start, end: range.end, _input: PhantomData }
    }

    /// `n` bytes further on.
    ///
    /// # Safety
    ///
    /// `n <= self.len()`: `p + n` must stay within `p..=end` (every caller tests the
    /// length just before).
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(unsafe_code)]
    unsafe fn at(self, n: usize) -> Self {
        debug_assert!(n <= self.len());
        // SAFETY: `n <= self.len()` (the caller's contract), so `p + n` is at most `end`,
        // inside (or one past the end of) the same input; `n == 0` on an empty input
        // (a dangling `p`) is an offset of 0, always allowed.
        let p = unsafe { self.p.add(n) };
        Rest { p, ..self }
    }

    /// The first `n` bytes as a slice.
    ///
    /// # Safety
    ///
    /// `n <= self.len()`, as for [`Rest::at`].
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[allow(unsafe_code)]
    unsafe fn head(self, n: usize) -> &'a [u8] {
        debug_assert!(n <= self.len());
        // SAFETY: `p..p + n` lies inside the input (`n <= self.len()`, the caller's
        // contract), which is borrowed for `'a` and not written while borrowed; `p` is
        // non-null and aligned (u8) even for an empty input, and `n` is at most the
        // input's length, so at most `isize::MAX` bytes.
        unsafe { core::slice::from_raw_parts(self.p, n) }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn len(self) -> usize {
        // Both addresses are in one input, `p <= end`: no overflow.
        self.end.addr() - self.p.addr()
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn is_empty(self) -> bool {
        self.p == self.end
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn as_slice(self) -> &'a [u8] {
        #[allow(unsafe_code)]
        // SAFETY: `len() <= len()`.
        unsafe {
            self.head(self.len())
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn first(self) -> Option<&'a u8> {
        self.as_slice().first()
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn split_first(self) -> Option<(&'a u8, Self)> {
        if self.is_empty() {
            return None;
        }
        #[allow(unsafe_code)]
        // SAFETY: not empty, so `p` points at a byte of the input (borrowed for `'a`), and
        // `1 <= self.len()` for `at`.
        let (byte, rest) = unsafe { (&*self.p, self.at(1)) };
        Some((byte, rest))
    }

    /// [`Rest::split_first`] with the end test on the length (`end - p == 0`) rather than
    /// on the addresses. The same result; the compiler lays the map reader's loop out
    /// better with it in `Cursor::map_value` (`payload/decode/reader` 275 -> 272, `map10`
    /// 562 -> 553 instructions), the walks worse with it everywhere (`map100/decode/walk`
    /// 9,385 -> 9,585).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn split_first_by_len(self) -> Option<(&'a u8, Self)> {
        #[allow(clippy::len_zero)] // the length on purpose (see above)
        if self.len() == 0 {
            return None;
        }
        #[allow(unsafe_code)]
        // SAFETY: not empty, so `p` points at a byte of the input (borrowed for `'a`), and
        // `1 <= self.len()` for `at`.
        let (byte, rest) = unsafe { (&*self.p, self.at(1)) };
        Some((byte, rest))
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn split_at_checked(self, n: usize) -> Option<(&'a [u8], Self)> {
        if n > self.len() {
            return None;
        }
        #[allow(unsafe_code)]
        // SAFETY: `n <= self.len()`, tested just above.
        let (head, rest) = unsafe { (self.head(n), self.at(n)) };
        Some((head, rest))
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn split_first_chunk<const N: usize>(self) -> Option<(&'a [u8; N], Self)> {
        let chunk = self.first_chunk::<N>()?;
        #[allow(unsafe_code)]
        // SAFETY: `first_chunk` returned `Some`, so `N <= self.len()`.
        let rest = unsafe { self.at(N) };
        Some((chunk, rest))
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn first_chunk<const N: usize>(self) -> Option<&'a [u8; N]> {
        if N > self.len() {
            return None;
        }
        #[allow(unsafe_code)]
        // SAFETY: `N <= self.len()`, tested just above.
        let head = unsafe { self.head(N) };
        head.first_chunk()
    }

    /// `n` bytes on, or the end when fewer are left.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn skip(self, n: usize) -> Self {
        #[allow(unsafe_code)]
        // SAFETY: `n.min(self.len()) <= self.len()`.
        unsafe {
            self.at(n.min(self.len()))
        }
    }

    /// The bytes from `self` up to `later` (a rest of the same input read further on).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn until(self, later: Self) -> &'a [u8] {
        #[allow(unsafe_code)]
        // SAFETY: `len() - x <= len()` (saturating), whatever `later` is: a `later` from
        // another input gives wrong bytes, never bytes outside this one.
        unsafe {
            self.head(self.len().saturating_sub(later.len()))
        }
    }
}
