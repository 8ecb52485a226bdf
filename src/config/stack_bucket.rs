//! `buckets` of a stack file: S3 buckets the stack manages (the files bucket), as written and resolved.

use serde::Deserialize;

use super::error::Problems;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBucket {
    name: String,
    kms_key: Option<String>,
    versioning: Option<bool>,
    block_public_access: Option<bool>,
    noncurrent_retention_days: Option<i32>,
    access_logs: Option<RawAccessLogs>,
    backup: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAccessLogs {
    bucket: String,
    prefix: Option<String>,
}

/// One bucket: how it keeps, encrypts, exposes and logs its objects, and whether AWS Backup selects it.
#[derive(Debug, Clone)]
pub(crate) struct BucketSpec {
    pub(crate) name: String,
    /// Key role for SSE-KMS; SSE-S3 when absent (policy requires a key).
    pub(crate) key: Option<String>,
    pub(crate) versioning: bool,
    pub(crate) block_public_access: bool,
    /// Noncurrent versions expire this many days after they stop being current; kept forever when absent.
    pub(crate) noncurrent_retention_days: Option<i32>,
    /// Server access logs go to (bucket, prefix).
    pub(crate) access_logs: Option<(String, String)>,
    /// Carries the backup selection's tag.
    pub(crate) backup: bool,
}

/// `buckets`: each resolved, names unique and valid, keys known.
pub(super) fn buckets(
    p: &mut Problems<'_>,
    raw: Vec<RawBucket>,
    key_ref: &dyn Fn(&mut Problems<'_>, &str, &str),
) -> Vec<BucketSpec> {
    let mut out: Vec<BucketSpec> = Vec::new();
    for (i, b) in raw.into_iter().enumerate() {
        let k = format!("buckets[{i}]");
        let RawBucket {
            name,
            kms_key,
            versioning,
            block_public_access,
            noncurrent_retention_days,
            access_logs,
            backup,
        } = b;
        if !super::bucket::is_bucket_name(&name) {
            p.push(format!("{k}.name"), format!("`{name}` is not a bucket name (3-63 of a-z, 0-9, `-`, `.`)"));
        }
        if out.iter().any(|o| o.name == name) {
            p.push(format!("{k}.name"), format!("bucket `{name}` is declared twice"));
        }
        if let Some(role) = &kms_key {
            key_ref(p, &format!("{k}.kms-key"), role);
        }
        if let Some(d) = noncurrent_retention_days
            && d < 1
        {
            p.push(format!("{k}.noncurrent-retention-days"), "must be at least 1 (or absent: kept forever)");
        }
        let access_logs = access_logs.map(|RawAccessLogs { bucket, prefix }| {
            if !super::bucket::is_bucket_name(&bucket) {
                p.push(format!("{k}.access-logs.bucket"), format!("`{bucket}` is not a bucket name"));
            }
            if bucket == name {
                p.push(
                    format!("{k}.access-logs.bucket"),
                    "a bucket cannot log its own access (each log would be logged)",
                );
            }
            (bucket, prefix.unwrap_or_else(|| format!("{name}/")))
        });
        out.push(BucketSpec {
            name,
            key: kms_key,
            versioning: versioning.unwrap_or(true),
            block_public_access: block_public_access.unwrap_or(true),
            noncurrent_retention_days,
            access_logs,
            backup: backup.unwrap_or(true),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_problem_of_a_stack_bucket_is_named_with_its_line() {
        let text = "name: s\nregion: ap-southeast-1\nresidency: [ap-southeast-1]\nnetwork: { vpc: vpc-1, subnets: [subnet-1] }\n\
                    kms:\n  keys:\n    data: {}\nbuckets:\n  - { name: Bad_Name, kms-key: files }\n  \
                    - { name: logs-x, noncurrent-retention-days: 0, access-logs: { bucket: logs-x } }\n  - { name: logs-x }\n";
        let errs = super::super::stack::parse_stack(text, std::path::Path::new("s.yaml")).err().unwrap_or_default();
        let p: Vec<String> = errs
            .iter()
            .map(|e| format!("{}:{} {}: {}", e.line.unwrap_or(0), e.column.unwrap_or(0), e.key, e.message))
            .collect();
        for want in [
            "buckets[0].name: `Bad_Name` is not a bucket name",
            "buckets[0].kms-key: no KMS key `files` under kms.keys",
            "buckets[1].noncurrent-retention-days: must be at least 1",
            "buckets[1].access-logs.bucket: a bucket cannot log its own access",
            "buckets[2].name: bucket `logs-x` is declared twice",
        ] {
            assert!(p.iter().any(|e| e.contains(want)), "`{want}` not in {p:#?}");
        }
        assert!(p.iter().all(|e| !e.starts_with("0:0")), "every problem has a line: {p:#?}");
    }
}
