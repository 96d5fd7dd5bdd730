--- bench/ftp.lua: FTP throughput and small-file latency, netlua against
-- the curl CLI and Python's ftplib, all on one local vsftpd.
--
-- Run:
--   sh scripts/netns.sh env LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/ftp.lua
--
-- Prints MB/s for a 1 GiB RETR (netlua, curl CLI, ftplib), netlua's peak
-- RSS during it (VmHWM of a child process), and seconds for 1000 x 1 KiB
-- files (netlua sequential, netlua mirror parallel=4, ftplib sequential),
-- and seconds and peak RSS of s:list() on a 100 000-file directory, by LIST
-- on vsftpd and by MLSD on pyftpdlib (each in a child process).
-- BENCH_MB=256 shrinks the big file for a quick run; BENCH_LIST sets the
-- directory size (0 skips it); BENCH_ONLY=list runs the listing part alone.
local H = require "helper"
local F = require "ftp_helper"
local netlua = require "netlua"

local MB = tonumber(os.getenv("BENCH_MB") or "1024")
local NSMALL = tonumber(os.getenv("BENCH_FILES") or "1000")
local NLIST = tonumber(os.getenv("BENCH_LIST") or "100000")
local ONLY = os.getenv("BENCH_ONLY")

local srv = F.vsftpd()
local work = H.tmpdir()
local results = {}

local function run(fn)
  local ok, err = pcall(fn)
  if not ok then io.stderr:write("bench step failed: ", tostring(err), "\n") end
end

local function script(name, text)
  local p = work .. "/" .. name
  H.write_file(p, text)
  return p
end

-- the children run on this script's interpreter and the build made for it
local LUA = arg[-1] or "lua5.4"
local luaenv = ("env -u LD_PRELOAD LUA_PATH=%s LUA_CPATH=%s "):format(
  H.shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;" .. H.root .. "/spec/?.lua;;"),
  H.shquote(H.root .. "/" .. H.build_for(LUA) .. "/?.so;;"))

local function timed_sh(cmd)
  local t0 = netlua.monotime()
  local out, ok = F.sh(cmd)
  return netlua.monotime() - t0, out, ok
end

-- (not indented: the Python scripts in it must start at column 0)
if not ONLY or ONLY == "transfer" then
print(("setting up: %d MiB file and %d small files on vsftpd %s:%d"):format(MB, NSMALL, srv.host, srv.port))
F.sh(("head -c %dM /dev/urandom > %s && mkdir -p %s"):format(MB, H.shquote(srv.path("big")),
  H.shquote(srv.path("small"))))
do
  local blob = F.random_bytes(1024)
  for i = 1, NSMALL do H.write_file(srv.path(("small/f%04d"):format(i)), blob) end
  F.sh("chown -R " .. srv.user .. " " .. H.shquote(srv.root))
end
local bytes = MB * 1024 * 1024

