-- netlua.ftp refuses misuse before anything is sent, round-trips awkward
-- names, and fails cleanly when the server dies mid-transfer.
local H = require "helper"

-- 5.1 and LuaJIT lack table.unpack
local unpack = table.unpack or unpack
local F = require "ftp_helper"
local ftp = require "netlua.ftp"
local netlua = require "netlua"

describe("ftp safety (vsftpd)", function()
  local srv, s

  setup(function() srv = F.vsftpd() end)
  teardown(function() if srv then srv.stop() end end)
  before_each(function() s = assert(ftp.new(srv.opts())) end)
  after_each(function() if s then s:close() end end)

  it("refuses CR, LF and NUL in every command, path and argument", function()
    local bad = {"NOOP\r\nDELE x", "NOOP\nSYST", "NOOP\0SYST", "x\r"}
    local lines = {}
    s:set_debuglevel(function(l) lines[#lines + 1] = l end)
    for _, b in ipairs(bad) do
      assert.has_error(function() s:sendcmd(b) end)
      assert.has_error(function() s:voidcmd(b) end)
      assert.has_error(function() s:cwd(b) end)
      assert.has_error(function() s:delete(b) end)
      assert.has_error(function() s:rmd(b) end)
      assert.has_error(function() s:mkd(b) end)
      assert.has_error(function() s:size(b) end)
      assert.has_error(function() s:rename(b, "y") end)
      assert.has_error(function() s:rename("y", b) end)
      assert.has_error(function() s:retrbinary("RETR " .. b, print) end)
      assert.has_error(function() s:retrlines("LIST " .. b, print) end)
      assert.has_error(function() s:storbinary("STOR " .. b, "data") end)
      assert.has_error(function() s:storlines("STOR " .. b, "data") end)
      assert.has_error(function() s:nlst(b) end)
      assert.has_error(function() s:dir(b, print) end)
      assert.has_error(function() s:list(b) end)
      assert.has_error(function() s:get(b) end)
      assert.has_error(function() s:put("data", b, {data = true}) end)
      assert.has_error(function() s:login("u" .. b, "p") end)
    end
    assert.has_error(function() ftp.new{host = "127.0.0.1\r\n", port = srv.port} end)
    assert.same({}, lines)  -- nothing reached the wire
    local err = select(2, pcall(s.sendcmd, s, "NOOP\r\nSYST"))
    assert.matches("CR, LF or NUL", err)
  end)

  it("refuses commands whose state the session owns, naming the method", function()
    local cases = {
      ["TYPE A"] = "retrbinary", ["PASV"] = "set_pasv", ["EPSV"] = "set_pasv",
      ["PORT 127,0,0,1,4,1"] = "set_pasv", ["EPRT |1|127.0.0.1|1025|"] = "set_pasv",
      ["REST 10"] = "rest", ["RETR x"] = "retrbinary", ["STOR x"] = "storbinary",
      ["APPE x"] = "APPE", ["LIST"] = "dir", ["NLST"] = "nlst", ["MLSD"] = "mlsd",
      ["ABOR"] = "abort", ["AUTH TLS"] = "tls", ["PBSZ 0"] = "tls", ["PROT P"] = "tls",
      ["USER x"] = "login", ["PASS x"] = "login", ["REIN"] = "login",
      ["type i"] = "retrbinary", ["CWD /"] = "cwd", ["QUIT"] = "quit",
    }
    for cmd, method in pairs(cases) do
      local ok, err = pcall(s.sendcmd, s, cmd)
      assert.is_false(ok, cmd)
      assert.matches(method, err, 1, true)
      assert.is_false((pcall(s.voidcmd, s, cmd)))
    end
    assert.equal("200 NOOP ok.", s:voidcmd("NOOP"))
  end)

  it("raises on wrong argument types and values", function()
    assert.has_error(function() s:sendcmd() end)
    assert.has_error(function() s:sendcmd("") end)
    assert.has_error(function() s:retrbinary("DELE x", print) end)
    assert.has_error(function() s:retrbinary("RETR x", 42) end)
    assert.has_error(function() s:retrbinary("RETR x", print, 0) end)
    assert.has_error(function() s:retrbinary("RETR x", print, 8192, -1) end)
    assert.has_error(function() s:storbinary("STOR x", 42) end)
    assert.has_error(function() s:storbinary("RETR x", "data") end)
    assert.has_error(function() s:storbinary("STOR", "data") end)
    assert.has_error(function() s:storbinary("STOR x", "d", 8192, 42) end)
    assert.has_error(function() s:rename(1) end)
    assert.has_error(function() s:set_debuglevel("x") end)
    assert.has_error(function() ftp.new{tls = "sometimes"} end)
    assert.has_error(function() ftp.new{timeout = "soon"} end)
    assert.has_error(function() ftp.new{passive = "yes"} end)
    assert.has_error(function() ftp.new(42) end)
    assert.has_error(function() s:mirror("/", "/tmp/x", {parallel = 0}) end)
    local t = ftp.new()
    assert.has_error(function() t:pwd() end, "ftp session is not connected (call connect)")
    assert.has_error(function() t:connect("127.0.0.1", 70000) end)
    t:close()
  end)

  it("round-trips names with spaces, %, #, ; and UTF-8", function()
    local names = {"with space.txt", "100%.txt", "a#b.txt", "x;type=a", "semi;colon",
      "häßlich – ünïcødé.txt", "%2F.txt", "?q=1", "  lead", "trail  "}
    assert(s:mkd("dir #%; ü"))
    assert(s:cwd("dir #%; ü"))
    for i, n in ipairs(names) do
      local data = ("%d:"):format(i) .. n .. "\r\n\0\255"
      assert(s:storbinary("STOR " .. n, data), n)
      assert.equal(data, H.read_file(srv.path("dir #%; ü/" .. n)), n)
      assert.equal(data, s:get(n), n)
      assert.equal(#data, s:size(n))
    end
    local got = s:nlst()
    table.sort(got)
    local want = {unpack(names)}
    table.sort(want)
    -- vsftpd shows the names as they are (leading spaces too)
    assert.same(want, got)
    local listed = {}
    for _, e in ipairs(assert(s:list())) do listed[#listed + 1] = e.name end
    assert.same(want, listed)
    assert(s:rename("a#b.txt", "c %#;.txt"))
    assert.is_true(s:exists("c %#;.txt"))
    assert.is_false(s:exists("a#b.txt"))
  end)

  it("get and put with resume, append, progress; one-shot URL functions", function()
    local dir = H.tmpdir()
    local data = F.random_bytes(200000)
    H.write_file(dir .. "/src", data)
    local calls, last = 0, nil
    assert(s:put(dir .. "/src", "up.bin", {progress = function(done, total)
      calls = calls + 1
      last = {done, total}
    end}))
    assert.equal(data, H.read_file(srv.path("up.bin")))
    assert.is_true(calls > 0)
    assert.same({200000, 200000}, last)
    assert(s:put("tail", "up.bin", {append = true, data = true}))
    assert.equal(data .. "tail", H.read_file(srv.path("up.bin")))
    -- get to a path: progress sees done and total
    last = nil
    assert.is_true(s:get("up.bin", dir .. "/down", {progress = function(d, t) last = {d, t} end}))
    assert.same({200004, 200004}, last)
    assert.equal(data .. "tail", H.read_file(dir .. "/down"))
    -- resume: a partial .part is continued
    H.write_file(dir .. "/res.part", data:sub(1, 123456))
    assert.is_true(s:get("up.bin", dir .. "/res", {resume = true}))
    assert.equal(data .. "tail", H.read_file(dir .. "/res"))
    assert.is_false(H.exists(dir .. "/res.part"))
    -- to an open file
    local f = assert(io.open(dir .. "/fh", "wb"))
    assert.is_true(s:get("up.bin", f))
    f:close()
    assert.equal(data .. "tail", H.read_file(dir .. "/fh"))
    -- a missing remote file: error, nothing left behind
    local ok, msg, code = s:get("missing", dir .. "/m")
    assert.is_nil(ok)
    assert.equal(550, code)
    assert.matches("^get missing: 550", msg)
    assert.is_false(H.exists(dir .. "/m"))
    assert.is_false(H.exists(dir .. "/m.part"))
    -- makedirs and exists
    assert.is_true(s:makedirs("a/b/c"))
    assert.is_true(s:makedirs("a/b/c"))
    assert.is_true(s:exists("a/b/c"))
    assert.is_false(s:exists("a/b/d"))
    -- module functions
    local url = ("ftp://%s:%s@127.0.0.1:%d/"):format(srv.user, srv.password:gsub("!", "%%21"), srv.port)
    assert(ftp.put(url .. "url%20file", "via url", {timeout = 10}))
    assert.equal("via url", H.read_file(srv.path("url file")))
    assert.equal("via url", ftp.get(url .. "url%20file", {timeout = 10}))
    ok, msg, code = ftp.get(url .. "nope", {timeout = 10})
    assert.is_nil(ok)
    assert.equal(550, code)
    H.rm_rf(dir)
  end)

  it("mirror copies a tree over parallel connections", function()
    assert(s:makedirs("tree/sub/deeper"))
    local want = {}
    for i = 1, 30 do
      local p = (i % 3 == 0 and "tree/sub/" or i % 5 == 0 and "tree/sub/deeper/" or "tree/") .. "f" .. i
      want[p] = ("%d"):format(i):rep(i * 100)
      assert(s:storbinary("STOR " .. p, want[p]))
    end
    local dir = H.tmpdir()
    local before = srv.connections()
    local n = assert(s:mirror("tree", dir .. "/copy", {parallel = 4}))
    assert.equal(30, n.files)
    for p, data in pairs(want) do
      assert.equal(data, H.read_file(dir .. "/copy/" .. p:sub(6)), p)
    end
    local extra = srv.connections() - before
    assert.is_true(extra >= 1 and extra <= 4, tostring(extra))
    H.rm_rf(dir)
  end)
end)

-- The server must die with bytes of the file still unsent.  Killing a
-- real server streaming a file is a race: on loopback the kernel buffers
-- can take a few MiB, so the whole file may already be on its way when
-- the kill lands, and get then rightly succeeds.  The scripted server
-- (spec/servers/ftp_hostile.lua, mode stall_half) sends the first half of
-- its 1 MiB file and holds the second half back until it is killed.
describe("ftp server dying mid-download (scripted server)", function()
  local SIZE = 1024 * 1024  -- the scripted server's file
  local pid

  after_each(function() H.kill(pid) end)

  it("a server dying mid-download returns an error and leaves no file", function()
    local port = H.free_port()
    pid = H.lua_server("ftp_hostile", "stall_half", port)
    local s = assert(ftp.new{host = "127.0.0.1", port = port, user = "u",
      password = "p", timeout = 5})
    local dir = H.tmpdir()
    local target = dir .. "/big"
    local killed, got, total = false, 0, nil
    local ok, msg, code = s:get("big", target, {progress = function(done, size)
      got, total = done, size
      if not killed then
        killed = true
        F.sh("kill -KILL " .. pid)
      end
    end})
    assert.is_true(killed)
    -- the kill came mid-file: at most the half the server sent arrived
    assert.equal(SIZE, total)
    assert.is_true(got > 0 and got <= SIZE / 2, tostring(got))
    assert.is_nil(ok)
    assert.equal("closed", code)
    assert.matches("^get big: ", msg)
    -- neither the target nor a .part (nor anything else) is left behind
    assert.same({}, H.ls(dir))
    H.rm_rf(dir)
    -- the next call reconnects, here to a server back on the same port
    H.kill(pid)
    pid = H.lua_server("ftp_hostile", "stall_half", port)
    assert.equal("200 noop", s:voidcmd("NOOP"))
    s:close()
  end)
end)

describe("ftp failures without a server", function()
  it("connect refused", function()
    local port = H.free_port("inet")
    local s, msg, code = ftp.new{host = "127.0.0.1", port = port, user = "x", timeout = 5}
    assert.is_nil(s)
    assert.equal("refused", code)
    assert.matches("127.0.0.1", msg)
  end)

  it("a silent server times out within the timeout", function()
    local srv = assert(netlua.tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local dt, s, _, code = H.timed(ftp.new, {host = "127.0.0.1", port = port, timeout = 0.5})
    assert.is_nil(s)
    assert.equal("timeout", code)
    assert.is_true(dt < 0.5 + 1.0, tostring(dt))
    srv:close()
  end)

  it("an unknown host name fails with resolve", function()
    local s, _, code = ftp.new{host = "no-such-host.invalid", timeout = 5}
    assert.is_nil(s)
    assert.equal("resolve", code)
  end)
end)

describe("ftp reconnects (vsftpd with a 1 s idle timeout)", function()
  local srv

  setup(function() srv = F.vsftpd{extra = {"idle_session_timeout=1"}} end)
  teardown(function() if srv then srv.stop() end end)

  it("logs in again after the server dropped an idle session, keeping cwd", function()
    local s = assert(ftp.new(srv.opts()))
    assert(s:mkd("idle"))
    assert(s:cwd("idle"))
    netlua.sleep(2.5)  -- the server says 421 and hangs up
    assert(s:storbinary("STOR after-idle", "still here"))
    assert.equal("still here", H.read_file(srv.path("idle/after-idle")))
    assert.equal(srv.root .. "/idle", s:pwd())
    assert.equal(1, s:_info().reconnects)
    assert.equal("220 (vsFTPd 3.0.3)", s:getwelcome())
    netlua.sleep(2.5)
    assert.matches("^213 ", s:sendcmd("SIZE after-idle"))
    s:close()
  end)

  it("closes with <close> and on garbage collection", function()
    if H.close_scope then  -- <close> is 5.4's; the collection below is not
      H.close_scope(assert(ftp.new(srv.opts())), function(s) assert(s:voidcmd("NOOP")) end)
    end
    local s = assert(ftp.new(srv.opts()))
    local weak = setmetatable({s}, {__mode = "v"})
    s = nil
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
  end)
end)
