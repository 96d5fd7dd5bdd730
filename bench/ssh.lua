-- bench/ssh.lua [N_EXEC [MBYTES [SESSIONS]]] - netlua.ssh against its
-- anchors, in one run, against one local OpenSSH sshd (spec/ssh_helper.lua:
-- a throwaway user with /bin/sh and one with a router CLI as its shell):
--
--   exec round trips  N_EXEC (default 100) `true` commands one after
--                     another on one connection: netlua, the OpenSSH
--                     client through a ControlMaster connection (one
--                     `ssh` process per command, as scripts use it), and
--                     Python's paramiko.  Target: >= 1.0x paramiko.
--   bulk stdout       MBYTES (default 100) MB of `head -c` output read
--                     to the end: netlua, the OpenSSH client (through the
--                     master, output to /dev/null), paramiko.
--                     Target: >= 0.8x the OpenSSH client.
--   fleet             SESSIONS (default 200) at once: login, a shell on a
--                     pty, the router's prompt, one command checked:
--                     netlua.run against Python's asyncssh.
--                     Target: >= 1.0x asyncssh.
--
-- Each figure is the best of two runs; ratios are netlua's speed over the
-- anchor's (above 1: netlua is faster).  Needs root (useradd) and what
-- `make bench` installs.  Run:
--   make bench && sh scripts/netns.sh env LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" \
--     LUA_CPATH="build/?.so;;" lua5.4 bench/ssh.lua
local netlua = require "netlua"
local ssh = require "netlua.ssh"
local H = require "helper"
local S = require "ssh_helper"

local N_EXEC = tonumber(arg[1]) or 100
local MBYTES = tonumber(arg[2]) or 100
local SESSIONS = tonumber(arg[3]) or 200
local BYTES = MBYTES * 1000000
local PY = "/usr/bin/python3"  -- Debian's, which has paramiko and asyncssh

local dir = H.tmpdir()
local keys = S.keys(dir)
local user = S.user {keys = keys.authorized}
local router = S.user {keys = keys.authorized, shell = "router"}
local srv = S.sshd {user = user, extra = {"AllowUsers " .. user.name .. " " .. router.name}}
local function cleanup()
  srv.stop()
  user.remove()
  router.remove()
  H.rm_rf(dir)
end

local function best(fn)
  local a, b = fn(), fn()
  return math.min(a, b)
end

local function open(who)
  return assert(ssh.open(srv.host, srv.port, {user = who.name, key = keys.ed25519,
    known_hosts = srv.known_hosts, timeout = 120}))
end

local function sh(cmd)
  local out, ok = H.sh(cmd)
  assert(ok, cmd .. "\n" .. out)
  return out
end

