--- netlua.loop: netlua's blocking calls inside another event loop.
--
--     local cqueues = require "cqueues"
--     local netlua = require "netlua"
--     netlua.loop.use()              -- cqueues is loaded: it drives netlua
--     local cq = cqueues.new()
--     cq:wrap(function()
--       local tn = assert(netlua.telnet.open("192.0.2.20", 23, {timeout = 10}))
--       ...                          -- waits through cqueues; the loop runs on
--     end)
--     assert(cq:loop())
--
-- Once a loop is in use, every netlua call that would block inside a
-- coroutine that can yield waits through that loop instead: only that
-- coroutine waits, the loop's other coroutines, timers and callbacks run
-- meanwhile, and deadlines stay whole.  Outside coroutines (the main
-- thread, a C callback) the calls block as they always do.  netlua.run's
-- own tasks keep its scheduler.
--
-- Adapters (one file each): `"cqueues"` (netlua.loop_cqueues), `"luv"`
-- (netlua.loop_luv; Neovim's `vim.uv` too), `"copas"` (netlua.loop_copas,
-- copas 1.x).  Any other loop takes a table `{name =, wait =, onclose =}`:
-- see `use` and doc/loops.md.
-- @module netlua.loop
local core = require "netlua.core"
local drive = require "netlua.drive"

local M = {}

--- The loops `use()` knows, in the order it looks for them.
M.NAMES = {"cqueues", "luv", "copas"}

local current = nil   -- the adapter in use

-- ---- lookups: the resolver pool's bell, shared by every adapter --------

-- A name lookup runs in netlua's resolver pool; the coroutine waiting for
-- it is parked on a key.  When lookups finish the pool rings one
-- descriptor per Lua state (the bell), and draining it names the keys
-- that are done.  Adapters watch the bell (one watcher, while anyone
-- waits for a key), call `ring`, and `ring` calls the wake function each
-- waiter left with `park_key`: exactly the coroutines whose lookups
-- ended run again.
local resolve_bell, resolve_drain = core.resolve_bell, core.resolve_drain
local keyed = {}      -- key -> wake function
local nkeyed = 0

--- The resolver pool's bell: a descriptor that becomes readable when
-- lookups finish (-1 before the first lookup in a driven coroutine), and
-- how many lookups coroutines are parked on.
-- @treturn integer fd
-- @treturn integer lookups waited for
function M.bell()
  return resolve_bell()
end

--- Registers `wake()` to be called (once) when the lookup `key` ends, or
-- when the object it is for closes.
function M.park_key(key, wake)
  if keyed[key] == nil then nkeyed = nkeyed + 1 end
  keyed[key] = wake
end

--- Forgets the waiter of `key` (its wait ended otherwise: a timer).
function M.unpark_key(key)
  if keyed[key] ~= nil then
    nkeyed = nkeyed - 1
    keyed[key] = nil
  end
end

--- How many coroutines wait for a lookup through an adapter.
function M.key_waiters()
  return nkeyed
end

local function wake_key(key)
  local wake = keyed[key]
  if wake ~= nil then
    M.unpark_key(key)
    wake()
  end
end

-- netlua.run, run inside one of the loop's coroutines (mirror does),
-- drains the bell too: it hands on the keys none of its tasks waits for
drive.key_done = wake_key

--- Empties the bell and wakes the waiters of every lookup that ended.
-- Returns how many it woke.
function M.ring()
  local keys = resolve_drain()
  local n = 0
  for i = 1, #keys do
    if keyed[keys[i]] ~= nil then
      n = n + 1
      wake_key(keys[i])
    else
      -- a task's, of a netlua.run in one of the loop's coroutines
      drive.sched_key(keys[i])
    end
  end
  return n
end

--- Waits as netlua does outside any loop, blocking the whole program:
-- for an adapter called in a coroutine its loop does not run (cqueues'
-- adapter outside a controller).  Same arguments as an adapter's `wait`;
-- a lookup (`key`) is looked at again after at most 50 ms, or when the
-- bell rings.
function M.block(fd, events, at, key)
  local left = at >= 0 and math.max(0, at - core.monotime()) or nil
  if key ~= nil then
    local look = left and math.min(left, 0.05) or 0.05
    local bell = resolve_bell()
    if bell >= 0 then core.wait({bell}, look) else core.sleep(look) end
    return
  end
  local fds = type(fd) == "table" and fd or (fd >= 0 and {fd} or {})
  if #fds > 0 then
    core.wait(fds, left or -1, events == 2 and "w" or events == 3 and "rw" or "r")
  elseif left then
    core.sleep(left)
  end
