--- spec/loop_helper.lua: the spec of netlua under another event loop,
-- one body for every loop (spec/loop_*_spec.lua gives only how its loop
-- starts coroutines, ticks a timer and runs: see `L.describe`).
--
-- Real peers on loopback: the router CLI (spec/servers/device.lua) for
-- two Telnet sessions, vsftpd with a 1 MiB file, sshd for a command, a
-- shell and an SFTP download, a UDP socket on 127.0.0.1 fed from inside
-- the loop, and a name lookup.  Each job runs in a coroutine of the
-- loop, with a timer of that loop ticking meanwhile; the results and the
-- ticks are checked.
local H = require "helper"
-- its UDP sends go to 127.0.0.1 only; still, like every spec that sends
-- datagrams, it runs only inside the private namespace
H.require_netns()
local F = require "ftp_helper"
local S = require "ssh_helper"
local netlua = require "netlua"
local core = require "netlua.core"
local luassert = require "luassert"
-- busted's API: describe, it and the rest are set in the spec files'
-- environment only, not in this module's
local busted = require "busted"

local L = {}

L.DATAGRAMS = 20       -- sent 20 ms apart: the work lasts 0.4 s at least
L.FILE_SIZE = 1024 * 1024
L.SFTP_SIZE = 256 * 1024  -- many SFTP reads, each a wait

--- Starts the servers; returns a table with their ports and stop().
function L.servers()
  local s = {}
  s.device_port = H.free_port()
  s.device = H.lua_server("device", s.device_port)
  s.ftp = F.vsftpd()
  s.data = F.random_bytes(L.FILE_SIZE)
  H.write_file(s.ftp.path("big.bin"), s.data)
  F.sh("chown " .. s.ftp.user .. " " .. H.shquote(s.ftp.path("big.bin")))
  s.ssh_dir = H.tmpdir()
  s.ssh_keys = S.keys(s.ssh_dir)
  s.ssh_user = S.user {keys = s.ssh_keys.authorized}
  s.sshd = S.sshd {user = s.ssh_user}
  s.sftp_data = F.random_bytes(L.SFTP_SIZE)
  H.write_file(s.ssh_user.home .. "/s.bin", s.sftp_data)
  F.sh("chown " .. s.ssh_user.name .. " " .. H.shquote(s.ssh_user.home .. "/s.bin"))
  function s.stop()
    H.kill(s.device)
    s.ftp.stop()
    s.sshd.stop()
    s.ssh_user.remove()
    H.rm_rf(s.ssh_dir)
  end
  return s
end

