#!/bin/sh
# rock.sh - write build/netlua-scm-1.src.rock: the rockspec plus a source
# archive of what the build and the modules need (csrc, lua, Makefile,
# LICENSE, README.md), never bench/, fuzz/ or spec/.
#
# The rockspec's source.url is the git address the project is to be
# published at; `luarocks pack` of it would clone from there, which needs
# the network and the published tree.  So the archive is made here from
# the local tree and a copy of the rockspec pointing at it is packed.  Installing the .src.rock
# uses the archive inside it.
set -eu
cd "$(dirname "$0")/.."
out=build/rock
rm -rf "$out"
mkdir -p "$out/netlua"
tar -cf - csrc lua Makefile LICENSE README.md netlua-scm-1.rockspec | tar -C "$out/netlua" -xf -
(cd "$out" && tar -czf netlua-scm.tar.gz netlua)
abs=$(cd "$out" && pwd)
sed -e "s|^  url = .*|  url = \"file://$abs/netlua-scm.tar.gz\", dir = \"netlua\",|" \
  netlua-scm-1.rockspec >"$out/netlua-scm-1.rockspec"
(cd "$out" && luarocks --lua-version=5.4 pack netlua-scm-1.rockspec >/dev/null)
mv "$out/netlua-scm-1.src.rock" build/
rm -rf "$out"
echo "build/netlua-scm-1.src.rock"
