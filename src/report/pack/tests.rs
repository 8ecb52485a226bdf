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
