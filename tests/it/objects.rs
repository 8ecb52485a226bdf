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

/// The demo drill restoring to `target` plus the files bucket to the same instant (`also-restore`), checked
/// with `objects` and with `object-references` between the restored database and the restored bucket.
fn both_drill(demo: &Demo, target: &str, bucket: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&demo.drill).unwrap();
    let head =
        text.split("\nverify:\n").next().unwrap().replace("target: latest", &format!("target: {{ at: \"{target}\" }}"));
    let tail = text.split("\nrunbook:").nth(1).unwrap();
    let body = format!(
        "{head}\nalso-restore:\n  - aws-s3-bucket: {{ name: files, bucket: {bucket}, prefix: docs/, parallel: 8 }}\n\
         verify:\n  - objects: {{ sample: 40, seed: 5 }}\n  - object-references:\n      table: files\n      \
         key-column: path\n      size-column: bytes\n      checksum-column: sha256\n      where: \"id <= 300\"\n      \
         sample: 50\n      seed: 11\n      restored: files\nrunbook:{tail}"
    )
    .replace("name: local-demo", &format!("name: both-{bucket}"));
    let path = demo.dir.join(format!("both-{bucket}.yaml"));
    std::fs::write(&path, body).unwrap();
    path
}

/// The buckets whose names start with `sd-`.
fn scratch_buckets(moto: &super::moto::Moto) -> Vec<String> {
    let out = moto.python_direct(
        "import boto3\nprint(' '.join(b['Name'] for b in boto3.client('s3').list_buckets()['Buckets'] if b['Name'].startswith('sd-')))",
    );
    out.split_whitespace().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_restored_beside_the_database_holds_the_instant_and_no_scratch_bucket_outlives_it() {
    let demo = Demo::start();
    let moto = super::moto::Moto::start();
    let objects = demo.dir.join("objects");
    moto.python_direct(&format!(
        "import boto3, pathlib\n\
         s3 = boto3.client('s3')\n\
         for b in ['files-prod', 'files-plain']:\n\
         \x20   s3.create_bucket(Bucket=b, CreateBucketConfiguration={{'LocationConstraint': 'ap-southeast-1'}})\n\
         s3.put_bucket_versioning(Bucket='files-prod', VersioningConfiguration={{'Status': 'Enabled'}})\n\
         for i in range(1, 301):\n\
         \x20   k = f'docs/{{i}}.pdf'\n\
         \x20   s3.put_object(Bucket='files-prod', Key=k, Body=pathlib.Path('{}', k).read_bytes())\n\
         s3.put_object(Bucket='files-prod', Key='other/outside-the-prefix', Body=b'x')",
        objects.display()
    ));
    let admin = demo.admin("app").await;
    admin
        .batch_execute("create table wal_marker (at timestamptz); insert into wal_marker values (now())")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let target = scalar(&admin, "select to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // After T: one object rewritten, one resized, one deleted, one new; the database archived past T.
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
    let run = |path: &std::path::Path, crash: Option<&str>| {
        let mut cmd = stackdrill();
        moto.env(&mut cmd);
        cmd.env("STACKDRILL_STATE_DIR", demo.state());
        if let Some(point) = crash {
            cmd.env("STACKDRILL_CRASHPOINT", point);
        }
        cmd.args(["drill", "run"]).arg(path).arg("--reports").arg(&demo.reports).output().unwrap()
    };

    // Both stores come back to T: the bucket as the source listed it then, every row's object in it.
    let path = both_drill(&demo, &target, "files-prod");
    let out = run(&path, None);
    let r = demo.last_report();
    assert!(out.status.success(), "{}\n{}\n{r:#}", text(&out.stdout), text(&out.stderr));
    let summary = text(&out.stdout) + &text(&out.stderr);
    assert!(summary.contains("also restored: files passed, 300 objects in "), "{summary}");
    let also = &r["also_restored"][0];
    assert_eq!((also["name"].as_str(), also["status"].as_str()), (Some("files"), Some("passed")), "{also:#}");
    assert_eq!(also["source"], "s3://files-prod/docs/");
    assert_eq!(also["from"], "versions");
    assert_eq!(also["objects"], 300, "objects written after T absent, deleted after T present: {also:#}");
    assert_eq!(also["restored_to"], r["target"]["time"], "one instant for both stores");
    assert!(also["scratch"].as_str().unwrap().starts_with("ap-southeast-1/sd-both-files-prod-"), "{also:#}");
    assert!(also["rto_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(also["teardown"]["status"], "done", "{also:#}");
    assert!(also["window"]["earliest"].is_string() && also["window"]["latest"].is_string(), "{also:#}");
    let objects_check = &r["checks"][0];
    assert_eq!(objects_check["status"], "passed", "{objects_check}");
    let detail = objects_check["detail"].as_str().unwrap();
    assert!(detail.starts_with("300 objects ("), "{detail}");
    assert!(detail.contains("against 300 restored: every key with its size and ETag"), "{detail}");
    assert!(detail.contains("SHA-256 of 40 sampled objects read from both (seed 5)"), "{detail}");
    let refs = &r["checks"][1];
    assert_eq!(refs["status"], "passed", "{refs}");
    assert!(
        refs["detail"].as_str().unwrap().starts_with(
            "300 rows against 300 objects in the restored bucket; checksums of 50 sampled rows (seed 11): every object is there with its size"
        ),
        "{refs}"
    );
    assert!(scratch_buckets(&moto).is_empty(), "scratch bucket left: {:?}", scratch_buckets(&moto));

    // `drill plan` names the bucket restore a run would make, and makes nothing.
    let mut cmd = stackdrill();
    moto.env(&mut cmd);
    let out = cmd
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "plan", "--output", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let plans: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plans[0]["verdict"], "ready", "{plans:#}");
    let item = plans[0]["items"].as_array().unwrap().iter().find(|i| i["topic"] == "also-restore").cloned().unwrap();
    let what = item["what"].as_str().unwrap();
    assert!(what.starts_with("`files`: s3://files-prod/docs/ from its versions (window "), "{what}");
    assert!(what.contains("into `ap-southeast-1/sd-both-files-prod-") && what.ends_with("(SSE-S3)"), "{what}");
    assert!(scratch_buckets(&moto).is_empty());

    // The bucket alone, restored to T: no database, the ready phase skipped, the objects check on it, RPO 0
    // (every key's version current at T), the scratch bucket gone.
    let alone = demo.dir.join("bucket-alone.yaml");
    std::fs::write(
        &alone,
        format!(
            "name: bucket-alone\nrestore:\n  aws-s3-bucket: {{ bucket: files-prod, prefix: docs/ }}\n\
             target: {{ at: \"{target}\" }}\nobjectives: {{ rto: 10m, rpo: 1m }}\nverify:\n  - objects: {{ sample: 10, seed: 2 }}\n"
        ),
    )
    .unwrap();
    let out = run(&alone, None);
    let r = demo.last_report();
    assert!(out.status.success(), "{}\n{}\n{r:#}", text(&out.stdout), text(&out.stderr));
    assert_eq!(r["source"]["provider"], "aws-s3-bucket");
    assert_eq!(r["source"]["details"]["objects"], "300", "{r:#}");
    assert_eq!(r["measured"]["rpo_seconds"], 0.0, "{r:#}");
    assert_eq!(r["measured"]["rpo_met"], true);
    assert!(r["measured"]["rto_seconds"].as_f64().unwrap() > 0.0);
    let phase =
        |name: &str| r["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["status"].clone();
    assert_eq!(
        (phase("restore"), phase("ready"), phase("verify")),
        ("passed".into(), "skipped".into(), "passed".into())
    );
    assert_eq!(r["checks"][0]["status"], "passed", "{r:#}");
    assert!(r["checks"][0]["detail"].as_str().unwrap().starts_with("300 objects ("), "{r:#}");
    assert_eq!(r["teardown"]["status"], "done", "{r:#}");
    assert!(scratch_buckets(&moto).is_empty());
    let mut cmd = stackdrill();
    moto.env(&mut cmd);
    let out = cmd
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "plan", "--output", "json"])
        .arg(&alone)
        .output()
        .unwrap();
    let plans: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plans[0]["verdict"], "ready", "{plans:#}");
    let scratch =
        plans[0]["items"].as_array().unwrap().iter().find(|i| i["topic"] == "scratch").unwrap()["what"].clone();
    assert!(scratch.as_str().unwrap().starts_with("bucket sd-bucket-alone-"), "{plans:#}");
    assert!(scratch_buckets(&moto).is_empty());

    // A bucket that keeps no versions cannot be read as of T: refused before anything is created.
    let out = run(&both_drill(&demo, &target, "files-plain"), None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("bucket `files-plain` does not keep versions"), "{}", text(&out.stderr));
    assert!(scratch_buckets(&moto).is_empty());

    // Killed with the scratch bucket made: it is private, encrypted, expiring and tagged; cleanup keeps it
    // until its expiry, then empties and deletes it; an untagged lookalike is never touched.
    let out = run(&path, Some("also-restore:copying"));
    assert_eq!(out.status.code(), None, "not killed: {}", text(&out.stderr));
    let left = scratch_buckets(&moto);
    assert_eq!(left.len(), 1, "{left:?}");
    let probe = moto.python_direct(&format!(
        "import boto3\n\
         s3 = boto3.client('s3')\n\
         b = '{}'\n\
         s3.put_object(Bucket=b, Key='docs/partial', Body=b'x')\n\
         pab = s3.get_public_access_block(Bucket=b)['PublicAccessBlockConfiguration']\n\
         enc = s3.get_bucket_encryption(Bucket=b)['ServerSideEncryptionConfiguration']['Rules'][0]\n\
         life = s3.get_bucket_lifecycle_configuration(Bucket=b)['Rules'][0]\n\
         tags = {{t['Key']: t['Value'] for t in s3.get_bucket_tagging(Bucket=b)['TagSet']}}\n\
         print(all(pab.values()), enc['ApplyServerSideEncryptionByDefault']['SSEAlgorithm'], \
         life['Expiration']['Days'] >= 1, sorted(tags))\n\
         s3.create_bucket(Bucket='sd-both-files-prod-lookalike', CreateBucketConfiguration={{'LocationConstraint': 'ap-southeast-1'}})",
        left[0]
    ));
    assert_eq!(
        probe,
        "True AES256 True ['stackdrill:drill', 'stackdrill:expires-at', 'stackdrill:managed', 'stackdrill:run', 'stackdrill:scratch']"
    );
    let cleanup = || {
        let mut cmd = stackdrill();
        moto.env(&mut cmd);
        cmd.env("STACKDRILL_STATE_DIR", demo.state());
        let out = cmd.args(["drill", "cleanup", "--output", "json"]).arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let swept = cleanup();
    let action = |swept: &serde_json::Value, name: &str| {
        swept
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["resource"].as_str().unwrap().ends_with(name))
            .map(|s| s["action"].as_str().unwrap().to_string())
    };
    assert!(action(&swept, &left[0]).unwrap().starts_with("kept"), "{swept:#}");
    assert!(action(&swept, "sd-both-files-prod-lookalike").unwrap().starts_with("refused"), "{swept:#}");
    moto.python_direct(&format!(
        "import boto3\n\
         s3 = boto3.client('s3')\n\
         tags = s3.get_bucket_tagging(Bucket='{0}')['TagSet']\n\
         tags = [t if t['Key'] != 'stackdrill:expires-at' else {{'Key': t['Key'], 'Value': '2026-01-01T00:00:00Z'}} for t in tags]\n\
         s3.put_bucket_tagging(Bucket='{0}', Tagging={{'TagSet': tags}})",
        left[0]
    ));
    let swept = cleanup();
    assert_eq!(action(&swept, &left[0]).as_deref(), Some("removed"), "{swept:#}");
    assert_eq!(scratch_buckets(&moto), vec!["sd-both-files-prod-lookalike".to_string()]);
    // The source bucket is untouched: every version still there.
    let versions = moto.python_direct(
        "import boto3\nr = boto3.client('s3').list_object_versions(Bucket='files-prod')\nprint(len(r['Versions']), len(r.get('DeleteMarkers', [])))",
    );
    assert_eq!(versions, "304 1");
    demo.assert_no_scratch_left();
}
