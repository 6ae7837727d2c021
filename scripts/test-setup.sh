#!/usr/bin/env bash
# What the tests need from the machine, set up where it is missing: Debian's chromium (the web-chat
# test drives it through playwright-core; Playwright's own browser download cannot work here), and a
# running PostgreSQL and Redis on 127.0.0.1 (the PostgresStore and Redis coordinator suites).
# Run by `npm test` (pretest) and by .ci/run. Installing needs root and apt; without them it says
# what is missing and the suites concerned report it (a server suite is a loud NOT RUN locally and a
# failure under CI=true; the browser test fails with how to install chromium).
set -uo pipefail
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { apt-get update -qq && apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}
wait_for() { # what, command...: retries for 30 s
  local what="$1"; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "test-setup: $what did not come up" >&2; return 1
}

if ! command -v chromium >/dev/null; then
  if can_install; then apt_install chromium; else echo "test-setup: chromium is missing (apt-get install chromium)" >&2; fi
fi

if ! command -v pg_ctlcluster >/dev/null || ! command -v redis-server >/dev/null; then
  if can_install; then
    apt_install postgresql redis-server
    # A fresh cluster: trust local TCP connections (test traffic only) and make the test database.
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' \
      "/etc/postgresql/$version/main/pg_hba.conf"
    pg_ctlcluster --skip-systemctl-redirect "$version" main restart || true
    wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 && { su postgres -c 'createdb test' || true; }
  else
    echo "test-setup: PostgreSQL or Redis is not installed (apt-get install postgresql redis-server)" >&2
  fi
fi
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
fi
if command -v redis-server >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis sh -c '[ "$(redis-cli -h 127.0.0.1 -p 6379 ping)" = PONG ]'
fi
exit 0
