-- netlua inside copas 1.x (netlua.loop.use("copas")): the body of
-- spec/loop_helper.lua in copas threads while the dispatcher keeps
-- stepping.  Copas 1.x has no timers: its "timer" here is copas.step
-- with a 10 ms select timeout, which a blocking call would hold up.
--
-- Debian's lua-copas (1.2.0) is installed for Lua 5.1 and 5.2 only:
-- under a Lua where copas cannot be loaded the spec is pending.
local L = require "loop_helper"
local netlua = require "netlua"
local ok_copas, copas = pcall(require, "copas")

L.describe {
  name = "copas",
  ticking = "the dispatcher steps",
  thread = "thread",
  missing = not ok_copas and ("copas cannot be loaded under " .. _VERSION
    .. " (Debian's lua-copas serves Lua 5.1 and 5.2): "
    .. tostring(copas):match("^[^\n]*")) or nil,
  run = function(fns, tick, done, limit)
    for _, fn in ipairs(fns) do copas.addthread(fn) end
    local stop = netlua.monotime() + limit
    repeat
      copas.step(0.01)
      tick()
    until done() or netlua.monotime() > stop
  end,
}
