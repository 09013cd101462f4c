//! Valgrind client requests, so that memcheck knows coroutine stacks are stacks.
//!
//! The "magic sequence" is a no-op on a real CPU (four rotations of rdi by 128 bits in all,
//! then `xchg rbx, rbx`); valgrind recognises it and reads the request from the array in rax.
//! Outside valgrind it costs a few cycles, so it is always compiled in.

const STACK_REGISTER: u64 = 0x1501;
const STACK_DEREGISTER: u64 = 0x1502;

#[cfg(target_arch = "x86_64")]
fn client_request(default: u64, args: &[u64; 6]) -> u64 {
    let mut result = default;
    // SAFETY: the sequence rotates rdi by a multiple of 64 bits (net no change) and exchanges
    // rbx with itself; it reads `args` only under valgrind. No memory is written.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            inout("rdi") 0u64 => _,
            options(nostack, readonly, preserves_flags),
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(default: u64, _args: &[u64; 6]) -> u64 {
    default
}

/// Tells valgrind that `[lo, hi)` is a stack; returns its id for [`stack_deregister`].
pub(crate) fn stack_register(lo: usize, hi: usize) -> u64 {
    client_request(0, &[STACK_REGISTER, lo as u64, hi as u64, 0, 0, 0])
}

/// Forgets a stack registered with [`stack_register`].
pub(crate) fn stack_deregister(id: u64) {
    client_request(0, &[STACK_DEREGISTER, id, 0, 0, 0, 0]);
}
