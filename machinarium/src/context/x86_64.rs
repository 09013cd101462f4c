//! The x86_64 System V context switch: the only assembly of the project.
//!
//! A suspended context is one word, its saved stack pointer. The registers the psABI makes
//! callee-saved live on the suspended context's own stack, in this layout (low → high):
//!
//! ```text
//!   sp+0   mxcsr: u32 | x87 control word: u16 | pad
//!   sp+8   r15
//!   sp+16  r14
//!   sp+24  r13
//!   sp+32  r12
//!   sp+40  rbx
//!   sp+48  rbp
//!   sp+56  return address           (the resumed context's rsp after `ret` is sp+64)
//! ```
//!
//! gdb or a debugger can rebuild a suspended coroutine's frame from this: `rip = *(sp+56)`,
//! `rbp = *(sp+48)`, `rsp = sp+64`.

use core::arch::naked_asm;

/// Saves the callee-saved state of the running context on its stack, stores its stack pointer
/// to `*from`, and resumes the context whose stack pointer is `to`.
///
/// # Safety
/// `from` must be valid for a write. `to` must be a stack pointer produced either by
/// [`init_stack`] (a context that was never run) or by an earlier `switch` that stored it
/// (a suspended context), and that context must not have been resumed since.
#[unsafe(naked)]
pub unsafe extern "sysv64" fn switch(from: *mut *mut u8, to: *mut u8) {
    naked_asm!(
        // Naked functions get no CFI from rustc; without it unwinders and gdb lose their way.
        ".cfi_startproc",
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset rbp, 0",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset rbx, 0",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r12, 0",
        "push r13",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r13, 0",
        "push r14",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r14, 0",
        "push r15",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r15, 0",
        // The MXCSR control bits and the x87 control word are callee-saved too (psABI 3.2.1):
        // a C library that changes rounding must not leak it into another coroutine.
        "sub rsp, 8",
        ".cfi_adjust_cfa_offset 8",
        "stmxcsr [rsp]",
        "fnstcw [rsp + 4]",
        // Publish our stack pointer, adopt theirs. Both stacks have the same layout, so the
        // CFI above describes the frame we pop below as well.
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "ldmxcsr [rsp]",
        "fldcw [rsp + 4]",
        "add rsp, 8",
        ".cfi_adjust_cfa_offset -8",
        "pop r15",
        ".cfi_adjust_cfa_offset -8",
        "pop r14",
        ".cfi_adjust_cfa_offset -8",
        "pop r13",
        ".cfi_adjust_cfa_offset -8",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        "ret",
        ".cfi_endproc",
    )
}

/// First code run on a fresh stack: calls the entry function (in rbx) with its argument
/// (in r12). Here rsp is 16-aligned, so the entry function starts with `rsp % 16 == 8` as the
/// ABI requires.
#[unsafe(naked)]
unsafe extern "sysv64" fn trampoline() -> ! {
    naked_asm!(
        ".cfi_startproc",
        // The outermost frame of a coroutine: unwinders and gdb stop here cleanly.
        ".cfi_undefined rip",
        // End the frame-pointer chain for perf and gdb.
        "xor ebp, ebp",
        "mov rdi, r12",
        "call rbx",
        // The entry function never returns; `ud2` keeps the return address of the call
        // inside this function's bounds for unwinders.
        "ud2",
        ".cfi_endproc",
    )
}

/// The function a fresh context starts in. It must never return.
pub type Entry = unsafe extern "sysv64" fn(*mut u8) -> !;

/// Default MXCSR (all exceptions masked, round to nearest) and x87 control word (extended
/// precision, round to nearest), as the psABI specifies for process start.
const MXCSR_DEFAULT: u64 = 0x1F80;
const X87CW_DEFAULT: u64 = 0x037F;

/// Writes the initial frame of a context that will run `entry(arg)` on the stack whose
/// highest address is `top`, and returns its stack pointer for [`switch`].
///
/// Frame, in u64 slots below the 16-aligned top: two slots of padding (so that rsp after the
/// first `ret` is 16-aligned), the trampoline's address as return address, then rbp = 0,
/// rbx = entry, r12 = arg, r13..r15 = 0, and the FP control words.
///
/// # Safety
/// `top` must be the end of a writable region of at least 128 bytes that nothing else uses.
pub unsafe fn init_stack(top: *mut u8, entry: Entry, arg: *mut u8) -> *mut u8 {
    let top = (top as usize & !15) as *mut u64;
    let slots: [u64; 10] = [
        MXCSR_DEFAULT | (X87CW_DEFAULT << 32), // sp+0
        0,                                     // r15
        0,                                     // r14
        0,                                     // r13
        arg as u64,                            // r12
        entry as *const () as u64,             // rbx
        0,                                     // rbp
        trampoline as *const () as u64,        // return address
        0,                                     // padding
        0,                                     // padding
    ];
    // SAFETY: the caller guarantees 128 writable bytes below `top`; we write 80.
    unsafe {
        let sp = top.sub(slots.len());
        core::ptr::copy_nonoverlapping(slots.as_ptr(), sp, slots.len());
        sp as *mut u8
    }
}
