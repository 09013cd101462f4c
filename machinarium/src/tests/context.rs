//! The context switch contract, checked by calling the switch straight from assembly (a Rust
//! frame in between would save the registers itself and hide a broken switch).

use std::cell::Cell;

use crate::context::raw_switch;
use crate::stack::Stack;

struct Pair {
    main_sp: Cell<*mut u8>,
    co_sp: Cell<*mut u8>,
}

const MAGIC: [u64; 6] = [
    0x1111_2222_3333_4444,
    0x5555_6666_7777_8888,
    0x9999_aaaa_bbbb_cccc,
    0xdddd_eeee_ffff_0001,
    0x0123_4567_89ab_cdef,
    0xfedc_ba98_7654_3210,
];

/// The coroutine side: overwrite every callee-saved register, then switch back from asm.
unsafe extern "sysv64" fn clobber_entry(arg: *mut u8) -> ! {
    // SAFETY: `arg` is the `Pair` of the test, alive until the test returns, and the test
    // never resumes this context again.
    let pair = unsafe { &*(arg as *const Pair) };
    let back = pair.main_sp.get();
    // SAFETY: switches to the suspended main context saved by the test's first switch; this
    // context is abandoned (never resumed), so clobbering rbp/rbx is harmless.
    unsafe {
        core::arch::asm!(
            "mov rbx, -1",
            "mov rbp, -1",
            "mov r12, -1",
            "mov r13, -1",
            "mov r14, -1",
            "mov r15, -1",
            "call {switch}",
            "ud2",
            switch = sym raw_switch,
            in("rdi") pair.co_sp.as_ptr(),
            in("rsi") back,
            options(noreturn),
        )
    }
}

#[test]
fn switch_preserves_callee_saved_registers() {
    let stack = Stack::new(16, 1).expect("stack");
    let pair = Pair {
        main_sp: Cell::new(std::ptr::null_mut()),
        co_sp: Cell::new(std::ptr::null_mut()),
    };
    // SAFETY: a fresh stack used only by this context.
    let sp = unsafe {
        crate::context::Context::new(stack.top(), clobber_entry, &pair as *const Pair as *mut u8)
    };
    pair.co_sp.set(sp.raw_sp());
    let mut out = [0u64; 6];
    // SAFETY: loads magic values into the callee-saved registers, switches to the coroutine
    // (which clobbers them and switches back), then stores what the registers hold. rbx and rbp
    // are saved and restored by hand because LLVM reserves them; the stack stays 16-aligned at
    // the call (3 pushes + 8 bytes).
    unsafe {
        core::arch::asm!(
            "push rbx",
            "push rbp",
            "push {out}",
            "sub rsp, 8",
            "mov rbx, {m0}",
            "mov rbp, {m1}",
            "mov r12, {m2}",
            "mov r13, {m3}",
            "mov r14, {m4}",
            "mov r15, {m5}",
            "call {switch}",
            "add rsp, 8",
            "pop rax",
            "mov [rax], rbx",
            "mov [rax + 8], rbp",
            "mov [rax + 16], r12",
            "mov [rax + 24], r13",
            "mov [rax + 32], r14",
            "mov [rax + 40], r15",
            "pop rbp",
            "pop rbx",
            out = in(reg) out.as_mut_ptr(),
            m0 = const MAGIC[0],
            m1 = const MAGIC[1],
            m2 = const MAGIC[2],
            m3 = const MAGIC[3],
            m4 = const MAGIC[4],
            m5 = const MAGIC[5],
            switch = sym raw_switch,
            in("rdi") pair.main_sp.as_ptr(),
            in("rsi") sp.raw_sp(),
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("sysv64"),
        )
    }
    assert_eq!(out, MAGIC, "callee-saved registers must survive a switch");
}

fn mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stores MXCSR into a local.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
    v
}

fn set_mxcsr(v: u32) {
    // SAFETY: loads a valid MXCSR value (only rounding bits differ from the default).
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack)) };
}

fn x87cw() -> u16 {
    let mut v: u16 = 0;
    // SAFETY: stores the x87 control word into a local.
    unsafe { core::arch::asm!("fnstcw [{}]", in(reg) &mut v, options(nostack)) };
    v
}

fn set_x87cw(v: u16) {
    // SAFETY: loads a valid x87 control word (only rounding bits differ from the default).
    unsafe { core::arch::asm!("fldcw [{}]", in(reg) &v, options(nostack)) };
}

const ROUND_TOWARD_ZERO: u32 = 0x6000;

#[test]
fn switch_keeps_mxcsr_per_coroutine() {
    let r = crate::run(|| {
        let parent = mxcsr();
        let child = crate::spawn(|| {
            set_mxcsr(mxcsr() | ROUND_TOWARD_ZERO);
            crate::yield_now();
            let mine = mxcsr() & ROUND_TOWARD_ZERO;
            set_mxcsr(mxcsr() & !ROUND_TOWARD_ZERO);
            mine
        });
        crate::yield_now();
        let seen_by_parent = mxcsr();
        (
            parent,
            seen_by_parent,
            child.join(crate::Deadline::NEVER).expect("join"),
        )
    })
    .expect("run");
    assert_eq!(r.0, r.1, "the parent's MXCSR must not change");
    assert_eq!(
        r.2, ROUND_TOWARD_ZERO,
        "the child's rounding mode must survive a yield"
    );
}

#[test]
fn switch_keeps_x87_control_word_per_coroutine() {
    let r = crate::run(|| {
        let parent = x87cw();
        let child = crate::spawn(|| {
            set_x87cw(x87cw() | 0x0C00);
            crate::yield_now();
            let mine = x87cw() & 0x0C00;
            set_x87cw(x87cw() & !0x0C00);
            mine
        });
        crate::yield_now();
        let seen_by_parent = x87cw();
        (
            parent,
            seen_by_parent,
            child.join(crate::Deadline::NEVER).expect("join"),
        )
    })
    .expect("run");
    assert_eq!(r.0, r.1, "the parent's x87 control word must not change");
    assert_eq!(r.2, 0x0C00, "the child's x87 rounding must survive a yield");
}

/// Returns rsp as seen at its own entry (after the call pushed the return address).
#[unsafe(naked)]
extern "sysv64" fn rsp_at_entry() -> usize {
    core::arch::naked_asm!("mov rax, rsp", "ret")
}

#[test]
fn coroutine_entry_is_abi_aligned() {
    let rsp = crate::run(|| {
        crate::spawn(|| rsp_at_entry())
            .join(crate::Deadline::NEVER)
            .expect("join")
    })
    .expect("run");
    assert_eq!(rsp % 16, 8, "a function must start with rsp % 16 == 8");
    // And code that uses aligned SSE stores on the stack runs.
    let sum = crate::run(|| {
        crate::spawn(|| {
            let v = std::hint::black_box([1.5f64; 8]);
            v.iter().sum::<f64>()
        })
        .join(crate::Deadline::NEVER)
        .expect("join")
    })
    .expect("run");
    assert_eq!(sum, 12.0);
}
