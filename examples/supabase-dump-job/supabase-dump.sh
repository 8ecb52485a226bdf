#!/usr/bin/env bash
# The company's own daily logical backup of the Supabase project (Supabase takes no downloadable daily backup
# once PITR or physical backups are on). Run by the schedule in schedule.json as an ECS task whose role is
# iam-policy.json. It dumps through the session pooler (IPv4) over verify-full TLS as the read-only
# `drill_reader`, uploads the dump encrypted with the backup KMS key (SSE-KMS), and writes the sidecar that
# dates it — `<file>.json`: {"taken_at": "<RFC 3339, when pg_dump's snapshot was taken>", "sha256": "<hex>"} —
# which drills/supabase-dump.yaml reads. The password comes from the environment (the task's secret), never argv.
set -euo pipefail

: "${SUPABASE_DRILL_PGPASSWORD:?the drill_reader password (from the task secret)}"
PROJECT_REF="${PROJECT_REF:-abcdefghijklmnopqrst}"
BUCKET_PREFIX="${BUCKET_PREFIX:-s3://acme-supabase-backups/daily}"
KMS_KEY="${KMS_KEY:-alias/acme-supabase-backups}"
CA="${CA:-/etc/stackdrill/supabase-prod-ca-2021.crt}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
taken_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"   # just before pg_dump takes its snapshot
name="supabase-${PROJECT_REF}-$(date -u -d "$taken_at" +%Y-%m-%dT%H-%M-%S).dump"

PGPASSWORD="$SUPABASE_DRILL_PGPASSWORD" PGSSLMODE=verify-full PGSSLROOTCERT="$CA" \
  pg_dump --format=custom --no-owner --no-privileges --verbose \
  --host aws-0-ap-southeast-1.pooler.supabase.com --port 5432 \
  --username "drill_reader.${PROJECT_REF}" --dbname postgres \
  --file "$work/$name"

sha="$(sha256sum "$work/$name" | cut -d' ' -f1)"
printf '{"taken_at": "%s", "sha256": "%s"}\n' "$taken_at" "$sha" > "$work/$name.json"

aws s3 cp "$work/$name" "$BUCKET_PREFIX/$name" --sse aws:kms --sse-kms-key-id "$KMS_KEY" --only-show-errors
# The sidecar last: a dump without one is not taken by the drill as dated.
aws s3 cp "$work/$name.json" "$BUCKET_PREFIX/$name.json" --sse aws:kms --sse-kms-key-id "$KMS_KEY" --only-show-errors
echo "uploaded $BUCKET_PREFIX/$name ($sha, taken at $taken_at)"
