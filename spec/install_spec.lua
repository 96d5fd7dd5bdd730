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
    for _, m in ipairs {"init", "tcp", "lookup", "multicast", "ftp", "telnet", "drive", "loop",
        "loop_cqueues", "loop_luv", "loop_copas"} do
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

  it("make rock writes a source rock that installs into a clean tree and removes cleanly", function()
    if not H.sh("command -v luarocks"):find("luarocks") then
      pending("luarocks is not installed")
      return
    end
    local src = copy_tree()
    local out, ok = H.sh(("make -C %s rock"):format(H.shquote(src)))
    assert(ok, out)
    local rock = src .. "/build/netlua-scm-1.src.rock"
    assert.is_true(H.exists(rock))
    -- only what the build and the modules need
    local list = H.sh("unzip -p " .. H.shquote(rock) .. " netlua-scm.tar.gz | tar -tzf -")
    assert.matches("netlua/csrc/ftp.c", list, 1, true)
    assert.matches("netlua/lua/netlua/ftp.lua", list, 1, true)
    assert.matches("netlua/LICENSE", list, 1, true)
    for _, gone in ipairs {"spec/", "bench/", "fuzz/", ".deps", "build/"} do
      assert.is_nil(list:find("netlua/" .. gone, 1, true), gone)
    end
    -- the rock alone: nothing else of the source tree is at hand
    local tree, lone = src .. "/tree", H.tmpdir()
    H.sh(("cp %s %s/"):format(H.shquote(rock), H.shquote(lone)))
    H.rm_rf(src .. "/build")
    out, ok = H.sh(("cd %s && luarocks --lua-version=5.4 --tree=%s install netlua-scm-1.src.rock"):format(
      H.shquote(lone), H.shquote(tree)))
    assert(ok, out)
    out = H.sh(("cd / && eval \"$(luarocks --lua-version=5.4 --tree=%s path)\" && lua5.4 -e " ..
      "'print(require(\"netlua.ftp\").curl_version)'"):format(H.shquote(tree)))
    assert.matches("^%d+%.%d+", out)
    out, ok = H.sh(("luarocks --lua-version=5.4 --tree=%s remove netlua"):format(H.shquote(tree)))
    assert(ok, out)
    out = H.sh("find " .. H.shquote(tree) .. " -type f ! -name manifest")
    assert.equal("", out, "left after luarocks remove")
    H.rm_rf(lone)
    H.rm_rf(src)
  end)

  it("the rockspec names a git URL luarocks accepts, and lints clean", function()
    if not H.sh("command -v luarocks"):find("luarocks") then
      pending("luarocks is not installed")
      return
    end
    local spec = assert(io.open(H.root .. "/netlua-scm-1.rockspec")):read("a")
    local url = spec:match('\n%s*url%s*=%s*"([^"]+)"')
    assert.matches("^git%+https://[%w%.%-]+/[%w%-]+/[%w%-]+$", url)
    local out, ok = H.sh(("luarocks --lua-version=5.4 lint %s 2>&1"):format(
      H.shquote(H.root .. "/netlua-scm-1.rockspec")))
    assert(ok, out)
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
