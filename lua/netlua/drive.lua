--- netlua.drive: the Lua side of every blocking call.
--
-- A blocking operation in C is a step: it finishes, or (in a coroutine a
-- loop drives) it returns the wait it needs, `WAIT, fd, events, until,
-- key, restart`, and keeps its state in its object.  A driver made here
-- around each blocking function waits through the loop (inside
-- `netlua.run`: a yield to the scheduler) and then calls `restart` (or
-- the function again) with the same arguments, until the step finishes.
-- Nothing yields from C.  Outside a driven coroutine the C step blocks by
-- itself and the driver only passes its results on.
--
-- Module functions that block (tcp.connect, the lookups) are driven from
-- the start.  Object methods stay plain C functions, the fastest call,
-- until a loop first drives netlua (`activate`, called by netlua.run):
-- then every C method of netlua's objects gets its driver.  A method
-- saved in a local before that and called inside a task raises a clear
-- error instead of waiting (see sched.c).
-- @module netlua.drive
local core = require "netlua.core"

local WAIT = core.WAIT
local select, yield, type = select, coroutine.yield, type
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local unpack = table.unpack or unpack

local M = {}

-- How a driver waits, inside the driven coroutine: a task of netlua.run
-- yields to its scheduler; any other coroutine waits through the loop
-- adapter set with `set_wait` (netlua.loop), if any.
local coop_task, coop_slice = core.coop_task, core.coop_slice
local running = coroutine.running
local foreign_wait, foreign_close = nil, nil
-- coroutines M.pcall runs fn in (PUC 5.1): their waits go to M.pcall
local nested = setmetatable({}, {__mode = "k"})

local PUC51 = _VERSION == "Lua 5.1" and not rawget(_G, "jit")

-- Waits without yielding, as a C step does outside a driven coroutine.
-- A lookup (key) has no descriptor of its own here: it is looked at
-- again every few milliseconds (draining the resolver's bell would take
-- the keys of coroutines that wait for theirs through a loop).
local blocking_sleep, blocking_wait, monotime = core.sleep, core.wait, core.monotime
local function block(fd, events, at, key)
  local left = at >= 0 and math.max(0, at - monotime()) or nil
  if key ~= nil then
    blocking_sleep(left and math.min(left, 0.005) or 0.005)
    return
  end
  local fds = type(fd) == "table" and fd or (fd >= 0 and {fd} or {})
  if #fds > 0 then
    blocking_wait(fds, left or -1, events == 2 and "w" or events == 3 and "rw" or "r")
  elseif left then
    blocking_sleep(left)
  end
end

-- PUC Lua 5.1 cannot yield across a C function on the coroutine's stack
-- (pcall, a C library's callback, a netlua method's own callback) nor
-- out of a for ... in iterator: the yield raises "attempt to yield
-- across metamethod/C-call boundary" -- after a loop adapter started to
-- watch for a coroutine that then never waits (luv later resumes it
-- dead).  There the wait blocks instead, as any netlua call in a C
-- callback does on every Lua.  (A metamethod is such a boundary too, one
-- 5.1's debug library does not show.)  LuaJIT and 5.2+ need none of it.
local stuck = nil
if PUC51 then
  local getinfo = debug.getinfo
  stuck = function()
    local level = 3  -- wait's caller
    while true do
      local info = getinfo(level, "Sn")
      if info == nil then return false end
      if info.what == "C" or info.name == "(for generator)" then return true end
      level = level + 1
    end
  end
end

local function wait(fd, events, at, key)
  if stuck and stuck() then return block(fd, events, at, key) end
  if foreign_wait == nil or coop_task() or nested[running()] then
    return yield(WAIT, fd, events, at, key)
  end
  foreign_wait(fd, events, at, key)
  -- its turn starts again: a long run of ready data yields after a slice,
  -- as in netlua.run
  coop_slice((running()))
end

-- Closing: C calls one hook before an object closes a descriptor (an
-- integer) or under a coroutine parked on a lookup (its key).  Both
-- netlua.run's scheduler and another loop's adapter may have coroutines
-- waiting on it: each is told.
local sched_close = nil
core.coop_onclose(function(x)
  if sched_close then sched_close(x) end
  if foreign_close then foreign_close(x) end
end)

--- Sets what netlua.run's scheduler does when an object closes `x` (a
-- descriptor, or the key of a lookup a task is parked on).
function M.on_close(fn)
  sched_close = fn
end

--- Called by netlua.run's scheduler for a finished lookup no task of its
-- waits for: the bell is one per Lua state, so the key may be that of a
-- coroutine another loop drives (netlua.loop sets this).
function M.key_done(key) end

--- Called by netlua.loop for a finished lookup no coroutine of the loop
-- waits for: it may be a task's of a netlua.run inside one of the loop's
-- coroutines (netlua.sched sets this).
function M.sched_key(key) end

