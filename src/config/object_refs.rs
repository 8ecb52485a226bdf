//! `verify[i].object-references`: rows of a restored table against an object store (S3, as of the target
//! or now, or a directory), as written and resolved.

use serde::Deserialize;

use super::drill::{check_column, check_table};
use super::drill_spec::{AsOf, ChecksumAlgorithm, ObjectRefsSpec, ObjectStoreSpec};
use super::error::Problems;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawObjectRefs {
    name: Option<String>,
    table: String,
    key_column: String,
    size_column: Option<String>,
    checksum_column: Option<String>,
    checksum_algorithm: Option<String>,
    #[serde(rename = "where")]
    filter: Option<String>,
    prefix: Option<String>,
    sample: Option<usize>,
    seed: Option<u64>,
    orphans: Option<String>,
    s3: Option<RawS3>,
    dir: Option<String>,
    restored: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawS3 {
    bucket: String,
    prefix: Option<String>,
    as_of: Option<String>,
}

/// Resolves `verify[i].object-references`, naming every problem.
pub(super) fn object_refs_check(p: &mut Problems<'_>, i: usize, raw: RawObjectRefs) -> ObjectRefsSpec {
    let k = format!("verify[{i}].object-references");
    check_table(p, &format!("{k}.table"), &raw.table);
    check_column(p, &format!("{k}.key-column"), &raw.key_column);
    for (key, col) in [("size-column", &raw.size_column), ("checksum-column", &raw.checksum_column)] {
        if let Some(c) = col {
            check_column(p, &format!("{k}.{key}"), c);
        }
    }
    let algorithm = match raw.checksum_algorithm.as_deref() {
        None | Some("sha256") => ChecksumAlgorithm::Sha256,
        Some("md5") => ChecksumAlgorithm::Md5,
        Some(other) => {
            p.push(format!("{k}.checksum-algorithm"), format!("unknown algorithm `{other}`: use sha256 or md5"));
            ChecksumAlgorithm::Sha256
        }
    };
    if raw.checksum_algorithm.is_some() && raw.checksum_column.is_none() {
        p.push(format!("{k}.checksum-algorithm"), "needs `checksum-column`: the column holding each object's digest");
    }
    if let Some(w) = &raw.filter
        && (w.contains(';') || w.trim().is_empty())
    {
        p.push(format!("{k}.where"), "must be one SQL condition (no `;`)");
    }
    let orphans_fail = match raw.orphans.as_deref() {
        None | Some("report") => false,
        Some("fail") => true,
        Some(other) => {
            p.push(format!("{k}.orphans"), format!("unknown value `{other}`: use `report` (the default) or `fail`"));
            false
        }
    };
    let given = [raw.s3.is_some(), raw.dir.is_some(), raw.restored.is_some()].iter().filter(|g| **g).count();
    let store = match (raw.s3, raw.dir, raw.restored) {
        _ if given > 1 => {
            p.push(k.clone(), "names more than one of `s3`, `dir` and `restored`: give one object store");
            ObjectStoreSpec::Dir(Default::default())
        }
        (None, None, Some(name)) => ObjectStoreSpec::Restored(name),
        (Some(s3), None, None) => {
            if s3.bucket.is_empty() || s3.bucket.contains('/') {
                p.push(format!("{k}.s3.bucket"), format!("`{}` is not a bucket name", s3.bucket));
            }
            let as_of = match s3.as_of.as_deref() {
                None | Some("target") => AsOf::Target,
                Some("now") => AsOf::Now,
                Some(other) => {
                    p.push(format!("{k}.s3.as-of"), format!("unknown value `{other}`: use `target` or `now`"));
                    AsOf::Target
                }
            };
            ObjectStoreSpec::S3 { bucket: s3.bucket, prefix: s3.prefix, as_of }
        }
        (None, Some(dir), None) => ObjectStoreSpec::Dir(dir.into()),
        _ => {
            p.push(
                k.clone(),
                "needs an object store: `s3: { bucket, prefix, as-of }`, `dir: PATH` or `restored: NAME` (an also-restore)",
            );
            ObjectStoreSpec::Dir(Default::default())
        }
    };
    ObjectRefsSpec {
        name: raw.name,
        table: raw.table,
        key_column: raw.key_column,
        size_column: raw.size_column,
        checksum_column: raw.checksum_column,
        algorithm,
        filter: raw.filter,
        prefix: raw.prefix.unwrap_or_default(),
        sample: raw.sample.unwrap_or(100),
        seed: raw.seed,
        orphans_fail,
        store,
    }
}

#[cfg(test)]
mod tests {
    const HEAD: &str = "name: x\nrestore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                        objectives: { rto: 1h, rpo: 5m }\nverify:\n";

    fn problems(check: &str) -> Vec<String> {
        super::super::drill::problem_lines(&format!("{HEAD}{check}"))
    }

    #[test]
    fn every_problem_of_an_object_references_check_is_named_with_its_line() {
        let p = problems(
            "  - object-references:\n      table: \"Files;\"\n      key-column: key\n      checksum-algorithm: crc\n      \
             orphans: maybe\n      where: \"1=1; drop table files\"\n      s3: { bucket: a/b, as-of: yesterday }\n      dir: /tmp\n",
        );
        for want in [
            "verify[0].object-references.table: `Files;` is not a table name",
            "verify[0].object-references.checksum-algorithm: unknown algorithm `crc`",
            "verify[0].object-references.checksum-algorithm: needs `checksum-column`",
            "verify[0].object-references.orphans: unknown value `maybe`",
            "verify[0].object-references.where: must be one SQL condition",
            "verify[0].object-references: names more than one of `s3`, `dir` and `restored`",
        ] {
            assert!(p.iter().any(|e| e.contains(want)), "`{want}` not in {p:#?}");
        }
        assert!(p.iter().all(|e| !e.starts_with("0:0")), "every problem has a line: {p:#?}");
        let p = problems("  - object-references: { table: files, key-column: k }\n");
        assert!(p.iter().any(|e| e.contains("needs an object store")), "{p:#?}");
        let p = problems("  - object-references: { table: files, key-column: k, s3: { bucket: b, as-of: later } }\n");
        assert!(p.iter().any(|e| e.contains("s3.as-of: unknown value `later`")), "{p:#?}");
        assert!(problems("  - object-references: { table: files, key-column: k, dir: objects }\n").is_empty());
    }
}
