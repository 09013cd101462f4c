//! The 32-bit x86 (i686) context switch, for `cfg(target_arch = "x86")`.
//!
//! Same design as the x86_64 switch: callee-saved registers (ebp, ebx, esi, edi) and the FP
//! control words are pushed on the suspended stack, whose pointer is the context handle.
//! `fastcall` passes `from` in ecx and `to` in edx, so no stack arguments need popping.
//!
//! Layout of a suspended context (low → high): mxcsr | x87 cw | edi | esi | ebx | ebp | ret.

use core::arch::naked_asm;

/// See the x86_64 `switch`.
///
/// # Safety
/// As for the x86_64 `switch`.
#[unsafe(naked)]
pub unsafe extern "fastcall" fn switch(from: *mut *mut u8, to: *mut u8) {
    naked_asm!(
        ".cfi_startproc",
        "push ebp",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset ebp, 0",
        "push ebx",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset ebx, 0",
        "push esi",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset esi, 0",
        "push edi",
        ".cfi_adjust_cfa_offset 4",
        ".cfi_rel_offset edi, 0",
        "sub esp, 8",
        ".cfi_adjust_cfa_offset 8",
        "stmxcsr [esp]",
        "fnstcw [esp + 4]",
        "mov [ecx], esp",
        "mov esp, edx",
        "ldmxcsr [esp]",
        "fldcw [esp + 4]",
        "add esp, 8",
        ".cfi_adjust_cfa_offset -8",
        "pop edi",
        ".cfi_adjust_cfa_offset -4",
        "pop esi",
        ".cfi_adjust_cfa_offset -4",
        "pop ebx",
        ".cfi_adjust_cfa_offset -4",
        "pop ebp",
        ".cfi_adjust_cfa_offset -4",
        "ret",
        ".cfi_endproc",
    )
}

/// First code on a fresh stack: ebx = entry, esi = argument; esp is 16-aligned here.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined eip",
        "xor ebp, ebp",
        // cdecl-like sysv i386: one stack argument, keep esp 16-aligned at the call.
        "sub esp, 12",
        "push esi",
        "call ebx",
        "ud2",
        ".cfi_endproc",
    )
}

/// The function a fresh context starts in. It must never return.
pub type Entry = unsafe extern "C" fn(*mut u8) -> !;

/// Writes the initial frame; see the x86_64 `init_stack`.
///
/// # Safety
/// `top` must be the end of a writable region of at least 64 bytes that nothing else uses.
pub unsafe fn init_stack(top: *mut u8, entry: Entry, arg: *mut u8) -> *mut u8 {
    let top = (top as usize & !15) as *mut u32;
    // After the first `ret` (7 slots popped) esp is top-16: 16-aligned, as the trampoline wants.
    let slots: [u32; 11] = [
        0x1F80,                         // mxcsr
        0x037F,                         // x87 cw
        0,                              // edi
        arg as u32,                     // esi
        entry as *const () as u32,      // ebx
        0,                              // ebp
        trampoline as *const () as u32, // return address
        0,                              // padding
        0,
        0,
        0,
    ];
    // SAFETY: the caller guarantees 64 writable bytes below `top`; we write 44.
    unsafe {
        let sp = top.sub(slots.len());
        core::ptr::copy_nonoverlapping(slots.as_ptr(), sp, slots.len());
        sp as *mut u8
    }
}
