--- netlua.loop_luv: netlua's waits inside coroutines run from luv callbacks.
--
-- `netlua.loop.use("luv")` (or `use()` with luv loaded; in Neovim it
-- takes `vim.uv`/`vim.loop`).  A netlua call that would block in a
-- coroutine (one the program starts from the main chunk or from a luv
-- callback) watches its descriptor with a uv poll handle and its deadline
-- with a uv timer, yields, and is resumed from their callback; the
-- handles are stopped after.  One poll handle serves every coroutine
-- waiting on a descriptor (libuv allows one per descriptor: a reader and
-- a writer of the same socket share it).  A lookup waits with no handle
-- of its own: one poll handle on the resolver pool's bell, active while
-- anyone waits for a lookup, resumes exactly the coroutines whose lookups
-- ended.  Closing an object stops the poll handle on its descriptor
-- before the descriptor closes (libuv must not poll a closed descriptor)
-- and wakes its waiters, whose calls return "closed".
--
-- Handles are stopped, never closed: a stopped handle keeps nothing
-- going, and is used again (a poll handle by the next descriptor with the
-- same number, a timer by the next wait).  luv 1.44 frees a handle that
-- is closing when it is collected, even though libuv still holds it
-- until the next loop turn; a program that ends right after a close
-- outside `uv.run` then crashes on exit.  Handles never closed are
-- closed by luv itself, safely.
--
-- A coroutine resumed here that then fails raises its error with its
-- traceback from the callback, as an error in any luv callback does
-- (luv prints it and exits, unless the host handles callback errors).
-- The main thread is never driven: there a call blocks the loop.
-- @module netlua.loop_luv
local core = require "netlua.core"

local function find_uv()
  if package.loaded.luv then return package.loaded.luv end
  local vim = rawget(_G, "vim")
  if type(vim) == "table" then
    local ok, uv = pcall(function() return vim.uv or vim.loop end)
    if ok and uv then return uv end
  end
  return require "luv"
end

-- One adapter per luv module (one per Lua state), made once: its poll
-- handles outlive a `use(false)` and serve the next `use("luv")`.  A
-- second handle on a descriptor would lose its registration in libuv's
-- epoll set when luv closed the first one.
local made = setmetatable({}, {__mode = "k"})

