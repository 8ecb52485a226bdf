//! Drill reports: the v1 model, its Markdown and HTML renderings, signatures and trusted keys, the hash
//! chain, the directory and S3 stores, the typed reader, the controls matrix and period figures, the
//! evidence pack, OpenMetrics, and the one sanitiser every rendering shares.

pub(crate) mod chain;
pub(crate) mod controls;
#[cfg(test)]
pub(crate) mod golden_tests;
pub(crate) mod html;
pub(crate) mod markdown;
pub(crate) mod model;
pub(crate) mod pack;
pub(crate) mod pack_html;
pub(crate) mod period;
pub(crate) mod posture;
pub(crate) mod posture_calendar;
pub(crate) mod prometheus;
pub(crate) mod s3;
pub(crate) mod sign;
pub(crate) mod store;
pub(crate) mod trust;
pub(crate) mod view;
pub(crate) mod visible;

pub(crate) use model::{Report, Verdict};
pub(crate) use sign::Signer;
pub(crate) use store::{ReportStore, StoreError, Written, atomic_write, write_loss, write_sign_off};
