-- Multicast between two hosts: this spec's namespace and a second one
-- made here, joined by a veth pair nlmx0 (here, 10.77.0.1) <-> nlmx1
-- (there, 10.77.0.2).  A member over there (spec/servers/mcast_relay.lua)
-- answers every datagram it gets by unicast, with the TTL it arrived
-- with, so TTL and loop are shown by what crosses the link, not only by
-- what the getters say.
local H = require "helper"
H.require_netns()

local netlua = require "netlua"
local mc = require "netlua.multicast"

local GROUP, PORT = "239.50.0.1", 9050  -- a private namespace: fixed is fine
local HERE, THERE = "10.77.0.1", "10.77.0.2"

local function netns_of(pid)
  return (H.sh("readlink /proc/" .. pid .. "/ns/net"):gsub("%s+$", ""))
end

describe("multicast between two namespaces", function()
  local pid, log
  local opened

  setup(function()
    log = os.tmpname()
    local env = ("LUA_PATH=%s LUA_CPATH=%s "):format(
      H.shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;"),
      H.shquote(H.root .. "/" .. H.build .. "/?.so;;"))
    local inner = "while ! ip link show nlmx1 >/dev/null 2>&1; do sleep 0.02; done; "
      .. "ip link set lo up; ip addr add " .. THERE .. "/24 dev nlmx1; ip link set nlmx1 up; "
      .. "exec env " .. env .. H.lua .. " " .. H.shquote(H.root .. "/spec/servers/mcast_relay.lua")
      .. " " .. GROUP .. " " .. PORT .. " nlmx1"
    pid = H.spawn("unshare -n -- sh -c " .. H.shquote(inner), {log = log, keep_env = true})
    -- the far end may only move once the child is in its own namespace
    local mine, deadline = netns_of("self"), netlua.monotime() + 10
    while netns_of(pid) == mine and netlua.monotime() < deadline do netlua.sleep(0.01) end
    local out, ok = H.sh(("ip link add nlmx0 type veth peer name nlmx1 netns %d"
      .. " && ip addr add %s/24 dev nlmx0 && ip link set nlmx0 up"):format(pid, HERE))
    assert(ok, out)
    deadline = netlua.monotime() + 10
    while not (H.read_file(log) or ""):find("ready", 1, true) do
      assert(H.alive(pid) and netlua.monotime() < deadline,
        "relay did not start:\n" .. (H.read_file(log) or ""))
      netlua.sleep(0.01)
    end
  end)

  teardown(function()
    H.kill(pid)
    H.sh("ip link del nlmx0")
    os.remove(log)
  end)

  before_each(function() opened = {} end)
  after_each(function() for _, s in ipairs(opened) do s:close() end end)

  local function sender(opts)
    opts.interface, opts.bind, opts.timeout = "nlmx0", HERE, opts.timeout or 2
    local s = assert(mc.sender(opts))
    opened[#opened + 1] = s
    return s
  end

  it("crosses the link and is answered from the far side", function()
    local s = sender{ttl = 1}
    assert(s:sendto("hop", GROUP, PORT))
    local reply, ip = s:receivefrom()
    assert.equal("got:hop|" .. GROUP .. "|nlmx1|1", reply)
    assert.equal(THERE, ip)
  end)

  it("puts the TTL it was given on the wire", function()
    local s = sender{ttl = 4}
    assert(s:sendto("four", GROUP, PORT))
    assert.equal("got:four|" .. GROUP .. "|nlmx1|4", (s:receivefrom()))
    assert(s:setoption("ip-multicast-ttl", 255))
    assert(s:sendto("max", GROUP, PORT))
    assert.equal("got:max|" .. GROUP .. "|nlmx1|255", (s:receivefrom()))
    -- TTL 0: this kernel still puts it on a directly attached link, with
    -- TTL 0 in the header, so no router will pass it on
    assert(s:setttl(0))
    assert(s:sendto("zero", GROUP, PORT))
    local reply, code = s:receivefrom()
    if reply then
      assert.equal("got:zero|" .. GROUP .. "|nlmx1|0", reply)
    else  -- kernels that keep TTL 0 on the host
      assert.equal("timeout", code)
    end
  end)

  it("with loop off reaches the far member but not a member here", function()
    local here = assert(mc.receiver{group = GROUP, port = PORT, interface = "nlmx0", timeout = 0.3})
    opened[#opened + 1] = here
    local s = sender{ttl = 1, loop = false}
    assert(s:sendto("remote only", GROUP, PORT))
    assert.equal("got:remote only|" .. GROUP .. "|nlmx1|1", (s:receivefrom()))
    local none, err = here:receivefrom()
    assert.is_nil(none)
    assert.equal("timeout", err)
    -- loop on: both hear it
    assert(s:setloop(true))
    assert(s:sendto("both", GROUP, PORT))
    assert.equal("got:both|" .. GROUP .. "|nlmx1|1", (s:receivefrom()))
    here:settimeout(2)
    assert.equal("both", (here:receivefrom()))
  end)

  -- here lo has 127.0.0.1 and nlmx0 has HERE: a sender on lo must send
  -- from lo's own address, not from whatever address the kernel picks
  it("sends from the chosen interface's own address, by name or index", function()
    local G2, P2 = "239.50.0.7", 9057
    local r = assert(mc.receiver{group = G2, port = P2, interface = "lo", timeout = 2})
    for _, ifc in ipairs {"lo", netlua.lookup.if_nametoindex("lo")} do
      local s = assert(mc.sender{interface = ifc, ttl = 1, loop = true})
      assert(s:sendto("which", G2, P2))
      local d, ip = r:receivefrom(100)
      assert.equal("which", d)
      assert.equal("127.0.0.1", ip, "interface " .. tostring(ifc))
      s:close()
    end
    r:close()
  end)

  it("moves a batch across the link", function()
    local s = sender{ttl = 1}
    local datas = {}
    for i = 1, 50 do datas[i] = ("n%02d"):format(i) end
    assert.equal(50, s:sendmany(datas, GROUP, PORT))
    local got = {}
    while #got < 50 do
      local batch = assert(s:receivemany(64, 100))
      for _, e in ipairs(batch) do got[#got + 1] = e.data:match("^got:(n%d%d)|") end
    end
    assert.same(datas, got)
  end)
end)
