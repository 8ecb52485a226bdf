//! The store's state as OpenMetrics text (Prometheus): per drill its last result, last success, restore,
//! RTO and RPO seconds, check counts and whether it is overdue, plus the chain's verification and, from a
//! running scheduler, its heartbeat. `drill run --metrics-file` writes it for node_exporter's textfile
//! collector; `schedule run --metrics-listen` serves it on `/metrics`. Demo runs count for nothing.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::model::CheckStatus;
use super::view::Store;
use crate::config::DrillSpec;

type Labels = Vec<(String, String)>;
type Series = Family<Labels, Gauge<f64, AtomicU64>>;

/// The metrics, keyed by name, registered in one registry.
struct Metrics {
    registry: Registry,
}

impl Metrics {
    fn family(&mut self, name: &str, help: &str) -> Series {
        let f = Series::default();
        self.registry.register(name, help, f.clone());
        f
    }

    /// A series without labels.
    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        let g = Gauge::<f64, AtomicU64>::default();
        g.set(value);
        self.registry.register(name, help, g);
    }
}

fn labels(drill: &str) -> Labels {
    vec![("drill".into(), drill.into())]
}

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Per store of the backup-posture records, from its newest record: met (1 only when that record verifies
/// and says met), when it was checked, the newest backup's age and the point-in-time recovery lag.
fn posture(m: &mut Metrics, store: &Store) {
    let met = m.family("backup_posture_met", "1 when the store's last backup-posture record verifies and says met");
    let checked =
        m.family("backup_posture_checked_timestamp_seconds", "When the store's backup posture was last checked");
    let age = m.family("backup_age_seconds", "The newest backup's age at the last posture check");
    let lag = m.family("backup_pitr_lag_seconds", "The point-in-time recovery lag at the last posture check");
    let mut newest: std::collections::BTreeMap<
        &str,
        (&super::view::Row, &super::posture::StorePosture, DateTime<Utc>),
    > = std::collections::BTreeMap::new();
    for (row, r) in store.postures() {
        for s in &r.stores {
            if newest.get(s.name.as_str()).is_none_or(|(_, _, t)| *t <= r.checked_at) {
                newest.insert(s.name.as_str(), (row, s, r.checked_at));
            }
        }
    }
    for (name, (row, s, at)) in newest {
        let l = vec![("store".to_string(), name.to_string())];
        let verified = !matches!(
            store.state(row.entry.seq),
            super::trust::SigState::Broken | super::trust::SigState::Unverified { .. }
        );
        let ok = verified && s.result == super::posture::Outcome::Met;
        met.get_or_create(&l).set(f64::from(u8::from(ok)));
        checked.get_or_create(&l).set(secs(at));
        let figure = |n: &str| s.figures.iter().find(|f| f.name == n).and_then(|f| f.number);
        if let Some(v) = figure("backup-age") {
            age.get_or_create(&l).set(v);
        }
        if let Some(v) = figure("pitr-lag") {
            lag.get_or_create(&l).set(v);
        }
    }
}

/// The OpenMetrics text for `store` and the drill files `specs`, as of `now`; `heartbeat` is when a
/// running scheduler last went round its loop.
pub(crate) fn render(
    store: &Store,
    specs: &[DrillSpec],
    now: DateTime<Utc>,
    heartbeat: Option<DateTime<Utc>>,
) -> String {
    let mut m = Metrics { registry: Registry::with_prefix("stackdrill") };
    let last_run = m.family("drill_last_run_timestamp_seconds", "When the drill's last run started (Unix time)");
    let last_passed = m.family("drill_last_passed", "1 when the drill's last run passed, else 0");
    let last_success =
        m.family("drill_last_success_timestamp_seconds", "When the drill's last passed run started (Unix time)");
    let restore = m.family("drill_restore_seconds", "The last run's restore and ready phases");
    let rto = m.family("drill_rto_seconds", "The last run's RTO: restore start until the copy accepts queries");
    let rpo = m.family("drill_rpo_seconds", "The last run's RPO: the target minus the newest commit restored");
    let rto_objective = m.family("drill_rto_objective_seconds", "The drill's RTO objective");
    let rpo_objective = m.family("drill_rpo_objective_seconds", "The drill's RPO objective");
    let checks = m.family("drill_checks", "The last run's checks by status");
    let overdue = m.family("drill_overdue", "1 when a scheduled drill has no passed run within its cadence");
    let mut drills: BTreeSet<String> = specs.iter().map(|s| s.name.clone()).collect();
    drills.extend(store.reports().filter(|r| !r.is_demo()).map(|r| r.entry.drill.clone()));
    for d in &drills {
        let l = labels(d);
        let runs: Vec<_> = store.history(d).filter(|r| !r.is_demo()).collect();
        let last = runs.iter().filter(|r| r.started_at().is_some()).max_by_key(|r| r.started_at());
        let pass = runs.iter().filter(|r| r.passed()).max_by_key(|r| r.started_at());
        if let Some(r) = last.and_then(|r| r.report()) {
            last_run.get_or_create(&l).set(secs(r.started_at));
            last_passed.get_or_create(&l).set(f64::from(u8::from(r.result == super::Verdict::Passed)));
            let restored = r.restore_seconds();
            restore.get_or_create(&l).set(restored);
            if let Some(v) = r.measured.rto_seconds {
                rto.get_or_create(&l).set(v);
            }
            if let Some(v) = r.measured.rpo_seconds {
                rpo.get_or_create(&l).set(v);
            }
            rto_objective.get_or_create(&l).set(r.objectives.rto_seconds);
            rpo_objective.get_or_create(&l).set(r.objectives.rpo_seconds);
            for status in [CheckStatus::Passed, CheckStatus::Failed, CheckStatus::Error, CheckStatus::Skipped] {
                let n = r.checks.iter().filter(|c| c.status == status).count();
                let mut l = l.clone();
                l.push(("status".into(), status.as_str().into()));
                checks.get_or_create(&l).set(n as f64);
            }
        }
        if let Some(t) = pass.and_then(|r| r.started_at()) {
            last_success.get_or_create(&l).set(secs(t));
        }
        if let Some(sched) = specs.iter().find(|s| s.name == *d).and_then(|s| s.schedule.as_ref()) {
            let late = crate::cadence::overdue(sched, pass.and_then(|r| r.started_at()), now).unwrap_or(false);
            overdue.get_or_create(&l).set(f64::from(u8::from(late)));
        }
    }
    posture(&mut m, store);
    let intact = f64::from(u8::from(store.broken().is_none()));
    m.gauge("store_verified", "1 when the report store's hash chain and signatures verify", intact);
    if let Some(t) = heartbeat {
        m.gauge(
            "scheduler_heartbeat_timestamp_seconds",
            "When the scheduler last went round its loop (Unix time)",
            secs(t),
        );
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        return "# EOF\n".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_last_run_and_an_overdue_schedule_are_series_promql_can_alert_on() {
        let mut r = crate::report::golden_tests::fixed();
        r.drill = "orders-pitr".into();
        r.trigger = "schedule".into();
        let row = crate::report::view::Row {
            entry: crate::report::chain::Entry {
                seq: 1,
                kind: crate::report::chain::EntryKind::Report,
                id: r.id.clone(),
                drill: r.drill.clone(),
                result: "failed".into(),
                file: "1.json".into(),
                sha256: "0".repeat(64),
                previous: None,
                at: "2026-11-30T03:00:59Z".into(),
                key_id: None,
            },
            doc: crate::report::view::Doc::Report(Box::new(r)),
        };
        let store = Store::from_rows(vec![row]);
        let drill = "name: orders-pitr\nrestore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                     objectives: { rto: 1h, rpo: 5m }\nverify:\n  - amcheck: {}\n\
                     schedule: { cron: \"0 3 * * *\", timezone: UTC }\n";
        let spec = crate::config::parse_drill(drill, std::path::Path::new("d.yaml")).unwrap();
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 3, 12, 0, 0).unwrap();
        let text = render(&store, &[spec], now, Some(now));
        for line in [
            "stackdrill_drill_last_passed{drill=\"orders-pitr\"} 0.0",
            "stackdrill_drill_overdue{drill=\"orders-pitr\"} 1.0",
            "stackdrill_drill_checks{drill=\"orders-pitr\",status=\"failed\"} 1.0",
            "stackdrill_drill_rto_seconds{drill=\"orders-pitr\"} 42.5",
            "stackdrill_store_verified 1.0",
            "# TYPE stackdrill_scheduler_heartbeat_timestamp_seconds gauge",
        ] {
            assert!(text.contains(line), "`{line}` not in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(!text.contains("drill_last_success_timestamp_seconds{"), "never passed: no success time\n{text}");
    }

    /// The newest posture record of each store as gauges: met, checked, backup age, PITR lag.
    #[test]
    fn the_last_posture_of_each_store_is_a_series_promql_can_alert_on() {
        use crate::report::posture::{Figure, Outcome, Record, Status, StorePosture};
        let figure = |name: &str, n: f64, status: Status| Figure {
            name: name.into(),
            value: String::new(),
            number: Some(n),
            objective: None,
            status,
            detail: None,
        };
        let record = |at: &str, age: f64, met: bool| {
            let figures = vec![
                figure("backup-age", age, if met { Status::Met } else { Status::NotMet }),
                figure("pitr-lag", 12.0, Status::Met),
            ];
            let s = StorePosture {
                name: "app-db".into(),
                kind: "local-postgres".into(),
                result: Outcome::of(&figures),
                figures,
            };
            Record::new(vec![s], chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc())
        };
        let row = |seq: u64, r: Record| crate::report::view::Row {
            entry: crate::report::chain::Entry {
                seq,
                kind: crate::report::chain::EntryKind::Posture,
                id: r.id.clone(),
                drill: "backups".into(),
                result: r.result.as_str().into(),
                file: format!("{seq}.json"),
                sha256: "0".repeat(64),
                previous: None,
                at: r.checked_at.to_rfc3339(),
                key_id: None,
            },
            doc: crate::report::view::Doc::Posture(Box::new(r)),
        };
        let store = Store::from_rows(vec![
            row(1, record("2026-12-01T04:00:00Z", 3600.0, true)),
            row(2, record("2026-12-02T04:00:00Z", 30.0 * 3600.0, false)),
        ]);
        let text = render(&store, &[], Utc::now(), None);
        for line in [
            "stackdrill_backup_posture_met{store=\"app-db\"} 0.0",
            "stackdrill_backup_age_seconds{store=\"app-db\"} 108000.0",
            "stackdrill_backup_pitr_lag_seconds{store=\"app-db\"} 12.0",
            "stackdrill_backup_posture_checked_timestamp_seconds{store=\"app-db\"} 1796184000.0",
        ] {
            assert!(text.contains(line), "`{line}` not in:\n{text}");
        }
    }
}
