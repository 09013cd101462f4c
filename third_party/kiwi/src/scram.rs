//! SCRAM
