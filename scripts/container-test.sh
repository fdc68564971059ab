#!/usr/bin/env bash
# make container-test: builds the image and runs the compose stack for real (PostgreSQL, the
# daemon, two workers) on synthetic prices, then checks what a user of the stack relies on.
# Uses docker + `docker compose` when a Docker engine answers, podman + podman-compose otherwise
# (../shared/tools/container-env sets those up here). Every failed check stops it with a line
# saying what failed and the containers' last log lines; containers, volumes and the image it
# built are removed on the way out, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT="forecaster-ct-$$"
IMAGE="localhost/forecaster-container-test:$$"
TICKERS=200         # enough claims (CLAIM_SIZE each) that a cycle outlasts the polling below
CLAIM_SIZE=2
MAX_IMAGE_MB=800
WORK=$(mktemp -d)

if docker info >/dev/null 2>&1; then
  ENGINE=docker
  COMPOSE=(docker compose)
  BUILD_ARGS=()
elif command -v podman >/dev/null && command -v podman-compose >/dev/null; then
  ENGINE=podman
  COMPOSE=(podman-compose)
  # --format docker keeps the HEALTHCHECK, --network=host reaches the package index.
  read -ra BUILD_ARGS < <(cat /etc/containers/forecaster-build-args 2>/dev/null || echo --format docker)
  BUILD_ARGS+=(--layers=false)  # no intermediate images left behind
else
  echo "container-test: no Docker engine answers and podman + podman-compose are missing" \
    "(as root: ../shared/tools/container-env)" >&2
  exit 2
fi

# The stack under test: the repository's docker-compose.yml with the image built here.
cat > "$WORK/override.yml" <<YAML
services:
  daemon:
    image: $IMAGE
  worker:
    image: $IMAGE
YAML
compose() { "${COMPOSE[@]}" -p "$PROJECT" -f docker-compose.yml -f "$WORK/override.yml" "$@"; }

# The environment compose interpolates (what a user's .env holds). The password has characters
# a URL would need quoted.
export POSTGRES_PASSWORD='p@ss:w/rd #1 $x%'
export FORECASTER_SOURCE=synthetic:7
FORECASTER_TICKERS=$(seq -f 'T%03g' 1 "$TICKERS" | paste -sd, -)
export FORECASTER_TICKERS
export FORECASTER_CLAIM_SIZE=$CLAIM_SIZE

