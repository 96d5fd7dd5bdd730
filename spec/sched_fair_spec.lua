-- Taking turns: a task whose data is always there never has to wait, so
-- its reads never yield on their own; after a time slice (10 ms) the next
-- netlua call lets the other tasks run.  The peer is spec/servers/
-- blast.lua, which keeps the socket full; the reader does some work per
-- chunk, so the data is there every time it asks.
local netlua = require "netlua"
local telnet = require "netlua.telnet"
local H = require "helper"

local MIB = 48

-- about 2 ms of Lua work
local function work()
  local x = 0
  local stop = netlua.monotime() + 0.002
  while netlua.monotime() < stop do x = x + 1 end
  return x
end

-- Runs reader(port) in one task and a 1 ms ticker in another; returns
-- the bytes read and the longest time the ticker had to wait for a turn.
local function with_ticker(reader)
  local port = H.free_port()
  local pid = H.lua_server("blast", port, MIB)
  local n, done, gap = 0, false, nil
  assert(netlua.run(function()
    gap = H.ticker(function() return done end)
    netlua.spawn(function()
      n = reader(port)
      done = true
    end)
  end))
  H.kill(pid)
  return n, gap()
end

describe("tasks take turns", function()
  it("a TCP reader that is never kept waiting", function()
    local n, gap = with_ticker(function(port)
      local s = assert(netlua.tcp.connect("127.0.0.1", port, {timeout = 30}))
      local got = 0
      while true do
        local d = s:read(256 * 1024)
        if not d then break end
        got = got + #d
        work()
      end
      s:close()
      return got
    end)
    assert.are.equal(MIB * 1024 * 1024, n)
    -- one slice plus one chunk's work, with room for a busy machine
    assert.is_true(gap < 0.1 * H.slack, ("the ticker waited %.3f s"):format(gap))
  end)

  -- open(port) gives an object with write and close; small writes that
  -- always fit in the socket buffer go to spec/servers/drain.lua, which
  -- keeps up, so none of them waits.
  local function writer_gap(open)
    local total, chunk = 2 * 1024 * 1024, ("w"):rep(8 * 1024)
    local port = H.free_port()
    local pid = H.lua_server("drain", port)
    local n, done, gap = 0, false, nil
    assert(netlua.run(function()
      gap = H.ticker(function() return done end)
      netlua.spawn(function()
        local o = assert(open(port))
        while n < total do
          assert(o:write(chunk))
          n = n + #chunk
          work()
        end
        o:close()
        done = true
      end)
    end))
    H.kill(pid)
    assert.are.equal(total, n)
    return gap()
  end

  it("a TCP writer whose peer always keeps up", function()
    local gap = writer_gap(function(port)
      return netlua.tcp.connect("127.0.0.1", port, {timeout = 30})
    end)
    assert.is_true(gap < 0.1 * H.slack, ("the ticker waited %.3f s"):format(gap))
  end)

  it("a Telnet writer whose peer always keeps up", function()
    local gap = writer_gap(function(port)
      return telnet.open("127.0.0.1", port, {timeout = 30})
    end)
    assert.is_true(gap < 0.1 * H.slack, ("the ticker waited %.3f s"):format(gap))
  end)

  it("a Telnet reader that is never kept waiting", function()
    local n, gap = with_ticker(function(port)
      local t = assert(telnet.open("127.0.0.1", port, {timeout = 30}))
      local got = 0
      while true do
        local d = t:read_some()
        if not d then break end
        got = got + #d
        if got % (256 * 1024) < #d then work() end
      end
      t:close()
      return got
    end)
    assert.are.equal(MIB * 1024 * 1024, n)
    assert.is_true(gap < 0.1 * H.slack, ("the ticker waited %.3f s"):format(gap))
  end)
end)
