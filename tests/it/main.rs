//! All integration tests, in one binary so the crate links once.

mod config;
mod harness;
mod local_drill;
