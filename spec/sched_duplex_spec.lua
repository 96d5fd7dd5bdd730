-- One task reading and another writing the same object at once (inside
-- netlua.run), as a terminal bridge or a full-duplex pipe does: each side
-- waits on its own, neither restarts as the other's call.  A second task
-- waiting on the same side is refused with a clear error.
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local telnet = require "netlua.telnet"
local H = require "helper"

-- An echo server task on a fresh loopback port: each connection gets back
-- every byte it sends, one recv/write at a time (so it only keeps up as
-- fast as its client reads).  Returns the port and a stop function.
local function echo_server()
  return H.serve(nil, function(c)
    c:settimeout(10)
    while true do
      local d = c:recv(65536)
      if not d then break end
      assert(c:write(d))
    end
  end)
end

describe("a reading task and a writing task on one object", function()
  it("tcp: a line read waits while another task writes it", function()
    local got, wrote
    netlua.run(function()
      local port, stop = echo_server()
      local s = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
      netlua.spawn(function() got = {s:read("l")} end)
      netlua.spawn(function()
        netlua.sleep(0.05)  -- the reader waits first
        wrote = {s:write("hello\n")}
      end)
      while not got do netlua.sleep(0.01) end
      s:close()
      stop()
    end)
    assert.are.equal("hello", got[1])
    assert.are.equal("netlua.tcp", tostring(wrote[1]):match("^netlua%.tcp"))
  end)

  it("tcp: 8 MiB full duplex, the writer waiting for room as the reader drains", function()
    local N = 8 * 1024 * 1024
    local chunk = ("0123456789abcdef"):rep(4096)  -- 64 KiB
    local sent, received = 0, 0
    local ok = netlua.run(function()
      local port, stop = echo_server()
      local s = assert(tcp.connect("127.0.0.1", port, {timeout = 10}))
      local done = 0
      netlua.spawn(function()
        while sent < N do
          assert(s:write(chunk))
          sent = sent + #chunk
        end
        done = done + 1
      end)
      netlua.spawn(function()
        while received < N do
          local d = assert(s:read(math.min(65536, N - received)))
          received = received + #d
        end
        done = done + 1
      end)
      while done < 2 do netlua.sleep(0.01) end
      s:close()
      stop()
    end)
    assert.is_true(ok)
    assert.are.equal(N, sent)
    assert.are.equal(N, received)
  end)

  it("telnet: read_until in one task, write in another", function()
    local got, wrote
    netlua.run(function()
      local port, stop = echo_server()
      local t = assert(telnet.open("127.0.0.1", port, {timeout = 5}))
      netlua.spawn(function() got = {t:read_until("END\r\n")} end)
      netlua.spawn(function()
        netlua.sleep(0.05)
        wrote = {t:write("one\r\n")}
        netlua.sleep(0.05)
        t:write("two END\r\n")
      end)
      while not got do netlua.sleep(0.01) end
      t:close()
      stop()
    end)
    assert.are.same({true}, wrote)
    assert.are.equal("one\r\ntwo END\r\n", got[1])
  end)

  it("telnet: a read that must flush replies and a blocked writer both wake", function()
    -- the writer fills every buffer on the way (the server does not read
    -- yet); then the server asks DO SGA, so the reader has a reply to
    -- send and waits for room too; when the server drains, both must run
    local N = 32 * 1024 * 1024
    local IAC, DO, SGA = "\255", "\253", "\3"
    local wrote, took, got
    netlua.run(function()
      local port = H.serve(1, function(c)
        c:settimeout(10)
        netlua.sleep(0.3)
        c:write(IAC .. DO .. SGA)
        netlua.sleep(0.3)
        local n = 0
        while n < N do
          local d = c:recv(1024 * 1024)
          if not d then break end
          n = n + #d
        end
        c:write("END\r\n")
        netlua.sleep(0.2)
      end)
      local t = assert(telnet.open("127.0.0.1", port, {timeout = 8}))
      local done = netlua.event()
      netlua.spawn(function()
        got = {t:read_until("END\r\n")}
        done:set()
      end)
      local t0 = netlua.monotime()
      wrote = {t:write(("x"):rep(N))}
      took = netlua.monotime() - t0
      done:wait()
      t:close()
    end)
    assert.same({true}, wrote)
    assert.is_true(took < 4 * H.slack, ("the write took %.2f s"):format(took))
    assert.are.equal("END\r\n", got[1])
  end)

  it("refuses a second task waiting on the same side, and the first still works", function()
    local first, second
    netlua.run(function()
      local port, stop = echo_server()
      local s = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
      netlua.spawn(function() first = {s:read("l")} end)
      netlua.spawn(function()
        netlua.sleep(0.05)
        second = {pcall(s.read, s, "l")}
        assert(s:write("line\n"))
      end)
      while not first do netlua.sleep(0.01) end
      s:close()
      stop()
    end)
    assert.is_false(second[1])
    assert.matches("another task is already waiting on this object", second[2])
    assert.are.equal("line", first[1])
  end)
end)
