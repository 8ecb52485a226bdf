//! `also-restore` (an S3 bucket restored to the drill's instant beside its database) and the `objects`
//! check comparing it with the source bucket, as written and resolved.

use std::time::Duration;

use serde::Deserialize;

use super::drill_spec::{BucketRestoreSpec, BucketSource, CheckSpec, ObjectStoreSpec, ObjectsSpec, RestoreSpec};
use super::error::Problems;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) enum RawAlsoRestore {
    AwsS3Bucket(RawS3Bucket),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawS3Bucket {
    name: Option<String>,
    bucket: String,
    prefix: Option<String>,
    from: Option<String>,
    vault: Option<String>,
    recovery_point_arn: Option<String>,
    iam_role_arn: Option<String>,
    region: Option<String>,
    residency: Option<Vec<String>>,
    parallel: Option<usize>,
    kms_key: Option<String>,
    expires_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawObjects {
    restore: Option<String>,
    sample: Option<usize>,
    seed: Option<u64>,
}

/// A drill restoring a bucket alone has no database: no `source` to compare with, and only `objects` checks.
pub(super) fn bucket_only(p: &mut Problems<'_>, restore: &RestoreSpec, has_source: bool, checks: &[CheckSpec]) {
    if !matches!(restore, RestoreSpec::AwsS3Bucket(_)) {
        return;
    }
    if has_source {
        p.push("source", "a bucket restore reads no database: remove `source`");
    }
    for (i, c) in checks.iter().enumerate() {
        if !matches!(c, CheckSpec::Objects(_)) {
            p.push(
                format!("verify[{i}].{}", c.kind()),
                "checks a restored database, and a bucket restore has none: use `objects` (or restore the database \
                 and put the bucket under `also-restore`)",
            );
        }
    }
    if checks.is_empty() {
        p.push("restore.aws-s3-bucket", "a bucket restore needs an `objects` check under `verify` to prove anything");
    }
}

/// A bucket name S3 accepts: 3-63 of a-z, 0-9, `-` and `.`, starting and ending with a letter or digit.
pub(crate) fn is_bucket_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !s.contains("..")
}

/// The `also-restore` list: each entry resolved, names unique.
pub(super) fn also_restore(p: &mut Problems<'_>, raw: Vec<RawAlsoRestore>) -> Vec<BucketRestoreSpec> {
    let mut out: Vec<BucketRestoreSpec> = Vec::new();
    for (i, RawAlsoRestore::AwsS3Bucket(b)) in raw.into_iter().enumerate() {
        let spec = s3_bucket(p, &format!("also-restore[{i}].aws-s3-bucket"), b);
        if out.iter().any(|o| o.name == spec.name) {
            p.push(
                format!("also-restore[{i}].aws-s3-bucket.name"),
                format!("another also-restore is already named `{}`: give each a `name`", spec.name),
            );
        }
        out.push(spec);
    }
    out
}

pub(super) fn s3_bucket(p: &mut Problems<'_>, k: &str, raw: RawS3Bucket) -> BucketRestoreSpec {
    let RawS3Bucket {
        name,
        bucket,
        prefix,
        from,
        vault,
        recovery_point_arn,
        iam_role_arn,
        region,
        residency,
        parallel,
        kms_key,
        expires_after,
    } = raw;
    if !is_bucket_name(&bucket) {
        p.push(format!("{k}.bucket"), format!("`{bucket}` is not a bucket name"));
    }
    let from = match (from.as_deref(), iam_role_arn) {
        (None | Some("versions"), role) => {
            if vault.is_some() || recovery_point_arn.is_some() || role.is_some() {
                p.push(
                    format!("{k}.from"),
                    "`vault`, `recovery-point-arn` and `iam-role-arn` go with `from: aws-backup`",
                );
            }
            BucketSource::Versions
        }
        (Some("aws-backup"), Some(role)) => {
            if !role.starts_with("arn:aws") || !role.contains(":role/") {
                p.push(format!("{k}.iam-role-arn"), format!("`{role}` is not an IAM role ARN"));
            }
            if let Some(arn) = &recovery_point_arn
                && !(arn.starts_with("arn:aws") && arn.contains(":recovery-point:"))
            {
                p.push(format!("{k}.recovery-point-arn"), format!("`{arn}` is not an AWS Backup recovery point ARN"));
            }
            BucketSource::AwsBackup { vault, recovery_point: recovery_point_arn, iam_role_arn: role }
        }
        (Some("aws-backup"), None) => {
            p.push(format!("{k}.from"), "`from: aws-backup` needs `iam-role-arn`: the role AWS Backup restores with");
            BucketSource::Versions
        }
        (Some(other), _) => {
            p.push(format!("{k}.from"), format!("unknown source `{other}`: use `versions` or `aws-backup`"));
            BucketSource::Versions
        }
    };
    let residency = super::aws_restore::residency_of(p, k, region.as_deref(), residency);
    let parallel = parallel.unwrap_or(16);
    if !(1..=256).contains(&parallel) {
        p.push(format!("{k}.parallel"), "must be between 1 and 256");
    }
    let expires_after = match expires_after.map(|t| super::duration::parse_duration(&t)) {
        None => Duration::from_secs(24 * 3600),
        Some(Ok(d)) if d >= Duration::from_secs(3600) => d,
        Some(Ok(_)) => {
            p.push(format!("{k}.expires-after"), "must be at least 1h (the scratch bucket's lifecycle counts days)");
            Duration::from_secs(24 * 3600)
        }
        Some(Err(e)) => {
            p.push(format!("{k}.expires-after"), e);
            Duration::from_secs(24 * 3600)
        }
    };
    let prefix = prefix.unwrap_or_default();
    if prefix.starts_with('/') {
        p.push(format!("{k}.prefix"), "S3 keys do not start with `/`");
    }
    BucketRestoreSpec {
        name: name.unwrap_or_else(|| bucket.clone()),
        bucket,
        prefix,
        from,
        region,
        residency,
        parallel,
        kms_key,
        expires_after,
    }
}

/// `verify[i].objects`: which restored bucket (the only one when unnamed).
pub(super) fn objects_check(p: &mut Problems<'_>, i: usize, raw: RawObjects) -> ObjectsSpec {
    let sample = raw.sample.unwrap_or(20);
    if sample > 10_000 {
        p.push(format!("verify[{i}].objects.sample"), "at most 10000 objects are read in full");
    }
    ObjectsSpec { restore: raw.restore.unwrap_or_default(), sample, seed: raw.seed }
}

/// Every check naming a restored bucket names one the drill restores; an unnamed `objects` takes the only one.
pub(super) fn link_checks(
    p: &mut Problems<'_>,
    restore: &RestoreSpec,
    also: &[BucketRestoreSpec],
    checks: &mut [CheckSpec],
) {
    let names: Vec<&str> = restore.buckets(also).map(|b| b.name.as_str()).collect();
    let known = || {
        if names.is_empty() {
            "there is no `also-restore`".to_string()
        } else {
            format!("`also-restore` has {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
        }
    };
    for (i, c) in checks.iter_mut().enumerate() {
        let (key, name) = match c {
            CheckSpec::Objects(o) => {
                if o.restore.is_empty() {
                    match names.as_slice() {
                        [only] => o.restore = only.to_string(),
                        _ => {
                            p.push(
                                format!("verify[{i}].objects"),
                                format!("needs `restore: NAME`, the restored bucket to compare ({})", known()),
                            );
                            continue;
                        }
                    }
                }
                (format!("verify[{i}].objects.restore"), o.restore.clone())
            }
            CheckSpec::ObjectRefs(o) => match &o.store {
                ObjectStoreSpec::Restored(n) => (format!("verify[{i}].object-references.restored"), n.clone()),
                _ => continue,
            },
            _ => continue,
        };
        if !names.contains(&name.as_str()) {
            p.push(key, format!("names no restored bucket `{name}`: {}", known()));
        }
    }
}

#[cfg(test)]
mod tests {
    const HEAD: &str = "name: x\nrestore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                        objectives: { rto: 1h, rpo: 5m }\n";

    fn problems(body: &str) -> Vec<String> {
        super::super::drill::problem_lines(&format!("{HEAD}{body}"))
    }

    #[test]
    fn every_problem_of_a_bucket_restore_and_its_checks_is_named_with_its_line() {
        let p = problems(
            "also-restore:\n  - aws-s3-bucket: { bucket: Files_Prod, from: aws-backup, region: us-east-1, parallel: 0 }\n  \
             - aws-s3-bucket: { name: a, bucket: files, from: tape }\n  - aws-s3-bucket: { name: a, bucket: files, vault: v }\n\
             verify:\n  - objects: {}\n  - objects: { restore: nope }\n  - object-references: { table: files, key-column: k, restored: gone }\n",
        );
        for want in [
            "also-restore[0].aws-s3-bucket.bucket: `Files_Prod` is not a bucket name",
            "also-restore[0].aws-s3-bucket.from: `from: aws-backup` needs `iam-role-arn`",
            "also-restore[0].aws-s3-bucket.region: `us-east-1` is outside the allowed residency ap-southeast-1",
            "also-restore[0].aws-s3-bucket.parallel: must be between 1 and 256",
            "also-restore[1].aws-s3-bucket.from: unknown source `tape`",
            "also-restore[2].aws-s3-bucket.from: `vault`, `recovery-point-arn` and `iam-role-arn` go with `from: aws-backup`",
            "also-restore[2].aws-s3-bucket.name: another also-restore is already named `a`",
            "verify[0].objects: needs `restore: NAME`",
            "verify[1].objects.restore: names no restored bucket `nope`",
            "verify[2].object-references.restored: names no restored bucket `gone`",
        ] {
            assert!(p.iter().any(|e| e.contains(want)), "`{want}` not in {p:#?}");
        }
        assert!(p.iter().all(|e| !e.starts_with("0:0")), "every problem has a line: {p:#?}");
        let p = problems("verify:\n  - objects: {}\n");
        assert!(p.iter().any(|e| e.contains("there is no `also-restore`")), "{p:#?}");
        let ok = "also-restore:\n  - aws-s3-bucket: { bucket: files-prod, prefix: docs/ }\nverify:\n  - objects: {}\n  \
                  - object-references: { table: files, key-column: k, restored: files-prod }\n";
        assert_eq!(problems(ok), Vec::<String>::new());
    }
}
