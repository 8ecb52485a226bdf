//! `report verify | list | history | show | controls | sign-off`, `keys generate`, `runbook check`: the
//! evidence store as auditors read it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::report::view::{Row, Store, json_time};
use anyhow::anyhow;
use chrono::Utc;
use serde::Serialize;

use super::args::{ControlsFormat, Decision, ReportCommand, ShowFormat, StoreArgs};
use super::{Failure, exit_codes};
use crate::report::chain;
use crate::report::period::{self, Period};
use crate::report::trust::{Role, SigState, Trust, trusted_dir};
use crate::report::{Signer, sign};
use crate::ui::Printer;

/// A store as a local directory: the directory itself, or an `s3://` store downloaded into a temporary
/// directory (removed on drop).
pub(super) struct View {
    pub(super) dir: std::path::PathBuf,
    /// The keys its signatures are checked against.
    pub(super) trust: Trust,
    /// What an s3:// store's object versions and locks show (overwritten, deleted, unlocked objects).
    found: Vec<chain::Problem>,
    /// How long an s3:// store locks what is written to it.
    retain: std::time::Duration,
    s3: Option<String>,
    /// The download of an s3:// store, removed with the view.
    _download: Option<tempfile::TempDir>,
}

/// The trusted keys. `--key` files and `--trust-kms-key` keys, when any is given, are exactly the keys
/// trusted (they pin the trust: nothing in the trusted folder is added). Without them, the operator's own
/// store is checked with `<state dir>/keys/trusted/`; an evidence pack (`pack`) never is — nor with the keys
/// it carries: trust must come from outside what is verified.
async fn trust(store: &StoreArgs, aws: &crate::aws::AwsSettings, pack: bool) -> Result<Trust, Failure> {
    let bad = |e: String| Failure::could_not_run(anyhow!("{e}"), None);
    let explicit = !store.keys.is_empty() || !store.trust_kms_key.is_empty();
    if pack && !explicit {
        return Err(Failure::could_not_run(
            anyhow!("an evidence pack is verified with the keys you trust: none was given"),
            Some(
                "pass --key <file.pub> for each key whose fingerprint you checked out of band (or \
                 --trust-kms-key); the keys inside the pack and in the working directory are never trusted"
                    .into(),
            ),
        ));
    }
    let mut trust =
        if explicit { Trust::default() } else { Trust::load_dir(&trusted_dir()).map_err(|e| bad(e.to_string()))? };
    for k in &store.keys {
        trust.add_file(k).map_err(|e| bad(e.to_string()))?;
    }
    for k in &store.trust_kms_key {
        let signer = Signer::kms(k, aws).await.map_err(|e| Failure::could_not_run(e, None))?;
        trust.add(&format!("kms:{k}"), Role::Operator, signer.public().to_vec(), format!("kms:{k}"));
    }
    trust.explicit = explicit;
    Ok(trust)
}

pub(super) async fn open(store: &StoreArgs, aws: &crate::aws::AwsSettings) -> Result<View, Failure> {
    let dir = super::settings::reports(store.reports.as_deref());
    let trust = trust(store, aws, false).await?;
    if !crate::report::s3::is_url(&dir) {
        return Ok(View { dir, trust, found: vec![], retain: store.retain, s3: None, _download: None });
    }
    let url = dir.display().to_string();
    let s3 = crate::report::s3::S3Store::connect(&url, aws, std::time::Duration::ZERO)
        .await
        .map_err(|e| Failure::could_not_run(anyhow!("{e}"), e.hint()))?;
    let download = tempfile::Builder::new()
        .prefix("stackdrill-store-")
        .tempdir()
        .map_err(|e| io_failure(&std::env::temp_dir(), e))?;
    let mut view = View {
        dir: download.path().to_path_buf(),
        trust,
        found: vec![],
        retain: store.retain,
        s3: Some(url),
        _download: Some(download),
    };
    let cannot = |e: String| Failure::could_not_run(anyhow!("cannot read `{}`: {e}", dir.display()), None);
    s3.download(&view.dir).await.map_err(|e| cannot(e.to_string()))?;
    let entries: Vec<chain::Entry> =
        chain::read(&view.dir).map_err(|e| cannot(e.to_string()))?.into_iter().filter_map(Result::ok).collect();
    view.found = s3
        .audit_versions(store.retain)
        .await
        .map_err(|e| cannot(e.to_string()))?
        .into_iter()
        .map(|f| {
            let seq = chain::entry_of(&entries, &f.name);
            let at = match seq {
                Some(n) => format!("entry {n} (`{}`)", f.name),
                None => format!("`{}`", f.name),
            };
            chain::Problem { seq, at, what: f.what }
        })
        .collect();
    Ok(view)
}