end

-- ---- choosing the loop --------------------------------------------------

local function loaded(name)
  if name == "luv" then
    -- Neovim gives luv as vim.uv (vim.loop before 0.10)
    local vim = rawget(_G, "vim")
    if package.loaded.luv ~= nil then return true end
    -- vim's fields may come from its lazy loader: index it, protected
    local ok, uv = pcall(function() return vim.uv or vim.loop end)
    return type(vim) == "table" and ok and uv ~= nil
  end
  return package.loaded[name] ~= nil
end

--- Which of the known loops are loaded (`package.loaded`): cqueues by
-- `package.loaded.cqueues`, luv by `package.loaded.luv` (or Neovim's
-- `vim.uv`/`vim.loop`), copas by `package.loaded.copas`.
-- @treturn table names, in `NAMES` order
function M.detect()
  local found = {}
  for _, name in ipairs(M.NAMES) do
    if loaded(name) then found[#found + 1] = name end
  end
  return found
end

local function stop()
  drive.set_wait(nil)
  local old = current
  current = nil
  if old and old.stop then old.stop() end
end

--- Makes a loop drive netlua's blocking calls in its coroutines.
--
-- * `use("cqueues")`, `use("luv")`, `use("copas")`: that loop's adapter
--   (the loop's module is required if it is not loaded yet);
-- * `use()`: the one of them that is loaded already (`detect`); an error
--   if none is, or several are (then name it);
-- * `use(adapter)`: a loop of your own, a table
--   `{name = "...", wait = function(fd, events, until, key) end,
--   onclose = function(x) end}` (onclose optional): `wait` runs inside
--   the coroutine that waits and returns when it may go on (see
--   doc/loops.md for the whole contract);
-- * `use(false)`: stops; coroutines then block again (netlua.run is not
--   affected).
--
-- A loop already in use is replaced.
-- @return the adapter's name (nil after `use(false)`)
function M.use(what)
  if what == false then
    stop()
    return nil
  end
  local adapter
  if what == nil then
    local found = M.detect()
    if #found == 0 then
      error("netlua.loop.use: no event loop is loaded (require cqueues, luv "
        .. "or copas first, or pass its name or an adapter)", 2)
    elseif #found > 1 then
      error("netlua.loop.use: several event loops are loaded (" .. table.concat(found, ", ")
        .. "): name the one that runs your coroutines, e.g. use(\"" .. found[1] .. "\")", 2)
    end
    what = found[1]
  end
  if type(what) == "string" then
    local known = false
    for _, name in ipairs(M.NAMES) do known = known or name == what end
    if not known then
      error("bad argument #1 to 'use' (unknown loop \"" .. what .. "\": "
        .. table.concat(M.NAMES, ", ") .. " or an adapter table expected)", 2)
    end
    local ok, make = pcall(require, "netlua.loop_" .. what)
    if not ok then error(make, 2) end
    local made, err = pcall(make, M)
    if not made then error(err, 2) end
    adapter = err
  elseif type(what) == "table" then
    if type(what.wait) ~= "function" then
      error("bad argument #1 to 'use' (adapter.wait must be a function)", 2)
    end
    if what.onclose ~= nil and type(what.onclose) ~= "function" then
      error("bad argument #1 to 'use' (adapter.onclose must be a function)", 2)
    end
    adapter = what
  else
    error("bad argument #1 to 'use' (loop name, adapter table or false expected, got "
      .. type(what) .. ")", 2)
  end
  stop()
  if adapter.start then adapter.start() end
  current = adapter
  local wait, onclose = adapter.wait, adapter.onclose
  drive.set_wait(function(fd, events, at, key)
    wait(fd, events, at, key)
    -- a lookup is done or not: either way the bell is emptied, so an
    -- adapter that waits for lookups by timer alone keeps no finished
    -- lookup in the pool's list
    if key ~= nil then M.ring() end
  end, function(x)
    if type(x) ~= "number" then wake_key(x) end
    if onclose then onclose(x) end
  end)
  return adapter.name
end

--- The name of the adapter in use, or nil.
function M.current()
  return current and (current.name or "?") or nil
end

return M
