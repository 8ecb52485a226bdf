//! One module per service: read live state in batches, and create, update or delete a resource;
//! `dispatch.rs` picks the module by resource kind.

pub(crate) mod alarms;
pub(crate) mod backup;
pub(crate) mod beanstalk;
mod dispatch;
pub(crate) mod kms;
pub(crate) mod logs;
pub(crate) mod rds;
pub(crate) mod s3;
pub(crate) mod shield;
pub(crate) mod sns;
#[cfg(test)]
mod tests;

pub(crate) use dispatch::{
    Ctx, MissingProperty, StepError, bool_prop, create, delete, forces_replacement, holds_data, opt_str_prop, orphan,
    prop, str_prop, tag, tags, tags_of, update,
};
