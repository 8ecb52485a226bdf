//! Everything that talks to AWS shares this: one SDK config builder, error classifiers, an API call
//! counter, and polling with backoff.

mod calls;
mod config;
mod error;
#[cfg(test)]
mod mocks;
mod poll;
pub(crate) mod s3;
pub(crate) mod s3list;
mod tags;

pub(crate) use calls::{CallCounter, Calls};
#[cfg(test)]
#[cfg(all(test, feature = "slow-tests"))]
pub(crate) use config::retry_config;
pub(crate) use config::{AwsSettings, DEFAULT_REGION, caller_identity, check_credentials, load, s3_client};
pub(crate) use error::{AwsError, Kind, classify};
#[cfg(test)]
pub(crate) use mocks::mocked;
pub(crate) use poll::Backoff;
pub(crate) use tags::TAG_MANAGED;

/// An SDK client of crate `$krate` from `$sdk` whose calls `$calls` (a [`CallCounter`]) counts.
macro_rules! client {
    ($krate:ident, $sdk:expr, $calls:expr) => {
        $krate::Client::from_conf($krate::config::Builder::from($sdk).interceptor($calls.clone()).build())
    };
}
pub(crate) use client;
