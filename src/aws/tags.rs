//! The ownership tag every AWS resource stackdrill creates carries, stack resources and drill scratch alike:
//! nothing without it is ever changed or deleted.

pub(crate) const TAG_MANAGED: &str = "stackdrill:managed";
