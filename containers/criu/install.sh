#!/usr/bin/env bash
# CRIU for snapstart.mode: criu, in a directory of its own (nothing installed on the system).
#
# Debian 12's criu (3.17.1) cannot start on kernels >= 6.13 (they split the vDSO's
# vvar area: "vdso: Unexpected rt vDSO area bounds"), and Debian 13's (4.1.1) cannot
# dump a TCP socket on kernels >= 6.16 (SO_PASSCRED is refused on inet sockets:
# "sockets: Can't get 1:16 opt: Operation not supported"). Debian unstable's criu
# (4.2.x) handles both. This fetches it and the libraries it links with from Debian
# unstable with apt-get, into a private apt state, and unpacks them under DEST; the
# criu there runs with its own dynamic loader, so the system's libc is untouched.
#
# Usage: containers/criu/install.sh [DEST]   (default $ENIRACE_CRIU_HOME or /var/cache/enirace/criu)
# Skipped when the system's criu is recent enough (>= 4.2) or DEST already has one.
set -euo pipefail
dest="${1:-${ENIRACE_CRIU_HOME:-/var/cache/enirace/criu}}"

have_version() {  # criu --version prints "Version: X.Y[.Z]"
  local v
  v="$("$@" --version 2>/dev/null | sed -n 's/^Version: *//p')" || return 1
  [ -n "$v" ] && [ "$(printf '%s\n4.2\n' "$v" | sort -V | head -1)" = "4.2" ]
}
if command -v criu >/dev/null && have_version criu; then exit 0; fi
if [ -x "$dest/criu" ] && have_version "$dest/criu"; then exit 0; fi

work="$(mktemp -d /var/tmp/enirace-criu-apt.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" \
  > "$work/sources.list"
# The system's apt.conf.d still applies (proxies, the archive's date checks) but not its
# hooks: an update's Post-Invoke-Success runs appstreamcli refresh, PackageKit's cache
# signal, command-not-found's database, which would index this private sid state into
# the system's caches. APT_CONFIG (ours, after the caller's) is read before the parts;
# the main file, read last, clears the hooks.
{
  [ -n "${APT_CONFIG:-}" ] && [ -f "$APT_CONFIG" ] && echo "#include \"$APT_CONFIG\";"
  echo "Dir::Etc::main \"$work/main.conf\";"
} > "$work/apt.conf"
{
  [ -f /etc/apt/apt.conf ] && echo '#include "/etc/apt/apt.conf";'
  for hook in APT::Update::Pre-Invoke APT::Update::Post-Invoke APT::Update::Post-Invoke-Success \
              DPkg::Pre-Invoke DPkg::Post-Invoke DPkg::Pre-Install-Pkgs DPkg::Post-Install-Pkgs; do
    echo "#clear $hook;"
  done
} > "$work/main.conf"
export APT_CONFIG="$work/apt.conf"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
          -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
echo "fetching criu from Debian unstable into $dest"
apt-get "${apt_opts[@]}" update -qq
# criu and everything it needs down to libc: the dependency closure, in unstable's versions.
mapfile -t pkgs < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends criu libc6 \
  | grep -v '^ ' | grep -v '^<' | sort -u)
# Only shared libraries are wanted; tools such as python3 or iptables that criu may
# call come from the system.
keep=()
for p in "${pkgs[@]}"; do
  case "$p" in criu|libcompel*|lib*|zlib1g) keep+=("$p") ;; esac
done
(cd "$work/debs" && apt-get "${apt_opts[@]}" download -qq "${keep[@]}")
rm -rf "$dest.new" && mkdir -p "$dest.new/root"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$dest.new/root"; done
cat > "$dest.new/criu" <<'SH'
#!/bin/sh
# Debian unstable's criu with its own loader and libraries (containers/criu/install.sh).
here="$(dirname "$(readlink -f "$0")")/root"
exec "$here/usr/lib64/ld-linux-x86-64.so.2" --library-path "$here/usr/lib/x86_64-linux-gnu" \
  "$here/usr/sbin/criu" "$@"
SH
chmod 0755 "$dest.new/criu"
have_version "$dest.new/criu" || { echo "error: the fetched criu does not run; see $dest.new" >&2; exit 1; }
rm -rf "$dest" && mv "$dest.new" "$dest"
"$dest/criu" --version | head -1
