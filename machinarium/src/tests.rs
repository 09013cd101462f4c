//! Unit tests of the runtime; integration-style tests live in `machinarium/tests/`.

mod context;
mod coroutines;