pub(super) async fn run(cmd: ReportCommand, aws: &crate::aws::AwsSettings) -> Result<u8, Failure> {
    match cmd {
        ReportCommand::Verify { store, pack: Some(pack), previous, output, .. } => {
            verify_pack(&pack, previous.as_deref(), &trust(&store, aws, true).await?, Printer { format: output })
        }
        ReportCommand::Verify { store, allow_unsigned, pack: None, output, .. } => {
            verify(&open(&store, aws).await?, allow_unsigned, Printer { format: output })
        }
        ReportCommand::Export { store, since, until, drills, out, tar, signing_key, sign_kms_key } => {
            let period = period(since.as_deref(), until.as_deref())?
                .unwrap_or(Period { since: chrono::DateTime::<Utc>::MIN_UTC, until: Utc::now() });
            let view = open(&store, aws).await?;
            let signer =
                super::signer(signing_key.as_deref(), sign_kms_key.as_deref(), aws).await?.ok_or_else(|| {
                    Failure::could_not_run(
                        anyhow!("an evidence pack is signed, and no signing key is configured"),
                        Some(
                            "create one with `stackdrill keys generate`, or pass --signing-key / --sign-kms-key".into(),
                        ),
                    )
                })?;
            export(&view, &store, period, drills, &out, tar, &signer)
        }
        ReportCommand::Junit { store, since, drills, out } => {
            let since = period(since.as_deref(), None)?.map(|p| p.since);
            junit(&open(&store, aws).await?, since, &drills, &out)
        }
        ReportCommand::List { store, output } => list(&open(&store, aws).await?, None, Printer { format: output }),
        ReportCommand::History { drill, store, output } => {
            history(&open(&store, aws).await?, drill.as_deref(), Printer { format: output })
        }
        ReportCommand::Show { id, store, format } => show(&open(&store, aws).await?, &id, format),
        ReportCommand::Controls { store, format, since, until } => {
            let period = period(since.as_deref(), until.as_deref())?;
            controls(&open(&store, aws).await?, format, period)
        }
        ReportCommand::RecordLoss { seq, reason, store, signing_key, sign_kms_key } => {
            let view = open(&store, aws).await?;
            let signer =
                super::signer(signing_key.as_deref(), sign_kms_key.as_deref(), aws).await?.ok_or_else(|| {
                    Failure::could_not_run(
                        anyhow!("a loss record is signed, and no signing key is configured"),
                        Some("pass the operator's key with --signing-key (or --sign-kms-key)".into()),
                    )
                })?;
            record_loss(&view, seq, &reason, &signer)
        }
        ReportCommand::SignOff { id, reviewer, decision, note, store, signing_key, sign_kms_key } => {
            let view = open(&store, aws).await?;
            let signing_key = signing_key.or_else(|| reviewer_key(&reviewer));
            let signer = super::signer(signing_key.as_deref(), sign_kms_key.as_deref(), aws).await?;
            sign_off(&view, aws, &id, &reviewer, decision, note, signer.as_deref()).await
        }
    }
}

fn io_failure(dir: &Path, e: std::io::Error) -> Failure {
    Failure::could_not_run(anyhow!("cannot read the report store `{}`: {e}", dir.display()), None)
}

/// `<state dir>/keys/reviewers/<name>.key`, when `name` is a plain file name.
fn reviewer_key_path(name: &str) -> Option<std::path::PathBuf> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    plain.then(|| crate::config::state_dir().join("keys").join("reviewers").join(format!("{name}.key")))
}

/// The reviewer's own key, when `keys generate --role reviewer` made one for this name.
fn reviewer_key(name: &str) -> Option<std::path::PathBuf> {
    reviewer_key_path(name).filter(|p| p.is_file())
}

pub(super) fn keys_generate(out: Option<&Path>, role: Role, name: Option<&str>) -> Result<u8, Failure> {
    let bad = |e: String| Failure::could_not_run(anyhow!("{e}"), None);
    let path = match (out, role, name) {
        (Some(p), ..) => p.to_path_buf(),
        (None, Role::Reviewer, Some(n)) => reviewer_key_path(n).ok_or_else(|| {
            bad(format!("`{n}` cannot name a key file: use letters, digits, `-`, `_`, `.` and `@`, or give --out"))
        })?,
        (None, ..) => sign::default_key_path(),
    };
    if path.exists() {
        return Err(Failure::could_not_run(
            anyhow!("`{}` already exists: a signing key is never overwritten", path.display()),
            Some("keep using it (its public key is beside it, `.pub`), or give --out for another key".into()),
        ));
    }
    let (public, id) = sign::generate(&path).map_err(|e| Failure::could_not_run(e, None))?;
    crate::ui::outln!("created {} (mode 0600) and {}", path.display(), public.display());
    let name = name.map(str::to_string).unwrap_or_else(|| crate::report::trust::key_name(&path));
    let trusted = install_trusted(&public, &name, role)?;
    crate::ui::outln!(
        "{} key `{name}` {}: trusted here ({}); give auditors the .pub file",
        role.as_str(),
        sign::fingerprint(&id),
        trusted.display()
    );
    Ok(exit_codes::OK)
}

