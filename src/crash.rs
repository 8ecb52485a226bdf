//! A test hook for crash safety: with `STACKDRILL_CRASHPOINT=<name>` in the environment, the process kills
//! itself with SIGKILL when it reaches the point of that name — a crash at an exact place no signal sent from
//! outside could hit reliably (between two writes of a commit). Points: `report:before-ledger`,
//! `report:after-ledger`, `also-restore:copying` (a scratch bucket made, nothing copied yet).

#[expect(clippy::disallowed_methods, reason = "test crash points are read where they fire (documented)")]
pub(crate) fn point(name: &str) {
    if std::env::var_os("STACKDRILL_CRASHPOINT").is_some_and(|v| v == name) {
        tracing::warn!("crash point `{name}`: killing this process (STACKDRILL_CRASHPOINT)");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
