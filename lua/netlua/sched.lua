--- netlua.sched: run many network conversations at once from one script.
--
--     local netlua = require "netlua"
--     for _, host in ipairs(hosts) do
--       netlua.spawn(function()
--         local s = assert(netlua.tcp.connect(host, 23, {timeout = 5}))
--         ...
--       end)
--     end
--     netlua.run()
--
-- Inside a coroutine started with `spawn`, every blocking netlua call that
-- supports it (TCP connect, accept, reads and writes, `netlua.sleep`,
-- `netlua.wait`)
-- yields to the scheduler instead of blocking the process, with its
-- timeout intact; outside, the same calls block as before.  One poller
-- (epoll on Linux, poll elsewhere) waits for all of them.
--
-- Closing an object while another task waits on it wakes that task: its
-- call returns nil, "<op>: closed", "closed" (the C close routines call
-- back here through drive.on_close before they close the descriptor).
--
-- Tasks coordinate with `join` (wait for a task's end and take its
-- results) and events (`event()`: wait/set/clear), so nothing has to poll.
--
-- Not here: threads, preemption.  A task that computes for a long time
-- without calling netlua holds up the others; `netlua.sched.yield()` lets
-- them run.
-- @module netlua.sched
local core = require "netlua.core"
local drive = require "netlua.drive"

local WAIT = core.WAIT
local monotime = core.monotime
local resume, status, create = coroutine.resume, coroutine.status, coroutine.create
-- 5.1 and LuaJIT lack table.pack, table.unpack and math.type
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local unpack = table.unpack or unpack
local mtype = math.type or function(x)
  if type(x) == "number" then return x % 1 == 0 and "integer" or "float" end
end

local M = {}

-- run queue: a ring of coroutines to resume with no values, or of
-- {co, args...} for those resumed with some (most wakes carry none, and
-- a table per wake is what a fleet of tasks would allocate most)
local queue, qhead, qtail = {}, 1, 0
local tasks = 0            -- live tasks
local fdwait = {}          -- fd -> {[co] = events}: every task parked on fd
local waiting = {}         -- co -> {fd=, ev=, at=, co=, key=, tq=, hi=} while parked
local keyed = {}           -- key -> co parked on it (a name lookup)
local heap, heapn = {}, 0  -- timers out of order: `waiting` records with a deadline
local known = setmetatable({}, {__mode = "k"})     -- co -> true: spawned here
local finished = setmetatable({}, {__mode = "k"})  -- co -> results or {err=}
local joiners = setmetatable({}, {__mode = "k"})   -- co -> event set at its end
local poller
local running = false
local stepping = false     -- a task runs (resumed by step)
local run_waiters = {}     -- set: keys of runs (in other loop coroutines) waiting for this one
local errors = {}

local function push_ready(co)
  qtail = qtail + 1
  queue[qtail] = co
end

-- the same, for a task to be resumed with values
local function push_ready_with(co, ...)
  qtail = qtail + 1
  if select("#", ...) == 0 then queue[qtail] = co else queue[qtail] = pack(co, ...) end
end

-- Binary heap of timers ordered by `at`.  Each entry knows its place
-- (`hi`).  Most waits end long before their deadline (a read with a
-- 120 s timeout that data ends in milliseconds); taking each out at once
-- would cost a sift through the heap per wait.  Instead a wait that ends
-- early is only marked dead (`hi` stays, `co` goes) and dropped when it
-- reaches the top; when the dead outnumber the live, the heap is rebuilt
-- without them, so a fleet of thousands of tasks with long timeouts
-- keeps at most twice its live timers.
local heapdead = 0
local function heap_set(i, t)
  heap[i] = t
  t.hi = i
end

local function sift_up(i)
  local t = heap[i]
  while i > 1 do
    local p = math.floor(i / 2)
    if heap[p].at <= t.at then break end
    heap_set(i, heap[p])
    i = p
  end
  heap_set(i, t)
end

