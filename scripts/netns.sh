#!/bin/sh
# netns.sh CMD... - run CMD inside a private network namespace.
#
# The namespace has only its own loopback (multicast on, 224.0.0.0/4
# routed to it) and a veth pair nlva <-> nlvb with ULA IPv6 addresses,
# because IPv6 multicast does not loop on lo.  Nothing sent in here can
# reach the host's interfaces.  NETLUA_NETNS=1 tells specs where they are.
set -eu
if [ "${NETLUA_NETNS:-}" = 1 ]; then exec "$@"; fi
if [ "$(id -u)" = 0 ]; then flags=-n; else flags=-rn; fi
exec unshare $flags -- sh -c '
  set -e
  ip link set lo up
  ip link set lo multicast on
  # src: 127.0.0.1 on lo is host-scoped, so without it unbound senders
  # would send multicast from 0.0.0.0
  ip route add 224.0.0.0/4 dev lo src 127.0.0.1
  ip link add nlva type veth peer name nlvb
  ip link set nlva up
  ip link set nlvb up
  ip link set nlva multicast on
  ip link set nlvb multicast on
  ip -6 addr add fd6e:6c75:6100::1/64 dev nlva nodad
  ip -6 addr add fd6e:6c75:6100::2/64 dev nlvb nodad
  export NETLUA_NETNS=1
  exec "$@"' netns "$@"
