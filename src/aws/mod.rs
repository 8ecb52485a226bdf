//! Everything that talks to AWS shares this: one SDK config builder, error classifiers, an API call
//! counter, and polling with backoff.

mod calls;
mod config;
mod error;
#[cfg(test)]
mod mocks;
mod poll;

pub(crate) use calls::{CallCounter, Calls};
#[cfg(test)]
pub(crate) use config::retry_config;
pub(crate) use config::{AwsSettings, DEFAULT_REGION, check_credentials, load};
pub(crate) use error::{AwsError, Kind, classify};
#[cfg(test)]
pub(crate) use mocks::mocked;
pub(crate) use poll::Backoff;
