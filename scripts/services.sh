#!/usr/bin/env bash
# Start the local PostgreSQL and Redis the at-scale tests use, installing them with apt when missing.
set -uo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

install_missing() {
  local wanted=()
  command -v pg_ctlcluster >/dev/null || wanted+=(postgresql)
  command -v redis-server >/dev/null || wanted+=(redis-server)
  [ ${#wanted[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >/dev/null
  fi
}

pg_up && redis_up && exit 0
install_missing
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
if ! redis_up && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
fi
for _ in $(seq 1 30); do pg_up && redis_up && exit 0; sleep 1; done
echo "PostgreSQL or Redis is not reachable on 127.0.0.1 (5432, 6379)." >&2
exit 1
