--- netlua.telnet: a Telnet client with Python telnetlib's whole method set.
--
--     local telnet = require "netlua.telnet"
--     local s = assert(telnet.open("127.0.0.1", 2323, {timeout = 5}))
--     assert(s:login{user = "admin", password = "secret"})
--     print(s:cmd("uname -a"))
--     s:close()
--
-- The protocol engine (IAC parsing, RFC 1143 negotiation, NVT line ends,
-- TTYPE/NAWS/NEW-ENVIRON answers) and every read/write method are C
-- (csrc/telnet.c); this file connects, adds telnetlib's `msg` and the
-- helpers `login`, `cmd`, and holds the command and option constants.
-- Failures return `nil, message, code`; a read that stops early on a
-- timeout returns the data so far and `"timeout"`.
-- @module netlua.telnet
local core = require "netlua.core"
local tcp = require "netlua.tcp"

local M = {}

-- telnetlib's constants (numbers here, bytes there)
M.IAC, M.DONT, M.DO, M.WONT, M.WILL = 255, 254, 253, 252, 251
M.SB, M.GA, M.EL, M.EC, M.AYT, M.AO, M.IP = 250, 249, 248, 247, 246, 245, 244
M.BRK, M.DM, M.NOP, M.SE, M.EOR = 243, 242, 241, 240, 239
M.NOOPT = 0
M.BINARY, M.ECHO, M.SGA, M.STATUS, M.TM = 0, 1, 3, 5, 6
M.TTYPE, M.EOR_OPT, M.NAWS, M.TSPEED, M.LFLOW = 24, 25, 31, 32, 33
M.LINEMODE, M.XDISPLOC, M.ENVIRON, M.AUTHENTICATION = 34, 35, 36, 37
M.ENCRYPT, M.NEW_ENVIRON, M.COMPRESS2 = 38, 39, 86

M.DEFAULT_PORT = 23

--- A bare protocol engine with no socket: `engine:feed(bytes)` returns
-- data, reply bytes and a list of events; `engine:escape(data)`,
-- `engine:request(cmd, opt)`, `engine:set_window(cols, rows)`,
-- `engine:option(opt)`.  opts: `terminal`, `window`, `env` as for `open`,
-- `manual` (true: never answer negotiation).
M.engine = core.telnet_engine

local methods = core.methods("netlua.telnet")

local function checkopts(opts, who)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #3 to '%s' (table expected, got %s)"):format(who, type(opts)), 3)
  end
  return opts or {}
end

