-- netlua inside copas 1.x (netlua.loop.use("copas")): Telnet, FTP, UDP
-- and a lookup in copas threads while the dispatcher keeps stepping (copas
-- 1.x has no timers: its "timer" here is copas.step with a 10 ms select
-- timeout, which a blocking call would hold up); a close wakes a thread
-- waiting on the object; many lookups at once each end.
--
-- Debian's lua-copas (1.2.0) is installed for Lua 5.1 and 5.2 only, and
-- netlua's C part builds for 5.4 for now: under a Lua where copas cannot
-- be loaded this file only reports itself pending.
local ok_copas, copas = pcall(require, "copas")
if not ok_copas then
  describe("netlua under copas", function()
    pending("copas cannot be loaded under " .. _VERSION .. " (Debian's lua-copas "
      .. "serves Lua 5.1 and 5.2): " .. tostring(copas):match("^[^\n]*"))
  end)
  return
end

local H = require "helper"
local tpack = table.pack or function(...) return {n = select("#", ...), ...} end
local L = require "loop_helper"
local netlua = require "netlua"
local loop = require "netlua.loop"

-- runs fns as copas threads, stepping the dispatcher (10 ms select
-- timeout) until done(); returns the ticker
local function run(fns, done)
  local t = L.ticker()
  t.start()
  for _, fn in ipairs(fns) do copas.addthread(fn) end
  local limit = netlua.monotime() + 30 * H.slack
  repeat
    copas.step(0.01)
    t.tick()
  until done() or netlua.monotime() > limit
  return t
end

-- PUC Lua 5.1 cannot yield across the C calls between copas and the
-- coroutines it runs; LuaJIT (and, for cqueues, 5.2+) run this spec.
if H.puc51 then
  describe("netlua under copas", function()
    it("runs on LuaJIT", function() pending("PUC Lua 5.1: not supported") end)
  end)
  return
end
describe("netlua under copas", function()
  local srv

  setup(function() srv = L.servers() end)
  teardown(function()
    loop.use(false)
    srv.stop()
  end)
  after_each(function() loop.use(false) end)

  it("runs Telnet, FTP, UDP and a lookup while the dispatcher steps", function()
    assert.equal("copas", loop.use("copas"))
    assert.equal("copas", loop.current())
    local out = {}
    local jobs = L.jobs(srv, out)
    local t = run(jobs, function() return out.finished == #jobs end)
    L.check(srv, out, jobs)
    L.check_ticks(t)
  end)

  it("the steps would see a call that blocks: the same sleep without the adapter", function()
    local t = run({function() netlua.sleep(0.3) end}, function() return true end)
    assert.is_true(t.gap >= 0.25, ("gap %.3f"):format(t.gap))
    loop.use("copas")
    local slept = false
    t = run({function() netlua.sleep(0.3) slept = true end}, function() return slept end)
    assert.is_true(slept)
    L.check_ticks(t)
  end)

  it("wakes a thread waiting on an object another one closes", function()
    loop.use("copas")
    local tn = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
    local got, after
    run({
      function() got = tpack(tn:read_until("never sent", 10)) end,
      function()
        netlua.sleep(0.1)
        tn:close()
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

  it("ends 50 lookups at once, each for its own thread", function()
    loop.use("copas")
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
end)
