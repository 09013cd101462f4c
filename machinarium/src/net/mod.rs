//! Coroutine-blocking sockets: TCP and Unix streams and listeners.
//!
//! A [`Stream`] is registered with the machine that created or attached it and is `!Send`.
//! To move a socket to another machine (the accept → worker hand-off; a pooled server
//! connection taken by another worker), detach it into a [`DetachedStream`] (`Send`), send
//! that, and attach it on the other side. A TLS session moves the same way, as a
//! [`DetachedTlsStream`].

pub mod handover;
mod home;
mod listener;
pub(crate) mod park;
pub(crate) mod socket;
pub(crate) mod stream;
mod tls;
mod waker;

pub use listener::{AcceptedOptions, ListenOptions, Listener, PeerAddr};
pub use park::{ParkKey, park_any, wait_any};
pub use socket::KeepAlive;
pub use stream::{DetachedStream, Stream, wait_readable_any};
pub use tls::{DetachedTlsStream, TlsStream};
pub use waker::{Bell, BellRinger, StreamWaker, bell};
