//! Criterion benchmarks of the runtime's hot paths:
//!
//! - `switch/*`: nanoseconds per context switch. Every reported "iteration" is ONE switch (a
//!   `yield_now` is two: coroutine → scheduler and back, so a sample of `iters` switches runs
//!   `iters / 2` yields). `switch/raw_*` switches between two stacks with a copy of the
//!   assembly of `src/context/x86_64.rs` (the module is private), without the scheduler: the
//!   floor the scheduler path is built on. Variants: without the MXCSR/x87 save, and ending in
//!   `pop rcx; jmp rcx` instead of `ret` (a `ret` into another context always misses the
//!   return stack buffer; note the raw loop has no `ret`s after the switch, so in real code,
//!   where the resumed side returns through its callers, part of that gain may not carry over).
//! - `spawn_join/*`: spawn a coroutine and join it (stacks come from the machine's pool).
//! - `cross_machine/*`: a message round trip between two machines over two channels.
//! - `*/tokio_*_reference`: the same operation on a tokio current-thread runtime, measured in
//!   the same run as a reference: a task's `yield_now` (one pass through tokio's scheduler, not
//!   a stack switch: tokio's tasks are state machines) and `spawn` + awaiting the handle.
//!
//! `BENCH_QUICK=1` shortens warm-up and measurement for a smoke run.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use machinarium::{Deadline, MachineConfig, channel, machine_create, spawn, yield_now};

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0")
}

/// Scales a measured time of `done` units to the `iters` criterion asked for.
fn scale(elapsed: Duration, done: u64, iters: u64) -> Duration {
    elapsed.mul_f64(iters as f64 / done as f64)
}

/// `n` coroutines (the machine's main one among them) each call `yield_now` `k` times;
/// returns the time of the yielding phase. Every yield is two switches.
fn yield_round(n: u64, k: u64) -> Duration {
    machinarium::run(move || {
        let started = Rc::new(Cell::new(0u64));
        let handles: Vec<_> = (1..n)
            .map(|_| {
                let started = started.clone();
                spawn(move || {
                    started.set(started.get() + 1);
                    // Everyone starts yielding in the same round.
                    yield_now();
                    for _ in 0..k {
                        yield_now();
                    }
                })
            })
            .collect();
        while started.get() < n - 1 {
            yield_now();
        }
        let t = Instant::now();
        for _ in 0..k {
            yield_now();
        }
        for h in handles {
            h.join(Deadline::NEVER).expect("join");
        }
        t.elapsed()
    })
    .expect("run")
}

/// A tokio current-thread runtime: the reference the issue names for machinarium's figures.
fn tokio_reference() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

fn bench_switch(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch");
    for n in [2u64, 100, 1000] {
        g.bench_function(format!("yield_{n}_coroutines"), |b| {
            b.iter_custom(|iters| {
                // n coroutines × k yields × 2 switches ≥ iters.
                let k = iters.div_ceil(2 * n).max(1);
                scale(yield_round(n, k), 2 * n * k, iters)
            })
        });
    }
    #[cfg(target_arch = "x86_64")]
    {
        g.bench_function("raw_asm_copy", |b| {
            b.iter_custom(|iters| raw::ping_pong(iters, raw::Kind::Full))
        });
        g.bench_function("raw_asm_copy_without_fp_control", |b| {
            b.iter_custom(|iters| raw::ping_pong(iters, raw::Kind::GprOnly))
        });
        g.bench_function("raw_asm_copy_jmp_instead_of_ret", |b| {
            b.iter_custom(|iters| raw::ping_pong(iters, raw::Kind::Jmp))
        });
    }
    g.bench_function("tokio_yield_2_tasks_reference", |b| {
        b.iter_custom(|iters| {
            // Two tasks taking turns, as yield_2_coroutines: each yield is one "switch".
            let rt = tokio_reference();
            rt.block_on(async move {
                let per_task = iters.div_ceil(2).max(1);
                let t = Instant::now();
                let tasks: Vec<_> = (0..2)
                    .map(|_| {
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("task");
                }
                scale(t.elapsed(), 2 * per_task, iters)
            })
        })
    });
    g.finish();
}

fn bench_spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    g.bench_function("one_at_a_time", |b| {
        b.iter_custom(|iters| {
            machinarium::run(move || {
                // Fill the stack pool first, as a long-running machine would have it.
                spawn(|| ()).join(Deadline::NEVER).expect("join");
                let t = Instant::now();
                for i in 0..iters {
                    let v = spawn(move || black_box(i)).join(Deadline::NEVER);
                    black_box(v.expect("join"));
                }
                t.elapsed()
            })
            .expect("run")
        })
    });
    g.bench_function("tokio_spawn_await_reference", |b| {
        b.iter_custom(|iters| {
            let rt = tokio_reference();
            rt.block_on(async move {
                let t = Instant::now();
                for i in 0..iters {
                    let v = tokio::spawn(async move { black_box(i) }).await;
                    black_box(v.expect("task"));
                }
                t.elapsed()
            })
        })
    });
    const BATCH: u64 = 100;
    g.bench_function(format!("batch_of_{BATCH}_per_coroutine"), |b| {
        b.iter_custom(|iters| {
            machinarium::run(move || {
                let rounds = iters.div_ceil(BATCH);
                let t = Instant::now();
                for _ in 0..rounds {
                    let hs: Vec<_> = (0..BATCH).map(|i| spawn(move || black_box(i))).collect();
                    for h in hs {
                        black_box(h.join(Deadline::NEVER).expect("join"));
                    }
                }
                scale(t.elapsed(), rounds * BATCH, iters)
            })
            .expect("run")
        })
    });
    g.finish();
}

