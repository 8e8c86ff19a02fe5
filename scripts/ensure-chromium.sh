#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (Playwright must never download one).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "Browser tests need Debian's chromium: run 'sudo apt-get install -y chromium' (they are skipped without it)." >&2
  exit 0
fi
echo "Installing Debian's chromium for the browser tests (about a minute)..."
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
