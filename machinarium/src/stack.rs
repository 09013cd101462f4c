//! Coroutine stacks: mmap'd regions with a guard at the low end, pooled per machine.
//!
//! The guard is installed with `madvise(MADV_GUARD_INSTALL)` where the kernel has it (Linux
//! 6.13+): it costs no extra VMA, so 100k stacks stay far below `vm.max_map_count`. Older
//! kernels get `mprotect(PROT_NONE)`, which splits the mapping (2 VMAs a stack).

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::valgrind;

/// `MADV_GUARD_INSTALL`, not yet exported by every libc version.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Which guard mechanism this process uses: 0 = unknown, 1 = madvise, 2 = mprotect.
static GUARD_MODE: AtomicU8 = AtomicU8::new(0);

/// The page size; 4 KiB on every target machinarium supports.
pub const PAGE_SIZE: usize = 4096;

/// One mmap'd stack. Dropping it unmaps it.
#[derive(Debug)]
pub(crate) struct Stack {
    base: *mut u8,
    len: usize,
    guard: usize,
    valgrind_id: u64,
    /// Its pages were given back to the kernel since it last ran (see [`StackPool::trim`]).
    trimmed: bool,
}

impl Stack {
    /// Maps a stack of `pages` usable pages plus `guard_pages` guard pages below them.
    pub(crate) fn new(pages: usize, guard_pages: usize) -> io::Result<Stack> {
        let guard = guard_pages.max(1) * PAGE_SIZE;
        let len = guard + pages.max(1) * PAGE_SIZE;
        // SAFETY: an anonymous private mapping at an address the kernel picks; no existing
        // memory is affected. The result is checked for MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut stack = Stack {
            base: base as *mut u8,
            len,
            guard,
            valgrind_id: 0,
            trimmed: true,
        };
        stack.install_guard()?;
        stack.valgrind_id = valgrind::stack_register(stack.bottom() as usize, stack.top() as usize);
        Ok(stack)
    }

    fn install_guard(&self) -> io::Result<()> {
        if GUARD_MODE.load(Ordering::Relaxed) != 2 {
            // SAFETY: the range is the start of our own mapping.
            let rc = unsafe { libc::madvise(self.base.cast(), self.guard, MADV_GUARD_INSTALL) };
            if rc == 0 {
                GUARD_MODE.store(1, Ordering::Relaxed);
                return Ok(());
            }
            GUARD_MODE.store(2, Ordering::Relaxed);
        }
        // SAFETY: as above; PROT_NONE only affects our own mapping.
        let rc = unsafe { libc::mprotect(self.base.cast(), self.guard, libc::PROT_NONE) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!(
                    "mprotect of a coroutine stack guard failed ({err}); too many stacks for \
                     vm.max_map_count?"
                ),
            ));
        }
        Ok(())
    }

    /// Highest address of the stack (exclusive): where a fresh context starts.
    pub(crate) fn top(&self) -> *mut u8 {
        // SAFETY: base+len is one past the end of our mapping.
        unsafe { self.base.add(self.len) }
    }

    /// Lowest usable address (just above the guard).
    pub(crate) fn bottom(&self) -> *mut u8 {
        // SAFETY: guard < len, inside our mapping.
        unsafe { self.base.add(self.guard) }
    }

    /// The guard range `[lo, hi)`: a fault there is a stack overflow.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.base as usize, self.base as usize + self.guard)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        valgrind::stack_deregister(self.valgrind_id);
        // SAFETY: we own this mapping and no context runs on it any more (the pool and the
        // scheduler drop a stack only after its coroutine switched away for the last time).
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// Whether guards are installed with `MADV_GUARD_INSTALL` (true) or `mprotect` (false).
/// Meaningful after the first stack was made.
pub fn guard_uses_madvise() -> bool {
    GUARD_MODE.load(Ordering::Relaxed) == 1
}

/// A per-machine cache of stacks of one size, as machinarium's `coroutine_cache`.
#[derive(Debug)]
pub(crate) struct StackPool {
    free: Vec<Stack>,
    cap: usize,
    pages: usize,
    guard_pages: usize,
}

impl StackPool {
    pub(crate) fn new(pages: usize, guard_pages: usize, cap: usize) -> StackPool {
        StackPool {
            free: Vec::new(),
            cap,
            pages,
            guard_pages,
        }
    }

    /// A stack from the cache, or a new one.
    pub(crate) fn take(&mut self) -> io::Result<Stack> {
        let mut stack = match self.free.pop() {
            Some(stack) => stack,
            None => Stack::new(self.pages, self.guard_pages)?,
        };
        stack.trimmed = false;
        Ok(stack)
    }

    /// Gives the pages of cached stacks back to the kernel, except the `keep` most recently
    /// used (which the next coroutines will take). A burst of coroutines (logins, a wave of
    /// disconnects) would otherwise leave its touched stack pages resident for good. The
    /// stacks stay mapped; a trimmed page comes back zero-filled when touched again.
    pub(crate) fn trim(&mut self, keep: usize) {
        let cold = self.free.len().saturating_sub(keep);
        for stack in self.free[..cold].iter_mut().filter(|s| !s.trimmed) {
            // SAFETY: the usable part of a stack no coroutine runs on (it is in the free
            // list); MADV_DONTNEED on a private anonymous mapping only drops its contents.
            unsafe {
                libc::madvise(
                    stack.bottom().cast(),
                    stack.top() as usize - stack.bottom() as usize,
                    libc::MADV_DONTNEED,
                )
            };
            stack.trimmed = true;
        }
    }

    /// Returns a stack whose coroutine has finished; unmapped when the cache is full.
    pub(crate) fn put(&mut self, stack: Stack) {
        if self.free.len() < self.cap {
            self.free.push(stack);
        }
    }
}
