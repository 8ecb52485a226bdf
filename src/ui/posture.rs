//! What `backups check` prints: per store its outcome, then each figure with its objective and standing;
//! or the signed record itself as JSON.

use crate::report::posture::{Outcome, Record, Status};

use super::Printer;

/// The outcome as a line's first word.
fn word(o: Outcome) -> &'static str {
    match o {
        Outcome::Met => "MET",
        Outcome::NotMet => "NOT MET",
        Outcome::CouldNotRead => "COULD NOT READ",
    }
}

/// Prints `record` (and where it was written, when it was).
pub(crate) fn print(record: &Record, written: Option<&str>, printer: Printer) {
    if printer.is_json() {
        printer.json(record);
        return;
    }
    for s in &record.stores {
        let head = format!("{} {} ({})", word(s.result), s.name, s.kind);
        printer.line_marked(&head, word(s.result));
        for f in &s.figures {
            let objective = f.objective.as_deref().map(|o| format!(" [objective {o}]")).unwrap_or_default();
            let detail = f.detail.as_deref().map(|d| format!(" — {d}")).unwrap_or_default();
            let mark = if matches!(f.status, Status::NotMet | Status::CouldNotRead) { "!" } else { " " };
            printer.line(format!("  {mark} {:<12} {}{objective}: {}{detail}", f.name, f.value, f.status.as_str()));
        }
    }
    match written {
        Some(w) => printer.line(format!("{}: posture record {} written to {w}", word(record.result), record.id)),
        None => printer.line(format!("{}: posture record {} NOT written", word(record.result), record.id)),
    }
}
