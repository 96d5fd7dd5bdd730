-- examples/tour_multicast.lua - the notes' multicast recipe, in netlua.
--
-- Run by examples/tour.lua inside scripts/netns.sh, or on its own:
--   sh scripts/netns.sh env LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/tour_multicast.lua
--
-- Everything happens inside a private network namespace: the datagrams
-- never reach a real network.
local mc = require "netlua.multicast"
local H = require "helper"

-- string.pack and string.unpack are 5.3+; spec/helper.lua has a stand-in
local pack, unpack = string.pack or H.pack, string.unpack or H.unpack

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
local none, code = r:receivefrom()  -- LuaSocket's "timeout" second
print(("  receiver got %s (%s): this host no longer hears itself"):format(tostring(none), tostring(code)))

assert(r:leave(GROUP))
print("  receiver left the group  (Python: setsockopt(IPPROTO_IP, IP_DROP_MEMBERSHIP, mreq))")
assert(s:setloop(true))
assert(s:sendto("anyone there?", GROUP, PORT))
none, code = r:receivefrom()
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

-- A fast feed: sendmany puts a burst out in one call (UDP segmentation
-- for equal sizes), receivepacked takes it back as ONE string plus sizes,
-- and unpack (string.unpack) reads each datagram's header where it lies.
local feed = assert(mc.receiver{group = "235.5.5.6", port = PORT, timeout = 1})
local pub = assert(mc.sender{ttl = 1})
local burst = {}
for i = 1, 100 do burst[i] = pack(">I4d", i, i * 1.5) end
assert(pub:sendmany(burst, "235.5.5.6", PORT))
local count, sum = 0, 0
while count < #burst do
  local packed, sizes = assert(feed:receivepacked(128, 2048, false))
  local pos = 1
  for _, size in ipairs(sizes) do
    local _, price = unpack(">I4d", packed, pos)
    sum, count, pos = sum + price, count + 1, pos + size
  end
end
print(("  a burst of %d datagrams: one sendmany out, receivepacked read them in place (sum %.1f)")
  :format(count, sum))
feed:close()
pub:close()