--- Whether the calling coroutine waits through another loop's adapter
-- (netlua.loop): one that can yield, not a task of netlua.run, while an
-- adapter is in use.
function M.foreign()
  return foreign_wait ~= nil and core.coop_active() and not coop_task()
end

--- Waits as drivers do (for netlua.sched.wait): `fd` (or a list), events,
-- until, key.
M.wait = wait

--- Ends the wait of a coroutine another loop has parked on `key` (with
-- `wait(-1, 0, until, key)`, `key` a value of the caller's own, such as
-- a table), as the close of a lookup under it does: the adapter is told
-- through its `onclose`.  Nothing happens without an adapter.
function M.wake_key(key)
  if foreign_close then foreign_close(key) end
end

--- Makes every coroutine that can yield wait through `fn(fd, events,
-- until, key)` (an event loop's adapter: see netlua.loop), besides
-- netlua.run's own tasks; nil stops it.  `fd` is a descriptor (-1: none,
-- a pure timer) or a list of them, `events` 1 (read) | 2 (write), `until`
-- a netlua.monotime() value (negative: none), `key` a name lookup the
-- wait is for (then fd is -1): the wait may end early, the operation
-- simply looks again.  `onclose(x)`, if given, is called before an object
-- closes descriptor `x` (an integer) or closes under a coroutine parked
-- on lookup key `x`: a coroutine waiting on it must be woken (its call
-- then returns "closed"), and a watch on the descriptor dropped before
-- the number can be reused.
function M.set_wait(fn, onclose)
  if fn ~= nil and type(fn) ~= "function" then
    error("bad argument #1 to 'set_wait' (function expected, got " .. type(fn) .. ")", 2)
  end
  if onclose ~= nil and type(onclose) ~= "function" then
    error("bad argument #2 to 'set_wait' (function expected, got " .. type(onclose) .. ")", 2)
  end
  foreign_wait = fn
  foreign_close = fn and onclose
  core.coop_foreign(fn ~= nil)
  if fn then M.activate() end
end

-- The level, seen from raise's caller's caller, of the script's frame:
-- the first that is not this file's (5.1 counts tail calls as levels).
local HERE = debug.getinfo(1, "S").source
local function script_level()
  local level = 3
  while true do
    local info = debug.getinfo(level, "S")
    if info == nil then return 1 end
    if info.source ~= HERE and info.what ~= "C" and info.what ~= "tail" then
      return level - 1
    end
    level = level + 1
  end
end

-- An error raised in the C function: told as if the script had called
-- it directly.  Run by pcall, C knows neither the function's name nor a
-- position, and counts arguments as a plain call; the script called
-- `name`, as a method when `method`, on its own line.  An error that has
-- a position already (from a Lua callback the operation ran) goes on as
-- it is.
local function raise(name, method, err)
  if type(err) ~= "string" or err:find("^[^\n]-:%d+: ") then error(err, 0) end
  local n, rest = err:match("^bad argument #(%d+) to '[^']*' (.*)$")
  if n then
    n = tonumber(n) - (method and 1 or 0)
    if n == 0 then
      err = ("calling '%s' on bad self %s"):format(name, rest)
    else
      err = ("bad argument #%d to '%s' %s"):format(n, name, rest)
    end
  end
  error(err, script_level())
end

local coop_active = core.coop_active

