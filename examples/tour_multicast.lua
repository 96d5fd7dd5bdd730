-- examples/tour_multicast.lua - the notes' multicast recipe, in netlua.
--
-- Run by examples/tour.lua inside scripts/netns.sh, or on its own:
--   sh scripts/netns.sh env LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/tour_multicast.lua
--
-- Everything happens inside a private network namespace: the datagrams
-- never reach a real network.
local mc = require "netlua.multicast"
local H = require "helper"

print("== multicast ==")
if not H.in_netns() then
  print("  (skipped: multicast is only sent inside scripts/netns.sh's private namespace)")
  return
end

-- On lo the device itself echoes every multicast datagram, so the
-- loopback switch would change nothing there; the demo uses the veth end
-- nlvb of the namespace instead, as a real host would use its eth0.
local IF, GROUP, PORT = "nlvb", "235.5.5.5", 9000

local r = assert(mc.receiver{group = GROUP, port = PORT, interface = IF,
                             timeout = 1, pktinfo = true})
print(("  receiver joined %s:%d on %s  (Python: setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq))")
  :format(GROUP, PORT, IF))

local s = assert(mc.sender{ttl = 4, interface = IF})
print(("  sender TTL is %d  (Python: setsockopt(IPPROTO_IP, IP_MULTICAST_TTL, 4))"):format(s:getttl()))

assert(s:sendto("Multicasting OK!!!", GROUP, PORT))
local data, _, _, info = r:receivefrom()
print(("  receiver got %q, sent to %s, arrived on %s"):format(
  tostring(data), info and info.group or "?", info and info.ifname or "?"))

assert(s:setloop(false))
print("  loopback off  (Python: setsockopt(IPPROTO_IP, IP_MULTICAST_LOOP, 0))")
assert(s:sendto("Multicasting OK!!!", GROUP, PORT))
local none, _, code = r:receivefrom()
print(("  receiver got %s (%s): this host no longer hears itself"):format(tostring(none), tostring(code)))

assert(r:leave(GROUP))
print("  receiver left the group  (Python: setsockopt(IPPROTO_IP, IP_DROP_MEMBERSHIP, mreq))")
assert(s:setloop(true))
assert(s:sendto("anyone there?", GROUP, PORT))
none, _, code = r:receivefrom()
print(("  after leave it gets %s (%s)"):format(tostring(none), tostring(code)))
r:close()
s:close()

-- IPv6 works the same way: join on one end of the veth pair, send out
-- the other.
local r6 = assert(mc.receiver{group = "ff15::5", port = PORT, interface = "nlva", timeout = 1})
local s6 = assert(mc.sender{family = "inet6", interface = "nlvb", ttl = 4})
assert(s6:sendto("Multicasting OK over IPv6", "ff15::5", PORT))
local d6, ip6 = r6:receivefrom()
print(("  IPv6: [ff15::5]:%d received %q from %s"):format(PORT, tostring(d6), tostring(ip6)))
r6:close()
s6:close()