return function(loop)
  local uv = find_uv()
  if made[uv] then return made[uv] end
  local monotime = core.monotime
  local resume, yield, running, status = coroutine.resume, coroutine.yield,
    coroutine.running, coroutine.status
  -- 5.1 and LuaJIT have no coroutine.isyieldable: any coroutine but the
  -- main one (coroutine.running() is nil there on 5.1, or true second)
  local isyieldable = coroutine.isyieldable or function()
    local co, main = coroutine.running()
    return co ~= nil and not main
  end
  local MODE = {"r", "w", "rw"}
  local READ, WRITE = 1, 2

  -- fd -> {h = poll handle, waiters = {[rec] = events}, ev = armed events}
  local polls = {}
  -- a waiting coroutine: {co =, fds = {...}, timer =, key =, woken =}
  local spare = {}  -- stopped timers, for the next waits

  local function run(rec)
    -- dead: on PUC 5.1 a yield across a metamethod fails after wait has
    -- set its watch, and the coroutine may end before the watch fires
    if status(rec.co) == "dead" then return end
    local ok, err = resume(rec.co)
    if not ok then error(debug.traceback(rec.co, err), 0) end
  end

  -- Coroutines woken from inside another coroutine (by a close, or a
  -- drain a waiter ran) run on the next loop turn, from a callback.
  local later, kicker = {}, nil

  local function kick()
    local now = later
    later = {}
    for _, rec in ipairs(now) do
      if status(rec.co) == "suspended" then run(rec) end
    end
  end

  local function arm(fd)
    local p = polls[fd]
    local ev = 0
    -- the union of READ (1) and WRITE (2): no bit operators on 5.1
    local r, w = false, false
    for _, e in pairs(p.waiters) do
      if e % 2 == 1 then r = true end
      if e >= 2 then w = true end
    end
    ev = (r and 1 or 0) + (w and 2 or 0)
    if ev == p.ev then return end
    p.ev = ev
    if ev == 0 then
      p.h:stop()
    else
      p.h:start(MODE[ev], p.cb)
    end
  end

  -- the bell (one per Lua state, for its whole life): one poll handle on
  -- it, active while coroutines wait for lookups (an active handle keeps
  -- uv.run going)
  local bell_h, bell_on = nil, false

  local function bell_off()
    if bell_on and loop.key_waiters() == 0 then
      bell_h:stop()
      bell_on = false
    end
  end

  local function watch_bell()
    if bell_on then return end
    local bell = loop.bell()
    if bell < 0 then return end  -- no lookup made it yet: cannot happen
    if not bell_h then
      local err
      bell_h, err = uv.new_poll(bell)
      if not bell_h then error("luv: cannot poll the resolver's bell: " .. tostring(err), 0) end
    end
    bell_h:start("r", function()
      loop.ring()
      bell_off()
    end)
    bell_on = true
  end

  -- takes rec off everything it waits on
  local function unwait(rec)
    if rec.timer then
      rec.timer:stop()
      spare[#spare + 1] = rec.timer
      rec.timer = nil
    end
    for _, fd in ipairs(rec.fds) do
      local p = polls[fd]
      if p and p.waiters[rec] then
        p.waiters[rec] = nil
        arm(fd)
      end
    end
    if rec.key ~= nil then
      loop.unpark_key(rec.key)
      bell_off()
    end
  end

  local function wake(rec)
    if rec.woken then return end
    rec.woken = true
    unwait(rec)
    if isyieldable() then
      later[#later + 1] = rec
      if not kicker then kicker = uv.new_timer() end
      kicker:start(0, 0, kick)
    else
      run(rec)
    end
  end

  local function watch(fd, rec, ev)
    local p = polls[fd]
    if not p then
      local h, err = uv.new_poll(fd)
      if not h then error("luv: cannot poll descriptor " .. fd .. ": " .. tostring(err), 0) end
      p = {h = h, waiters = {}, ev = 0}
      p.cb = function(err, events)
        local rd = events and events:find("r", 1, true) ~= nil
        local wr = events and events:find("w", 1, true) ~= nil
        local due = {}
        for r, e in pairs(p.waiters) do
          -- e: READ (1), WRITE (2) or both; no bit operators on 5.1
          if err or (rd and e % 2 == 1) or (wr and e >= 2) then due[#due + 1] = r end
        end
        for _, r in ipairs(due) do wake(r) end
      end
      polls[fd] = p
    end
    p.waiters[rec] = ev
    arm(fd)
  end

  local A = {name = "luv"}

  function A.wait(fd, events, at, key)
    local rec = {co = running(), fds = {}, woken = false}
    if key ~= nil then
      rec.key = key
      loop.park_key(key, function() wake(rec) end)
      watch_bell()
    elseif type(fd) == "table" then
      for i, d in ipairs(fd) do rec.fds[i] = d end
    elseif fd >= 0 then
      rec.fds[1] = fd
    end
    for _, d in ipairs(rec.fds) do watch(d, rec, events) end
    if at >= 0 or (#rec.fds == 0 and key == nil) then
      uv.update_time()
      local ms = at >= 0 and math.ceil(math.max(0, at - monotime()) * 1000) or 0
      rec.timer = table.remove(spare) or uv.new_timer()
      rec.timer:start(ms, 0, function() wake(rec) end)
    end
    yield()
    if not rec.woken then  -- resumed by someone else: leave nothing behind
      rec.woken = true
      unwait(rec)
    end
  end

  function A.onclose(x)
    if type(x) ~= "number" then return end
    local p = polls[x]
    if not p then return end
    local due = {}
    for r in pairs(p.waiters) do due[#due + 1] = r end
    -- stopped before the descriptor closes; kept for the next descriptor
    -- with this number
    p.waiters = {}
    arm(x)
    for _, r in ipairs(due) do wake(r) end
  end

  function A.stop()
    -- every handle stopped (kept for the next adapter); a coroutine still
    -- waiting stays suspended
    for _, p in pairs(polls) do
      p.waiters = {}
      p.ev = 0
      p.h:stop()
    end
    if bell_on then bell_h:stop() end
    bell_on = false
    for _, t in ipairs(spare) do t:stop() end
    if kicker then kicker:stop() end
  end

  made[uv] = A
  return A
end