-- 1. big RETR through netlua, in a child so VmHWM is its own
run(function()
  local p = script("big.lua", ([[
    local ftp = require "netlua.ftp"
    local netlua = require "netlua"
    local s = assert(ftp.new{host = %q, port = %d, user = %q, password = %q, timeout = 600})
    local n = 0
    local t0 = netlua.monotime()
    assert(s:retrbinary("RETR big", function(b) n = n + #b end, 1024 * 1024))
    local dt = netlua.monotime() - t0
    s:close()
    local hwm = io.open("/proc/self/status"):read("*a"):match("VmHWM:%%s*(%%d+)")
    print(n, dt, hwm)
  ]]):format(srv.host, srv.port, srv.user, srv.password))
  local out = F.sh(luaenv .. LUA .. " " .. H.shquote(p))
  local n, dt, hwm = out:match("(%d+)%s+([%d.e-]+)%s+(%d+)")
  assert(n and tonumber(n) == bytes, "netlua RETR: " .. out)
  results.netlua_big = bytes / 1e6 / tonumber(dt)
  results.netlua_rss = tonumber(hwm) / 1024
end)

-- 2. curl CLI
run(function()
  local url = ("ftp://%s:%s@%s:%d/big"):format(srv.user, srv.password:gsub("!", "%%21"), srv.host, srv.port)
  local dt, out, ok = timed_sh("curl -s -S -o /dev/null " .. H.shquote(url))
  assert(ok, out)
  results.curl_big = bytes / 1e6 / dt
end)

-- 3. Python ftplib
local have_python = select(2, F.sh("/usr/bin/python3 -c 'import ftplib'"))
if have_python then
  run(function()
    local p = script("big.py", ([[
import ftplib, time
f = ftplib.FTP()
f.connect(%q, %d, timeout=600)
f.login(%q, %q)
n = [0]
def cb(b): n[0] += len(b)
t0 = time.monotonic()
f.retrbinary("RETR big", cb, blocksize=1024*1024)
print(n[0], time.monotonic() - t0)
f.quit()
]]):format(srv.host, srv.port, srv.user, srv.password))
    local out = F.sh("/usr/bin/python3 " .. H.shquote(p))
    local n, dt = out:match("(%d+)%s+([%d.e-]+)")
    assert(n and tonumber(n) == bytes, "ftplib: " .. out)
    results.ftplib_big = bytes / 1e6 / tonumber(dt)
  end)
end

-- 4. small files: netlua sequential and mirror (in this process) and
-- ftplib sequential, each run twice in turn; the best run counts.
local ftplib_small = have_python and script("small.py", ([[
import ftplib, time, os, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
f = ftplib.FTP()
f.connect(%q, %d, timeout=60)
f.login(%q, %q)
t0 = time.monotonic()
for i in range(1, %d + 1):
    name = "f%%04d" %% i
    with open(os.path.join(d, name), "wb") as out:
        f.retrbinary("RETR small/" + name, out.write)
print(time.monotonic() - t0)
f.quit()
]]):format(srv.host, srv.port, srv.user, srv.password, NSMALL))

local function best(k, v)
  if v and (not results[k] or v < results[k]) then results[k] = v end
end

-- the big file's pages may still be on their way to disk: new files
-- would wait on that writeback, for both clients alike but unevenly
F.sh("sync")
for round = 1, 2 do
  run(function()
    local ftp = require "netlua.ftp"
    local s = assert(ftp.new(srv.opts{timeout = 60}))
    local dir = work .. "/seq" .. round
    F.sh("mkdir -p " .. H.shquote(dir))
    local t0 = netlua.monotime()
    for i = 1, NSMALL do
      local name = ("f%04d"):format(i)
      assert(s:get("small/" .. name, dir .. "/" .. name))
    end
    best("netlua_seq", netlua.monotime() - t0)
    -- the way the ftplib script does it: open, retrbinary into it, close
    dir = work .. "/raw" .. round
    F.sh("mkdir -p " .. H.shquote(dir))
    t0 = netlua.monotime()
    for i = 1, NSMALL do
      local name = ("f%04d"):format(i)
      local f = assert(io.open(dir .. "/" .. name, "wb"))
      assert(s:retrbinary("RETR small/" .. name, f))
      f:close()
    end
    best("netlua_raw", netlua.monotime() - t0)
    t0 = netlua.monotime()
    assert(assert(s:mirror("small", work .. "/mirror" .. round, {parallel = 4})).files == NSMALL)
    best("netlua_mirror", netlua.monotime() - t0)
    s:close()
  end)
  if ftplib_small then
    run(function()
      local out = F.sh("/usr/bin/python3 " .. H.shquote(ftplib_small) .. " " .. H.shquote(work .. "/py" .. round))
      best("ftplib_seq", tonumber(out:match("([%d.e-]+)")))
    end)
  end
end

end

-- 5. s:list() of a big directory, in a child process so VmHWM is its own:
-- LIST on vsftpd, MLSD on pyftpdlib (vsftpd has no MLSD).
local function list_child(sv, label, lean)
  local p = script("list.lua", ([[
    local ftp = require "netlua.ftp"
    local netlua = require "netlua"
    local function kib(field)
      return tonumber(io.open("/proc/self/status"):read("*a"):match(field .. ":%%s*(%%d+)"))
    end
    local s = assert(ftp.new{host = %q, port = %d, user = %q, password = %q, timeout = 600})
    local base = kib("VmRSS")  -- the process with netlua and libcurl loaded, logged in
    local t0, c0 = netlua.monotime(), os.clock()
    local t = assert(s:list("many", %s))
    local dt, cpu = netlua.monotime() - t0, os.clock() - c0
    assert(t[1].name == "f000001" and t[#t].size == 0, "bad entries")
    s:close()
    local hwm = kib("VmHWM")
    -- the floor: that process plus the result alone (the live Lua heap
    -- after a full collection), with no buffer and no garbage at all
    collectgarbage()
    collectgarbage()
    print(#t, dt, cpu, hwm, base + collectgarbage("count"))
  ]]):format(sv.host, sv.port, sv.user, sv.password,
    lean and '{fields = {"type", "size", "modify"}}' or "nil"))
  local out = F.sh(luaenv .. LUA .. " " .. H.shquote(p))
  local n, dt, cpu, hwm, floor = out:match("(%d+)%s+([%d.e-]+)%s+([%d.e-]+)%s+(%d+)%s+([%d.e-]+)")
  assert(n and tonumber(n) == NLIST, label .. ": " .. out)
  results[label .. "_s"] = tonumber(dt)
  results[label .. "_cpu"] = tonumber(cpu)
  results[label .. "_rss"] = tonumber(hwm) / 1024
  results[label .. "_floor"] = tonumber(floor) / 1024
  if lean then return end
  -- the floor the server sets: the curl CLI fetching the same listing to
  -- /dev/null, parsing nothing (best of 2)
  local verb = label == "list_MLSD" and "-X MLSD " or ""
  for _ = 1, 2 do
    local t0 = netlua.monotime()
    local _, ok = F.sh(("curl -s -o /dev/null %s-u %s:%s ftp://%s:%d/many/"):format(verb,
      sv.user, sv.password, sv.host, sv.port))
    local dt = netlua.monotime() - t0
    if ok and (not results[label .. "_curl"] or dt < results[label .. "_curl"]) then
      results[label .. "_curl"] = dt
    end
  end
end

local function make_many(sv)
  local dir = sv.path("many")
  local out, ok = F.sh(("mkdir -p %s && cd %s && seq -f 'f%%06g' 1 %d | xargs touch")
    :format(H.shquote(dir), H.shquote(dir), NLIST))
  assert(ok, out)
end

if NLIST > 0 and (not ONLY or ONLY == "list") then
  print(("setting up: %d files in one directory on vsftpd and pyftpdlib"):format(NLIST))
  run(function()
    make_many(srv)
    F.sh("chown -R " .. srv.user .. " " .. H.shquote(srv.path("many")))
    list_child(srv, "list_LIST")
    list_child(srv, "lean_LIST", true)
  end)
  run(function()
    local py = F.pyftpd()
    local ok, err = pcall(function()
      make_many(py)
      list_child(py, "list_MLSD")
      list_child(py, "lean_MLSD", true)
    end)
    py.stop()
    assert(ok, err)
  end)
end

srv.stop()
H.rm_rf(work)

local function fmt(v, unit, p) return v and ("%10." .. (p or 1) .. "f %s"):format(v, unit) or "       n/a" end
local function ratio(a, b) return (a and b) and ("%.2fx"):format(a / b) or "n/a" end
local r = results
print()
print(("%d MiB RETR"):format(MB))
print("  netlua            " .. fmt(r.netlua_big, "MB/s"))
print("  curl CLI          " .. fmt(r.curl_big, "MB/s"))
print("  Python ftplib     " .. fmt(r.ftplib_big, "MB/s"))
print("  netlua / curl     " .. ratio(r.netlua_big, r.curl_big) .. "   (target >= 1.0)")
print("  netlua / ftplib   " .. ratio(r.netlua_big, r.ftplib_big))
print("  netlua peak RSS   " .. fmt(r.netlua_rss, "MiB") .. "   (target < 30)")
print(("%d x 1 KiB files (best of 2 runs)"):format(NSMALL))
print("  netlua get()      " .. fmt(r.netlua_seq, "s", 3))
print("  netlua retrbinary " .. fmt(r.netlua_raw, "s", 3) .. "   (into an open file, as the ftplib script does)")
print("  netlua mirror x4  " .. fmt(r.netlua_mirror, "s", 3))
print("  ftplib sequential " .. fmt(r.ftplib_seq, "s", 3))
print("  ftplib / netlua get()       " .. ratio(r.ftplib_seq, r.netlua_seq) .. "   (target >= 1.25)")
print("  ftplib / netlua retrbinary  " .. ratio(r.ftplib_seq, r.netlua_raw) .. "   (target >= 1.25)")
print(("s:list() of %d files (target < 0.3 s, < 40 MiB)"):format(NLIST))
print("  (seconds include the server making the listing; cpu is netlua's alone;")
print("   curl is the curl CLI fetching the same listing unparsed: the server's floor)")
print("   floor: the process before the listing plus the result's own live heap)")
print("  LIST (vsftpd)     " .. fmt(r.list_LIST_s, "s", 3) .. fmt(r.list_LIST_cpu, "s cpu", 3)
  .. fmt(r.list_LIST_rss, "MiB") .. "   curl" .. fmt(r.list_LIST_curl, "s", 3)
  .. "   floor" .. fmt(r.list_LIST_floor, "MiB"))
print("  MLSD (pyftpdlib)  " .. fmt(r.list_MLSD_s, "s", 3) .. fmt(r.list_MLSD_cpu, "s cpu", 3)
  .. fmt(r.list_MLSD_rss, "MiB") .. "   curl" .. fmt(r.list_MLSD_curl, "s", 3)
  .. "   floor" .. fmt(r.list_MLSD_floor, "MiB"))
print("  with fields = {type, size, modify}, as mirror lists:")
print("  LIST (vsftpd)     " .. fmt(r.lean_LIST_s, "s", 3) .. fmt(r.lean_LIST_cpu, "s cpu", 3)
  .. fmt(r.lean_LIST_rss, "MiB") .. "   floor" .. fmt(r.lean_LIST_floor, "MiB"))
print("  MLSD (pyftpdlib)  " .. fmt(r.lean_MLSD_s, "s", 3) .. fmt(r.lean_MLSD_cpu, "s cpu", 3)
  .. fmt(r.lean_MLSD_rss, "MiB") .. "   floor" .. fmt(r.lean_MLSD_floor, "MiB"))
