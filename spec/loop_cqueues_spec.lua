-- netlua inside cqueues (netlua.loop.use("cqueues")): Telnet, FTP, UDP
-- and a lookup in coroutines of a cqueues controller, while a timer
-- coroutine of the same controller keeps ticking; a close wakes a
-- coroutine waiting on the object; many lookups at once each end.
local H = require "helper"
local tpack = table.pack or function(...) return {n = select("#", ...), ...} end
local L = require "loop_helper"
local netlua = require "netlua"
local loop = require "netlua.loop"
local cqueues = require "cqueues"

-- runs fns in a new controller with a ticker; returns the ticker and
-- what cq:loop returned
local function run(fns, done)
  local cq = cqueues.new()
  local t = L.ticker()
  t.start()
  cq:wrap(function()
    repeat
      cqueues.sleep(0.01)
      t.tick()
    until done()
  end)
  for _, fn in ipairs(fns) do cq:wrap(fn) end
  local ok, err = cq:loop(30 * H.slack)
  return t, ok, err
end

-- PUC Lua 5.1 cannot yield across the C calls between cqueues and the
-- coroutines it runs; LuaJIT (and, for cqueues, 5.2+) run this spec.
if H.puc51 then
  describe("netlua under cqueues", function()
    it("runs on LuaJIT", function() pending("PUC Lua 5.1: not supported") end)
  end)
  return
end
describe("netlua under cqueues", function()
  local srv

  setup(function() srv = L.servers() end)
  teardown(function()
    loop.use(false)
    srv.stop()
  end)
  after_each(function() loop.use(false) end)

  it("runs Telnet, FTP, UDP and a lookup while the controller's timer ticks", function()
    assert.equal("cqueues", loop.use("cqueues"))
    assert.equal("cqueues", loop.current())
    local out = {}
    local jobs = L.jobs(srv, out)
    local t, ok, err = run(jobs, function() return out.finished == #jobs end)
    assert(ok, err)
    L.check(srv, out, jobs)
    L.check_ticks(t)
  end)

  it("the timer would see a call that blocks: the same sleep without the adapter", function()
    local t = run({function() netlua.sleep(0.3) end}, function() return true end)
    assert.is_true(t.gap >= 0.25, ("gap %.3f"):format(t.gap))
    loop.use("cqueues")
    local slept = false
    t = run({function() netlua.sleep(0.3) slept = true end}, function() return slept end)
    assert.is_true(slept)
    L.check_ticks(t)
  end)

  it("wakes a coroutine waiting on an object another one closes", function()
    loop.use("cqueues")
    local tn = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
    local got, after
    run({
      function() got = tpack(tn:read_until("never sent", 10)) end,
      function()
        netlua.sleep(0.1)
        tn:close()
        -- the descriptor's number is free again at once: a new session
        -- may get it and must work under cqueues
        local tn2 = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
        after = select(2, assert(tn2:login{user = "admin", password = "secret"}))
        tn2:close()
      end,
    }, function() return got ~= nil and after ~= nil end)
    assert.is_table(got)
    assert.is_nil(got[1])
    assert.equal("closed", got[3])
    assert.equal("R1>", after)
  end)

  it("ends 50 lookups at once, each for its own coroutine", function()
    loop.use("cqueues")
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

  it("blocks, as in the main thread, in a coroutine no controller runs", function()
    loop.use("cqueues")
    local co = coroutine.wrap(function()
      netlua.sleep(0.05)
      local r = assert(netlua.lookup.getaddrinfo("localhost", "ftp"))
      return r[1].port
    end)
    assert.equal(21, co())
  end)
end)
