//! Exit codes, documented in README.md. `drill run` and `demo` use the first three.

/// Every drill passed (or the command succeeded).
pub(crate) const OK: u8 = 0;
/// A drill ran and was not verified: a failed check, a missed objective, a failed restore.
pub(crate) const NOT_VERIFIED: u8 = 1;
/// Could not run or could not finish: bad input, a missing dependency, a target outside the
/// window, an interruption, an internal error.
pub(crate) const COULD_NOT_RUN: u8 = 2;

/// `stack plan --detailed-exitcode`: the plan has changes (every error is then 1, never 2).
pub(crate) const PLAN_CHANGES: u8 = 2;
/// `stack plan --detailed-exitcode`: any error, bad input included.
pub(crate) const PLAN_ERROR: u8 = 1;
/// `stack drift`: live state differs from the stack.
pub(crate) const DRIFTED: u8 = 2;
