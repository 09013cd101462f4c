//! Signals delivered into a coroutine through a signalfd.

use std::time::Duration;

use machinarium::{SignalFd, block_signals};

#[test]
fn sigusr1_reaches_the_waiting_coroutine() {
    // Blocked in this thread before the machine thread starts, so it inherits the mask;
    // other test threads may still take SIGUSR1, so send it to the machine's thread only.
    block_signals(&[libc::SIGUSR1]).expect("block");
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        machinarium::run(move || {
            let sfd = SignalFd::new(&[libc::SIGUSR1]).expect("signalfd");
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).expect("tid");
            sfd.wait(Duration::from_secs(5))
        })
    });
    let tid = tid_rx.recv_timeout(Duration::from_secs(5)).expect("tid");
    std::thread::sleep(Duration::from_millis(20));
    // SAFETY: tgkill to a live thread of this process.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
    assert_eq!(rc, 0);
    let got = waiter.join().expect("thread").expect("run").expect("wait");
    assert_eq!(got, libc::SIGUSR1);
}
