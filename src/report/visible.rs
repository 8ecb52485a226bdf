//! The one sanitiser every rendering shares: characters that act instead of showing — terminal controls
//! (`ESC[2K\r` erasing a verdict, OSC 52 setting the clipboard), bidirectional overrides (U+202E reordering
//! a line) and invisible format characters — are written out as escapes (`\u{1b}`, `\r`, `\u{202e}`), so
//! what a database value or a name carries is seen, never obeyed. Ordinary text, tabs and newlines pass
//! unchanged.

use std::borrow::Cow;

/// Whether `c` would act on a terminal or a renderer instead of showing: a C0 control but tab and newline,
/// DEL, a C1 control, a bidirectional control, an invisible format character or a non-character.
pub(crate) fn hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // bidi: ALM, LRM/RLM, embeddings and overrides, isolates
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // zero-width and line/paragraph separators, the BOM, interlinear annotation, non-characters
        | '\u{200b}'..='\u{200d}' | '\u{2028}' | '\u{2029}' | '\u{2060}' | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}' | '\u{fffe}' | '\u{ffff}')
}

/// `s` with every [`hidden`] character written as its escape (`\u{1b}`, `\r`, `\u{202e}`).
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` as JSON text with every [`hidden`] character left in a string as a `\uXXXX` escape (serde_json
/// escapes the C0 controls itself, not DEL, C1 or the bidi controls): the same data, shown safely.
pub(crate) fn json_escaped(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            // Every hidden character is in the Basic Multilingual Plane: one escape each.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(visible("\u{1b}[2K\r✔ ALL CHECKS PASSED"), "\\u{1b}[2K\\r✔ ALL CHECKS PASSED");
        assert_eq!(visible("\u{1b}]52;c;ZXZpbA==\u{7}"), "\\u{1b}]52;c;ZXZpbA==\\u{7}");
        assert_eq!(visible("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(visible("a\u{9b}31m"), "a\\u{9b}31m");
        assert_eq!(visible("x\u{2067}y\u{200b}"), "x\\u{2067}y\\u{200b}");
        for ordinary in ["orders-pitr: FAILED  RTO 42.5s", "tab\tand\nnewline", "→ — × ✔ 日本語 émoji 🎉", ""]
        {
            assert!(matches!(visible(ordinary), Cow::Borrowed(_)), "{ordinary:?} unchanged");
        }
    }

    #[test]
    fn json_keeps_the_data_and_escapes_what_would_act() {
        let raw = serde_json::to_string(&serde_json::json!({"v": "a\u{202e}b\u{9b}c\u{1b}"})).unwrap();
        let shown = json_escaped(&raw);
        assert!(!shown.chars().any(hidden), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["v"], "a\u{202e}b\u{9b}c\u{1b}");
    }
}
