//! machinarium: stackful coroutines on machines.
//!
//! A **machine** is an OS thread with a scheduler, one `mio::Poll` and a timer heap. It runs
//! **coroutines**: functions with their own small mmap'd stack that block (on io, a channel, a
//! timer) by switching back to the machine's scheduler, so that code reads as plain
//! synchronous Rust. Coroutines never move between threads; what crosses threads is messages
//! (channels), detached sockets, and `Send` closures spawned on another machine.
//!
//! # Layout
//! - [`context`](crate::context) (private): the x86_64 (and i686) context switch, in assembly.
//! - `stack`, `overflow`, `valgrind`: stacks with guard pages, the overflow handler, valgrind
//!   stack registration.
//! - `scheduler`, `coroutine`: coroutine records, the ready queue; [`spawn`], [`JoinHandle`],
//!   [`yield_now`], [`sleep`].
//! - `machine`: [`machine_create`], [`MachineHandle`], [`run`]; the loop.
//! - `call`, `timer`: the one blocking primitive (wake / deadline / cancel); [`Deadline`].
//! - `reactor`, [`net`]: the event loop's io side; streams, listeners, parking without a stack.
//! - `cond`, `channel`, `wait_group`: synchronisation within and across machines.
//! - `blocking`, `signal`: a thread pool for blocking calls; signals delivered to a coroutine.
//! - `net::TlsStream`: openssl streams over coroutine io.
//!
//! # Safety rules of the API
//! - `spawn` takes `'static` closures: a coroutine may outlive its spawner, so it cannot
//!   borrow from it. Cross-machine spawns and messages must be `Send`.
//! - Streams, join handles and conds-in-use are `!Send`: they are registered with one
//!   machine. Move a socket with `Stream::detach` → `DetachedStream` (Send) → `attach`.
//! - Never hold a `RefCell` borrow or a `std::sync::Mutex` guard across a blocking call:
//!   another coroutine on the same thread would find it borrowed or deadlock.
//! - A blocking call made while the thread unwinds a panic fails with [`Error::Unwinding`]
//!   instead of switching.
//! - A stack overflow in a coroutine aborts the process with a message naming the coroutine
//!   and the stack size; raise `stack_pages` for deep call chains (TLS, LDAP).
//! - Linux on x86_64 (i686 builds, untested here) only.

mod blocking;
mod buffers;
mod call;
mod channel;
mod cond;
mod context;
mod coroutine;
mod error;
mod machine;
pub mod net;
mod overflow;
pub mod process;
mod reactor;
mod scheduler;
mod signal;
mod stack;
mod timer;
mod valgrind;
mod wait_group;

pub use blocking::BlockingPool;
pub use buffers::{BUFFER_SIZE, give_buffer, take_buffer};
pub use channel::{Receiver, SendError, Sender, channel, channel_with_limit};
pub use cond::Cond;
pub use coroutine::{
    CoroutineId, JoinError, JoinHandle, RemoteJoin, cancelled, coroutine_count, current_id,
    panic_message, sleep, spawn, try_spawn, yield_now,
};
pub use error::{Error, Result};
pub use machine::{
    MachineConfig, MachineHandle, MachineId, current_machine_id, current_machine_name,
    machine_create, registered_sockets, run, run_with,
};
pub use reactor::ParkEvent;
pub use signal::{SignalFd, block_signals};
pub use stack::{PAGE_SIZE, guard_uses_madvise};
pub use timer::Deadline;
pub use wait_group::WaitGroup;

#[cfg(test)]
mod tests;
