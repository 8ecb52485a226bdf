use std::path::Path;

use super::*;
use crate::report::trust::Role;
use crate::report::{Report, Verdict};

fn key(dir: &Path, name: &str) -> (Signer, Trust) {
    let path = dir.join(format!("k/{name}.key"));
    let (public, _) = sign::generate(&path).unwrap();
    let signer = Signer::configured(crate::report::sign::KeySource::File(path)).unwrap().unwrap();
    let mut trust = Trust::default();
    trust.add(
        name,
        Role::Operator,
        sign::parse_public_pem(&std::fs::read_to_string(public).unwrap()).unwrap(),
        "t".into(),
    );
    (signer, trust)
}

fn report(day: u32, month: u32, passed: bool) -> Report {
    let mut r = crate::report::golden_tests::fixed();
    r.id = format!("{month:02}{day:02}00000000");
    r.drill = "orders-pitr".into();
    r.trigger = "schedule".into();
    r.started_at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, month, day, 3, 0, 5).single().unwrap();
    r.finished_at = r.started_at + chrono::Duration::seconds(90);
    r.result = if passed { Verdict::Passed } else { Verdict::Failed };
    r.signing = None;
    r.previous_sha256 = None;
    r
}

fn spec() -> DrillSpec {
    let drill = "name: orders-pitr\nrestore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                 objectives: { rto: 1h, rpo: 5m }\nverify:\n  - amcheck: {}\ncontrols: [SOC2-A1.3]\n\
                 schedule: { cron: \"0 3 * * *\", timezone: UTC }\n";
    crate::config::parse_drill(drill, Path::new("drills/orders-pitr.yaml")).unwrap()
}

/// A store of daily drills from October 28 to December 2; November has 30 occurrences: 2 failed runs
/// (the 5th and the 22nd) and none on the 17th.
fn store(dir: &Path, signer: &Signer) {
    let days: Vec<(u32, u32)> =
        (28..=31).map(|d| (d, 10)).chain((1..=30).map(|d| (d, 11))).chain((1..=2).map(|d| (d, 12))).collect();
    for (day, month) in days {
        if (day, month) == (17, 11) {
            continue;
        }
        let passed = !(month == 11 && (day == 5 || day == 22));
        crate::report::store::write(dir, &mut report(day, month, passed), Some(signer)).unwrap();
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    out: PathBuf,
    trust: Trust,
}

fn exported() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let (signer, trust) = key(tmp.path(), "ops");
    let dir = tmp.path().join("store");
    store(&dir, &signer);
    let verified = chain::verify_with(&dir, &trust, false).unwrap();
    assert!(verified.ok(), "{:?}", verified.problems);
    let st = Store::read_with(&dir, verified).unwrap();
    let specs = [spec()];
    let period = Period {
        since: super::super::period::parse_bound("2026-11-01", false).unwrap(),
        until: super::super::period::parse_bound("2026-11-30", true).unwrap(),
    };
    let req = Request {
        store_dir: &dir,
        store_name: "reports".into(),
        store: &st,
        trust: &trust,
        specs: &specs,
        period,
        drills: vec![],
        now: super::super::period::parse_bound("2026-12-03", false).unwrap(),
    };
    let out = tmp.path().join("pack");
    let done = export(&req, &out, &signer).unwrap();
    assert_eq!(done.reports, 29, "29 runs in November");
    assert_eq!(done.entries, (5, 33), "October's 4 entries come before the slice");
    Fixture { _tmp: tmp, out, trust }
}

