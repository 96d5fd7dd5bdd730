-- telnet_hostile.lua PORT OUTDIR - a scripted Telnet peer that misbehaves.
--
-- For each connection it reads one line naming a scenario, sends that
-- scenario's bytes (split, dripped, malformed, as DESIGN.md lists), shuts
-- down its sending side and records every byte the client sent after the
-- name line into OUTDIR/<scenario>.out, so specs can assert the exact
-- replies.  Prints "ready" once it listens.  One connection at a time.
local netlua = require "netlua"
local tcp = require "netlua.tcp"

local port, outdir = tonumber(arg[1]), arg[2]
local srv = assert(tcp.listen("127.0.0.1", port))

local function b(...) return string.char(...) end
local IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240

local S = {}

-- every command split at every byte, IAC IAC included
S.split = {bytes = table.concat {
  "start\r\n", b(IAC, DO, 24), b(IAC, WILL, 1), b(IAC, WILL, 3),
  "a", b(IAC, IAC), "b", b(IAC, IAC, IAC, IAC),
  b(IAC, SB, 24, 1, IAC, SE), b(IAC, 241), "bare\r", b(0), "cr\r\nend",
}, chunk = 1, pause = 0.002}

-- 0xFF data doubled, sent in chunks of pseudo-random size
do
  local t, seed = {}, 7
  for i = 1, 3000 do
    seed = (seed * 48271) % 2147483647  -- exact in doubles too (5.1)
    t[i] = (seed % 11 == 0) and b(IAC, IAC) or string.char(65 + seed % 26)
  end
  S.iaciac = {bytes = table.concat(t), random = true}
end

S.sbff = {bytes = b(IAC, SB, 24, 1, 255, 7, IAC, IAC, 255, 1, IAC, SE) .. "after sb"}
S.longsb = {bytes = b(IAC, SB, 24) .. ("\1\255\255"):rep(4000) .. b(IAC, SE) .. "after long sb", random = true}
S.compress = {bytes = b(IAC, WILL, 86) .. b(IAC, SB, 86, IAC, SE) .. "x\156\203\72\205plain"}
S.refused = {bytes = (b(IAC, DO, 86) .. b(IAC, WILL, 86)):rep(500) .. "done", chunk = 6}
S.cmds = {bytes = "a" .. b(IAC, 241) .. "b" .. b(IAC, 249) .. "c" .. b(IAC, 246) .. "d"
  .. b(IAC, 242) .. "e" .. b(IAC, 243) .. "f" .. b(IAC, 244) .. "g" .. b(IAC, 239)
  .. "h" .. b(IAC, 7) .. "i" .. b(IAC, SE) .. "j"}
S.loneiac = {bytes = "end" .. b(IAC)}
S.bigline = {bytes = ("x"):rep(4 * 1024 * 1024)}
S.drip = {bytes = "drip\r\n" .. b(IAC, WILL, 1) .. "ok" .. b(IAC, IAC) .. "\r" .. b(0) .. "!", chunk = 1, pause = 0.001}
S.ttype = {bytes = b(IAC, DO, 24) .. b(IAC, SB, 24, 1, IAC, SE):rep(3) .. "typed"}
S.naws = {bytes = b(IAC, DO, 31) .. "sized"}
S.env = {bytes = b(IAC, DO, 39) .. b(IAC, SB, 39, 1, 0) .. "USER" .. b(IAC, SE) .. "env"}
S.nego = {bytes = b(IAC, WILL, 1, IAC, WILL, 3, IAC, DO, 24, IAC, SB, 24, 1, IAC, SE, IAC, 241) .. "hi"}
-- for the read methods: two bursts with a pause between them
S.bursts = {bytes = {"one\r\n", 0.3, "two\r\n", 0.3, "three"}}
-- a long output in three arrivals, then a prompt, then silence
do
  local lines = {}
  for i = 1, 200 do lines[i] = ("line %d of the output\r\n"):format(i) end
  S.longout = {bytes = {table.concat(lines), 0.05, "more\r\n", 0.05, "r1(config)# "}, hold = true}
end
-- prompt then silence until the client goes away
S.silent = {bytes = "login: ", hold = true}
S.prompt = {bytes = {"Welcome\r\nuser$ ", 0.2, "more output\r\nuser$ "}}
-- sends part of a line, then drops the connection
S.vanish = {bytes = "partial line", reset = true}

-- login: a router-style login dialogue; password "s3cret" gets a prompt,
-- anything else "Login incorrect" and a new login prompt (then EOF)
local function login(c)
  c:write("\r\nrouter1 login: ")
  for _ = 1, 2 do
    local user = c:read("l")
    if not user then return end
    c:write(user:gsub("\r$", "") .. "\r\nPassword: ")
    local pw = c:read("l")
    if not pw then return end
    if pw:gsub("\r$", "") == "s3cret" then
      c:write("\r\nWelcome, " .. user .. "\r\nrouter1> ")
      while true do
        local cmd = c:read("l")
        if not cmd or cmd:match("^exit") then return end
        cmd = cmd:gsub("\r$", "")
        c:write(cmd .. "\r\n")
        if cmd == "show version" then c:write("Version 1.2.3\r\nUptime 5 days\r\n") end
        c:write("router1> ")
      end
    end
    netlua.sleep(0.2)
    c:write("\r\nLogin incorrect\r\nrouter1 login: ")
  end
end

-- echo: each line the client sends comes back, until "quit"
local function echo(c)
  while true do
    local line = c:read("L")
    if not line or line:match("^quit") then return end
    c:write(line)
  end
end

local function send_scenario(c, sc)
  local data = sc.bytes
  if type(data) == "table" then
    for _, part in ipairs(data) do
      if type(part) == "number" then netlua.sleep(part) else c:write(part) end
    end
    return
  end
  if sc.chunk or sc.random then
    local i, seed = 1, 3
    while i <= #data do
      local n = sc.chunk
      if sc.random then
        seed = (seed * 48271) % 2147483647  -- exact in doubles too (5.1)
        n = 1 + seed % 97
      end
      c:write(data:sub(i, i + n - 1))
      i = i + n
      if sc.pause then netlua.sleep(sc.pause) end
    end
  else
    c:write(data)
  end
end

print("ready")
io.stdout:flush()
while true do
  local c = srv:accept()
  if c then
    c:settimeout(10)
    local name = c:read("l")
    local sc = name and S[name]
    if name == "echo" then
      echo(c)
      c:close()
    elseif name == "login" then
      login(c)
      c:close()
    elseif sc then
      send_scenario(c, sc)
      if sc.reset then
        c:close()
      else
        if not sc.hold then c:shutdown("send") end
        c:settimeout(sc.hold and 30 or 5)
        local rest = c:read("a") or ""
        local f = io.open(outdir .. "/" .. name .. ".out.tmp", "wb")
        f:write(rest)
        f:close()
        os.rename(outdir .. "/" .. name .. ".out.tmp", outdir .. "/" .. name .. ".out")
        c:close()
      end
    else
      c:close()
    end
  end
end
