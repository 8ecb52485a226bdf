//! Fuzzing (proptest) of everything stackdrill parses from outside: drill and stack files (the repository's
//! own files, mutated byte by byte with YAML's syntax characters), schedule expressions, durations, target
//! flags, the deploy file and the report ledger. The property: no panic, and every rejection is an error with
//! a message — and, for YAML, a line inside the file. `PROPTEST_CASES` sets the number of cases (256 by
//! default; bench/reliability.sh runs many more).

use std::path::Path;

use proptest::prelude::*;

const DRILLS: [&str; 8] = [
    include_str!("../../drills/local-demo.yaml"),
    include_str!("../../drills/prod-db-pitr.yaml"),
    include_str!("../../drills/prod-aurora-pitr.yaml"),
    include_str!("../../drills/prod-db-backup-vault.yaml"),
    include_str!("../../drills/supabase-branch.yaml"),
    include_str!("../../drills/supabase-dump.yaml"),
    include_str!("../../drills/supabase-manual-restore.yaml"),
    include_str!("../../drills/supabase-new-project.yaml"),
];
const STACK: &str = include_str!("../../stacks/production.yaml");
const DEPLOY: &str = include_str!("../../schedule.yaml");
const ALPHABET: &[u8] = b" \n\t:-{}[],'\"#&*!|>%@`?0123456789azAZ.\\/~";

/// Applies `edits` (position, insert/delete/replace, byte from the alphabet) to `base`.
fn mutate(base: &str, edits: &[(u32, u8, u8)]) -> String {
    let mut b = base.as_bytes().to_vec();
    for &(pos, op, c) in edits {
        let c = ALPHABET[c as usize % ALPHABET.len()];
        let i = pos as usize % (b.len() + 1);
        match op % 3 {
            0 => b.insert(i, c),
            1 if i < b.len() => {
                b.remove(i);
            }
            _ if i < b.len() => b[i] = c,
            _ => b.push(c),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn edits() -> impl Strategy<Value = Vec<(u32, u8, u8)>> {
    proptest::collection::vec((any::<u32>(), any::<u8>(), any::<u8>()), 1..10)
}

/// Every error has a message, a line (if any) inside the text, and names a key that is in the input or in
/// the schema (every schema key appears in the repository's own files, which are the fuzzer's seeds).
fn clear(errors: &[super::ConfigError], text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty(), "a rejection without an error");
    let lines = text.lines().count();
    let known = || DRILLS.iter().chain([&STACK, &DEPLOY]);
    // A plain YAML key may span lines; the parser folds its line breaks and indentation into one space.
    let folded = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = folded(text);
    for e in errors {
        prop_assert!(!e.message.trim().is_empty(), "an error without a message: {e:?}");
        if let Some(l) = e.line {
            prop_assert!(l >= 1 && l <= lines + 1, "line {l} outside the file: {e:?}");
        }
        let last = e.key.rsplit('.').next().unwrap_or("");
        let name = folded(last.split('[').next().unwrap_or(""));
        if !name.is_empty() && name != "-" {
            prop_assert!(
                text.contains(&name) || known().any(|k| k.contains(&name)),
                "key `{}` is neither in the file nor in the schema: {e:?}",
                e.key
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn drill_files(which in 0usize..4, edits in edits()) {
        let text = mutate(DRILLS[which], &edits);
        if let Err(errors) = super::parse_drill(&text, Path::new("fuzz.yaml")) {
            clear(&errors, &text)?;
        }
    }

    #[test]
    fn stack_files(edits in edits()) {
        let text = mutate(STACK, &edits);
        if let Err(errors) = super::stack::parse_stack(&text, Path::new("fuzz.yaml")) {
            clear(&errors, &text)?;
        }
    }

    #[test]
    fn deploy_files(edits in edits()) {
        let text = mutate(DEPLOY, &edits);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("schedule.yaml");
        std::fs::write(&f, &text).unwrap();
        if let Err(errors) = super::load_deploy(&f) {
            clear(&errors, &text)?;
        }
    }

    #[test]
    fn schedule_expressions(text in "(cron\\(|rate\\()?[0-9*/,?LW#A-Za-z -]{0,40}\\)?", tz in 0usize..3, secs in 0i64..4_000_000_000) {
        let tz = [chrono_tz::Asia::Singapore, chrono_tz::America::New_York, chrono_tz::Australia::Lord_Howe][tz];
        match crate::cadence::Expr::parse(&text) {
            Ok(x) => {
                let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
                if let Some(n) = x.next_after(&tz, t) {
                    prop_assert!(n > t, "{text}: next {n} not after {t}");
                }
                let _ = x.to_aws();
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn durations_and_targets(text in "\\PC{0,24}") {
        if let Err(e) = super::duration::parse_duration(&text) {
            prop_assert!(!e.is_empty());
        }
        if let Err(e) = super::parse_target_flag(&text) {
            prop_assert!(!e.is_empty());
        }
    }

    #[test]
    fn ledger_reader(lines in proptest::collection::vec("\\PC{0,80}", 0..6), cut in any::<u16>()) {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"seq":1,"kind":"report","id":"a","drill":"d","result":"passed","file":"a.json","sha256":"00","previous":null,"at":"2026-01-01T00:00:00Z"}"#;
        let mut bytes = std::iter::once(good.to_string()).chain(lines).collect::<Vec<_>>().join("\n").into_bytes();
        // Cut anywhere, even inside a character: a crash does not respect UTF-8.
        bytes.truncate(cut as usize % (bytes.len() + 1));
        std::fs::write(dir.path().join("ledger.jsonl"), &bytes).unwrap();
        let _ = crate::report::chain::read(dir.path());
        let v = crate::report::chain::verify(dir.path(), &crate::report::trust::Trust::default());
        if let Ok(v) = v {
            for p in &v.problems {
                prop_assert!(!p.what.is_empty());
            }
        }
    }
}

/// `drill validate`'s errors for a file with several mistakes, pinned: file, line, column, key, hint.
#[test]
fn drill_validate_errors_snapshot() {
    let files = [
        "name: orders\nrestore:\n  local-postgress: {}\n",
        "name: orders\nrestore:\n  provider: local-postgres\n",
        &DRILLS[0].replace("rto: ", "rto: 10x #"),
        &DRILLS[0].replace("verify:\n", "verify:\n  - row-count: { table: orders, tolerence: 1 }\n"),
    ];
    let mut lines = Vec::new();
    for text in files {
        let errors = super::parse_drill(text, Path::new("drills/orders.yaml")).expect_err("the file has a mistake");
        lines.extend(errors.iter().map(ToString::to_string));
    }
    insta::assert_snapshot!("drill_validate_errors", lines.join("\n"));
}
