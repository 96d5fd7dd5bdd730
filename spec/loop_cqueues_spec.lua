-- netlua inside cqueues (netlua.loop.use("cqueues")): the body of
-- spec/loop_helper.lua in coroutines of a cqueues controller, with a
-- timer coroutine of the same controller ticking; and a coroutine no
-- controller runs blocks.
local L = require "loop_helper"
local netlua = require "netlua"
local loop = require "netlua.loop"
local cqueues = require "cqueues"

L.describe {
  name = "cqueues",
  ticking = "the controller's timer ticks",
  run = function(fns, tick, done, limit)
    local cq = cqueues.new()
    cq:wrap(function()
      repeat
        cqueues.sleep(0.01)
        tick()
      until done()
    end)
    for _, fn in ipairs(fns) do cq:wrap(fn) end
    assert(cq:loop(limit))
  end,
  more = function()
    it("blocks, as in the main thread, in a coroutine no controller runs", function()
      loop.use("cqueues")
      local co = coroutine.wrap(function()
        netlua.sleep(0.05)
        local r = assert(netlua.lookup.getaddrinfo("localhost", "ftp"))
        return r[1].port
      end)
      assert.equal(21, co())
    end)
  end,
}
