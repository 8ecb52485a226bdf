#!/usr/bin/env bash
# `stack plan` against the moto emulator: the production stack (less what moto cannot serve: the Beanstalk
# environment and the backup selection) and a synthetic stack of 500 alarms and 100 metric filters. Each is
# applied once, then planned with nothing to change. Prints the read API calls and wall time of stackdrill's
# plan against the baseline run side by side: a per-resource reader (boto3: one describe and one tag read
# per resource, as a naive tool does) over the same resources on the same emulator.
set -euo pipefail
work=$(cd "$(dirname "$0")" && pwd)/work/stack
mkdir -p "$work"
root=$(cd "$(dirname "$0")/.." && pwd)
sd=${CARGO_TARGET_DIR:-$root/target}/release/stackdrill
(cd "$root" && cargo build --release --quiet)
cd "$root"
bash scripts/moto-venv >/dev/null
RUNS=${RUNS:-3}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# moto's Backup ListTags reads the ARN from the path segment before a trailing slash the current SDK does not
# send; the bench's emulator takes it from the last segment instead; and its S3 GetBucketVersioning answer
# gets the root element AWS sends (the tests mend both in a proxy).
.venv/bin/python - "$port" >"$work/moto.log" 2>&1 <<'PY' &
import sys, time
from urllib.parse import unquote
from moto.backup.responses import BackupResponse
from moto.server import ThreadedMotoServer
import json
def list_tags(self):
    arn = unquote(self.path.rstrip("/").split("/tags/", 1)[1])
    return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=arn)})
BackupResponse.list_tags = list_tags
import moto.s3.responses as s3responses
def get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{status}</Status>" if status else ""
    return 200, {}, ('<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration '
                     f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>')
s3responses.S3Response.get_bucket_versioning = get_bucket_versioning
s = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]))
s.start()
while True:
    time.sleep(3600)
PY
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=ap-southeast-1 AWS_DEFAULT_REGION=ap-southeast-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

.venv/bin/python - "$work" <<'PY'
import re, sys, boto3
work = sys.argv[1]
# The account's log archive, which the files bucket logs to, exists beforehand.
s3 = boto3.client("s3")
s3.create_bucket(Bucket="acme-log-archive", CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"})
s3.put_bucket_policy(Bucket="acme-log-archive", Policy='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                     '"Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject", '
                     '"Resource": "arn:aws:s3:::acme-log-archive/*"}]}')
ec2 = boto3.client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{i}.0/24", AvailabilityZone=f"ap-southeast-1{z}")["Subnet"]["SubnetId"]
           for i, z in enumerate("abc")]
y = open("stacks/production.yaml").read().replace("vpc-0a1b2c3d4e5f60718", vpc)
for i, s in enumerate(subnets):
    y = y.replace(f"subnet-0a1b2c3d4e5f6000{i + 1}", s)
y = y[: y.index("\napp:")]
y = re.sub(r"  selection:\n(    .*\n)+", "", y)
open(f"{work}/production.yaml", "w").write(y)

out = ["name: synthetic", "region: ap-southeast-1", "residency: [ap-southeast-1]",
       f"network: {{ vpc: {vpc}, subnets: [{', '.join(subnets)}] }}",
       "kms:", "  keys:", "    alerts: { description: synthetic alerts }",
       "alerts:", "  topic: { kms-key: alerts }", "  log-groups:"]
out += [f"    - {{ name: /synthetic/g{g}, retention-days: 30 }}" for g in range(10)]
out.append("  metric-filters:")
out += [f"    - {{ name: f{i}, log-group: /synthetic/g{i % 10}, pattern: '{{ $.event = \"e{i}\" }}', "
        f"metric: {{ namespace: Synthetic, name: M{i}, default: 0 }} }}" for i in range(100)]
out.append("  alarms:")
out += [f"    - {{ name: synthetic-a{i}, purpose: other, metric: {{ namespace: Synthetic, name: M{i % 100}, "
        f"statistic: Sum, period: 5m }}, threshold: {i + 1} }}" for i in range(500)]
