-- The scheduler's timers: waits that end early (an event set, data
-- arriving) never fire, wherever they sit (in a run of ordered
-- deadlines or, for those out of order, in the heap), and the
-- other deadlines (sleeps here) still fire in order, none early, none
-- lost; the timers of waits that ended early do not pile up.
local netlua = require "netlua"
local sched = require "netlua.sched"
local H = require "helper"

describe("netlua.run timers", function()
  it("fires the deadlines left in order while waits end early in any order", function()
    math.randomseed(7)
    local N = 300
    -- distinct deadlines 2 ms apart, given out in random order
    local slot = {}
    for i = 1, N do slot[i] = i end
    for k = N, 2, -1 do
      local j = math.random(k)
      slot[k], slot[j] = slot[j], slot[k]
    end
    local fired, early, bad = {}, 0, {}
    local base
    local go = netlua.event()
    netlua.run(function()
      local evs = {}
      for i = 1, N do
        local ev = netlua.event()
        evs[i] = ev
        netlua.spawn(function()
          go:wait()
          if i % 2 == 1 then
            -- ends early: its event is set long before this deadline
            if ev:wait(10 * H.slack) then early = early + 1
            else bad[#bad + 1] = "event " .. i .. " was not seen" end
            return
          end
          -- one clock for all: the deadline is base + slot, whenever the
          -- task got here (sleep reads the clock first thing)
          local t0 = netlua.monotime()
          local d = math.max(base + slot[i] * 0.002 - t0, 0.001)
          netlua.sleep(d)
          fired[#fired + 1] = slot[i]
          if netlua.monotime() - t0 < d then bad[#bad + 1] = "sleep " .. i .. " ended early" end
        end)
        -- short sleeps meanwhile: out of order, most go to the heap,
        -- which has entries on every level
        netlua.spawn(function()
          for _ = 1, 3 do netlua.sleep(math.random() * 0.05) end
        end)
      end
      -- every other event is set long before its deadline, in random order
      local order = {}
      for i = 1, N, 2 do order[#order + 1] = i end
      for k = #order, 2, -1 do
        local j = math.random(k)
        order[k], order[j] = order[j], order[k]
      end
      -- every task starts its wait right after this, long before the
      -- first deadline
      base = netlua.monotime() + 0.5 * H.slack
      go:set()
      netlua.spawn(function()
        for _, i in ipairs(order) do
          evs[i]:set()
          if math.random() < 0.2 then netlua.sleep(0.001) end
        end
      end)
    end)
    assert.same({}, bad)
    assert.are.equal(math.floor(N / 2), early)
    assert.are.equal(math.floor(N / 2), #fired)
    -- the deadlines left came in their order
    for k = 2, #fired do
      assert.is_true(fired[k - 1] < fired[k], ("timeout %d before %d"):format(fired[k - 1], fired[k]))
    end
  end)

  it("keeps no pile of timers from waits that ended early", function()
    -- 50 000 waits with a 100 s deadline, each ended at once by its
    -- event: were their timers kept to their deadline, memory would grow
    -- by a timer record each
    local N = 50000
    local grew
    netlua.run(function()
      local ev, done = netlua.event(), netlua.event()
      -- a live timer sooner than theirs stays on top all along, so theirs
      -- never come up to be dropped there
      netlua.spawn(function() done:wait(50) end)
      local waiter = netlua.spawn(function()
        for i = 1, N do
          assert(ev:wait(100))
          ev:clear()
          if i == 1000 then
            collectgarbage()
            grew = collectgarbage("count")
          end
        end
        collectgarbage()
        grew = collectgarbage("count") - grew
      end)
      netlua.spawn(function()
        for _ = 1, N do
          ev:set()
          sched.yield()
        end
      end)
      netlua.join(waiter)
      done:set()
    end)
    -- a record each would be several MiB; what stays is bounded
    assert.is_true(grew < 1024, ("memory grew by %.0f KiB"):format(grew))
  end)
end)
