//! Evidence: signed, hash-chained reports from real drills; the signatures checked by openssl (an
//! independent implementation), the HTML parsed as XML and rendered by headless Chromium, a deleted report
//! found by `report verify`, sign-off, history and the controls matrix.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;

use super::harness::{Demo, Scratch, stackdrill, text};

/// `stackdrill` with the demo's state directory (where `keys generate` puts its keys).
fn in_state(demo: &Demo) -> assert_cmd::Command {
    let mut c = stackdrill();
    c.env("STACKDRILL_STATE_DIR", demo.state());
    c
}

/// The operator signing key generated in the demo's state directory (and, with `reviewer`, the reviewer
/// key `a.tan`): the operator key's path.
fn generate_keys(demo: &Demo, reviewer: bool) -> PathBuf {
    assert!(in_state(demo).args(["keys", "generate"]).output().unwrap().status.success());
    if reviewer {
        let out = in_state(demo).args(["keys", "generate", "--role", "reviewer", "--name", "a.tan"]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    demo.state().join("keys/signing.key")
}

/// The store's ledger lines, parsed.
fn ledger(store: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(store.join("ledger.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A failed run: the demo's drill run with `extra` while its newest base backup is corrupted (put back
/// after).
fn run_on_a_corrupted_backup(demo: &Demo, extra: &[&str]) -> std::process::Output {
    let victim = demo.backups().pop().unwrap().join("PG_VERSION");
    let original = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, [&original[..], b"corrupted\n"].concat()).unwrap();
    let out = demo.run_drill(extra);
    std::fs::write(&victim, &original).unwrap();
    out
}

fn openssl_verify(public: &Path, message: &Path, sig: &[u8], dir: &Path) -> bool {
    let sig_path = dir.join("sig.bin");
    std::fs::write(&sig_path, sig).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(public)
        .arg("-in")
        .arg(message)
        .arg("-sigfile")
        .arg(&sig_path)
        .output()
        .expect("openssl is installed by scripts/install-test-deps");
    out.status.success()
}

/// The README's check of a DSSE envelope with securesystemslib (a verifier nobody here wrote), run exactly
/// as the README shows it; `Ok` with its output when it verifies.
fn readme_dsse_verify(envelope: &Path, public: &Path) -> Result<String, String> {
    use std::io::Write;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme.split("<!-- dsse-verify -->").nth(1).expect("the README's dsse-verify block");
    let block = block.split("<!-- /dsse-verify -->").next().unwrap();
    let script: Vec<&str> = block.split("<<'EOF'\n").nth(1).unwrap().split("\n  EOF").next().unwrap().lines().collect();
    let script: Vec<&str> = script.iter().map(|l| l.strip_prefix("  ").unwrap_or(l)).collect();
    let python = super::moto::venv().join("python");
    assert!(
        python.is_file(),
        "securesystemslib is missing: install it with `scripts/moto-venv` (tests/requirements.txt pins it)"
    );
    let mut child = Command::new(python)
        .arg("-")
        .arg(envelope)
        .arg(public)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.join("\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() { Ok(text(&out.stdout)) } else { Err(text(&out.stderr)) }
}

/// Headless flags for this closed network (no background connections, no first-run work) and a profile
/// directory of the test's own.
fn headless(dir: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", dir.join("chromium-profile").display())])
    .collect()
}

fn chromium() -> String {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return c.to_string();
        }
    }
    panic!("headless Chromium is missing: install it with `apt-get install chromium` (scripts/install-test-deps does)");
}

/// Pixels of the verdict banner's colour in a PNG screenshot (decoded with Python's zlib: no imaging library).
fn banner_pixels(png: &Path, rgb: (u8, u8, u8)) -> usize {
    let code = format!(
        "import struct, sys, zlib\n\
         d = open(sys.argv[1], 'rb').read(); p = 8; idat = b''\n\
         while p < len(d):\n\
         \x20   n, t = struct.unpack('>I4s', d[p:p+8]); c = d[p+8:p+8+n]; p += 12 + n\n\
         \x20   if t == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', c[:10])\n\
         \x20   if t == b'IDAT': idat += c\n\
         bpp = 4 if ctype == 6 else 3; raw = zlib.decompress(idat); stride = w * bpp; prev = bytearray(stride); out = 0; i = 0\n\
         for y in range(h):\n\
         \x20   f = raw[i]; row = bytearray(raw[i+1:i+1+stride]); i += 1 + stride\n\
         \x20   for x in range(stride):\n\
         \x20       a = row[x-bpp] if x >= bpp else 0; b = prev[x]; cc = prev[x-bpp] if x >= bpp else 0\n\
         \x20       if f == 1: row[x] = (row[x] + a) & 255\n\
         \x20       elif f == 2: row[x] = (row[x] + b) & 255\n\
         \x20       elif f == 3: row[x] = (row[x] + (a + b) // 2) & 255\n\
         \x20       elif f == 4:\n\
         \x20           pa, pb, pc = abs(b - cc), abs(a - cc), abs(a + b - 2 * cc)\n\
         \x20           row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else cc)) & 255\n\
         \x20   out += sum(1 for x in range(0, stride, bpp) if abs(row[x] - {}) < 8 and abs(row[x+1] - {}) < 8 and abs(row[x+2] - {}) < 8)\n\
         \x20   prev = row\n\
         print(out)",
        rgb.0, rgb.1, rgb.2
    );
    let out = Command::new("python3").args(["-c", &code]).arg(png).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().parse().unwrap()
}

#[test]
fn signed_chained_reports_verify_independently_render_and_expose_a_deletion() {
    let demo = Demo::start(); // entry 1: the demo's own report, unsigned (no key yet)
    demo.not_a_demo(); // later runs are the operator's, counted as evidence
    let tmp = Scratch::new();
    // Every command of this test shares the demo's state directory: its trusted keys.
    let stackdrill = || {
        let mut c = stackdrill();
        c.env("STACKDRILL_STATE_DIR", demo.state());
        c
    };
    let key = tmp.path().join("keys/signing.key");
    let out = stackdrill().args(["keys", "generate", "--out"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600, "key files are 0600");
    let public = tmp.path().join("keys/signing.key.pub");
    for who in ["ops-a", "ops-b"] {
        let out = demo.run_drill(&["--signing-key", key.to_str().unwrap(), "--participant", who]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("signed: ed25519 key SHA256:"), "{}", text(&out.stdout));
    }
    let reports = demo.reports.to_str().unwrap();
    let out = stackdrill().args(["report", "verify", "--reports", reports]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("ok: 3 entries")
            && text(&out.stdout).contains("2 signed, 2 by trusted keys (`signing`)"),
        "{}",
        text(&out.stdout)
    );
    // Pinning the key: the unsigned first entry passes only because the signed entry after it covers it
    // (it signs that entry's sha256); another key pinned instead verifies nothing.
    let out = stackdrill().args(["report", "verify", "--reports", reports, "--key"]).arg(&public).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("2 signed, 2 by trusted keys (`signing`)"), "{}", text(&out.stdout));
    let (_, stranger) = openssl_key(tmp.path(), "stranger");
    let out = stackdrill().args(["report", "verify", "--reports", reports, "--key"]).arg(&stranger).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("entry 1 ") && text(&out.stdout).contains("no signed entry after it vouches for it"),
        "{}",
        text(&out.stdout)
    );

    // openssl checks the detached signature over the report bytes, and the DSSE envelope's signature
    // over the pre-authentication encoding of its in-toto statement.
    let ledger: Vec<serde_json::Value> = ledger(&demo.reports);
    let file = demo.reports.join(ledger[2]["file"].as_str().unwrap());
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = b64.decode(std::fs::read_to_string(format!("{}.sig", file.display())).unwrap().trim()).unwrap();
    assert!(openssl_verify(&public, &file, &sig, tmp.path()), "openssl rejects the report signature");
    let mut forged = std::fs::read(&file).unwrap();
    forged[10] ^= 1;
    std::fs::write(tmp.path().join("forged.json"), &forged).unwrap();
    assert!(!openssl_verify(&public, &tmp.path().join("forged.json"), &sig, tmp.path()));
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file.to_string_lossy().replace(".json", ".dsse.json")).unwrap())
            .unwrap();
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let ptype = env["payloadType"].as_str().unwrap();
    let mut pae = format!("DSSEv1 {} {ptype} {} ", ptype.len(), payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    std::fs::write(tmp.path().join("pae.bin"), &pae).unwrap();
    let env_sig = b64.decode(env["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    assert!(
        openssl_verify(&public, &tmp.path().join("pae.bin"), &env_sig, tmp.path()),
        "openssl rejects the DSSE signature"
    );
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["subject"][0]["digest"]["sha256"], ledger[2]["sha256"]);

    // securesystemslib (the in-toto project's DSSE implementation), as the README shows it, checks the
    // envelope and the three files it covers; an edited rendering or another key fails it.
    let envelope = std::path::PathBuf::from(file.to_string_lossy().replace(".json", ".dsse.json"));
    let name = file.file_name().unwrap().to_string_lossy().replace(".json", "");
    let verified = readme_dsse_verify(&envelope, &public).expect("securesystemslib verifies the envelope");
    assert_eq!(verified.trim(), format!("verified: {name}.json, {name}.md, {name}.html"));
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for ext in ["json", "md", "html", "dsse.json"] {
        std::fs::copy(file.with_extension(ext), copy.join(format!("{name}.{ext}"))).unwrap();
    }
    let html_copy = copy.join(format!("{name}.html"));
    let edited = std::fs::read_to_string(&html_copy).unwrap().replacen("PASSED", "PASSED (reviewed)", 1);
    std::fs::write(&html_copy, edited).unwrap();
    let err = readme_dsse_verify(&copy.join(format!("{name}.dsse.json")), &public).unwrap_err();
    assert!(err.contains(&format!("{name}.html was modified")), "{err}");
    let other = tmp.path().join("other.key");
    let out = Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&other).output().unwrap();
    assert!(out.status.success());
    let out = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&other).output().unwrap();
    std::fs::write(tmp.path().join("other.pub"), &out.stdout).unwrap();
    let err = readme_dsse_verify(&envelope, &tmp.path().join("other.pub")).unwrap_err();
    assert!(err.contains("VerificationError"), "{err}");

    // The HTML: well-formed (parsed as XML) and rendered by headless Chromium with the verdict banner visible.
    let html = file.with_extension("html");
    let body = std::fs::read_to_string(&html).unwrap();
    assert!(
        !body.contains("src=\"http") && !body.contains("href=\"http") && !body.contains("<link"),
        "no external assets"
    );
    let out = Command::new("python3")
        .args(["-c", "import sys, xml.dom.minidom as m; t = open(sys.argv[1]).read(); m.parseString(t.split('\\n', 1)[1]); print('ok')"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(out.status.success(), "the HTML is not well-formed: {}", text(&out.stderr));
    assert!(
        body.contains("ops-b") && body.contains("RTO and RPO trend") && body.contains("<svg"),
        "participants, trend, timeline"
    );
    let shot = tmp.path().join("shot.png");
    let out = Command::new(chromium())
        .args(headless(tmp.path()))
        .args(["--hide-scrollbars", "--window-size=1000,400"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(shot.is_file(), "chromium made no screenshot: {}", text(&out.stderr));
    let green = banner_pixels(&shot, (0x1a, 0x7f, 0x37));
    assert!(green > 5000, "the PASSED banner is not visible in the first screen ({green} banner pixels)");
    let out = Command::new(chromium())
        .args(headless(tmp.path()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("PASSED — the backup was restored to the target and verified"));

    // A reviewer signs off with their own key (trusted as a reviewer's): a chained entry the matrix shows
    // as theirs; a sign-off naming a reviewer nobody trusts (a typo), or signed with another key, is refused.
    let out = stackdrill().args(["keys", "generate", "--role", "reviewer", "--name", "a.auditor"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(demo.state().join("keys/trusted/a.auditor.pub").is_file());
    let sign_off = |id: &str, reviewer: &str, extra: &[&str]| {
        let out = stackdrill()
            .args(["report", "sign-off", id, "--reports", reports, "--reviewer", reviewer, "--decision", "approved"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    sign_off(ledger[1]["id"].as_str().unwrap(), "a.auditor", &[]);
    let refused = |reviewer: &str, extra: &[&str]| {
        let out = stackdrill()
            .args(["report", "sign-off", ledger[2]["id"].as_str().unwrap(), "--reports", reports])
            .args(["--reviewer", reviewer, "--decision", "approved"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
        text(&out.stderr)
    };
    let err = refused("a.audtior", &[]);
    assert!(err.contains("`a.audtior` is not a reviewer") && err.contains("did you mean `a.auditor`?"), "{err}");
    let err = refused("a.auditor", &["--signing-key", key.to_str().unwrap()]);
    assert!(err.contains("the operator key `signing`, not `a.auditor`'s key"), "{err}");
    let out = stackdrill().args(["report", "history", "local-demo", "--reports", reports]).output().unwrap();
    assert!(text(&out.stdout).contains("local-demo: 3 runs, 3 passed   RTO trend "), "{}", text(&out.stdout));
    let out = stackdrill().args(["report", "controls", "--reports", reports]).output().unwrap();
    let md = text(&out.stdout);
    assert!(
        md.contains("## SOC2-A1.2")
            && md.contains("approved by a.auditor (signed by reviewer key `a.auditor`)")
            && md.contains("| ok `signing` SHA256:")
            && md.contains("chain: intact"),
        "{md}"
    );

    // A report signed, soundly, by a key nobody trusts is unverified: verify exits 1 naming it, and the
    // matrix shows it so.
    let foreign = tmp.path().join("foreign.pem");
    let out =
        Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&foreign).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = demo.run_drill(&["--signing-key", foreign.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = stackdrill().args(["report", "verify", "--reports", reports]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).starts_with("UNVERIFIED: 5 entries")
            && text(&out.stdout).contains("entry 5 (report")
            && text(&out.stdout).contains("a key that is not trusted"),
        "{}",
        text(&out.stdout)
    );
    let out = stackdrill().args(["report", "controls", "--reports", reports]).output().unwrap();
    assert!(text(&out.stdout).contains("UNVERIFIED SHA256:"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("signed by keys that are not trusted"), "{}", text(&out.stderr));
    // Trusting it (as an auditor who was handed its .pub would) makes it verify.
    let out = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&foreign).output().unwrap();
    std::fs::write(tmp.path().join("partner.pub"), &out.stdout).unwrap();
    let out = stackdrill().args(["keys", "trust"]).arg(tmp.path().join("partner.pub")).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = stackdrill().args(["report", "verify", "--reports", reports]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("(`a.auditor`, `partner`, `signing`)"), "{}", text(&out.stdout));

    // Deleting the inconvenient report (and even its ledger line) breaks the chain at the next entry.
    std::fs::remove_file(demo.reports.join(ledger[1]["file"].as_str().unwrap())).unwrap();
    let out = stackdrill().args(["report", "verify", "--reports", reports]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("BROKEN: the first broken link is entry 2 "), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("the report was deleted"), "{}", text(&out.stdout));

    // Every reader says so, and the controls matrix over a broken chain fails naming the link.
    let out = stackdrill().args(["report", "controls", "--reports", reports]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the report chain is broken at entry 2 "), "{}", text(&out.stderr));
    let out = stackdrill().args(["report", "history", "--reports", reports]).output().unwrap();
    assert!(text(&out.stderr).contains("the report chain is broken at entry 2 "), "{}", text(&out.stderr));

    // An edited ledger field (the verdict readers take) is a broken link that names the field.
    let ledger_path = demo.reports.join("ledger.jsonl");
    let edited =
        std::fs::read_to_string(&ledger_path).unwrap().replacen("\"result\":\"passed\"", "\"result\":\"failed\"", 1);
    std::fs::write(&ledger_path, edited).unwrap();
    let out = stackdrill().args(["report", "verify", "--reports", reports]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("the ledger's `result` is `failed` but the report it points at says `passed`"),
        "{}",
        text(&out.stdout)
    );

    // A store that is not there is nothing to verify (exit 2), not "ok, 0 entries".
    let out = stackdrill().args(["report", "verify", "--reports", "/nonexistent/store"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("nothing to verify"), "{}", text(&out.stderr));
}

#[test]
fn an_object_locked_s3_store_chains_concurrent_drills_and_keeps_them_from_deletion() {
    let demo = Demo::start();
    let moto = super::moto::Moto::start();
    moto.python(
        "import boto3\n\
         s3 = boto3.client('s3')\n\
         loc = {'LocationConstraint': 'ap-southeast-1'}\n\
         s3.create_bucket(Bucket='evidence', CreateBucketConfiguration=loc, ObjectLockEnabledForBucket=True)\n\
         s3.create_bucket(Bucket='plain', CreateBucketConfiguration=loc)",
    );
    let run = |url: &str| {
        let mut cmd = Command::new(super::harness::bin_path());
        // Two runs of one drill at once are deliberate here.
        cmd.args(["drill", "run"]).arg(&demo.drill).args([
            "--reports",
            url,
            "--retain",
            "2d",
            "--if-running",
            "parallel",
        ]);
        cmd.env("STACKDRILL_STATE_DIR", demo.state());
        cmd.env("AWS_ENDPOINT_URL", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", super::moto::REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    };
    // Evidence is never written where it could be deleted.
    let out = run("s3://plain/prod").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a drill whose evidence cannot be stored does not pass");
    assert!(text(&out.stderr).contains("needs S3 Object Lock"), "{}", text(&out.stderr));

    // Two drills finishing at once: one chain, two entries, no fork.
    let a = run("s3://evidence/prod").spawn().unwrap();
    let b = run("s3://evidence/prod").spawn().unwrap();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let mut verify = stackdrill();
    moto.env(&mut verify);
    let out = verify.args(["report", "verify", "--retain", "2d", "--reports", "s3://evidence/prod"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("ok: 2 entries"), "{}", text(&out.stdout));

    // Every object is locked in compliance mode: deleting a report version is refused.
    let refused = moto.python(
        "import boto3\n\
         s3 = boto3.client('s3')\n\
         keys = [o['Key'] for o in s3.list_objects_v2(Bucket='evidence', Prefix='prod/')['Contents']]\n\
         assert 'prod/ledger/00000001.json' in keys and 'prod/ledger/00000002.json' in keys, keys\n\
         k = [k for k in keys if k.endswith('.json') and '/ledger/' not in k and not k.endswith('.dsse.json')][0]\n\
         h = s3.head_object(Bucket='evidence', Key=k)\n\
         assert h.get('ObjectLockMode') == 'COMPLIANCE' and 'ObjectLockRetainUntilDate' in h, h\n\
         v = s3.list_object_versions(Bucket='evidence', Prefix=k)['Versions'][0]['VersionId']\n\
         try:\n\
         \x20   s3.delete_object(Bucket='evidence', Key=k, VersionId=v)\n\
         \x20   print('deleted')\n\
         except Exception as e:\n\
         \x20   print('refused', type(e).__name__)",
    );
    assert!(refused.starts_with("refused"), "{refused}");

    // A create-only write can also meet 409 ConditionalRequestConflict (another conditional write to that
    // key in flight): like a lost race (412), it re-reads the head and tries again.
    moto.proxy.conflict("ledger/00000003.json", 2);
    let out = run("s3://evidence/prod").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(moto.proxy.injected().get("conflict"), Some(&2));
    let verify = |extra: &[&str]| {
        let mut verify = stackdrill();
        moto.env(&mut verify);
        let out = verify.args(["report", "verify", "--reports", "s3://evidence/prod"]).args(extra).output().unwrap();
        (out.status.code(), text(&out.stdout))
    };
    let (code, out) = verify(&["--retain", "2d"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok: 3 entries"), "{out}");

    // Locked for less than the store keeps evidence (400 days unless told): each object is named.
    let (code, out) = verify(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("prod/ledger/00000001.json` is locked only until"), "{out}");

    // Object Lock still allows a new version (here with the very same bytes, which the chain cannot see)
    // and a delete marker over the newest entry and its report (which leaves the chain intact, only
    // shorter): both are named from the object versions.
    let newest = moto.python(
        "import boto3\n\
         s3 = boto3.client('s3')\n\
         keys = sorted(o['Key'] for o in s3.list_objects_v2(Bucket='evidence', Prefix='prod/')['Contents'])\n\
         reports = [k for k in keys if k.endswith('.json') and '/ledger/' not in k and not k.endswith('.dsse.json')]\n\
         import json\n\
         newest = json.loads(s3.get_object(Bucket='evidence', Key='prod/ledger/00000003.json')['Body'].read())['file']\n\
         first = [k for k in reports if not k.endswith(newest)][0]\n\
         body = s3.get_object(Bucket='evidence', Key=first)['Body'].read()\n\
         s3.put_object(Bucket='evidence', Key=first, Body=body)\n\
         s3.delete_object(Bucket='evidence', Key='prod/ledger/00000003.json')\n\
         s3.delete_object(Bucket='evidence', Key='prod/' + newest)\n\
         print(first + ' ' + newest)",
    );
    let (replaced, deleted) = newest.trim().split_once(' ').unwrap();
    let (code, out) = verify(&["--retain", "2d"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("`{replaced}` has 2 versions: it was overwritten")), "{out}");
    assert!(out.contains(&format!("`prod/{deleted}` is hidden by 1 delete marker")), "{out}");
    assert!(out.contains("`prod/ledger/00000003.json` is hidden by 1 delete marker"), "{out}");
}

#[test]
fn a_kms_key_signs_reports_and_openssl_checks_them() {
    let demo = Demo::start();
    let moto = super::moto::Moto::start();
    moto.python(
        "import boto3\n\
         kms = boto3.client('kms')\n\
         k = kms.create_key(KeySpec='ECC_NIST_P256', KeyUsage='SIGN_VERIFY')['KeyMetadata']['KeyId']\n\
         kms.create_alias(AliasName='alias/drill-reports', TargetKeyId=k)",
    );
    let tmp = Scratch::new();
    // A signed drill run of the demo into `reports`.
    let signed_run = |reports: &std::path::Path| {
        let mut cmd = stackdrill();
        moto.env(&mut cmd);
        cmd.args(["drill", "run"])
            .arg(&demo.drill)
            .arg("--reports")
            .arg(reports)
            .args(["--sign-kms-key", "alias/drill-reports"])
            .output()
            .unwrap()
    };
    let reports = tmp.path().join("reports");
    let out = signed_run(&reports);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("signed: ecdsa-p256-sha256 key SHA256:"), "{}", text(&out.stdout));
    // Signed by a key nobody trusts yet: unverified; trusting the KMS key (its public key fetched) verifies.
    let out = stackdrill().args(["report", "verify", "--reports"]).arg(&reports).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with("UNVERIFIED: 1 entry"), "{}", text(&out.stdout));
    let mut verify = stackdrill();
    moto.env(&mut verify);
    let out = verify
        .args(["report", "verify", "--trust-kms-key", "alias/drill-reports", "--reports"])
        .arg(&reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1 signed, 1 by trusted keys (`kms:alias/drill-reports`)"),
        "{}",
        text(&out.stdout)
    );

    // openssl, with the public key KMS holds, checks the ECDSA signature over the report bytes.
    let ledger = std::fs::read_to_string(reports.join("ledger.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(ledger.lines().next().unwrap()).unwrap();
    let file = reports.join(entry["file"].as_str().unwrap());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let der = report["signing"]["public_key"].as_str().unwrap();
    let body: Vec<&str> = der.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let pem = tmp.path().join("kms.pub.pem");
    std::fs::write(&pem, format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", body.join("\n")))
        .unwrap();
    // securesystemslib checks the KMS-signed (ECDSA P-256) envelope too, as the README shows.
    let envelope = std::path::PathBuf::from(file.to_string_lossy().replace(".json", ".dsse.json"));
    let verified = readme_dsse_verify(&envelope, &pem).expect("securesystemslib verifies the KMS envelope");
    assert!(verified.starts_with("verified: ") && verified.contains(".html"), "{verified}");
    let sig = base64::engine::general_purpose::STANDARD
        .decode(std::fs::read_to_string(format!("{}.sig", file.display())).unwrap().trim())
        .unwrap();
    let sig_path = tmp.path().join("sig.der");
    std::fs::write(&sig_path, sig).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pem)
        .arg("-signature")
        .arg(&sig_path)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}{}", text(&out.stdout), text(&out.stderr));
    // The report is longer than the 4,096 bytes KMS signs raw: what was sent was its SHA-256 digest.
    assert!(std::fs::metadata(&file).unwrap().len() > 4096);

    // KMS refusing to sign is an error: no report claims a signature it does not have.
    moto.proxy.deny(Some("\"MessageType\""));
    let denied = tmp.path().join("denied");
    let out = signed_run(&denied);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("the KMS signing key `alias/drill-reports` could not sign") && stderr.contains("kms:Sign"),
        "{stderr}"
    );
    assert!(!stdout.contains("signed:"), "{stdout}");
    let sigs: Vec<_> = std::fs::read_dir(&denied)
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".sig")).collect())
        .unwrap_or_default();
    assert!(sigs.is_empty(), "a signature file was written: {sigs:?}");
}

/// The network requests a page loaded in headless Chromium makes, from its network log: URL requests
/// with the page as initiator (the browser's own background requests have none; `file://` loads are not
/// network requests).
fn page_requests(page: &Path, dir: &Path) -> Vec<String> {
    let netlog = dir.join("netlog.json");
    let _ = std::fs::remove_file(&netlog);
    let out = Command::new(chromium())
        .args(headless(dir))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&netlog).expect("chromium wrote its network log")).unwrap();
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64().unwrap();
    let mut urls: Vec<String> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job) && e["params"]["initiator"] != "not an origin")
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

#[test]
fn an_evidence_pack_opens_offline_and_verifies_without_the_store() {
    let demo = Demo::start();
    demo.not_a_demo(); // later runs are the operator's, counted as evidence
    let tmp = Scratch::new();
    let stackdrill = || {
        let mut c = stackdrill();
        c.env("STACKDRILL_STATE_DIR", demo.state());
        c
    };
    let out = stackdrill().args(["keys", "generate"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = demo.state().join("keys/signing.key");
    // The period starts after the demo's own (unsigned) report: the pack links back to it.
    let since = chrono::Utc::now().to_rfc3339();
    let mut failed = 0;
    for extra in [&[][..], &["--participant", "ops-b"][..]] {
        let out = demo.run_drill(&[&["--signing-key", key.to_str().unwrap()], extra].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        failed += usize::from(!text(&out.stdout).contains("PASSED"));
    }
    assert_eq!(failed, 0);
    let reports = demo.reports.to_str().unwrap();
    let pack = tmp.path().join("pack");
    let export = |extra: &[&str], out: &Path| {
        stackdrill()
            .args(["report", "export", "--reports", reports, "--since", &since])
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = export(&[], &pack);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 reports, ledger entries 2 to 3"), "{}", text(&out.stdout));

    // Offline, from the pack alone (the store moved away): verified, from the entry before the period.
    std::fs::rename(&demo.reports, tmp.path().join("store-elsewhere")).unwrap();
    let genuine = demo.state().join("keys/signing.key.pub");
    let out = stackdrill().args(["report", "verify", "--pack"]).arg(&pack).arg("--key").arg(&genuine).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: evidence pack")
            && text(&out.stdout).contains("ledger entries 2 to 3 intact from the entry before the period"),
        "{}",
        text(&out.stdout)
    );
    // The README's securesystemslib check, shipped in the pack, verifies a report there too.
    let ledger = std::fs::read_to_string(pack.join("reports/ledger.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(ledger.lines().next().unwrap()).unwrap();
    let envelope = pack.join("reports").join(entry["file"].as_str().unwrap().replace(".json", ".dsse.json"));
    assert!(readme_dsse_verify(&envelope, &pack.join("keys/signing.pub")).is_ok());

    // Headless Chromium opens the index: nothing is requested outside the pack, and every link resolves.
    let index = pack.join("index.html");
    let control = tmp.path().join("control.html");
    std::fs::write(&control, "<html><body><img src=\"http://example.invalid/x.png\"></body></html>").unwrap();
    assert_eq!(page_requests(&control, tmp.path()), ["http://example.invalid/x.png"], "the detector sees a request");
    let outside = page_requests(&index, tmp.path());
    assert!(outside.is_empty(), "requests outside the pack: {outside:?}");
    let out = Command::new(chromium())
        .args(headless(tmp.path()))
        .arg("--dump-dom")
        .arg(format!("file://{}", index.display()))
        .output()
        .unwrap();
    let dom = text(&out.stdout);
    assert!(dom.contains("Evidence pack: restore drills") && dom.contains("Drill <code>local-demo</code>"), "{dom}");
    let links: Vec<&str> = dom.split("href=\"").skip(1).filter_map(|s| s.split('"').next()).collect();
    assert!(links.len() > 5, "{links:?}");
    for link in links.iter().filter(|l| !l.starts_with('#')) {
        assert!(pack.join(link).is_file(), "the index links to `{link}`, which is not in the pack");
    }
    // Its numbers are the store's: two runs of the demo drill in the period, both passed.
    assert!(dom.contains("<td>2 (2)</td>"), "{dom}");

    // One .tar.gz verifies the same way; an edited index in the folder is named.
    let tgz = tmp.path().join("q4.tar.gz");
    std::fs::rename(tmp.path().join("store-elsewhere"), &demo.reports).unwrap();
    let out =
        stackdrill().args(["report", "export", "--reports", reports, "--tar", "--out"]).arg(&tgz).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = stackdrill().args(["report", "verify", "--pack"]).arg(&tgz).arg("--key").arg(&genuine).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    std::fs::write(&index, std::fs::read_to_string(&index).unwrap().replacen("<h1>", "<h1>Approved: ", 1)).unwrap();
    let out = stackdrill().args(["report", "verify", "--pack"]).arg(&pack).arg("--key").arg(&genuine).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("`index.html`: was modified"), "{}", text(&out.stdout));
}

/// Copies the report store `from` to `to` (flat: a store has no subdirectories).
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The "done when" list of the evidence work, each through `report verify` on its own copy of a signed
/// store: an edited ledger field, HTML and Markdown, an unsigned insertion and a report signed by a key
/// nobody trusts each exit 1 naming what was done.
#[test]
fn each_kind_of_tampering_makes_report_verify_exit_1_naming_it() {
    let demo = Demo::start();
    let tmp = Scratch::new();
    let sd = || in_state(&demo);
    let key = tmp.path().join("ops.key");
    assert!(sd().args(["keys", "generate", "--out"]).arg(&key).output().unwrap().status.success());
    for _ in 0..2 {
        let out = demo.run_drill(&["--signing-key", key.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let verify = |store: &Path| {
        let out = sd().args(["report", "verify", "--reports"]).arg(store).output().unwrap();
        (out.status.code(), text(&out.stdout))
    };
    assert_eq!(verify(&demo.reports).0, Some(0));
    let ledger: Vec<serde_json::Value> = ledger(&demo.reports);
    let stem = ledger[1]["file"].as_str().unwrap().trim_end_matches(".json").to_string();
    let copy = |name: &str| {
        let d = tmp.path().join(name);
        copy_store(&demo.reports, &d);
        d
    };

    let d = copy("ledger-field");
    let original = std::fs::read_to_string(d.join("ledger.jsonl")).unwrap();
    let lines: Vec<String> = original
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 1 { l.replacen("\"result\":\"passed\"", "\"result\":\"failed\"", 1) } else { l.into() })
        .collect();
    std::fs::write(d.join("ledger.jsonl"), lines.join("\n") + "\n").unwrap();
    let (code, out) = verify(&d);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("entry 2 ") && out.contains("the ledger's `result` is `failed`"), "{out}");

    for ext in ["html", "md"] {
        let d = copy(ext);
        let f = d.join(format!("{stem}.{ext}"));
        std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replacen("PASSED", "PASSED (reviewed)", 1)).unwrap();
        let (code, out) = verify(&d);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains(&format!("`{stem}.{ext}` was modified")), "{ext}: {out}");
    }

    // A run written without the key into the signed store.
    let d = copy("unsigned");
    let out = sd().args(["drill", "run"]).arg(&demo.drill).arg("--reports").arg(&d).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, out) = verify(&d);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("entry 4 ") && out.contains("not signed, though 2 entries before it are"), "{out}");

    // A run signed by a key nobody trusts.
    let d = copy("foreign");
    let foreign = tmp.path().join("foreign.pem");
    assert!(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&foreign)
            .output()
            .unwrap()
            .status
            .success()
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = sd()
        .args(["drill", "run"])
        .arg(&demo.drill)
        .arg("--reports")
        .arg(&d)
        .arg("--signing-key")
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, out) = verify(&d);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("UNVERIFIED") && out.contains("entry 4 ") && out.contains("not trusted"), "{out}");
}

// ---- Evidence against an insider with write access to the store or the pack (issue 30, items 1–6). ----

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A new Ed25519 key made with openssl (not stackdrill): `<name>.key` (0600) and `<name>.pub`.
fn openssl_key(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key).output().unwrap();
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(&public, &out.stdout).unwrap();
    (key, public)
}

/// An Ed25519 signature over `msg` by the PEM key in `key`, made by openssl.
fn openssl_sign(key: &Path, msg: &[u8], dir: &Path) -> Vec<u8> {
    let (m, s) = (dir.join("to-sign.bin"), dir.join("signed.bin"));
    std::fs::write(&m, msg).unwrap();
    let out = Command::new("openssl")
        .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
        .arg(key)
        .arg("-in")
        .arg(&m)
        .arg("-out")
        .arg(&s)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::read(&s).unwrap()
}

/// Every file under `dir`, relative and sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(dir.join(&rel)).unwrap().flatten() {
            let p = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// What a forger holding `key` (not the company's) does to a pack they edited: lists every file in a new
/// manifest and signs it, detached and in a DSSE envelope, as stackdrill would.
fn resign_manifest(pack: &Path, key: &Path, tmp: &Path) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(pack.join("MANIFEST.json")).unwrap()).unwrap();
    let files: Vec<serde_json::Value> = files_under(pack)
        .into_iter()
        .filter(|f| !f.starts_with("MANIFEST."))
        .map(|f| {
            let bytes = std::fs::read(pack.join(&f)).unwrap();
            serde_json::json!({ "path": f, "sha256": sha256_hex(&bytes), "bytes": bytes.len() })
        })
        .collect();
    m["files"] = serde_json::Value::Array(files);
    let mut body = serde_json::to_vec_pretty(&m).unwrap();
    body.push(b'\n');
    std::fs::write(pack.join("MANIFEST.json"), &body).unwrap();
    std::fs::write(pack.join("MANIFEST.json.sig"), format!("{}\n", b64.encode(openssl_sign(key, &body, tmp)))).unwrap();
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": "MANIFEST.json", "digest": { "sha256": sha256_hex(&body) } }],
        "predicateType": "https://github.com/stackdrill/stackdrill/drill-report/v1",
        "predicate": {},
    });
    let payload = serde_json::to_vec(&statement).unwrap();
    let ptype = "application/vnd.in-toto+json";
    let mut pae = format!("DSSEv1 {} {ptype} {} ", ptype.len(), payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    let env = serde_json::json!({
        "payloadType": ptype,
        "payload": b64.encode(&payload),
        "signatures": [{ "keyid": m["signing"]["key_id"], "sig": b64.encode(openssl_sign(key, &pae, tmp)) }],
    });
    std::fs::write(pack.join("MANIFEST.dsse.json"), serde_json::to_vec_pretty(&env).unwrap()).unwrap();
}

/// Item 1: trust comes only from outside what is verified. A forged pack that carries its own trusted key
/// (`.stackdrill/keys/trusted/evil.pub`, as the working directory's trusted folder), verified as VERIFY.md
/// says from inside it with the company's key, fails; so does a store whose trusted folder an attacker added
/// a key to, verified with `--key` the genuine key.
#[test]
fn a_pack_or_a_planted_trusted_key_never_vouches_for_itself() {
    let demo = Demo::start();
    let tmp = Scratch::new();
    let sd = || in_state(&demo);
    let key = generate_keys(&demo, false);
    let genuine = tmp.path().join("genuine.pub");
    std::fs::copy(demo.state().join("keys/signing.key.pub"), &genuine).unwrap();
    // A store every entry of which is signed (the demo's own unsigned run is elsewhere).
    let signed = tmp.path().join("signed-store");
    let run = |store: &Path, key: &Path| {
        let out = sd()
            .args(["drill", "run"])
            .arg(&demo.drill)
            .arg("--reports")
            .arg(store)
            .arg("--signing-key")
            .arg(key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    run(&signed, &key);

    // The insider signs a run of their own with their key, and drops that key into the trusted folder.
    let (evil_key, evil_pub) = openssl_key(tmp.path(), "evil");
    let forged = tmp.path().join("forged-store");
    copy_store(&signed, &forged);
    run(&forged, &evil_key);
    std::fs::copy(&evil_pub, demo.state().join("keys/trusted/evil.pub")).unwrap();
    let out = sd().args(["report", "verify", "--reports"]).arg(&forged).arg("--key").arg(&genuine).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a planted key passed `--key genuine.pub`: {}", text(&out.stdout));
    assert!(
        text(&out.stdout).starts_with("UNVERIFIED")
            && text(&out.stdout).contains("entry 2 ")
            && text(&out.stdout).contains("not trusted"),
        "{}",
        text(&out.stdout)
    );
    // The genuine store verifies with the genuine key alone.
    let out = sd().args(["report", "verify", "--reports"]).arg(&signed).arg("--key").arg(&genuine).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // A pack of the forged store, signed by the insider, carrying their key as the working directory's
    // trusted key; the company's key (keys/signing.pub) is in it, genuine.
    let pack = tmp.path().join("pack");
    let out = sd()
        .args(["report", "export", "--reports"])
        .arg(&forged)
        .arg("--signing-key")
        .arg(&evil_key)
        .arg("--out")
        .arg(&pack)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(pack.join("keys/signing.pub")).unwrap(), std::fs::read(&genuine).unwrap());
    std::fs::create_dir_all(pack.join(".stackdrill/keys/trusted")).unwrap();
    std::fs::copy(&evil_pub, pack.join(".stackdrill/keys/trusted/evil.pub")).unwrap();
    resign_manifest(&pack, &evil_key, tmp.path());
    let from_pack = |args: &[&str]| {
        let out = stackdrill().env_remove("STACKDRILL_STATE_DIR").current_dir(&pack).args(args).output().unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = from_pack(&["report", "verify", "--pack", ".", "--key", "keys/signing.pub"]);
    assert_eq!(code, Some(1), "the forged pack vouched for itself: {out}{err}");
    assert!(out.starts_with("UNVERIFIED") && out.contains("UNVERIFIED SHA256:"), "{out}");
    // Without a key there is nothing to trust: it says so rather than reading the pack's own.
    let (code, _, err) = from_pack(&["report", "verify", "--pack", "."]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("verified with the keys you trust") && err.contains("--key"), "{err}");
}

/// What an insider who can write the store (not sign) does to rewrite entry `n`'s document: strips every
/// signature and envelope, applies `edit`, and writes the whole chain again (each document's
/// `previous_sha256`, each ledger line's digest and link) so every hash matches.
fn strip_and_rechain(store: &Path, edit: impl Fn(usize, &mut serde_json::Value)) {
    let ledger = std::fs::read_to_string(store.join("ledger.jsonl")).unwrap();
    let mut prev: Option<String> = None;
    let mut lines = Vec::new();
    for (i, line) in ledger.lines().enumerate() {
        let mut e: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = e["file"].as_str().unwrap().to_string();
        let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(store.join(&file)).unwrap()).unwrap();
        edit(i, &mut doc);
        doc["previous_sha256"] = serde_json::json!(prev);
        doc["signing"] = serde_json::Value::Null;
        let mut body = serde_json::to_vec_pretty(&doc).unwrap();
        body.push(b'\n');
        std::fs::write(store.join(&file), &body).unwrap();
        let _ = std::fs::remove_file(store.join(format!("{file}.sig")));
        let _ = std::fs::remove_file(store.join(file.replace(".json", ".dsse.json")));
        let sha = sha256_hex(&body);
        e["sha256"] = serde_json::json!(sha);
        e["previous"] = serde_json::json!(prev);
        e["result"] = doc.get("result").or(doc.get("decision")).cloned().unwrap();
        e.as_object_mut().unwrap().remove("key_id");
        lines.push(serde_json::to_string(&e).unwrap());
        prev = Some(sha);
    }
    std::fs::write(store.join("ledger.jsonl"), lines.join("\n") + "\n").unwrap();
}

/// Items 2 and 3: a signed entry without its DSSE envelope is a broken link (the edited rendering it would
/// have exposed is not waved through, and `report export` refuses to sign it into a pack); stripping every
/// signature to rewrite a failed run as passed does not leave a store that verifies while an operator key
/// is trusted, and `report list` shows the rewritten run as BROKEN, not as a plain pass.
#[test]
fn a_stripped_envelope_or_stripped_signatures_never_verify() {
    let demo = Demo::start();
    let tmp = Scratch::new();
    let sd = || in_state(&demo);
    let key = generate_keys(&demo, false);
    let out = demo.run_drill(&["--signing-key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A failed run: the newest base backup corrupted.
    let out = run_on_a_corrupted_backup(&demo, &["--signing-key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let ledger: Vec<serde_json::Value> = ledger(&demo.reports);
    assert_eq!(ledger[2]["result"], "failed");
    let verify = |store: &Path| {
        let out = sd().args(["report", "verify", "--reports"]).arg(store).output().unwrap();
        (out.status.code(), text(&out.stdout))
    };
    assert_eq!(verify(&demo.reports).0, Some(0));

    // Item 2: the failed run's envelope deleted, its HTML and Markdown edited to say it passed.
    let stem = ledger[2]["file"].as_str().unwrap().trim_end_matches(".json").to_string();
    for ext in ["html", "md"] {
        let d = tmp.path().join(format!("no-envelope-{ext}"));
        copy_store(&demo.reports, &d);
        std::fs::remove_file(d.join(format!("{stem}.dsse.json"))).unwrap();
        let f = d.join(format!("{stem}.{ext}"));
        let edited = std::fs::read_to_string(&f).unwrap().replace("FAILED", "PASSED");
        assert_ne!(edited, std::fs::read_to_string(&f).unwrap());
        std::fs::write(&f, edited).unwrap();
        let (code, out) = verify(&d);
        assert_eq!(code, Some(1), "{ext}: {out}");
        assert!(
            out.starts_with("BROKEN: the first broken link is entry 3 ")
                && out.contains(&format!("DSSE envelope `{stem}.dsse.json` is missing")),
            "{ext}: {out}"
        );
        let pack = tmp.path().join(format!("pack-{ext}"));
        let out = sd().args(["report", "export", "--reports"]).arg(&d).arg("--out").arg(&pack).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "export signed a forged rendering: {}", text(&out.stdout));
        assert!(text(&out.stderr).contains("DSSE envelope"), "{}", text(&out.stderr));
        assert!(!pack.join("MANIFEST.json").exists());
    }

    // Item 3: every signature stripped, the failed run rewritten as passed, the chain written again.
    let d = tmp.path().join("stripped");
    copy_store(&demo.reports, &d);
    strip_and_rechain(&d, |i, doc| {
        if i == 2 {
            doc["result"] = "passed".into();
            doc["reason"] = serde_json::Value::Null;
        }
    });
    let (code, out) = verify(&d);
    assert_eq!(code, Some(1), "a stripped store verified: {out}");
    assert!(
        out.starts_with("BROKEN: the first broken link is entry 1 ")
            && out.contains("the operator key `signing` is trusted"),
        "{out}"
    );
    let out = sd().args(["report", "list", "--reports"]).arg(&d).output().unwrap();
    let listed = text(&out.stdout);
    let row = listed.lines().find(|l| l.trim_start().starts_with("3 ")).unwrap_or_default();
    assert!(row.contains("passed") && row.contains("BROKEN"), "{listed}");
    assert!(text(&out.stderr).contains("the report chain is broken"), "{}", text(&out.stderr));
    // The genuine store lists the failed run as failed, verified.
    let out = sd().args(["report", "list", "--reports"]).arg(&demo.reports).output().unwrap();
    let row = text(&out.stdout).lines().find(|l| l.trim_start().starts_with("3 ")).unwrap_or_default().to_string();
    assert!(row.contains("failed") && row.contains("ok `signing`"), "{row}");
}

/// The ```sh blocks of a VERIFY.md, in order.
fn sh_blocks(md: &str) -> Vec<String> {
    md.split("```sh\n").skip(1).map(|b| b.split("\n```").next().unwrap().to_string()).collect()
}

/// Runs each block of `pack`'s VERIFY.md with bash in the pack's folder, as an auditor pastes it, with
/// stackdrill and the pinned securesystemslib on PATH: (exit code, output) per block.
fn run_verify_md(pack: &Path) -> Vec<(String, Option<i32>, String)> {
    let md = std::fs::read_to_string(pack.join("VERIFY.md")).unwrap();
    let venv = super::moto::venv();
    assert!(venv.join("python3").is_file(), "securesystemslib is missing: run `scripts/moto-venv`");
    let bin = super::harness::bin_path();
    let path =
        format!("{}:{}:{}", bin.parent().unwrap().display(), venv.display(), std::env::var("PATH").unwrap_or_default());
    sh_blocks(&md)
        .into_iter()
        .map(|block| {
            let out = Command::new("bash")
                .arg("-c")
                .arg(&block)
                .current_dir(pack)
                .env("PATH", &path)
                .env_remove("STACKDRILL_STATE_DIR")
                .env_remove("STACKDRILL_REPORTS")
                .output()
                .unwrap();
            (block, out.status.code(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
        })
        .collect()
}

/// Item 6: every command VERIFY.md prints, run as written on a pack with a reviewer's sign-off, the demo's
/// run and an unsigned leading entry, passes; on a forged pack (a report's HTML edited, the manifest's
/// digest for it updated) they fail.
#[test]
fn every_command_verify_md_prints_passes_on_a_pack_and_fails_on_a_forged_one() {
    let demo = Demo::start(); // entry 1: the demo's own run, unsigned
    let tmp = Scratch::new();
    let sd = || in_state(&demo);
    let key = generate_keys(&demo, true);
    let out = demo.run_drill(&["--signing-key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reports = demo.reports.to_str().unwrap();
    let id = demo.last_report()["id"].as_str().unwrap().to_string();
    let out = sd()
        .args(["report", "sign-off", &id, "--reports", reports, "--reviewer", "a.tan", "--decision", "approved"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let pack = tmp.path().join("pack");
    let out = sd().args(["report", "export", "--reports", reports, "--out"]).arg(&pack).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results = run_verify_md(&pack);
    assert!(results.len() >= 6, "{results:?}");
    assert!(results.iter().any(|(b, ..)| b.starts_with("stackdrill report verify --pack .")), "{results:?}");
    for (block, code, out) in &results {
        assert_eq!(*code, Some(0), "VERIFY.md's\n{block}\nfailed on a genuine pack:\n{out}");
        assert!(!out.contains("BAD SIGNATURE"), "{block}\n{out}");
    }

    // A forged pack: the signed report's HTML edited to say otherwise, and the manifest's digest for it
    // updated (the forger cannot sign the manifest with the company's key).
    let forged = tmp.path().join("forged");
    let out = Command::new("cp").arg("-a").arg(&pack).arg(&forged).output().unwrap();
    assert!(out.status.success());
    let ledger = std::fs::read_to_string(forged.join("reports/ledger.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(ledger.lines().nth(1).unwrap()).unwrap();
    let html = format!("reports/{}", entry["file"].as_str().unwrap().replace(".json", ".html"));
    let edited =
        std::fs::read_to_string(forged.join(&html)).unwrap().replace("PASSED", "PASSED, reviewed and approved");
    std::fs::write(forged.join(&html), &edited).unwrap();
    let manifest = std::fs::read_to_string(forged.join("MANIFEST.json")).unwrap();
    let old = sha256_hex(&std::fs::read(pack.join(&html)).unwrap());
    std::fs::write(forged.join("MANIFEST.json"), manifest.replace(&old, &sha256_hex(edited.as_bytes()))).unwrap();
    let results = run_verify_md(&forged);
    let failed: Vec<&String> = results.iter().filter(|(_, code, _)| *code != Some(0)).map(|(b, ..)| b).collect();
    // The stackdrill check, the manifest's signature and the report's envelope each fail.
    assert!(failed.iter().any(|b| b.starts_with("stackdrill report verify")), "{results:?}");
    assert!(failed.iter().any(|b| b.contains("MANIFEST.json.sig")), "{results:?}");
    assert!(failed.iter().any(|b| b.contains("verify_dsse.py")), "{results:?}");
}

/// Item 4: a pack records the head it ends at, and the next pack must continue from it. The store's newest
/// entries deleted after an export and the chain written on from there (undetectable in the store and in
/// the new pack alone) is named by `report verify --pack NEW --previous OLD`.
#[test]
fn a_pack_continues_from_the_previous_one_and_a_truncated_store_is_named() {
    let demo = Demo::start();
    let tmp = Scratch::new();
    let sd = || in_state(&demo);
    let key = generate_keys(&demo, false);
    let genuine = demo.state().join("keys/signing.key.pub");
    let run = |store: &Path| {
        let out = sd()
            .args(["drill", "run"])
            .arg(&demo.drill)
            .arg("--reports")
            .arg(store)
            .arg("--signing-key")
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    let export = |store: &Path, out: &Path| {
        let o = sd().args(["report", "export", "--reports"]).arg(store).arg("--out").arg(out).output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    let verify = |new: &Path, old: Option<&Path>| {
        let mut c = stackdrill();
        c.args(["report", "verify", "--pack"]).arg(new).arg("--key").arg(&genuine);
        if let Some(old) = old {
            c.arg("--previous").arg(old);
        }
        let out = c.output().unwrap();
        (out.status.code(), text(&out.stdout))
    };
    run(&demo.reports); // entry 2
    let q1 = tmp.path().join("q1");
    export(&demo.reports, &q1);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(q1.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["head"]["seq"], 2, "{manifest}");

    // The insider keeps a copy, deletes the newest entry (its report and ledger line) and runs on.
    let truncated = tmp.path().join("truncated");
    copy_store(&demo.reports, &truncated);
    run(&demo.reports); // entry 3
    let q2 = tmp.path().join("q2");
    export(&demo.reports, &q2);
    let (code, out) = verify(&q2, Some(&q1));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("continues from entry 2, where the previous pack ended"), "{out}");

    let ledger = std::fs::read_to_string(truncated.join("ledger.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
    let stem = last["file"].as_str().unwrap().trim_end_matches(".json").to_string();
    for f in std::fs::read_dir(&truncated).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with(&stem) {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    let kept: Vec<&str> = ledger.lines().take(ledger.lines().count() - 1).collect();
    std::fs::write(truncated.join("ledger.jsonl"), kept.join("\n") + "\n").unwrap();
    run(&truncated); // a new entry 2
    let rewritten = tmp.path().join("rewritten");
    export(&truncated, &rewritten);
    // Alone, the new pack verifies: nothing in it shows what was deleted.
    assert_eq!(verify(&rewritten, None).0, Some(0));
    let (code, out) = verify(&rewritten, Some(&q1));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("BROKEN: ")
            && out.contains("but the previous pack ended at entry 2 with sha256")
            && out.contains("deleted and written again"),
        "{out}"
    );
}

/// Item 5: sign-offs of one report at once each keep their own file (the store stays verified); a
/// reviewer name nobody trusts is refused with the nearest one; an entry whose document was lost (as the
/// old same-second sign-offs lost one) is recorded as lost by a signed command, never by editing the
/// ledger, and the store's readers work again.
#[test]
fn concurrent_sign_offs_keep_their_files_and_a_lost_entry_is_recorded_by_a_signed_entry() {
    let demo = Demo::start();
    let sd = || in_state(&demo);
    let key = generate_keys(&demo, true);
    let out = demo.run_drill(&["--signing-key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reports = demo.reports.to_str().unwrap();
    let id = demo.last_report()["id"].as_str().unwrap().to_string();
    let sign_off = |reviewer: &str| {
        let mut c = super::harness::command();
        c.env("STACKDRILL_STATE_DIR", demo.state()).args([
            "report",
            "sign-off",
            &id,
            "--reports",
            reports,
            "--reviewer",
            reviewer,
            "--decision",
            "approved",
        ]);
        c
    };
    // Four sign-offs at once: within one second, each its own file, each landing (a sign-off reading the
    // store while another commits once refused the chain as broken).
    let children: Vec<_> =
        (0..4).map(|_| sign_off("a.tan").stdout(std::process::Stdio::null()).spawn().unwrap()).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let verify = || {
        let out = sd().args(["report", "verify", "--reports", reports]).output().unwrap();
        (out.status.code(), text(&out.stdout))
    };
    let (code, out) = verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("ok: 6 entries"), "{out}");
    let ledger: Vec<serde_json::Value> = ledger(&demo.reports);
    let files: std::collections::HashSet<&str> = ledger.iter().map(|e| e["file"].as_str().unwrap()).collect();
    assert_eq!(files.len(), 6, "two entries share a file: {ledger:?}");
    let out = sign_off("a.tna").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did you mean `a.tan`?"), "{}", text(&out.stderr));

    // A sign-off's document lost (as the old naming lost one): the store is broken, controls refuse.
    let lost = ledger[3]["file"].as_str().unwrap();
    for f in [lost.to_string(), format!("{lost}.sig"), lost.replace(".json", ".dsse.json")] {
        std::fs::remove_file(demo.reports.join(f)).unwrap();
    }
    let (code, out) = verify();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("entry 4 ") && out.contains("is missing"), "{out}");
    assert_eq!(sd().args(["report", "controls", "--reports", reports]).output().unwrap().status.code(), Some(1));
    // Only a trusted operator key records a loss; an intact entry is refused.
    let reviewer_key = demo.state().join("keys/reviewers/a.tan.key");
    let record = |seq: &str, key: &Path| {
        sd().args([
            "report",
            "record-loss",
            seq,
            "--reports",
            reports,
            "--reason",
            "overwritten by a same-second sign-off",
        ])
        .arg("--signing-key")
        .arg(key)
        .output()
        .unwrap()
    };
    let out = record("4", &reviewer_key);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a trusted operator key"), "{}", text(&out.stderr));
    let out = record("3", &key);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("entry 3 is intact"), "{}", text(&out.stderr));
    let out = record("4", &key);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, out) = verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("ok: 7 entries")
            && out.contains("1 recorded as lost")
            && out.contains("entry 4 (sign-off")
            && out.contains("lost, as entry 7 records: overwritten by a same-second sign-off"),
        "{out}"
    );
    assert_eq!(sd().args(["report", "controls", "--reports", reports]).output().unwrap().status.code(), Some(0));
    // The record is itself a chained, signed entry: editing its reason breaks the chain.
    let record_file = std::fs::read_to_string(demo.reports.join("ledger.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(record_file.lines().last().unwrap()).unwrap();
    let f = demo.reports.join(last["file"].as_str().unwrap());
    std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replace("same-second", "routine")).unwrap();
    assert_eq!(verify().0, Some(1));
}

/// Review item 1: a store stripped of its signatures and rechained (a failed run rewritten as passed) is
/// never chained onto: the operator's next signed drill writes its report outside the chain, into
/// `unchained/`, and fails naming the broken link, so no signed entry vouches for the forged history;
/// `report verify`, `controls`, `list` and `runbook check` stay non-zero and controls never shows the
/// forged run as passed; a sign-off is refused. Item 3: a failed run whose report was lost (and recorded
/// so) stays in the controls matrix as failed. Item 4: readers exit 1 on a broken store.
#[test]
fn a_stripped_store_is_never_chained_onto_and_a_lost_failed_run_stays_failed() {
    let demo = Demo::start();
    demo.not_a_demo();
    let tmp = Scratch::new();
    let sd = || in_state(&demo);
    let key = generate_keys(&demo, true);
    let signed = ["--signing-key", key.to_str().unwrap()];
    assert!(demo.run_drill(&signed).status.success());
    assert_eq!(run_on_a_corrupted_backup(&demo, &signed).status.code(), Some(1));
    let ledger: Vec<serde_json::Value> = ledger(&demo.reports);
    assert_eq!(ledger[2]["result"], "failed");
    let forged_id = ledger[2]["id"].as_str().unwrap().to_string();
    let run = |args: &[&str], store: &Path| {
        let out = sd().args(args).arg("--reports").arg(store).output().unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    // Item 3: the failed run's report lost, recorded by the operator: controls still shows it failed.
    let lost = tmp.path().join("lost");
    copy_store(&demo.reports, &lost);
    let stem = ledger[2]["file"].as_str().unwrap().trim_end_matches(".json").to_string();
    for ext in ["json", "md", "html", "json.sig", "dsse.json"] {
        std::fs::remove_file(lost.join(format!("{stem}.{ext}"))).unwrap();
    }
    let out = sd()
        .args(["report", "record-loss", "3", "--reason", "disk failure", "--reports"])
        .arg(&lost)
        .arg("--signing-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, md, err) = run(&["report", "controls"], &lost);
    assert_eq!(code, Some(0), "{md}{err}");
    let row = md.lines().find(|l| l.contains(&forged_id)).unwrap_or_default();
    assert!(row.contains("failed — report lost, recorded by `signing`"), "the lost failed run vanished: {md}");

    // Item 1: every signature stripped, the failed run rewritten as passed, the chain written again.
    strip_and_rechain(&demo.reports, |i, doc| {
        if i == 2 {
            doc["result"] = "passed".into();
            doc["reason"] = serde_json::Value::Null;
        }
    });
    let out = demo.run_drill(&signed);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a drill chained onto a broken store: {err}");
    assert!(
        err.contains("error:")
            && err.contains("the report chain is broken")
            && err.contains("entry 1 ")
            && err.contains("unchained")
            && err.contains("report verify"),
        "{err}"
    );
    let lines = std::fs::read_to_string(demo.reports.join("ledger.jsonl")).unwrap().lines().count();
    assert_eq!(lines, 3, "the drill's entry was chained onto the forged history");
    let kept: Vec<_> = std::fs::read_dir(demo.reports.join("unchained"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().ends_with(".json")
                && !e.file_name().to_string_lossy().ends_with(".dsse.json")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the report was lost");
    let (code, out, _) = run(&["report", "verify"], &demo.reports);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("BROKEN: the first broken link is entry 1 "), "{out}");
    let (code, md, _) = run(&["report", "controls"], &demo.reports);
    assert_eq!(code, Some(1), "{md}");
    let row = md.lines().find(|l| l.contains(&forged_id)).unwrap_or_default();
    assert!(row.contains("UNVERIFIED (says passed)") && !row.contains("| passed |"), "{md}");
    let (code, _, err) = run(&["report", "list"], &demo.reports);
    assert_eq!(code, Some(1), "report list exited 0 on a broken store: {err}");
    let (code, _, err) = run(&["report", "history"], &demo.reports);
    assert_eq!(code, Some(1), "{err}");
    let (code, _, err) = run(&["report", "show", &forged_id], &demo.reports);
    assert_eq!(code, Some(1), "{err}");
    // A sign-off would sign after the forged history: refused.
    let out = sd()
        .args(["report", "sign-off", &forged_id, "--reviewer", "a.tan", "--decision", "approved", "--reports"])
        .arg(&demo.reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("a sign-off is never chained onto it"), "{}", text(&out.stderr));
    // Item 4: runbook check over the broken store is not "ok".
    let drills = tmp.path().join("cwd/drills");
    std::fs::create_dir_all(&drills).unwrap();
    std::fs::copy(&demo.drill, drills.join("local-demo.yaml")).unwrap();
    let out = sd()
        .current_dir(tmp.path().join("cwd"))
        .args(["runbook", "check", "--reports"])
        .arg(&demo.reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).starts_with("ok"), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("broken"), "{}", text(&out.stderr));
}
