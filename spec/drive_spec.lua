-- How blocking calls wait (netlua.drive): every C operation is a step
-- that finishes or hands back what it waits for, and a Lua driver waits
-- through the loop.  These specs hold the parts a user meets: errors read
-- as if the C function had been called directly, a method saved before
-- netlua.run fails clearly instead of misbehaving, and any loop can drive
-- netlua through drive.set_wait (here a loop of a few lines, with a
-- timer of its own that must keep ticking while netlua waits).
local H = require "helper"
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local udp = require "netlua.udp"
local drive = require "netlua.drive"

describe("netlua.drive", function()
  it("names the function and the argument in errors, in a task as outside", function()
    local function errs()
      local u = assert(udp.socket{family = "inet"})
      local e1 = select(2, pcall(function() local x = tcp.connect(nil, 1) return x end))
      local e2 = select(2, pcall(function() local x = u:setpeername("127.0.0.1", 99999) return x end))
      local e3 = select(2, pcall(function() local x = u:receivefrom("x") return x end))
      u:close()
      return {e1, e2, e3}
    end
    local outside = errs()
    local inside
    assert(netlua.run(function() inside = errs() end))
    assert.matches("drive_spec.lua:%d+: bad argument #1 to 'connect' %(string expected, got nil%)$", outside[1])
    assert.matches("bad argument #2 to 'setpeername' %(port out of range 0..65535%)$", outside[2])
    assert.matches("bad argument #1 to 'receivefrom'", outside[3])
    for i = 1, 3 do
      -- same text; the position is the script's line, not the driver's
      assert.equal(outside[i]:gsub("^[^:]*:%d+: ", ""), (inside[i]:gsub("^[^:]*:%d+: ", "")))
      assert.matches("drive_spec.lua:%d+: ", inside[i])
    end
  end)

  it("a method saved before netlua.run raises in a task instead of blocking", function()
    -- in a fresh process: here netlua.run has given the methods drivers
    local port = H.free_port()
    local pid = H.lua_server("drip", port, 3, 0.2)
    local dir = H.tmpdir()
    H.write_file(dir .. "/saved.lua", ([[
      local netlua = require "netlua"
      local s = assert(netlua.tcp.connect("127.0.0.1", %d, {timeout = 5}))
      local receive = s.receive  -- the plain C method, saved
      netlua.run(function()
        print(select(2, pcall(receive, s, 2)))  -- the second byte is 0.2 s off
        print(s:receive(1))  -- through the object: driven
      end)
    ]]):format(port))
    local out = H.sh(("LUA_PATH=%s LUA_CPATH=%s " .. H.lua .. " %s 2>&1"):format(
      H.shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;"),
      H.shquote(H.root .. "/" .. H.build .. "/?.so;;"), dir .. "/saved.lua"))
    H.kill(pid)
    H.rm_rf(dir)
    assert.matches("called without its driver inside a task", out)
    assert.matches("\nx\n", out)
  end)

  it("lets a loop of its own drive netlua, its timer ticking meanwhile", function()
    local port = H.free_port()
    local pid = H.lua_server("drip", port, 5, 0.1)
    -- the smallest event loop: coroutines, each waiting on a descriptor
    -- and/or a time, polled with netlua.wait outside any task
    local waiting, ready = {}, {}
    local function spawn(fn) ready[#ready + 1] = coroutine.create(fn) end
    drive.set_wait(function(fd, events, at)
      local co = coroutine.running()
      waiting[co] = {fd = type(fd) == "table" and fd[1] or fd, at = at, ev = events}
      coroutine.yield()
      waiting[co] = nil
    end)
    local got, ticks, done = {}, 0, false
    spawn(function()
      local s = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
      for _ = 1, 5 do got[#got + 1] = assert(s:receive(1)) end
      local d, e = s:receive(1)
      assert.is_nil(d)
      assert.equal("closed", e)
      s:close()
      done = true
    end)
    spawn(function()
      while not done do ticks = ticks + 1 netlua.sleep(0.02) end
    end)
    local t0 = netlua.monotime()
    while (#ready > 0 or next(waiting)) and netlua.monotime() - t0 < 10 do
      local now = ready
      ready = {}
      for _, co in ipairs(now) do assert(coroutine.resume(co)) end
      -- wait for the first descriptor or time due, then run what is due
      local fds, soonest = {}, math.huge
      for _, w in pairs(waiting) do
        if w.fd >= 0 then fds[#fds + 1] = w.fd end
        if w.at >= 0 then soonest = math.min(soonest, w.at) end
      end
      local left = soonest == math.huge and 1 or math.max(0, soonest - netlua.monotime())
      local r = #fds > 0 and netlua.wait(fds, left, "rw") or (netlua.sleep(left) and nil)
      local hit = {}
      for _, fd in ipairs(r or {}) do hit[fd] = true end
      for co, w in pairs(waiting) do
        if hit[w.fd] or (w.at >= 0 and w.at <= netlua.monotime()) then
          ready[#ready + 1] = co
        end
      end
    end
    drive.set_wait(nil)
    H.kill(pid)
    assert.is_true(done)
    assert.same({"x", "x", "x", "x", "x"}, got)
    -- 0.5 s of dripping: the timer ran all along, not after
    assert.is_true(ticks >= 10, "the timer ticked " .. ticks .. " times")
  end)
end)
