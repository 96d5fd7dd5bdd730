--- spec/helper.lua: what every spec needs to run real peers on loopback.
--
-- Servers are started as child processes on 127.0.0.1 / ::1 at free
-- ports, in temporary folders, and stopped by PID.  Nothing here talks to
-- anything but loopback.
local netlua = require "netlua"

-- 5.1 and LuaJIT lack table.pack and table.unpack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local unpack = table.unpack or unpack

local H = {}

H.root = os.getenv("PWD") or "."
H.build = os.getenv("NETLUA_BUILD") or "build"
--- The Lua the suite runs on (NETLUA_LUA: lua5.1 ... lua5.4, luajit),
-- for the child processes that load the same build.
H.lua = os.getenv("NETLUA_LUA") or "lua5.4"

--- The build folder the Makefile makes for interpreter `lua` (lua5.4:
-- build, luajit: build-jit, lua5.X: build-5.X); NETLUA_BUILD wins.
function H.build_for(lua)
  local env = os.getenv("NETLUA_BUILD")
  if env then return env end
  if lua:find("luajit") then return "build-jit" end
  local v = lua:match("lua(5%.%d)$")
  return (v == nil or v == "5.4") and "build" or "build-" .. v
end
--- PUC Lua 5.1 (not LuaJIT): a task cannot wait inside a pcall or a for
-- iterator there (netlua.pcall works around the first).
H.puc51 = _VERSION == "Lua 5.1" and not rawget(_G, "jit")
--- How much slower this run is than a plain one: the time windows of the
-- fairness specs grow by it under valgrind (20-50x slower code), whose
-- run is about memory errors, not timing.
H.slack = os.getenv("NETLUA_VALGRIND") and 5 or 1

-- PIDs of what H.spawn started and H.kill has not stopped yet
local started = {}

