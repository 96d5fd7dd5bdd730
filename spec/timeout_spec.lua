-- One rule for every timeout netlua takes, as an argument or as the
-- `timeout` option of a constructor (csrc/timeout.c; core.timeout for the
-- Lua modules): nil is the default, a negative number blocks, NaN raises
-- (it blocked forever in some places before, through comparisons that
-- are all false), and what is no number raises naming the argument or
-- the option.
local netlua = require "netlua"
local tcp, telnet, ftp, mc, lookup =
  netlua.tcp, netlua.telnet, netlua.ftp, netlua.multicast, netlua.lookup
local udp = require "netlua.udp"
local H = require "helper"
-- it builds multicast objects (each must raise before any socket exists):
-- like every multicast spec, only inside the private namespace
H.require_netns()

local NaN = 0 / 0

local function raises(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for i = 1, select("#", ...) do
    local frag = select(i, ...)
    assert.is_truthy(err:find(frag, 1, true), ("error %q lacks %q"):format(err, frag))
  end
end

describe("a timeout", function()
  local srv, port

  setup(function()
    -- a listener that never accepts: connects still complete (backlog)
    srv = assert(tcp.listen("127.0.0.1", 0))
    port = select(2, srv:getsockname())
  end)

  teardown(function() srv:close() end)

  it("that is NaN raises in every constructor's options", function()
    local opt = "bad option 'timeout' (NaN)"
    raises(function() tcp.connect("127.0.0.1", port, {timeout = NaN}) end, opt)
    raises(function() telnet.open("127.0.0.1", port, {timeout = NaN}) end, opt)
    raises(function() ftp.new{timeout = NaN} end, opt)
    raises(function() lookup.getaddrinfo("localhost", 80, {timeout = NaN}) end, opt)
    raises(function() lookup.getnameinfo("127.0.0.1", 80, {timeout = NaN}) end, opt)
    raises(function() mc.socket{timeout = NaN} end, "bad option 'timeout' to 'socket' (NaN)")
    raises(function() udp.socket{timeout = NaN} end, "bad option 'timeout' to 'socket' (NaN)")
    raises(function() mc.receiver{group = "239.1.2.3", port = 5000, timeout = NaN} end,
      "bad option 'timeout' to 'receiver' (NaN)")
    raises(function() mc.sender{timeout = NaN} end, "bad option 'timeout' to 'sender' (NaN)")
  end)

  it("that is NaN raises as an argument", function()
    local c = assert(tcp.connect("127.0.0.1", port))
    local master = assert(tcp.tcp())
    local u = assert(mc.socket())
    local f = ftp.new{}
    local tn = assert(telnet.open("127.0.0.1", port, {timeout = 1}))
    for _, o in ipairs {c, srv, master, u, f, tn} do
      raises(function() o:settimeout(NaN) end, "bad argument", "(NaN)")
    end
    raises(function() srv:accept(NaN) end, "bad argument", "'accept' (NaN)")
    raises(function() tn:read_until("$ ", NaN) end, "bad argument", "'read_until' (NaN)")
    raises(function() tn:read_all(NaN) end, "bad argument", "'read_all' (NaN)")
    raises(function() tn:read_some(NaN) end, "bad argument", "'read_some' (NaN)")
    raises(function() tn:expect({"$ "}, NaN) end, "bad argument", "'expect' (NaN)")
    raises(function() f:connect("127.0.0.1", port, NaN) end, "bad argument", "'connect' (NaN)")
    raises(function() netlua.wait({c}, NaN) end, "bad argument #2", "(NaN)")
    raises(function() netlua.event():wait(NaN) end, "bad argument #1 to 'wait' (NaN)")
    for _, o in ipairs {c, master, u, f, tn} do o:close() end
  end)

  it("that is NaN raises in the device helpers' options", function()
    local tn = assert(telnet.open("127.0.0.1", port, {timeout = 1}))
    raises(function() tn:login{user = "u", password = "p", timeout = NaN} end,
      "bad option 'timeout' to 'login' (NaN)")
    raises(function() tn:find_prompt{timeout = NaN} end, "bad option 'timeout' to 'find_prompt' (NaN)")
    raises(function() tn:cmd("show version", {timeout = NaN}) end, "bad option 'timeout' to 'cmd' (NaN)")
    raises(function() tn:cmds({"show version"}, {timeout = NaN}) end, "bad option 'timeout' to 'cmds' (NaN)")
    tn:close()
  end)

  it("that is NaN raises inside a task too", function()
    local c = assert(tcp.connect("127.0.0.1", port))
    local tn = assert(telnet.open("127.0.0.1", port, {timeout = 1}))
    local ev = netlua.event()
    local errs = {}
    netlua.spawn(function()
      local other = netlua.spawn(function() end)
      local tries = {
        function() return netlua.wait({c}, NaN) end,
        function() return ev:wait(NaN) end,
        function() return netlua.join(other, NaN) end,
        function() return tn:read_until("$ ", NaN) end,
        function() return srv:accept(NaN) end,
      }
      for i, f in ipairs(tries) do
        local ok, err = pcall(f)
        errs[i] = not ok and tostring(err) or "no error"
      end
    end)
    assert(netlua.run())
    assert.matches("bad argument #2 to 'wait' %(NaN%)", errs[1])
    assert.matches("bad argument #1 to 'wait' %(NaN%)", errs[2])
    assert.matches("bad argument #2 to 'join' %(NaN%)", errs[3])
    assert.matches("'read_until' %(NaN%)", errs[4])
    assert.matches("'accept' %(NaN%)", errs[5])
    c:close()
    tn:close()
  end)

  it("that is no number raises naming the argument or the option", function()
    local opt = "bad option 'timeout' (number expected, got table)"
    raises(function() tcp.connect("127.0.0.1", port, {timeout = {}}) end, opt)
    raises(function() telnet.open("127.0.0.1", port, {timeout = {}}) end, opt)
    raises(function() ftp.new{timeout = {}} end, opt)
    raises(function() lookup.getaddrinfo("localhost", 80, {timeout = {}}) end, opt)
    raises(function() mc.socket{timeout = true} end,
      "bad option 'timeout' to 'socket' (number expected, got boolean)")
    local c = assert(tcp.connect("127.0.0.1", port))
    raises(function() c:settimeout("soon") end, "bad argument", "(number expected, got string)")
    raises(function() netlua.event():wait("soon") end,
      "bad argument #1 to 'wait' (number expected, got string)")
    c:close()
  end)

  it("that is negative blocks, and nil is the default", function()
    local c = assert(tcp.connect("127.0.0.1", port, {timeout = -5}))
    assert.is_nil(c:gettimeout())
    assert.equal(1, c:settimeout(2.5))
    assert.equal(2.5, c:gettimeout())
    c:settimeout(-1)
    assert.is_nil(c:gettimeout())
    c:settimeout(2)
    c:settimeout(nil)
    assert.is_nil(c:gettimeout())
    c:close()
    local tn = assert(telnet.open("127.0.0.1", port, {timeout = -1}))
    assert.is_nil(tn:gettimeout())
    tn:close()
    local u = assert(mc.socket{timeout = -1})
    assert.is_nil(u:gettimeout())
    u:close()
    u = assert(mc.socket{timeout = 3})
    assert.equal(3, u:gettimeout())
    u:close()
    -- a string Lua converts to a number is one, as everywhere in Lua
    u = assert(mc.socket{timeout = "1.5"})
    assert.equal(1.5, u:gettimeout())
    u:close()
  end)
end)