local ok, err = pcall(function()
  local rows = {}
  local function row(what, nl, anchor, t_anchor, unit, scale)
    rows[#rows + 1] = ("%-22s %-18s netlua %10.2f %s   %-10s %10.2f %s   ratio %.2f")
      :format(what, "", scale / nl, unit, anchor, scale / t_anchor, unit, t_anchor / nl)
  end

  -- ---- netlua ------------------------------------------------------------
  local c = open(user)
  local nl_rtt = best(function()
    local t0 = netlua.monotime()
    for _ = 1, N_EXEC do assert(c:exec("true")) end
    return netlua.monotime() - t0
  end)
  local nl_bulk = best(function()
    local n = 0
    local t0 = netlua.monotime()
    local _, _, st = assert(c:exec(("head -c %d /dev/zero"):format(BYTES),
      {stdout = function(chunk) n = n + #chunk end}))
    assert(st == 0 and n == BYTES, "bulk: " .. n)
    return netlua.monotime() - t0
  end)
  c:close()

  -- ---- the OpenSSH client through a ControlMaster connection -------------
  local ctl = dir .. "/ctl"
  local common = ("ssh -F /dev/null -p %d -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s "
    .. "-o GlobalKnownHostsFile=/dev/null -o IdentityAgent=none -o BatchMode=yes "
    .. "-o IdentitiesOnly=yes -i %s -o ControlPath=%s -o LogLevel=ERROR ")
    :format(srv.port, H.shquote(srv.known_hosts), H.shquote(keys.ed25519), H.shquote(ctl))
  local target = user.name .. "@" .. srv.host
  sh(common .. "-o ControlMaster=yes -o ControlPersist=600 -f -N " .. target)
  local via = common .. target .. " "
  local os_rtt = best(function()
    local t0 = netlua.monotime()
    sh(("i=0; while [ $i -lt %d ]; do %s true || exit 1; i=$((i+1)); done")
      :format(N_EXEC, via))
    return netlua.monotime() - t0
  end)
  local os_bulk = best(function()
    local t0 = netlua.monotime()
    sh(("%s 'head -c %d /dev/zero' >/dev/null"):format(via, BYTES))
    return netlua.monotime() - t0
  end)
  H.sh(common .. "-O exit " .. target .. " 2>/dev/null")

  -- ---- paramiko ----------------------------------------------------------
  local function paramiko()
    local out = sh(("%s %s %s %d %s %s %s %d %d"):format(PY, H.shquote(H.root .. "/bench/ssh_paramiko.py"),
      srv.host, srv.port, user.name, H.shquote(keys.ed25519), H.shquote(srv.known_hosts), N_EXEC, BYTES))
    local rtt = tonumber(out:match("rtt (%S+)"))
    local bulk, got = out:match("bulk (%S+) (%d+)")
    assert(rtt and tonumber(got) == BYTES, out)
    return rtt, tonumber(bulk)
  end
  local p1r, p1b = paramiko()
  local p2r, p2b = paramiko()
  local pm_rtt, pm_bulk = math.min(p1r, p2r), math.min(p1b, p2b)

  -- ---- fleet ---------------------------------------------------------------
  local function nl_fleet()
    local failed = 0
    local t0 = netlua.monotime()
    assert(netlua.run(function()
      for i = 1, SESSIONS do
        netlua.spawn(function()
          local cc = ssh.open(srv.host, srv.port, {user = router.name, key = keys.ed25519,
            known_hosts = srv.known_hosts, timeout = 120})
          if not cc then failed = failed + 1 return end
          local s = cc:shell()
          local out = s and s:cmd("echo fleet-" .. i)
          if out ~= "fleet-" .. i .. "\n" then failed = failed + 1 end
          cc:close()
        end)
      end
    end))
    assert(failed == 0, failed .. " netlua sessions failed")
    return netlua.monotime() - t0
  end
  local function as_fleet()
    local out = sh(("%s %s %s %d %s %s %s %d"):format(PY, H.shquote(H.root .. "/bench/ssh_fleet_asyncssh.py"),
      srv.host, srv.port, router.name, H.shquote(keys.ed25519), H.shquote(srv.known_hosts), SESSIONS))
    local t, failed = out:match("fleet (%S+) (%d+)")
    assert(t and failed == "0", out)
    return tonumber(t)
  end
  local fl_nl = best(nl_fleet)
  local fl_as = best(as_fleet)

  print(("netlua.ssh bench: %d exec round trips, %d MB of stdout, %d sessions; libssh %s")
    :format(N_EXEC, MBYTES, SESSIONS, ssh.LIBRARY))
  row("exec round trips", nl_rtt, "ssh -S", os_rtt, "/s", N_EXEC)
  row("", nl_rtt, "paramiko", pm_rtt, "/s", N_EXEC)
  row("bulk stdout", nl_bulk, "ssh -S", os_bulk, "MB/s", MBYTES)
  row("", nl_bulk, "paramiko", pm_bulk, "MB/s", MBYTES)
  row("fleet (sessions/s)", fl_nl, "asyncssh", fl_as, "/s", SESSIONS)
  for _, r in ipairs(rows) do print(r) end
  print(("targets: round trips >= 1.0x paramiko (%.2f), bulk >= 0.8x OpenSSH (%.2f), fleet >= 1.0x asyncssh (%.2f)")
    :format(pm_rtt / nl_rtt, os_bulk / nl_bulk, fl_as / fl_nl))
end)
cleanup()
if not ok then error(err, 0) end
