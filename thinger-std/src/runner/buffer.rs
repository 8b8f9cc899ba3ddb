//! The session buffer of a connection, holding memory only while the session has data in
//! it. Most connections of a gateway are idle most of the time (a keep-alive a minute), so
//! an idle connection gives its buffer back to its thread, and takes one again when the
//! next frame arrives or goes out.

use std::cell::{OnceCell, RefCell};

thread_local! {
    /// Buffers given back by the idle connections of this thread, for the next one to take.
    static SPARES: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// Spare buffers a thread keeps (at most; the rest are freed).
const SPARES_MAX: usize = 4;

/// A session buffer of a fixed length whose memory comes and goes: taken on first use,
/// given back with [`LentBuffer::give_back`] while the session says the buffer is idle
/// (`Session::idle_buffer_mut`), when its contents are scratch.
///
/// A buffer taken from the spares holds bytes of another connection of this process; the
/// session never reads its buffer outside what it wrote itself (checked by thinger-core's
/// `idle_buffer` test, which fills an idle buffer with garbage), so they are not cleared.
pub(crate) struct LentBuffer {
    len: usize,
    mem: OnceCell<Box<[u8]>>,
}

impl LentBuffer {
    /// A buffer of `len` bytes, holding no memory yet.
    pub(crate) fn new(len: usize) -> Self {
        LentBuffer { len, mem: OnceCell::new() }
    }

    /// Whether memory is held now.
    #[cfg(test)]
    pub(crate) fn holds_memory(&self) -> bool {
        self.mem.get().is_some()
    }

    /// Bytes of memory held now: the length, or 0 while given back.
    pub(crate) fn held(&self) -> usize {
        self.mem.get().map_or(0, |m| m.len())
    }

    /// Gives the memory back to the thread's spares (or frees it).
    pub(crate) fn give_back(&mut self) {
        let Some(mem) = self.mem.take() else { return };
        let _ = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < SPARES_MAX {
                spares.push(mem);
            }
        });
    }

    fn memory(&self) -> &[u8] {
        self.mem.get_or_init(|| take(self.len))
    }
}

/// A spare of `len` bytes, or a new one.
fn take(len: usize) -> Box<[u8]> {
    let spare = SPARES.try_with(|spares| {
        let mut spares = spares.borrow_mut();
        let at = spares.iter().position(|b| b.len() == len)?;
        Some(spares.swap_remove(at))
    });
    spare.ok().flatten().unwrap_or_else(|| vec![0u8; len].into_boxed_slice())
}

impl AsRef<[u8]> for LentBuffer {
    fn as_ref(&self) -> &[u8] {
        self.memory()
    }
}

impl AsMut<[u8]> for LentBuffer {
    fn as_mut(&mut self) -> &mut [u8] {
        self.memory();
        match self.mem.get_mut() {
            Some(mem) => mem,
            None => &mut [],
        }
    }
}

impl Drop for LentBuffer {
    fn drop(&mut self) {
        self.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_taken_on_use_and_reused_after_it_is_given_back() {
        let mut a = LentBuffer::new(4096);
        assert!(!a.holds_memory());
        assert_eq!(a.as_ref().len(), 4096);
        assert!(a.holds_memory());
        a.as_mut()[0] = 7;
        let address = a.as_ref().as_ptr();
        a.give_back();
        assert!(!a.holds_memory());
        // The next buffer of that length on this thread takes the same memory.
        let mut b = LentBuffer::new(4096);
        assert_eq!(b.as_mut().as_ptr(), address);
        assert_eq!(b.as_ref().len(), 4096);
        // Another length gets its own.
        let c = LentBuffer::new(1024);
        assert_ne!(c.as_ref().as_ptr(), address);
        assert_eq!(c.as_ref().len(), 1024);
    }

    #[test]
    fn a_thread_keeps_a_few_spares_only() {
        let mut many: Vec<LentBuffer> = (0..SPARES_MAX + 3).map(|_| LentBuffer::new(512)).collect();
        for buf in &mut many {
            let _ = buf.as_mut();
        }
        drop(many);
        let kept = SPARES.with(|s| s.borrow().iter().filter(|b| b.len() == 512).count());
        assert_eq!(kept, SPARES_MAX);
    }
}