/// 30 daily occurrences with 2 failed and 1 missed give 27 / 2 / 1 in the index; the pack verifies
/// offline from the entry before the period.
#[test]
fn a_months_pack_counts_27_2_1_and_verifies() {
    let f = exported();
    let index = std::fs::read_to_string(f.out.join("index.html")).unwrap();
    assert!(
        index.contains("<td>30</td><td class=\"passed\">27</td><td class=\"failed\">2</td><td class=\"missed\">1</td>"),
        "{index}"
    );
    assert_eq!(index.matches("<tr class=\"occurrence\" data-outcome=\"missed\">").count(), 1);
    assert!(index.contains("SOC2-A1.3") && index.contains("objective 1h"), "controls and the objective line");
    for link in index.split("href=\"").skip(1).map(|s| s.split('"').next().unwrap()) {
        if !link.starts_with('#') {
            assert!(f.out.join(link).is_file(), "the index links to `{link}`, which is not in the pack");
        }
    }
    assert!(!index.replace("http://www.w3.org/2000/svg", "").contains("http"), "nothing outside the pack");
    let v = verify(&f.out, &f.trust).unwrap();
    assert!(v.ok(), "{:?} {:?}", v.signature, v.chain.problems);
    assert_eq!(v.chain.entries, 29);
    assert_eq!(std::fs::read_to_string(f.out.join("verify_dsse.py")).unwrap(), VERIFY_DSSE_PY);
    assert!(std::fs::read_to_string(f.out.join("VERIFY.md")).unwrap().contains("ledger.before.jsonl"));

    // Packed into one .tar.gz, which unpacks to the same files.
    let tgz = f.out.with_extension("tar.gz");
    tar(&f.out, &tgz).unwrap();
    let unpacked = f.out.with_file_name("unpacked");
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&tgz).unwrap());
    ::tar::Archive::new(gz).unpack(&unpacked).unwrap();
    assert!(verify(&unpacked.join("pack"), &f.trust).unwrap().ok());
}

