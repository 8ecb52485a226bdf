//! `object-references` against a versioned S3 bucket (moto) and a restored demo database: the objects the
//! rows at T point at, as of T or as of now.

use std::time::Duration;

use super::harness::{Demo, scalar, stackdrill, switch_and_archive, text};

/// The demo drill restoring to `target`, with one check: the first 300 files against the bucket.
fn drill(demo: &Demo, target: &str, as_of: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&demo.drill).unwrap();
    let head =
        text.split("\nverify:\n").next().unwrap().replace("target: latest", &format!("target: {{ at: \"{target}\" }}"));
    let tail = text.split("\nrunbook:").nth(1).unwrap();
    let body = format!(
        "{head}\nverify:\n  - object-references:\n      table: files\n      key-column: path\n      size-column: bytes\n      \
         checksum-column: sha256\n      where: \"id <= 300\"\n      sample: 300\n      seed: 11\n      \
         s3: {{ bucket: files-prod, prefix: docs/, as-of: {as_of} }}\nrunbook:{tail}"
    )
    .replace("name: local-demo", &format!("name: files-{as_of}"));
    let path = demo.dir.join(format!("files-{as_of}.yaml"));
    std::fs::write(&path, body).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_at_t_find_their_objects_as_of_t_and_name_those_deleted_or_changed_since() {
    let demo = Demo::start();
    let moto = super::moto::Moto::start();
    let objects = demo.dir.join("objects");
    // The files of the first 300 rows in a versioned bucket (the demo wrote them to its object directory).
    moto.python_direct(&format!(
        "import boto3, pathlib\n\
         s3 = boto3.client('s3')\n\
         s3.create_bucket(Bucket='files-prod', CreateBucketConfiguration={{'LocationConstraint': 'ap-southeast-1'}})\n\
         s3.put_bucket_versioning(Bucket='files-prod', VersioningConfiguration={{'Status': 'Enabled'}})\n\
         for i in range(1, 301):\n\
         \x20   k = f'docs/{{i}}.pdf'\n\
         \x20   s3.put_object(Bucket='files-prod', Key=k, Body=pathlib.Path('{}', k).read_bytes())",
        objects.display()
    ));
    let admin = demo.admin("app").await;
    // A commit just before T: the restore's RPO is measured from it.
    admin
        .batch_execute("create table wal_marker (at timestamptz); insert into wal_marker values (now())")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let target = scalar(&admin, "select to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // After T: one object overwritten with other bytes of the same size, one resized, one deleted (a delete
    // marker), one new object; the database is archived past T.
    moto.python_direct(
        "import boto3\n\
         s3 = boto3.client('s3')\n\
         body = s3.get_object(Bucket='files-prod', Key='docs/1.pdf')['Body'].read()\n\
         s3.put_object(Bucket='files-prod', Key='docs/1.pdf', Body=bytes([body[0] ^ 1]) + body[1:])\n\
         s3.put_object(Bucket='files-prod', Key='docs/10.pdf', Body=b'resized')\n\
         s3.delete_object(Bucket='files-prod', Key='docs/2.pdf')\n\
         s3.put_object(Bucket='files-prod', Key='docs/new-after-t.pdf', Body=b'new')",
    );
    switch_and_archive(&admin).await;
    let run = |path: &std::path::Path| {
        let mut cmd = stackdrill();
        moto.env(&mut cmd);
        cmd.env("STACKDRILL_STATE_DIR", demo.state());
        let out = cmd.args(["drill", "run"]).arg(path).arg("--reports").arg(&demo.reports).output().unwrap();
        let r = demo.last_report();
        (out, r["checks"][0].clone())
    };

    // As of T: every row's object is the version current then.
    let (out, check) = run(&drill(&demo, &target, "target"));
    assert!(out.status.success(), "{}\n{}\n{check}", text(&out.stdout), text(&out.stderr));
    assert_eq!(check["status"], "passed", "{check}");
    assert!(
        check["detail"].as_str().unwrap().starts_with("300 rows against 300 objects as of the target; checksums of 300 sampled rows (seed 11): every object is there with its size"),
        "{check}"
    );

    // As of now: the deleted, resized and rewritten objects are named, the new one is reported.
    let (out, check) = run(&drill(&demo, &target, "now"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let detail = check["detail"].as_str().unwrap();
    for part in [
        "1 missing object (docs/2.pdf)",
        "1 size mismatch (docs/10.pdf)",
        "2 checksum mismatches (docs/1.pdf",
        "1 object without a row (docs/new-after-t.pdf) (reported, not a failure)",
    ] {
        assert!(detail.contains(part), "`{part}` not in: {detail}");
    }

    // A version a row at T needs, removed for good: failed as of T, the key named.
    moto.python_direct(
        "import boto3\n\
         s3 = boto3.client('s3')\n\
         for v in s3.list_object_versions(Bucket='files-prod', Prefix='docs/3.pdf')['Versions']:\n\
         \x20   if v['Key'] == 'docs/3.pdf':\n\
         \x20       s3.delete_object(Bucket='files-prod', Key='docs/3.pdf', VersionId=v['VersionId'])",
    );
    let (out, check) = run(&drill(&demo, &target, "target"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(check["detail"].as_str().unwrap().contains("1 missing object (docs/3.pdf)"), "{check}");
    demo.assert_no_scratch_left();
}
