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
-- device helpers (`login`, `find_prompt`, `cmd`, `cmds`, `set_log`, from
-- netlua.cli), and gives telnetlib's command and option constants (the
-- C engine's numbers).
-- Failures return `nil, message, code`; a read that stops before its
-- target (read_until, expect, read_all) fails the same way, with the data
-- so far as a fourth value.
-- @module netlua.telnet
local core = require "netlua.core"
local tcp = require "netlua.tcp"

-- math.type is 5.3+; before, a number is an integer when it has no fraction
local mtype = math.type or function(x)
  if type(x) == "number" then return x % 1 == 0 and "integer" or "float" end
end

local M = {}

-- telnetlib's constants (numbers here, bytes there), as the C engine has
-- them: the commands (IAC, DO, WILL, SB, SE, EOR...) and the options
-- (BINARY, ECHO, TTYPE, NAWS, NEW_ENVIRON...); option 25 is EOR_OPT, as
-- in telnetlib, since EOR is the command
for name, v in pairs(core.TELNET_CMDS) do M[name] = v end
for name, v in pairs(core.TELNET_OPTS) do M[name == "EOR" and "EOR_OPT" or name] = v end
M.NOOPT = 0

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
-- `family` ("inet" | "inet6"), `log` (session log: a path or an open
-- file, see `set_log`).
-- @return session, or nil, message, code ("refused", "timeout", "resolve")
function M.open(host, port, opts)
  if type(host) ~= "string" then
    error("bad argument #1 to 'open' (string expected, got " .. type(host) .. ")", 2)
  end
  opts = checkopts(opts, "open")
  if port == nil then port = M.DEFAULT_PORT end
  local sock, msg, code = tcp.connect(host, port, {timeout = opts.timeout, family = opts.family})
  if not sock then return nil, msg, code end
  if opts.log ~= nil and type(opts.log) ~= "string" and io.type(opts.log) ~= "file" then
    sock:close()
    error("bad option 'log' (path or open file expected)", 2)
  end
  local ok, s = pcall(core.telnet_wrap, sock, opts)
  if not ok then  -- a bad option: do not leave the connection open
    sock:close()
    error(s, 2)
  end
  return require("netlua.cli").opened(s, opts.log)
end

--- telnetlib's msg(fmt, ...): prints a debug line (to stderr) when the
-- debug level is above 0.
function methods:msg(fmt, ...)
  if self:get_debuglevel() > 0 then
    local line = select("#", ...) > 0 and fmt:format(...) or tostring(fmt)
    io.stderr:write("Telnet(", self:_name(), "): ", line, "\n")
  end
end

-- the device helpers: login, find_prompt, cmd, cmds, set_log
local cli = require "netlua.cli"
cli.install(methods)

--- The text a terminal would show for device output (netlua.screen):
-- what `cmd` returns, for text read with the read methods.
M.clean = require("netlua.screen").clean

local c_close = methods.close

--- Closes the session (and its session log); safe to call twice.
function methods:close()
  cli.close_log(self)
  return c_close(self)
end

local c_interact = methods.interact
local BYE = core.TELNET_BYE

local function check_fd(v, dflt, n)
  if v == nil then return dflt end
  if mtype(v) ~= "integer" or v < 0 then
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
