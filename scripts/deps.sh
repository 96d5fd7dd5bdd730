#!/bin/sh
# deps.sh WHAT - make sure what `make WHAT` needs is installed.
#
# Installs missing Debian packages with apt-get when run as root; as any
# other user it prints the exact command to run and stops.  busybox's
# telnetd applet is only in busybox-static, which would replace the
# system busybox: we unpack it into .deps/ instead of installing it.
# proftpd and vsftpd conflict as Debian packages (both are the
# ftp-server), and the package would start a daemon on port 21 of every
# interface: proftpd is unpacked into .deps/proftpd too, its libraries
# installed as packages, and the specs run it with their own config.
# openssh-server's package starts sshd on port 22 of every interface
# when it is installed: the install runs with a policy-rc.d that forbids
# every service start (the SSH specs run sshd with their own config).
set -eu
what=${1:-test}
cd "$(dirname "$0")/.."

base="make gcc pkg-config lua5.4 liblua5.4-dev luajit libluajit-5.1-dev libcurl4-openssl-dev luarocks"
# the other Luas test-all runs the suite on
older="lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev"
peers="lua-busted lua-socket vsftpd python3-pyftpdlib inetutils-telnetd socat openssl iproute2 util-linux passwd procps"
# the event loops netlua.loop drives netlua through (spec/loop_*_spec.lua,
# doc/loops.md); lua-copas serves Lua 5.1/5.2 only, its spec waits for that
loops="lua-cqueues lua-luv lua-copas"
# the SSH specs' peers (spec/ssh_helper.lua): sshd and dropbear run in the
# foreground with temporary configs; ssh is the reference client.
# sftp-server (a dependency of openssh-server, named for itself) is also
# spec/sftp_codec_spec.lua's peer, run alone behind socat
ssh="libssh-dev openssh-server openssh-sftp-server dropbear-bin openssh-client"
# bench/ compares netlua's SSH client with these
ssh_bench="python3-paramiko python3-asyncssh"
# what the unpacked proftpd (and its mod_tls) link against
proftpd_libs="libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3 libcap2 libacl1 libidn2-0 libssl3"
case "$what" in
  demo) pkgs="$base $peers $loops $ssh $proftpd_libs" ;;
  test) pkgs="$base $peers $loops $ssh $proftpd_libs" ;;
  test-all) pkgs="$base $older $peers $loops $ssh $proftpd_libs" ;;
  valgrind) pkgs="$base $peers $loops $ssh $proftpd_libs valgrind" ;;
  # lftp: bench/mirror.lua times its mirror against netlua's
  bench) pkgs="$base $peers $ssh $ssh_bench $proftpd_libs lua-socket curl python3 lftp" ;;
  fuzz) pkgs="$base clang libclang-rt-14-dev" ;;
  *) pkgs="$base" ;;
esac

missing=""
for p in $pkgs; do
  s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$s" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done

if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # no package may start a service while we install (see the top); a
    # policy-rc.d already there is someone else's and stays as it is
    policy=/usr/sbin/policy-rc.d ours=""
    if [ ! -e "$policy" ]; then
      ours=1
      # removed again however the install ends
      trap 'rm -f "$policy"' EXIT
      trap 'exit 130' INT
      trap 'exit 143' TERM
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 755 "$policy"
    fi
    # another install may hold apt's locks: wait for it
    lock="-o DPkg::Lock::Timeout=600"
    tries=0 rc=0
    while :; do
      rc=0
      # shellcheck disable=SC2086
      { apt-get $lock update -q >/dev/null || true
        apt-get $lock install -y -q --no-install-recommends $missing >/dev/null; } || rc=$?
      tries=$((tries + 1))
      [ $rc -ne 0 ] && [ $tries -lt 5 ] && sleep 30 && continue
      break
    done
    if [ -n "$ours" ]; then
      rm -f "$policy"
      trap - EXIT INT TERM
    fi
    [ $rc -eq 0 ] || exit $rc
  else
    echo "deps: missing packages; run:"
    echo "  sudo apt-get install -y$missing"
    exit 1
  fi
fi

# busybox telnetd for the Telnet specs and the demo
if [ "$what" != fuzz ] && [ ! -x .deps/busybox ]; then
  if ! command -v apt-get >/dev/null; then
    echo "deps: need apt-get to fetch busybox-static"; exit 1
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download busybox-static >/dev/null 2>&1) || {
    [ "$(id -u)" = 0 ] && apt-get update -q >/dev/null
    (cd "$tmp" && apt-get download busybox-static >/dev/null)
  }
  dpkg -x "$tmp"/busybox-static_*.deb "$tmp/x"
  mkdir -p .deps
  cp "$tmp/x/bin/busybox" .deps/busybox
  rm -rf "$tmp"
fi

# proftpd (and mod_tls) unpacked, never installed: see the top
if [ "$what" != fuzz ] && [ ! -x .deps/proftpd/usr/sbin/proftpd ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download proftpd-core proftpd-mod-crypto >/dev/null 2>&1) || {
    [ "$(id -u)" = 0 ] && apt-get update -q >/dev/null
    (cd "$tmp" && apt-get download proftpd-core proftpd-mod-crypto >/dev/null)
  }
  mkdir -p .deps/proftpd
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" .deps/proftpd; done
  rm -rf "$tmp"
fi
exit 0
