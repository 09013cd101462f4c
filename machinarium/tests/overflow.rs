//! A stack overflow in a coroutine aborts with a clear message (checked in a child process).

use std::process::Command;

const CHILD_ENV: &str = "MACHINARIUM_OVERFLOW_CHILD";

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        0
    } else {
        recurse(depth + 1) + pad[3]
    }
}

#[test]
fn stack_overflow_in_a_coroutine_aborts_with_a_message() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let _ = machinarium::run(|| {
            machinarium::spawn(|| recurse(0)).join(machinarium::Deadline::NEVER)
        });
        unreachable!("the overflow must abort the process");
    }
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .args([
            "--exact",
            "stack_overflow_in_a_coroutine_aborts_with_a_message",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}, stderr: {stderr}",
        out.status
    );
    assert!(
        stderr.contains("coroutine stack overflow"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("coroutine_stack_size"), "stderr: {stderr}");
}

#[test]
fn null_dereference_in_a_coroutine_is_still_a_segfault() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let _ = machinarium::run(|| {
            machinarium::spawn(|| {
                // SAFETY: none — this deliberately faults, in a child process, to check that the
                // handler passes faults outside a guard page on to the default action.
                unsafe { std::ptr::read_volatile(std::hint::black_box(16usize) as *const u64) }
            })
            .join(machinarium::Deadline::NEVER)
        });
        unreachable!("the fault must kill the process");
    }
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .args([
            "--exact",
            "null_dereference_in_a_coroutine_is_still_a_segfault",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("child");
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "status {:?}, stderr: {stderr}",
        out.status
    );
    assert!(!stderr.contains("coroutine stack overflow"));
}
