//! The hub's bookkeeping: when the listener must start, which requests it gets, who a
//! notification reaches and with which pid, and the mailbox's bound.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use kiwi::backend::NotificationResponse;
use machinarium::net::{Stream, StreamWaker};

use super::*;
use crate::id::ClientId;

/// Runs `f` with a mailbox whose waker points at a real (idle) stream.
fn with_mailboxes(n: usize, f: impl FnOnce(Vec<Arc<Mailbox>>) + Send + 'static) {
    let peer = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = peer.local_addr().expect("addr");
    machinarium::run(move || {
        let streams: Vec<Stream> = (0..n)
            .map(|_| Stream::connect(addr, Duration::from_secs(5)).expect("connect"))
            .collect();
        let boxes = streams
            .iter()
            .map(|s| {
                Arc::new(Mailbox::new(
                    StreamWaker::new(&s.park_key()).expect("waker"),
                ))
            })
            .collect();
        f(boxes);
        drop(streams);
    })
    .expect("run");
}

fn notification(pid: i32, channel: &str, payload: &str) -> Vec<u8> {
    let mut out = Vec::new();
    NotificationResponse {
        pid,
        channel: channel.as_bytes(),
        payload: payload.as_bytes(),
    }
    .encode(&mut out);
    out
}

#[test]
fn the_first_listen_starts_the_listener_and_a_confirmed_channel_needs_no_request() {
    with_mailboxes(2, |boxes| {
        let hub = ListenHub::default();
        let (a, b) = (ClientId::new(), ClientId::new());
        let (confirm, start) = hub.listen(a, &boxes[0], "ch");
        assert!(
            confirm.is_some() && start.0,
            "first LISTEN: a request and a listener"
        );
        assert!(hub.is_active());
        let r = hub.next_request().expect("queued");
        assert!(r.listen && r.channel == "ch");
        hub.done(true, "ch");
        let (confirm, start) = hub.listen(b, &boxes[1], "ch");
        assert!(
            confirm.is_none() && !start.0,
            "the listener LISTENs already"
        );
        assert!(hub.next_request().is_none());

        // The channel's last client leaving UNLISTENs it; the hub goes idle.
        hub.unlisten(a, "ch");
        assert!(hub.next_request().is_none(), "b still listens");
        hub.unlisten_all(b);
        let r = hub.next_request().expect("UNLISTEN queued");
        assert!(!r.listen && r.channel == "ch");
        assert!(!hub.is_active());
        assert!(hub.stop_if_idle());
    });
}

#[test]
fn a_notification_reaches_the_channels_clients_with_the_holders_pid() {
    with_mailboxes(3, |boxes| {
        let hub = ListenHub::default();
        let ids = [ClientId::new(), ClientId::new(), ClientId::new()];
        let _ = hub.listen(ids[0], &boxes[0], "news");
        let _ = hub.listen(ids[1], &boxes[1], "news");
        let _ = hub.listen(ids[2], &boxes[2], "other");
        hub.held(4242, 77);
        let sent = notification(4242, "news", "hi");
        hub.deliver(&NotificationResponse::decode(&sent[5..]).unwrap());
        let want = notification(77, "news", "hi");
        assert_eq!(boxes[0].take(), (want.clone(), 0));
        assert_eq!(boxes[1].take(), (want, 0));
        assert_eq!(boxes[2].take(), (Vec::new(), 0), "another channel");
        // A sender the pooler does not know keeps PostgreSQL's pid.
        let outside = notification(99, "news", "x");
        hub.deliver(&NotificationResponse::decode(&outside[5..]).unwrap());
        assert_eq!(boxes[0].take().0, outside);
    });
}

#[test]
fn a_full_mailbox_counts_what_it_drops() {
    with_mailboxes(1, |boxes| {
        for _ in 0..MAILBOX_MAX + 3 {
            boxes[0].push(vec![1]);
        }
        let (bytes, dropped) = boxes[0].take();
        assert_eq!((bytes.len(), dropped), (MAILBOX_MAX, 3));
        assert_eq!(boxes[0].take(), (Vec::new(), 0));
    });
}

#[test]
fn a_failed_listener_fails_the_waiting_listens() {
    with_mailboxes(1, |boxes| {
        let hub = ListenHub::default();
        let client = ClientId::new();
        let (confirm, _) = hub.listen(client, &boxes[0], "ch");
        hub.fail_waiting("no server");
        let got = confirm
            .expect("waiting")
            .recv(Duration::from_secs(1))
            .expect("answer");
        assert_eq!(got, Err("no server".to_string()));
        hub.forget(client, "ch");
        assert!(!hub.is_active());
        assert!(hub.stop_if_idle());
    });
}
