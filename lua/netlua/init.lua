--- netlua: multicast sockets, name lookup, TCP, FTP/FTPS and Telnet for Lua.
--
-- `require "netlua"` gives every part as a field, loaded on first use:
--
--     local netlua = require "netlua"
--     print(netlua.lookup.gethostname())
--
-- Each part can also be required on its own (`require "netlua.ftp"`).
-- @module netlua
local core = require "netlua.core"

local M = {
  version = core.version,
  --- Seconds on the monotonic clock (never jumps with the wall clock).
  monotime = core.monotime,
  --- Sleeps `s` seconds (fractional); inside netlua.run only the calling
  -- task waits.
  sleep = require("netlua.drive").sleep,
}

--- pcall for driven coroutines (netlua.run's tasks, a loop's coroutines):
-- on PUC Lua 5.1 a wait inside a plain pcall blocks (5.1 cannot yield
-- across it; LuaJIT and 5.2+ can), inside this one it waits as anywhere
-- else.  Elsewhere it is pcall itself.
M.pcall = require("netlua.drive").pcall

--- Waits for any of several objects to be ready (see netlua.sched.wait);
-- inside a task only that task waits.
function M.wait(...) return require("netlua.sched").wait(...) end

--- Starts a task (see netlua.sched): `netlua.spawn(fn, ...)`.
function M.spawn(...) return require("netlua.sched").spawn(...) end
--- Drives all tasks until done: `netlua.run([fn, ...])`.
function M.run(...) return require("netlua.sched").run(...) end
--- Waits in a task for another task's end: `netlua.join(co [, timeout])`.
function M.join(...) return require("netlua.sched").join(...) end
--- An event tasks wait for: `netlua.event()` (wait, set, clear, is_set).
function M.event(...) return require("netlua.sched").event(...) end

local parts = {
  lookup = true, tcp = true, udp = true, multicast = true, loop = true,
  ftp = true, telnet = true, ssh = true, sched = true,
}

return setmetatable(M, {
  __index = function(t, k)
    if parts[k] then
      local mod = require("netlua." .. k)
      rawset(t, k, mod)
      return mod
    end
  end,
})
