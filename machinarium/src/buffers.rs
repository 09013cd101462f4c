//! A per-machine cache of small io buffers.
//!
//! A pooler reads each transaction into a buffer that it lets go of when the client goes idle
//! (an idle client keeps no buffer) and when a server goes back to its pool. Allocating and
//! zeroing a fresh one per transaction was two `malloc`s and 8 KiB of `memset` on the hot path;
//! a machine keeps a few of them instead, as it keeps coroutine stacks. A buffer from the cache
//! holds a former user's bytes: callers use it for reading into, never as data.

use crate::machine;

/// The size of the buffers cached.
pub const BUFFER_SIZE: usize = 4096;
/// At most this many buffers wait in one machine's cache (256 KiB): enough for the transactions
/// one worker has in flight, little next to the clients it holds.
const CACHED: usize = 64;

/// A buffer of [`BUFFER_SIZE`] bytes, from the current machine's cache when it has one.
pub fn take_buffer() -> Vec<u8> {
    machine::current()
        .and_then(|m| m.buffers.borrow_mut().pop())
        .unwrap_or_else(|| vec![0; BUFFER_SIZE])
}

/// Gives a buffer back: kept by the current machine when it is of the cached size and the
/// cache has room, freed otherwise.
pub fn give_buffer(buf: Vec<u8>) {
    if buf.len() != BUFFER_SIZE || buf.capacity() != BUFFER_SIZE {
        return;
    }
    if let Some(m) = machine::current() {
        let mut cache = m.buffers.borrow_mut();
        if cache.len() < CACHED {
            cache.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_taken_again_on_its_machine_and_odd_sizes_are_not_kept() {
        crate::run(|| {
            let buf = take_buffer();
            assert_eq!(buf.len(), BUFFER_SIZE);
            let at = buf.as_ptr();
            give_buffer(buf);
            let again = take_buffer();
            assert_eq!(again.as_ptr(), at, "the cached buffer comes back");
            give_buffer(vec![0; BUFFER_SIZE * 2]);
            assert_eq!(
                machine::current().map(|m| m.buffers.borrow().len()),
                Some(0)
            );
        })
        .expect("run");
        // Outside a machine: a fresh buffer, and giving one back keeps nothing.
        assert_eq!(take_buffer().len(), BUFFER_SIZE);
        give_buffer(vec![0; BUFFER_SIZE]);
    }
}
