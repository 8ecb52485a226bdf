//! The demo: a real local source cluster with WAL archiving, a product-like schema, a base backup,
//! and a write workload running while a drill restores it.

mod source;
mod workload;

pub(crate) use source::{DemoError, Source, prepare, reset};
pub(crate) use workload::{start_workload, write_drill_file};
