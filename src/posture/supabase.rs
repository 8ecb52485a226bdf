//! The Supabase reader: `GET /v1/projects/{ref}/database/backups` through the Management API client —
//! point-in-time recovery (`pitr_enabled`, `walg_enabled`), the PITR window's latest point (its lag) and
//! earliest (retention), the newest backup's status and age, the region; encryption is not reported.

use chrono::{DateTime, Utc};

use super::figure::{at_least, at_most, state, unread};
use crate::config::{PostureObjectives, SupabasePostureSpec};
use crate::report::posture::{Figure, Status};
use crate::supabase::{BackupStatus, Backups, Call, Client};

pub(super) async fn read(spec: &SupabasePostureSpec, o: &PostureObjectives, now: DateTime<Utc>) -> Vec<Figure> {
    let answer = match Client::new(&spec.api_url, &spec.token_env) {
        Ok(c) => c.send::<Backups>(Call::ListBackups(&spec.project_ref), None).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(b) => figures(&b, o, now),
        Err(e) => {
            let why = match e.hint() {
                Some(h) => format!("GET /v1/projects/{}/database/backups: {e} (hint: {h})", spec.project_ref),
                None => format!("GET /v1/projects/{}/database/backups: {e}", spec.project_ref),
            };
            vec![unread("backups", None, why)]
        }
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The figures of one answer, as of `now`.
pub(super) fn figures(b: &Backups, o: &PostureObjectives, now: DateTime<Utc>) -> Vec<Figure> {
    let age = |t: DateTime<Utc>| (now - t).num_milliseconds() as f64 / 1000.0;
    let pitr_on = b.pitr_enabled && b.walg_enabled;
    let mut f = vec![state(
        "pitr",
        if pitr_on { "enabled" } else { "off" },
        "pitr_enabled and walg_enabled",
        pitr_on,
        Some(format!("pitr_enabled {}, walg_enabled {}", b.pitr_enabled, b.walg_enabled)),
    )];
    let newest_completed = b
        .backups
        .iter()
        .filter(|x| x.status == BackupStatus::Completed)
        .filter_map(|x| x.inserted().map(|t| (x, t)))
        .max_by_key(|(_, t)| *t);
    match newest_completed {
        Some((_, t)) => f.push(at_most(
            "backup-age",
            age(t),
            Some(o.max_backup_age),
            Some(format!("newest COMPLETED backup inserted {}", when(t))),
        )),
        None => f.push(Figure {
            name: "backup-age".into(),
            value: "none".into(),
            number: None,
            objective: Some(format!("≤ {}", humantime::format_duration(o.max_backup_age))),
            status: Status::NotMet,
            detail: Some("no COMPLETED backup in the answer".into()),
        }),
    }
    if let Some((newest, t)) = b.newest() {
        let ok = newest.status == BackupStatus::Completed;
        f.push(state(
            "newest-backup",
            newest.status.as_str(),
            "COMPLETED",
            ok,
            Some(format!("the newest backup, inserted {}", when(t))),
        ));
    }
    match b.physical_backup_data.window() {
        Some((earliest, latest)) => {
            f.push(at_most(
                "pitr-lag",
                age(latest),
                o.max_pitr_lag,
                Some(format!("the PITR window's latest point is {}", when(latest))),
            ));
            f.push(at_least(
                "retention",
                age(earliest),
                o.min_retention,
                Some(format!("the PITR window's earliest point is {}", when(earliest))),
            ));
        }
        None if o.max_pitr_lag.is_some() => f.push(Figure {
            name: "pitr-lag".into(),
            value: "no window".into(),
            number: None,
            objective: o.max_pitr_lag.map(|m| format!("≤ {}", humantime::format_duration(m))),
            status: Status::NotMet,
            detail: Some("physical_backup_data gives no PITR window".into()),
        }),
        None => {}
    }
    f.push(Figure {
        name: "region".into(),
        value: b.region.clone(),
        number: None,
        objective: None,
        status: Status::Observed,
        detail: None,
    });
    f.push(Figure {
        name: "encryption".into(),
        value: "not applicable".into(),
        number: None,
        objective: None,
        status: Status::NotApplicable,
        detail: Some("the Management API does not report backup encryption".into()),
    });
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objectives() -> PostureObjectives {
        PostureObjectives {
            max_backup_age: std::time::Duration::from_secs(26 * 3600),
            max_pitr_lag: Some(std::time::Duration::from_secs(600)),
            min_retention: None,
            max_wal_backlog: None,
            encryption: None,
        }
    }

    fn answer(pitr: bool, latest_lag: i64, now: DateTime<Utc>) -> Backups {
        let body = serde_json::json!({
            "region": "ap-southeast-1", "walg_enabled": pitr, "pitr_enabled": pitr,
            "backups": [{ "id": 1, "is_physical_backup": true, "status": "COMPLETED",
                          "inserted_at": when(now - chrono::Duration::hours(3)) }],
            "physical_backup_data": if pitr { serde_json::json!({
                "earliest_physical_backup_date_unix": (now - chrono::Duration::days(7)).timestamp(),
                "latest_physical_backup_date_unix": (now - chrono::Duration::seconds(latest_lag)).timestamp() }) }
                else { serde_json::json!({}) },
        });
        serde_json::from_value(body).unwrap()
    }

    /// PITR off fails on `pitr`; a latest point 20 minutes old fails a 10-minute objective on `pitr-lag`.
    #[test]
    fn pitr_off_and_a_20_minute_lag_fail_naming_the_figure() {
        let now = Utc::now();
        let ok = figures(&answer(true, 60, now), &objectives(), now);
        assert_eq!(crate::report::posture::Outcome::of(&ok), crate::report::posture::Outcome::Met, "{ok:#?}");
        let off = figures(&answer(false, 0, now), &objectives(), now);
        let pitr = off.iter().find(|f| f.name == "pitr").unwrap();
        assert_eq!((pitr.status, pitr.value.as_str()), (Status::NotMet, "off"));
        let lagging = figures(&answer(true, 20 * 60, now), &objectives(), now);
        let lag = lagging.iter().find(|f| f.name == "pitr-lag").unwrap();
        assert_eq!(lag.status, Status::NotMet, "{lag:?}");
        assert_eq!(lag.value, "20m 00s");
    }
}