/// Copies the public key in `public` into the trusted keys as `<name>.pub`; refuses to replace another key
/// of that name.
fn install_trusted(public: &Path, name: &str, role: Role) -> Result<std::path::PathBuf, Failure> {
    let bad = |e: String| Failure::could_not_run(anyhow!("{e}"), None);
    let read = |p: &Path| {
        crate::userfile::read_text(p, crate::userfile::SECRET_MAX, crate::userfile::Links::Follow)
            .map_err(|e| format!("cannot read `{}`: {}", p.display(), crate::userfile::reason(&e)))
    };
    let text = read(public).map_err(bad)?;
    let key = sign::parse_public_pem(&text)
        .ok_or_else(|| bad(format!("`{}` is not an Ed25519 or P-256 public key (SPKI PEM)", public.display())))?;
    if reviewer_key_path(name).is_none() {
        return Err(bad(format!("`{name}` cannot name a key: use letters, digits, `-`, `_`, `.` and `@`")));
    }
    let dest = trusted_dir().join(format!("{name}.pub"));
    let body = crate::report::trust::trusted_file_text(&key, role);
    match read(&dest) {
        Ok(existing) if sign::parse_public_pem(&existing).as_deref() == Some(&key[..]) && existing == body => {}
        Ok(_) => {
            return Err(Failure::could_not_run(
                anyhow!("a different trusted key is already named `{name}` ({})", dest.display()),
                Some("choose another --name, or remove the old key from the trusted keys first".into()),
            ));
        }
        Err(_) => {
            std::fs::create_dir_all(trusted_dir()).map_err(|e| io_failure(&trusted_dir(), e))?;
            crate::report::atomic_write(&dest, body.as_bytes()).map_err(|e| io_failure(&dest, e))?;
        }
    }
    Ok(dest)
}

pub(super) fn keys_trust(public: &Path, name: Option<&str>, role: Role) -> Result<u8, Failure> {
    let name = name.map(str::to_string).unwrap_or_else(|| crate::report::trust::key_name(public));
    let dest = install_trusted(public, &name, role)?;
    crate::ui::outln!("trusted {} key `{name}`: {}", role.as_str(), dest.display());
    Ok(exit_codes::OK)
}

pub(super) fn keys_list(printer: Printer) -> Result<u8, Failure> {
    let trust = Trust::load_dir(&trusted_dir()).map_err(|e| Failure::could_not_run(anyhow!("{e}"), None))?;
    if printer.is_json() {
        printer.json(&trust.keys);
    } else {
        for k in &trust.keys {
            printer.line(format!("{:<20} {:<9} {}", k.name, k.role.as_str(), sign::fingerprint(&k.key_id)));
        }
        if trust.is_empty() {
            printer.line(format!("(no trusted keys in `{}`)", trusted_dir().display()));
        }
    }
    Ok(exit_codes::OK)
}

/// The store in `view`, verified with its trusted keys; a broken chain or an untrusted signature is said
/// on stderr before anything is shown from it.
pub(super) fn store(view: &View) -> Result<Store, Failure> {
    let dir = &view.dir;
    let store = Store::read_with(dir, verified(view, false)?).map_err(|e| io_failure(dir, e))?;
    if let Some(w) = store.warning() {
        crate::ui::diag!("{w}");
    }
    Ok(store)
}

fn secs(v: Option<f64>) -> String {
    v.map(crate::config::human_seconds).unwrap_or_else(|| "-".into())
}

/// The chain in `view` verified with its trusted keys, and what its S3 versions showed.
fn verified(view: &View, allow_unsigned: bool) -> Result<chain::Verified, Failure> {
    let mut v = chain::verify_with(&view.dir, &view.trust, allow_unsigned).map_err(|e| io_failure(&view.dir, e))?;
    v.add(view.found.clone());
    Ok(v)
}

