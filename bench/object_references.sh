#!/usr/bin/env bash
# bench/object_references.sh — ROWS rows (default 100,000) of a restored table against ROWS objects in a
# versioned bucket in moto (the real SDK against the emulator):
#   (a) stackdrill `object-references`, as of the target (ListObjectVersions) and as of now
#       (ListObjectsV2), sizes for every row; its time from the drill report's check record, its S3
#       requests from moto's request log
#   (b) the naive loop: one HeadObject per row (boto3, sequential), comparing the size
# Prints each time, the requests per 1,000 objects and the ratio.
#
#   ROWS=100000 bench/object_references.sh
set -euo pipefail
ROWS=${ROWS:-100000}
work=${WORK:-/tmp/sd-bench-objects}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bash "$root/scripts/moto-venv" >/dev/null
py=$root/.venv/bin/python

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
moto_port=$(port)
"$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; [ -n "${KEEP:-}" ] || cleanup' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=ap-southeast-1 AWS_DEFAULT_REGION=ap-southeast-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$moto_port") 2>/dev/null && break; sleep 0.1; done

echo "setting up: demo source, a $ROWS-row table and $ROWS objects in a versioned bucket..."
"$sd" -q demo --keep --dir "$work/demo" --reports "$work/reports" >/dev/null
dport=$(sed -n 's/^ *port: *//p' "$work/demo/local-demo.yaml" | head -1)
src() { as_pg "$pgbin/psql" -v ON_ERROR_STOP=1 -h "$work/demo/source" -p "$dport" -U postgres -d app -XAtq "$@"; }
src -c "create table blobs (id bigint primary key, storage_key text not null, size_bytes bigint not null)" \
    -c "insert into blobs select g, 'blobs/' || lpad(g::text, 8, '0') || '.bin', 10 + g % 90 from generate_series(1, $ROWS) g" \
    -c "grant select on blobs to app" -c "vacuum analyze blobs"
"$py" - "$ROWS" <<'PY'
import boto3, concurrent.futures, sys
rows = int(sys.argv[1])
s3 = boto3.client("s3")
s3.create_bucket(Bucket="bench-files", CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"})
s3.put_bucket_versioning(Bucket="bench-files", VersioningConfiguration={"Status": "Enabled"})
def put(g):
    s3.put_object(Bucket="bench-files", Key=f"blobs/{g:08d}.bin", Body=b"x" * (10 + g % 90))
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    list(pool.map(put, range(1, rows + 1)))
PY
src -c "select pg_switch_wal()" >/dev/null
sleep 3

drill() {
  cat > "$work/objects-$1.yaml" <<YAML
name: bench-objects-$1
restore:
  local-postgres: { base-backups: $work/demo/base-backups, wal-archive: $work/demo/wal-archive, scratch-root: $work/scratch, database: app }
target: latest
objectives: { rto: 1h, rpo: 24h }
timeouts: { check: 1h }
verify:
  - object-references: { table: blobs, key-column: storage_key, size-column: size_bytes, s3: { bucket: bench-files, prefix: blobs/, as-of: $1 } }
YAML
}

# A drill restores the table and runs the check; the report gives the check's own time and detail, moto's
# log the S3 requests it made.
sd_check() {
  drill "$1"
  local before after
  before=$(grep -c '"GET /bench-files' "$work/moto.log" || true)
  "$sd" -q drill run "$work/objects-$1.yaml" --reports "$work/reports" >/dev/null || true
  after=$(grep -c '"GET /bench-files' "$work/moto.log" || true)
  python3 - "$work/reports" "$1" "$((after - before))" <<'PY'
import glob, json, sys
r = json.load(open(sorted(glob.glob(sys.argv[1] + f"/*bench-objects-{sys.argv[2]}*.json"))[-1]))
c = r["checks"][0]
print(f"{c['seconds']:.2f} {sys.argv[3]} {c['status']} {c['detail']}")
PY
}

naive() {
  "$py" - "$ROWS" <<'PY'
import boto3, sys, time
rows = int(sys.argv[1])
s3 = boto3.client("s3")
t0 = time.time(); bad = 0
for g in range(1, rows + 1):
    h = s3.head_object(Bucket="bench-files", Key=f"blobs/{g:08d}.bin")
    bad += h["ContentLength"] != 10 + g % 90
print(f"{time.time() - t0:.2f} {rows} {'passed' if bad == 0 else 'failed'}")
PY
}

read -r t_target r_target s_target d_target < <(sd_check target)
read -r t_now r_now s_now d_now < <(sd_check now)
read -r t_naive r_naive s_naive < <(naive)
echo
echo "object-references, $ROWS rows against $ROWS objects (sizes for every row):"
printf "  %-44s %8ss  %6s S3 requests (%s per 1,000 objects)  %s\n" \
  "stackdrill, as of the target (ListObjectVersions)" "$t_target" "$r_target" \
  "$(python3 -c "print(round($r_target * 1000 / $ROWS, 2))")" "$s_target"
printf "  %-44s %8ss  %6s S3 requests (%s per 1,000 objects)  %s\n" \
  "stackdrill, as of now (ListObjectsV2)" "$t_now" "$r_now" "$(python3 -c "print(round($r_now * 1000 / $ROWS, 2))")" "$s_now"
printf "  %-44s %8ss  %6s S3 requests (%s per 1,000 objects)  %s\n" \
  "naive: one HeadObject per row (boto3)" "$t_naive" "$r_naive" "1000" "$s_naive"
python3 -c "print(f'  ratio naive / stackdrill: {$t_naive / $t_target:.1f}x (as of the target), {$t_naive / $t_now:.1f}x (as of now)')"
echo "  detail (as of the target): $d_target"
