//! `backups check`: reads each store of `backups.yaml`, measures it against its objectives, appends one
//! signed, chained `stackdrill.backup-posture/v1` record to the report store, and prints what it found.
//! Exit 0 every store met, 1 a store did not, 2 a store could not be read (or the record not written).

use std::sync::Arc;

use anyhow::anyhow;

use super::args::BackupsCheckArgs;
use super::{Failure, exit_codes};
use crate::report::posture::{Outcome, Record};
use crate::report::{ReportStore, Signer};
use crate::ui::Printer;

pub(super) async fn check(
    a: BackupsCheckArgs,
    signer: Option<Arc<Signer>>,
    aws: &crate::aws::AwsSettings,
    printer: Printer,
) -> Result<u8, Failure> {
    let spec = crate::config::load_backups(&a.file).map_err(|errs| {
        for e in &errs {
            crate::ui::diag!("error: {e}");
        }
        Failure::could_not_run(
            anyhow!(
                "{} in `{}`; nothing was checked",
                crate::config::count(errs.len() as u64, "problem", "problems"),
                a.file.display()
            ),
            None,
        )
    })?;
    if let Some(unknown) = a.stores.iter().find(|n| !spec.stores.iter().any(|s| &s.name == *n)) {
        let names: Vec<&str> = spec.stores.iter().map(|s| s.name.as_str()).collect();
        return Err(Failure::could_not_run(
            anyhow!("--store `{unknown}`: `{}` declares no such store", a.file.display()),
            Some(format!("its stores: {}", names.join(", "))),
        ));
    }
    let now = chrono::Utc::now();
    let stores = crate::posture::check(&spec, &a.stores, now, aws).await;
    let mut record = Record::new(stores, now);
    let reports = super::settings::reports(a.report.reports.as_deref());
    let store = ReportStore::new(&reports, a.report.retain);
    let written = store.write_posture(&mut record, signer.as_deref(), aws).await;
    crate::ui::posture::print(&record, written.as_ref().ok().map(String::as_str), printer);
    if let Some(ns) = &a.cloudwatch_namespace
        && let Err(e) = crate::posture::metrics::publish(aws, ns, &record).await
    {
        crate::ui::diag!("warning: the posture metrics were not published to CloudWatch: {e}");
    }
    if let Some(path) = &a.metrics_file {
        let source = super::metrics::Source {
            reports,
            retain: a.report.retain,
            aws: aws.clone(),
            files: super::drill::yaml_files("drills").unwrap_or_default(),
            heartbeat: Default::default(),
            served: Default::default(),
        };
        source.write(path).await;
    }
    if let Err(e) = written {
        return Err(Failure::could_not_run(
            anyhow!("{e}"),
            Some("the posture above is not evidence until its record is written; fix the store and run again".into()),
        ));
    }
    Ok(match record.result {
        Outcome::Met => exit_codes::OK,
        Outcome::NotMet => exit_codes::NOT_VERIFIED,
        Outcome::CouldNotRead => exit_codes::COULD_NOT_RUN,
    })
}
