//! Context switching: a safe-ish wrapper over the architecture's assembly.
//!
//! A [`Context`] is a suspended execution: one saved stack pointer. The scheduler keeps one
//! for itself (the machine thread's own stack) and one per coroutine.

#[cfg(target_arch = "x86")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "x86")]
use x86 as arch;
#[cfg(target_arch = "x86_64")]
use x86_64 as arch;

#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
compile_error!("machinarium supports x86_64 and x86 only");

pub(crate) use arch::Entry;
#[cfg(test)]
pub(crate) use arch::switch as raw_switch;

/// A saved stack pointer of a suspended context (or null while it runs).
#[derive(Debug)]
pub(crate) struct Context {
    sp: core::cell::Cell<*mut u8>,
}

impl Context {
    /// A context that will be filled by the first switch away from the current stack.
    pub(crate) const fn empty() -> Self {
        Context {
            sp: core::cell::Cell::new(core::ptr::null_mut()),
        }
    }

    /// A fresh context that runs `entry(arg)` on the stack ending at `top`.
    ///
    /// # Safety
    /// `top` must end a writable stack region of at least 128 bytes that only this context
    /// will use, and it must stay mapped until the context has switched away for the last time.
    pub(crate) unsafe fn new(top: *mut u8, entry: Entry, arg: *mut u8) -> Self {
        // SAFETY: forwarded to the caller's contract.
        let sp = unsafe { arch::init_stack(top, entry, arg) };
        Context {
            sp: core::cell::Cell::new(sp),
        }
    }

    /// Suspends the running context into `self` and resumes `to`.
    ///
    /// # Safety
    /// `self` must describe the running context (it is about to be suspended) and `to` must be
    /// a suspended context that is not resumed anywhere else; both must outlive the switch.
    #[inline(always)]
    pub(crate) unsafe fn switch(&self, to: &Context) {
        let target = to.sp.get();
        debug_assert!(
            !target.is_null(),
            "switch to a context that is running or finished"
        );
        to.sp.set(core::ptr::null_mut());
        // SAFETY: the caller guarantees `to` is a suspended context; `self.sp` is a valid cell.
        unsafe { arch::switch(self.sp.as_ptr(), target) }
    }
}

#[cfg(test)]
impl Context {
    /// The saved stack pointer, for tests that switch from assembly.
    pub(crate) fn raw_sp(&self) -> *mut u8 {
        self.sp.get()
    }
}
