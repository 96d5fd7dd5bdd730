-- tour_lookup.lua - the notes' table of socket helpers, netlua.lookup side.
--
-- Run by examples/tour.lua inside scripts/netns.sh; standalone:
--   sh scripts/netns.sh env LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' \
--     LUA_CPATH='build/?.so;;' lua5.4 examples/tour_lookup.lua
-- It only reads local databases (/etc/services, /etc/hosts, the
-- interfaces); it starts nothing, so there is nothing to clean up.
-- getsockname/getpeername/makefile are in the TCP part of the tour.
local lookup = require "netlua.lookup"

local function say(fmt, ...) print(("  " .. fmt):format(...)) end

print("== netlua.lookup: the socket helper functions ==")

print("\ngetservbyname: the port number of a service")
for _, name in ipairs {"ftp", "telnet", "http"} do
  say("%-31s --> %s", ("lookup.getservbyname(%q)"):format(name),
      tostring(lookup.getservbyname(name)))
end
say("%-31s --> %s", "lookup.getservbyport(23)", lookup.getservbyport(23))
local _, msg, code = lookup.getservbyname("no-such-service")
say("%-31s --> nil, %q, %q", "an unknown service", msg, code)

print("\ngethostbyname: a host name to an IPv4 address")
say("lookup.gethostbyname(\"localhost\") --> %s",
    lookup.gethostbyname("localhost"))
_, msg, code = lookup.gethostbyname("nosuch.invalid")
say("lookup.gethostbyname(\"nosuch.invalid\") --> nil, %q, %q", msg, code)

print("\ngethostname / getfqdn: who am I")
local me = assert(lookup.gethostname())
say("lookup.gethostname() --> %s", me)
say("lookup.getfqdn()     --> %s", lookup.getfqdn())
say("(Python's rule: reverse-resolve the host name, take the first dotted")
say(" name among it and its aliases, else the name /etc/hosts gives)")

print("\ngetaddrinfo: everything needed to open a socket to host:port")
local res = assert(lookup.getaddrinfo("localhost", "http"))
say("lookup.getaddrinfo(\"localhost\", \"http\") -->")
say("  %-6s %-7s %-8s %-16s %s", "family", "socktype", "protocol", "addr", "port")
for _, a in ipairs(res) do
  say("  %-6s %-7s %-8s %-16s %d", a.family, a.socktype, tostring(a.protocol),
      a.addr, a.port)
end
res = assert(lookup.getaddrinfo("::1", 8080,
  {family = "inet6", socktype = "stream", flags = {"numerichost"}}))
say("with {family=\"inet6\", socktype=\"stream\", flags={\"numerichost\"}}:"
    .. " [%s]:%d", res[1].addr, res[1].port)
local host, serv = lookup.getnameinfo("127.0.0.1", 21)
say("lookup.getnameinfo(\"127.0.0.1\", 21) --> %s, %s", host, serv)

print("\ninet_pton / inet_ntop: text <-> packed bytes")
local packed = lookup.inet_pton("192.168.0.1")
say("lookup.inet_pton(\"192.168.0.1\") --> %d bytes: %s", #packed,
    (packed:gsub(".", function(c) return ("%02x "):format(c:byte()) end)))
say("lookup.inet_ntop(that)          --> %s", lookup.inet_ntop(packed))

print("\ninterfaces: what this (private) network namespace has")
for _, i in ipairs(assert(lookup.interfaces())) do
  local flags = {}
  for _, f in ipairs {"up", "running", "loopback", "broadcast", "multicast"} do
    if i.flags[f] then flags[#flags + 1] = f end
  end
  say("%d: %-5s %-18s <%s>", i.index, i.name, i.mac or "",
      table.concat(flags, ","))
  for _, a in ipairs(i.addrs) do
    say("     %-6s %s/%d", a.family, a.addr, a.prefixlen or 0)
  end
end
say("lookup.if_nametoindex(\"lo\") --> %d, lookup.if_indextoname(1) --> %s",
    lookup.if_nametoindex("lo"), lookup.if_indextoname(1))
