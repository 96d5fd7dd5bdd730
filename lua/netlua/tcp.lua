--- netlua.tcp: TCP client and server sockets.
--
--     local tcp = require "netlua.tcp"
--     local s = assert(tcp.connect("127.0.0.1", 8080, {timeout = 5}))
--     s:write("GET / HTTP/1.0\r\n\r\n")
--     for line in s:lines() do print(line) end
--     s:close()
--
-- Reads accept Lua io formats ("l", "L", "a", a byte count, "n") with or
-- without LuaSocket's leading "*".  Failures return `nil, message, code`;
-- the LuaSocket-named methods (`receive`, `send`, `accept`, and `bind`,
-- `connect`, `listen` of a `tcp.tcp()` object) put LuaSocket's bare
-- string second instead (`nil, "timeout", message, code`; `receive` and
-- `send` give LuaSocket's partial data or last index third).
-- @module netlua.tcp
local core = require "netlua.core"
local drive = require "netlua.drive"

local M = {}

--- Connects to `host` on `port` (number or service name), trying every
-- address the name resolves to.  opts: `timeout` (seconds, whole call),
-- `family` ("inet" | "inet6"), `bind` (local IP), `bindport`.
-- @return socket, or nil, message, code ("refused", "timeout", "resolve", ...)
M.connect = drive.wrap(core.tcp_connect, "connect")

--- Listens on `host` ("*" or nil for any) and `port` (0 picks a free one).
-- opts: `backlog` (128), `reuse` (true: SO_REUSEADDR), `family`, `ipv6only`.
-- @return server, or nil, message, code
M.listen = core.tcp_listen

--- LuaSocket's unconnected TCP object (a "master"): set a timeout and
-- options, `bind`, then `connect` (it becomes a client, the same object)
-- or `listen` (it becomes a server).  Its family follows the first
-- address it is bound or connected to (IPv4 until then).
--
--     local c = assert(tcp.tcp())
--     c:settimeout(5)
--     assert(c:connect("127.0.0.1", 8080))
--
-- Its methods, and every LuaSocket-named method, fail with
-- `nil, err, message, code`: `err` is LuaSocket's string.
-- @return master, or nil, err, message, code
M.tcp = core.tcp_new
--- The same as `tcp.tcp()`.
M.new = core.tcp_new
--- A master that stays IPv4.
M.tcp4 = core.tcp_new4
--- A master that stays IPv6 (IPV6_V6ONLY set, as LuaSocket's tcp6).
M.tcp6 = core.tcp_new6

local file = {}
file.__index = file
file.__name = "netlua.file"

local function checkfile(f, who)
  if getmetatable(f) ~= file then
    error(("bad argument #1 to '%s' (netlua.file expected)"):format(who), 3)
  end
  if f.closed then error("attempt to use a closed file", 0) end
  return f
end

function file:flush()
  checkfile(self, "flush")
  if #self.wbuf > 0 then
    local data = table.concat(self.wbuf)
    self.wbuf, self.wlen = {}, 0
    local ok, msg, code = self.sock:write(data)
    if not ok then return nil, msg, code end
  end
  return self
end

function file:write(...)
  checkfile(self, "write")
  if not self.writable then return nil, "write: file not opened for writing", "mode" end
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) ~= "string" and type(v) ~= "number" then
      error(("bad argument #%d to 'write' (string expected, got %s)"):format(i, type(v)), 2)
    end
    v = tostring(v)
    self.wbuf[#self.wbuf + 1] = v
    self.wlen = self.wlen + #v
  end
  local flushnow = self.vbuf == "no" or self.wlen >= self.size
    or (self.vbuf == "line" and table.concat(self.wbuf):find("\n", 1, true))
  if flushnow then
    local ok, msg, code = self:flush()
    if not ok then return nil, msg, code end
  end
  return self
end

function file:read(...)
  checkfile(self, "read")
  if not self.readable then return nil, "read: file not opened for reading", "mode" end
  return self.sock:read(...)
end

function file:lines(...)
  checkfile(self, "lines")
  return self.sock:lines(...)
end

function file:setvbuf(mode, size)
  checkfile(self, "setvbuf")
  if mode ~= "no" and mode ~= "full" and mode ~= "line" then
    error("bad argument #1 to 'setvbuf' (invalid option '" .. tostring(mode) .. "')", 2)
  end
  self.vbuf, self.size = mode, size or self.size
  return true
end

function file:seek()
  checkfile(self, "seek")
  return nil, "seek: not supported on a socket", "invalid"
end

--- Closes the file object (flushing writes); the socket stays open, as in
-- Python, unless the file was made with `makefile(mode, {close = true})`.
function file:close()
  if self.closed then return true end
  local ok, msg, code = self:flush()
  self.closed = true
  if self.closesock then self.sock:close() end
  if not ok then return nil, msg, code end
  return true
end

file.__close = file.close
file.__gc = function(f) if not f.closed then pcall(file.close, f) end end

-- 5.1 and LuaJIT run no __gc of a table: a userdata that only the file
-- holds runs it for the file
local gc_proxy = _VERSION == "Lua 5.1" and newproxy and function(f)
  local u = newproxy(true)
  getmetatable(u).__gc = function() file.__gc(f) end
  return u
end
file.__tostring = function(f)
  return f.closed and "netlua.file (closed)" or ("netlua.file (%s)"):format(tostring(f.sock))
end

local methods = core.methods("netlua.tcp")

--- sock:makefile([mode [, opts]]) -> a buffered file-like object.
-- mode is "r" (default), "w" or "rw"; opts: `buffering` ("full", "line",
-- "no"; default "full"), `size` (8192), `close` (close the socket too).
function methods:makefile(mode, opts)
  mode = mode or "r"
  if type(mode) ~= "string" or not mode:match("^[rwb+]+$") then
    error("bad argument #1 to 'makefile' (invalid mode '" .. tostring(mode) .. "')", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'makefile' (table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  self:fileno() -- raises on a closed socket
  local f = setmetatable({
    sock = self,
    readable = mode:find("r", 1, true) ~= nil or mode:find("+", 1, true) ~= nil,
    writable = mode:find("w", 1, true) ~= nil or mode:find("+", 1, true) ~= nil,
    wbuf = {}, wlen = 0,
    vbuf = opts.buffering or "full",
    size = opts.size or 8192,
    closesock = opts.close and true or false,
  }, file)
  if gc_proxy then f._gc = gc_proxy(f) end
  return f
end

return M