/// Each kind of tampering with a pack is named: an edited rendering, an added file, a dropped ledger
/// line, an edited manifest, and a pack signed by a key nobody trusts.
#[test]
fn tampering_with_a_pack_is_named() {
    let first = |f: &Fixture| {
        let v = verify(&f.out, &f.trust).unwrap();
        assert!(!v.ok(), "tampering went unnoticed");
        v.chain
            .problems
            .first()
            .map(|p| format!("{}: {}", p.at, p.what))
            .unwrap_or_else(|| format!("{:?}", v.signature))
    };
    let f = exported();
    let html = walk(&f.out).unwrap().into_iter().find(|p| p.starts_with("reports/") && p.ends_with(".html")).unwrap();
    let text = std::fs::read_to_string(f.out.join(&html)).unwrap().replacen("<h1>", "<h1>Reviewed: ", 1);
    std::fs::write(f.out.join(&html), text).unwrap();
    let p = first(&f);
    assert!(p.contains(&format!("`{html}`")) && p.contains("was modified"), "{p}");

    let f = exported();
    std::fs::write(f.out.join("reports/extra.json"), "{}").unwrap();
    assert!(first(&f).contains("`reports/extra.json`: is not in the manifest"));

    let f = exported();
    let ledger = f.out.join("reports/ledger.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&ledger).unwrap().lines().map(String::from).collect();
    std::fs::write(&ledger, lines[1..].join("\n") + "\n").unwrap();
    let p = first(&f);
    assert!(p.contains("`reports/ledger.jsonl`: was modified"), "{p}");

    let f = exported();
    let m = f.out.join(MANIFEST);
    let text = std::fs::read_to_string(&m).unwrap().replacen("\"reports\"", "\"elsewhere\"", 1);
    std::fs::write(&m, text).unwrap();
    assert!(first(&f).contains("bad signature"));

    let f = exported();
    let v = verify(&f.out, &Trust::default()).unwrap();
    assert!(!v.ok() && matches!(v.signature, SigState::Unverified { .. }), "{:?}", v.signature);
}

/// The pack ships the very check the README shows.
#[test]
fn the_readme_shows_the_dsse_check_the_pack_ships() {
    let readme = include_str!("../../../README.md");
    let block = readme.split("<!-- dsse-verify -->").nth(1).unwrap();
    let block = block.split("<<'EOF'\n").nth(1).unwrap().split("\n  EOF").next().unwrap();
    let script: Vec<&str> = block.lines().map(|l| l.strip_prefix("  ").unwrap_or(l)).collect();
    assert_eq!(script.join("\n") + "\n", VERIFY_DSSE_PY);
}

/// A pack continues from the previous one's head: it holds that entry with that digest, or its first
/// entry links to it; a rewritten entry, a gap, and a pack that ends before the head are each named.
#[test]
fn a_pack_continues_from_the_previous_head_or_the_gap_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let entry = |seq: u64, sha: &str, previous: Option<&str>| Entry {
        seq,
        kind: EntryKind::Report,
        id: format!("{seq}"),
        drill: "d".into(),
        result: "passed".into(),
        file: format!("{seq}.json"),
        sha256: sha.into(),
        previous: previous.map(str::to_string),
        at: "2026-01-01T00:00:00Z".into(),
        key_id: None,
    };
    let pack = |name: &str, before: Option<Entry>, slice: &[Entry]| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(d.join("reports")).unwrap();
        let lines: Vec<String> = slice.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
        std::fs::write(d.join("reports").join(LEDGER), lines.join("\n") + "\n").unwrap();
        if let Some(b) = before {
            std::fs::write(d.join("reports").join(BEFORE), serde_json::to_string(&b).unwrap()).unwrap();
        }
        d
    };
    let head = Head { seq: 3, sha256: "c3".into() };
    // Overlapping: holds entry 3 as it was.
    let d =
        pack("overlap", None, &[entry(2, "b2", Some("a1")), entry(3, "c3", Some("b2")), entry(4, "d4", Some("c3"))]);
    assert!(continues_from(&d, &head).is_ok());
    // Starting right after it (the slice's anchor is the head).
    let d = pack("after", Some(entry(3, "c3", Some("b2"))), &[entry(4, "d4", Some("c3"))]);
    assert!(continues_from(&d, &head).is_ok());
    // Entry 3 written again after the store was cut back.
    let d = pack("rewritten", None, &[entry(2, "b2", Some("a1")), entry(3, "X3", Some("b2"))]);
    let err = continues_from(&d, &head).unwrap_err();
    assert!(matches!(err, Discontinuity::Rewritten { seq: 3, .. }), "{err:?}");
    let err = err.to_string();
    assert!(err.contains("its entry 3 has sha256 X3") && err.contains("deleted and written again"), "{err}");
    // Its first entry after the head links elsewhere.
    let d = pack("relinked", None, &[entry(4, "d4", Some("Y3"))]);
    let err = continues_from(&d, &head).unwrap_err();
    assert!(matches!(err, Discontinuity::Unlinked { seq: 4, previous: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("does not link to the entry the previous pack ended at"));
    // A gap: entries 4 to 6 in neither pack (6 is only named, as the entry before the slice).
    let d = pack("gap", Some(entry(6, "f6", Some("e5"))), &[entry(7, "g7", Some("f6"))]);
    let err = continues_from(&d, &head).unwrap_err();
    assert!(matches!(err, Discontinuity::Gap { previous: 3, first: 7 }), "{err:?}");
    let err = err.to_string();
    assert!(err.contains("a gap") && err.contains("entries 4 to 6 are in neither"), "{err}");
    // A one-entry gap: entry 4 (a failed run `--since` left out) is only named before the slice, and links to
    // the head; the old check counted it as held.
    let d = pack("one-gap", Some(entry(4, "d4", Some("c3"))), &[entry(5, "e5", Some("d4"))]);
    let err = continues_from(&d, &head).unwrap_err().to_string();
    assert!(err.contains("a gap") && err.contains("entries 4 to 4 are in neither"), "{err}");
    // Ending before the head: the newest entries lost between the exports.
    let d = pack("short", None, &[entry(1, "a1", None), entry(2, "b2", Some("a1"))]);
    let err = continues_from(&d, &head).unwrap_err();
    assert!(matches!(err, Discontinuity::Truncated { last: 2, previous: 3 }), "{err:?}");
    assert!(err.to_string().contains("it ends at entry 2 and the previous pack ended at entry 3"));
}
