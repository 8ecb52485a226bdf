//! Stacks: the production stack as declared in `stacks/*.yaml`, and the policy it must keep.

pub(crate) mod model;
pub(crate) mod policy;