fn verify(view: &View, allow_unsigned: bool, printer: Printer) -> Result<u8, Failure> {
    let dir = &view.dir;
    if !dir.is_dir() {
        // A mistyped store proves nothing: "ok, 0 entries" would read as a clean bill.
        return Err(Failure::could_not_run(
            anyhow!("nothing to verify: there is no report store at `{}`", dir.display()),
            Some("name the store the drills write to with --reports (or STACKDRILL_REPORTS)".into()),
        ));
    }
    let v = verified(view, allow_unsigned)?;
    if printer.is_json() {
        printer.json(&v);
    } else if v.problems.is_empty() {
        let mut names: Vec<&str> = v
            .states
            .values()
            .filter_map(|s| match s {
                SigState::Verified { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        let trusted = v.signed - v.unverified.len();
        let by = if names.is_empty() { String::new() } else { format!(" (`{}`)", names.join("`, `")) };
        let head = if v.unverified.is_empty() { "ok" } else { "UNVERIFIED" };
        let lost = if v.lost.is_empty() { String::new() } else { format!(", {} recorded as lost", v.lost.len()) };
        printer.line(format!(
            "{head}: {} in `{}`, the hash chain is intact, {} signed, {trusted} by trusted keys{by}{lost}",
            crate::config::count(v.entries as u64, "entry", "entries"),
            dir.display(),
            v.signed
        ));
        for p in v.lost.iter().chain(&v.unverified) {
            printer.line(format!("  {}: {}", p.at, p.what));
        }
        if !v.unverified.is_empty() {
            printer.line(format!(
                "  hint: trust a key with `stackdrill keys trust <file.pub>` ({}), or pass --key / --trust-kms-key",
                trusted_dir().display()
            ));
        }
    } else {
        let first = &v.problems[0];
        printer.line(format!("BROKEN: the first broken link is {}: {}", first.at, first.what));
        for p in &v.problems[1..] {
            printer.line(format!("  also {}: {}", p.at, p.what));
        }
    }
    Ok(if v.ok() { exit_codes::OK } else { exit_codes::NOT_VERIFIED })
}

#[derive(Serialize)]
struct Listed {
    seq: u64,
    kind: String,
    id: String,
    drill: String,
    result: String,
    /// What started the run (`manual`, `schedule`, `demo`, ...): a demo run is evidence of nothing.
    trigger: Option<String>,
    started_at: Option<String>,
    rto_seconds: Option<f64>,
    rpo_seconds: Option<f64>,
    signed_by: Option<String>,
    /// What `report verify` found about this entry's signature: `ok …`, `unsigned`, `UNVERIFIED …`, `BROKEN`.
    signature: String,
    file: String,
}

fn listed(store: &Store, r: &Row) -> Listed {
    let d = r.report();
    Listed {
        signature: store.state(r.entry.seq).label(),
        seq: r.entry.seq,
        kind: r.entry.kind.to_string(),
        id: r.entry.id.clone(),
        drill: r.entry.drill.clone(),
        result: r.entry.result.clone(),
        trigger: d.map(|d| d.trigger.clone()),
        started_at: d.map(|d| json_time(d.started_at)).or_else(|| r.posture().map(|p| json_time(p.checked_at))),
        rto_seconds: d.and_then(|d| d.measured.rto_seconds),
        rpo_seconds: d.and_then(|d| d.measured.rpo_seconds),
        signed_by: r.entry.key_id.as_deref().map(sign::fingerprint),
        file: r.entry.file.clone(),
    }
}

fn list(view: &View, drill: Option<&str>, printer: Printer) -> Result<u8, Failure> {
    let dir = &view.dir;
    let read = store(view)?;
    let all: Vec<Listed> =
        read.rows().iter().filter(|r| drill.is_none_or(|d| r.entry.drill == d)).map(|r| listed(&read, r)).collect();
    if printer.is_json() {
        printer.json(&all);
        return Ok(read_code(&read));
    }
    printer.line(format!(
        "{:>4}  {:<9} {:<24} {:<8} {:<8} {:<20} {:>9} {:>9}  {:<38} id",
        "seq", "kind", "drill", "result", "trigger", "started", "RTO", "RPO", "signed"
    ));
    for l in &all {
        printer.line(format!(
            "{:>4}  {:<9} {:<24} {:<8} {:<8} {:<20} {:>9} {:>9}  {:<38} {}",
            l.seq,
            l.kind,
            l.drill,
            l.result,
            l.trigger.as_deref().unwrap_or("-"),
            l.started_at.as_deref().map(|s| &s[..19.min(s.len())]).unwrap_or("-"),
            secs(l.rto_seconds),
            secs(l.rpo_seconds),
            l.signature,
            l.id
        ));
    }
    if all.is_empty() {
        printer.line(format!("(no reports in `{}`)", dir.display()));
    }
    Ok(read_code(&read))
}

/// `▁▂▃▄▅▆▇█` scaled to the largest value; `·` where a run has no RTO.
pub(crate) fn sparkline(values: &[Option<f64>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().flatten().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| match v {
            None => '·',
            Some(_) if max <= 0.0 => BARS[0],
            Some(v) => BARS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

fn history(view: &View, drill: Option<&str>, printer: Printer) -> Result<u8, Failure> {
    let dir = &view.dir;
    let all = store(view)?;
    let mut by_drill: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in all.reports().filter(|r| drill.is_none_or(|d| r.entry.drill == d)) {
        by_drill.entry(&r.entry.drill).or_default().push(r);
    }
    if printer.is_json() {
        #[derive(Serialize)]
        struct H {
            drill: String,
            runs: Vec<Listed>,
            sparkline: String,
        }
        let out: Vec<H> = by_drill
            .iter()
            .map(|(d, rs)| H {
                drill: d.to_string(),
                runs: rs.iter().map(|r| listed(&all, r)).collect(),
                sparkline: sparkline(&rs.iter().map(|r| listed(&all, r).rto_seconds).collect::<Vec<_>>()),
            })
            .collect();
        printer.json(&out);
        return Ok(read_code(&all));
    }
    for (d, rs) in &by_drill {
        let passed = rs.iter().filter(|r| r.passed()).count();
        let rtos: Vec<Option<f64>> = rs.iter().map(|r| listed(&all, r).rto_seconds).collect();
        printer.line(format!("{d}: {} runs, {passed} passed   RTO trend {}", rs.len(), sparkline(&rtos)));
        for r in rs {
            let l = listed(&all, r);
            printer.line(format!(
                "  {}  {:<7} {:<8} RTO {:>9}  RPO {:>9}  {}",
                l.started_at.as_deref().map(|s| &s[..19.min(s.len())]).unwrap_or("-"),
                l.result,
                l.trigger.as_deref().unwrap_or("-"),
                secs(l.rto_seconds),
                secs(l.rpo_seconds),
                l.id
            ));
        }
    }
    if by_drill.is_empty() {
        printer.line(format!(
            "(no runs{} in `{}`)",
            drill.map(|d| format!(" of `{d}`")).unwrap_or_default(),
            dir.display()
        ));
    }
    Ok(read_code(&all))
}

fn find<'a>(store: &'a Store, id: &str) -> Result<&'a Row, Failure> {
    let hits: Vec<&Row> = store.reports().filter(|r| r.entry.id.starts_with(id)).collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::could_not_run(anyhow!("no report with id `{id}` in the store"), None)),
        many => {
            Err(Failure::could_not_run(anyhow!("`{id}` matches {} reports; give more of the id", many.len()), None))
        }
    }
}

fn show(view: &View, id: &str, format: ShowFormat) -> Result<u8, Failure> {
    let dir = &view.dir;
    let all = store(view)?;
    let r = find(&all, id)?;
    let stem = r.entry.file.trim_end_matches(".json");
    let ext = match format {
        ShowFormat::Md => "md",
        ShowFormat::Html => "html",
        ShowFormat::Json => "json",
    };
    let path = dir.join(format!("{stem}.{ext}"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::could_not_run(anyhow!("cannot read `{}`: {e}", path.display()), None))?;
    crate::ui::out!("{text}");
    Ok(read_code(&all))
}

/// A reader's exit code: what it printed came from a broken chain (the warning said so), so it is not 0.
fn read_code(store: &Store) -> u8 {
    if store.broken().is_some() { exit_codes::NOT_VERIFIED } else { exit_codes::OK }
}

/// Drill specs from `drills/` that load (for cadence and runbooks); problems are returned as text.
fn drill_specs() -> (Vec<crate::config::DrillSpec>, Vec<String>) {
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    let Ok(files) = super::drill::yaml_files("drills") else { return (specs, problems) };
    for f in files {
        match crate::config::load_drill(&f) {
            Ok(s) => specs.push(s),
            Err(errs) => problems.push(format!("`{}`: {} problem(s)", f.display(), errs.len())),
        }
    }
    (specs, problems)
}

/// `report junit`: the store's reports (since a time, of some drills) as one JUnit document. A broken chain
/// is refused: the file stands for the store in CI.
fn junit(view: &View, since: Option<chrono::DateTime<Utc>>, drills: &[String], out: &Path) -> Result<u8, Failure> {
    let all = store(view)?;
    if let Some(p) = all.broken() {
        return Err(Failure {
            error: anyhow!("the store's chain is broken at {}: {}", p.at, p.what),
            hint: Some("`stackdrill report verify` names every problem".into()),
            code: exit_codes::NOT_VERIFIED,
        });
    }
    let reports: Vec<(&crate::report::Report, String)> = all
        .reports()
        .filter_map(|row| row.report().map(|r| (r, row.entry.file.clone())))
        .filter(|(r, _)| since.is_none_or(|t| r.started_at >= t))
        .filter(|(r, _)| drills.is_empty() || drills.contains(&r.drill))
        .collect();
    let text = crate::ui::junit::document_of(&reports);
    let tmp = out.with_extension("xml.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| Failure::could_not_run(anyhow!("cannot write `{}`: {e}", out.display()), None))?;
    crate::ui::outln!(
        "wrote {} to {}",
        crate::config::count(reports.len() as u64, "drill run", "drill runs"),
        out.display()
    );
    Ok(exit_codes::OK)
}

fn export(
    view: &View,
    args: &StoreArgs,
    period: Period,
    drills: Vec<String>,
    out: &Path,
    tar: bool,
    signer: &Signer,
) -> Result<u8, Failure> {
    let all = store(view)?;
    let (specs, _) = drill_specs();
    let period = open_start(&all, period);
    let store_name = super::settings::reports(args.reports.as_deref()).display().to_string();
    let req = crate::report::pack::Request {
        store_dir: &view.dir,
        store_name,
        store: &all,
        trust: &view.trust,
        specs: &specs,
        period,
        drills,
        now: Utc::now(),
    };
    let failed = |e: String, hint: Option<&str>| {
        let code = if all.broken().is_some() { exit_codes::NOT_VERIFIED } else { exit_codes::COULD_NOT_RUN };
        Failure { error: anyhow!("cannot write the evidence pack: {e}"), hint: hint.map(str::to_string), code }
    };
    let (dir, archive, _tmp): (std::path::PathBuf, Option<std::path::PathBuf>, _) = if tar {
        let archive = if out.to_string_lossy().ends_with(".tar.gz") {
            out.to_path_buf()
        } else {
            std::path::PathBuf::from(format!("{}.tar.gz", out.display()))
        };
        let name = archive.file_name().map(|n| n.to_string_lossy().trim_end_matches(".tar.gz").to_string());
        let tmp = tempfile::tempdir().map_err(|e| failed(e.to_string(), None))?;
        (tmp.path().join(name.unwrap_or_else(|| "evidence".into())), Some(archive), Some(tmp))
    } else {
        (out.to_path_buf(), None, None)
    };
    let pack_failed = |e: crate::report::pack::PackError| failed(e.to_string(), e.hint());
    let done = crate::report::pack::export(&req, &dir, signer).map_err(pack_failed)?;
    if let Some(a) = &archive {
        crate::report::pack::tar(&dir, a).map_err(pack_failed)?;
    }
    crate::ui::outln!(
        "wrote the evidence pack {}: {} reports, ledger entries {} to {}, {} files under a manifest signed by {}",
        archive.as_deref().unwrap_or(&dir).display(),
        done.reports,
        done.entries.0,
        done.entries.1,
        done.files,
        sign::fingerprint(&signer.key_id)
    );
    crate::ui::outln!("open index.html; VERIFY.md says how to check it without stackdrill");
    Ok(exit_codes::OK)
}

/// A pack folder, or a .tar.gz of one unpacked into a temporary directory (returned, to keep it).
fn unpack(pack: &Path) -> Result<(std::path::PathBuf, Option<tempfile::TempDir>), Failure> {
    let bad = |e: String| Failure::could_not_run(anyhow!("{e}"), None);
    if !pack.is_file() {
        return Ok((pack.to_path_buf(), None));
    }
    let tmp = tempfile::tempdir().map_err(|e| bad(e.to_string()))?;
    let f = std::fs::File::open(pack).map_err(|e| bad(format!("cannot read `{}`: {e}", pack.display())))?;
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(tmp.path())
        .map_err(|e| bad(format!("`{}` is not a .tar.gz evidence pack: {e}", pack.display())))?;
    let inner = std::fs::read_dir(tmp.path()).ok().and_then(|mut d| d.next()).and_then(Result::ok).map(|d| d.path());
    let dir = inner.ok_or_else(|| bad(format!("`{}` is empty", pack.display())))?;
    Ok((dir, Some(tmp)))
}

/// `report verify --pack`: a pack folder, or a .tar.gz of one; with `previous`, the pack before it, which
/// must verify too and whose last entry this pack must continue from.
fn verify_pack(pack: &Path, previous: Option<&Path>, trust: &Trust, printer: Printer) -> Result<u8, Failure> {
    let bad = |e: String| Failure::could_not_run(anyhow!("{e}"), None);
    let (dir, _tmp) = unpack(pack)?;
    let mut v = crate::report::pack::verify(&dir, trust).map_err(|e| bad(e.to_string()))?;
    let mut continues = None;
    if let Some(old) = previous {
        let (old_dir, _old_tmp) = unpack(old)?;
        let at = format!("the previous pack `{}`", old.display());
        let problem = |what: String| chain::Problem { seq: None, at: at.clone(), what };
        let o = crate::report::pack::verify(&old_dir, trust).map_err(|e| bad(e.to_string()))?;
        if let Some(p) = o.chain.problems.first() {
            v.chain.problems.push(problem(format!("does not verify: {}: {}", p.at, p.what)));
        } else if !o.ok() {
            v.chain.problems.push(problem("is not signed by a key given with --key / --trust-kms-key".into()));
        } else {
            match crate::report::pack::head(&old_dir, &o.manifest) {
                None => v.chain.problems.push(problem("holds no ledger entry to continue from".into())),
                Some(h) => match crate::report::pack::continues_from(&dir, &h) {
                    Ok(()) => continues = Some(h.seq),
                    Err(why) => v.chain.problems.push(chain::Problem {
                        seq: None,
                        at: format!("`{}` after the previous pack", pack.display()),
                        what: why.to_string(),
                    }),
                },
            }
        }
    }
    if printer.is_json() {
        printer.json(&serde_json::json!({
            "ok": v.ok(), "manifest_signature": v.signature, "files": v.manifest.files.len(),
            "entries": v.manifest.entries, "head": v.manifest.head, "continues_from": continues, "chain": v.chain,
        }));
    } else if let Some(first) = v.chain.problems.first() {
        printer.line(format!("BROKEN: the first problem is {}: {}", first.at, first.what));
        for p in &v.chain.problems[1..] {
            printer.line(format!("  also {}: {}", p.at, p.what));
        }
    } else {
        let head = if v.ok() { "ok" } else { "UNVERIFIED" };
        printer.line(format!(
            "{head}: evidence pack `{}` ({} → {}): {} files match the manifest, signed {}; ledger entries {} to {} intact{}, {} signed{}",
            pack.display(),
            v.manifest.since.format("%Y-%m-%d %H:%M:%SZ"),
            v.manifest.until.format("%Y-%m-%d %H:%M:%SZ"),
            v.manifest.files.len(),
            v.signature.label(),
            v.manifest.entries.0,
            v.manifest.entries.1,
            if v.manifest.entries.0 > 1 { " from the entry before the period" } else { "" },
            v.chain.signed,
            continues.map(|s| format!("; continues from entry {s}, where the previous pack ended")).unwrap_or_default()
        ));
        for p in &v.chain.unverified {
            printer.line(format!("  {}: {}", p.at, p.what));
        }
    }
    Ok(if v.ok() { exit_codes::OK } else { exit_codes::NOT_VERIFIED })
}

/// The period `--since`/`--until` name (an open end: the store's first report, or now); `None` when
/// neither is given.
pub(super) fn period(since: Option<&str>, until: Option<&str>) -> Result<Option<Period>, Failure> {
    if since.is_none() && until.is_none() {
        return Ok(None);
    }
    let bad = |e: String| Failure::could_not_run(anyhow!("{e}"), None);
    let since = since.map(|s| period::parse_bound(s, false)).transpose().map_err(|e| bad(e.to_string()))?;
    let until = until
        .map(|s| period::parse_bound(s, true))
        .transpose()
        .map_err(|e| bad(e.to_string()))?
        .unwrap_or_else(Utc::now);
    let since = since.unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    if since >= until {
        return Err(bad(format!("the period is empty: --since {since} is not before --until {until}")));
    }
    Ok(Some(Period { since, until }))
}

/// A period without `--since` starts at the store's first report.
fn open_start(store: &Store, p: Period) -> Period {
    if p.since > chrono::DateTime::<Utc>::MIN_UTC {
        return p;
    }
    let first = store.reports().filter_map(Row::started_at).min().unwrap_or(p.until);
    Period { since: first.min(p.until - chrono::Duration::seconds(1)), ..p }
}

fn controls(view: &View, format: ControlsFormat, period: Option<Period>) -> Result<u8, Failure> {
    let dir = &view.dir;
    let all = store(view)?;
    let (specs, _) = drill_specs();
    let now = Utc::now();
    let matrix = crate::report::controls::matrix(&all, &specs, now, period);
    let figures = period.map(|p| {
        let p = open_start(&all, p);
        (p, period::figures(&all, &specs, p, now))
    });
    let posture = crate::report::posture_calendar::calendar(&all, period, now);
    match (format, &figures) {
        (ControlsFormat::Json, None) => {
            crate::ui::outln!("{}", serde_json::to_string_pretty(&matrix).unwrap_or_default())
        }
        (ControlsFormat::Json, Some((p, drills))) => {
            let doc = serde_json::json!({
                "period": p, "controls": matrix, "drills": drills, "backup_posture": posture,
            });
            crate::ui::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
        (ControlsFormat::Md, _) => {
            crate::ui::out!(
                "{}",
                crate::report::controls::markdown(
                    &dir.display().to_string(),
                    &matrix,
                    all.broken().is_none(),
                    view.s3.is_some()
                )
            );
            if let Some(c) = &posture {
                crate::ui::out!("{}", crate::report::posture_calendar::markdown(c));
            }
            if let Some((p, drills)) = &figures {
                crate::ui::out!("\n{}", period::markdown(*p, drills));
            }
        }
    }
    // A matrix over a broken chain is not evidence: the command fails, naming the first broken link.
    Ok(if all.broken().is_some() { exit_codes::NOT_VERIFIED } else { exit_codes::OK })
}

async fn sign_off(
    view: &View,
    aws: &crate::aws::AwsSettings,
    id: &str,
    reviewer: &str,
    decision: Decision,
    note: Option<String>,
    signer: Option<&Signer>,
) -> Result<u8, Failure> {
    let dir = &view.dir;
    check_reviewer(reviewer, signer)?;
    let all = store(view)?;
    // A signed sign-off on a broken chain would sign a forged history after it. A directory store checks
    // under its ledger lock (`write_sign_off`): read here, unlocked, a concurrent writer's file can show
    // before its ledger line and read as an insertion. An S3 store is checked here.
    if view.s3.is_some()
        && let Some(p) = all.broken()
    {
        return Err(Failure::could_not_run(
            anyhow!(
                "the report chain is broken (the first broken link is {}: {}): a sign-off is never chained onto it",
                p.at,
                p.what
            ),
            Some(format!("run `stackdrill report verify --reports {}`", dir.display())),
        ));
    }
    let r = find(&all, id)?;
    let decision = match decision {
        Decision::Approved => "approved",
        Decision::Rejected => "rejected",
    };
    let written = match &view.s3 {
        None => crate::report::write_sign_off(dir, &r.entry, reviewer, decision, note, signer)
            .map(|p| p.display().to_string())
            .map_err(|e| e.to_string()),
        Some(url) => match crate::report::s3::S3Store::connect(url, aws, view.retain).await {
            Ok(s3) => s3.write_sign_off(&r.entry, reviewer, decision, note, signer).await,
            Err(e) => Err(e),
        }
        .map_err(|e| e.to_string()),
    }
    .map_err(|e| Failure::could_not_run(anyhow!("cannot write the sign-off: {e}"), None))?;
    crate::ui::outln!("{decision} by {reviewer}: recorded as {written} (chained after the latest entry)");
    Ok(exit_codes::OK)
}

/// `report record-loss`: a signed entry saying entry `seq`'s document was lost. Refused for an entry that
/// is intact, for an s3:// store (Object Lock keeps every object), and with a key that is not a trusted
/// operator key (`report verify` would not accept the record).
fn record_loss(view: &View, seq: u64, reason: &str, signer: &Signer) -> Result<u8, Failure> {
    let bad = |e: String| Failure::could_not_run(anyhow!("{e}"), None);
    if view.s3.is_some() {
        return Err(bad(
            "an s3:// store keeps every object under Object Lock: nothing there is recorded as lost".into()
        ));
    }
    if reason.trim().is_empty() {
        return Err(bad("a loss record says what happened: give --reason".into()));
    }
    match view.trust.find(&signer.key_id) {
        Some(k) if k.role == Role::Operator => {}
        _ => {
            return Err(Failure::could_not_run(
                anyhow!("the signing key {} is not a trusted operator key", sign::fingerprint(&signer.key_id)),
                Some("a loss record is signed by the operator whose key the store trusts".into()),
            ));
        }
    }
    let dir = &view.dir;
    let v = verified(view, false)?;
    let entry = chain::read(dir)
        .map_err(|e| io_failure(dir, e))?
        .into_iter()
        .flatten()
        .find(|e| e.seq == seq)
        .ok_or_else(|| bad(format!("the ledger has no entry {seq}")))?;
    if v.lost.iter().any(|l| l.seq == Some(seq)) {
        return Err(bad(format!("entry {seq} is already recorded as lost")));
    }
    if !v.problems.iter().any(|p| p.seq == Some(seq)) {
        return Err(bad(format!("entry {seq} is intact: `report verify` finds nothing wrong with it")));
    }
    let written = crate::report::write_loss(dir, &entry, reason, signer)
        .map_err(|e| bad(format!("cannot write the loss record: {e}")))?;
    crate::ui::outln!(
        "recorded entry {seq} ({} `{}`) as lost in {} (signed by {}); `report verify` names it as lost",
        entry.kind,
        entry.id,
        written.display(),
        sign::fingerprint(&signer.key_id)
    );
    Ok(exit_codes::OK)
}

/// A sign-off is a trusted reviewer's, signed with that reviewer's own key: an unknown name (a typo) is
/// refused, naming the nearest reviewer, and so is a name signed with someone else's key.
fn check_reviewer(reviewer: &str, signer: Option<&Signer>) -> Result<(), Failure> {
    let trust = Trust::load_dir(&trusted_dir()).map_err(|e| Failure::could_not_run(anyhow!("{e}"), None))?;
    let reviewers: Vec<_> = trust.keys.iter().filter(|k| k.role == Role::Reviewer).collect();
    let Some(key) = reviewers.iter().find(|k| k.name == reviewer) else {
        let nearest = reviewers
            .iter()
            .map(|k| (strsim::levenshtein(&k.name, reviewer), k.name.as_str()))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, n)| n);
        let known: Vec<String> = reviewers.iter().map(|k| format!("`{}`", k.name)).collect();
        return Err(Failure::could_not_run(
            anyhow!("`{reviewer}` is not a reviewer: no trusted reviewer key has that name"),
            Some(match nearest {
                Some(n) => format!("did you mean `{n}`?"),
                None if known.is_empty() => format!(
                    "give the reviewer a key: `stackdrill keys generate --role reviewer --name {reviewer}` (or \
                     `keys trust <file.pub> --role reviewer`)"
                ),
                None => format!("the reviewers are {}", known.join(", ")),
            }),
        ));
    };
    match signer {
        Some(s) if s.key_id == key.key_id => Ok(()),
        Some(s) => {
            let whose = trust.find(&s.key_id).map_or_else(
                || "a key that is not trusted".to_string(),
                |k| format!("the {} key `{}`", k.role.as_str(), k.name),
            );
            Err(Failure::could_not_run(
                anyhow!("the sign-off names `{reviewer}` but would be signed with {whose}, not `{reviewer}`'s key"),
                Some(format!("a sign-off is signed by its reviewer: `{reviewer}` signs with their own key")),
            ))
        }
        None => Err(Failure::could_not_run(
            anyhow!("a sign-off by `{reviewer}` is signed with their key, and none was found"),
            Some(format!(
                "their key is `{}` (from `keys generate --role reviewer --name {reviewer}`), or pass --signing-key",
                reviewer_key_path(reviewer).map(|p| p.display().to_string()).unwrap_or_default()
            )),
        )),
    }
}

pub(super) fn runbook_check(view: &View, printer: Printer) -> Result<u8, Failure> {
    let dir = &view.dir;
    // No drill files is not "every drill cites its runbook": there is nothing to check.
    super::drill::yaml_files("drills")?;
    let (specs, bad) = drill_specs();
    let all = store(view)?;
    let findings =
        crate::report::controls::runbook_findings(&all, &dir.display().to_string(), &specs, &bad, Utc::now());
    // Findings over a broken chain prove nothing: its passes may be forged.
    if let Some(p) = all.broken() {
        crate::ui::diag!(
            "error: the report chain in `{}` is broken at {}: {}; runbook check cannot vouch for its passes\n  hint: run `stackdrill report verify`",
            dir.display(),
            p.at,
            p.what
        );
    }
    if printer.is_json() {
        printer.json(&findings);
    } else if findings.is_empty() && all.broken().is_some() {
        printer.line(format!("BROKEN: the report chain is broken; not checked ({} drills)", specs.len()));
    } else if findings.is_empty() {
        printer.line(format!(
            "ok: every drill cites an existing runbook and has passed within its cadence ({} drills)",
            specs.len()
        ));
    } else {
        for f in &findings {
            printer.line(format!("{:<24} {:<40} {}", f.drill, f.runbook.as_deref().unwrap_or("-"), f.problem));
        }
    }
    Ok(if findings.is_empty() && all.broken().is_none() { exit_codes::OK } else { exit_codes::NOT_VERIFIED })
}
