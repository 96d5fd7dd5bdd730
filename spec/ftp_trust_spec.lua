-- netlua.ftp never gives a wrong answer: each case here was once answered
-- wrongly (a short download taken as complete, a 421 taken for a
-- timeout, ...).  The scripted server (spec/servers/ftp_hostile.lua)
-- provokes what real servers do only now and then; vsftpd shows the rest.
local H = require "helper"

-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local F = require "ftp_helper"
local ftp = require "netlua.ftp"
local netlua = require "netlua"

describe("ftp answers against a hostile server", function()
  local pid, port

  after_each(function() H.kill(pid) pid = nil end)

  local function start(mode)
    port = H.free_port("inet")
    pid = H.lua_server("ftp_hostile", mode, port)
  end

  local function session(extra)
    local o = {host = "127.0.0.1", port = port, user = "u", password = "p", timeout = 5}
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(ftp.new(o))
  end

  -- Starts the server in `mode`, logs in and makes call(s) fail with
  -- `want` as its code well within the 5 s timeout; returns msg, s.
  local function fails_fast(mode, call, want)
    start(mode)
    local s = session()
    local dt, ok, msg, code = H.timed(call, s)
    assert.is_nil(ok)
    assert.equal(want, code, msg)
    assert.is_true(dt < 2, tostring(dt))
    return msg, s
  end

  for _, mode in ipairs {"short", "long"} do
    it("a download of other than the announced size fails (" .. mode .. ")", function()
      start(mode)
      local s = session()
      local n = 0
      local ok, msg, code = s:retrbinary("RETR f", function(b) n = n + #b end)
      assert.is_nil(ok)
      assert.equal("partial", code, msg)
      assert.equal(mode == "short" and 524288 or 2097152, n)
      assert.matches("^retrbinary RETR f: ", msg)
      assert.matches(tostring(n) .. " of 1048576 bytes", msg, 1, true)
      -- get leaves nothing under the target name, nor a .part
      local dir = H.tmpdir()
      ok, msg, code = s:get("f", dir .. "/f")
      assert.is_nil(ok)
      assert.equal("partial", code, msg)
      assert.matches("^get f: ", msg)
      assert.is_false(H.exists(dir .. "/f"))
      assert.is_false(H.exists(dir .. "/f.part"))
      -- a string download too
      ok, msg, code = s:get("f")
      assert.is_nil(ok)
      assert.equal("partial", code, msg)
      -- and the session goes on
      assert.equal("200 noop", s:voidcmd("NOOP"))
      H.rm_rf(dir)
      s:close()
    end)
  end

  it("a short download whose 150 names no size is caught by SIZE, or by the listing", function()
    start("quiet")
    local s = session()
    local dir = H.tmpdir()
    local ok, msg, code = s:get("f", dir .. "/f")
    assert.is_nil(ok)
    assert.equal("partial", code, msg)
    assert.matches("^get f: 524288 of 1048576 bytes", msg)
    assert.is_false(H.exists(dir .. "/f"))
    assert.is_false(H.exists(dir .. "/f.part"))
    ok, msg, code = s:get("f")
    assert.equal("partial", code, msg)
    -- retrbinary is ftplib's: it takes the server's 226 as it comes
    assert.matches("^226 ", assert(s:retrbinary("RETR f", function() end)))
    assert.equal(524288, (s:_received()))
    -- mirror checks each file against the size its listing gave
    local r = pack(s:mirror("/", dir .. "/copy", {parallel = 1}))
    assert.is_nil(r[1])
    assert.equal("partial", r[3], r[2])
    assert.matches("as listed", r[2])
    assert.is_false(H.exists(dir .. "/copy/x"))
    H.rm_rf(dir)
    s:close()
  end)

  it("a mirror never keeps a file of other than the announced size", function()
    start("short")
    local s = session()
    local dir = H.tmpdir()
    for _, in_task in ipairs {false, true} do
      local r
      local function go() r = pack(s:mirror("/", dir .. "/copy", {parallel = 1})) end
      if in_task then assert(netlua.run(go)) else go() end
      assert.is_nil(r[1])
      assert.equal("partial", r[3], r[2])
      assert.is_false(H.exists(dir .. "/copy/x"))
      assert.is_false(H.exists(dir .. "/copy/x.part"))
    end
    H.rm_rf(dir)
    s:close()
  end)

  for _, case in ipairs {
    {"noop", function(s) return s:sendcmd("NOOP") end, "sendcmd NOOP"},
    {"cwd", function(s) return s:cwd("/sub") end, "cwd /sub"},
    {"pasv", function(s) return s:get("f") end, "get f"},
    {"retr", function(s) return s:retrbinary("RETR f", function() end) end, "retrbinary RETR f"},
  } do
    local verb, call, what = case[1], case[2], case[3]
    it("a 421 answer to " .. verb:upper() .. " is the server's 421, not a timeout", function()
      local msg, s = fails_fast("421_" .. verb, call, 421)
      assert.equal(what .. ": 421 going down", msg)
      -- the connection is gone: the next call connects again
      local before = s:_info().reconnects
      assert.matches('^257 "/"', s:sendcmd("PWD"))
      assert.is_true(s:_info().reconnects > before)
      s:close()
    end)
  end

  it("a 421 answer to PASS is the server's 421", function()
    start("421_pass")
    local dt, s, msg, code = H.timed(ftp.new, {host = "127.0.0.1", port = port,
      user = "u", password = "p", timeout = 5})
    assert.is_nil(s)
    assert.equal(421, code, msg)
    assert.equal("login: 421 going down", msg)
    assert.is_true(dt < 2, tostring(dt))
  end)

  for _, case in ipairs {
    {"noop", function(s) return s:sendcmd("NOOP") end},
    {"retr", function(s) return s:get("f") end},
  } do
    it("a 1xx reply to " .. case[1]:upper() .. " and then a close is 'closed'", function()
      local _, s = fails_fast("prelim_" .. case[1], case[2], "closed")
      s:close()
    end)
  end

  it("connect fails on a 1 MiB greeting without a line end", function()
    start("biggreet")
    local s = ftp.new{timeout = 5}
    local dt, ok, msg, code = H.timed(s.connect, s, "127.0.0.1", port)
    assert.is_nil(ok)
    assert.is_true(code == "limit" or code == "protocol", tostring(code))
    assert.matches("greeting", msg)
    assert.is_true(dt < 3, tostring(dt))
    s:close()
  end)

  -- curl keeps what it read past a reply and would hand it to the next
  -- command as that command's answer: a DELE "done" that never happened
  for _, mode in ipairs {"twice", "twicelate"} do
    it("a reply nobody asked for is never taken for the next command's (" .. mode .. ")", function()
      start(mode)
      local s = session()
      assert.equal("200 noop", s:sendcmd("NOOP"))
      if mode == "twicelate" then netlua.sleep(0.3) end
      local ok, msg, code = s:delete("f")
      assert.is_nil(ok, msg)
      assert.equal(550, code, msg)
      assert.matches('^257 "/"', s:sendcmd("PWD"))
      assert.equal("200 noop", s:sendcmd("NOOP"))
      if mode == "twicelate" then netlua.sleep(0.3) end
      assert.matches('^257 "/"', s:sendcmd("PWD"))
      s:close()
    end)
  end

  -- Under TLS the bytes on the wire are not reply bytes: a second reply
  -- inside the record that carried the first cannot be counted there.
  -- Whatever the session does, DELE's answer is never the stale "200".
  describe("under TLS", function()
    local dir, cert, key
    setup(function()
      dir = H.tmpdir()
      cert, key = F.make_cert(dir)
    end)
    teardown(function() H.rm_rf(dir) end)

    local function start_tls(mode)
      port = H.free_port("inet")
      local log = dir .. "/" .. mode .. ".log"
      pid = H.spawn(("/usr/bin/python3 %s %s %d %s %s"):format(
        H.shquote(H.root .. "/spec/servers/ftp_tls_hostile.py"), mode, port,
        H.shquote(cert), H.shquote(key)), {log = log})
      H.wait_port("127.0.0.1", port)
    end

    for _, mode in ipairs {"twice", "tworecs", "twicelate"} do
      it("a reply nobody asked for is never taken for the next command's (" .. mode .. ")", function()
        start_tls(mode)
        local s = session{tls = "explicit", cafile = cert}
        assert.equal("200 noop", s:sendcmd("NOOP"))
        if mode == "twicelate" then netlua.sleep(0.3) end
        -- DELE is refused by this server: a true here is the stale 200
        local ok, msg, code = s:delete("f")
        assert.is_nil(ok, msg)
        assert.is_true(code == 550 or code == "protocol", tostring(code) .. " " .. tostring(msg))
        -- and the session goes on with every reply its command's own
        assert.matches('^257 "/"', s:sendcmd("PWD"))
        ok, msg, code = s:delete("f")
        assert.is_nil(ok, msg)
        assert.equal(550, code, msg)
        assert.matches('^257 "/"', s:sendcmd("PWD"))
        s:close()
      end)
    end
  end)

  it("mirror of an endless tree stops at a depth limit with an error, never raises", function()
    start("deep")
    local s = session()
    local dir = H.tmpdir()
    local ok, r, msg, code = pcall(s.mirror, s, "/", dir .. "/copy", {parallel = 1})
    assert.is_true(ok, tostring(r))
    assert.is_nil(r)
    assert.equal("limit", code, msg)
    assert.matches("depth", msg)
    -- an explicit max_depth is a choice, not a failure: deeper is skipped
    local n, err = s:mirror("/", dir .. "/two", {parallel = 1, max_depth = 2})
    assert.equal(3, n and n.files, err)
    assert.is_true(H.exists(dir .. "/two/d/d/f"))
    assert.is_false(H.exists(dir .. "/two/d/d/d"))
    H.rm_rf(dir)
    s:close()
  end)

  it("get checks its arguments before it touches the file system", function()
    start("deep")
    local s = session()
    local dir = H.tmpdir()
    for _, bad in ipairs {"a\nb", "a\rb", "a\0b"} do
      assert.has_error(function() s:get(bad, dir .. "/f") end)
    end
    assert.has_error(function() s:get("f", dir .. "/f", {progress = 3}) end)
    assert.has_error(function() s:get("f", dir .. "/f", 5) end)
    assert.same({}, H.ls(dir))
    H.rm_rf(dir)
    s:close()
  end)
end)

describe("ftp answers against vsftpd", function()
  local srv, s

  setup(function()
    srv = F.vsftpd()
    s = assert(ftp.new(srv.opts()))
  end)
  teardown(function()
    if s then s:close() end
    srv.stop()
  end)

  it("failures name the operation and the path", function()
    local ok, msg, code = s:get("nope")
    assert.is_nil(ok)
    assert.equal(550, code)
    assert.matches("^get nope: 550 ", msg)
    ok, msg, code = s:cwd("no/such")
    assert.is_nil(ok)
    assert.equal(550, code)
    assert.matches("^cwd no/such: 550 ", msg)
    for _, c in ipairs {
      {"delete", "nope"}, {"rmd", "nope"}, {"size", "nope"}, {"mkd", "no/such/dir"},
      {"nlst", "nope"}, {"list", "nope"},
    } do
      local r, m, k = s[c[1]](s, c[2])
      assert.is_nil(r, c[1])
      assert.equal(550, k, c[1] .. ": " .. tostring(m))
      assert.matches("^" .. c[1] .. " " .. c[2]:gsub("%p", "%%%0") .. ": 55%d ", m)
    end
    ok, msg, code = s:rename("nope", "other")
    assert.is_nil(ok)
    assert.matches("^rename nope: 550 ", msg)
    ok, msg, code = s:sendcmd("BOGUS")
    assert.is_nil(ok)
    assert.equal(500, code)
    assert.matches("^sendcmd BOGUS: 500 ", msg)
  end)

  it("a sink or source answering nil, err (as ltn12's do) fails the transfer", function()
    assert(s:storbinary("STOR sinkme", ("s"):rep(300000)))
    local calls = 0
    local ok, msg, code = s:retrbinary("RETR sinkme", function()
      calls = calls + 1
      if calls == 2 then return nil, "disk full" end
      return 1
    end, 4096)
    assert.is_nil(ok)
    assert.equal("callback", code)
    assert.equal("disk full", msg)
    -- a source's nil, err is no end of data: the upload fails
    local sent = 0
    ok, msg, code = s:storbinary("STOR broken", function()
      sent = sent + 1
      if sent > 3 then return nil, "read error" end
      return ("x"):rep(1000)
    end)
    assert.is_nil(ok)
    assert.equal("callback", code)
    assert.equal("read error", msg)
    -- a callback returning nothing, or a plain nil, is fine
    assert.matches("^226 ", s:retrbinary("RETR sinkme", function() end))
    local n = 0
    assert.matches("^226 ", s:storbinary("STOR fine", function()
      n = n + 1
      if n <= 2 then return "ab" end
      return nil
    end))
    assert.equal("abab", H.read_file(srv.path("fine")))
  end)

  it("a reply error still leaves the session in step", function()
    assert.is_nil((s:get("nope")))
    assert.matches("^200 ", s:voidcmd("NOOP"))
    assert.matches("^257 ", s:sendcmd("PWD"))
  end)
end)
