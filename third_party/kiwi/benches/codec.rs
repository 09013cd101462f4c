//! Codec throughput: a DataRow stream (split only, split + decode, encode) and a startup packet.
//!
//! Run with `cargo bench -p kiwi`. Divide a stream time by `ROWS` for the cost per message.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiwi::backend::DataRow;
use kiwi::header::{DEFAULT_MAX_MESSAGE, Frames};
use kiwi::startup::{ProtocolVersion, Startup};
use kiwi::{BackendMessage, StartupPacket};

/// Rows in the DataRow stream.
const ROWS: usize = 10_000;

/// Five columns as a typical `SELECT id, name, note, created_at, payload` returns them.
fn row(i: usize) -> (String, String, Vec<u8>) {
    (i.to_string(), format!("user-{i:08}-name"), vec![b'x'; 100])
}

fn stream() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..ROWS {
        let (id, name, payload) = row(i);
        DataRow::encode_values(
            &mut out,
            &[
                Some(id.as_bytes()),
                Some(name.as_bytes()),
                None,
                Some(b"2024-01-01 12:00:00+00"),
                Some(&payload),
            ],
        );
    }
    out
}

fn data_rows(c: &mut Criterion) {
    let bytes = stream();
    let mut group = c.benchmark_group("data_row_stream");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("split", |b| {
        b.iter(|| {
            let mut n = 0;
            for frame in Frames::new(black_box(&bytes), DEFAULT_MAX_MESSAGE) {
                n += frame.map(|f| f.bytes.len()).unwrap_or(0);
            }
            n
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0;
            for frame in Frames::new(black_box(&bytes), DEFAULT_MAX_MESSAGE) {
                if let Ok(Ok(BackendMessage::DataRow(row))) =
                    frame.map(|f| BackendMessage::from_frame(&f))
                {
                    n += row.values.len();
                }
            }
            n
        })
    });
    let rows: Vec<_> = Frames::new(&bytes, DEFAULT_MAX_MESSAGE)
        .filter_map(|f| f.ok().and_then(|f| DataRow::decode(f.body).ok()))
        .collect();
    let mut out = Vec::with_capacity(bytes.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            for row in black_box(&rows) {
                row.encode(&mut out);
            }
            out.len()
        })
    });
    group.finish();
}

fn startup(c: &mut Criterion) {
    let packet = Startup {
        version: ProtocolVersion::V3_0,
        params: vec![
            (&b"user"[..], &b"app_user"[..]),
            (b"database", b"app_db"),
            (b"application_name", b"psql"),
            (b"client_encoding", b"UTF8"),
            (b"DateStyle", b"ISO, MDY"),
            (b"options", b"-c statement_timeout=5s"),
        ],
    };
    let mut bytes = Vec::new();
    packet.encode(&mut bytes);
    let mut group = c.benchmark_group("startup_packet");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| StartupPacket::parse(black_box(&bytes)).map(|p| p.map(|(_, n)| n)))
    });
    let mut out = Vec::with_capacity(bytes.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&packet).encode(&mut out);
            out.len()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the machine is shared.
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
}

criterion_group! { name = benches; config = config(); targets = data_rows, startup }
criterion_main!(benches);
