//! IAM: the least-privilege policy each use of stackdrill needs (`stackdrill iam policy`).

pub(crate) mod policy;