--- Connects to a Telnet server.
-- opts (all optional):
-- `timeout` (seconds for connect and the default for every read; nil blocks),
-- `terminal` (a name or list of names answered to TTYPE, cycled),
-- `window` (`{cols, rows}`, sent with NAWS), `env` (table of NEW-ENVIRON
-- variables), `max_buffer` (bytes kept unread before a read fails with
-- "limit"; default 16 MiB), `max_match` (longest `expect` match searched
-- incrementally; default 64 KiB), `debug` (telnetlib's debuglevel),
-- `family` ("inet" | "inet6").
-- @return session, or nil, message, code ("refused", "timeout", "resolve")
function M.open(host, port, opts)
  if type(host) ~= "string" then
    error("bad argument #1 to 'open' (string expected, got " .. type(host) .. ")", 2)
  end
  opts = checkopts(opts, "open")
  if port == nil then port = M.DEFAULT_PORT end
  local sock, msg, code = tcp.connect(host, port, {timeout = opts.timeout, family = opts.family})
  if not sock then return nil, msg, code end
  local ok, s = pcall(core.telnet_wrap, sock, opts)
  if not ok then  -- a bad option: do not leave the connection open
    sock:close()
    error(s, 2)
  end
  return s
end

--- telnetlib's msg(fmt, ...): prints a debug line (to stderr) when the
-- debug level is above 0.
function methods:msg(fmt, ...)
  if self:get_debuglevel() > 0 then
    local line = select("#", ...) > 0 and fmt:format(...) or tostring(fmt)
    io.stderr:write("Telnet(", self:_name(), "): ", line, "\n")
  end
end

-- per-session helper state (the prompt login() learnt), weak keys
local state = setmetatable({}, {__mode = "k"})

local DEFAULT_PROMPT = "[%$#>%%] ?$"
local DEFAULT_LOGIN = "[Ll]ogin: ?$"
local DEFAULT_PASSWORD = "[Pp]assword: ?$"
local INCORRECT = "[Ll]ogin incorrect"

local function left(deadline)
  if not deadline then return nil end
  local t = deadline - core.monotime()
  return t > 0 and t or 0
end

local function fail(text, what, code)
  return nil, what .. (text and #text > 0 and (": " .. text:sub(-200)) or ""), code
end

--- Logs in: answers the login prompt with `user` and the password prompt
-- with `password` (never shown in debug output), then waits for the shell
-- prompt.  "Login incorrect" is recognised as soon as it arrives.
-- opts: `user`, `password`, `login_prompt` (Lua pattern, default
-- "[Ll]ogin: ?$"), `password_prompt` ("[Pp]assword: ?$"), `prompt`
-- ("[%$#>%%] ?$"; kept for `cmd`), `timeout` (whole call; default the
-- session's).
-- @return the text before the prompt (banner, motd), or nil, msg, code
-- ("denied", "timeout", "closed")
function methods:login(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'login' (table expected, got " .. type(opts) .. ")", 2)
  end
  for _, k in ipairs {"user", "password", "login_prompt", "password_prompt", "prompt"} do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then
      error(("bad argument #1 to 'login' (field '%s' must be a string)"):format(k), 2)
    end
  end
  local prompt = opts.prompt or DEFAULT_PROMPT
  local lp, pp = opts.login_prompt or DEFAULT_LOGIN, opts.password_prompt or DEFAULT_PASSWORD
  local timeout = opts.timeout or self:gettimeout()
  local deadline = timeout and core.monotime() + timeout
  state[self] = {prompt = prompt}
  local seen = {}
  local sent_user, sent_pass = false, false
  while true do
    local i, text, code = self:expect({prompt, INCORRECT, lp, pp}, left(deadline))
    if not i then
      seen[#seen + 1] = text
      return fail(table.concat(seen), "login: " .. (code == "timeout" and "no prompt" or "connection closed"), code)
    end
    seen[#seen + 1] = text
    if i == 1 then
      return table.concat(seen)
    elseif i == 2 or (i == 3 and sent_user) then
      return fail(nil, "login: Login incorrect", "denied")
    elseif i == 3 then
      if not opts.user then return fail(nil, "login: the server asks for a user name", "denied") end
      local ok, msg, c = self:write(opts.user .. "\n")
      if not ok then return nil, msg, c end
      sent_user = true
    elseif i == 4 then
      if sent_pass or not opts.password then
        return fail(nil, "login: " .. (sent_pass and "Login incorrect" or "a password is needed"), "denied")
      end
      local ok, msg, c = self:write(opts.password .. "\n", true)
      if not ok then return nil, msg, c end
      sent_pass = true
    end
  end
end

local function strip_echo(out, line)
  local first, rest = out:match("^([^\n]*)\n(.*)$")
  if first then
    first = first:gsub("[\r%z]", "")
    if first == line or (#line > 0 and first:sub(-#line) == line) then return rest end
  end
  return out
end

--- Runs one command line: writes `line` and a newline, waits for the
-- prompt and returns the output between the echoed command and the
-- prompt, with CR LF turned into LF.
-- opts: `prompt` (Lua pattern; default the one `login` used, else
-- "[%$#>%%] ?$"), `timeout` (default the session's).
-- @return output, or nil, msg, code (on "timeout" the output so far is
-- the 4th value)
function methods:cmd(line, opts)
  if type(line) ~= "string" then
    error("bad argument #1 to 'cmd' (string expected, got " .. type(line) .. ")", 2)
  end
  if line:find("[\r\n]") then error("bad argument #1 to 'cmd' (line contains CR or LF)", 2) end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'cmd' (table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  local prompt = opts.prompt or (state[self] and state[self].prompt) or DEFAULT_PROMPT
  local ok, msg, code = self:write(line .. "\n")
  if not ok then return nil, msg, code end
  local pat = prompt
  if prompt:sub(1, 1) ~= "^" then  -- position captures around the prompt
    if prompt:sub(-1) == "$" and prompt:sub(-2) ~= "%$" then
      pat = "()" .. prompt:sub(1, -2) .. "()$"
    else
      pat = "()" .. prompt .. "()"
    end
  end
  local r = table.pack(self:expect({pat}, opts.timeout))
  if not r[1] then
    local text = r[2] or ""
    return nil, ("cmd '%s': %s"):format(line, r[3] == "timeout" and "no prompt" or "connection closed"),
      r[3], (strip_echo(text, line):gsub("\r\n", "\n"))
  end
  local text = r[2]
  if pat ~= prompt then
    text = text:sub(1, #text - (r[4] - r[3]))
  end
  text = strip_echo(text, line):gsub("\r\n", "\n"):gsub("%z", "")
  return text
end

local c_interact = methods.interact
local BYE = "*** Connection closed by remote host ***\n"

local function check_fd(v, dflt, n)
  if v == nil then return dflt end
  if math.type(v) ~= "integer" or v < 0 then
    error(("bad argument #%d to 'interact' (descriptor expected)"):format(n), 3)
  end
  return v
end

--- telnetlib's interact: copies what arrives on `in_fd` (default 0,
-- stdin) to the session and the session's data to `out_fd` (default 1)
-- until either side reaches EOF.  Inside a task of netlua.run only that
-- task waits (through netlua.wait); elsewhere it blocks in C.
-- @return true at EOF, or nil, msg, code
function methods:interact(in_fd, out_fd)
  if not core.coop_active() then return c_interact(self, in_fd, out_fd) end
  in_fd, out_fd = check_fd(in_fd, 0, 1), check_fd(out_fd, 1, 2)
  local wait = require("netlua.sched").wait
  while true do
    local data, msg, code = self:read_very_eager()
    if data and #data > 0 then
      local ok, m, c = core.fd_write(out_fd, data)
      if not ok then return nil, "interact: output: " .. m, c end
    end
    if not data then
      if code ~= "closed" then return nil, msg, code end
      core.fd_write(out_fd, BYE)
      return true
    end
    local ready, wm, wc = wait({self, in_fd})
    if not ready then return nil, wm, wc end
    for _, o in ipairs(ready) do
      if o == in_fd then
        local chunk = core.fd_read(in_fd, 4096)
        if not chunk or chunk == "" then return true end  -- our side ended
        local ok, m, c = self:write(chunk)
        if not ok then return nil, m, c end
      end
    end
  end
end

return M
