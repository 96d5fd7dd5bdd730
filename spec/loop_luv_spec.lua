-- netlua inside luv (netlua.loop.use("luv")): Telnet, FTP, UDP and a
-- lookup in coroutines started from luv callbacks, while a uv timer keeps
-- ticking; a close wakes a coroutine waiting on the object; many lookups
-- at once each end; the main thread still blocks, and leaves the loop
-- nothing to do once netlua is done.
local H = require "helper"
local tpack = table.pack or function(...) return {n = select("#", ...), ...} end
local L = require "loop_helper"
local netlua = require "netlua"
local loop = require "netlua.loop"
local uv = require "luv"

-- starts each fn in a coroutine from a uv callback, runs the loop with a
-- 10 ms timer ticking until done(); returns the ticker
local function run(fns, done, limit)
  local t = L.ticker()
  t.start()
  local timer = uv.new_timer()
  timer:start(10, 10, function()
    t.tick()
    if done() then timer:stop() timer:close() end
  end)
  local starter = uv.new_timer()
  starter:start(0, 0, function()
    starter:close()
    for _, fn in ipairs(fns) do coroutine.wrap(fn)() end
  end)
  -- a loop that never ends fails the spec instead of hanging it
  local guard = uv.new_timer()
  guard:start(math.floor((limit or 30) * 1000 * H.slack), 0, function() uv.stop() end)
  guard:unref()
  uv.run()
  guard:close()
  uv.run("nowait")  -- lets the closed handles go
  return t
end

-- PUC Lua 5.1 cannot yield across the C calls between luv's callbacks
-- and the coroutines they resume: a coroutine dies, and luv raises out of
-- uv.run.  LuaJIT and 5.2+ run this spec.
if H.puc51 then
  describe("netlua under luv", function()
    it("runs on LuaJIT and Lua 5.2+", function() pending("PUC Lua 5.1: not supported") end)
  end)
  return
end

describe("netlua under luv", function()
  local srv

  setup(function() srv = L.servers() end)
  teardown(function()
    loop.use(false)
    srv.stop()
  end)
  after_each(function() loop.use(false) end)

  it("runs Telnet, FTP, UDP and a lookup while a uv timer ticks", function()
    assert.equal("luv", loop.use("luv"))
    assert.equal("luv", loop.current())
    local out = {}
    local jobs = L.jobs(srv, out)
    local t = run(jobs, function() return out.finished == #jobs end)
    L.check(srv, out, jobs)
    L.check_ticks(t)
  end)

  it("the timer would see a call that blocks: the same sleep without the adapter", function()
    local t = run({function() netlua.sleep(0.3) end}, function() return true end)
    assert.is_true(t.gap >= 0.25, ("gap %.3f"):format(t.gap))
    loop.use("luv")
    local slept = false
    t = run({function() netlua.sleep(0.3) slept = true end}, function() return slept end)
    assert.is_true(slept)
    L.check_ticks(t)
  end)

  it("wakes a coroutine waiting on an object another one closes", function()
    loop.use("luv")
    local tn = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
    local got, after
    run({
      function() got = tpack(tn:read_until("never sent", 10)) end,
      function()
        netlua.sleep(0.1)
        tn:close()
        -- the number is free again at once: a new session may get it
        local tn2 = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
        after = select(2, tn2:login{user = "admin", password = "secret"})
        tn2:close()
      end,
    }, function() return got ~= nil and after ~= nil end)
    assert.is_table(got)
    assert.is_nil(got[1])
    assert.equal("closed", got[3])
    assert.equal("R1>", after)
  end)

  it("ends 50 lookups at once, each for its own coroutine", function()
    loop.use("luv")
    local fns, res, n = {}, {}, 0
    for i = 1, 50 do
      fns[i] = function()
        local r, err = netlua.lookup.getaddrinfo("localhost", i % 2 == 0 and "ftp" or "telnet")
        res[i] = r and r[1].port or err
        n = n + 1
      end
    end
    local t = run(fns, function() return n == 50 end)
    for i = 1, 50 do assert.equal(i % 2 == 0 and 21 or 23, res[i]) end
    assert.is_true(t.gap < L.MAX_GAP_LOOKUPS, ("gap %.3f"):format(t.gap))
  end)

  it("a coroutine whose data is always there takes turns with the loop", function()
    -- spec/servers/blast.lua keeps the socket full and the reader works
    -- 2 ms a chunk: its reads never wait, not even the first (the data
    -- is there before the coroutine starts), so only the 10 ms slice
    -- netlua.run's tasks get lets the loop's timer run
    loop.use("luv")
    local port = H.free_port()
    local pid = H.lua_server("blast", port, 32)
    local s = assert(netlua.tcp.connect("127.0.0.1", port, {timeout = 30}))
    assert(netlua.wait({s}, 5))
    netlua.sleep(0.05)  -- the socket's buffer fills
    local got
    local t = run({function()
      local n = 0
      while true do
        local d = s:read(256 * 1024)
        if not d then break end
        n = n + #d
        local stop = netlua.monotime() + 0.002
        repeat until netlua.monotime() >= stop
      end
      got = n
    end}, function() return got ~= nil end)
    s:close()
    H.kill(pid)
    assert.equal(32 * 1024 * 1024, got)
    L.check_ticks(t)
  end)

  it("wakes a coroutine whose finished lookup netlua.run took from the bell", function()
    -- mirror runs netlua.run inside the caller's coroutine: the bell is
    -- one per Lua state, and its drain there names this coroutine's key
    loop.use("luv")
    -- one resolver thread, so that the last lookup surely waits its turn
    local threads = netlua.lookup.resolver_threads(1)
    local ports, n = {}, 0
    for i = 1, 20 do
      coroutine.wrap(function()  -- no timeout: only a wake can end them
        ports[i] = assert(netlua.lookup.getaddrinfo("localhost", "ftp"))[1].port
        n = n + 1
      end)()
    end
    local waited = ports[20] == nil
    local ok, err = netlua.run(function() netlua.sleep(0.1) end)
    run({}, function() return n == 20 end, 5)
    netlua.lookup.resolver_threads(threads)
    assert(ok, err)
    assert.is_true(waited, "the last lookup did not wait")
    for i = 1, 20 do assert.equal(21, ports[i]) end
  end)

  it("a socket read under luv still blocks without spinning in the main thread", function()
    loop.use("luv")
    local tn = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
    local s = assert(netlua.tcp.connect("127.0.0.1", srv.device_port, {timeout = 10}))
    local first
    run({function() first = s:receive(1) end}, function() return first ~= nil end)
    assert.equal("\255", first)  -- the banner starts with a negotiation
    -- now in the main thread: nothing more comes before the deadline
    -- (the device waits for our answer); the wait is spent in the
    -- kernel, not in a loop of system calls
    s:settimeout(0.2)
    s:receive(100000)  -- what the banner left, until the timeout
    s:settimeout(0.5)
    local c0 = os.clock()
    local data, err = s:receive(1)
    local cpu = os.clock() - c0
    assert.is_nil(data)
    assert.equal("timeout", err)
    assert.is_true(cpu < 0.2, ("%.3f s of CPU for a 0.5 s wait"):format(cpu))
    s:close()
    tn:close()
  end)
end)
