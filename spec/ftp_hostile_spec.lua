-- netlua.ftp against a scripted server that splits, stretches and garbles
-- its replies, lies in PASV and dies mid-transfer.
local H = require "helper"

-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local ftp = require "netlua.ftp"

local function start(mode)
  local port = H.free_port("inet")
  local pid = H.lua_server("ftp_hostile", mode, port)
  return pid, port
end

local function session(port, extra)
  local o = {host = "127.0.0.1", port = port, user = "u", password = "p", timeout = 5}
  for k, v in pairs(extra or {}) do o[k] = v end
  return ftp.new(o)
end

describe("ftp against a hostile scripted server", function()
  local pid

  after_each(function() H.kill(pid) pid = nil end)

  -- starts the server in `mode` and logs in to it
  local function serve(mode, extra)
    local port
    pid, port = start(mode)
    return assert(session(port, extra)), port
  end

  it("reassembles replies split across packets", function()
    local s = serve("split")
    assert.equal("220 hostile server ready", s:getwelcome())
    assert.equal("200 noop", s:voidcmd("NOOP"))
    assert.equal(1024 * 1024, #assert(s:get("f")))
    s:close()
  end)

  it("keeps multi-line replies whole", function()
    local s, port = serve("multiline")
    assert.equal("220-Welcome\n220-to the\n  indented text\n220 hostile server", s:getwelcome())
    assert.equal("200-first\n second\n200-third\n200 done", s:voidcmd("NOOP"))
    s:close()
    -- and a multi-line login reply whose text lines look like anything
    local t = ftp.new{timeout = 5}
    assert(t:connect("127.0.0.1", port))
    assert.equal("230-Welcome\n any text\n 230 lookalike\n230-more\n230 done",
      t:login("u", "p"))
    t:close()
  end)

  it("survives an over-long reply line", function()
    local s = serve("longline")
    local dt, r, msg, code = H.timed(s.voidcmd, s, "NOOP")
    assert.is_true(dt < 5 + 1)
    if r then
      assert.matches("^200%-LLLL", r)
      assert.is_true(#r <= 64 * 1024 + 100)
    else
      assert.is_string(msg)
      assert.is_not_nil(code)
    end
    s:close()
  end)

  it("fails a listing with a line no listing has, and goes on", function()
    local s = serve("longentry")
    local t, msg, code = s:list()
    assert.is_nil(t)
    assert.equal("list: listing line over 65536 bytes", msg)
    assert.equal("protocol", code)
    -- the transfer itself ended well: the session answers on
    assert.equal("200 noop", s:voidcmd("NOOP"))
    s:close()
  end)

  it("never uses the address a PASV reply names", function()
    local port
    pid, port = start("foreignpasv")
    local lines = {}
    local s = assert(session(port, {debug = function(l) lines[#lines + 1] = l end}))
    s:set_debuglevel(2)
    local data = assert(s:get("f"))
    assert.equal(1024 * 1024, #data)
    local all = table.concat(lines, "\n")
    assert.matches("192,0,2,1", all)          -- the lie was told
    assert.is_nil(all:find("Trying 192.0.2.1", 1, true))
    assert.matches("Trying 127%.0%.0%.1", all)   -- and ignored
    s:close()
  end)

  -- Lines that are not FTP replies: libcurl would wait for a valid line
  -- until the timeout; the session sees them and stops at once.
  local TIMEOUT = 5
  local function not_ftp(mode, call, quoted)
    local port
    pid, port = start(mode)
    local t0 = require("netlua").monotime()
    local ok, msg, code = call(port)
    local dt = require("netlua").monotime() - t0
    assert.is_nil(ok)
    assert.equal("protocol", code, msg)
    assert.is_true(dt < 1, tostring(dt))  -- the timeout is 5 s
    assert.matches("not an FTP reply", msg)
    assert.is_truthy(msg:find(quoted, 1, true), msg)
    return msg
  end

  it("reports a garbage reply to a command as a protocol error, at once", function()
    local s
    not_ftp("garbage", function(port)
      s = assert(session(port, {timeout = TIMEOUT}))
      return s:sendcmd("NOOP")
    end, '"this is not an ftp reply"')
    -- the connection is dropped; the next call connects again and works
    assert.equal("257 \"/\" is cwd", s:sendcmd("PWD"))
    s:close()
  end)

  it("reports a binary blob as a protocol error, quoted safely", function()
    local msg = not_ftp("binary", function(port)
      local s = assert(session(port, {timeout = TIMEOUT}))
      local ok, msg, code = s:voidcmd("NOOP")
      s:close()
      return ok, msg, code
    end, '"\\x00\\x01\\x02\\xff\\xfePK')
    assert.is_nil(msg:find("[%z\1-\31\127-\255]"), msg)  -- nothing raw in the message
    assert.is_true(#msg < 200, msg)  -- the 300 bytes of the line are cut
  end)

  it("reports a reply code with a letter in it during login", function()
    not_ftp("badcode", function(port)
      return session(port, {timeout = TIMEOUT})
    end, '"2o7 \\"/\\" is cwd"')
  end)

  it("reports a server answering USER with 'hello there'", function()
    not_ftp("hello", function(port)
      return session(port, {timeout = TIMEOUT})
    end, '"hello there"')
  end)

  it("reports a greeting that is not FTP", function()
    local port
    pid, port = start("notftp")
    for _, call in ipairs {
      function() return session(port, {timeout = TIMEOUT}) end,
      function() return ftp.get(("ftp://u:p@127.0.0.1:%d/f"):format(port), {timeout = TIMEOUT}) end,
    } do
      local dt, ok, msg, code = H.timed(call)
      assert.is_nil(ok)
      assert.equal("protocol", code, msg)
      assert.matches('not an FTP reply: "hello there"', msg, 1, true)
      assert.is_true(dt < 1, tostring(dt))
    end
  end)

  it("a server closing mid-transfer gives an error and no local file", function()
    local s = serve("dropmid")
    local dir = H.tmpdir()
    local ok, msg, code = s:get("f", dir .. "/f")
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_true(code == "closed" or code == "protocol", tostring(code))
    assert.is_false(H.exists(dir .. "/f"))
    assert.is_false(H.exists(dir .. "/f.part"))
    H.rm_rf(dir)
    s:close()
  end)

  -- Mirrors the server's four files with parallel = 3, outside a task (the
  -- C fetcher) and inside one (worker sessions); every file must fail and
  -- leave neither a final file nor a .part behind.  check(r, took) looks
  -- at mirror's results.
  local function failing_mirror(mode, check)
    local port
    pid, port = start(mode)
    local dir = H.tmpdir()
    local netlua = require "netlua"
    for _, in_task in ipairs {false, true} do
      local s = assert(session(port))
      local r
      local function go() r = pack(s:mirror("/", dir .. "/copy", {parallel = 3})) end
      local t0 = netlua.monotime()
      if in_task then assert(netlua.run(go)) else go() end
      local took = netlua.monotime() - t0
      s:close()
      assert.is_nil(r[1])
      assert.matches("^mirror: 4 of 4 failed", r[2])
      assert.equal(4, #r[4].failed)
      assert.equal(0, r[4].files)
      check(r, took)
      for i = 1, 4 do
        assert.is_false(H.exists(dir .. "/copy/f" .. i), "f" .. i)
        assert.is_false(H.exists(dir .. "/copy/f" .. i .. ".part"), "f" .. i .. ".part")
      end
    end
    H.rm_rf(dir)
  end

  it("a parallel mirror against a server dying mid-RETR leaves nothing that looks complete", function()
    failing_mirror("dropmany", function() end)
  end)

  it("a parallel mirror stops at once on RETR replies that are not FTP", function()
    failing_mirror("notretr", function(r, took)
      assert.equal("protocol", r[3])
      assert.matches('not an FTP reply: "this is not an ftp reply"', r[4].failed[1].message, 1, true)
      assert.is_true(took < 2, ("took %.2f s against a 5 s timeout"):format(took))
    end)
  end)

  it("mirror never writes outside its folder whatever names the server lists", function()
    local s = serve("traversal")
    local top = H.tmpdir()
    local dir = top .. "/copy"
    -- inside a task, with one file to fetch, mirror uses this one session
    -- and no worker clones (the scripted server serves one client at a
    -- time); the name check is shared by both fetchers
    for round = 1, 2 do
      local n, err
      assert(require("netlua").run(function() n, err = s:mirror("/", dir) end))
      -- the second run finds the file it copied the same, and skips it
      assert.equal(round == 1 and 1 or 0, n and n.files, err)
      assert.equal(1024 * 1024, #H.read_file(dir .. "/ok"))
      assert.is_false(H.exists(top .. "/escape"))
      assert.is_false(H.exists(dir .. "/a"))
      assert.same({"copy"}, (function()
        local t = {}
        for n in io.popen("ls " .. H.shquote(top)):lines() do t[#t + 1] = n end
        return t
      end)())
    end
    H.rm_rf(top)
    s:close()
  end)
end)
