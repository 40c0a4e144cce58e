#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine, as root:
#   ./setup.sh demo    install what is missing, then run the demo
#   ./setup.sh test    install what is missing, then run the whole test suite
# Anything after the verb goes to the nox session (e.g. ./setup.sh test -- -k late).
set -euo pipefail
cd "$(dirname "$0")"

verb="${1:-}"
case "$verb" in
  demo|test|bench|lint) shift ;;
  *) echo "usage: ./setup.sh demo|test|bench|lint [-- args for the session]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "error: ./setup.sh needs root (it installs packages and builds network namespaces); run: sudo ./setup.sh $verb" >&2
  exit 2
fi

# Debian packages the harness and its tests use. Only missing ones are installed.
packages=(iproute2 curl ca-certificates
          # blackhole and netem faults use iptables inside the vpc namespace
          iptables
          # C# compiler for the .NET samples (they run on the .NET 8 runtime from PyPI)
          mono-mcs libmono-system-net-http4.0-cil
          # the docker backend: an engine, and debootstrap for the offline base image
          docker.io debootstrap
          # the capture tests read the trial's pcap back with tshark
          tshark)
# Node.js functions: node and npm, and what AWS's aws-lambda-ric builds its native addon
# with (cmake, autotools, a C++ compiler; enirace installs the client itself, once, into
# ~/.cache/enirace/node/). A node from elsewhere (nodesource, nvm) stands in for Debian's.
packages+=(cmake autoconf automake libtool g++ make)
command -v node >/dev/null || packages+=(nodejs libnode-dev)  # libnode-dev: headers for node-gyp
command -v npm >/dev/null || packages+=(npm)
# A Python from elsewhere (pyenv, a CI image) may stand in for Debian's python3.
if ! { command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; }; then
  packages+=(python3 python3-venv python3-pip)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # wireshark-common asks whether non-root users may capture; the answer is no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# snapstart.mode: criu needs a CRIU that works on this kernel; Debian 12's does not on
# kernels >= 6.13. This fetches Debian unstable's into /var/cache/enirace/criu (its own
# loader and libraries; nothing on the system changes), unless a recent one is there.
containers/criu/install.sh || echo "warning: could not fetch CRIU; snapstart.mode: criu and its tests will not run" >&2

# The docker backend's tests and demo rows need a running engine. Ask the socket
# directly: a newer docker CLI on PATH may not match Debian's engine.
engine_up() { curl -sf --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; }
if ! engine_up; then
  echo "starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do engine_up && break; sleep 1; done
  engine_up || { echo "error: dockerd did not start; see /var/log/dockerd.log" >&2; exit 2; }
fi

python3 - <<'PY' || { echo "error: enirace needs Python >= 3.11 (python3 is older); install python3.11 or newer" >&2; exit 2; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# nox lives in its own small venv; each nox session builds the project's venv.
if [ ! -x .tools/bin/nox ]; then
  python3 -m venv .tools
  .tools/bin/pip install -q --disable-pip-version-check nox
fi

case "$verb" in
  demo) exec .tools/bin/nox -s demo "$@" ;;
  test) exec .tools/bin/nox -s tests "$@" ;;
  bench) exec .tools/bin/nox -s bench "$@" ;;
  lint) exec .tools/bin/nox -s lint typecheck "$@" ;;
esac
