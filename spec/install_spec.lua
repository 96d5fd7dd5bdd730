-- Installing: `make install` honours PREFIX/DESTDIR, and `luarocks make`
-- builds and installs the rock offline into a tree whose paths then give
-- a working `require "netlua"`.  Both run on a copy of the source tree so
-- the build under test is never touched.
local H = require "helper"

-- the Lua the suite runs on, and its module folder (LuaJIT uses 5.1's);
-- luarocks drives the PUC Luas, so under LuaJIT its specs use lua5.1
local ABI = H.lua:match("^lua(5%.%d)$") or "5.1"
local ROCKLUA = "lua" .. ABI

local function copy_tree()
  local dir = H.tmpdir()
  local out, ok = H.sh(("tar -C %s --exclude='./build*' --exclude=./.deps --exclude=./.git -cf - . | tar -C %s -xf -")
    :format(H.shquote(H.root), H.shquote(dir)))
  assert(ok, out)
  return dir
end

describe("installation", function()
  it("make install puts core.so and the Lua files under DESTDIR/PREFIX", function()
    local src = copy_tree()
    local dest = src .. "/dest"
    local out, ok = H.sh(("make -C %s install LUA=%s DESTDIR=%s PREFIX=/opt/nl"):format(
      H.shquote(src), H.lua, H.shquote(dest)))
    assert(ok, out)
    local lib, share = dest .. "/opt/nl/lib/lua/" .. ABI, dest .. "/opt/nl/share/lua/" .. ABI
    assert.is_true(H.exists(lib .. "/netlua/core.so"))
    for _, m in ipairs {"init", "tcp", "lookup", "multicast", "ftp", "telnet", "drive", "loop",
        "loop_cqueues", "loop_luv", "loop_copas"} do
      assert.is_true(H.exists(share .. "/netlua/" .. m .. ".lua"), m)
    end
    out = H.sh(("cd / && LUA_PATH=%s LUA_CPATH=%s %s -e 'print(require(\"netlua\").version)'"):format(
      H.shquote(share .. "/?.lua;" .. share .. "/?/init.lua"), H.shquote(lib .. "/?.so"), H.lua))
    assert.matches("^%d+%.%d+%.%d+", out)
    -- and make uninstall takes it all away again
    out, ok = H.sh(("make -C %s uninstall LUA=%s DESTDIR=%s PREFIX=/opt/nl"):format(
      H.shquote(src), H.lua, H.shquote(dest)))
    assert(ok, out)
    out = H.sh("find " .. H.shquote(dest) .. " -type f")
    assert.equal("", out, "left after uninstall")
    assert.is_false(H.exists(lib .. "/netlua"))
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
    out, ok = H.sh(("cd %s && luarocks --lua-version=" .. ABI .. " --tree=%s install netlua-scm-1.src.rock"):format(
      H.shquote(lone), H.shquote(tree)))
    assert(ok, out)
    out = H.sh(("cd / && eval \"$(luarocks --lua-version=" .. ABI .. " --tree=%s path)\" && " .. ROCKLUA .. " -e " ..
      "'print(require(\"netlua.ftp\").curl_version)'"):format(H.shquote(tree)))
    assert.matches("^%d+%.%d+", out)
    out, ok = H.sh(("luarocks --lua-version=" .. ABI .. " --tree=%s remove netlua"):format(H.shquote(tree)))
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
    local spec = assert(io.open(H.root .. "/netlua-scm-1.rockspec")):read("*a")
    local url = spec:match('\n%s*url%s*=%s*"([^"]+)"')
    assert.matches("^git%+https://[%w%.%-]+/[%w%-]+/[%w%-]+$", url)
    local out, ok = H.sh(("luarocks --lua-version=" .. ABI .. " lint %s 2>&1"):format(
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
    local out, ok = H.sh(("cd %s && luarocks --lua-version=" .. ABI .. " --tree=%s make netlua-scm-1.rockspec"):format(
      H.shquote(src), H.shquote(tree)))
    assert(ok, out)
    out = H.sh(("cd / && eval \"$(luarocks --lua-version=" .. ABI .. " --tree=%s path)\" && " .. ROCKLUA .. " -e " ..
      "'local n = require \"netlua\"; for p in package.cpath:gmatch(\"[^;]+\") do " ..
      "local f = p:gsub(\"%%?\", \"netlua/core\") local h = io.open(f) " ..
      "if h then h:close() print(n.version, f) break end end'")
      :format(H.shquote(tree)))
    assert.matches(tree .. "/lib/lua/" .. ABI .. "/netlua/core.so", out, 1, true)
    H.rm_rf(src)
  end)
end)
