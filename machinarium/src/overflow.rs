//! Stack overflow in a coroutine: a clear message and an abort, never silent corruption.
//!
//! Rust's own SIGSEGV handler knows only the thread's guard page; a fault in a coroutine's
//! guard would end as a bare SIGSEGV. This handler runs on the alternate signal stack, checks
//! the fault address against the running coroutine's guard range (kept in a const-initialised
//! thread-local that the scheduler updates on every resume), and otherwise chains to the
//! handler that was installed before it.

use std::cell::Cell;
use std::sync::Once;
use std::sync::OnceLock;

thread_local! {
    /// Guard range `[lo, hi)` of the running coroutine, its serial and its stack size.
    static RUNNING: Cell<(usize, usize, u64, usize)> = const { Cell::new((0, 0, 0, 0)) };
}

static INSTALL: Once = Once::new();
static OLD_SEGV: OnceLock<libc::sigaction> = OnceLock::new();
static OLD_BUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Records the running coroutine's guard range (called by the scheduler on resume).
pub(crate) fn set_running_guard(guard: (usize, usize), serial: u64, stack_size: usize) {
    RUNNING.with(|r| r.set((guard.0, guard.1, serial, stack_size)));
}

/// No coroutine runs (the scheduler's own stack is active).
pub(crate) fn clear_running_guard() {
    RUNNING.with(|r| r.set((0, 0, 0, 0)));
}

/// Installs the SIGSEGV/SIGBUS handler once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        install_one(libc::SIGSEGV, &OLD_SEGV);
        install_one(libc::SIGBUS, &OLD_BUS);
    });
}

fn install_one(sig: libc::c_int, old_slot: &OnceLock<libc::sigaction>) {
    // SAFETY: sigaction structs are plain data; zeroed is a valid "empty" value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to initialised sigaction structs; sa_mask is emptied first.
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(sig, &action, &mut old) == 0 {
            let _ = old_slot.set(old);
        }
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (lo, hi, serial, size) = RUNNING.with(|r| r.get());
    if lo != 0 && addr >= lo && addr < hi {
        report(serial, size);
        // SAFETY: abort is async-signal-safe.
        unsafe { libc::abort() };
    }
    chain(sig, info, ctx);
}

/// Hands the signal to the handler installed before ours, or restores the default action and
/// returns so that the fault repeats and kills the process as it would have.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let old = if sig == libc::SIGBUS {
        OLD_BUS.get()
    } else {
        OLD_SEGV.get()
    };
    let Some(old) = old else {
        return reset_default(sig);
    };
    let h = old.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // SAFETY: restoring a previous disposition; the fault re-raises on return.
        unsafe { libc::sigaction(sig, old, std::ptr::null_mut()) };
        return;
    }
    if old.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

fn reset_default(sig: libc::c_int) {
    // SAFETY: SIG_DFL is always a valid disposition.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Writes the overflow message with async-signal-safe calls only (no allocation, no locks).
fn report(serial: u64, stack_size: usize) {
    let mut buf = [0u8; 192];
    let mut len = 0;
    for part in [
        &b"machinarium: coroutine stack overflow (coroutine #"[..],
        fmt_u64(serial, &mut [0u8; 20]),
        b", stack ",
        fmt_u64(stack_size as u64, &mut [0u8; 20]),
        b" bytes); raise coroutine_stack_size. Aborting.\n",
    ] {
        let n = part.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&part[..n]);
        len += n;
    }
    // SAFETY: write(2) is async-signal-safe; the buffer is valid for `len` bytes.
    unsafe { libc::write(2, buf.as_ptr().cast(), len) };
}

fn fmt_u64(mut v: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &out[i..]
}

/// An alternate signal stack for the current thread, if it has none; freed on drop.
pub(crate) struct AltStack {
    mapping: Option<(*mut libc::c_void, usize)>,
}

impl AltStack {
    /// Makes sure the overflow handler has a stack to run on in this thread.
    pub(crate) fn ensure() -> AltStack {
        // SAFETY: querying the current alternate stack into a zeroed struct.
        let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer for the old stack; NULL new stack means query only.
        unsafe { libc::sigaltstack(std::ptr::null(), &mut old) };
        if old.ss_flags & libc::SS_DISABLE == 0 {
            return AltStack { mapping: None };
        }
        let size = 64 * 1024;
        // SAFETY: a fresh anonymous mapping; checked for failure below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return AltStack { mapping: None };
        }
        let stack = libc::stack_t {
            ss_sp: ptr,
            ss_flags: 0,
            ss_size: size,
        };
        // SAFETY: `stack` describes the mapping just made, which lives until drop.
        unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) };
        AltStack {
            mapping: Some((ptr, size)),
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if let Some((ptr, size)) = self.mapping {
            let off = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disable the alternate stack before unmapping it; no signal handler runs
            // on it now (we are in ordinary thread code).
            unsafe {
                libc::sigaltstack(&off, std::ptr::null_mut());
                libc::munmap(ptr, size);
            }
        }
    }
}