fn bench_cross_machine(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_machine");
    g.bench_function("channel_round_trip", |b| {
        b.iter_custom(|iters| {
            let (req_tx, req_rx) = channel::<u64>();
            let (resp_tx, resp_rx) = channel::<u64>();
            let echo = machine_create("echo", MachineConfig::default(), move || {
                // Ends when the requesting side drops its sender.
                while let Ok(v) = req_rx.recv(Deadline::NEVER) {
                    if resp_tx.send(v + 1).is_err() {
                        break;
                    }
                }
            })
            .expect("machine");
            let elapsed = machinarium::run(move || {
                // One untimed round trip so that the echo machine is up.
                req_tx.send(0).expect("send");
                resp_rx.recv(Duration::from_secs(10)).expect("recv");
                let t = Instant::now();
                for i in 0..iters {
                    req_tx.send(i).expect("send");
                    let v = resp_rx.recv(Duration::from_secs(10)).expect("recv");
                    debug_assert_eq!(v, i + 1);
                }
                t.elapsed()
            })
            .expect("run");
            echo.join().expect("echo machine");
            elapsed
        })
    });
    // The floor: the same round trip between two plain threads over std channels (futex
    // wakes instead of eventfd + epoll).
    g.bench_function("std_threads_mpsc_round_trip_baseline", |b| {
        b.iter_custom(|iters| {
            let (req_tx, req_rx) = std::sync::mpsc::channel::<u64>();
            let (resp_tx, resp_rx) = std::sync::mpsc::channel::<u64>();
            let echo = std::thread::spawn(move || {
                while let Ok(v) = req_rx.recv() {
                    if resp_tx.send(v + 1).is_err() {
                        break;
                    }
                }
            });
            req_tx.send(0).expect("send");
            resp_rx.recv().expect("recv");
            let t = Instant::now();
            for i in 0..iters {
                req_tx.send(i).expect("send");
                black_box(resp_rx.recv().expect("recv"));
            }
            let elapsed = t.elapsed();
            drop(req_tx);
            echo.join().expect("echo thread");
            elapsed
        })
    });
    g.finish();
}

/// The context switch of `src/context/x86_64.rs`, copied instruction for instruction (the
/// crate keeps it private), and a variant without the MXCSR/x87 control word save, to show
/// what that part costs.
#[cfg(target_arch = "x86_64")]
mod raw {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use core::arch::naked_asm;

    /// Same as machinarium's `switch`.
    #[unsafe(naked)]
    unsafe extern "sysv64" fn switch_full(from: *mut *mut u8, to: *mut u8) {
        naked_asm!(
            "push rbp",
            "push rbx",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "sub rsp, 8",
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "mov [rdi], rsp",
            "mov rsp, rsi",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 8",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbx",
            "pop rbp",
            "ret",
        )
    }

    /// Callee-saved general registers only; same frame layout (the FP slot is left alone).
    #[unsafe(naked)]
    unsafe extern "sysv64" fn switch_gpr(from: *mut *mut u8, to: *mut u8) {
        naked_asm!(
            "push rbp",
            "push rbx",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "sub rsp, 8",
            "mov [rdi], rsp",
            "mov rsp, rsi",
            "add rsp, 8",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbx",
            "pop rbp",
            "ret",
        )
    }

