//! Tests of loading whole configs: includes, validation messages, defaults.
