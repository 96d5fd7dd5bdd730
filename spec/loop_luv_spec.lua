-- netlua inside luv (netlua.loop.use("luv")): the body of
-- spec/loop_helper.lua in coroutines started from luv callbacks, with a
-- uv timer ticking; and a lookup that netlua.run took from the resolver's
-- bell still wakes its luv coroutine.
local L = require "loop_helper"
local netlua = require "netlua"
local loop = require "netlua.loop"
local uv = require "luv"

L.describe {
  name = "luv",
  ticking = "a uv timer ticks",
  run = function(fns, tick, done, limit)
    local timer = uv.new_timer()
    timer:start(10, 10, function()
      tick()
      if done() then timer:stop() timer:close() end
    end)
    local starter = uv.new_timer()
    starter:start(0, 0, function()
      starter:close()
      for _, fn in ipairs(fns) do coroutine.wrap(fn)() end
    end)
    -- a loop that never ends fails the spec instead of hanging it
    local guard = uv.new_timer()
    guard:start(math.floor(limit * 1000), 0, function() uv.stop() end)
    guard:unref()
    uv.run()
    guard:close()
    uv.run("nowait")  -- lets the closed handles go
  end,
  more = function(run)
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
  end,
}
