//! Drill reports: the v1 model, its Markdown rendering, and the directory store.

mod markdown;
pub(crate) mod model;
mod store;

pub(crate) use model::{Report, Verdict};
pub(crate) use store::{Written, atomic_write, resolve_dir, write};
