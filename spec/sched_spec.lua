-- netlua.spawn / netlua.run: many conversations at once from one script,
-- with blocking calls yielding inside tasks and blocking outside.
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local H = require "helper"

-- 5.1 and LuaJIT lack table.pack and table.unpack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local unpack = table.unpack or unpack

local MARGIN = 0.5

local fd_count = H.fd_count

-- an echo-upper server task on a free port for n clients, answering each
-- line after `delay`; returns the port
local function upper_server(n, delay)
  return (H.serve(n, function(c)
    -- not lines(): a PUC 5.1 task cannot wait inside a for iterator
    while true do
      local line = c:read("l")
      if not line then break end
      if delay then netlua.sleep(delay) end
      c:write(line:upper(), "\n")
    end
  end))
end

describe("netlua.run", function()
  it("runs many client and server tasks concurrently", function()
    local port = upper_server(20, 0.3)
    local got = {}
    for i = 1, 20 do
      netlua.spawn(function()
        local c = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
        c:write("hello ", i, "\n")
        got[i] = c:read("l")
        c:close()
      end)
    end
    local t = H.timed(function() assert(netlua.run()) end)
    for i = 1, 20 do assert.equal("HELLO " .. i, got[i]) end
    -- each answer waits 0.3 s; one after the other would take 6 s
    assert.is_true(t < 0.3 * 20 / 4, tostring(t))
  end)

  it("the poller watches a descriptor whatever the hint says about it", function()
    -- poller:watch's third argument says the poller has the descriptor
    -- already; a wrong hint costs a failed call, never a lost watch
    local core = require "netlua.core"
    local p = assert(core.poller())
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local c = assert(tcp.connect("127.0.0.1", port, {timeout = 2}))
    local a = assert(srv:accept(2))
    local fd = c:fileno()
    assert.is_true(p:watch(fd, core.WAIT_READ, true))    -- new, said known
    assert.same({}, p:wait(0))
    a:write("x")
    assert.same({fd}, p:wait(1))
    assert.is_true(p:watch(fd, core.WAIT_READ, false))   -- known, said new
    assert.same({fd}, p:wait(1))                         -- still readable
    assert.is_true(p:watch(fd, core.WAIT_READ, true))    -- known, said so
    assert.same({fd}, p:wait(1))
    p:close()
    c:close() a:close() srv:close()
  end)

  it("keeps each call's timeout inside a task", function()
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local result, elapsed, ticks = nil, nil, 0
    netlua.spawn(function()
      local c = assert(tcp.connect("127.0.0.1", port, {timeout = 0.25}))
      elapsed, result = H.timed(function() return select(3, c:read("l")) end)
      c:close()
    end)
    netlua.spawn(function() -- proves the process was not blocked meanwhile
      for _ = 1, 5 do netlua.sleep(0.02) ticks = ticks + 1 end
    end)
    assert(netlua.run())
    srv:close()
    assert.equal("timeout", result)
    assert.is_true(elapsed >= 0.24 and elapsed < 0.25 + MARGIN, tostring(elapsed))
    assert.equal(5, ticks)
  end)

  it("accept times out inside a task", function()
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local code
    netlua.run(function() code = select(2, srv:accept(0.1)) end)
    srv:close()
    assert.equal("timeout", code)
  end)

  it("keeps results of formats read before a yield", function()
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local a, b, c3
    netlua.spawn(function()
      local c = assert(srv:accept(5))
      c:write("first\n")
      netlua.sleep(0.1)
      c:write("second\nthird")
      netlua.sleep(0.1)
      c:write("!\n")
      c:close()
    end)
    netlua.spawn(function()
      local c = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
      a, b, c3 = c:read("l", "L", "l")
      c:close()
    end)
    assert(netlua.run())
    srv:close()
    assert.same({"first", "second\n", "third!"}, {a, b, c3})
  end)

  it("writes big payloads across yields without losing or repeating bytes", function()
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local chunks = {}
    for i = 1, 64 do chunks[i] = string.rep(string.char(64 + i % 26), 65536 - i) end
    local payload = table.concat(chunks)
    local received
    netlua.spawn(function()
      local c = assert(srv:accept(5))
      local parts = {}
      while true do -- a slow reader makes the writer yield many times
        local s = c:read(100000)
        if not s then break end
        parts[#parts + 1] = s
        netlua.sleep(0.001)
      end
      received = table.concat(parts)
      c:close()
    end)
    netlua.spawn(function()
      local c = assert(tcp.connect("127.0.0.1", port, {timeout = 10}))
      assert(c:write(unpack(chunks, 1, 32)))
      assert.equal(#table.concat(chunks, "", 33), c:send(table.concat(chunks, "", 33)))
      c:close()
    end)
    assert(netlua.run())
    srv:close()
    assert.equal(#payload, #received)
    assert.is_true(payload == received)
  end)

  it("a failing task does not stop the others", function()
    local done = false
    local old = netlua.sched.onerror
    local seen
    netlua.sched.onerror = function(msg) seen = msg end
    netlua.spawn(function() error("boom") end)
    netlua.spawn(function() netlua.sleep(0.05) done = true end)
    local ok, err, code, all = netlua.run()
    netlua.sched.onerror = old
    assert.is_nil(ok)
    assert.matches("boom", err)
    assert.equal("task", code)
    assert.equal(1, #all)
    assert.matches("boom", seen)
    assert.is_true(done)
  end)

  it("runs a single entry point and lets tasks spawn tasks", function()
    local order = {}
    assert(netlua.run(function(x)
      order[#order + 1] = x
      netlua.spawn(function() netlua.sleep(0.01) order[#order + 1] = "child" end)
      netlua.sched.yield()
      order[#order + 1] = "parent"
    end, "start"))
    assert.same({"start", "parent", "child"}, order)
  end)

  it("the same calls block outside a task", function()
    assert.is_false(netlua.sched.active())
    local t = H.timed(netlua.sleep, 0.05)
    assert.is_true(t >= 0.05)
    local srv = assert(tcp.listen("127.0.0.1", 0))
    assert.equal("timeout", select(2, srv:accept(0.05)))
    srv:close()
  end)

  it("leaves no descriptors behind", function()
    local before = fd_count()
    local port = upper_server(30)
    for i = 1, 30 do
      netlua.spawn(function()
        local c = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
        c:write(i, "\n")
        assert.equal(tostring(i), c:read("l"))
        c:close()
      end)
    end
    assert(netlua.run())
    collectgarbage() collectgarbage()
    assert.equal(before, fd_count())
  end)

  it("a name that does not resolve fails only its own task", function()
    local port = upper_server(1)
    local bad, good
    netlua.spawn(function() bad = {tcp.connect("no-such-host.invalid", 80, {timeout = 2})} end)
    netlua.spawn(function()
      local c = assert(tcp.connect("127.0.0.1", port, {timeout = 2}))
      c:write("fine\n")
      good = c:read("l")
      c:close()
    end)
    assert(netlua.run())
    assert.is_nil(bad[1])
    assert.equal("resolve", bad[3])
    assert.equal("FINE", good)
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() netlua.spawn(42) end,
      "bad argument #1 to 'spawn' (function expected, got number)")
  end)
end)

describe("netlua.wait", function()
  it("returns the objects that are ready, or times out", function()
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local c = assert(tcp.connect("127.0.0.1", port, {timeout = 2}))
    local a = assert(srv:accept(2))
    local t, r, msg, code = H.timed(netlua.wait, {a, c}, 0.1)
    assert.is_nil(r)
    assert.equal("timeout", code)
    assert.equal("wait: timeout", msg)
    assert.is_true(t < 0.1 + MARGIN)
    c:write("x")
    r = assert(netlua.wait({a, c}, 1))
    assert.equal(1, #r)
    assert.equal(a, r[1])
    r = assert(netlua.wait({c}, 1, "w"))
    assert.equal(c, r[1])
    assert.has_error(function() netlua.wait({a}, 1, "x") end)
    assert.has_error(function() netlua.wait(5) end)
    a:close() c:close() srv:close()
  end)

  it("inside a task waits as a task, on several descriptors at once", function()
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local c = assert(tcp.connect("127.0.0.1", port, {timeout = 2}))
    local a = assert(srv:accept(2))
    local c2 = assert(tcp.connect("127.0.0.1", port, {timeout = 2}))
    local a2 = assert(srv:accept(2))
    local ticks, got, timed = 0, nil, nil
    assert(netlua.run(function()
      netlua.spawn(function()  -- runs only if the waits below yield
        for _ = 1, 5 do netlua.sleep(0.02) ticks = ticks + 1 end
        c2:write("x")  -- the second of the two wakes the waiter
      end)
      local t0 = netlua.monotime()
      local r = assert(netlua.wait({a, a2:fileno()}, 5))
      got = {#r, r[1], netlua.monotime() - t0}
      local t, none, msg, code = H.timed(netlua.wait, {a}, 0.1)
      timed = {none, msg, code, t}
      assert.has_error(function() netlua.wait({a}, 1, "x") end)
    end))
    assert.equal(5, ticks)
    assert.same({1, a2:fileno()}, {got[1], got[2]})
    assert.is_true(got[3] >= 0.09 and got[3] < 5, tostring(got[3]))
    assert.same({nil, "wait: timeout", "timeout"}, {timed[1], timed[2], timed[3]})
    assert.is_true(timed[4] >= 0.09 and timed[4] < 0.1 + MARGIN, tostring(timed[4]))
    a:close() c:close() a2:close() c2:close() srv:close()
  end)
end)

describe("Telnet and UDP under netlua.run", function()
  local telnet = require "netlua.telnet"
  local udp = require "netlua.udp"
  local pids = {}

  setup(function()
    -- everything in this file already runs in a private namespace
    -- (scripts/netns.sh); the datagrams below go to 127.0.0.1 only
    H.require_netns()
  end)
  teardown(function() for _, p in ipairs(pids) do H.kill(p) end end)

  local function router(delay, mode)
    local port = H.free_port()
    pids[#pids + 1] = H.lua_server("router", port, delay, mode or "ok")
    return port
  end

  it("drives 200 Telnet sessions (plus busybox shells) with 3 commands each, 10 failing alone", function()
    local before = fd_count()
    local good = {router(0.02), router(0.02)}
    local dies, stalls = router(0.02, "die"), router(0.02, "stall")
    local bbport = H.free_port()
    local bb = H.spawn(("%s telnetd -F -p %d -b 127.0.0.1 -l /bin/sh"):format(
      assert(H.busybox(), "busybox missing: run sh scripts/deps.sh test"), bbport))
    pids[#pids + 1] = bb
    H.wait_port("127.0.0.1", bbport)
    local res = {}
    local function router_session(i, port)
      local tn = assert(telnet.open("127.0.0.1", port, {timeout = 5}))
      assert(tn:login{user = "u" .. i, password = "pw", prompt = "r%d+> $"})
      local r = {}
      for k, line in ipairs {"hostname", "echo hello " .. i, "show version"} do
        local t0 = netlua.monotime()
        local out, msg, code = tn:cmd(line, {timeout = 1})
        r[k] = {out = out, msg = msg, code = code, t = netlua.monotime() - t0}
        if not out then break end
      end
      res[i] = r
      tn:close()
    end
    local function shell_session(i)
      -- busybox telnetd listens with a backlog of 1: connections that
      -- arrive together wait for SYN-ACK retries; real fleets are many
      -- servers, so space these few out
      netlua.sleep((i - 200) * 0.1)
      local tn = assert(telnet.open("127.0.0.1", bbport, {timeout = 10}))
      local t0 = netlua.monotime()
      local ok, msg, code = tn:login{}
      assert(ok, ("%s (%s after %.2f s)"):format(tostring(msg), tostring(code), netlua.monotime() - t0))
      res[i] = {{out = tn:cmd("echo shell " .. i)}, {out = tn:cmd("expr " .. i .. " + 1")},
                {out = tn:cmd("printf 'a\\nb\\n'")}}
      tn:close()
    end
    for i = 1, 190 do netlua.spawn(router_session, i, good[i % 2 + 1]) end
    for i = 191, 195 do netlua.spawn(router_session, i, dies) end
    for i = 196, 200 do netlua.spawn(router_session, i, stalls) end
    for i = 201, 205 do netlua.spawn(shell_session, i) end
    local t = H.timed(function() assert(netlua.run()) end)

    local hosts = {}
    for i = 1, 190 do
      local r = assert(res[i], "session " .. i)
      assert.matches("^r%d+\n$", r[1].out)
      hosts[r[1].out] = true
      assert.equal("hello " .. i .. "\n", r[2].out)
      assert.equal("Version 1.2.3\nUptime 5 days\n", r[3].out)
    end
    local n = 0
    for _ in pairs(hosts) do n = n + 1 end
    assert.is_true(n >= 95, "each server numbers its own connections: " .. n)
    for i = 191, 195 do
      assert.is_nil(res[i][1].out)
      assert.equal("closed", res[i][1].code)
    end
    for i = 196, 200 do
      assert.is_nil(res[i][1].out)
      assert.equal("timeout", res[i][1].code)
      assert.is_true(res[i][1].t < 1 + MARGIN, tostring(res[i][1].t))
    end
    for i = 201, 205 do
      assert.same({"shell " .. i .. "\n", (i + 1) .. "\n", "a\nb\n"},
        {res[i][1].out, res[i][2].out, res[i][3].out})
    end
    -- 5 answers of 20 ms per session: one session after the other, the
    -- routers alone would take 19 s
    assert.is_true(t < 8, tostring(t))
    for _, p in ipairs(pids) do H.kill(p) end
    pids = {}
    collectgarbage() collectgarbage()
    assert.equal(before, fd_count())
  end)

  it("sessions that are never closed give their descriptors back when collected", function()
    local port = router(0)
    local before = fd_count()
    local heap0 = collectgarbage("count")
    for i = 1, 30 do
      netlua.spawn(function()
        local tn = assert(telnet.open("127.0.0.1", port, {timeout = 5}))
        assert(tn:login{user = "u" .. i, password = "pw", prompt = "r%d+> $"})
        assert.matches("^r%d+\n$", tn:cmd("hostname"))
        -- no close: the session is simply dropped
      end)
    end
    assert(netlua.run())
    assert.equal(before, fd_count())
    -- the Lua heap is back near where it was (the sessions are gone)
    assert.is_true(collectgarbage("count") < heap0 + 256, tostring(collectgarbage("count") - heap0))
  end)

  it("a UDP receive waits in its task while others run", function()
    local r = assert(udp.socket())
    assert(r:bind("127.0.0.1", 0))
    local _, port = r:getsockname()
    r:settimeout(2)
    local got, ticks = {}, 0
    netlua.spawn(function()
      for _ = 1, 3 do got[#got + 1] = assert(r:receivefrom()) end
    end)
    netlua.spawn(function()
      local s = assert(udp.socket())
      for i = 1, 3 do
        netlua.sleep(0.05)
        ticks = ticks + 1
        assert(s:sendto("d" .. i, "127.0.0.1", port))
      end
      s:close()
    end)
    assert(netlua.run())
    assert.same({"d1", "d2", "d3"}, got)
    assert.equal(3, ticks)
    r:settimeout(0.1)
    local code
    netlua.run(function() code = select(2, r:receivefrom()) end)
    assert.equal("timeout", code)
    r:close()
  end)
end)

describe("netlua.event and netlua.join", function()
  it("wakes the waiting tasks when set, at once when already set", function()
    local ev = netlua.event()
    local got, t = {}, {}
    for i = 1, 3 do
      netlua.spawn(function()
        local t0 = netlua.monotime()
        got[i] = ev:wait(5)
        t[i] = netlua.monotime() - t0
      end)
    end
    netlua.spawn(function() netlua.sleep(0.05) ev:set() end)
    assert(netlua.run())
    for i = 1, 3 do
      assert.is_true(got[i])
      assert.is_true(t[i] >= 0.04 and t[i] < 0.05 + MARGIN, tostring(t[i]))
    end
    assert.is_true(ev:is_set())
    assert.is_true(ev:wait())  -- set: no wait, even outside a task
    ev:clear()
    assert.is_false(ev:is_set())
  end)

  it("times out a wait within its bound and forgets the waiter", function()
    local ev = netlua.event()
    local r, took
    netlua.run(function()
      local t0 = netlua.monotime()
      r = pack(ev:wait(0.1))
      took = netlua.monotime() - t0
    end)
    assert.same({n = 3, nil, "wait: timeout", "timeout"}, r)
    assert.is_true(took >= 0.09 and took < 0.1 + MARGIN, tostring(took))
    assert.same({}, ev.waiters)
  end)

  it("refuses to block outside a task, and a wait nobody can end is a deadlock", function()
    local ev = netlua.event()
    assert.same({nil, "wait: timeout", "timeout"}, {ev:wait(0)})
    assert.has_error(function() ev:wait() end,
      "event:wait blocks only inside a task of netlua.run (nothing else could set it)")
    assert.has_error(function() ev:wait("soon") end)
    local ok, err = pcall(netlua.run, function() ev:wait() end)
    assert.is_false(ok)
    assert.matches("deadlock", err)
    -- the stuck task is still there: set the event and let it finish
    ev:set()
    assert(netlua.run())
  end)

  it("join returns what the task returned, its error, or a timeout", function()
    local results = {}
    local sched = require "netlua.sched"
    local onerror = sched.onerror
    sched.onerror = function() end  -- the failing task is on purpose
    netlua.run(function()
      local a = netlua.spawn(function(x) netlua.sleep(0.05) return x, "two" end, "one")
      local b = netlua.spawn(function() netlua.sleep(0.02) error("boom", 0) end)
      local c = netlua.spawn(function() netlua.sleep(0.5) end)
      results.a = pack(netlua.join(a))
      results.b = pack(netlua.join(b, 5))
      results.c = pack(netlua.join(c, 0.05))
      results.c2 = pack(netlua.join(c))
      results.again = pack(netlua.join(a))  -- ended: answers at once
    end)
    sched.onerror = onerror
    assert.same({n = 3, true, "one", "two"}, results.a)
    assert.same({n = 3, nil, "boom", "task"}, results.b)
    assert.same({n = 3, nil, "join: timeout", "timeout"}, results.c)
    assert.same({n = 1, true}, results.c2)
    assert.same({n = 3, true, "one", "two"}, results.again)
    assert.has_error(function() netlua.join(coroutine.create(function() end)) end,
      "bad argument #1 to 'join' (a task from netlua.spawn expected)")
  end)
end)
