--- netlua.loop_cqueues: netlua's waits inside cqueues' coroutines.
--
-- `netlua.loop.use("cqueues")` (or `use()` with cqueues loaded).  In a
-- coroutine a cqueues controller runs (`cq:wrap(fn)`), a netlua call
-- that would block waits with `cqueues.poll` on pollable objects made for
-- its descriptors (`{pollfd = fd, events = "r"}`) and its deadline (a
-- number), so the controller runs everything else meanwhile.  A lookup
-- waits on a condition variable, signalled by one watcher thread that
-- polls the resolver pool's bell while anyone waits for a lookup.
-- Closing an object cancels every poll on its descriptor
-- (`cqueues.cancel`), so a coroutine waiting on it wakes and its call
-- returns "closed", and cqueues forgets the number before it is reused.
-- Outside a controller (no `cq:step` is running) a call blocks, as in
-- the main thread.
-- @module netlua.loop_cqueues
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local core = require "netlua.core"

return function(loop)
  local poll, running, cancel = cqueues.poll, cqueues.running, cqueues.cancel
  local monotime = core.monotime
  local MODE = {"r", "w", "rw"}
  -- the watcher looks at least this often whether anyone still waits
  local WATCH_LOOK = 0.25
  -- a lookup's wait ends at least this often, so that it finds a watcher
  -- whose controller no longer runs, and starts another one
  local KEY_LOOK = 1

  -- one watcher thread while coroutines wait for lookups: it polls the
  -- bell and wakes the coroutines whose lookups ended
  local watcher_gen, watcher_seen = 0, -math.huge

  local function watcher(gen)
    while gen == watcher_gen and loop.key_waiters() > 0 do
      watcher_seen = monotime()
      local bell = loop.bell()
      if bell >= 0 then
        poll({pollfd = bell, events = "r"}, WATCH_LOOK)
      else
        poll(0.01)  -- no lookup has made the bell yet: cannot happen
      end
      loop.ring()
    end
    if gen == watcher_gen then watcher_seen = -math.huge end
  end

  local function ensure_watcher(cq)
    if monotime() - watcher_seen <= 2 * WATCH_LOOK then return end
    watcher_gen = watcher_gen + 1
    watcher_seen = monotime()
    local gen = watcher_gen
    cq:wrap(function() watcher(gen) end)
  end

  -- fd (or a list), mode: the pollable objects, in t from index 1
  local function objects(t, fd, mode)
    if type(fd) == "table" then
      for i, d in ipairs(fd) do t[i] = {pollfd = d, events = mode} end
    elseif fd >= 0 then
      t[1] = {pollfd = fd, events = mode}
    end
    return t
  end

  local A = {name = "cqueues"}

  function A.wait(fd, events, at, key)
    local cq = running()
    -- no controller steps: this call blocks, as outside any loop
    if not cq then return loop.block(fd, events, at, key) end
    local timeout = at >= 0 and math.max(0, at - monotime()) or nil
    local t = {}
    if key ~= nil then
      local cond = condition.new()
      loop.park_key(key, function() cond:signal() end)
      ensure_watcher(cq)
      t[1] = cond
      timeout = timeout and math.min(timeout, KEY_LOOK) or KEY_LOOK
    else
      objects(t, fd, MODE[events] or "r")
    end
    local n = #t
    if timeout or n == 0 then
      n = n + 1
      t[n] = timeout or 0
    end
    poll((table.unpack or unpack)(t, 1, n))
    if key ~= nil then loop.unpark_key(key) end
  end

  function A.onclose(x)
    -- every poll on the descriptor wakes, and the controllers stop
    -- watching it (keys are woken by netlua.loop itself)
    if type(x) == "number" then cancel(x) end
  end

  return A
end
