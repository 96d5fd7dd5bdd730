--- netlua.loop_copas: netlua's waits inside copas 1.x threads.
--
-- `netlua.loop.use("copas")` (or `use()` with copas loaded), before the
-- loop starts: `copas.loop()` or a loop of `copas.step()` calls.  Copas
-- 1.x schedules a thread that yields `(object, set)`: the set is its
-- reading or writing set (the ones `copas.receive`/`copas.send` use), and
-- the dispatcher `socket.select`s every object's `getfd()`.  A netlua
-- call that would block in a copas thread puts an object for each of its
-- descriptors into those sets and yields the same way, so copas wakes it
-- when one is ready.  Copas 1.x has no timers: this adapter wraps
-- `copas.step` (which `copas.loop` calls) so that the select ends by the
-- soonest deadline of a waiting call, then resumes the calls whose
-- deadline has passed (through `copas.addthread`, as copas resumes a new
-- thread).  Lookups wait for a watcher thread that selects the resolver
-- pool's bell while anyone waits for one.  Closing an object takes its
-- descriptor out of the sets first (select must not see a closed
-- descriptor) and wakes its waiters on the next step.
--
-- Written against copas 1.2.0 (Debian's lua-copas, whose copas.lua says
-- 1.1.7): its sets are found as upvalues of `copas.receive` and
-- `copas.send`.  A program that kept `copas.step` in a local before
-- `use` calls the unwrapped one: then deadlines only end when some
-- descriptor is ready.
-- @module netlua.loop_copas
local core = require "netlua.core"

local function upvalue(fn, name)
  local i = 1
  while true do
    local n, v = debug.getupvalue(fn, i)
    if n == nil then return nil end
    if n == name then return v end
    i = i + 1
  end
end

return function(loop)
  local copas = require "copas"
  local reading = type(copas.receive) == "function" and upvalue(copas.receive, "_reading")
  local writing = type(copas.send) == "function" and upvalue(copas.send, "_writing")
  if type(reading) ~= "table" or type(writing) ~= "table" or type(copas.step) ~= "function"
    or type(copas.addthread) ~= "function" then
    error("netlua.loop: this copas is not copas 1.x (no _reading/_writing sets "
      .. "behind copas.receive/copas.send); copas 1.2 is supported", 0)
  end

  local monotime = core.monotime
  local yield, running, status = coroutine.yield, coroutine.running, coroutine.status
  local READ, WRITE = 1, 2

  -- what copas's dispatcher does with our yield: we park the thread
  -- ourselves, so its insert/push are no-ops
  local PARKED = {insert = function() end, push = function() end}

  -- a waiting thread: {co =, objs = {{set =, obj =}...}, at =, key =, due =}
  local waiters = {}   -- rec -> true
  local byfd = {}      -- fd -> {[rec] = true}

  local function object(fd)
    return {fd = fd, getfd = function(self) return self.fd end, close = function() end}
  end

  local function unwait(rec)
    waiters[rec] = nil
    for _, o in ipairs(rec.objs) do
      o.set:remove(o.obj)
      o.set:pop(o.obj)  -- the queue of a fresh object holds only rec.co
      local f = byfd[o.obj.fd]
      if f then
        f[rec] = nil
        if next(f) == nil then byfd[o.obj.fd] = nil end
      end
    end
    rec.objs = {}
    if rec.key ~= nil then loop.unpark_key(rec.key) end
  end

  -- rec runs again on the next step (now: from a close or a drain,
  -- inside some thread)
  local function wake_later(rec)
    if not waiters[rec] then return end
    -- out of the sets at once: the descriptor may be closing
    for _, o in ipairs(rec.objs) do
      o.set:remove(o.obj)
      o.set:pop(o.obj)
    end
    rec.due = true
  end

  local function watch(rec, fd, set)
    local obj = object(fd)
    set:insert(obj)
    set:push(obj, rec.co)
    rec.objs[#rec.objs + 1] = {set = set, obj = obj}
    local f = byfd[fd] or {}
    byfd[fd] = f
    f[rec] = true
  end

  -- the lookups' watcher: a thread of its own while anyone waits for one
  local watching = false

  local function watcher()
    while loop.key_waiters() > 0 do
      local bell = loop.bell()
      if bell < 0 then break end
      local rec = {co = running(), objs = {}, at = monotime() + 0.25}
      waiters[rec] = true
      watch(rec, bell, reading)
      yield(rec.objs[1].obj, PARKED)
      unwait(rec)
      loop.ring()
    end
    watching = false
  end

  local A = {name = "copas"}

  function A.wait(fd, events, at, key)
    local rec = {co = running(), objs = {}, at = at, key = key}
    waiters[rec] = true
    if key ~= nil then
      loop.park_key(key, function() wake_later(rec) end)
      if not watching then
        watching = true
        -- starts it now: it runs until its first wait, then we park
        copas.addthread(watcher)
      end
    else
      local fds = type(fd) == "table" and fd or (fd >= 0 and {fd} or {})
      for _, d in ipairs(fds) do
        -- events is READ (1), WRITE (2) or both (3): no bit operators on 5.1
        if events % 2 == 1 then watch(rec, d, reading) end
        if events >= 2 then watch(rec, d, writing) end
      end
      if #rec.objs == 0 and at < 0 then rec.at = monotime() end
    end
    yield(rec.objs[1] and rec.objs[1].obj or rec, PARKED)
    unwait(rec)
  end

  function A.onclose(x)
    if type(x) ~= "number" then return end
    local f = byfd[x]
    if not f then return end
    for rec in pairs(f) do wake_later(rec) end
  end

  -- the soonest time a waiter is due (now for a woken one), or nil
  local function soonest()
    local t
    for rec in pairs(waiters) do
      local at = rec.due and 0 or rec.at
      if at >= 0 and (t == nil or at < t) then t = at end
    end
    return t
  end

  local function fire()
    local now, due = monotime(), {}
    for rec in pairs(waiters) do
      if rec.due or (rec.at >= 0 and rec.at <= now) then due[#due + 1] = rec end
    end
    for _, rec in ipairs(due) do
      if waiters[rec] and status(rec.co) == "suspended" then
        unwait(rec)
        copas.addthread(rec.co)  -- copas's own resume: its next yield parks it
      end
    end
  end

  local step = nil

  function A.start()
    step = copas.step
    copas.step = function(timeout)
      local t = soonest()
      if t then
        local left = math.max(0, t - monotime())
        if timeout == nil or timeout < 0 or left < timeout then timeout = left end
      end
      local r = step(timeout)
      fire()
      return r
    end
  end

  function A.stop()
    if step then copas.step = step end
    step = nil
  end

  return A
end