--- Sleeps `s` seconds (fractional); in a driven coroutine (a task of
-- netlua.run, or one of another loop's) only that coroutine waits.
function M.sleep(s)
  local now = monotime()  -- first: the deadline counts from the call
  if type(s) ~= "number" then
    error("bad argument #1 to 'sleep' (number expected, got " .. type(s) .. ")", 2)
  end
  if s ~= s then error("bad argument #1 to 'sleep' (NaN)", 2) end
  if s > 0 and coop_active() then
    wait(-1, 0, now + s)
    return
  end
  blocking_sleep(s)
end

--- Returns a driver around the C function `cfn`, known to scripts as
-- `name` (a method of its object when `method`).
function M.wrap(cfn, name, method)
  name = name or "?"
  -- one finisher per argument count, so that the C function sees exactly
  -- the arguments it was given (none padded with nil) and no table is
  -- made on the path that does not wait; each step runs protected only
  -- to tell its errors right (raise)
  local fin0, fin1, fin2, fin3, fin4, finn
  function fin0(ok, r1, ...)
    if not ok then raise(name, method, r1) end
    if r1 ~= WAIT then return r1, ... end
    local fd, ev, at, key, restart = ...
    wait(fd, ev, at, key)
    return fin0(pcall(restart or cfn))
  end
  function fin1(a, ok, r1, ...)
    if not ok then raise(name, method, r1) end
    if r1 ~= WAIT then return r1, ... end
    local fd, ev, at, key, restart = ...
    wait(fd, ev, at, key)
    return fin1(a, pcall(restart or cfn, a))
  end
  function fin2(a, b, ok, r1, ...)
    if not ok then raise(name, method, r1) end
    if r1 ~= WAIT then return r1, ... end
    local fd, ev, at, key, restart = ...
    wait(fd, ev, at, key)
    return fin2(a, b, pcall(restart or cfn, a, b))
  end
  function fin3(a, b, c, ok, r1, ...)
    if not ok then raise(name, method, r1) end
    if r1 ~= WAIT then return r1, ... end
    local fd, ev, at, key, restart = ...
    wait(fd, ev, at, key)
    return fin3(a, b, c, pcall(restart or cfn, a, b, c))
  end
  function fin4(a, b, c, d, ok, r1, ...)
    if not ok then raise(name, method, r1) end
    if r1 ~= WAIT then return r1, ... end
    local fd, ev, at, key, restart = ...
    wait(fd, ev, at, key)
    return fin4(a, b, c, d, pcall(restart or cfn, a, b, c, d))
  end
  function finn(args, ok, r1, ...)
    if not ok then raise(name, method, r1) end
    if r1 ~= WAIT then return r1, ... end
    local fd, ev, at, key, restart = ...
    wait(fd, ev, at, key)
    return finn(args, pcall(restart or cfn, unpack(args, 1, args.n)))
  end
  local function driver(...)
    local n = select("#", ...)
    if n == 1 then
      local a = ...
      return fin1(a, pcall(cfn, a))
    elseif n == 2 then
      local a, b = ...
      return fin2(a, b, pcall(cfn, a, b))
    elseif n == 3 then
      local a, b, c = ...
      return fin3(a, b, c, pcall(cfn, a, b, c))
    elseif n == 4 then
      local a, b, c, d = ...
      return fin4(a, b, c, d, pcall(cfn, a, b, c, d))
    elseif n == 0 then
      return fin0(pcall(cfn))
    end
    return finn(pack(...), pcall(cfn, ...))
  end
  -- the C function hands its wait only to these (through pcall)
  for _, f in ipairs {driver, fin0, fin1, fin2, fin3, fin4, finn} do
    core.coop_driver(f)
  end
  return driver
end

-- lines() hands out a C iterator: it is driven too.  On PUC 5.1 the
-- driver is called from a frame of its own, not tail-called: 5.1 names
-- the function a for loop calls "(for generator)", and `stuck` looks for
-- that name, which a tail call would take off the stack.
local function keep(...) return ... end
local function wrap_lines(cfn)
  local lines = M.wrap(cfn, "lines", true)
  return function(...)
    local it = lines(...)
    if type(it) ~= "function" then return it end
    local drv = M.wrap(it, "for iterator")
    if not PUC51 then return drv end
    return function(...) return keep(drv(...)) end
  end
end

--- pcall, but a driven coroutine may wait inside it on PUC Lua 5.1 too,
-- whose pcall cannot be yielded across (LuaJIT's and 5.2's can): there
-- fn runs in a coroutine of its own, and each netlua wait in it is
-- handed out to its caller, which waits as any driven coroutine does.
-- The caller must be the one that waits: a loop adapter (luv, copas)
-- resumes the coroutine that called its `wait`, and one resumed inside
-- here would run on without its caller, whose pcall never returned.
-- Any other yield of fn (a loop's own, e.g. cqueues.sleep) is passed on
-- outward as it is, and what the caller is resumed with goes back in.
if PUC51 then
  local create, resume, status = coroutine.create, coroutine.resume, coroutine.status
  function M.pcall(fn, ...)
    if not core.coop_active() then return pcall(fn, ...) end
    local co = create(fn)
    if core.coop_task() then core.coop_register(co) end
    nested[co] = true
    local r = pack(resume(co, ...))
    while r[1] and status(co) ~= "dead" do
      if r[2] == WAIT then
        r = pack(resume(co, wait(r[3], r[4], r[5], r[6])))
      else
        r = pack(resume(co, yield(unpack(r, 2, r.n))))
      end
    end
    return unpack(r, 1, r.n)
  end
else
  M.pcall = pcall
end

--- The kinds of object whose C methods get drivers on `activate`: those
-- whose methods may wait, as C made them (csrc/class.c).
M.KINDS = core.KINDS

local active = false

local function is_c(f)
  return type(f) == "function" and debug.getinfo(f, "S").what == "C"
end

--- Gives every C method of netlua's objects its driver, once: called by
-- netlua.run (and by loop adapters) before anything runs in a task.
function M.activate()
  if active then return end
  active = true
  for _, kind in ipairs(M.KINDS) do
    local ok, methods = pcall(core.methods, kind)
    if ok and type(methods) == "table" then
      local names = {}
      for name, f in pairs(methods) do
        if is_c(f) then names[#names + 1] = name end
      end
      for _, name in ipairs(names) do
        local f = methods[name]
        methods[name] = name == "lines" and wrap_lines(f) or M.wrap(f, name, true)
      end
    end
  end
end

return M
