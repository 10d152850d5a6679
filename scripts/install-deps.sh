#!/usr/bin/env bash
# Install what the test suite and the benchmark need; safe to run again.
#
# Debian packages (interop peers -- sipp, baresip, tshark, kamailio, tftp-hpa --,
# the PostgreSQL server, and chromium for the web UI's browser tests, which
# Playwright drives by executable_path: it never downloads a browser): installed only
# when one is missing, and only as root; `apt-get update` only then too.
# Python: the package in editable mode with its test, fuzz and bench extras.
# Not root and a peer missing: a note is printed, and the interop tests skip
# with a reason -- except under CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package -> a command (or file) proving it is installed
declare -A PROBE=(
  [sip-tester]=sipp
  [baresip-core]=baresip
  [tshark]=tshark
  [postgresql]=/usr/lib/postgresql
  [kamailio]=kamailio
  [tftp-hpa]=tftp
  [chromium]=chromium
)

missing=()
for pkg in "${!PROBE[@]}"; do
  probe=${PROBE[$pkg]}
  if [[ $probe == /* ]]; then
    [[ -e $probe ]] || missing+=("$pkg")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # tshark asks whether non-root users may capture; answer no, non-interactively
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
    apt-get install -y -qq sip-tester baresip-core tshark postgresql kamailio tftp-hpa chromium
  else
    echo "install-deps: NOTE: missing ${missing[*]} and not root (or no apt-get):" >&2
    echo "install-deps: interop/PostgreSQL tests will skip (they fail under CI=true)." >&2
  fi
else
  echo "install-deps: Debian packages present"
fi

PY=${PYTHON:-python3}
need_pip=0
# offhook must import from this checkout (editable install) and the console
# script must exist; every tool the test command uses must import.
"$PY" -c 'import offhook, pathlib, sys
sys.exit(0 if pathlib.Path(offhook.__file__).resolve().is_relative_to(pathlib.Path("src").resolve()) else 1)' \
  2>/dev/null || need_pip=1
command -v offhook >/dev/null 2>&1 || need_pip=1
for mod in pytest pytest_timeout xdist hypothesis mypy ruff importlinter yaml atheris sippy sipvicious numpy soundfile \
  fastapi uvicorn argon2 multipart prometheus_client httpx playwright schemathesis; do
  "$PY" -c "import $mod" 2>/dev/null || need_pip=1
done
if ((need_pip)); then
  echo "install-deps: pip install -e .[test,fuzz,bench]"
  "$PY" -m pip install -q -e '.[test,fuzz,bench]'
else
  echo "install-deps: Python package and extras present"
fi