step() { printf '\ncontainer-test: %s\n' "$*"; }
containers() {  # the ids of the containers of service $1
  "$ENGINE" ps -a -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1"
}
container() {  # the first of them
  containers "$1" | head -n1
}
sql() { "$ENGINE" exec "$(container postgres)" psql -U forecaster -d forecaster -tAq -c "$1"; }
fail() {
  echo "container-test: FAILED: $*" >&2
  for service in daemon worker; do
    for id in $(containers "$service"); do
      echo "--- last log lines of $service ($id) ---" >&2
      "$ENGINE" logs --tail 25 "$id" >&2 2>&1 || true
    done
  done
  exit 1
}
wait_until() {  # wait_until SECONDS WHAT COMMAND...: polls COMMAND every second
  local limit=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "waited ${limit} s for $what"
    sleep 1
  done
}
cleanup() {
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  # What `down` left (podman-compose keeps a volume still in use while its container stops).
  "$ENGINE" ps -a -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r "$ENGINE" rm -f >/dev/null 2>&1 || true
  "$ENGINE" volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r "$ENGINE" volume rm -f >/dev/null 2>&1 || true
  "$ENGINE" rmi -f "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

latest_session() {
  sql "SELECT max(as_of) FROM predictions"
}
forecasts_of_latest() {
  sql "SELECT count(*) FROM predictions WHERE as_of = (SELECT max(as_of) FROM predictions)"
}
has_forecasts() {
  [ "$(sql "SELECT count(*) FROM predictions")" -gt 0 ]
}
day_complete() {
  [ "$(forecasts_of_latest)" = "$TICKERS" ] && [ "$(sql "SELECT count(*) FROM runs WHERE status = 'running'")" = 0 ]
}
claims_trained() {  # how many claims container $1 trained, by its log
  "$ENGINE" logs "$1" 2>&1 | grep -c 'claim of [0-9]* ticker(s) of the cycle after .* done' || true
}
every_worker_trained() {
  local ids
  ids=$(containers worker)
  [ "$(wc -w <<<"$ids")" = 2 ] || return 1
  for id in $ids; do [ "$(claims_trained "$id")" -gt 0 ] || return 1; done
}
healthy() {  # the container's HEALTHCHECK passes now
  if [ "$ENGINE" = podman ]; then
    podman healthcheck run "$1"
  else
    [ "$(docker inspect --format '{{.State.Health.Status}}' "$1")" = healthy ]
  fi
}

step "building the image with $ENGINE"
started=$SECONDS
"$ENGINE" build "${BUILD_ARGS[@]}" -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; fail "the image does not build"; }
size_mb=$(( $("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE") / 1000000 ))
echo "built in $((SECONDS - started)) s: $size_mb MB"
[ "$size_mb" -le "$MAX_IMAGE_MB" ] || fail "the image is $size_mb MB, over $MAX_IMAGE_MB MB"
# Imports what the daemon runs (numba's compiler included) and looks for torch.
torch=$("$ENGINE" run --rm "$IMAGE" python -c 'import importlib.util, forecaster.cycle, numba
print(importlib.util.find_spec("torch") is not None)' 2>"$WORK/run.log") || { cat "$WORK/run.log" >&2; fail "the package does not import in the image"; }
[ "$torch" = False ] || fail "the image holds torch"
echo "the package imports; no torch in the image"

step "PostgreSQL and the daemon; SIGTERM while it forecasts the first day ($TICKERS tickers, claims of $CLAIM_SIZE)"
compose up -d daemon >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up daemon"; }
wait_until 300 "the daemon's first forecast" has_forecasts
daemon=$(container daemon)
"$ENGINE" stop --time 60 "$daemon" >/dev/null
exit_code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$daemon")
[ "$exit_code" = 0 ] || fail "the daemon exited $exit_code on SIGTERM"
partial=$(forecasts_of_latest)
echo "the daemon exited 0 on SIGTERM with $partial of $TICKERS forecasts of $(latest_session) written"
[ "$partial" -lt "$TICKERS" ] || fail "the first day was complete before SIGTERM: nothing left for the restart to prove"

step "two workers while the daemon is down: one takes the scheduler lock, both train claims"
compose up -d --scale worker=2 worker >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up worker"; }
wait_until 300 "both workers to train claims of the unfinished day" every_worker_trained
step "the daemon again: the stack completes the day"
compose up -d daemon >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "compose up daemon (restart)"; }
wait_until 600 "forecasts of all $TICKERS tickers" day_complete
echo "$(forecasts_of_latest) forecasts of $(latest_session), one per ticker:" \
  "$(sql "SELECT count(*) - count(DISTINCT (ticker, preset, target_session)) FROM predictions") duplicates"
[ "$(sql "SELECT count(*) FROM predictions WHERE lower_80 IS NULL OR upper_95 IS NULL")" = 0 ] \
  || fail "forecasts without their prediction intervals"
for id in $(containers worker); do echo "worker $id: $(claims_trained "$id") claims trained"; done
echo "daemon $(container daemon): $(claims_trained "$(container daemon)") claims trained, before and after its restart"

step "health checks"
wait_until 180 "the daemon's health check (forecaster status)" healthy "$(container daemon)"
echo "daemon: healthy"
for id in $(containers worker); do
  wait_until 120 "worker $id's health check (forecaster status --process)" healthy "$id"
  echo "worker $id: healthy"
done