local function sift_down(i)
  local t = heap[i]
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    local mat = t.at
    if l <= heapn and heap[l].at < mat then m, mat = l, heap[l].at end
    if r <= heapn and heap[r].at < mat then m = r end
    if m == i then break end
    heap_set(i, heap[m])
    i = m
  end
  heap_set(i, t)
end

local function heap_push(t)
  heapn = heapn + 1
  heap_set(heapn, t)
  sift_up(heapn)
end

-- takes the top timer off the heap
local function heap_pop()
  local t = heap[1]
  t.hi = nil
  local last = heap[heapn]
  heap[heapn] = nil
  heapn = heapn - 1
  if heapn > 0 then
    heap_set(1, last)
    sift_down(1)
  end
  return t
end

-- Keeps only the live timers, in heap order again (bottom-up, O(n)).
local function heap_compact()
  local n = 0
  for i = 1, heapn do
    local t = heap[i]
    heap[i] = nil
    if t.co then
      n = n + 1
      heap[n] = t
      t.hi = n
    else
      t.hi = nil
    end
  end
  heapn, heapdead = n, 0
  for i = math.floor(n / 2), 1, -1 do sift_down(i) end
end

-- A wait that ended before its deadline: its timer is dead.
local function heap_forget(t)
  t.co = nil
  heapdead = heapdead + 1
  if heapdead > 64 and heapdead * 2 > heapn then heap_compact() end
end

-- Drops dead timers from the top, so heap[1] (if any) is live.  Timers
-- of one length die in the order they were set, so the dead gather at
-- the top: many of them go in one rebuild rather than a sift each.
local function heap_top()
  while heapn > 0 and not heap[1].co do
    if heapdead > 16 and heapdead * 4 > heapn then
      heap_compact()
    else
      heap_pop()
      heapdead = heapdead - 1
    end
  end
  return heap[1]
end

-- Timers come mostly in order: every read of a fleet's sessions waits
-- with one timeout length, so each new deadline is the latest of its
-- kind.  A timer goes at the end of the first run (a FIFO whose
-- deadlines never decrease) whose last deadline is not after its own:
-- one append, where the heap costs a sift down each time one leaves its
-- top.  Only a timer no run takes (after MAXRUNS runs) goes to the heap.
-- A record knows where it is (`tq`: its run, or the heap); a wait that
-- ends early only marks it dead, as in the heap, and the dead leave at
-- the front of their run, or in a rebuild once they outnumber the live.
local MAXRUNS = 8
local runs = {}  -- each {first=, last=, dead=, [first..last] = records}

