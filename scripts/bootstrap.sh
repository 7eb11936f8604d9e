#!/usr/bin/env bash
# Everything `make demo` and `make test` need on a fresh machine, installed idempotently:
# Debian packages (a JDK and Maven for the local OpenSearch node), the virtualenv at .venv/
# with pang and its test dependencies, and the two server builds (cached in PANG_CACHE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bootstrap: %s\n' "$*" >&2; }

# --- Debian packages ------------------------------------------------------------------
need=()
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
if ! command -v javac >/dev/null || [ "$(java_major)" -lt 17 ] 2>/dev/null; then need+=(openjdk-17-jdk-headless); fi
command -v mvn >/dev/null || need+=(maven)
command -v curl >/dev/null || need+=(curl)
# for the tests: real rotation and real syslog clients
command -v logrotate >/dev/null || need+=(logrotate)
command -v logger >/dev/null || need+=(bsdutils)
command -v openssl >/dev/null || need+=(openssl)
command -v luajit >/dev/null || need+=(luajit)   # runs docker/fluent-bit/ecs.lua in the tests, as Fluent Bit would
command -v chromium >/dev/null || need+=(chromium fonts-liberation) # the dashboards' tests drive Debian's Chromium (Playwright)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)   # a TLS + basic-auth proxy in the tests
for pkg in ${PANG_EXTRA_APT:-}; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    log "please install: ${need[*]} (apt-get install), then run again"; exit 1; fi
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v go >/dev/null; then
  log "Go is needed once to build SeaweedFS (the local S3 server): install Go 1.22+ (go.dev/doc/install) and run again"
  exit 1
fi

# --- Python virtualenv ------------------------------------------------------------------
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { log "Python 3.11+ is needed ($PY is older)"; exit 1; }
[ -x .venv/bin/python ] || { log "creating .venv"; "$PY" -m venv .venv; }
stamp=.venv/.pang-installed
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing pang and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

# --- server builds (cached per version in PANG_CACHE_DIR, default ~/.cache/pang) -----------
.venv/bin/pang stack build
