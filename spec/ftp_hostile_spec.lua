-- netlua.ftp against a scripted server that splits, stretches and garbles
-- its replies, lies in PASV and dies mid-transfer.
local H = require "helper"
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

  it("reassembles replies split across packets", function()
    local port
    pid, port = start("split")
    local s = assert(session(port))
    assert.equal("220 hostile server ready", s:getwelcome())
    assert.equal("200 noop", s:voidcmd("NOOP"))
    assert.equal(1024 * 1024, #assert(s:get("f")))
    s:close()
  end)

  it("keeps multi-line replies whole", function()
    local port
    pid, port = start("multiline")
    local s = assert(session(port))
    assert.equal("220-Welcome\n220-to the\n  indented text\n220 hostile server", s:getwelcome())
    assert.equal("200-first\n second\n200-third\n200 done", s:voidcmd("NOOP"))
    s:close()
  end)

  it("survives an over-long reply line", function()
    local port
    pid, port = start("longline")
    local s = assert(session(port))
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

  it("reports garbage replies as a protocol error", function()
    local port
    pid, port = start("garbage")
    local s = assert(session(port, {timeout = 1}))
    local dt, ok, msg, code = H.timed(s.sendcmd, s, "NOOP")
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_true(code == "protocol" or code == "timeout" or code == "closed", tostring(code))
    assert.is_true(dt < 1 + 1, tostring(dt))
    s:close()
  end)

  it("a server closing mid-transfer gives an error and no local file", function()
    local port
    pid, port = start("dropmid")
    local s = assert(session(port))
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

  it("mirror never writes outside its folder whatever names the server lists", function()
    local port
    pid, port = start("traversal")
    local s = assert(session(port))
    local top = H.tmpdir()
    local dir = top .. "/copy"
    -- inside a task mirror fetches over this one session (the scripted
    -- server serves one client at a time); the name check is shared
    for _ = 1, 2 do
      local n, err
      assert(require("netlua").run(function() n, err = s:mirror("/", dir) end))
      assert.equal(1, n, err)
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
