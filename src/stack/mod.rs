//! Stacks: the declared resources (model), live state (live, resources), the plan, applying it, and policy.

pub(crate) mod apply;
pub(crate) mod live;
pub(crate) mod model;
pub(crate) mod plan;
pub(crate) mod policy;
pub(crate) mod resources;
