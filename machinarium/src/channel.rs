//! Channels: many senders, many receivers, on any machines; `send` never blocks.
//!
//! A sender hands a value straight to the first waiting receiver when there is one, under the
//! channel's lock. A receiver whose deadline fires at the same moment checks, under the same
//! lock, whether it was handed a value; if so it returns the value instead of the timeout.
//! Nothing is ever dropped in that race (upstream's `channel.c` drops it).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::call::{self, RemoteWaiter, Waiter};
use crate::coroutine::lock;
use crate::error::{Error, Result};
use crate::scheduler::Wake;
use crate::timer::Deadline;

/// Why `send` gave the value back.
pub enum SendError<T> {
    /// Every receiver is gone.
    Closed(T),
    /// The channel's hard limit is reached.
    Full(T),
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Full(_) => f.write_str("Full(..)"),
        }
    }
}

struct Handoff<T> {
    waiter: RemoteWaiter,
    value: Arc<Mutex<Option<T>>>,
}

struct State<T> {
    queue: VecDeque<T>,
    waiting: VecDeque<Handoff<T>>,
    senders: usize,
    receivers: usize,
    limit: Option<usize>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

/// The sending half; clone it for more senders.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half; clone it for more receivers.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A channel without a limit.
pub fn channel<T: Send>() -> (Sender<T>, Receiver<T>) {
    channel_with_limit(None)
}

/// A channel that refuses values beyond `limit` queued ones (`None`: no limit).
pub fn channel_with_limit<T: Send>(limit: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waiting: VecDeque::new(),
            senders: 1,
            receivers: 1,
            limit,
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T: Send> Sender<T> {
    /// Sends a value; never blocks.
    pub fn send(&self, v: T) -> std::result::Result<(), SendError<T>> {
        let waiter = {
            let mut s = lock(&self.shared.state);
            if s.receivers == 0 {
                return Err(SendError::Closed(v));
            }
            match s.waiting.pop_front() {
                Some(h) => {
                    *lock(&h.value) = Some(v);
                    h.waiter
                }
                None => {
                    if s.limit.is_some_and(|l| s.queue.len() >= l) {
                        return Err(SendError::Full(v));
                    }
                    s.queue.push_back(v);
                    return Ok(());
                }
            }
        };
        waiter.wake();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.shared.state).senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waiting: Vec<Handoff<T>> = {
            let mut s = lock(&self.shared.state);
            s.senders -= 1;
            if s.senders == 0 {
                s.waiting.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        for h in waiting {
            h.waiter.wake();
        }
    }
}

impl<T: Send> Receiver<T> {
    /// Receives a value, waiting until the deadline. [`Error::Closed`] once every sender is
    /// gone and the queue is empty.
    pub fn recv(&self, deadline: impl Into<Deadline>) -> Result<T> {
        let deadline = deadline.into();
        loop {
            if let Some(v) = self.try_recv_or_closed()? {
                return Ok(v);
            }
            let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
            let mut me: Option<Waiter> = None;
            let r = call::block(deadline, |w, m| {
                let mut s = lock(&self.shared.state);
                if !s.queue.is_empty() || s.senders == 0 {
                    w.wake_local(m, Wake::Ready);
                } else {
                    s.waiting.push_back(Handoff {
                        waiter: call::remote_waiter(w, m),
                        value: slot.clone(),
                    });
                    me = Some(w);
                }
            });
            if let Some(w) = me {
                lock(&self.shared.state).waiting.retain(|h| !h.waiter.is(w));
            }
            // Handed a value (possibly while the deadline fired): it is ours.
            if let Some(v) = lock(&slot).take() {
                return Ok(v);
            }
            r?;
        }
    }

    fn try_recv_or_closed(&self) -> Result<Option<T>> {
        let mut s = lock(&self.shared.state);
        match s.queue.pop_front() {
            Some(v) => Ok(Some(v)),
            None if s.senders == 0 => Err(Error::Closed),
            None => Ok(None),
        }
    }

    /// Takes a queued value without waiting.
    pub fn try_recv(&self) -> Option<T> {
        lock(&self.shared.state).queue.pop_front()
    }

    /// Values queued now.
    pub fn len(&self) -> usize {
        lock(&self.shared.state).queue.len()
    }

    /// Whether no value is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        lock(&self.shared.state).receivers += 1;
        Receiver {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        lock(&self.shared.state).receivers -= 1;
    }
}
