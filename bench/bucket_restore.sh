#!/usr/bin/env bash
# bench/bucket_restore.sh — an `also-restore` of OBJECTS objects (default 5,000; half of them rewritten after
# the instant, so the listing has two versions of each) from a versioned bucket in moto (the real SDK against
# the emulator), beside the demo database:
#   (a) stackdrill, server-side CopyObject of the version current at the instant, `parallel: 16`
#   (b) the baseline, the same restore one copy at a time (`parallel: 1`)
#   (c) the way a script does it by hand: boto3 downloads each version current at the instant and uploads it
#       into a new bucket, one at a time
# Each stackdrill time is the bucket restore's own RTO from the report (restore start → last object copied),
# with the `objects` check's time beside it. Prints the times and the ratios.
#
#   OBJECTS=5000 bench/bucket_restore.sh
set -euo pipefail
OBJECTS=${OBJECTS:-5000}
work=${WORK:-/tmp/sd-bench-bucket}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bash "$root/scripts/moto-venv" >/dev/null
py=$root/.venv/bin/python

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
moto_port=$(port)
"$py" "$root/bench/moto_mended.py" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || cleanup' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=ap-southeast-1 AWS_DEFAULT_REGION=ap-southeast-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$moto_port") 2>/dev/null && break; sleep 0.1; done

echo "setting up: demo source and $OBJECTS objects (4 KiB each) in a versioned bucket..."
"$sd" -q demo --keep --dir "$work/demo" --reports "$work/reports" >/dev/null
dport=$(sed -n 's/^ *port: *//p' "$work/demo/local-demo.yaml" | head -1)
src() { as_pg "$pgbin/psql" -v ON_ERROR_STOP=1 -h "$work/demo/source" -p "$dport" -U postgres -d app -XAtq "$@"; }
"$py" - "$OBJECTS" put <<'PY'
import boto3, concurrent.futures, sys
n = int(sys.argv[1])
s3 = boto3.client("s3")
s3.create_bucket(Bucket="bench-files", CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"})
s3.put_bucket_versioning(Bucket="bench-files", VersioningConfiguration={"Status": "Enabled"})
def put(g):
    s3.put_object(Bucket="bench-files", Key=f"docs/{g:08d}.bin", Body=bytes([g % 251]) * 4096)
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    list(pool.map(put, range(n)))
PY
sleep 1.1
instant=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 1.1
# A commit after the instant, archived, so the database's window reaches past it.
src -c "create table bench_mark (at timestamptz)" -c "insert into bench_mark values (now())" -c "select pg_switch_wal()" >/dev/null
"$py" - "$OBJECTS" <<'PY'
import boto3, concurrent.futures, sys
n = int(sys.argv[1])
s3 = boto3.client("s3")
def put(g):
    s3.put_object(Bucket="bench-files", Key=f"docs/{g:08d}.bin", Body=b"after the instant")
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    list(pool.map(put, range(0, n, 2)))
PY
src -c "select pg_switch_wal()" >/dev/null
sleep 3

drill() {
  cat > "$work/bucket-$1.yaml" <<YAML
name: bench-bucket-$1
restore:
  local-postgres: { base-backups: $work/demo/base-backups, wal-archive: $work/demo/wal-archive, scratch-root: $work/scratch, database: app }
also-restore:
  - aws-s3-bucket: { name: files, bucket: bench-files, prefix: docs/, parallel: $1 }
target: { at: "$instant" }
objectives: { rto: 1h, rpo: 24h }
timeouts: { check: 1h, restore: 2h }
verify:
  - objects: { sample: 20, seed: 1 }
YAML
}

# One drill run; prints the bucket's RTO, objects, the objects check's time, status and detail.
sd_restore() {
  drill "$1"
  "$sd" -q drill run "$work/bucket-$1.yaml" --reports "$work/reports" >/dev/null || true
  python3 - "$work/reports" "$1" <<'PY'
import glob, json, sys
r = json.load(open(sorted(glob.glob(sys.argv[1] + f"/*-bench-bucket-{sys.argv[2]}.json"))[-1]))
a, c = r["also_restored"][0], r["checks"][0]
print(f"{a['rto_seconds']:.2f} {a['objects']} {c['seconds']:.2f} {c['status']} {c['detail']}")
PY
}

by_hand() {
  "$py" - "$instant" <<'PY'
import boto3, datetime, sys, time
at = datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00"))
s3 = boto3.client("s3")
t0 = time.time()
s3.create_bucket(Bucket="bench-by-hand", CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"})
current = {}
for page in s3.get_paginator("list_object_versions").paginate(Bucket="bench-files", Prefix="docs/"):
    for v in page.get("Versions", []):
        if v["LastModified"] <= at and (v["Key"] not in current or v["LastModified"] > current[v["Key"]][1]):
            current[v["Key"]] = (v["VersionId"], v["LastModified"])
for key, (version, _) in sorted(current.items()):
    body = s3.get_object(Bucket="bench-files", Key=key, VersionId=version)["Body"].read()
    s3.put_object(Bucket="bench-by-hand", Key=key, Body=body)
print(f"{time.time() - t0:.2f} {len(current)}")
PY
}

read -r t16 n16 c16 s16 d16 < <(sd_restore 16)
read -r t1 n1 c1 s1 _ < <(sd_restore 1)
read -r th nh < <(by_hand)
echo
echo "bucket restore to the instant, $OBJECTS objects of 4 KiB (half rewritten after it):"
printf "  %-58s %8ss  %6s objects  (objects check %ss, %s)\n" "stackdrill, server-side copies, parallel 16" "$t16" "$n16" "$c16" "$s16"
printf "  %-58s %8ss  %6s objects  (objects check %ss, %s)\n" "baseline: stackdrill, parallel 1" "$t1" "$n1" "$c1" "$s1"
printf "  %-58s %8ss  %6s objects\n" "by hand: boto3 download + upload, one at a time" "$th" "$nh"
python3 -c "print(f'  ratio parallel 1 / parallel 16: {$t1 / $t16:.1f}x; by hand / stackdrill: {$th / $t16:.1f}x')"
echo "  objects check (parallel 16): $d16"
