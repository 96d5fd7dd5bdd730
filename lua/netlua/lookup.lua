--- netlua.lookup: names, addresses, services and interfaces.
--
-- Python's `socket` helpers for Lua: getaddrinfo/getnameinfo, the host,
-- service and protocol databases, inet_pton/inet_ntop and the interface
-- list.  The calls are C (netlua.core); this file re-exports them, adds
-- `getfqdn` (Python's semantics) and orders `interfaces()` by index.  It
-- opens no sockets: netlua.tcp and netlua.multicast do that.
--
-- Conventions: a resolver failure returns `nil, message, code` where code
-- names the gai error (`"EAI_NONAME"`, `"EAI_AGAIN"`, `"EAI_SERVICE"`, ...);
-- a miss in a database that is not gai based (services, protocols,
-- interfaces) returns `nil, message, "notfound"`.  Misuse (wrong types,
-- ports out of 0..65535, unknown option or flag names) raises an error
-- naming the argument.  getaddrinfo and getnameinfo take a `timeout`
-- option; inside netlua.run the resolver calls yield while a small pool
-- of resolver threads runs them (csrc/resolve.c).
-- @module netlua.lookup
local core = require "netlua.core"
local drive = require "netlua.drive"

-- the lookups that can wait get their drivers (netlua.drive)
local C = setmetatable({}, {__index = core.lookup})
for _, name in ipairs {"getaddrinfo", "getnameinfo", "gethostbyname",
                       "gethostbyname_ex", "gethostbyaddr"} do
  C[name] = drive.wrap(core.lookup[name], name)
end

local M = {}

--- Resolves a host and a service.
-- @tparam ?string host name or numeric address; nil means any/loopback
-- (with `flags={"passive"}`: any)
-- @tparam ?number|string port_or_service port 0..65535, service name
-- ("http") or numeric text; nil for none (then host is required)
-- @tparam[opt] table opts `family` ("inet", "inet6", "unspec"; default
-- "unspec"), `socktype` ("stream", "dgram", "raw", "seqpacket" or a
-- number; default any), `protocol` ("tcp", "udp", a name from
-- /etc/protocols or a number; default any), `flags` (a list of names, a
-- set `{name=true}` or one name: `passive`, `canonname`, `numerichost`,
-- `numericserv`, `addrconfig`, `v4mapped`, `all`; default none)
-- @treturn table array of `{family=, socktype=, protocol=, addr=, port=,
-- canonname=?}` (canonname on the first entry with `canonname`)
-- @usage for _, a in ipairs(assert(lookup.getaddrinfo("localhost", "http"))) do print(a.addr, a.port) end
-- @function getaddrinfo
M.getaddrinfo = C.getaddrinfo

--- The most resolver threads that run lookups at once for tasks and for
-- calls with a timeout (default 32, for the whole process); more lookups
-- wait in a queue, and one whose caller has gone (timeout, closed
-- object) is dropped from it unrun.
-- @tparam[opt] integer n new limit, 1..1024
-- @treturn integer the limit before the call
-- @usage lookup.resolver_threads(64)  -- a fleet behind a slow DNS server
-- @function resolver_threads
M.resolver_threads = core.resolver_threads

--- Turns an address and port back into names.
-- @tparam string ip numeric IPv4 or IPv6 address (raises otherwise)
-- @tparam[opt=0] number port
-- @tparam[opt] table opts `flags`: `numerichost`, `numericserv`,
-- `namereqd`, `nofqdn`, `dgram` (same forms as getaddrinfo's)
-- @treturn string host
-- @treturn string service
-- @usage local host, serv = lookup.getnameinfo("127.0.0.1", 80)
-- @function getnameinfo
M.getnameinfo = C.getnameinfo

--- The first IPv4 address of a name, as text.  The empty name is the
-- wildcard address "0.0.0.0", as Python's socket.gethostbyname("") says.
-- @usage lookup.gethostbyname("localhost") --> "127.0.0.1"
function M.gethostbyname(name, ...)
  if name == "" then return "0.0.0.0" end
  return C.gethostbyname(name, ...)
end

--- Host name, aliases and all addresses of a name (IPv4 unless `family`
-- is "inet6").
-- @tparam string name
-- @tparam[opt="inet"] string family
-- @treturn string hostname
-- @treturn table aliases (array)
-- @treturn table addresses (array of text)
-- @function gethostbyname_ex
M.gethostbyname_ex = C.gethostbyname_ex

--- Reverse lookup: hostname, aliases, addresses of an address (a name is
-- resolved first, as Python does).
-- @function gethostbyaddr
M.gethostbyaddr = C.gethostbyaddr

--- This machine's host name.
-- @function gethostname
M.gethostname = C.gethostname

--- Port number of a service ("http" -> 80); proto "tcp"/"udp" or any.
-- @function getservbyname
M.getservbyname = C.getservbyname

--- Service name of a port (80 -> "http"); proto "tcp"/"udp" or any.
-- @function getservbyport
M.getservbyport = C.getservbyport

--- Protocol number of a name ("tcp" -> 6).
-- @function getprotobyname
M.getprotobyname = C.getprotobyname

--- Text address to packed bytes (4 or 16).  `inet_pton(text)` picks the
-- family from the text; `inet_pton(family, text)` insists on one.  Text
-- that is not an address returns `nil, msg, "invalid"` (Python raises),
-- so it doubles as an "is this an IP?" test.
-- @function inet_pton
M.inet_pton = C.inet_pton

--- Packed bytes (4 or 16) to text; `inet_ntop(family, bytes)` also
-- checks the length against the family.  Any other length raises.
-- @function inet_ntop
M.inet_ntop = C.inet_ntop

--- Interface index of a name ("lo" -> 1), or `nil, msg, "notfound"`.
-- @function if_nametoindex
M.if_nametoindex = C.if_nametoindex

--- Interface name of an index, or `nil, msg, "notfound"`.
-- @function if_indextoname
M.if_indextoname = C.if_indextoname

--- Array of `{index=, name=}` for every interface (Python's
-- if_nameindex).
-- @function if_nameindex
M.if_nameindex = C.if_nameindex

--- Every interface with its flags and addresses, ordered by index.
-- @treturn table array of `{name=, index=, flags={up=, running=,
-- loopback=, broadcast=, multicast=, pointtopoint=}, mac=?, addrs={{family=,
-- addr=, netmask=, prefixlen=, broadcast=?, peer=?}, ...}}`
function M.interfaces()
  local list, msg, code = C.interfaces()
  if not list then return nil, msg, code end
  table.sort(list, function(a, b)
    if a.index ~= b.index then return a.index < b.index end
    return a.name < b.name
  end)
  return list
end

--- Fully qualified name of `name` (default: this host), with Python's
-- semantics: reverse-resolve it and take the first of the hostname and
-- its aliases that contains a dot, else the hostname; if the lookup fails,
-- `name` itself.  Never fails.
-- @tparam[opt] string name
-- @treturn string
function M.getfqdn(name)
  if name ~= nil and type(name) ~= "string" then
    error(("bad argument #1 to 'getfqdn' (string expected, got %s)")
      :format(type(name)), 2)
  end
  name = (name or ""):match("^%s*(.-)%s*$")
  if name == "" or name == "0.0.0.0" or name == "::" then
    name = C.gethostname() or name
  end
  local host, aliases = C.gethostbyaddr(name)
  if not host then return name end
  if host:find(".", 1, true) then return host end
  for _, a in ipairs(aliases) do
    if a:find(".", 1, true) then return a end
  end
  return host
end

return M
