--- netlua.multicast: IPv4 and IPv6 multicast over UDP sockets.
--
--     local mc = require "netlua.multicast"
--     local r = assert(mc.receiver{group = "235.5.5.5", port = 9000, timeout = 5})
--     local s = assert(mc.sender{ttl = 4})
--     s:sendto("Multicasting OK!!!", "235.5.5.5", 9000)
--     print(r:receivefrom())        --> Multicasting OK!!!  127.0.0.1  40123
--
-- The constructors here are option tables on top of the `netlua.udp`
-- socket object (C, csrc/udp.c), whose methods do the work: `join`,
-- `leave`, `block`, `unblock`, `setttl`/`getttl`, `setloop`/`getloop`,
-- `setinterface`/`getinterface`, `setoption`/`getoption` (LuaSocket's
-- names), `sendto`, `receivefrom`, `sendmany`, `receivemany`,
-- `receivedatas`, `receivepacked`, LuaSocket's `setpeername`, `send` and
-- `receive`, `bind`, `getsockname`, `settimeout`, `fileno`, `close`.
-- See doc/multicast.md.
--
-- Misuse (a group that is not multicast, an unknown interface, a TTL
-- outside 0..255, a port outside 0..65535, a source of the other family)
-- raises an error; failures at run time return `nil, message, code`, but
-- for the LuaSocket-named methods (`bind`/`setsockname`, `setpeername`,
-- `send`, `sendto`, `receive`, `receivefrom`): `nil, err, message, code`
-- with LuaSocket's own `err` ("timeout", "closed", ...).
-- @module netlua.multicast
local core = require "netlua.core"

-- math.tointeger is 5.3+; like it, take a number or numeric string with
-- no fraction
local tointeger = math.tointeger or function(v)
  local n = (type(v) == "number" or type(v) == "string") and tonumber(v)
  if n and n % 1 == 0 then return n end
end

local M = {}

local udp_methods = core.methods("netlua.udp")

--- LuaSocket's `receive([size])`: the next datagram without its sender
-- (`receivefrom` gives that). With pktinfo on, its info table comes
-- second, so that a cut datagram is still reported as cut.
-- @return data [, info], or nil, err ("timeout", "closed", ...), message, code
function udp_methods:receive(size)
  local data, a, b, c = self:receivefrom(size)
  if data == nil then return nil, a, (b:gsub("^receivefrom", "receive", 1)), c end
  return data, c
end

--- True when `ip` is an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast
-- address; false for any other text.
-- @function is_multicast
M.is_multicast = core.is_multicast

local function bad(who, opt, msg, level)
  error(("bad option '%s' to '%s' (%s)"):format(opt, who, msg), level + 1)
end

local function checkopts(who, opts)
  if type(opts) ~= "table" then
    error(("bad argument #1 to '%s' (table expected, got %s)"):format(who, type(opts)), 3)
  end
  return opts
end

local function checkport(who, v, required)
  if v == nil and not required then return 0 end
  local p = tointeger(v)
  if not p or p < 0 or p > 65535 then
    bad(who, "port", "integer 0..65535 expected, got " .. tostring(v), 3)
  end
  return p
end

local function checkfamily(who, v)
  if v ~= nil and v ~= "inet" and v ~= "inet6" then
    bad(who, "family", 'expected "inet" or "inet6", got ' .. tostring(v), 3)
  end
  return v
end

-- Runs sock:method(...) for option `opt`; a raised error closes the socket
-- and is re-raised as a bad option of the constructor.
-- A LuaSocket-named method (bind) fails with nil, err, msg, code: the
-- constructor answers netlua's nil, msg, code.
local function apply(who, opt, sock, method, ...)
  local ok, a, b, c, d = pcall(sock[method], sock, ...)
  if not ok then
    sock:close()
    local msg = tostring(a)
    bad(who, opt, msg:match("%((.*)%)$") or msg, 4)
  end
  if a == nil then
    sock:close()
    if method == "bind" then return nil, c, d end
  end
  return a, b, c
end

local function family_of(ip)
  if type(ip) == "string" and ip:find(":", 1, true) then return "inet6" end
  return "inet"
end

-- opts.timeout by netlua's one rule (core.timeout: nil blocks, negative
-- blocks, NaN and what is no number raise), checked before the socket
-- is made
local function checktimeout(who, t)
  local ok, why = core.timeout(t)
  if not ok then bad(who, "timeout", why, 3) end
  return t
end

local function settimeout(sock, t)
  if t ~= nil then sock:settimeout(t) end
end