    /// Same as `switch_full`, but returns with `pop rcx; jmp rcx` instead of `ret`: a `ret`
    /// into another context never matches the return stack buffer, an indirect jump is
    /// predicted by the branch target buffer instead.
    #[unsafe(naked)]
    unsafe extern "sysv64" fn switch_jmp(from: *mut *mut u8, to: *mut u8) {
        naked_asm!(
            "push rbp",
            "push rbx",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "sub rsp, 8",
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "mov [rdi], rsp",
            "mov rsp, rsi",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 8",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbx",
            "pop rbp",
            "pop rcx",
            "jmp rcx",
        )
    }

    /// Calls the entry (rbx) with its argument (r12) on a fresh stack.
    #[unsafe(naked)]
    unsafe extern "sysv64" fn trampoline() -> ! {
        naked_asm!("xor ebp, ebp", "mov rdi, r12", "call rbx", "ud2")
    }

    #[derive(Clone, Copy)]
    pub(super) enum Kind {
        Full,
        GprOnly,
        Jmp,
    }

    struct Pair {
        main_sp: Cell<*mut u8>,
        co_sp: Cell<*mut u8>,
        kind: Kind,
    }

    /// # Safety
    /// `from` must be writable; `to` must be a suspended context of this module.
    unsafe fn switch(kind: Kind, from: *mut *mut u8, to: *mut u8) {
        match kind {
            // SAFETY: forwarded to the caller's contract.
            Kind::Full => unsafe { switch_full(from, to) },
            // SAFETY: forwarded to the caller's contract.
            Kind::GprOnly => unsafe { switch_gpr(from, to) },
            // SAFETY: forwarded to the caller's contract.
            Kind::Jmp => unsafe { switch_jmp(from, to) },
        }
    }

    /// The coroutine: switches straight back, forever.
    unsafe extern "sysv64" fn entry(arg: *mut u8) -> ! {
        // SAFETY: `arg` is the `Pair` that `ping_pong` keeps alive (and never moves) for as
        // long as it switches into this context.
        let pair = unsafe { &*(arg as *const Pair) };
        loop {
            // SAFETY: the main context was suspended by the switch that resumed us.
            unsafe { switch(pair.kind, pair.co_sp.as_ptr(), pair.main_sp.get()) };
        }
    }

    /// Runs `iters` switches (main → coroutine → main is two) and returns their time.
    pub(super) fn ping_pong(iters: u64, kind: Kind) -> Duration {
        // 64 KiB of stack, 16-aligned (u128 elements).
        let mut stack = vec![0u128; 4096];
        let pair = Box::new(Pair {
            main_sp: Cell::new(core::ptr::null_mut()),
            co_sp: Cell::new(core::ptr::null_mut()),
            kind,
        });
        let top = stack.as_mut_ptr_range().end as *mut u64;
        // Initial frame as in machinarium's `init_stack`: FP words, r15..r12, rbx = entry,
        // rbp, return address = trampoline, two words of padding.
        let slots: [u64; 10] = [
            0x1F80 | (0x037F << 32),
            0,
            0,
            0,
            &*pair as *const Pair as u64,
            entry as *const () as u64,
            0,
            trampoline as *const () as u64,
            0,
            0,
        ];
        // SAFETY: `stack` has 64 KiB; we write 80 bytes just below its (16-aligned) end.
        let sp = unsafe {
            let sp = top.sub(slots.len());
            core::ptr::copy_nonoverlapping(slots.as_ptr(), sp, slots.len());
            sp as *mut u8
        };
        pair.co_sp.set(sp);
        let rounds = iters.div_ceil(2).max(1);
        let t = Instant::now();
        for _ in 0..rounds {
            // SAFETY: the coroutine is suspended (fresh, or parked in its loop's switch); it
            // switches back at once, so `main_sp` is live again when this returns.
            unsafe { switch(kind, pair.main_sp.as_ptr(), pair.co_sp.get()) };
        }
        let elapsed = t.elapsed();
        // The coroutine stays suspended forever; its stack holds nothing that needs dropping.
        drop(stack);
        super::scale(elapsed, 2 * rounds, iters)
    }
}

fn config() -> Criterion {
    // criterion_group! applies the command line on top of this.
    let c = Criterion::default();
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
            .sample_size(10)
    } else {
        c.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(30)
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_switch, bench_spawn_join, bench_cross_machine
}
criterion_main!(benches);
