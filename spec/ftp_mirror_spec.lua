-- mirror as a sync tool, against vsftpd (LIST only: times to the minute,
-- MDTM), pyftpdlib (MLSD) and proftpd (MLSD, MFMT): first copy, a run
-- with nothing changed (no RETR in the server's log), a run after some
-- files changed, deletions with and without `delete`, `dry_run`,
-- `reverse` both ways, names with spaces and UTF-8, times equal to the
-- server's, a file that vanishes mid-run, an interrupted run resumed,
-- include/exclude and symlinks.
local H = require "helper"

-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local F = require "ftp_helper"
local ftp = require "netlua.ftp"
local core = require "netlua.core"

-- The tree every peer starts with: relative path -> content.
local function base_tree()
  local t = {
    ["a.txt"] = "alpha\n",
    ["with space.bin"] = ("x"):rep(3000),
    ["ünïcødé.txt"] = "utf-8 name\n",
    ["sub/one.dat"] = ("1"):rep(1500),
    ["sub/two.dat"] = ("2"):rep(2500),
    ["sub/deeper/three.dat"] = ("3"):rep(100),
    ["sub/deeper/empty.dat"] = "",
    ["logs/x.log"] = "log line\n",
  }
  return t
end

local function sorted_keys(t)
  local k = {}
  for n in pairs(t) do k[#k + 1] = n end
  table.sort(k)
  return k
end

-- Lays tree out under dir (the server's disk, or a local folder), with
-- every file's time set `age` seconds in the past.
local function lay_out(dir, tree, age)
  for p, data in pairs(tree) do
    local full = dir .. "/" .. p
    assert(core.mkdir_p(full:match("^(.*)/")))
    H.write_file(full, data)
    assert(core.fs_setmtime(full, os.time() - (age or 3600)))
  end
end

-- Every file under dir as relative path -> content (no folders).
local function read_tree(dir, out, rel)
  out = out or {}
  for _, e in ipairs(core.fs_list(dir) or {}) do
    local r = rel and rel .. "/" .. e.name or e.name
    if e.type == "dir" then read_tree(dir .. "/" .. e.name, out, r)
    else out[r] = e.type == "link" and "->link" or H.read_file(dir .. "/" .. e.name) end
  end
  return out
end

local function same_tree(want, got)
  assert.same(sorted_keys(want), sorted_keys(got))
  for p, data in pairs(want) do assert.equal(data, got[p], p) end
end

local function mtime(path) return assert(core.fs_stat(path)).modify end

-- How many RETR / STOR commands the server has logged so far.
-- A server may write the line of a transfer just after its 226 reached
-- us: wait (up to 5 s) for at least `least` lines, then a little more.
local function count(srv, verb, least)
  local netlua = require "netlua"
  local function now()
    local n = 0
    for _ in (H.read_file(srv.cmdlog or srv.log) or ""):gmatch(verb .. " ") do n = n + 1 end
    return n
  end
  local stop = netlua.monotime() + 5
  while now() < (least or 0) and netlua.monotime() < stop do netlua.sleep(0.05) end
  netlua.sleep(0.2)
  return now()
end

local peers = {
  {"vsftpd", function() return F.vsftpd() end},
  {"pyftpdlib", function() return F.pyftpd() end},
  {"proftpd", function() return F.proftpd() end},
}

for _, peer in ipairs(peers) do
  describe("mirror against " .. peer[1], function()
    local srv, s, dir
    setup(function()
      srv = peer[2]()
    end)
    teardown(function() if srv then srv.stop() end end)
    before_each(function()
      H.sh("rm -rf " .. H.shquote(srv.root) .. "/top " .. H.shquote(srv.root) .. "/up")
      lay_out(srv.root .. "/top", base_tree(), 7200)
      s = assert(ftp.new(srv.opts()))
      dir = H.tmpdir()
    end)
    after_each(function()
      if s then s:close() end
      H.rm_rf(dir)
    end)

    it("copies the tree, then skips it when nothing changed", function()
      local r = assert(s:mirror("top", dir .. "/copy", {parallel = 3}))
      local want = base_tree()
      same_tree(want, read_tree(dir .. "/copy"))
      assert.equal(8, r.files)
      assert.equal(#table.concat((function()
        local v = {} for _, d in pairs(want) do v[#v + 1] = d end return v end)()), r.bytes)
      assert.same(sorted_keys(want), r.transferred)
      assert.same({}, r.failed)
      assert.equal(0, r.skipped)
      -- times are the server's, to the second
      for p in pairs(want) do
        assert.equal(mtime(srv.root .. "/top/" .. p), mtime(dir .. "/copy/" .. p), p)
      end
      local retr = count(srv, "RETR", 8)
      local again = assert(s:mirror("top", dir .. "/copy", {parallel = 3}))
      assert.equal(0, again.files)
      assert.equal(0, again.bytes)
      assert.equal(8, again.skipped)
      assert.same({}, again.transferred)
      assert.equal(retr, count(srv, "RETR"), "no RETR on a run with nothing changed")
    end)

    it("copies only what changed: size, or time alone", function()
      assert(s:mirror("top", dir .. "/copy", {parallel = 2}))
      -- one file grows; one keeps its size but gets a later time
      H.write_file(srv.root .. "/top/sub/one.dat", ("1"):rep(1600))
      H.write_file(srv.root .. "/top/a.txt", "ALPHA\n")
      assert(core.fs_setmtime(srv.root .. "/top/a.txt", os.time() - 600))
      local r = assert(s:mirror("top", dir .. "/copy", {parallel = 2}))
      assert.same({}, r.failed)
      assert.same({"a.txt", "sub/one.dat"}, r.transferred)
      assert.equal(6, r.skipped)
      assert.equal("ALPHA\n", H.read_file(dir .. "/copy/a.txt"))
      assert.equal(1600, #H.read_file(dir .. "/copy/sub/one.dat"))
      -- ignore_time: the same size counts as the same file
      H.write_file(srv.root .. "/top/a.txt", "alpha\n")
      r = assert(s:mirror("top", dir .. "/copy", {ignore_time = true}))
      assert.same({}, r.transferred)
      assert.equal("ALPHA\n", H.read_file(dir .. "/copy/a.txt"))
      r = assert(s:mirror("top", dir .. "/copy"))
      assert.same({"a.txt"}, r.transferred)
    end)

    it("only_newer leaves a local file that is newer alone", function()
      assert(s:mirror("top", dir .. "/copy"))
      H.write_file(dir .. "/copy/a.txt", "local edit, longer\n")
      local r = assert(s:mirror("top", dir .. "/copy", {only_newer = true}))
      assert.same({}, r.transferred)
      assert.equal("local edit, longer\n", H.read_file(dir .. "/copy/a.txt"))
      r = assert(s:mirror("top", dir .. "/copy"))
      assert.same({"a.txt"}, r.transferred)
      assert.equal("alpha\n", H.read_file(dir .. "/copy/a.txt"))
    end)

    it("keeps files the server lost unless delete; dry_run changes nothing", function()
      assert(s:mirror("top", dir .. "/copy"))
      os.remove(srv.root .. "/top/sub/two.dat")
      H.sh("rm -rf " .. H.shquote(srv.root .. "/top/sub/deeper"))
      local r = assert(s:mirror("top", dir .. "/copy"))
      assert.same({}, r.deleted)
      assert.is_true(H.exists(dir .. "/copy/sub/two.dat"))
      -- dry_run: the report of what delete would do, and no change
      local before = read_tree(dir .. "/copy")
      H.write_file(srv.root .. "/top/new.txt", "new\n")
      r = assert(s:mirror("top", dir .. "/copy", {delete = true, dry_run = true}))
      assert.same({"sub/deeper", "sub/two.dat"}, r.deleted)
      assert.same({"new.txt"}, r.transferred)
      assert.equal(4, r.bytes)
      same_tree(before, read_tree(dir .. "/copy"))
      r = assert(s:mirror("top", dir .. "/copy", {delete = true}))
      assert.same({"sub/deeper", "sub/two.dat"}, r.deleted)
      assert.same({"new.txt"}, r.transferred)
      local want = base_tree()
      want["sub/two.dat"], want["sub/deeper/three.dat"], want["sub/deeper/empty.dat"] = nil, nil, nil
      want["new.txt"] = "new\n"
      same_tree(want, read_tree(dir .. "/copy"))
      assert.is_false(H.exists(dir .. "/copy/sub/deeper"))
    end)

    it("reverse uploads a local tree, then only what changed, and delete removes remote extras", function()
      lay_out(dir .. "/src", base_tree(), 5000)
      local r = assert(s:mirror("up", dir .. "/src", {reverse = true, parallel = 3}))
      assert.equal(8, r.files)
      same_tree(base_tree(), read_tree(srv.root .. "/up"))
      -- the server's files get the local times (MFMT, or vsftpd's MDTM)
      for p in pairs(base_tree()) do
        assert.equal(mtime(dir .. "/src/" .. p), mtime(srv.root .. "/up/" .. p), p)
      end
      local stor = count(srv, "STOR", 8)
      r = assert(s:mirror("up", dir .. "/src", {reverse = true}))
      assert.same({}, r.transferred)
      assert.equal(8, r.skipped)
      assert.equal(stor, count(srv, "STOR"))
      H.write_file(dir .. "/src/sub/one.dat", "changed locally\n")
      os.remove(dir .. "/src/logs/x.log")
      r = assert(s:mirror("up", dir .. "/src", {reverse = true, delete = true}))
      assert.same({"sub/one.dat"}, r.transferred)
      assert.same({"logs/x.log"}, r.deleted)
      assert.equal("changed locally\n", H.read_file(srv.root .. "/up/sub/one.dat"))
      assert.is_false(H.exists(srv.root .. "/up/logs/x.log"))
      -- and back down: a copy of what was uploaded
      r = assert(s:mirror("up", dir .. "/back"))
      same_tree(read_tree(dir .. "/src"), read_tree(dir .. "/back"))
      -- no temporary names left on the server
      for p in pairs(read_tree(srv.root .. "/up")) do
        assert.is_nil(p:find("%.part$"), p)
      end
    end)

    it("reverse with delete replaces what is in the way, both ways round", function()
      lay_out(dir .. "/src", {["x/inner.txt"] = "in\n", ["y"] = "file y\n"}, 5000)
      -- on the server: a file where the folder x goes, a folder where the file y goes
      lay_out(srv.root .. "/up", {["x"] = "was a file\n", ["y/old.txt"] = "old\n"}, 5000)
      -- the server's user must own what it is to remove
      if srv.uid or srv.user ~= "tester" then
        F.sh(("chown -R %s %s"):format(srv.uid or srv.user, H.shquote(srv.root .. "/up")))
      end
      local r = select(4, s:mirror("up", dir .. "/src", {reverse = true}))
      assert.equal(2, #r.failed)
      assert.equal("exists", r.failed[1].code)
      r = assert(s:mirror("up", dir .. "/src", {reverse = true, delete = true, parallel = 4}))
      assert.same({"x/inner.txt", "y"}, r.transferred)
      same_tree({["x/inner.txt"] = "in\n", ["y"] = "file y\n"}, read_tree(srv.root .. "/up"))
    end)

    it("delete replaces local files and folders in the way", function()
      -- a folder where the file a.txt goes, a file where the folder sub goes
      lay_out(dir .. "/copy", {["a.txt/keep"] = "x", ["sub"] = "a file\n"}, 100)
      local r = select(4, s:mirror("top", dir .. "/copy"))
      assert.same({"a.txt", "sub"}, {r.failed[1].path, r.failed[2].path})
      assert.equal("exists", r.failed[1].code)
      assert.equal("x", H.read_file(dir .. "/copy/a.txt/keep"))
      r = assert(s:mirror("top", dir .. "/copy", {delete = true}))
      same_tree(base_tree(), read_tree(dir .. "/copy"))
    end)

    it("a file that vanishes after the listing is reported and the rest continues", function()
      local gone = false
      local r = select(4, s:mirror("top", dir .. "/copy", {parallel = 1,
        progress = function(path)
          if not gone then
            gone = true
            os.remove(srv.root .. "/top/with space.bin")
          end
        end}))
      assert.equal(1, #r.failed)
      assert.equal("with space.bin", r.failed[1].path)
      assert.is_number(r.failed[1].code)
      assert.equal(7, r.files)
      assert.is_false(H.exists(dir .. "/copy/with space.bin"))
      assert.is_false(H.exists(dir .. "/copy/with space.bin.part"))
    end)

    it("an interrupted run leaves no half file; resume continues the .part", function()
      H.write_file(srv.root .. "/top/big.bin", F.random_bytes(3 * 1024 * 1024))
      local stop = function(path, done)
        if path == "big.bin" and done >= 1024 * 1024 then error("interrupted") end
      end
      local r = select(4, s:mirror("top", dir .. "/copy", {parallel = 1, progress = stop}))
      assert.equal("big.bin", r.failed[1].path)
      assert.is_false(H.exists(dir .. "/copy/big.bin"))
      assert.is_false(H.exists(dir .. "/copy/big.bin.part"))
      -- with resume the partial file stays, and the next run continues it
      r = select(4, s:mirror("top", dir .. "/copy", {parallel = 1, progress = stop, resume = true}))
      assert.equal("big.bin", r.failed[1].path)
      local part = #H.read_file(dir .. "/copy/big.bin.part")
      assert.is_true(part >= 1024 * 1024 and part < 3 * 1024 * 1024, tostring(part))
      r = assert(s:mirror("top", dir .. "/copy", {parallel = 1, resume = true}))
      assert.same({"big.bin"}, r.transferred)
      assert.equal(H.read_file(srv.root .. "/top/big.bin"), H.read_file(dir .. "/copy/big.bin"))
      assert.is_false(H.exists(dir .. "/copy/big.bin.part"))
      -- a .part of an older version of the file is not continued
      H.write_file(dir .. "/copy/big.bin.part", ("o"):rep(1024 * 1024))
      assert(core.fs_setmtime(dir .. "/copy/big.bin.part", os.time() - 86400 * 3))
      os.remove(dir .. "/copy/big.bin")
      r = assert(s:mirror("top", dir .. "/copy", {parallel = 1, resume = true}))
      assert.same({"big.bin"}, r.transferred)
      assert.equal(H.read_file(srv.root .. "/top/big.bin"), H.read_file(dir .. "/copy/big.bin"))
      os.remove(srv.root .. "/top/big.bin")
    end)

    it("include and exclude take globs", function()
      local r = assert(s:mirror("top", dir .. "/copy", {include = "*.dat", exclude = "sub/deeper"}))
      assert.same({"sub/one.dat", "sub/two.dat"}, r.transferred)
      r = assert(s:mirror("top", dir .. "/c2", {exclude = {"*.txt", "logs"}, max_depth = 1}))
      assert.same({"sub/one.dat", "sub/two.dat", "with space.bin"}, r.transferred)
    end)

    it("refuses options it does not know before touching anything", function()
      assert.has_error(function() s:mirror("top", dir .. "/copy", {dryrun = true, delete = true}) end,
        "unknown option 'dryrun' to 'mirror'")
      assert.has_error(function() s:mirror("top", dir .. "/copy", {delete = "yes"}) end)
      assert.has_error(function() s:mirror("top", dir .. "/copy", {symlinks = "copy"}) end)
      assert.has_error(function() s:mirror("top", dir .. "/copy", {include = 5}) end)
      assert.is_false(H.exists(dir .. "/copy"))
    end)

    it("a missing remote folder fails the run with the report", function()
      local r = pack(s:mirror("no/such/dir", dir .. "/copy"))
      assert.is_nil(r[1])
      assert.is_string(r[2])
      assert.is_number(r[3])
      assert.is_table(r[4])
    end)
  end)
end

describe("mirror with symlinks (vsftpd lists them)", function()
  local srv, s, dir
  setup(function()
    srv = F.vsftpd()
    lay_out(srv.root .. "/t", {["real.txt"] = "real\n", ["d/in.txt"] = "in\n"})
    H.sh(("ln -s real.txt %s && ln -s d %s"):format(H.shquote(srv.root .. "/t/ln.txt"),
      H.shquote(srv.root .. "/t/dl")))
    s = assert(ftp.new(srv.opts()))
  end)
  teardown(function() s:close() srv.stop() end)
  before_each(function() dir = H.tmpdir() end)
  after_each(function() H.rm_rf(dir) end)

  it("skips links by default", function()
    local r = assert(s:mirror("t", dir))
    assert.same({"d/in.txt", "real.txt"}, r.transferred)
  end)
  it("follows them when asked", function()
    local r = assert(s:mirror("t", dir, {symlinks = "follow"}))
    assert.same({"d/in.txt", "dl/in.txt", "ln.txt", "real.txt"}, r.transferred)
    assert.equal("real\n", H.read_file(dir .. "/ln.txt"))
  end)
  it("makes local links with symlinks = \"link\"", function()
    local r = assert(s:mirror("t", dir, {symlinks = "link"}))
    assert.same({"d/in.txt", "dl", "ln.txt", "real.txt"}, r.transferred)
    assert.equal("link", core.fs_stat(dir .. "/ln.txt", true).type)
    assert.equal("real\n", H.read_file(dir .. "/ln.txt"))
  end)
end)
