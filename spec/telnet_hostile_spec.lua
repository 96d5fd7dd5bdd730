-- The Telnet session against a scripted hostile server
-- (spec/servers/telnet_hostile.lua): exact bytes delivered to the script
-- and exact replies the server received, for every case DESIGN.md lists.
local H = require "helper"
local netlua = require "netlua"
local telnet = require "netlua.telnet"

local function b(...) return string.char(...) end
local IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240

describe("telnet session vs a hostile server", function()
  local srv = H.scripted_server("telnet_hostile")
  setup(srv.start)
  teardown(srv.stop)

  -- runs a scenario: returns the data read_all got and the replies sent
  local function run(name, opts)
    local s = assert(telnet.open("127.0.0.1", srv.port, opts or {timeout = 10}))
    assert(s:write(name .. "\n"))
    local data, code = s:read_all()
    s:close()
    local out, deadline = srv.dir .. "/" .. name .. ".out", netlua.monotime() + 5
    while not H.exists(out) and netlua.monotime() < deadline do netlua.sleep(0.01) end
    local replies = H.read_file(out)
    os.remove(out)
    return data, replies, code
  end

  it("survives commands split at every byte", function()
    local data, replies = run("split")
    assert.equal("start\r\na\255b\255\255bare\rcr\r\nend", data)
    -- TTYPE refused (no terminal), ECHO and SGA accepted, SEND ignored
    assert.equal(b(IAC, WONT, 24, IAC, DO, 1, IAC, DO, 3), replies)
  end)

  it("delivers IAC IAC at random chunk boundaries as single 0xFF bytes", function()
    local data, replies = run("iaciac")
    local t, seed = {}, 7
    for i = 1, 3000 do
      seed = (seed * 48271) % 2147483647  -- as the server: exact on every Lua
      t[i] = (seed % 11 == 0) and "\255" or string.char(65 + seed % 26)
    end
    assert.equal(table.concat(t), data)
    assert.equal("", replies)
  end)

  it("keeps 0xFF inside SB out of the data", function()
    local data = run("sbff")
    assert.equal("after sb", data)
  end)

  it("drops an SB longer than its buffer, up to IAC SE", function()
    local data, replies = run("longsb", {timeout = 10, terminal = "XTERM"})
    assert.equal("after long sb", data)
    assert.equal("", replies)
  end)

  it("ignores an uninvited COMPRESS2 and never inflates", function()
    local data, replies = run("compress")
    assert.equal("x\156\203\72\205plain", data)
    assert.equal(b(IAC, DONT, 86), replies)
  end)

  it("answers a refused option once although the peer repeats it 500 times", function()
    local data, replies = run("refused")
    assert.equal("done", data)
    assert.equal(b(IAC, WONT, 86, IAC, DONT, 86), replies)
  end)

  it("swallows NOP/GA/AYT/DM/BRK/IP/EOR and unknown commands", function()
    local data, replies = run("cmds")
    assert.equal("abcdefghij", data)
    assert.equal("", replies)
  end)

  it("drops a lone IAC at EOF", function()
    local data = run("loneiac")
    assert.equal("end", data)
  end)

  it("reads a 4 MiB line with no newline", function()
    local s = assert(telnet.open("127.0.0.1", srv.port, {timeout = 10}))
    assert(s:write("bigline\n"))
    local ok, _, code, data = s:read_until("\n")
    assert.is_nil(ok)
    assert.equal(4 * 1024 * 1024, #data)
    assert.equal(("x"):rep(4 * 1024 * 1024), data)
    assert.equal("closed", code)
    local _, _, c2 = s:read_until("\n")
    assert.equal("closed", c2)
    s:close()
  end)

  it("refuses to buffer a 4 MiB line past max_buffer, and can still be drained", function()
    local s = assert(telnet.open("127.0.0.1", srv.port, {timeout = 10, max_buffer = 1024 * 1024}))
    assert(s:write("bigline\n"))
    local ok, msg, code = s:read_until("\n")
    assert.is_nil(ok)
    assert.equal("limit", code)
    assert.matches("max_buffer", msg)
    local total = 0
    repeat
      local d = s:read_some()
      if d then total = total + #d end
    until not d
    assert.equal(4 * 1024 * 1024, total)
    s:close()
  end)

  it("assembles a one-byte drip", function()
    local data, replies = run("drip")
    assert.equal("drip\r\nok\255\r!", data)
    assert.equal(b(IAC, DO, 1), replies)
  end)

  it("answers TTYPE SEND with the terminal list, cycling", function()
    local data, replies = run("ttype", {timeout = 10, terminal = {"XTERM", "VT220"}})
    assert.equal("typed", data)
    local function is(t) return b(IAC, SB, 24, 0) .. t .. b(IAC, SE) end
    assert.equal(b(IAC, WILL, 24) .. is("XTERM") .. is("VT220") .. is("VT220"), replies)
  end)

  it("sends NAWS when the server asks", function()
    local data, replies = run("naws", {timeout = 10, window = {132, 43}})
    assert.equal("sized", data)
    assert.equal(b(IAC, WILL, 31, IAC, SB, 31, 0, 132, 0, 43, IAC, SE), replies)
  end)

  it("answers NEW-ENVIRON with the env table", function()
    local data, replies = run("env", {timeout = 10, env = {USER = "alice"}})
    assert.equal("env", data)
    assert.equal(b(IAC, WILL, 39) .. b(IAC, SB, 39, 0, 0) .. "USER" .. b(1) .. "alice" .. b(IAC, SE), replies)
  end)

  it("lets a negotiation callback answer instead, as telnetlib does", function()
    local s = assert(telnet.open("127.0.0.1", srv.port, {timeout = 10}))
    local seen = {}
    s:set_option_negotiation_callback(function(sock, cmd, opt)
      seen[#seen + 1] = cmd .. ":" .. opt
      assert.equal(s, sock)
      if cmd == telnet.DO then sock:sendall(b(IAC, WONT, opt)) end
      if cmd == telnet.SE then seen[#seen + 1] = sock:read_sb_data() end
    end)
    assert(s:write("nego\n"))
    assert.equal("hi", s:read_all())
    s:close()
    assert.same({"251:1", "251:3", "253:24", "250:0", "240:0", b(24, 1), "241:0"}, seen)
    local out, deadline = srv.dir .. "/nego.out", netlua.monotime() + 5
    while not H.exists(out) and netlua.monotime() < deadline do netlua.sleep(0.01) end
    assert.equal(b(IAC, WONT, 24), H.read_file(out))
    os.remove(out)
  end)

  it("raises a callback's error after the chunk, and stays usable", function()
    local s = assert(telnet.open("127.0.0.1", srv.port, {timeout = 10}))
    s:set_option_negotiation_callback(function() error("boom") end)
    assert(s:write("nego\n"))
    assert.has_error(function() s:read_all() end, nil)
    s:set_option_negotiation_callback(nil)
    local rest = s:read_all()
    assert.equal("hi", rest)
    s:close()
  end)

  it("forbids reads from inside the callback", function()
    local s = assert(telnet.open("127.0.0.1", srv.port, {timeout = 10}))
    local err
    s:set_option_negotiation_callback(function(sock)
      local ok, e = pcall(sock.read_some, sock)
      if not ok then err = e end
    end)
    assert(s:write("nego\n"))
    s:read_all()
    s:close()
    assert.matches("inside the negotiation callback", err)
  end)

  it("returns partial data then closed when the peer vanishes mid-line", function()
    local s = assert(telnet.open("127.0.0.1", srv.port, {timeout = 10}))
    assert(s:write("vanish\n"))
    local none, msg0, code, data = s:read_until("\n")
    assert.is_nil(none)
    assert.equal("read_until 127.0.0.1:" .. srv.port .. ": closed by peer", msg0)
    assert.equal("partial line", data)
    assert.equal("closed", code)
    local ok, msg, c = s:read_until("\n")
    assert.is_nil(ok)
    assert.equal("closed", c)
    assert.matches("closed", msg)
    s:close()
  end)
end)