--- The jobs, each a function to run in a coroutine of the loop; each
-- records its result (or its error) in `out` under its name.  Their
-- number is `#jobs`.
function L.jobs(srv, out)
  local jobs = {}
  local function job(name, fn)
    jobs[#jobs + 1] = function()
      -- netlua.pcall: on PUC 5.1 a plain pcall cannot be yielded across,
      -- and a wait inside it would block the loop
      local ok, err = netlua.pcall(fn)
      if not ok then out[name] = "error: " .. tostring(err) end
      out.finished = (out.finished or 0) + 1
    end
  end
  for _, cmd in ipairs {"show version", "show running-config"} do
    job(cmd, function()
      local tn = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
      local _, prompt = assert(tn:login{user = "admin", password = "secret"})
      local text = assert(tn:cmd(cmd))
      tn:close()
      out[cmd] = {prompt = prompt, text = text}
    end)
  end
  job("ftp", function()
    local s = assert(netlua.ftp.new(srv.ftp.opts()))
    out.ftp = assert(s:get("big.bin"))
    s:close()
  end)
  -- UDP: one coroutine receives what another one sends, 20 ms apart
  local rx = assert(netlua.udp.socket{family = "inet", timeout = 5})
  assert(rx:bind("127.0.0.1", 0))
  local _, rxport = rx:getsockname()
  job("udp", function()
    local got = {}
    for i = 1, L.DATAGRAMS do got[i] = assert(rx:receivefrom()) end
    rx:close()
    out.udp = got
  end)
  job("udp sender", function()
    local tx = assert(netlua.udp.socket{family = "inet"})
    for i = 1, L.DATAGRAMS do
      netlua.sleep(0.02)
      assert(tx:sendto("d" .. i, "127.0.0.1", rxport))
    end
    tx:close()
    out["udp sender"] = true
  end)
  job("ssh", function()
    local c = assert(netlua.ssh.open(srv.sshd.host, srv.sshd.port, {user = srv.ssh_user.name,
      key = srv.ssh_keys.ed25519, known_hosts = srv.sshd.known_hosts, timeout = 10}))
    local o = {exec = assert(c:exec("sleep 0.3; echo loop"))}
    local sh = assert(c:shell())
    o.cmd = assert(sh:cmd("echo shell"))
    -- SFTP runs its calls in netlua.pcall: on PUC 5.1 a coroutine of
    -- its own, whose waits must still reach the loop
    local sf = assert(c:sftp())
    o.sftp = assert(sf:get("s.bin"))
    sf:close()
    c:close()
    out.ssh = o
  end)
  job("lookup", function()
    out.lookup = assert(netlua.lookup.getaddrinfo("localhost", "ftp"))
  end)
  return jobs
end

--- A small tree for FTP mirror on the server, under "tree": relative
-- path -> content.
L.MIRROR_FILES = 12
function L.mirror_tree(srv)
  local tree = {}
  for i = 1, L.MIRROR_FILES do
    tree[(i % 3 == 0 and "sub/" or "") .. "f" .. i .. ".bin"] = F.random_bytes(64 * 1024)
  end
  F.sh("rm -rf " .. H.shquote(srv.ftp.path("tree")))
  for path, data in pairs(tree) do
    local full = srv.ftp.path("tree/" .. path)
    assert(core.mkdir_p(full:match("^(.*)/")))
    H.write_file(full, data)
  end
  return tree
end

--- Checks what the jobs recorded (busted's assert).
function L.check(srv, out, jobs)
  luassert.equal(#jobs, out.finished)
  for _, cmd in ipairs {"show version", "show running-config"} do
    luassert.is_table(out[cmd], tostring(out[cmd]))
    luassert.equal("R1>", out[cmd].prompt)
  end
  luassert.matches("Version 15.2", out["show version"].text)
  luassert.matches("interface GigabitEthernet0/13", out["show running-config"].text)
  luassert.is_string(out.ftp, tostring(out.ftp))
  luassert.equal(#srv.data, #out.ftp)
  luassert.is_true(out.ftp == srv.data, "the file arrived changed")
  luassert.is_table(out.udp, tostring(out.udp))
  for i = 1, L.DATAGRAMS do luassert.equal("d" .. i, out.udp[i]) end
  luassert.is_true(out["udp sender"])
  luassert.is_table(out.ssh, tostring(out.ssh))
  luassert.equal("loop\n", out.ssh.exec)
  luassert.equal("shell\n", out.ssh.cmd)
  luassert.equal(#srv.sftp_data, #out.ssh.sftp)
  luassert.is_true(out.ssh.sftp == srv.sftp_data, "the SFTP file arrived changed")
  luassert.is_table(out.lookup, tostring(out.lookup))
  local ports = {}
  for _, a in ipairs(out.lookup) do ports[#ports + 1] = a.port end
  luassert.equal(21, ports[1])
end

--- Timer ticks of the host loop: `tick()` at each, `report()` gives
-- the count and the longest gap between ticks (from `start()`).
function L.ticker()
  local t = {n = 0, gap = 0}
  function t.start() t.last = netlua.monotime() end
  function t.tick()
    local now = netlua.monotime()
    t.gap = math.max(t.gap, now - t.last)
    t.last = now
    t.n = t.n + 1
  end
  return t
end

--- The host loop's timer kept ticking while netlua waited.
L.MAX_GAP = 0.2 * H.slack
--- For lookups: valgrind runs one thread at a time, so resolver threads
-- hold the loop's own there far longer than the code does anywhere else.
L.MAX_GAP_LOOKUPS = L.MAX_GAP * (H.slack > 1 and 3 or 1)
function L.check_ticks(t)
  luassert.is_true(t.n >= 10, "the loop's timer ticked only " .. t.n .. " times")
  luassert.is_true(t.gap < L.MAX_GAP, ("the loop's timer stood still for %.3f s"):format(t.gap))
end

--- Runs `fns`, each in a coroutine of `lp`'s loop, with the loop's timer
-- ticking every 10 ms until `done()`; returns the ticker.  `limit`
-- (seconds, default 30) ends a loop that would never end.
function L.run(lp, fns, done, limit)
  local t = L.ticker()
  t.start()
  lp.run(fns, t.tick, done, (limit or 30) * H.slack)
  return t
end

--- The spec of netlua under one loop.  `lp` says only what differs
-- between loops:
--
-- * `name`: the loop's name for netlua.loop.use;
-- * `ticking`: what keeps time in it, for the titles ("a uv timer ticks");
-- * `thread`: what it calls the coroutines it runs (default "coroutine");
-- * `missing`: nil, or why the loop cannot be loaded under this Lua
--   (then the spec is pending);
-- * `run(fns, tick, done, limit)`: starts each of fns in a coroutine of
--   the loop, calls tick() from a 10 ms timer of the loop until done()
--   is true, and runs the loop until nothing is left to do (at most
--   limit seconds); fails (raises) where the loop reports an error;
-- * `more(run)`: that loop's own cases (`it` blocks); run(fns, done,
--   limit) is L.run for the loop.
function L.describe(lp)
  lp.thread = lp.thread or "coroutine"
  local describe, it, pending = busted.describe, busted.it, busted.pending
  local setup, teardown, after_each = busted.setup, busted.teardown, busted.after_each
  local title = "netlua under " .. lp.name
  if lp.missing then
    describe(title, function() pending(lp.missing) end)
    return
  end
  local loop = require "netlua.loop"
  local tpack = table.pack or function(...) return {n = select("#", ...), ...} end
  local function run(fns, done, limit) return L.run(lp, fns, done, limit) end

  describe(title, function()
    local srv

    setup(function() srv = L.servers() end)
    teardown(function()
      loop.use(false)
      srv.stop()
    end)
    after_each(function() loop.use(false) end)

    it("runs Telnet, FTP, SSH, UDP and a lookup while " .. lp.ticking, function()
      luassert.equal(lp.name, loop.use(lp.name))
      luassert.equal(lp.name, loop.current())
      local out = {}
      local jobs = L.jobs(srv, out)
      local t = run(jobs, function() return out.finished == #jobs end)
      L.check(srv, out, jobs)
      L.check_ticks(t)
    end)

    it("the loop's timer would see a call that blocks: the same sleep without the adapter", function()
      local t = run({function() netlua.sleep(0.3) end}, function() return true end)
      luassert.is_true(t.gap >= 0.25, ("gap %.3f"):format(t.gap))
      loop.use(lp.name)
      local slept = false
      t = run({function() netlua.sleep(0.3) slept = true end}, function() return slept end)
      luassert.is_true(slept)
      L.check_ticks(t)
    end)

    it("wakes a " .. lp.thread .. " waiting on an object another one closes", function()
      loop.use(lp.name)
      local tn = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
      local got, after
      run({
        function() got = tpack(tn:read_until("never sent", 10)) end,
        function()
          netlua.sleep(0.1)
          tn:close()
          -- the descriptor's number is free again at once: a new session
          -- may get it and must work under the loop
          local tn2 = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
          after = select(2, assert(tn2:login{user = "admin", password = "secret"}))
          tn2:close()
        end,
      }, function() return got ~= nil and after ~= nil end)
      luassert.is_table(got)
      luassert.is_nil(got[1])
      luassert.equal("closed", got[3])
      luassert.equal("R1>", after)
    end)

    it("ends 50 lookups at once, each for its own " .. lp.thread, function()
      loop.use(lp.name)
      local fns, res, n = {}, {}, 0
      for i = 1, 50 do
        fns[i] = function()
          local r, err = netlua.lookup.getaddrinfo("localhost", i % 2 == 0 and "ftp" or "telnet")
          res[i] = r and r[1].port or err
          n = n + 1
        end
      end
      local t = run(fns, function() return n == 50 end)
      for i = 1, 50 do luassert.equal(i % 2 == 0 and 21 or 23, res[i]) end
      luassert.is_true(t.gap < L.MAX_GAP_LOOKUPS, ("gap %.3f"):format(t.gap))
    end)

    it("waits through the loop inside netlua.pcall; inside pcall and a for iterator "
      .. "too, but on PUC 5.1, which blocks there", function()
      loop.use(lp.name)
      local r = {}
      local t = run({function()
        r.ok = tpack(netlua.pcall(netlua.sleep, 0.3))
        r.err = tpack(netlua.pcall(function() netlua.sleep(0.05) error("late", 0) end))
      end}, function() return r.err ~= nil end)
      luassert.same({n = 1, true}, r.ok)
      luassert.same({n = 2, false, "late"}, r.err)
      L.check_ticks(t)
      -- 5.1 cannot yield across pcall, nor out of a for iterator: there
      -- the call must still work, holding the loop as in a C callback
      local function held(t2)
        if H.puc51 then
          luassert.is_true(t2.gap >= 0.25, ("gap %.3f"):format(t2.gap))
        else
          L.check_ticks(t2)
        end
      end
      t = run({function() r.plain = tpack(pcall(netlua.sleep, 0.3)) end},
        function() return r.plain ~= nil end)
      luassert.same({n = 1, true}, r.plain)
      held(t)
      local port = H.free_port()
      local pid = H.lua_server("drip", port, 4, 0.1)  -- "x" 0.1 s apart, then closes
      local s = assert(netlua.tcp.connect("127.0.0.1", port, {timeout = 5}))
      t = run({function()
        local got = {}
        for c in s:lines(1) do got[#got + 1] = c end
        r.lines = table.concat(got)
      end}, function() return r.lines ~= nil end)
      s:close()
      H.kill(pid)
      luassert.equal("xxxx", r.lines)
      held(t)
    end)

    it("a " .. lp.thread .. " whose data is always there takes turns with the loop", function()
      -- spec/servers/blast.lua keeps the socket full and the reader works
      -- 2 ms a chunk: its reads never wait, not even the first (the data
      -- is there before the coroutine starts), so only the 10 ms slice
      -- netlua.run's tasks get lets the loop's timer run
      loop.use(lp.name)
      local port = H.free_port()
      local pid = H.lua_server("blast", port, 32)
      local s = assert(netlua.tcp.connect("127.0.0.1", port, {timeout = 30}))
      assert(netlua.wait({s}, 5))
      netlua.sleep(0.05)  -- the socket's buffer fills
      local got
      local t = run({function()
        local n = 0
        while true do
          local d = s:read(256 * 1024)
          if not d then break end
          n = n + #d
          local stop = netlua.monotime() + 0.002
          repeat until netlua.monotime() >= stop
        end
        got = n
      end}, function() return got ~= nil end)
      s:close()
      H.kill(pid)
      luassert.equal(32 * 1024 * 1024, got)
      L.check_ticks(t)
    end)

    it("a socket read still blocks without spinning in the main thread", function()
      loop.use(lp.name)
      local tn = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
      local s = assert(netlua.tcp.connect("127.0.0.1", srv.device_port, {timeout = 10}))
      local first
      run({function() first = s:receive(1) end}, function() return first ~= nil end)
      luassert.equal("\255", first)  -- the banner starts with a negotiation
      -- now in the main thread: nothing more comes before the deadline
      -- (the device waits for our answer); the wait is spent in the
      -- kernel, not in a loop of system calls
      s:settimeout(0.2)
      s:receive(100000)  -- what the banner left, until the timeout
      s:settimeout(0.5)
      local c0 = os.clock()
      local data, err = s:receive(1)
      local cpu = os.clock() - c0
      luassert.is_nil(data)
      luassert.equal("timeout", err)
      luassert.is_true(cpu < 0.2, ("%.3f s of CPU for a 0.5 s wait"):format(cpu))
      s:close()
      tn:close()
    end)

    it("runs netlua.run's tasks and an FTP mirror in a " .. lp.thread
      .. " of the loop, which runs on meanwhile", function()
      loop.use(lp.name)
      local tree = L.mirror_tree(srv)
      local dir = H.tmpdir()
      local function two_tasks(r)
        return function()
          r.run = tpack(netlua.run(function()
            local tn = assert(netlua.telnet.open("127.0.0.1", srv.device_port, {timeout = 10}))
            assert(tn:login{user = "admin", password = "secret"})
            r.telnet = assert(tn:cmd("show version"))
            tn:close()
          end))
        end
      end
      local function mirror(r, to)
        return function()
          local ftp = assert(netlua.ftp.new(srv.ftp.opts()))
          r.mirror = tpack(ftp:mirror("tree", dir .. "/" .. to, {parallel = 3}))
          ftp:close()
        end
      end
      local function check_run(r)
        luassert.same({n = 1, true}, r.run)
        luassert.matches("Version 15.2", r.telnet)
        luassert.equal(21, r.lookup)
      end
      local function check_mirror(r, to)
        luassert.is_table(r.mirror[1], tostring(r.mirror[2]))
        luassert.equal(L.MIRROR_FILES, r.mirror[1].files)
        for path, data in pairs(tree) do
          luassert.is_true(H.read_file(dir .. "/" .. to .. "/" .. path) == data, path)
        end
      end
      -- a run of two tasks: the second one spawned by the first's caller
      local a = {}
      local t = run({function()
        netlua.spawn(function()
          netlua.sleep(0.3)
          a.lookup = assert(netlua.lookup.getaddrinfo("localhost", "ftp"))[1].port
        end)
        two_tasks(a)()
      end}, function() return a.run ~= nil end)
      check_run(a)
      L.check_ticks(t)
      -- mirror, outside a task: its workers under a netlua.run of its own
      local b = {}
      t = run({mirror(b, "b")}, function() return b.mirror ~= nil end)
      check_mirror(b, "b")
      L.check_ticks(t)
      -- both at once, in two coroutines: one run at a time, the second
      -- waits for the first through the loop
      local c = {}
      t = run({function()
        netlua.spawn(function()
          c.lookup = assert(netlua.lookup.getaddrinfo("localhost", "ftp"))[1].port
        end)
        two_tasks(c)()
      end, mirror(c, "c")}, function() return c.run ~= nil and c.mirror ~= nil end)
      check_run(c)
      check_mirror(c, "c")
      L.check_ticks(t)
      H.rm_rf(dir)
    end)

    if lp.more then lp.more(run) end
  end)
end

return L
