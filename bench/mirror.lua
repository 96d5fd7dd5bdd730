--- bench/mirror.lua: netlua's s:mirror against lftp's `mirror` (issue #13).
--
-- Run (`make bench` installs lftp and builds first):
--   make bench
--   sh scripts/netns.sh env LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/mirror.lua
--
-- The tree: 10 folders x 100 files x 1 KiB plus 10 files of 10 MiB, all
-- with one modification time two days back.  Its "10% changed" version
-- has every tenth small file and one big file with new content, a new
-- size and a time one hour later; the servers hold both (A and B), so
-- both tools meet exactly the same changes and nothing changes on a
-- server while the bench runs.
--
-- Servers, each on 127.0.0.1 at a free port:
--   * vsftpd, started as spec/ftp_helper.lua starts it (throwaway user,
--     log_ftp_protocol on), serving the whole tree; the user's password
--     is hashed again with SHA-512, as chpasswd's default (yescrypt) costs
--     vsftpd about 0.4 s of CPU per login on this kind of machine, which
--     would be most of every parallel row;
--   * spec/servers/ftp_delay.py: pyftpdlib answering every command
--     BENCH_DELAY (0.01) s late (its header says how), serving the 1000
--     small files only.
--
-- For each server and parallel = 1, 4, 16: first copy (into an empty
-- folder), a run with nothing changed, and a run after 10% changed (onto
-- a copy of that tool's own complete mirror).  netlua runs
-- `s:mirror("A", dst, {parallel = p})` and lftp `mirror --parallel=p A
-- dst`, each as a separate process timed from start to exit (connect
-- and login included); the tools take turns, best of BENCH_REPEAT (2)
-- runs, one run only when a run took over 10 s.  After every run the
-- copy is checked against the server's tree (same names, same sizes, no
-- extra files): a run that failed (the tool said so: FAILED) or made a
-- wrong copy it called good (WRONG COPY, a wrong answer) does not count,
-- and a cell with no good run shows "bad".  Commands come from the servers' logs
-- (log_ftp_protocol, the delaying server's command log): per run the
-- total and the RETRs, and at parallel 1 the verbs of the first copy
-- and of the run with nothing changed, with how many files each tool
-- left with the server's modification time.
--
-- lftp runs with `--norc` and HOME set to an empty folder (no ~/.lftprc,
-- no bookmarks; /etc/lftp.conf still loads, it sets nothing used here),
-- with these settings changed from its defaults: cmd:fail-exit yes (a
-- failed mirror is a failed run), net:max-retries 1 (no retries),
-- net:timeout 60, ftp:ssl-allow no (no AUTH TLS to a plain server, as
-- netlua).  Everything else is lftp's default; the values that matter
-- are printed at the start.
--
-- BENCH_ONLY=vsftpd|delay runs one server; BENCH_PARALLEL="1 4" other
-- parallel counts; BENCH_DIRS, BENCH_FILES (per folder), BENCH_BIG (the
-- number of 10 MiB files) a smaller tree; BENCH_REPEAT the best-of count;
-- BENCH_SLOW (10) the seconds past which a run is not repeated.  On 2
-- busy cores the whole bench took about 8 minutes with today's mirror,
-- which copies every file on every run (the +10 ms rows at parallel 1
-- are 30 s each); a quick look: BENCH_DIRS=2 BENCH_FILES=20 BENCH_BIG=1.
local H = require "helper"
local F = require "ftp_helper"
local netlua = require "netlua"

-- 5.1 and LuaJIT lack table.unpack
local unpack = table.unpack or unpack

local ONLY = os.getenv("BENCH_ONLY")
local NDIRS = tonumber(os.getenv("BENCH_DIRS") or "10")
local NFILES = tonumber(os.getenv("BENCH_FILES") or "100")
local NBIG = tonumber(os.getenv("BENCH_BIG") or "10")
local DELAY = tonumber(os.getenv("BENCH_DELAY") or "0.01")
local REPEAT = tonumber(os.getenv("BENCH_REPEAT") or "2")
local PARALLEL = {}
for p in (os.getenv("BENCH_PARALLEL") or "1 4 16"):gmatch("%d+") do PARALLEL[#PARALLEL + 1] = tonumber(p) end
local SLOW = tonumber(os.getenv("BENCH_SLOW") or "10") -- a run longer is not repeated
local TOOLS = {"netlua", "lftp"}
local PHASES = {"first", "same", "changed"}
local PHASE_NAME = {first = "first copy", same = "nothing changed", changed = "10% changed"}

local sh, q = F.sh, H.shquote
local function must(cmd)
  local out, ok = sh(cmd)
  assert(ok, cmd .. ": " .. out)
  return out
end

if not select(2, sh("command -v lftp")) then
  error("lftp is missing: `make bench` installs it (scripts/deps.sh bench)")
end

local work = H.tmpdir()
local load0 = (H.read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)")

---------------------------------------------------------------------------
-- the tree
---------------------------------------------------------------------------

local BASE_T = os.time() - 2 * 86400
BASE_T = BASE_T - BASE_T % 60 -- whole minutes: a LIST time is exact too

-- small files are named dNN/fNNN; every tenth one changes in B
local function small_name(d, i) return ("d%02d/f%03d"):format(d, i) end
local function big_name(i) return ("big%02d"):format(i) end

--- Writes tree A under dir (small files, and the big ones unless
-- small_only), then B as a copy of A with 10% changed.
local function make_trees(dir, small_only)
  local a, b = dir .. "/A", dir .. "/B"
  local blob = F.random_bytes(1024)
  for d = 0, NDIRS - 1 do
    must("mkdir -p " .. q(("%s/d%02d"):format(a, d)))
    for i = 0, NFILES - 1 do
      local n = small_name(d, i)
      H.write_file(a .. "/" .. n, ("%-16s"):format(n) .. blob:sub(17))
    end
  end
  if not small_only then
    for i = 0, NBIG - 1 do
      must(("head -c 10M /dev/urandom > %s"):format(q(a .. "/" .. big_name(i))))
    end
  end
  must(("find %s -type f -exec touch -m -d @%d {} +"):format(q(a), BASE_T))
  must(("cp -a %s %s"):format(q(a), q(b)))
  local changed = {}
  for d = 0, NDIRS - 1 do
    for i = 0, NFILES - 1, 10 do changed[#changed + 1] = small_name(d, i) end
  end
  for _, n in ipairs(changed) do
    H.write_file(b .. "/" .. n, ("%-16s"):format("changed " .. n) .. blob:sub(17) .. ("+"):rep(10))
  end
  if not small_only and NBIG > 0 then
    changed[#changed + 1] = big_name(0)
    must(("head -c %d /dev/urandom > %s"):format(10 * 1048576 + 1024, q(b .. "/" .. big_name(0))))
  end
  for _, n in ipairs(changed) do
    must(("touch -m -d @%d %s"):format(BASE_T + 3600, q(b .. "/" .. n)))
  end
  return #changed
end

--- name -> {size, mtime} for the files under dir.
local function scan(dir)
  local t, n = {}, 0
  local out = sh(("cd %s 2>/dev/null && find . -type f -printf '%%P\\t%%s\\t%%T@\\n'"):format(q(dir)))
  for name, size, mtime in out:gmatch("([^\n\t]+)\t(%d+)\t([%d.]+)") do
    t[name] = {tonumber(size), math.floor(tonumber(mtime))}
    n = n + 1
  end
  return t, n
end

--- Whether dst is a copy of the server tree src (same names, same
-- sizes); also how many files kept the server's modification time.
local function check_copy(src, dst)
  local want, nwant = scan(src)
  local got, ngot = scan(dst)
  local same_time = 0
  for name, w in pairs(want) do
    local g = got[name]
    if not g then return false, "missing " .. name, same_time end
    if g[1] ~= w[1] then
      return false, ("%s has %d bytes, not %d"):format(name, g[1], w[1]), same_time
    end
    if g[2] == w[2] then same_time = same_time + 1 end
  end
  if ngot ~= nwant then
    for name in pairs(got) do
      if not want[name] then return false, "extra file " .. name, same_time end
    end
  end
  return true, nil, same_time
end

---------------------------------------------------------------------------
-- the tools, each a separate process
---------------------------------------------------------------------------

-- netlua's runs use this script's interpreter and the build made for it
local LUA = arg[-1] or "lua5.4"
local luaenv = ("env -u LD_PRELOAD LUA_PATH=%s LUA_CPATH=%s "):format(
  q(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;"),
  q(H.root .. "/" .. H.build_for(LUA) .. "/?.so;;"))

-- takes both of mirror's return shapes: today's file count and the
-- coming report table ({files=, bytes=, skipped=, failed={}...})
local netlua_child = work .. "/mirror_child.lua"
H.write_file(netlua_child, [[
local ftp = require "netlua.ftp"
local host, port, user, password, remote, dst, p = ...
local s = assert(ftp.new{host = host, port = tonumber(port), user = user,
  password = password, timeout = 60})
local r, msg, code, extra = s:mirror(remote, dst, {parallel = tonumber(p)})
s:close()
if type(r) == "table" then
  print(("files=%s bytes=%s skipped=%s failed=%d"):format(tostring(r.files),
    tostring(r.bytes), tostring(r.skipped), #(r.failed or {})))
  if r.failed and #r.failed > 0 then os.exit(1) end
elseif r then
  print(("files=%s"):format(tostring(r)))
else
  local nf = type(extra) == "table" and (#extra > 0 and #extra or #(extra.failed or {})) or 0
  print(("failed: %s (%s), %d files failed"):format(tostring(msg), tostring(code), nf))
  os.exit(1)
end
]])

local lftp_home = work .. "/lftp-home"
must("mkdir -p " .. q(lftp_home))
local LFTP_SET = {
  "set cmd:fail-exit yes",
  "set net:max-retries 1",
  "set net:timeout 60",
  "set ftp:ssl-allow no",
}
local function lftp_cmd(script_text)
  local p = work .. "/lftp-script"
  H.write_file(p, script_text)
  return ("env HOME=%s lftp --norc -f %s"):format(q(lftp_home), q(p))
end

local function tool_cmd(tool, sv, remote, dst, p)
  if tool == "netlua" then
    return luaenv .. LUA .. " " .. table.concat({q(netlua_child), q(sv.host), sv.port,
      q(sv.user), q(sv.password), q(remote), q(dst), p}, " ")
  end
  local lines = {unpack(LFTP_SET)}
  lines[#lines + 1] = ('open -u "%s,%s" -p %d %s'):format(sv.user, sv.password, sv.port, sv.host)
  lines[#lines + 1] = ('mirror --parallel=%d "%s" "%s"'):format(p, remote, dst)
  return lftp_cmd(table.concat(lines, "\n") .. "\n")
end

---------------------------------------------------------------------------
-- servers and their command logs
---------------------------------------------------------------------------

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

local function read_from(path, off)
  local f = io.open(path, "rb")
  if not f then return "" end
  f:seek("set", off)
  local s = f:read("*a")
  f:close()
  return s or ""
end

-- each returns the command lines of a log excerpt
local function vsftpd_commands(text)
  local t = {}
  for line in text:gmatch("[^\n]+") do
    local c = line:match('FTP command: Client "[^"]*", "(.*)"$')
    if c then t[#t + 1] = c end
  end
  return t
end

local function delay_commands(text)
  local t = {}
  for line in text:gmatch("[^\n]+") do
    local c = line:match("^[%d.]+ %d+ (.*)$")
    if c then t[#t + 1] = c end
  end
  return t
end

local function start_vsftpd()
  local sv = F.vsftpd()
  -- chpasswd's default hash (yescrypt) makes each login cost vsftpd
  -- about half a second of CPU here, which would swamp the parallel
  -- rows: SHA-512 (a few ms) keeps the login out of the way
  must(("echo %s | chpasswd -c SHA512"):format(q(sv.user .. ":" .. sv.password)))
  sv.name, sv.label, sv.cmdlog, sv.commands = "vsftpd", "vsftpd", sv.log, vsftpd_commands
  sv.nchanged = make_trees(sv.root)
  must(("chown -R %s %s"):format(sv.user, q(sv.root)))
  return sv
end

local function start_delay()
  local sv = {name = "delay", label = ("+%g ms"):format(DELAY * 1000)}
  sv.dir = H.tmpdir()
  sv.root = sv.dir .. "/root"
  sv.cmdlog = sv.dir .. "/commands.log"
  sv.user, sv.password = "bench", "benchpw"
  sv.host, sv.port = "127.0.0.1", H.free_port("inet")
  sv.nchanged = make_trees(sv.root, true)
  sv.pid = H.spawn(("/usr/bin/python3 %s %d %s %s %s %s %s"):format(
    q(H.root .. "/spec/servers/ftp_delay.py"), sv.port, q(sv.root), sv.user,
    sv.password, DELAY, q(sv.cmdlog)), {log = sv.dir .. "/stderr"})
  local ok, err = pcall(H.wait_port, sv.host, sv.port, 15)
  if not ok then
    H.kill(sv.pid)
    error(tostring(err) .. "\n" .. (H.read_file(sv.dir .. "/stderr") or ""))
  end
  sv.commands = delay_commands
  function sv.stop()
    H.kill(sv.pid)
    H.rm_rf(sv.dir)
  end
  return sv
end

---------------------------------------------------------------------------
-- the runs
---------------------------------------------------------------------------

-- results[server][phase][tool][p] = {best=, runs=, nbad=, allbad=, why=,
-- ncmd=, nretr=, verbs=, same_time=}: best is the best good run's time
-- (the best run's when none was good)
local results = {}
local servers = {}

local function one_run(sv, tool, remote, dst, p)
  local off = file_size(sv.cmdlog)
  local cmd = "timeout 900 " .. tool_cmd(tool, sv, remote, dst, p)
  local t0 = netlua.monotime()
  local out, ok = sh(cmd)
  local dt = netlua.monotime() - t0
  -- the server logs a command when it reads it; let it catch up with
  -- the last ones (QUIT) before the next run starts counting
  netlua.sleep(0.15)
  local cmds = sv.commands(read_from(sv.cmdlog, off))
  local good, why, same_time = check_copy(sv.root .. "/" .. remote, dst)
  -- a tool that says it failed told the truth; a wrong copy it calls
  -- good is a wrong answer
  local failed = not ok
  if failed then good, why = false, "exit status: " .. out:gsub("%s+$", "") end
  return {time = dt, good = good, why = why, out = out, cmds = cmds, same_time = same_time,
    label = failed and "FAILED" or "WRONG COPY"}
end

local function record(sv, phase, tool, p, r)
  local by = results[sv.name][phase][tool]
  local e = by[p] or {runs = 0, nbad = 0}
  by[p] = e
  e.runs = e.runs + 1
  if r.good then
    if e.allbad or not e.best or r.time < e.best then e.best = r.time end
    e.allbad = false
  else
    e.nbad = e.nbad + 1
    e.why = e.why or r.why
    if e.allbad == nil then e.allbad = true end
    if e.allbad and (not e.best or r.time < e.best) then e.best = r.time end
    io.stderr:write(("  %s %s p=%d %s: %s: %s\n"):format(sv.name, phase, p, tool, r.label, tostring(r.why)))
  end
  if e.runs == 1 then
    -- the commands of the first run (the later ones send the same)
    e.ncmd = #r.cmds
    local verbs, nretr = {}, 0
    for _, c in ipairs(r.cmds) do
      local v = (c:match("^(%S+)") or "?"):upper()
      verbs[v] = (verbs[v] or 0) + 1
      if v == "RETR" then nretr = nretr + 1 end
    end
    e.nretr, e.verbs, e.same_time = nretr, verbs, r.same_time
  end
  print(("  %-7s %-16s p=%-2d %-6s %7.2f s  %5d commands %5d RETR%s"):format(sv.name,
    PHASE_NAME[phase], p, tool, r.time, #r.cmds, e.nretr or 0, r.good and "" or "  " .. r.label))
end

local function bench_server(sv)
  results[sv.name] = {}
  for _, ph in ipairs(PHASES) do
    results[sv.name][ph] = {}
    for _, tool in ipairs(TOOLS) do results[sv.name][ph][tool] = {} end
  end
  local _, nfiles = scan(sv.root .. "/A")
  sv.nfiles = nfiles
  print(("%s on %s:%d: %d files in A, %d of them changed in B"):format(sv.label,
    sv.host, sv.port, nfiles, sv.nchanged))
  for _, p in ipairs(PARALLEL) do
    local dst, base = {}, {}
    for _, tool in ipairs(TOOLS) do
      dst[tool] = ("%s/%s-%s-p%d"):format(work, sv.name, tool, p)
      base[tool] = dst[tool] .. "-base"
    end
    for _, ph in ipairs(PHASES) do
      if ph == "changed" then
        -- each tool's own complete mirror of A is where it starts from
        for _, tool in ipairs(TOOLS) do
          must(("rm -rf %s && cp -a %s %s"):format(q(base[tool]), q(dst[tool]), q(base[tool])))
        end
      end
      for rep = 1, REPEAT do
        for _, tool in ipairs(TOOLS) do
          local e = results[sv.name][ph][tool][p]
          if not (rep > 1 and e and e.best > SLOW) then  -- a slow one runs once
            if ph == "first" then
              must("rm -rf " .. q(dst[tool]))
            elseif ph == "changed" then
              must(("rm -rf %s && cp -a %s %s"):format(q(dst[tool]), q(base[tool]), q(dst[tool])))
            end
            record(sv, ph, tool, p, one_run(sv, tool, ph == "changed" and "B" or "A", dst[tool], p))
          end
        end
      end
    end
    for _, tool in ipairs(TOOLS) do
      must(("rm -rf %s %s"):format(q(dst[tool]), q(base[tool])))
    end
  end
end

-- what lftp runs with: its defaults plus LFTP_SET
do
  local keys = {"cmd:fail-exit", "net:max-retries", "net:timeout", "ftp:ssl-allow",
    "ftp:sync-mode", "ftp:use-feat", "ftp:use-mlsd", "ftp:use-mdtm", "ftp:use-size",
    "ftp:prefer-epsv", "ftp:passive-mode", "ftp:use-stat", "mirror:parallel-directories",
    "mirror:set-permissions", "mirror:overwrite", "xfer:use-temp-file", "xfer:clobber"}
  local out = sh(lftp_cmd(table.concat(LFTP_SET, "\n") .. "\nset -a\n"))
  local want = {}
  for _, k in ipairs(keys) do want[k] = true end
  local shown = {}
  for line in out:gmatch("[^\n]+") do
    local k = line:match("^set (%S+) ")
    if k and want[k] then shown[#shown + 1] = line:sub(5) end
  end
  print(((sh("lftp --version"):match("[^\n]+") or "lftp"):gsub("%s*|%s*Copyright.*", "")))
  print("lftp settings: " .. table.concat(shown, "; "))
end

local function run_server(start)
  local ok, sv = pcall(start)
  if not ok then io.stderr:write("server did not start: ", tostring(sv), "\n") return end
  servers[#servers + 1] = sv
  local ok2, err = pcall(bench_server, sv)
  if not ok2 then io.stderr:write("bench failed on ", sv.name, ": ", tostring(err), "\n") end
  sv.stop()
end

local t_start = netlua.monotime()
if not ONLY or ONLY == "vsftpd" then run_server(start_vsftpd) end
if not ONLY or ONLY == "delay" then run_server(start_delay) end
H.rm_rf(work)

---------------------------------------------------------------------------
-- the report
---------------------------------------------------------------------------

local function cell(e, fmt)
  if not e or not e.best then return "n/a" end
  local s = (fmt or "%.2f"):format(e.best)
  if e.allbad then return "bad " .. s end
  if e.nbad > 0 then s = s .. "!" end
  return s
end

local function row_of(sv, ph, f)
  local t = {}
  for _, p in ipairs(PARALLEL) do t[#t + 1] = f(p) end
  return table.concat(t, " / ")
end

local plist = table.concat(PARALLEL, " / ")
print()
print(("Seconds, best of %d good runs (one run when over %d s); each tool a separate"
  .. " process, connect and login included.\n\"bad\": every run failed or made a wrong copy;"
  .. " \"!\": a run failed or made a wrong copy and its time is left out; \"?\": a ratio"
  .. " with a bad time in it"):format(REPEAT, SLOW))
print()
print(("| server, run | netlua p=%s (s) | lftp `mirror --parallel=` %s (s) | ratio lftp/netlua |")
  :format(plist, plist))
print("|---|---|---|---|")
for _, sv in ipairs(servers) do
  for _, ph in ipairs(PHASES) do
    local r = results[sv.name] and results[sv.name][ph]
    if r then
      print(("| %s, %s | %s | %s | %s |"):format(sv.label, PHASE_NAME[ph],
        row_of(sv, ph, function(p) return cell(r.netlua[p]) end),
        row_of(sv, ph, function(p) return cell(r.lftp[p]) end),
        row_of(sv, ph, function(p)
          local a, b = r.netlua[p], r.lftp[p]
          if not (a and b and a.best and b.best) then return "n/a" end
          local s = ("%.2f"):format(b.best / a.best)
          if a.allbad or b.allbad then s = s .. "?" end
          return s
        end)))
    end
  end
end

print()
print("Commands the server read (first run of each cell), and the RETRs among them:")
print()
print(("| server, run | netlua p=%s | lftp p=%s |"):format(plist, plist))
print("|---|---|---|")
for _, sv in ipairs(servers) do
  for _, ph in ipairs(PHASES) do
    local r = results[sv.name] and results[sv.name][ph]
    if r then
      local function c(tool)
        return row_of(sv, ph, function(p)
          local e = r[tool][p]
          return e and e.ncmd and ("%d (%d RETR)"):format(e.ncmd, e.nretr) or "n/a"
        end)
      end
      print(("| %s, %s | %s | %s |"):format(sv.label, PHASE_NAME[ph], c("netlua"), c("lftp")))
    end
  end
end

local p1 = PARALLEL[1]
print()
print(("Commands by verb at parallel %d: the first copy (and per file of the tree),"
  .. " and the run with nothing changed"):format(p1))
for _, sv in ipairs(servers) do
  local r = results[sv.name]
  local cols = r and {r.first.netlua[p1], r.first.lftp[p1], r.same.netlua[p1], r.same.lftp[p1]}
  if cols and cols[1] and cols[2] and cols[1].verbs and cols[2].verbs then
    local a, b = cols[1], cols[2]
    print()
    print(("%s, %d files: first copy netlua %d commands (%.2f per file), lftp %d (%.2f per file);"
      .. " files left with the server's mtime: netlua %d, lftp %d"):format(sv.label, sv.nfiles,
      a.ncmd, a.ncmd / sv.nfiles, b.ncmd, b.ncmd / sv.nfiles, a.same_time, b.same_time))
    local verbs, seen, total = {}, {}, {}
    for i = 1, 4 do
      for v, n in pairs(cols[i] and cols[i].verbs or {}) do
        if not seen[v] then seen[v] = true verbs[#verbs + 1] = v end
        total[v] = (total[v] or 0) + n
      end
    end
    table.sort(verbs, function(x, y)
      if total[x] ~= total[y] then return total[x] > total[y] end
      return x < y
    end)
    print("| verb | first copy: netlua | lftp | nothing changed: netlua | lftp |")
    print("|---|---|---|---|---|")
    local function n(i, v) return cols[i] and cols[i].verbs and (cols[i].verbs[v] or 0) end
    local function first(i, v) return ("%d (%.3f)"):format(n(i, v), n(i, v) / sv.nfiles) end
    local function same(i, v) return n(i, v) and tostring(n(i, v)) or "n/a" end
    for _, v in ipairs(verbs) do
      print(("| %s | %s | %s | %s | %s |"):format(v, first(1, v), first(2, v), same(3, v), same(4, v)))
    end
  end
end

local load1 = (H.read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)")
print()
print(("whole bench %.0f s; load average at start %s, at end %s"):format(
  netlua.monotime() - t_start, load0 or "?", load1 or "?"))