local function timer_add(w)
  for i = 1, #runs do
    local r = runs[i]
    local last = r.last
    if last < r.first or r[last].at <= w.at then
      last = last + 1
      r[last] = w
      r.last = last
      w.tq = r
      return
    end
  end
  if #runs < MAXRUNS then
    local r = {first = 1, last = 1, dead = 0, w}
    runs[#runs + 1] = r
    w.tq = r
    return
  end
  w.tq = heap
  heap_push(w)
end

-- Keeps only the live records of run r, in order.
local function run_compact(r)
  local k = 0
  for i = r.first, r.last do
    local w = r[i]
    r[i] = nil
    if w.co then
      k = k + 1
      r[k] = w
    end
  end
  r.first, r.last, r.dead = 1, k, 0
end

-- A wait that ended before its deadline: its timer is dead.
local function timer_forget(w)
  local r = w.tq
  if r == heap then return heap_forget(w) end
  w.co = nil
  local dead = r.dead + 1
  r.dead = dead
  if dead > 64 and dead * 2 > r.last - r.first + 1 then run_compact(r) end
end

-- The live record first in run r (the dead before it go), or nil.
local function run_front(r)
  local i, last = r.first, r.last
  while i <= last and not r[i].co do
    r[i] = nil
    i = i + 1
    r.dead = r.dead - 1
  end
  if i > last then
    r.first, r.last, r.dead = 1, 0, 0
    return nil
  end
  r.first = i
  return r[i]
end

-- The live timer with the soonest deadline, or nil.
local function timer_top()
  local best = heap_top()
  for i = 1, #runs do
    local w = run_front(runs[i])
    if w and (best == nil or w.at < best.at) then best = w end
  end
  return best
end

-- Takes t, the record timer_top returned, out.
local function timer_pop(t)
  local r = t.tq
  t.tq = nil
  if r == heap then
    heap_pop()
  else
    r[r.first] = nil
    r.first = r.first + 1
  end
end

local READ, WRITE = core.WAIT_READ, core.WAIT_WRITE

-- a | b for event sets (5.1 has no bitwise operators)
local function bor(a, b)
  if a == b or b == 0 then return a end  -- the usual cases
  if a == 0 then return b end
  local r, bit = 0, 1
  while a > 0 or b > 0 do
    if a % 2 == 1 or b % 2 == 1 then r = r + bit end
    a, b, bit = (a - a % 2) / 2, (b - b % 2) / 2, bit * 2
  end
  return r
end

-- Watches fd for what its parked tasks want together.  Several tasks may
-- wait on one descriptor (a reader and a writer; a read that must also
-- flush, as Telnet's does): none of them replaces another.
local spare = {}  -- emptied fdwait sets, for the next park to reuse
-- descriptors the poller has had (a hint: the first watch of a new one
-- is one epoll_ctl ADD instead of a MOD that fails first; a stale hint
-- costs that one failed call, never a wrong watch)
local registered = {}

local function arm(fd, ev)
  local known = registered[fd]
  registered[fd] = true
  return poller:watch(fd, ev, known)
end

local function rearm(fd)
  local f = fdwait[fd]
  local ev = 0
  if f then
    local co, e = next(f)
    if co ~= nil then
      ev = e
      if next(f, co) ~= nil then  -- several tasks (not the usual one)
        for _, e2 in pairs(f) do ev = bor(ev, e2) end
      end
    end
  end
  if ev == 0 then
    -- nobody waits: leave the descriptor registered.  A one-shot report
    -- disarmed it already (the usual case: the next wait re-arms it with
    -- one epoll_ctl instead of three); one still armed (a timeout) reports
    -- at most once more, to nobody; a closed one the kernel drops.
    if f then
      fdwait[fd] = nil
      spare[#spare + 1] = f
    end
    return
  end
  arm(fd, ev)
end

local function unwatch(co, fd)
  local f = fdwait[fd]
  if f and f[co] then
    f[co] = nil
    rearm(fd)
  end
end

local function watch(co, fd, ev)
  local f = fdwait[fd]
  if not f then
    local n = #spare
    if n > 0 then f = spare[n]; spare[n] = nil else f = {} end
    fdwait[fd] = f
  end
  f[co] = ev
  rearm(fd)
end

-- take co off whatever it waits for (w.fd is one descriptor, -1 for
-- none, or for netlua.wait an array of them)
local function unpark(co)
  local w = waiting[co]
  if not w then return end
  waiting[co] = nil
  if w.key ~= nil then keyed[w.key] = nil end
  if w.tq then timer_forget(w) end
  local fd = w.fd
  if type(fd) == "table" then
    for _, d in ipairs(fd) do unwatch(co, d) end
  elseif fd >= 0 then
    unwatch(co, fd)
  end
end

-- key: a C operation that waits on no descriptor (a name lookup in the
-- resolver pool) is woken by naming its key
local function park(co, fd, ev, at, key)
  local w = {fd = fd, ev = ev, at = at, co = co, key = key, tq = false}
  waiting[co] = w
  if key ~= nil then keyed[key] = co end
  if type(fd) == "table" then
    for _, d in ipairs(fd) do watch(co, d, ev) end
  elseif fd >= 0 then
    watch(co, fd, ev)
  end
  -- the record itself is the timer, taken out by unpark
  if at >= 0 then timer_add(w) end
end

-- Every task parked on fd runs again (each retries its own operation).
local function wake_fd(fd)
  local f = fdwait[fd]
  if not f then return end
  local co = next(f)
  if next(f, co) == nil then  -- one task: the usual case, no list
    unpark(co)
    push_ready(co)
    return
  end
  local cos = {}
  for co in pairs(f) do cos[#cos + 1] = co end
  for _, co in ipairs(cos) do
    unpark(co)
    push_ready(co)
  end
end

-- The task parked on key (if any) runs again.
local function wake_key(key)
  local co = keyed[key]
  if co then
    unpark(co)
    push_ready(co)
  end
end

-- An object is about to close fd (called from C before close()): the
-- tasks parked on it run again, and their calls return "closed"; taking
-- them off fd also makes the poller forget it, so the number can be
-- reused at once without waking anyone by mistake.  A key instead of an
-- fd: the object closes under a task parked on that key.
drive.on_close(function(x)
  if mtype(x) == "integer" then
    wake_fd(x)
    registered[x] = nil  -- closing takes it out of the poller
  else
    wake_key(x)
  end
end)

-- Name lookups in the resolver pool ring one descriptor per Lua state
-- (the bell) when some finish; the drain names the keys of their tasks.
local resolve_bell, resolve_drain = core.resolve_bell, core.resolve_drain
local bell_watched = false

-- netlua.run inside another loop's coroutine: that loop's adapter may
-- drain the bell too, and hands on the keys none of its coroutines waits
-- for.  (The run looks at its queue again within LOOK_KEYS then.)
drive.sched_key = function(key) wake_key(key) end

local function report(co, err)
  local msg = debug.traceback(co, tostring(err))
  errors[#errors + 1] = msg
  if M.onerror then M.onerror(msg) end
end

local coop_slice = core.coop_slice

-- A task ended: keep what it returned (or its error) for join.
local function ended(co, rec)
  tasks = tasks - 1
  finished[co] = rec
  local ev = joiners[co]
  if ev then
    joiners[co] = nil
    ev:set()
  end
end

-- what a resume came back with (no table for the usual wait)
local function stepped(co, ok, ...)
  stepping = false
  if not ok then
    local err = ...
    report(co, err)
    ended(co, {err = err})
  elseif status(co) == "dead" then
    ended(co, pack(...))
  elseif (...) == WAIT then
    park(co, select(2, ...))
  else
    push_ready(co) -- a plain coroutine.yield(): run again later
  end
end

local function step(item)
  if type(item) == "thread" then
    coop_slice(item)  -- its turn starts: a long run of ready data yields after a slice
    stepping = true
    return stepped(item, resume(item))
  end
  local co = item[1]
  coop_slice(co)
  stepping = true
  return stepped(co, resume(co, unpack(item, 2, item.n)))
end

--- Starts `fn(...)` as a task; it runs when `netlua.run` drives the tasks.
-- @treturn thread the task's coroutine
function M.spawn(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2)
  end
  drive.activate()  -- methods called in the task must wait through it
  local co = create(fn)
  core.coop_register(co)
  known[co] = true
  tasks = tasks + 1
  push_ready_with(co, ...)
  return co
end

-- ---- events and join -------------------------------------------------

local Event = {}
Event.__index = Event

--- An event tasks can wait for: `ev:wait([timeout])` returns true once
-- `ev:set()` has been called (at once if it already was), or
-- nil, "wait: timeout", "timeout".  `ev:clear()` unsets it, `ev:is_set()`
-- tells.  Waiting is for tasks; outside one, wait only reports the state.
-- @treturn table the event
function M.event()
  return setmetatable({flag = false, waiters = {}}, Event)
end

function Event:set()
  self.flag = true
  local w = self.waiters
  self.waiters = {}
  for _, co in ipairs(w) do
    if waiting[co] then
      unpark(co)
      push_ready_with(co, self)  -- wait() tells a set from its timer by this
    end
  end
end

function Event:clear() self.flag = false end
function Event:is_set() return self.flag end

-- The one timeout rule (core.timeout): nil and negative numbers block,
-- NaN and what is no number raise as a bad argument n of who.
local function checktimeout(t, n, who)
  local v, why = core.timeout(t)
  if not v then error(("bad argument #%d to '%s' (%s)"):format(n, who, why), 3) end
  return v
end

function Event:wait(timeout)
  local t = checktimeout(timeout, 1, "wait")
  if self.flag then return true end
  if not core.coop_task() then
    if timeout == 0 then return nil, "wait: timeout", "timeout" end
    error("event:wait blocks only inside a task of netlua.run (nothing else could set it)", 2)
  end
  local co = coroutine.running()
  self.waiters[#self.waiters + 1] = co
  local at = t >= 0 and monotime() + t or -1
  local by = coroutine.yield(WAIT, -1, 0, at)
  if by == self or self.flag then return true end
  for i, w in ipairs(self.waiters) do  -- the timer came first
    if w == co then table.remove(self.waiters, i) break end
  end
  return nil, "wait: timeout", "timeout"
end

--- Waits until task `co` (from spawn) has ended: true and whatever its
-- function returned; nil, its error, "task" if it failed; or nil,
-- "join: timeout", "timeout".  A task that has ended answers at once,
-- from anywhere.
function M.join(co, timeout)
  if type(co) ~= "thread" or not known[co] then
    error("bad argument #1 to 'join' (a task from netlua.spawn expected)", 2)
  end
  checktimeout(timeout, 2, "join")
  local rec = finished[co]
  if not rec then
    local ev = joiners[co] or M.event()
    joiners[co] = ev
    local ok = ev:wait(timeout)
    if not ok then return nil, "join: timeout", "timeout" end
    rec = finished[co]
  end
  if rec.err ~= nil then return nil, tostring(rec.err), "task" end
  return true, unpack(rec, 1, rec.n)
end

--- Lets the other tasks run, then continues (outside a task: does nothing).
function M.yield()
  if core.coop_task() then coroutine.yield() end
end

-- The longest netlua.run, inside another loop's coroutine, runs ready
-- tasks before it lets that loop have a turn; and how often it looks
-- for lookups that loop's bell watcher took (see drive.sched_key).
local SLICE, LOOK_KEYS = 0.01, 0.005
local pcall_ = drive.pcall  -- on PUC 5.1 the loop must wait through it

-- One turn of the scheduler: runs the ready tasks, waits for the first
-- descriptor, timer or lookup, and queues the tasks they wake.  `loop`:
-- the poller's descriptor when the run is in a coroutine another loop
-- drives (-1 where the poller has none); then the wait goes through that
-- loop (that descriptor, the deadline), and ready tasks run at most
-- SLICE before the loop gets a turn.
local function turn(loop)
  local t0 = loop and monotime()
  while qhead <= qtail do
    local item = queue[qhead]
    queue[qhead] = nil
    qhead = qhead + 1
    step(item)
    if loop and qhead <= qtail and monotime() - t0 >= SLICE then break end
  end
  if qhead > qtail then qhead, qtail = 1, 0 end
  if tasks == 0 then return end
  local timeout = -1
  local top = timer_top()
  if qhead <= qtail then
    timeout = 0
  elseif top then
    timeout = math.max(0, top.at - monotime())
  end
  local bell, lookups = resolve_bell()
  if timeout < 0 and next(fdwait) == nil and lookups == 0 then
    error("netlua.run: every task waits, but on nothing (deadlock)")
  end
  if lookups > 0 and not bell_watched then
    assert(arm(bell, READ))
    bell_watched = true
  end
  if loop then
    -- no descriptor to wait for, or a lookup the loop's watcher may take
    if (loop < 0 or next(keyed) ~= nil) and (timeout < 0 or timeout > LOOK_KEYS) then
      timeout = LOOK_KEYS
    end
    drive.wait(loop, READ, timeout >= 0 and monotime() + timeout or -1)
    timeout = 0
  end
  local ready = assert(poller:wait(timeout))
  for i = 1, #ready do
    local fd = ready[i]
    if fd == bell and bell_watched then
      bell_watched = false
      local keys = resolve_drain()
      for k = 1, #keys do
        -- a key no task waits for may be a coroutine's of another
        -- loop (netlua.run inside one of its coroutines: mirror)
        if keyed[keys[k]] then wake_key(keys[k]) else drive.key_done(keys[k]) end
      end
    else
      wake_fd(fd)
    end
  end
  local now = monotime()
  while true do
    local t = timer_top()
    if not t or t.at > now then break end
    local co = t.co
    timer_pop(t)
    if waiting[co] == t then
      unpark(co)
      push_ready(co)
    end
  end
end

--- Drives every task until all have finished.  With `fn`, spawns it
-- first.  Errors in tasks do not stop the others: each is passed to
-- `netlua.sched.onerror(msg)` (default: printed to stderr) and `run`
-- returns `nil, first_error, "task", all_errors` at the end; otherwise
-- true.  Tasks may spawn more tasks.
--
-- In a coroutine another loop drives (netlua.loop), the run waits
-- through that loop: while every task waits, its coroutine waits for the
-- scheduler's poller, and the loop runs on.  One run at a time: a run
-- called from another of the loop's coroutines meanwhile waits (through
-- the loop) until the first has ended, then runs what is left.
function M.run(fn, ...)
  poller = poller or assert(core.poller())
  local loop = drive.foreign() and (poller:fileno() or -1)
  if running then
    -- inside a task (or a coroutine one resumed) nothing else can end it
    if not loop or stepping then error("netlua.run is already running", 2) end
    -- parked on a key of its own, which the end of the run wakes: the
    -- loop does not resume it before (unless its adapter polls keys)
    local key = {}
    repeat
      run_waiters[key] = true
      drive.wait(-1, 0, -1, key)
    until not running
  end
  if fn ~= nil then M.spawn(fn, ...) end
  running = true
  errors = {}
  local ok, err = pcall_(function()
    while tasks > 0 do turn(loop) end
  end)
  running = false
  local woken = run_waiters
  run_waiters = {}
  for key in pairs(woken) do drive.wake_key(key) end
  if not ok then error(err, 0) end
  if #errors > 0 then return nil, errors[1], "task", errors end
  return true
end

M.onerror = function(msg) io.stderr:write("netlua task failed: ", msg, "\n") end

--- Sleeps `s` seconds; inside a task only that task waits.
M.sleep = drive.sleep

local function fd_of(o)
  if mtype(o) == "integer" then return o end
  return o:fileno()
end

--- Waits until one of `objects` (sockets, or anything with `fileno()`,
-- or descriptors) is ready; mode "r" (default), "w" or "rw".  For
-- scripts with a loop of their own, and for tasks waiting on descriptors
-- netlua does not own (a pipe, a terminal): inside a task only that task
-- waits.
-- @return array of the ready objects, or nil, "wait: timeout", "timeout"
function M.wait(objects, timeout, mode)
  if not core.coop_active() then return core.wait(objects, timeout, mode) end
  local t = checktimeout(timeout, 2, "wait")
  -- a look that waits for nothing also checks the other arguments
  local ready, msg, code = core.wait(objects, 0, mode)
  if ready or t == 0 then return ready, msg, code end
  local at = t >= 0 and monotime() + t or -1
  local fds = {}
  for i, o in ipairs(objects) do fds[i] = fd_of(o) end
  local ev = ((mode or "r"):find("r", 1, true) and READ or 0)
    + ((mode or "r"):find("w", 1, true) and WRITE or 0)  -- distinct bits: + is |
  while true do
    -- woken by any of them, by their close, or by the timer: look again
    drive.wait(fds, ev, at)
    ready, msg, code = core.wait(objects, 0, mode)
    if ready or (at >= 0 and monotime() >= at) then return ready, msg, code end
  end
end

--- True inside a task that netlua.run drives.
M.active = core.coop_active

return M