open(f"{work}/synthetic.yaml", "w").write("\n".join(out) + "\n")
PY

# The baseline: per resource, its describe and its tag read (boto3, same emulator, same resources).
naive() {
  .venv/bin/python - "$1" <<'PY'
import sys, time, boto3, yaml
spec = yaml.safe_load(open(sys.argv[1]))
cw, logs, kms, sns, tag = (boto3.client(s) for s in ("cloudwatch", "logs", "kms", "sns", "resourcegroupstaggingapi"))
calls = 0
t = time.time()
a = spec.get("alerts", {})
for al in a.get("alarms", []):
    r = cw.describe_alarms(AlarmNames=[al["name"]])["MetricAlarms"]
    calls += 1
    if r:
        cw.list_tags_for_resource(ResourceARN=r[0]["AlarmArn"]); calls += 1
for g in a.get("log-groups", []):
    logs.describe_log_groups(logGroupNamePrefix=g["name"]); logs.list_tags_log_group(logGroupName=g["name"]); calls += 2
for f in a.get("metric-filters", []):
    logs.describe_metric_filters(logGroupName=f["log-group"], filterNamePrefix=f["name"]); calls += 1
for role in spec.get("kms", {}).get("keys", {}):
    alias = f"alias/{spec['name']}-{role}"
    k = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    kms.get_key_rotation_status(KeyId=k); kms.list_resource_tags(KeyId=k)
    kms.get_key_policy(KeyId=k, PolicyName="default"); calls += 4
print(f"{calls} {time.time() - t:.3f}")
PY
}

# stackdrill's plan: the read calls it counted and its wall time, best of $RUNS.
measure() {
  local best="" calls="" line t
  for _ in $(seq "$RUNS"); do
    line=$("$sd" stack plan "$1" --detailed-exitcode 2>&1 >/dev/null | grep 'read live state') || true
    calls=$(sed -E 's/.*: ([0-9]+) API calls.*/\1/' <<<"$line")
    t=$(sed -E 's/.* in ([0-9.]+)s.*/\1/' <<<"$line")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$calls $best"
}

printf '%-12s %9s %7s | %10s %8s | %12s %8s | %6s %6s\n' stack resources apply "sd calls" "sd s" "naive calls" "naive s" "calls×" "time×"
for s in production synthetic; do
  file="$work/$s.yaml"
  start=$(date +%s.%N)
  # Waived: the rules the cut backup selection fails (moto has no CreateBackupSelection), and the synthetic
  # stack's (it has no required alarms and unencrypted log groups: it is a load, not a stack to keep).
  "$sd" stack apply "$file" --auto-approve --skip-policy STK-BACKUP-PLAN,STK-BACKUP-SELECTS-DB,STK-S3-BACKUP,STK-ALARMS,STK-LOGS-ENCRYPTED \
    >/dev/null 2>"$work/$s-apply.log"
  apply=$(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $start}")
  resources=$("$sd" stack validate "$file" --output json | jq '.[0].resources | length')
  code=0; "$sd" stack plan "$file" --detailed-exitcode >/dev/null 2>&1 || code=$?
  [ "$code" = 0 ] || { echo "the plan after apply of $s is not empty (exit $code)" >&2; exit 1; }
  read -r sd_calls sd_t < <(measure "$file")
  read -r nv_calls nv_t < <(naive "$file")
  printf '%-12s %9s %6ss | %10s %8s | %12s %8s | %6.1f %6.1f\n' "$s" "$resources" "$apply" "$sd_calls" "$sd_t" "$nv_calls" "$nv_t" \
    "$(awk "BEGIN{print $nv_calls / $sd_calls}")" "$(awk "BEGIN{print $nv_t / $sd_t}")"
done
echo "(naive covers only alarms, log groups, filters and keys; stackdrill's calls cover every resource of the stack)"