--- A bare UDP socket (made now, so options can be set in any order).
-- opts: `family` ("inet" default, or "inet6"), `timeout` (seconds; nil
-- blocks).
-- @return socket, or nil, message, code
function M.socket(opts)
  opts = checkopts("socket", opts or {})
  local family = checkfamily("socket", opts.family)
  local timeout = checktimeout("socket", opts.timeout)
  local s, msg, code = core.udp_socket(family)
  if not s then return nil, msg, code end
  settimeout(s, timeout)
  return s
end

--- A socket bound to `port` and joined to `group`.
-- opts: `group` (required), `port` (required), `interface` (name, address
-- or index; default: the system's choice), `source` (an address or an
-- array of addresses: source-specific join), `reuse` (true: SO_REUSEADDR
-- and SO_REUSEPORT, so several receivers may share the port), `timeout`
-- (nil: block), `pktinfo` (false: `receivefrom` also returns an info
-- table), `bind` ("*": the address to bind; the group address also works
-- on Linux), `rcvbuf` (bytes, default the system's).
-- @return socket, or nil, message, code
function M.receiver(opts)
  local who = "receiver"
  opts = checkopts(who, opts)
  local group = opts.group
  if type(group) ~= "string" then bad(who, "group", "string expected, got " .. type(group), 2) end
  if not core.is_multicast(group) then
    bad(who, "group", "'" .. group .. "' is not a multicast address", 2)
  end
  local port = checkport(who, opts.port, true)
  local sources = opts.source
  if type(sources) == "string" then sources = {sources}
  elseif sources ~= nil and type(sources) ~= "table" then
    bad(who, "source", "string or array expected, got " .. type(sources), 2)
  end
  local timeout = checktimeout(who, opts.timeout)
  local s, msg, code = core.udp_socket(family_of(group))
  if not s then return nil, msg, code end
  settimeout(s, timeout)
  if opts.reuse ~= false then
    s:setoption("reuseaddr", true)
    pcall(s.setoption, s, "reuseport", true)  -- absent on some systems
  end
  if opts.rcvbuf ~= nil then
    local ok, m, c = apply(who, "rcvbuf", s, "setoption", "rcvbuf", opts.rcvbuf)
    if not ok then return nil, m, c end
  end
  if opts.interface ~= nil then
    local ok, m, c = apply(who, "interface", s, "setinterface", opts.interface)
    if not ok then return nil, m, c end
  end
  if opts.pktinfo then s:setoption("pktinfo", true) end
  local ok, m, c = apply(who, "bind", s, "bind", opts.bind or "*", port)
  if not ok then return nil, m, c end
  if sources and #sources > 0 then
    for _, src in ipairs(sources) do
      ok, m, c = apply(who, "source", s, "join", group, {source = src})
      if not ok then return nil, m, c end
    end
  else
    ok, m, c = apply(who, "group", s, "join", group)
    if not ok then return nil, m, c end
  end
  return s
end

--- A socket for sending to groups.
-- opts: `ttl` (1: TTL / hop limit of multicast datagrams, 0..255),
-- `loop` (true: this host's own members receive what it sends),
-- `interface` (name, address or index for outgoing datagrams; default:
-- the route), `family` ("inet", or "inet6"; default from an address
-- given as `interface` or `bind`, else "inet"), `bind` (local address,
-- which becomes the source address), `port` (local port, 0), `timeout`.
-- @return socket, or nil, message, code
function M.sender(opts)
  local who = "sender"
  opts = checkopts(who, opts or {})
  local family = checkfamily(who, opts.family)
  if not family then
    if type(opts.bind) == "string" and opts.bind ~= "*" then family = family_of(opts.bind)
    elseif type(opts.interface) == "string" then family = family_of(opts.interface)
    else family = "inet" end
  end
  local ttl = tointeger(opts.ttl == nil and 1 or opts.ttl)
  if not ttl or ttl < 0 or ttl > 255 then
    bad(who, "ttl", "integer 0..255 expected, got " .. tostring(opts.ttl), 2)
  end
  local port = checkport(who, opts.port, false)
  local timeout = checktimeout(who, opts.timeout)
  local s, msg, code = core.udp_socket(family)
  if not s then return nil, msg, code end
  settimeout(s, timeout)
  local ok, m, c = apply(who, "ttl", s, "setttl", ttl)
  if not ok then return nil, m, c end
  ok, m, c = apply(who, "loop", s, "setloop", opts.loop ~= false)
  if not ok then return nil, m, c end
  if opts.interface ~= nil then
    ok, m, c = apply(who, "interface", s, "setinterface", opts.interface)
    if not ok then return nil, m, c end
  end
  if opts.bind ~= nil or port ~= 0 then
    ok, m, c = apply(who, "bind", s, "bind", opts.bind or "*", port)
    if not ok then return nil, m, c end
  end
  return s
end

return M
