-- netlua.loop itself: which loop use() picks, its errors, use(false), and
-- a loop of one's own given as an adapter table (here a loop of a few
-- lines whose lookups wait by timer alone).  The adapters for cqueues,
-- luv and copas have a spec each (loop_*_spec.lua).
local H = require "helper"
local netlua = require "netlua"
local loop = require "netlua.loop"
local core = require "netlua.core"

-- runs fn with only the loops `present` names in package.loaded: the
-- module itself if it is loaded, else a stand-in (use() only looks; luv
-- must not be loaded here for real, as busted unloads each spec file's
-- modules afterwards, and luv 1.44 loaded again finds its loop freed)
local function with_loaded(present, fn)
  local saved = {}
  for _, name in ipairs(loop.NAMES) do
    saved[name] = package.loaded[name]
    package.loaded[name] = present[name] and (saved[name] or {}) or nil
  end
  local ok, err = pcall(fn)
  for _, name in ipairs(loop.NAMES) do package.loaded[name] = saved[name] end
  loop.use(false)
  assert(ok, err)
end

-- The smallest loop of one's own: coroutines wait on a descriptor, a time
-- or a key (a lookup, or a netlua.run waiting for another), until the
-- adapter's onclose names what they wait on.  `on_key(at)` may shorten a
-- key's wait (a loop that looks at lookups by timer).  `loop.ready` takes
-- the coroutines to start; `loop.run(limit)` drives them.
local function tiny_loop(on_key)
  local lp = {waiting = {}, ready = {}, waits = {}, closed = {}}
  local adapter = {name = "mine"}
  lp.adapter = adapter
  function adapter.wait(fd, events, at, key)
    local co = coroutine.running()
    lp.waits[co] = (lp.waits[co] or 0) + 1
    if key ~= nil and on_key then at = on_key(at) end
    lp.waiting[co] = {fd = type(fd) == "table" and fd[1] or fd, at = at, key = key}
    coroutine.yield()
    lp.waiting[co] = nil
  end
  function adapter.onclose(x)
    lp.closed[#lp.closed + 1] = x
    for _, w in pairs(lp.waiting) do
      if w.fd == x or (w.key ~= nil and w.key == x) then w.woken = true end
    end
  end
  function lp.run(limit)
    local t0 = netlua.monotime()
    while (#lp.ready > 0 or next(lp.waiting)) and netlua.monotime() - t0 < limit do
      local now = lp.ready
      lp.ready = {}
      for _, co in ipairs(now) do assert(coroutine.resume(co)) end
      local fds, soonest, woken = {}, math.huge, false
      for _, w in pairs(lp.waiting) do
        if w.fd >= 0 then fds[#fds + 1] = w.fd end
        if w.at >= 0 then soonest = math.min(soonest, w.at) end
        woken = woken or w.woken
      end
      local left = woken and 0 or soonest == math.huge and 1 or math.max(0, soonest - netlua.monotime())
      local r = #fds > 0 and netlua.wait(fds, left, "rw") or (netlua.sleep(left) and nil)
      local hit = {}
      for _, d in ipairs(r or {}) do hit[d] = true end
      for co, w in pairs(lp.waiting) do
        if w.woken or hit[w.fd] or (w.at >= 0 and w.at <= netlua.monotime()) then
          lp.ready[#lp.ready + 1] = co
        end
      end
    end
  end
  return lp
end

describe("netlua.loop", function()
  after_each(function() loop.use(false) end)

  it("use() takes the one loop that is loaded", function()
    with_loaded({cqueues = true}, function()
      assert.same({"cqueues"}, loop.detect())
      assert.equal("cqueues", loop.use())
      assert.equal("cqueues", loop.current())
    end)
    with_loaded({luv = true}, function()
      assert.equal("luv", loop.use())
      assert.equal("luv", loop.current())
    end)
  end)

  it("use() finds Neovim's vim.uv, even from vim's lazy loader", function()
    with_loaded({}, function()
      local fake_uv = {}
      _G.vim = setmetatable({}, {__index = function(_, k) if k == "uv" then return fake_uv end end})
      local ok, found = pcall(loop.detect)
      _G.vim = nil
      assert(ok, found)
      assert.same({"luv"}, found)
    end)
  end)

  it("use() refuses when no loop or several are loaded", function()
    with_loaded({}, function()
      local ok, err = pcall(loop.use)
      assert.is_false(ok)
      assert.matches("no event loop is loaded", err)
      assert.is_nil(loop.current())
    end)
    with_loaded({cqueues = true, luv = true}, function()
      local ok, err = pcall(loop.use)
      assert.is_false(ok)
      assert.matches("several event loops are loaded %(cqueues, luv%)", err)
      assert.is_nil(loop.current())
    end)
  end)

  it("use() names what is wrong with its argument", function()
    assert.matches("unknown loop \"libev\"", select(2, pcall(loop.use, "libev")))
    assert.matches("adapter.wait must be a function", select(2, pcall(loop.use, {name = "x"})))
    assert.matches("got number", select(2, pcall(loop.use, 42)))
  end)

  it("use(false) stops: a coroutine's call blocks again", function()
    assert.equal("cqueues", loop.use("cqueues"))
    assert.is_nil(loop.use(false))
    assert.is_nil(loop.current())
    assert.is_false(core.coop_active())
    -- the sleep happens inside the coroutine, which never yields
    local co = coroutine.create(function() netlua.sleep(0.02) return "slept" end)
    assert.same({true, "slept"}, {coroutine.resume(co)})
    assert.equal("dead", coroutine.status(co))
  end)

  it("drives netlua through an adapter of one's own, lookups by timer alone", function()
    local port = H.free_port()
    local pid = H.lua_server("drip", port, 5, 0.05)
    -- a lookup waits by timer: it looks again in 5 ms
    local keys = 0
    local lp = tiny_loop(function(at)
      keys = keys + 1
      local soon = netlua.monotime() + 0.005
      return at >= 0 and math.min(at, soon) or soon
    end)
    local mine, ready = lp.adapter, lp.ready
    assert.equal("mine", loop.use(mine))
    assert.equal("mine", loop.current())
    local got, ports, fd, ticks, done = {}, {}, nil, 0, 0
    -- one resolver thread and 10 lookups: the later ones surely wait
    local threads = netlua.lookup.resolver_threads(1)
    ready[#ready + 1] = coroutine.create(function()
      local s = assert(netlua.tcp.connect("127.0.0.1", port, {timeout = 5}))
      fd = s:fileno()
      for i = 1, 5 do got[i] = assert(s:receive(1)) end
      s:close()
      done = done + 1
    end)
    for i = 1, 10 do
      ready[#ready + 1] = coroutine.create(function()
        ports[i] = assert(netlua.lookup.getaddrinfo("localhost", "ftp"))[1].port
        done = done + 1
      end)
    end
    ready[#ready + 1] = coroutine.create(function()
      while done < 11 do ticks = ticks + 1 netlua.sleep(0.01) end
    end)
    lp.run(10)
    loop.use(false)
    netlua.lookup.resolver_threads(threads)
    H.kill(pid)
    assert.equal(11, done)
    assert.same({"x", "x", "x", "x", "x"}, got)
    for i = 1, 10 do assert.equal(21, ports[i]) end
    assert.is_true(keys >= 1, "the lookup never waited")
    -- the adapter heard of the close before the descriptor went
    assert.is_truthy(fd)
    local told = false
    for _, x in ipairs(lp.closed) do told = told or x == fd end
    assert.is_true(told)
    -- nothing of the lookup is left for anyone to drain
    assert.same({}, core.resolve_drain())
    assert.is_true(ticks >= 10, "the loop's timer ticked " .. ticks .. " times")
  end)

  it("a second netlua.run waits for the first without polling", function()
    -- a loop whose key waits end only by onclose (or their deadline): a
    -- run that looked again every few ms would be counted here
    local lp = tiny_loop()
    loop.use(lp.adapter)
    local order = {}
    local first = coroutine.create(function()
      order[#order + 1] = "first starts"
      assert(netlua.run(function() netlua.sleep(0.2) order[#order + 1] = "first's task" end))
      order[#order + 1] = "first ends"
    end)
    local second = coroutine.create(function()
      order[#order + 1] = "second starts"
      assert(netlua.run(function() order[#order + 1] = "second's task" end))
      order[#order + 1] = "second ends"
    end)
    lp.ready = {first, second}
    lp.run(5)
    loop.use(false)
    assert.same({"first starts", "second starts", "first's task", "first ends",
                 "second's task", "second ends"}, order)
    assert.equal("dead", coroutine.status(second))
    -- parked once, woken once by the end of the first run
    assert.equal(1, lp.waits[second])
  end)
end)
