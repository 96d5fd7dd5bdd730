-- spec/servers/mcast_relay.lua GROUP PORT IFNAME - a multicast member on
-- the far side of a veth pair (run in its own network namespace by
-- spec/multicast_netns_spec.lua).  It joins GROUP:PORT on IFNAME and
-- answers each datagram by unicast to its sender with
-- "got:<data>|<group>|<interface>|<ttl it arrived with>".  Prints "ready" once
-- joined; exits after 60 s without traffic.
local mc = require "netlua.multicast"

local group, port, ifname = arg[1], tonumber(arg[2]), arg[3]
local r = assert(mc.receiver{group = group, port = port, interface = ifname,
                             timeout = 60, pktinfo = true})
print("ready")
io.stdout:flush()
while true do
  local data, ip, from, info = r:receivefrom()
  if not data then break end
  r:sendto(("got:%s|%s|%s|%s"):format(data, info.group, info.ifname, info.ttl), ip, from)
end
r:close()
