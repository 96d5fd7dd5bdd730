-- Installing: `make install` honours PREFIX/DESTDIR, and `luarocks make`
-- builds and installs the rock offline into a tree whose paths then give
-- a working `require "netlua"`.  Both run on a copy of the source tree so
-- the build under test is never touched.
local H = require "helper"

local function copy_tree()
  local dir = H.tmpdir()
  local out, ok = H.sh(("tar -C %s --exclude=./build --exclude=./build-asan --exclude=./.deps --exclude=./.git -cf - . | tar -C %s -xf -")
    :format(H.shquote(H.root), H.shquote(dir)))
  assert(ok, out)
  return dir
end

describe("installation", function()
  it("make install puts core.so and the Lua files under DESTDIR/PREFIX", function()
    local src = copy_tree()
    local dest = src .. "/dest"
    local out, ok = H.sh(("make -C %s install DESTDIR=%s PREFIX=/opt/nl"):format(H.shquote(src), H.shquote(dest)))
    assert(ok, out)
    assert.is_true(H.exists(dest .. "/opt/nl/lib/lua/5.4/netlua/core.so"))
    for _, m in ipairs {"init", "tcp", "lookup", "multicast", "ftp", "telnet"} do
      assert.is_true(H.exists(dest .. "/opt/nl/share/lua/5.4/netlua/" .. m .. ".lua"), m)
    end
    out = H.sh(("cd / && LUA_PATH=%s LUA_CPATH=%s lua5.4 -e 'print(require(\"netlua\").version)'"):format(
      H.shquote(dest .. "/opt/nl/share/lua/5.4/?.lua;" .. dest .. "/opt/nl/share/lua/5.4/?/init.lua"),
      H.shquote(dest .. "/opt/nl/lib/lua/5.4/?.so")))
    assert.matches("^%d+%.%d+%.%d+", out)
    -- and make uninstall takes it all away again
    out, ok = H.sh(("make -C %s uninstall DESTDIR=%s PREFIX=/opt/nl"):format(H.shquote(src), H.shquote(dest)))
    assert(ok, out)
    out = H.sh("find " .. H.shquote(dest) .. " -type f")
    assert.equal("", out, "left after uninstall")
    assert.is_false(H.exists(dest .. "/opt/nl/lib/lua/5.4/netlua"))
    H.rm_rf(src)
  end)

  it("luarocks make builds and installs the rock offline", function()
    if not H.sh("command -v luarocks"):find("luarocks") then
      pending("luarocks is not installed")
      return
    end
    local src = copy_tree()
    local tree = src .. "/tree"
    local out, ok = H.sh(("cd %s && luarocks --lua-version=5.4 --tree=%s make netlua-scm-1.rockspec"):format(
      H.shquote(src), H.shquote(tree)))
    assert(ok, out)
    out = H.sh(("cd / && eval \"$(luarocks --lua-version=5.4 --tree=%s path)\" && lua5.4 -e " ..
      "'local n = require \"netlua\"; print(n.version, package.searchpath(\"netlua.core\", package.cpath))'")
      :format(H.shquote(tree)))
    assert.matches(tree .. "/lib/lua/5.4/netlua/core.so", out, 1, true)
    H.rm_rf(src)
  end)
end)