-- Stops whatever `set` still lists, and empties it: TERM, up to 2 s for
-- them to go, then KILL.  No netlua call and no task waiting, so that it
-- can run in a finalizer while the Lua state closes.
local function stop_left(set)
  local pids = {}
  for pid in pairs(set) do
    set[pid] = nil
    pids[#pids + 1] = pid
  end
  local function alive()  -- keeps those still alive in pids
    local t = {}
    for _, pid in ipairs(pids) do
      if H.alive(pid) then t[#t + 1] = pid end
    end
    pids = t
    return t[1] ~= nil
  end
  local function signal(sig)
    if alive() then os.execute("kill -" .. sig .. " " .. table.concat(pids, " ") .. " 2>/dev/null") end
  end
  signal("TERM")
  for _ = 1, 40 do
    if not alive() then return end
    os.execute("sleep 0.05")
  end
  signal("KILL")
end

-- Servers still running when the run ends are stopped, whether busted
-- ends normally, after errors or on an interrupt (the interpreter turns
-- the first SIGINT into a Lua error); a crash, SIGKILL or SIGTERM of the
-- interpreter still leaves them running:
-- * when the Lua state closes (busted's os.exit(code, true), or the
--   interpreter ending after an error nobody caught), through a
--   finalizer: `started` has one on 5.2 and later; 5.1 and LuaJIT take
--   no __gc on tables, so its metatable holds a proxy with one instead.
--   The same runs when busted drops this copy of the module early (it
--   loads it afresh for every spec file): its file has ended by then;
-- * on busted's "exit" event, for 5.1's os.exit, which closes nothing.
do
  local function finalize() pcall(stop_left, started) end
  local mt = {__gc = finalize}
  if newproxy then  -- 5.1 and LuaJIT
    mt.proxy = newproxy(true)
    getmetatable(mt.proxy).__gc = finalize
  end
  setmetatable(started, mt)
  local busted = package.loaded.busted
  if type(busted) == "table" and type(busted.subscribe) == "function" then
    -- nil, true: the other subscribers to "exit" run too
    busted.subscribe({"exit"}, function() finalize() return nil, true end)
  end
end

local function shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
H.shquote = shquote

--- Runs a shell command; returns its output (stdout+stderr) and success.
-- The shell's exit status comes as a last line of its own, which H.sh
-- takes off: closing a pipe tells it only on 5.2 and later.
function H.sh(cmd)
  local p = assert(io.popen("trap 'printf \"\\n%d\\n\" $?' EXIT\n" .. cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  local body, status = out:match("^(.*)\n(%d+)\n$")
  if not body then return out, nil end  -- killed, or replaced by exec
  return body, status == "0" or nil
end

function H.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function H.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end

--- n bytes from /dev/urandom (data no compressor or pattern can fake)
function H.random_bytes(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local parts, got = {}, 0
  while got < n do
    local b = assert(f:read(math.min(n - got, 1024 * 1024)))
    parts[#parts + 1] = b
    got = got + #b
  end
  f:close()
  return table.concat(parts)
end

function H.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- A new temporary directory (removed by H.rm_rf).
--- Sorted names in a folder (none for a missing one).
function H.ls(path)
  local t = {}
  local p = io.popen("ls -A " .. shquote(path) .. " 2>/dev/null")
  for n in p:lines() do t[#t + 1] = n end
  p:close()
  table.sort(t)
  return t
end

function H.tmpdir()
  local out = H.sh("mktemp -d /tmp/netlua-spec.XXXXXX")
  return (out:gsub("%s+$", ""))
end

function H.rm_rf(path)
  assert(path:match("^/tmp/netlua%-"), "refusing to remove " .. path)
  H.sh("rm -rf " .. shquote(path))
end

--- True when this process runs in a network namespace of its own
-- (scripts/netns.sh), not the host's.
function H.in_netns()
  local mine = H.sh("readlink /proc/self/ns/net"):gsub("%s+$", "")
  local init = H.sh("readlink /proc/1/ns/net"):gsub("%s+$", "")
  if init == "" then return os.getenv("NETLUA_NETNS") == "1" end
  return mine ~= init
end

--- Refuses to go on outside a private network namespace.  Every spec that
-- sends multicast calls this first.
function H.require_netns()
  if not H.in_netns() then
    error("this spec sends multicast: run it through scripts/netns.sh (make test)", 2)
  end
end

--- A free TCP port on loopback (family "inet" or "inet6").
function H.free_port(family)
  local host = family == "inet6" and "::1" or "127.0.0.1"
  local s = assert(netlua.tcp.listen(host, 0, {reuse = false}))
  local _, port = s:getsockname()
  s:close()
  return port
end

--- Starts `cmd` (a shell command line) in the background; returns its PID.
-- LD_PRELOAD (the ASan runtime) is removed unless opts.keep_env is set.
function H.spawn(cmd, opts)
  opts = opts or {}
  local log = opts.log or "/dev/null"
  local env = opts.keep_env and "env " or "env -u LD_PRELOAD -u ASAN_OPTIONS "
  local line = ("exec %s%s >>%s 2>&1 </dev/null & echo $!"):format(env, cmd, shquote(log))
  local out = H.sh("sh -c " .. shquote(line))
  local pid = tonumber(out:match("(%d+)"))
  assert(pid, "could not start: " .. cmd .. "\n" .. out)
  started[pid] = true
  return pid
end

function H.alive(pid)
  -- a zombie still answers kill -0; look at its state instead
  local st = H.read_file("/proc/" .. pid .. "/stat")
  if not st then return false end
  local state = st:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

--- Stops a process started by H.spawn: TERM, then KILL after 2 s.  One
-- that already died (a spec killed it) is only forgotten: its PID may
-- belong to another process soon.
function H.kill(pid)
  if not pid then return end
  started[pid] = nil
  if not H.alive(pid) then return end
  H.sh("kill -TERM " .. pid)
  local t = netlua.monotime() + 2
  while H.alive(pid) and netlua.monotime() < t do netlua.sleep(0.02) end
  if H.alive(pid) then H.sh("kill -KILL " .. pid) end
end

function H.kill_all()
  for pid in pairs(started) do H.kill(pid) end
end

--- Waits until something accepts on host:port; returns true or raises.
function H.wait_port(host, port, timeout)
  local deadline = netlua.monotime() + (timeout or 10)
  repeat
    local s = netlua.tcp.connect(host, port, {timeout = 0.5})
    if s then s:close() return true end
    netlua.sleep(0.02)
  until netlua.monotime() > deadline
  error(("nothing listens on %s:%d"):format(host, port), 2)
end

--- Runs a scripted server written in Lua (spec/servers/NAME.lua) with the
-- given arguments; the script must print "ready" once it listens.
-- Returns its PID.
-- The scripted servers are peers, not the code under test: on another
-- Lua than 5.4 they run on 5.4 and its build (a PUC 5.1 task cannot wait
-- inside their pcall-guarded handlers; make test and test-all build it
-- first).  On 5.4 they use the suite's own build (ASan's, say).
local function peer_lua()
  if H.lua ~= "lua5.4" and H.exists(H.root .. "/build/netlua/core.so") then
    return "lua5.4", "build"
  end
  return H.lua, H.build
end

function H.lua_server(name, ...)
  local args = {}
  for i = 1, select("#", ...) do args[#args + 1] = shquote(tostring(select(i, ...))) end
  local lua, build = peer_lua()
  local env = ("LUA_PATH=%s LUA_CPATH=%s "):format(
    shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;" .. H.root .. "/spec/?.lua;;"),
    shquote(H.root .. "/" .. build .. "/?.so;;"))
  local log = os.tmpname()
  local pid = H.spawn(env .. lua .. " " .. shquote(H.root .. "/spec/servers/" .. name .. ".lua")
    .. " " .. table.concat(args, " "), {log = log, keep_env = true})
  local deadline = netlua.monotime() + 10
  while netlua.monotime() < deadline do
    local out = H.read_file(log) or ""
    if out:find("ready", 1, true) then os.remove(log) return pid end
    if not H.alive(pid) then break end
    netlua.sleep(0.01)
  end
  local out = H.read_file(log) or ""
  os.remove(log)
  H.kill(pid)
  error("scripted server " .. name .. " did not start:\n" .. out, 2)
end

--- A scripted server NAME run with a free port and a temporary output
-- folder: `srv.start()` starts it (setting srv.port, srv.dir), `srv.stop()`
-- stops it and removes the folder.  In a describe block:
-- `local srv = H.scripted_server("x"); setup(srv.start); teardown(srv.stop)`.
function H.scripted_server(name)
  local srv = {}
  function srv.start()
    srv.dir = H.tmpdir()
    srv.port = H.free_port()
    srv.pid = H.lua_server(name, srv.port, srv.dir)
  end
  function srv.stop()
    H.kill(srv.pid)
    H.rm_rf(srv.dir)
  end
  return srv
end

--- A TCP server of this process on a free loopback port, as netlua
-- tasks (call it inside netlua.run or before it): it accepts up to
-- `clients` connections (nil: until stop() is called) and runs handler(c)
-- for each in a task of its own, closing c afterwards.  Returns the port
-- and stop().
function H.serve(clients, handler)
  local srv = assert(netlua.tcp.listen("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local stopped = false
  netlua.spawn(function()
    local n = 0
    while not stopped and (clients == nil or n < clients) do
      local c = srv:accept(clients and 10 or 0.2)
      if c then
        n = n + 1
        netlua.spawn(function()
          handler(c)
          c:close()
        end)
      elseif clients then
        break
      end
    end
    srv:close()
  end)
  return port, function() stopped = true end
end

--- A task that wakes every millisecond until done() is true.  Returns a
-- function giving the longest it had to wait for a turn, counted from
-- this call: a ticker that never got to run at all reports the whole
-- time.  Call it before the task it watches gets to run.
function H.ticker(done)
  local last, gap = netlua.monotime(), 0
  netlua.spawn(function()
    repeat
      netlua.sleep(0.001)
      local now = netlua.monotime()
      gap = math.max(gap, now - last)
      last = now
    until done()
  end)
  return function() return gap end
end

--- Open descriptors of this (busted) process, after a full collection so
-- objects nobody closed count only while they are alive.
-- The listing goes to a file through os.execute: with io.popen this
-- process would hold the pipe's ends while `ls` looks, and how many of
-- them it still held then was a race.
function H.fd_count()
  collectgarbage() collectgarbage()
  local pid = H.read_file("/proc/self/stat"):match("^(%d+)")
  local list = os.tmpname()
  os.execute("ls /proc/" .. pid .. "/fd > " .. list)
  local n = 0
  for _ in io.lines(list) do n = n + 1 end
  os.remove(list)
  return n
end

--- The process's descriptors after a full collection: number -> target.
function H.fds()
  collectgarbage() collectgarbage()
  local pid = H.read_file("/proc/self/stat"):match("^(%d+)")
  local list = os.tmpname()
  os.execute("ls -l /proc/" .. pid .. "/fd > " .. list)
  local t = {}
  for line in io.lines(list) do
    local fd, target = line:match("(%d+) %-> (.*)$")
    if fd then t[tonumber(fd)] = target end
  end
  os.remove(list)
  for fd, target in pairs(t) do  -- the listing's own file
    if target == list then t[fd] = nil end
  end
  return t
end

--- Asserts that no descriptor open now was opened since `before` (from
-- H.fds()).  Not that the count is back: garbage of earlier spec files
-- may close some of the others meanwhile (LuaJIT's collector finalizes
-- such objects late).
function H.no_new_fds(before)
  for fd, target in pairs(H.fds()) do
    assert(before[fd] == target, "descriptor " .. fd .. " left open: " .. target)
  end
end

--- Measures how long fn takes (monotonic seconds) and returns that plus
-- whatever fn returned.
function H.timed(fn, ...)
  local t0 = netlua.monotime()
  local r = pack(fn(...))
  return netlua.monotime() - t0, unpack(r, 1, r.n)
end

--- `local x <close>` is Lua 5.4 syntax, which no other version parses.
-- H.close_scope(obj, fn, ...) returns what fn(obj, ...) returns, run in a
-- scope where obj is a to-be-closed variable (fn nil: the scope is left
-- at once); nil on versions without to-be-closed variables.
H.close_scope = (function()
  local chunk = (loadstring or load)([[
    return function(obj, fn, ...)
      local x <close> = obj
      if fn then return fn(x, ...) end
    end]])
  return chunk and chunk()
end)()

-- n (a non-negative integer) as size bytes, most significant first
local function be_bytes(n, size)
  local t = {}
  for i = size, 1, -1 do
    t[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(t)
end

-- the unsigned integer in size bytes of s at pos, most significant first
local function be_number(s, pos, size)
  local n = 0
  for i = pos, pos + size - 1 do n = n * 256 + assert(s:byte(i), "data string too short") end
  return n
end

local function formats(fmt)
  assert(fmt:sub(1, 1) == ">", "only big-endian formats: " .. fmt)
  return fmt:sub(2):gmatch("(%a)(%d*)")
end

--- string.pack and string.unpack (5.3+), or on 5.1, 5.2 and LuaJIT a
-- stand-in for the big-endian formats the specs use: ">" then I[n]
-- (unsigned), s[n] (a string after its n-byte length) and d (double).
H.pack = string.pack or function(fmt, ...)
  local out, i = {}, 0
  for k, n in formats(fmt) do
    i = i + 1
    local v = select(i, ...)
    if k == "I" then
      out[#out + 1] = be_bytes(v, tonumber(n) or 4)
    elseif k == "s" then
      out[#out + 1] = be_bytes(#v, tonumber(n) or 8) .. v
    elseif k == "d" then
      local sign, mant, expo = 0, 0, 0
      if v < 0 or (v == 0 and 1 / v < 0) then sign, v = 1, -v end
      if v ~= v then mant, expo = 2 ^ 51, 2047
      elseif v == math.huge then expo = 2047
      elseif v > 0 then
        local m, e = math.frexp(v)  -- v = m * 2^e, 0.5 <= m < 1
        if e > -1022 then mant, expo = (m * 2 - 1) * 2 ^ 52, e + 1022
        else mant = m * 2 ^ (e + 1074) end  -- subnormal
      end
      out[#out + 1] = be_bytes(sign * 2 ^ 31 + expo * 2 ^ 20 + math.floor(mant / 2 ^ 32), 4)
        .. be_bytes(mant % 2 ^ 32, 4)
    else
      error("format option '" .. k .. "' not supported here")
    end
  end
  return table.concat(out)
end

H.unpack = string.unpack or function(fmt, s, pos)
  local out = {}
  pos = pos or 1
  for k, n in formats(fmt) do
    if k == "I" then
      local size = tonumber(n) or 4
      out[#out + 1], pos = be_number(s, pos, size), pos + size
    elseif k == "s" then
      local size = tonumber(n) or 8
      local len = be_number(s, pos, size)
      out[#out + 1], pos = s:sub(pos + size, pos + size + len - 1), pos + size + len
    elseif k == "d" then
      local hi, lo = be_number(s, pos, 4), be_number(s, pos + 4, 4)
      local sign = hi >= 2 ^ 31 and -1 or 1
      local expo = math.floor(hi / 2 ^ 20) % 2048
      local mant = hi % 2 ^ 20 * 2 ^ 32 + lo
      local v
      if expo == 2047 then v = mant == 0 and sign * math.huge or 0 / 0
      elseif expo == 0 then v = sign * mant * 2 ^ -1074
      else v = sign * math.ldexp(1 + mant / 2 ^ 52, expo - 1023) end
      out[#out + 1], pos = v, pos + 8
    else
      error("format option '" .. k .. "' not supported here")
    end
  end
  out[#out + 1] = pos
  return unpack(out, 1, #out)
end

--- Path to busybox with the telnetd applet (scripts/deps.sh unpacks it).
function H.busybox()
  local p = H.root .. "/.deps/busybox"
  if H.exists(p) then return p end
  return nil
end

--- inetutils telnetd running /bin/sh, one per connection under socat on
-- a free loopback port.  Returns the port and a stop function that ends
-- socat's telnetd children first (by PID, from /proc), then socat.
function H.inetutils_telnetd()
  local port = H.free_port()
  local pid = H.spawn(("socat TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork "
    .. "EXEC:\"/usr/sbin/telnetd -h -E /bin/sh\",nofork"):format(port))
  H.wait_port("127.0.0.1", port)
  return port, function()
    local kids = H.read_file(("/proc/%d/task/%d/children"):format(pid, pid)) or ""
    for kid in kids:gmatch("%d+") do H.sh("kill -TERM " .. kid) end
    H.kill(pid)
  end
end

return H
