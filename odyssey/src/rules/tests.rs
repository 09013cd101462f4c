//! Precedence and matching tests.
