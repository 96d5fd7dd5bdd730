-- Closing an object that another task waits on (inside netlua.run): the
-- waiting call wakes at once and returns nil, "<op>: closed", "closed",
-- the poller forgets the descriptor before it is closed (its number may be
-- reused at once), and no descriptor is left behind.
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local udp = require "netlua.udp"
local telnet = require "netlua.telnet"
local ftp = require "netlua.ftp"
local H = require "helper"

-- math.type is 5.3+; before, a number is an integer when it has no fraction
local mtype = math.type or function(x)
  if type(x) == "number" then return x % 1 == 0 and "integer" or "float" end
end

-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local F = require "ftp_helper"

local fd_count = H.fd_count

-- every waiting call below has this timeout: before the fix they sat it
-- out; now they must come back long before
local WAIT = 3
local PROMPT = 0.5

-- A listening socket nobody accepts from: connections to it complete in
-- the kernel's backlog and then hear nothing.  Closed by after_each.
local listeners = {}
local function silent_port()
  local srv = assert(tcp.listen("127.0.0.1", 0))
  listeners[#listeners + 1] = srv
  local _, port = srv:getsockname()
  return port
end

-- Inside one netlua.run: a task makes an object with make(), then waits
-- in waiter(obj) while a second task closes it 0.1 s later (with
-- closer(obj), default obj:close()).  Returns the seconds the waiting
-- call took, what it returned (packed) and the object.
local function close_under(make, waiter, closer)
  local took, res, obj
  netlua.spawn(function()
    obj = make()
    netlua.spawn(function()
      netlua.sleep(0.1)
      if closer then closer(obj) else obj:close() end
    end)
    local t0 = netlua.monotime()
    res = pack(waiter(obj))
    took = netlua.monotime() - t0
  end)
  assert(netlua.run())
  return took, res, obj
end

-- A UDP socket on descriptor number fd, just freed.  Usually the first
-- socket gets it (the lowest free number), but garbage collected
-- meanwhile (a popen handle) may have freed a lower one.
local function udp_on(fd)
  local u, spare = nil, {}
  for _ = 1, 50 do
    u = assert(udp.socket())
    if u:fileno() == fd then break end
    spare[#spare + 1] = u
  end
  for _, x in ipairs(spare) do x:close() end
  assert.equal(fd, u:fileno())
  return u
end

-- make(): a TCP client connected to a silent listener
-- Inside a task: a UDP socket made on descriptor number fd (udp_on)
-- must hear `word`, sent to it 0.05 s later, at once, i.e. nothing
-- registered for the old object on that number gets in the way.
-- Returns what it received and how long that took.
local function hears(fd, word)
  local u = udp_on(fd)
  assert(u:bind("127.0.0.1", 0))
  local _, uport = u:getsockname()
  u:settimeout(WAIT)
  netlua.spawn(function()
    netlua.sleep(0.05)
    local s = assert(udp.socket())
    assert(s:sendto(word, "127.0.0.1", uport))
    s:close()
  end)
  local t0 = netlua.monotime()
  local got = u:receivefrom()
  local took = netlua.monotime() - t0
  u:close()
  return got, took
end

local function tcp_client(timeout)
  local port = silent_port()
  return function()
    local c = assert(tcp.connect("127.0.0.1", port, {timeout = 2}))
    c:settimeout(timeout)
    return c
  end
end

describe("closing an object another task waits on", function()
  local before

  -- the UDP datagrams here go to 127.0.0.1 only; still, no spec sends
  -- outside the private namespace
  setup(function() H.require_netns() end)

  before_each(function()
    assert(netlua.run(function() end))  -- the scheduler's poller lives on
    before = fd_count()
  end)

  after_each(function()
    for _, l in ipairs(listeners) do l:close() end
    listeners = {}
    assert.equal(before, fd_count())
  end)

  it("wakes a TCP read with nil, 'read: closed', 'closed'", function()
    local took, r, c = close_under(tcp_client(WAIT), function(s) return s:read("l") end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 3, nil, "read: closed", "closed"}, r)
    assert.matches("%(closed%)", tostring(c))
  end)

  it("wakes a TCP read that has no timeout at all", function()
    -- without the wake-up this waits forever: run it in a child process
    -- that is killed after a while
    local script = os.tmpname()
    H.write_file(script, [[
      local netlua, tcp = require "netlua", require "netlua.tcp"
      local srv = assert(tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c = assert(tcp.connect("127.0.0.1", port, {timeout = 2}))
      c:settimeout(nil)
      local r, t0
      netlua.spawn(function() t0 = netlua.monotime() r = {c:read(10)} end)
      netlua.spawn(function() netlua.sleep(0.1) c:close() end)
      assert(netlua.run())
      print(("%.3f|%s|%s|%s"):format(netlua.monotime() - t0, tostring(r[1]), tostring(r[2]), tostring(r[3])))
    ]])
    local env = ("LUA_PATH=%s LUA_CPATH=%s "):format(
      H.shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;"),
      H.shquote(H.root .. "/" .. H.build .. "/?.so;;"))
    local out = H.sh(env .. "timeout -s KILL 10 " .. H.lua .. " " .. H.shquote(script))
    os.remove(script)
    local took, a, b, c = out:match("([%d.]+)|(.-)|(.-)|(%S+)")
    assert.is_not_nil(took, out)
    assert.is_true(tonumber(took) < PROMPT, took)
    assert.same({"nil", "read: closed", "closed"}, {a, b, c})
  end)

  it("wakes LuaSocket's receive with nil, 'closed', partial", function()
    local took, r = close_under(tcp_client(WAIT), function(s) return s:receive("*l", "pre") end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 3, nil, "closed", "pre"}, r)
  end)

  it("ends a lines() loop", function()
    if H.puc51 then return pending("PUC 5.1 cannot yield out of a for iterator: the read blocks, and no task can close it") end
    local took, r = close_under(tcp_client(WAIT), function(s)
      local n = 0
      for _ in s:lines() do n = n + 1 end
      return n
    end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 1, 0}, r)
  end)

  it("wakes a TCP write blocked on a full socket", function()
    local big = ("x"):rep(32 * 1024 * 1024)  -- far more than the socket buffers hold
    local took, r = close_under(tcp_client(WAIT), function(s) return s:write(big) end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 3, nil, "write: closed", "closed"}, r)
  end)

  it("wakes LuaSocket's send with nil, 'closed', last byte sent", function()
    local big = ("x"):rep(32 * 1024 * 1024)
    local took, r = close_under(tcp_client(WAIT), function(s) return s:send(big) end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.equal(3, r.n)
    assert.is_nil(r[1])
    assert.equal("closed", r[2])
    assert.is_true(mtype(r[3]) == "integer" and r[3] > 0 and r[3] < #big, tostring(r[3]))
  end)

  it("wakes an accept when the server is closed", function()
    local took, r = close_under(function() return assert(tcp.listen("127.0.0.1", 0)) end,
      function(s) return s:accept(WAIT) end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 4, nil, "closed", "accept: closed", "closed"}, r)
  end)

  it("wakes a UDP receivefrom, receivemany, receivedatas and receivepacked", function()
    for _, call in ipairs {
      {"receivefrom", function(u) return u:receivefrom() end, ls = true},
      {"receivemany", function(u) return u:receivemany(8) end},
      {"receivedatas", function(u) return u:receivedatas(8) end},
      {"receivepacked", function(u) return u:receivepacked(8) end},
    } do
      local took, r = close_under(function()
        local u = assert(udp.socket())
        assert(u:bind("127.0.0.1", 0))
        u:settimeout(WAIT)
        return u
      end, call[2])
      assert.is_true(took < PROMPT, call[1] .. " " .. took)
      if call.ls then  -- LuaSocket's name: its bare "closed" first
        assert.same({n = 4, nil, "closed", call[1] .. ": closed", "closed"}, r)
      else
        assert.same({n = 3, nil, call[1] .. ": closed", "closed"}, r)
      end
    end
  end)

  it("wakes Telnet reads and expect", function()
    for _, call in ipairs {
      {"read_until", function(t) return t:read_until("login:") end},
      {"read_some", function(t) return t:read_some() end},
      {"read_all", function(t) return t:read_all() end},
      {"expect", function(t) return t:expect({"login:", "%$ $"}) end},
    } do
      local port = silent_port()
      local took, r = close_under(function()
        return assert(telnet.open("127.0.0.1", port, {timeout = WAIT}))
      end, call[2])
      assert.is_true(took < PROMPT, call[1] .. " " .. took)
      assert.same({n = 3, nil, ("%s 127.0.0.1:%d: closed"):format(call[1], port), "closed"}, r)
    end
  end)

  it("wakes the waiter when the closing task leaves a <close> scope", function()
    if not H.close_scope then return pending("to-be-closed variables need Lua 5.4") end
    local took, r = close_under(tcp_client(WAIT), function(s) return s:read("l") end,
      function(s)
        H.close_scope(s, function() netlua.sleep(0.01) end)
      end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 3, nil, "read: closed", "closed"}, r)
  end)

  it("lets the closer reuse the descriptor number at once", function()
    local b = {}
    local took, r = close_under(tcp_client(WAIT), function(s) return s:read("l") end,
      function(c)
        local fd = c:fileno()
        c:close()
        b.data, b.took = hears(fd, "hello")
      end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 3, nil, "read: closed", "closed"}, r)
    assert.equal("hello", b.data)
    assert.is_true(b.took < PROMPT, tostring(b.took))
  end)

  it("leaves no registration behind an object that is collected", function()
    local make = tcp_client(0.05)
    local fd
    assert(netlua.run(function()
      local c = make()
      fd = c:fileno()
      assert.equal("timeout", select(3, c:read("l")))
      -- dropped without close: __gc closes it
    end))
    collectgarbage() collectgarbage()
    local got, took
    netlua.spawn(function() got, took = hears(fd, "again") end)
    assert(netlua.run())
    assert.equal("again", got)
    assert.is_true(took < PROMPT, tostring(took))
  end)

  it("still raises for a call made on an object already closed", function()
    local c = tcp_client(WAIT)()
    c:close()
    assert.has_error(function() c:read("l") end, "attempt to use a closed socket")
    assert(netlua.run(function()
      assert.has_error(function() c:read("l") end, "attempt to use a closed socket")
    end))
  end)
end)

describe("closing an FTP session another task waits on", function()
  local before

  -- an in-process FTP server task: with greet, logs one client in and
  -- then answers nothing until the client goes away; without, says
  -- nothing at all
  before_each(function()
    assert(netlua.run(function() end))
    before = fd_count()
  end)

  after_each(function()
    assert.equal(before, fd_count())
  end)

  it("wakes a sendcmd with nil, 'sendcmd: closed', 'closed'", function()
    local port = F.task_server("mute")
    local took, r, s = close_under(function()
      return assert(ftp.new{host = "127.0.0.1", port = port, user = "u", password = "p",
        timeout = WAIT})
    end, function(x) return x:sendcmd("NOOP") end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 3, nil, "sendcmd: closed", "closed"}, r)
    assert.equal("netlua.ftp (closed)", tostring(s))
  end)

  it("wakes a connect waiting for the greeting", function()
    local port = F.task_server("mute", 1, false)
    local took, r = close_under(function() return ftp.new{timeout = WAIT} end,
      function(x) return x:connect("127.0.0.1", port) end)
    assert.is_true(took < PROMPT, tostring(took))
    assert.same({n = 3, nil, ("connect 127.0.0.1:%d: closed"):format(port), "closed"}, r)
  end)
end)