step "metrics: every forecaster container serves /metrics on 9108; one holds the scheduler lock"
scrape() {  # the /metrics text of container $1, fetched inside it
  "$ENGINE" exec "$1" python -c 'import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:9108/metrics", timeout=10).read().decode())'
}
holders=0
for id in $(containers daemon) $(containers worker); do
  metrics=$(scrape "$id") || fail "no /metrics in container $id"
  grep -q '^forecaster_database_up 1.0$' <<<"$metrics" || fail "$id: forecaster_database_up is not 1"
  grep -q '^forecaster_last_success_timestamp_seconds{calendar="XNYS"} ' <<<"$metrics" \
    || fail "$id: no forecaster_last_success_timestamp_seconds for XNYS"
  grep -q '^forecaster_overdue{calendar="XNYS"} 0.0$' <<<"$metrics" || fail "$id: XNYS overdue"
  if grep -q '^forecaster_scheduler_lock_held 1.0$' <<<"$metrics"; then holders=$((holders + 1)); fi
done
[ "$holders" = 1 ] || fail "$holders containers say they hold the scheduler lock, not 1"
echo "scraped $(containers daemon | wc -l) daemon and $(containers worker | wc -l) worker containers; one scheduler"

step "commands in the stack: predictions and report"
compose run --rm daemon forecaster predictions --latest >"$WORK/predictions.txt" 2>"$WORK/run.log" \
  || { cat "$WORK/run.log" >&2; fail "compose run daemon forecaster predictions"; }
grep -q "T001" "$WORK/predictions.txt" || fail "forecaster predictions shows no T001: $(head -n 5 "$WORK/predictions.txt")"
echo "forecaster predictions: $(wc -l <"$WORK/predictions.txt") lines"
compose run --rm daemon forecaster report --format md,html >"$WORK/report.txt" 2>"$WORK/run.log" \
  || { cat "$WORK/run.log" >&2; fail "compose run daemon forecaster report"; }
reports=$("$ENGINE" exec "$(container daemon)" ls /reports)
echo "the reports volume holds: $(echo "$reports" | tr '\n' ' ')"
echo "$reports" | grep -q '\.md$' && echo "$reports" | grep -q '\.html$' || fail "no markdown and HTML report in /reports"

step "a backfill in the stack: refused while the scheduler runs, done once the services are stopped"
latest=$(latest_session)
backfill=(forecaster backfill --start "$(date -d "$latest - 7 days" +%F)" --end "$(date -d "$latest - 3 days" +%F)")
set +e
compose run --rm daemon "${backfill[@]}" >"$WORK/backfill.log" 2>&1
exit_code=$?
set -e
[ "$exit_code" = 2 ] || { cat "$WORK/backfill.log" >&2; fail "a backfill beside the running scheduler exited $exit_code, not 2"; }
echo "refused beside the scheduler (exit 2): $(grep -v 'level=' "$WORK/backfill.log" | tail -n 1)"

step "SIGTERM stops every forecaster container with exit 0"
for service in worker daemon; do
  for id in $(containers "$service"); do
    "$ENGINE" stop --time 60 "$id" >/dev/null
    exit_code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$id")
    [ "$exit_code" = 0 ] || fail "$service $id exited $exit_code on SIGTERM"
  done
done
echo "all stopped with exit 0"
compose run --rm daemon "${backfill[@]}" >"$WORK/backfill.log" 2>&1 \
  || { cat "$WORK/backfill.log" >&2; fail "${backfill[*]} with the services stopped"; }
summary=$(grep '^backfill' "$WORK/backfill.log")
echo "$summary"
sessions=$(sed -E 's/.*: ([0-9]+) sessions.*/\1/' <<<"$summary")
backfilled=$(sql "SELECT count(*) FROM predictions WHERE as_of < '$latest'")
[ "$backfilled" = $((sessions * TICKERS)) ] || fail "the backfill of $sessions sessions left $backfilled forecasts, not $((sessions * TICKERS))"

printf '\ncontainer-test: passed in %d s (image %d MB)\n' "$SECONDS" "$size_mb"
