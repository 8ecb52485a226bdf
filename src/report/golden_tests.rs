//! The signed v1 format, pinned: a fixed report (every field set) serialises to `tests/golden/report-v1.json`
//! byte for byte, and that file reads back into the same bytes. A change to the model that alters signed
//! bytes fails here; regenerate the file only for a deliberate schema change (a new schema version).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use super::model::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/report-v1.json");

fn at(s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, s).single().expect("a valid time")
}

/// A report with every field set (the optional ones too), as a store would write it.
pub(crate) fn fixed() -> Report {
    let report = Report {
        hint: None,
        interrupted: false,
        schema: SCHEMA.into(),
        id: "0123456789ab".into(),
        drill: "orders-pitr".into(),
        description: Some("orders database, point in time".into()),
        result: Verdict::Failed,
        reason: Some("check `orders` failed: 2 rows missing".into()),
        started_at: at(0),
        finished_at: at(59),
        tool: Tool { name: "stackdrill".into(), version: "0.1.0".into() },
        operator: "sre@host".into(),
        trigger: "schedule".into(),
        scheduled_for: Some(at(0)),
        next_scheduled: Some(at(30)),
        drill_file: FileRef {
            path: "drills/orders.yaml".into(),
            sha256: Some("ab".repeat(32)),
            git_commit: Some("cd".repeat(20)),
            git_dirty: true,
        },
        source: Source {
            provider: "aws-rds-instance".into(),
            details: BTreeMap::from([("instance".to_string(), "orders-prod".to_string())]),
            backup: Some(Backup {
                id: "rds:orders-prod-2026-11-30".into(),
                location: "arn:aws:rds:ap-southeast-1:123456789012:snapshot:x".into(),
                started_at: at(1),
                finished_at: at(2),
            }),
            scratch: Some("stackdrill-orders-0123456789ab".into()),
        },
        connections: vec![Connection {
            role: "source".into(),
            endpoint: "drill@orders.example:5432/orders".into(),
            transport: "tcp".into(),
            sslmode: "verify-full".into(),
            tls_version: Some("TLSv1.3".into()),
            cipher: Some("TLS_AES_256_GCM_SHA384".into()),
            server_verified: true,
            hostname_verified: true,
            credential: "secrets-manager".into(),
            session: Some("statement_timeout=60s".into()),
        }],
        neutralised: vec!["archive_mode off".into()],
        inert: None,
        also_restored: vec![AlsoRestored {
            name: "files".into(),
            provider: "aws-s3-bucket".into(),
            source: "s3://orders-files/docs/".into(),
            from: "versions".into(),
            window: Some(WindowRecord { earliest: at(1), latest: at(40) }),
            restored_to: Some(at(20)),
            scratch: Some("ap-southeast-1/sd-orders-a1b2c3d4e5f6-0".into()),
            encryption: Some("SSE-KMS (alias/files)".into()),
            objects: Some(300),
            bytes: Some(1_228_800),
            rto_seconds: Some(4.5),
            status: PhaseStatus::Passed,
            detail: None,
            teardown: TeardownRecord {
                status: TeardownStatus::Done,
                at: at(58),
                detail: "scratch bucket `sd-orders-a1b2c3d4e5f6-0` emptied and deleted".into(),
            },
        }],
        target: Target {
            time: Some(at(3)),
            selection: "latest".into(),
            seed: Some(7),
            recovery: "recovery_target_time, promote at the target".into(),
            window: Some(WindowRecord { earliest: at(0), latest: at(4) }),
        },
        objectives: Objectives { rto_seconds: 3600.0, rpo_seconds: 300.0 },
        measured: Measured {
            rto_seconds: Some(42.5),
            rpo_seconds: Some(0.25),
            rpo_basis: "the newest commit replayed into the restore".into(),
            newest_commit: Some(at(3)),
            rto_met: true,
            rpo_met: true,
            recovery_point: None,
            recovery_point_reference: None,
        },
        phases: vec![Phase {
            name: "restore".into(),
            started_at: at(5),
            seconds: 12.0,
            status: PhaseStatus::Passed,
            detail: None,
            api_calls: BTreeMap::from([("rds:RestoreDBInstanceToPointInTime".to_string(), 1)]),
        }],
        checks: vec![Check {
            name: "orders".into(),
            kind: "row-count".into(),
            status: CheckStatus::Failed,
            detail: "2 rows missing".into(),
            seconds: 0.5,
            newest: Some(at(3)),
            query: None,
            expect: None,
        }],
        teardown: TeardownRecord { status: TeardownStatus::Done, at: at(58), detail: "deleted".into() },
        runbook: Some(FileRef { path: "runbooks/orders.md".into(), sha256: None, git_commit: None, git_dirty: false }),
        controls: vec!["SOC2-A1.3".into()],
        participants: vec!["auditor@example".into()],
        deviations: vec![],
        previous_sha256: Some("ef".repeat(32)),
        signing: Some(SigningRecord {
            algorithm: "ed25519".into(),
            key_id: "k1".into(),
            fingerprint: "SHA256:abc".into(),
            public_key: "AAAA".into(),
        }),
    };
    Report { deviations: deviations(&report), ..report }
}

/// The bytes a store writes for `r` (pretty JSON and a newline).
fn bytes(r: &Report) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(r).expect("a report serialises");
    b.push(b'\n');
    b
}

#[test]
fn the_v1_report_serialises_byte_for_byte_as_the_golden_file() {
    let golden = std::fs::read(GOLDEN).expect("tests/golden/report-v1.json is checked in");
    let got = bytes(&fixed());
    assert!(
        got == golden,
        "the v1 report's bytes changed: signed reports would no longer match their schema.\n--- got ---\n{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn the_golden_report_reads_back_into_the_same_bytes() {
    let golden = std::fs::read(GOLDEN).expect("tests/golden/report-v1.json is checked in");
    let r: Report = serde_json::from_slice(&golden).expect("the golden report parses");
    assert_eq!(String::from_utf8_lossy(&bytes(&r)), String::from_utf8_lossy(&golden));
}

/// The Markdown and HTML renderings of the fixed report, pinned (what an auditor reads beside the JSON).
#[test]
fn renderings_snapshot() {
    let mut r = fixed();
    // A `sql` check carries its query and expectation (fields a v1 report may leave out).
    r.checks.push(Check {
        name: "every transfer balances".into(),
        kind: "sql".into(),
        status: CheckStatus::Passed,
        detail: "returned 0 (1 rows)".into(),
        seconds: 0.1,
        newest: None,
        query: Some("select count(*) from transfers where debit <> credit".into()),
        expect: Some("equals 0".into()),
    });
    insta::assert_snapshot!("report_markdown", super::markdown::render(&r));
    let day = chrono::Duration::days(1);
    let trend = [
        super::html::Point {
            at: at(0) - day * 2,
            rto: Some(40.0),
            rpo: Some(0.5),
            result: super::model::Verdict::Passed,
        },
        super::html::Point { at: at(0) - day, rto: Some(75.0), rpo: None, result: super::model::Verdict::Failed },
    ];
    insta::assert_snapshot!("report_html", super::html::render(&r, &trend));
}
