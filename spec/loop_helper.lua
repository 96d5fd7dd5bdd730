--- spec/loop_helper.lua: one piece of work for netlua under another event
-- loop, the same for every loop's spec (spec/loop_*_spec.lua).
--
-- Real peers on loopback: the router CLI (spec/servers/device.lua) for
-- two Telnet sessions, vsftpd with a 1 MiB file, sshd for a command and
-- a shell, a UDP socket on
-- 127.0.0.1 fed from inside the loop, and a name lookup.  A loop's spec
-- starts each job in a coroutine of its loop, with a timer of that loop
-- ticking meanwhile, and checks the results and the ticks.  This file
-- starts servers and holds the jobs; it tests nothing.
local H = require "helper"
-- its UDP sends go to 127.0.0.1 only; still, like every spec that sends
-- datagrams, it runs only inside the private namespace
H.require_netns()
local F = require "ftp_helper"
local S = require "ssh_helper"
local netlua = require "netlua"
local luassert = require "luassert"

local L = {}

L.DATAGRAMS = 20       -- sent 20 ms apart: the work lasts 0.4 s at least
L.FILE_SIZE = 1024 * 1024

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
      local ok, err = pcall(fn)
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
    c:close()
    out.ssh = o
  end)
  job("lookup", function()
    out.lookup = assert(netlua.lookup.getaddrinfo("localhost", "ftp"))
  end)
  return jobs
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

return L
