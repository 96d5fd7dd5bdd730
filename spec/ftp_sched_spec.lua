-- FTP inside netlua.run: every operation yields to the scheduler while it
-- waits for the network, so FTP sessions, Telnet sessions and timers all
-- make progress together; outside a task the same calls block as before.
local H = require "helper"

-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local F = require "ftp_helper"
local ftp = require "netlua.ftp"
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local telnet = require "netlua.telnet"

local MARGIN = 0.5
local MIB = 1024 * 1024

-- n bytes of pseudo-random data, different for each tag (cheap to make)
local base = F.random_bytes(65537)
local function bytes(tag, n)
  local head = tag .. ":"
  return (head .. base:rep(math.floor(n / #base) + 1)):sub(1, n)
end

describe("ftp inside netlua.run", function()
  local srv, slow
  local pids = {}

  setup(function()
    srv = F.vsftpd()
    -- a rate-limited server makes transfers last long enough that other
    -- tasks must run while they are in flight
    slow = F.vsftpd{extra = {"local_max_rate=20000000"}}
  end)

  teardown(function()
    for _, pid in ipairs(pids) do H.kill(pid) end
    if srv then srv.stop() end
    if slow then slow.stop() end
  end)

  it("runs 20 downloads with Telnet sessions and a ticker, byte-exact, fds back to baseline", function()
    local sizes = {1, 2, 100, 4095, 4096, 65537, 100000, MIB, 3 * MIB, 2 * MIB + 3}
    local files = {}
    for i = 1, 20 do
      local size = sizes[(i - 1) % #sizes + 1]
      files[i] = {name = "f" .. i .. ".bin", data = bytes(i, size)}
      H.write_file(slow.path(files[i].name), files[i].data)
    end
    local rport = H.free_port()
    pids[#pids + 1] = H.lua_server("router", rport, 0.02, "ok")
    assert(netlua.run(function() end))  -- the scheduler's poller lives on
    local before = H.fds()

    local got, tel = {}, {}
    local inflight, maxinflight, ftpdone = 0, 0, 0
    local ticks, ticks_in_xfer = 0, 0
    for i = 1, 20 do
      netlua.spawn(function()
        local pok, perr = netlua.pcall(function()  -- a task waits inside it, 5.1 too
          local s = assert(ftp.new(slow.opts{timeout = 20}))
          local parts = {}
          inflight = inflight + 1
          maxinflight = math.max(maxinflight, inflight)
          local t0 = ticks
          local ok, msg = s:retrbinary("RETR " .. files[i].name, function(b) parts[#parts + 1] = b end, 65536)
          ticks_in_xfer = ticks_in_xfer + (ticks - t0)
          inflight = inflight - 1
          got[i] = ok and table.concat(parts) or msg
          s:close()
        end)
        if not pok then got[i] = perr end
        ftpdone = ftpdone + 1  -- the ticker stops after the last one
      end)
    end
    for i = 1, 10 do
      netlua.spawn(function()
        local tn = assert(telnet.open("127.0.0.1", rport, {timeout = 5}))
        assert(tn:login{user = "u" .. i, password = "pw", prompt = "r%d+> $"})
        tel[i] = {tn:cmd("echo hi " .. i), tn:cmd("show version")}
        tn:close()
      end)
    end
    netlua.spawn(function()
      while ftpdone < 20 do
        netlua.sleep(0.01)
        ticks = ticks + 1
      end
    end)
    assert(netlua.run())

    for i = 1, 20 do
      assert.equal(#files[i].data, #got[i], "size of file " .. i)
      assert.is_true(got[i] == files[i].data, "content of file " .. i)
    end
    for i = 1, 10 do
      assert.equal("hi " .. i .. "\n", tel[i][1])
      assert.equal("Version 1.2.3\nUptime 5 days\n", tel[i][2])
    end
    -- a blocking retrbinary would have run the downloads one at a time
    -- with the ticker frozen during each
    assert.is_true(maxinflight > 1, tostring(maxinflight))
    assert.is_true(ticks_in_xfer > 0, tostring(ticks_in_xfer))
    H.no_new_fds(before)
  end)

  it("uploads a few MiB from a chunk function while another task works", function()
    local data = bytes("up", 4 * MIB)
    local reply, ticks, first_tick, last_tick = nil, 0, nil, nil
    local done = false
    netlua.spawn(function()
      local s = assert(ftp.new(slow.opts{timeout = 20}))
      local pos = 1
      reply = s:storbinary("STOR up.bin", function()
        if pos > #data then return nil end
        first_tick = first_tick or ticks
        last_tick = ticks
        local c = data:sub(pos, pos + 65535)
        pos = pos + #c
        return c
      end)
      done = true
      s:close()
    end)
    netlua.spawn(function()  -- ends the ticker below even if the upload task fails
      while not done and reply == nil do netlua.sleep(0.05) end
    end)
    local other
    netlua.spawn(function()  -- other work: a command on a session of its own
      local s = assert(ftp.new(srv.opts{timeout = 20}))
      other = s:sendcmd("NOOP")
      s:close()
    end)
    netlua.spawn(function()  -- a ticker from the start (a slow machine may
      -- finish the upload before that session is even logged in)
      local stop = netlua.monotime() + 30
      while not done and netlua.monotime() < stop do netlua.sleep(0.01) ticks = ticks + 1 end
    end)
    assert(netlua.run())
    assert.matches("^226", reply)
    assert.matches("^200", other)
    assert.is_true(H.read_file(slow.path("up.bin")) == data, "uploaded bytes differ")
    assert.is_true(last_tick > first_tick, "the other task ran during the upload")
  end)

  it("sendcmd, cwd, size, nlst and errors return inside a task what they return outside", function()
    F.sh("mkdir -p " .. H.shquote(srv.path("d1/d2")))
    H.write_file(srv.path("d1/a.txt"), "12345")
    H.write_file(srv.path("d1/b.txt"), "x")
    local function script(s)
      local r = {}
      local function add(...) r[#r + 1] = pack(...) end
      add(s:sendcmd("NOOP"))
      add(s:voidcmd("SYST"))
      add(s:cwd("d1"))
      add(s:pwd())
      add(s:size("a.txt"))
      add(s:size("missing.txt"))
      local names = assert(s:nlst())
      table.sort(names)
      add(table.concat(names, ","))
      add(s:sendcmd("MDTM nothere"))
      add(s:cwd("nothere"))
      local lines = {}
      add(s:retrlines("LIST", function(l) lines[#lines + 1] = l:match("%S+$") end))
      table.sort(lines)
      add(table.concat(lines, ","))
      add(s:quit())
      return r
    end
    local outside = script(assert(ftp.new(srv.opts())))
    local inside
    netlua.run(function() inside = script(assert(ftp.new(srv.opts()))) end)
    assert.same(outside, inside)
    assert.equal(5, inside[5][1])
    assert.equal(550, inside[6][3])
    assert.equal("a.txt,b.txt,d2", inside[7][1])
  end)

  it("a stalled or dying server fails only its own task, within its timeout", function()
    -- the stalling server takes a second client: a timed-out operation on
    -- a reused connection is retried once when time is left, and a real
    -- stalled server would accept (and stall) that retry too
    local stall, die = F.task_server("stall", 2), F.task_server("die", 2)
    local res = {}
    local function bad(key, port)
      netlua.spawn(function()
        local s = assert(ftp.new{host = "127.0.0.1", port = port, user = "u",
          password = "p", timeout = 0.5})
        local t0 = netlua.monotime()
        local ok, msg, code = s:sendcmd("NOOP")
        res[key] = {ok = ok, msg = msg, code = code, t = netlua.monotime() - t0}
        s:close()
      end)
    end
    bad("stall", stall)
    bad("die", die)
    local good
    netlua.spawn(function()
      local s = assert(ftp.new(slow.opts{timeout = 20}))
      local parts = {}
      assert(s:retrbinary("RETR f9.bin", function(b) parts[#parts + 1] = b end))
      good = table.concat(parts)
      s:close()
    end)
    assert(netlua.run())
    assert.is_nil(res.stall.ok)
    assert.equal("timeout", res.stall.code)
    assert.is_true(res.stall.t < 0.5 + MARGIN, tostring(res.stall.t))
    assert.is_nil(res.die.ok)
    assert.equal("closed", res.die.code)
    assert.is_true(good == H.read_file(slow.path("f9.bin")))
  end)

  it("a connect that stalls at the greeting yields and times out", function()
    local lsn = assert(tcp.listen("127.0.0.1", 0))  -- accepts, never greets
    local _, port = lsn:getsockname()
    local res, ticks = nil, 0
    netlua.spawn(function()
      local s = ftp.new{timeout = 0.3}
      local t0 = netlua.monotime()
      local ok, msg, code = s:connect("127.0.0.1", port)
      res = {ok = ok, msg = msg, code = code, t = netlua.monotime() - t0}
      s:close()
    end)
    netlua.spawn(function()
      for _ = 1, 5 do netlua.sleep(0.02) ticks = ticks + 1 end
    end)
    assert(netlua.run())
    lsn:close()
    assert.is_nil(res.ok)
    assert.equal("timeout", res.code)
    assert.is_true(res.t < 0.3 + MARGIN, tostring(res.t))
    assert.equal(5, ticks)
  end)

  it("mirror inside a task copies the tree in parallel while other tasks run", function()
    local s = assert(ftp.new(slow.opts{timeout = 20}))
    assert(s:makedirs("mtree/sub"))
    local want = {}
    for i = 1, 8 do
      local p = (i % 2 == 0 and "mtree/sub/" or "mtree/") .. "m" .. i
      want[p] = bytes("m" .. i, i * 150000)
      assert(s:storbinary("STOR " .. p, want[p]))
    end
    local dir = H.tmpdir()
    local n, ticks, done = nil, 0, false
    local fds, before = H.fds(), slow.connections()
    netlua.spawn(function()
      n = s:mirror("mtree", dir .. "/copy", {parallel = 3})
      done = true
    end)
    netlua.spawn(function()
      local stop = netlua.monotime() + 30
      while not done and netlua.monotime() < stop do netlua.sleep(0.01) ticks = ticks + 1 end
    end)
    assert(netlua.run())
    -- two more sessions of the same login fetched beside this one, and
    -- they are gone again
    assert.equal(2, slow.connections() - before)
    H.no_new_fds(fds)
    s:close()
    assert.equal(8, n and n.files)
    for p, data in pairs(want) do
      assert.is_true(H.read_file(dir .. "/copy/" .. p:sub(7)) == data, p)
    end
    assert.is_true(ticks > 0)
    H.rm_rf(dir)
  end)

  it("a transfer whose data is always there still lets other tasks run", function()
    -- the callback works ~1 ms per block, so curl always has data ready
    -- and the transfer itself never waits: it must yield after a slice
    H.write_file(srv.path("steady.bin"), bytes("steady", 24 * MIB))
    local s = assert(ftp.new(srv.opts{timeout = 30}))
    local n, done = 0, false
    local gap = H.ticker(function() return done end)
    netlua.spawn(function()
      assert(s:retrbinary("RETR steady.bin", function(b)
        n = n + #b
        local stop = netlua.monotime() + 0.001
        while netlua.monotime() < stop do end
      end, 65536))
      done = true
    end)
    assert(netlua.run())
    s:close()
    assert.equal(24 * MIB, n)
    assert.is_true(gap() < 0.1 * H.slack, ("the ticker waited %.3f s"):format(gap()))
  end)

  it("an upload whose source is always ready still lets other tasks run", function()
    local s = assert(ftp.new(srv.opts{timeout = 30}))
    local chunk, left = bytes("up", 65536), 384  -- 24 MiB
    local done = false
    local gap = H.ticker(function() return done end)
    netlua.spawn(function()
      assert(s:storbinary("STOR steady-up.bin", function()
        if left == 0 then return nil end
        left = left - 1
        local stop = netlua.monotime() + 0.001
        while netlua.monotime() < stop do end
        return chunk
      end))
      done = true
    end)
    assert(netlua.run())
    s:close()
    assert.equal(384 * 65536, #H.read_file(srv.path("steady-up.bin")))
    assert.is_true(gap() < 0.1 * H.slack, ("the ticker waited %.3f s"):format(gap()))
  end)

  it("the session is busy for other tasks while one waits in it", function()
    -- 8 MiB at the server's 20 MB/s: the transfer is still running when
    -- the second task, which waits for its first block, steps in
    H.write_file(slow.path("big.bin"), bytes("big", 8 * MIB))
    local s = assert(ftp.new(slow.opts{timeout = 20}))
    local ok, err, started
    netlua.spawn(function()
      ok = s:retrbinary("RETR big.bin", function() started = true end)
    end)
    netlua.spawn(function()
      while not started do netlua.sleep(0.005) end
      local pok, e = pcall(s.sendcmd, s, "NOOP")
      err = not pok and e
    end)
    assert(netlua.run())
    assert.matches("^226", ok)
    assert.matches("busy", err)
    assert.matches("^200", s:sendcmd("NOOP"))  -- usable again afterwards
    s:close()
  end)
end)
