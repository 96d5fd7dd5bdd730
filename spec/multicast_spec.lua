-- Multicast specs: IPv4 on the namespace's loopback, IPv6 across the veth
-- pair nlva/nlvb (scripts/netns.sh).  Every spec sends real datagrams
-- between real sockets; nothing leaves the private namespace.
local H = require "helper"

-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
H.require_netns()

local netlua = require "netlua"
local mc = require "netlua.multicast"

local V6A, V6B = "fd6e:6c75:6100::1", "fd6e:6c75:6100::2"
local SHORT = 0.2   -- how long "nothing arrives" is waited for
local MARGIN = 0.5  -- allowed lateness of a timeout

-- Opened sockets are closed after each test, whatever happened.
local opened
local function track(s, ...)
  if s then opened[#opened + 1] = s end
  return s, ...
end

local function receiver(opts)
  if opts.port == nil then opts.port = 0 end
  if opts.timeout == nil then opts.timeout = 2 end
  local r = track(assert(mc.receiver(opts)))
  local _, port = r:getsockname()
  return r, port
end

local function sender(opts)
  return track(assert(mc.sender(opts or {})))
end

-- Asserts that nothing arrives on r within SHORT seconds.
local function assert_quiet(r)
  r:settimeout(SHORT)
  local d, err, msg, code = r:receivefrom()
  assert.is_nil(d, "unexpected datagram: " .. tostring(d))
  assert.equal("timeout", err, msg)
  assert.equal("timeout", code, msg)
end

-- Every datagram r has queued now, as a set of payloads.
local function drain(r)
  local got = {}
  r:settimeout(SHORT)
  while true do
    local d = r:receivefrom()
    if not d then return got end
    got[d] = (got[d] or 0) + 1
  end
end

before_each(function() opened = {} end)
after_each(function()
  for _, s in ipairs(opened) do s:close() end
end)

describe("is_multicast", function()
  it("knows both families' multicast ranges", function()
    assert.is_true(mc.is_multicast("224.0.0.1"))
    assert.is_true(mc.is_multicast("239.255.255.255"))
    assert.is_true(mc.is_multicast("ff02::1"))
    assert.is_true(mc.is_multicast("ff15::1234"))
    assert.is_false(mc.is_multicast("223.255.255.255"))
    assert.is_false(mc.is_multicast("240.0.0.1"))
    assert.is_false(mc.is_multicast("127.0.0.1"))
    assert.is_false(mc.is_multicast("fe80::1"))
    assert.is_false(mc.is_multicast("not an address"))
  end)
  it("raises on a non-string", function()
    assert.has_error(function() mc.is_multicast({}) end)
  end)
end)

describe("IPv4 multicast", function()
  it("delivers to an any-source member (the notes' scenario)", function()
    local r, port = receiver{group = "235.5.5.5"}
    local s = sender{ttl = 4}
    assert.equal(18, s:sendto("Multicasting OK!!!", "235.5.5.5", port))
    local _, sport = s:getsockname()
    local data, ip, from = r:receivefrom()
    assert.equal("Multicasting OK!!!", data)
    assert.equal("127.0.0.1", ip)
    assert.equal(sport, from)
  end)

  it("delivers an empty datagram as an empty string", function()
    local r, port = receiver{group = "239.1.1.4"}
    assert.equal(0, sender():sendto("", "239.1.1.4", port))
    local d, ip = r:receivefrom()
    assert.equal("", d)
    assert.equal("127.0.0.1", ip)
  end)

  it("lets two receivers share a port with reuse", function()
    local r1, port = receiver{group = "239.1.1.1"}
    local r2 = receiver{group = "239.1.1.1", port = port}
    sender():sendto("both", "239.1.1.1", port)
    assert.equal("both", (r1:receivefrom()))
    assert.equal("both", (r2:receivefrom()))
  end)

  it("refuses a shared port without reuse", function()
    local _, port = receiver{group = "239.1.1.1"}
    local r, msg, code = mc.receiver{group = "239.1.1.1", port = port, reuse = false}
    assert.is_nil(r)
    assert.equal("addrinuse", code, msg)
  end)

  it("gives a socket only the groups it joined itself", function()
    local ra, port = receiver{group = "239.1.1.1"}
    local rb = receiver{group = "239.1.1.2", port = port}
    local s = sender()
    s:sendto("to-b", "239.1.1.2", port)
    assert.equal("to-b", (rb:receivefrom()))
    assert_quiet(ra)
  end)

  it("binds to the group address when asked, and takes an interface index", function()
    local r, port = receiver{group = "239.1.1.3", bind = "239.1.1.3", interface = 1}
    assert.equal("239.1.1.3", (r:getsockname()))
    assert.same({1, "lo"}, {r:getinterface()})
    sender():sendto("bound", "239.1.1.3", port)
    assert.equal("bound", (r:receivefrom()))
  end)

  it("stops delivery after leave", function()
    local r, port = receiver{group = "239.2.2.2"}
    local s = sender()
    s:sendto("one", "239.2.2.2", port)
    assert.equal("one", (r:receivefrom()))
    assert.equal(1, r:leave("239.2.2.2"))
    s:sendto("two", "239.2.2.2", port)
    assert_quiet(r)
    -- and a rejoin brings it back
    assert(r:join("239.2.2.2"))
    s:sendto("three", "239.2.2.2", port)
    r:settimeout(2)
    assert.equal("three", (r:receivefrom()))
  end)

  -- On lo the device itself echoes every multicast it sends, whatever the
  -- loop option says; the option is about the host's own copy, so it is
  -- shown on the veth end nlvb (no IPv4 address needed to join by index).
  it("stops local delivery with loop off", function()
    local r, port = receiver{group = "239.3.3.3", interface = "nlvb"}
    local s = sender{loop = false, interface = "nlvb"}
    assert.is_false(s:getloop())
    assert.is_false(s:getoption("ip-multicast-loop"))
    s:sendto("looped?", "239.3.3.3", port)
    assert_quiet(r)
    assert(s:setloop(true))
    assert.is_true(s:getloop())
    s:sendto("looped", "239.3.3.3", port)
    r:settimeout(2)
    assert.equal("looped", (r:receivefrom()))
  end)

  it("receives only the chosen source with a source-specific join", function()
    local r, port = receiver{group = "232.1.1.1", source = "127.0.0.1"}
    local s1 = sender{bind = "127.0.0.1"}
    local s2 = sender{bind = "127.0.0.2"}
    s2:sendto("from-2", "232.1.1.1", port)
    s1:sendto("from-1", "232.1.1.1", port)
    s2:sendto("from-2", "232.1.1.1", port)
    local d, ip = r:receivefrom()
    assert.equal("from-1", d)
    assert.equal("127.0.0.1", ip)
    assert_quiet(r)
  end)

  it("takes several sources and leaves one of them", function()
    local r, port = receiver{group = "232.1.1.2", source = {"127.0.0.1", "127.0.0.2"}}
    local s1 = sender{bind = "127.0.0.1"}
    local s2 = sender{bind = "127.0.0.2"}
    s1:sendto("a", "232.1.1.2", port)
    s2:sendto("b", "232.1.1.2", port)
    assert.same({a = 1, b = 1}, drain(r))
    assert(r:leave("232.1.1.2", {source = "127.0.0.2"}))
    s1:sendto("a", "232.1.1.2", port)
    s2:sendto("b", "232.1.1.2", port)
    assert.same({a = 1}, drain(r))
  end)

  it("drops a blocked source and takes it back after unblock", function()
    local r, port = receiver{group = "239.4.4.4"}
    local s1 = sender{bind = "127.0.0.1"}
    local s2 = sender{bind = "127.0.0.2"}
    assert.equal(1, r:block("239.4.4.4", "127.0.0.2"))
    s1:sendto("one", "239.4.4.4", port)
    s2:sendto("two", "239.4.4.4", port)
    assert.same({one = 1}, drain(r))
    assert.equal(1, r:unblock("239.4.4.4", "127.0.0.2"))
    s1:sendto("one", "239.4.4.4", port)
    s2:sendto("two", "239.4.4.4", port)
    assert.same({one = 1, two = 1}, drain(r))
  end)

  it("reports a failed join, leave or unblock as nil, msg, code", function()
    local r = receiver{group = "239.5.5.5"}
    local ok, msg, code = r:join("239.5.5.5")
    assert.is_nil(ok)
    assert.equal("addrinuse", code)
    assert.matches("join 239.5.5.5", msg, 1, true)
    ok, msg, code = r:leave("239.5.5.6")
    assert.is_nil(ok)
    assert.is_string(code)
    assert.matches("leave 239.5.5.6", msg, 1, true)
    ok, msg, code = r:unblock("239.5.5.5", "127.0.0.9")
    assert.is_nil(ok)
    assert.is_string(code)
    assert.matches("unblock", msg, 1, true)
  end)

  it("round-trips TTL, loop and interface through the getters", function()
    local s = sender()
    assert.equal(1, s:getttl())
    for _, t in ipairs {0, 4, 32, 255} do
      assert.equal(1, s:setttl(t))
      assert.equal(t, s:getttl())
      assert.equal(t, s:getoption("ip-multicast-ttl"))
    end
    assert.equal(0, (s:getinterface()))
    for _, how in ipairs {"lo", "127.0.0.1", 1} do
      assert.equal(1, s:setinterface(how))
      local idx, name = s:getinterface()
      assert.equal(1, idx)
      assert.equal("lo", name)
      assert.equal("127.0.0.1", s:getoption("ip-multicast-if"))
    end
    assert(s:setinterface("*"))
    assert.equal(0, (s:getinterface()))
    assert.equal("0.0.0.0", s:getoption("ip-multicast-if"))
  end)

  it("sends out the interface it was given", function()
    local r, port = receiver{group = "239.6.6.6", interface = "lo", pktinfo = true}
    local s = sender{interface = "lo"}
    s:sendto("via lo", "239.6.6.6", port)
    local d, _, _, info = r:receivefrom()
    assert.equal("via lo", d)
    assert.equal("lo", info.ifname)
  end)

  it("reports the group and interface with pktinfo", function()
    local r, port = receiver{group = "239.7.7.7", pktinfo = true}
    assert.is_true(r:getoption("pktinfo"))
    sender():sendto("hello", "239.7.7.7", port)
    local d, ip, _, info = r:receivefrom()
    assert.equal("hello", d)
    assert.equal("127.0.0.1", ip)
    assert.same({group = "239.7.7.7", ifindex = 1, ifname = "lo", truncated = false, ttl = 1}, info)
  end)

  it("says a 9000-byte datagram into a 100-byte buffer was truncated", function()
    local r, port = receiver{group = "239.8.8.8", pktinfo = true}
    local s = sender()
    local big = ("0123456789"):rep(900)
    assert.equal(9000, s:sendto(big, "239.8.8.8", port))
    local d, _, _, info = r:receivefrom(100)
    assert.equal(big:sub(1, 100), d)
    assert.is_true(info.truncated)
    assert.equal(9000, info.size)
    -- without pktinfo it is a failure, never a silent cut
    assert(r:setoption("pktinfo", false))
    s:sendto(big, "239.8.8.8", port)
    local none, err, msg, code = r:receivefrom(100)
    assert.is_nil(none)
    assert.equal("truncated", err)
    assert.equal("truncated", code)
    assert.matches("9000", msg)
    -- the default size takes the whole datagram
    s:sendto(big, "239.8.8.8", port)
    assert.equal(big, (r:receivefrom()))
    -- receivemany flags it per entry
    s:sendto(big, "239.8.8.8", port)
    s:sendto("small", "239.8.8.8", port)
    local got = {}
    while #got < 2 do
      for _, e in ipairs(assert(r:receivemany(4, 100))) do got[#got + 1] = e end
    end
    assert.is_true(got[1].truncated)
    assert.equal(9000, got[1].size)
    assert.equal(100, #got[1].data)
    assert.equal("small", got[2].data)
    assert.is_falsy(got[2].truncated)
  end)

  it("moves 1000 datagrams through sendmany/receivemany with none lost", function()
    local r, port = receiver{group = "239.9.9.9", rcvbuf = 8 * 1024 * 1024}
    local s = sender()
    local datas = {}
    for i = 1, 1000 do datas[i] = ("datagram %04d"):format(i) end
    local bufsize = r:getoption("rcvbuf")
    if bufsize >= 4 * 1024 * 1024 then
      assert.equal(1000, s:sendmany(datas, "239.9.9.9", port))
    else  -- unprivileged: the system caps the buffer; send in slices
      for i = 1, 1000, 100 do
        local slice = {}
        for k = 1, 100 do slice[k] = datas[i + k - 1] end
        assert.equal(100, s:sendmany(slice, "239.9.9.9", port))
      end
    end
    local got = {}
    while #got < 1000 do
      local batch, msg, code = r:receivemany(256, 64)
      assert(batch, msg)
      assert.is_nil(code)
      for _, e in ipairs(batch) do got[#got + 1] = e.data end
    end
    assert.same(datas, got)
    assert_quiet(r)
  end)

  for _, gso in ipairs {true, false} do
    it(("keeps datagram boundaries in sendmany, gso %s"):format(gso and "on" or "off"), function()
      local r, port = receiver{group = "239.9.9.7", rcvbuf = 4 * 1024 * 1024}
      local s = sender()
      assert.is_true(s:getoption("gso"))  -- on by default where the system has it
      assert(s:setoption("gso", gso))
      assert.equal(gso, s:getoption("gso"))
      -- equal runs, a shorter last one, empty datagrams, sizes above the
      -- segmentation limit, a run longer than one kernel batch
      local sizes = {10, 10, 10, 5, 5, 20, 0, 1300, 1300, 64, 64, 64, 63, 1, 1, 0, 0}
      for _ = 1, 150 do sizes[#sizes + 1] = 100 end
      local datas = {}
      for i, n in ipairs(sizes) do
        datas[i] = (string.char(65 + i % 26)):rep(n)
      end
      assert.equal(#datas, s:sendmany(datas, "239.9.9.7", port))
      local got = {}
      while #got < #datas do
        for _, e in ipairs(assert(r:receivemany(64, 2000))) do got[#got + 1] = e.data end
      end
      assert.same(datas, got)
      assert_quiet(r)
    end)
  end

  it("returns receivemany entries with address and pktinfo", function()
    local r, port = receiver{group = "239.9.9.8", pktinfo = true}
    local s = sender{bind = "127.0.0.2"}
    assert.equal(3, s:sendmany({"x", "yy", ""}, "239.9.9.8", port))
    local got = {}
    while #got < 3 do
      for _, e in ipairs(assert(r:receivemany())) do got[#got + 1] = e end
    end
    local _, sport = s:getsockname()
    for i, want in ipairs {"x", "yy", ""} do
      assert.equal(want, got[i].data)
      assert.equal("127.0.0.2", got[i].ip)
      assert.equal(sport, got[i].port)
      assert.equal("239.9.9.8", got[i].group)
      assert.equal("lo", got[i].ifname)
    end
  end)

  it("receivedatas gives the batch as parallel arrays and flags cuts", function()
    local r, port = receiver{group = "239.9.9.6"}
    local s = sender{bind = "127.0.0.2"}
    local big = ("z"):rep(300)
    assert.equal(4, s:sendmany({"a", "bb", big, ""}, "239.9.9.6", port))
    local datas, ips, ports, cut = {}, {}, {}, {}
    while #datas < 4 do
      local d, i, p, c = r:receivedatas(8, 100)
      assert(d, i)
      for k = 1, #d do
        datas[#datas + 1], ips[#ips + 1], ports[#ports + 1] = d[k], i[k], p[k]
        if c and c[k] then cut[#datas] = c[k] end
      end
    end
    local _, sport = s:getsockname()
    assert.same({"a", "bb", big:sub(1, 100), ""}, datas)
    assert.same({"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.2"}, ips)
    assert.same({sport, sport, sport, sport}, ports)
    assert.same({[3] = 300}, cut) -- never cut silently
    r:settimeout(0.1)
    local none, _, code = r:receivedatas()
    assert.is_nil(none)
    assert.equal("timeout", code)
    assert.has_error(function() r:receivedatas(0) end)
  end)

  it("receivepacked gives the batch in one string with sizes, and flags cuts", function()
    local r, port = receiver{group = "239.9.9.5"}
    local s = sender{bind = "127.0.0.2"}
    local big = ("z"):rep(300)
    local sent = {"a", "bb", big, "", H.pack(">I4", 0xdeadbeef)}
    assert.equal(5, s:sendmany(sent, "239.9.9.5", port))
    local got, ips, ports, cut = {}, {}, {}, {}
    while #got < 5 do
      local data, sizes, i, p, c = r:receivepacked(8, 100)
      assert(data, sizes)
      local pos = 1
      for k = 1, #sizes do
        got[#got + 1] = data:sub(pos, pos + sizes[k] - 1)
        ips[#ips + 1], ports[#ports + 1] = i[k], p[k]
        if c and c[k] then cut[#got] = c[k] end
        pos = pos + sizes[k]
      end
      assert.equal(#data + 1, pos)  -- nothing else in the string
    end
    local _, sport = s:getsockname()
    assert.same({"a", "bb", big:sub(1, 100), "", sent[5]}, got)
    assert.equal(0xdeadbeef, (H.unpack(">I4", got[5])))
    assert.same({"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.2"}, ips)
    assert.same({sport, sport, sport, sport, sport}, ports)
    assert.same({[3] = 300}, cut) -- never cut silently
    r:settimeout(0.1)
    local none, msg, code = r:receivepacked()
    assert.is_nil(none)
    assert.equal("timeout", code)
    assert.equal("receivepacked: timeout", msg)
    assert.has_error(function() r:receivepacked(0) end)
    assert.has_error(function() r:receivepacked(8, 0) end)
  end)

  it("receivepacked(n, max, false) leaves the senders out, also after a wait in a task", function()
    local r, port = receiver{group = "239.9.9.2"}
    local s = sender()
    local got, sizes, cut, calls = "", {}, {}, {}
    assert(netlua.run(function()
      netlua.spawn(function()
        netlua.sleep(0.05)  -- the receive below has to wait (and restart)
        assert(s:sendmany({"ab", ("z"):rep(300)}, "239.9.9.2", port))
      end)
      while #sizes < 2 do
        local res = pack(r:receivepacked(8, 100, false))
        assert(res[1], res[2])
        calls[#calls + 1] = res
        got = got .. res[1]
        for k, size in ipairs(res[2]) do
          sizes[#sizes + 1] = size
          if res[5] and res[5][k] then cut[#sizes] = res[5][k] end
        end
      end
    end))
    assert.equal("ab" .. ("z"):rep(100), got)
    assert.same({2, 100}, sizes)
    assert.same({[2] = 300}, cut)
    for _, res in ipairs(calls) do
      assert.is_nil(res[3])  -- no ips
      assert.is_nil(res[4])  -- no ports
    end
    assert.has_error(function() r:receivepacked(8, 100, "no") end)
  end)

  it("receivepacked packs a full batch of many datagrams in order", function()
    local r, port = receiver{group = "239.9.9.4", rcvbuf = 1024 * 1024}
    local s = sender()
    local batch = {}
    for i = 1, 300 do batch[i] = H.pack(">I4", i) .. ("p"):rep(i % 37) end
    assert.equal(300, s:sendmany(batch, "239.9.9.4", port))
    local n = 0
    while n < 300 do
      local data, sizes = assert(r:receivepacked(1024, 64))
      local pos = 1
      for k = 1, #sizes do
        n = n + 1
        assert.equal(batch[n], data:sub(pos, pos + sizes[k] - 1))
        pos = pos + sizes[k]
      end
    end
  end)

  it("setpeername, send and receive work as LuaSocket's connected UDP", function()
    local r, port = receiver{group = "239.9.9.3"}
    local s = sender{bind = "127.0.0.2"}
    assert.equal(1, s:setpeername("239.9.9.3", port))
    assert.same({"239.9.9.3", port, "inet"}, {s:getpeername()})
    assert.equal(5, s:send("hello"))
    assert.equal("hello", r:receive())
    r:settimeout(0.1)
    -- LuaSocket's bare second value; netlua's message and code after it
    local none, err, msg, code = r:receive()
    assert.same({nil, "timeout", "receive: timeout", "timeout"}, {none, err, msg, code})
    -- never cut silently: too small a size is an error, as for receivefrom
    assert(s:send(("z"):rep(300)))
    none, err, msg, code = r:receive(100)
    assert.is_nil(none)
    assert.equal("truncated", err)
    assert.equal("truncated", code)
    assert.matches("^receive: ", msg)
    -- "*" drops the peer: send has nowhere to go
    assert.equal(1, s:setpeername("*"))
    none, err, msg, code = s:send("x")
    assert.is_nil(none)
    assert.equal("Destination address required", err)
    assert.matches("^send: ", msg)
    assert.is_string(code)
  end)

  -- unicast: connecting a socket also fixes its local address, after
  -- which a group member would no longer get its group's datagrams (pick
  -- multicast sources with source= or block instead)
  it("a socket with a peer receives only from that peer", function()
    local u = track(assert(mc.socket()))
    assert(u:bind("127.0.0.1", 0))
    u:settimeout(2)
    local _, uport = u:getsockname()
    local mine, other = sender{bind = "127.0.0.2"}, sender{bind = "127.0.0.3"}
    local _, mport = mine:getsockname()
    assert.equal(1, u:setpeername("127.0.0.2", mport))
    assert(other:sendto("not you", "127.0.0.1", uport))
    assert(mine:sendto("you", "127.0.0.1", uport))
    assert.equal("you", u:receive())
    -- "*" drops the peer and keeps the port bind() picked (Linux alone
    -- would forget it: the datagram below would find nobody)
    assert.equal(1, u:setpeername("*"))
    assert.same({"127.0.0.1", uport, "inet"}, {u:getsockname()})
    assert(other:sendto("anyone", "127.0.0.1", uport))
    assert.equal("anyone", u:receive())
    -- the same over IPv6
    local u6 = track(assert(mc.socket{family = "inet6", timeout = 2}))
    local p6 = track(assert(mc.socket{family = "inet6", timeout = 2}))
    assert(u6:bind("::1", 0))
    assert(p6:bind("::1", 0))
    local _, u6port = u6:getsockname()
    local _, p6port = p6:getsockname()
    assert.equal(1, u6:setpeername("::1", p6port))
    assert(u6:send("v6"))
    assert.equal("v6", p6:receive())
    assert.equal(1, u6:setpeername("*"))
    assert.same({"::1", u6port, "inet6"}, {u6:getsockname()})
  end)

  it("setpeername and send reject bad arguments", function()
    local s = sender()
    assert.has_error(function() s:setpeername(nil, 9) end)
    assert.has_error(function() s:setpeername("239.9.9.3", 70000) end,
      "bad argument #2 to 'setpeername' (port out of range 0..65535)")
    assert.has_error(function() s:send({}) end)
    local none, err, msg, code = s:setpeername("no-such-host.invalid", 9)
    assert.is_nil(none)
    assert.is_string(err)
    assert.matches("^setpeername no%-such%-host%.invalid: ", msg)
    assert.equal("resolve", code)
    s:close()
    assert.has_error(function() s:send("x") end, "attempt to use a closed socket")
  end)

  it("sendmany of an empty array sends nothing", function()
    assert.equal(0, sender():sendmany({}, "239.9.9.9", 9))
  end)
end)

describe("timeouts", function()
  it("receivefrom returns nil, msg, 'timeout' within the bound", function()
    local r = receiver{group = "239.10.10.10", timeout = 0.3}
    local dt, d, err, msg, code = H.timed(r.receivefrom, r)
    assert.is_nil(d)
    assert.equal("timeout", err)
    assert.equal("timeout", code)
    assert.matches("receivefrom", msg)
    assert.is_true(dt >= 0.29 and dt < 0.3 + MARGIN, tostring(dt))
  end)

  it("receivemany returns nil, msg, 'timeout' within the bound", function()
    local r = receiver{group = "239.10.10.10", timeout = 0.3}
    local dt, d, _, code = H.timed(r.receivemany, r, 8)
    assert.is_nil(d)
    assert.equal("timeout", code)
    assert.is_true(dt >= 0.29 and dt < 0.3 + MARGIN, tostring(dt))
  end)

  it("a zero timeout polls without waiting", function()
    local r = receiver{group = "239.10.10.10", timeout = 0}
    local dt, d, code = H.timed(r.receivefrom, r)
    assert.is_nil(d)
    assert.equal("timeout", code)
    assert.is_true(dt < MARGIN, tostring(dt))
  end)

  it("a datagram that arrives in time is returned", function()
    local r, port = receiver{group = "239.10.10.11", timeout = 1}
    sender():sendto("in time", "239.10.10.11", port)
    assert.equal("in time", (r:receivefrom()))
    assert.equal(1, r:gettimeout())
  end)
end)

describe("IPv6 multicast across the veth pair", function()
  it("receives what the other end sends", function()
    local r, port = receiver{group = "ff15::1234", interface = "nlva", pktinfo = true}
    local s = sender{family = "inet6", interface = "nlvb"}
    assert.equal(3, s:sendto("six", "ff15::1234", port))
    local d, ip, _, info = r:receivefrom()
    assert.equal("six", d)
    assert.equal(V6B, ip)
    assert.equal("ff15::1234", info.group)
    assert.equal("nlva", info.ifname)
    assert.equal(1, info.ttl)
  end)

  it("delivers locally with loop on and not with loop off", function()
    local r, port = receiver{group = "ff15::1235", interface = "nlvb"}
    local s = sender{family = "inet6", interface = "nlvb"}
    s:sendto("local", "ff15::1235", port)
    assert.equal("local", (r:receivefrom()))
    assert(s:setloop(false))
    s:sendto("no", "ff15::1235", port)  -- leaves by nlvb, reaches nlva only
    assert_quiet(r)
  end)

  it("joins source-specific and blocks by source", function()
    local r, port = receiver{group = "ff35::1:1", interface = "nlva", source = V6B}
    local s = sender{family = "inet6", interface = "nlvb", bind = V6B}
    s:sendto("ssm6", "ff35::1:1", port)
    assert.equal("ssm6", (r:receivefrom()))
    local r2, port2 = receiver{group = "ff15::1236", interface = "nlva"}
    assert(r2:block("ff15::1236", V6B))
    s:sendto("blocked", "ff15::1236", port2)
    assert_quiet(r2)
    assert(r2:unblock("ff15::1236", V6B))
    s:sendto("free", "ff15::1236", port2)
    r2:settimeout(2)
    assert.equal("free", (r2:receivefrom()))
  end)

  it("stops delivery after leave", function()
    local r, port = receiver{group = "ff15::1237", interface = "nlva"}
    local s = sender{family = "inet6", interface = "nlvb"}
    s:sendto("a", "ff15::1237", port)
    assert.equal("a", (r:receivefrom()))
    assert(r:leave("ff15::1237"))
    s:sendto("b", "ff15::1237", port)
    assert_quiet(r)
  end)

  it("moves a batch through sendmany/receivemany", function()
    local r, port = receiver{group = "ff15::1238", interface = "nlva", rcvbuf = 4 * 1024 * 1024}
    local s = sender{family = "inet6", interface = "nlvb"}
    local datas = {}
    for i = 1, 300 do datas[i] = ("six %03d"):format(i) end
    assert.equal(300, s:sendmany(datas, "ff15::1238", port))
    assert.is_true(s:getoption("gso"))  -- the veth took segmented sends
    local got = {}
    while #got < 300 do
      for _, e in ipairs(assert(r:receivemany(128, 100))) do
        assert.equal(V6B, e.ip)
        got[#got + 1] = e.data
      end
    end
    assert.same(datas, got)
  end)

  it("round-trips hops, loop and interface", function()
    local s = sender{family = "inet6", ttl = 7}
    assert.equal(7, s:getttl())
    assert.equal(7, s:getoption("ipv6-multicast-hops"))
    assert(s:setoption("ipv6-unicast-hops", 9))
    assert.equal(9, s:getoption("ipv6-unicast-hops"))
    -- the multicast setter must not touch the unicast hops (LuaSocket's bug)
    assert(s:setoption("ipv6-multicast-hops", 3))
    assert.equal(3, s:getttl())
    assert.equal(9, s:getoption("ipv6-unicast-hops"))
    assert(s:setloop(false))
    assert.is_false(s:getoption("ipv6-multicast-loop"))
    local nlvb = select(1, s:setinterface("nlvb")) and s:getinterface()
    local idx, name = s:getinterface()
    assert.equal("nlvb", name)
    assert.equal(nlvb, idx)
    assert.equal(idx, s:getoption("ipv6-multicast-if"))
    assert(s:setinterface(V6A))
    assert.equal("nlva", select(2, s:getinterface()))
  end)
end)

describe("setoption/getoption with LuaSocket's names", function()
  it("joins and drops with ip-add/drop-membership", function()
    local r = track(assert(mc.socket{timeout = 2}))
    assert(r:setoption("reuseaddr", true))
    assert.equal(1, r:setsockname("*", 0))  -- LuaSocket's name for bind
    local _, port = r:getsockname()
    assert.equal(1, r:setoption("ip-add-membership", {multiaddr = "239.11.11.11", interface = "127.0.0.1"}))
    local s = sender()
    s:sendto("ls", "239.11.11.11", port)
    assert.equal("ls", (r:receivefrom()))
    assert(r:setoption("ip-drop-membership", {multiaddr = "239.11.11.11", interface = "*"}))
    s:sendto("gone", "239.11.11.11", port)
    assert_quiet(r)
  end)

  it("joins with ipv6-add-membership by interface index", function()
    local r = track(assert(mc.socket{family = "inet6", timeout = 2}))
    assert(r:bind("*", 0))
    local _, port = r:getsockname()
    local s = sender{family = "inet6", interface = "nlvb"}
    assert(s:setinterface("nlva"))
    local nlva = s:getinterface()
    assert(s:setinterface("nlvb"))
    assert(r:setoption("ipv6-add-membership", {multiaddr = "ff15::99", interface = nlva}))
    s:sendto("v6 ls", "ff15::99", port)
    assert.equal("v6 ls", (r:receivefrom()))
    assert(r:setoption("ipv6-drop-membership", {multiaddr = "ff15::99", interface = nlva}))
    s:sendto("gone", "ff15::99", port)
    assert_quiet(r)
  end)

  it("sets options before bind, in any order", function()
    local s = track(assert(mc.socket()))
    assert(s:setoption("ip-multicast-ttl", 12))
    assert(s:setoption("ip-multicast-loop", false))
    assert(s:setoption("ip-multicast-if", "127.0.0.1"))
    assert(s:setoption("broadcast", true))
    assert(s:setoption("dontroute", false))
    assert(s:setoption("reuseport", true))
    assert(s:setoption("recv-buffer-size", 65536))
    assert(s:setoption("send-buffer-size", 65536))
    assert.equal(12, s:getoption("ip-multicast-ttl"))
    assert.is_false(s:getoption("ip-multicast-loop"))
    assert.equal("127.0.0.1", s:getoption("ip-multicast-if"))
    assert.is_true(s:getoption("broadcast"))
    assert.is_false(s:getoption("dontroute"))
    assert.is_true(s:getoption("reuseport"))
    assert.is_true(s:getoption("recv-buffer-size") >= 65536)
    assert.is_true(s:getoption("sndbuf") >= 65536)
    assert.is_false(s:getoption("ip-multicast-all"))
    assert(s:bind("127.0.0.1", 0))
    assert.equal(12, s:getttl())
  end)

  it("sets ipv6-v6only before bind", function()
    local s = track(assert(mc.socket{family = "inet6"}))
    assert(s:setoption("ipv6-v6only", true))
    assert.is_true(s:getoption("ipv6-v6only"))
    assert(s:setoption("ipv6-v6only", false))
    assert.is_false(s:getoption("ipv6-v6only"))
  end)
end)

describe("the socket object", function()
  it("closes twice, shows (closed) and refuses use after close", function()
    local s = assert(mc.socket())
    assert.matches("^netlua%.udp: 0x%x+$", tostring(s))
    assert.is_number(s:fileno())
    assert.equal(s:fileno(), s:getfd())
    assert.is_true(s:close())
    assert.is_true(s:close())
    assert.matches("%(closed%)", tostring(s))
    assert.has_error(function() s:sendto("x", "239.1.1.1", 9) end, "attempt to use a closed socket")
    assert.has_error(function() s:receivefrom() end, "attempt to use a closed socket")
    assert.has_error(function() s:join("239.1.1.1") end, "attempt to use a closed socket")
  end)

  it("closes with <close>", function()
    if not H.close_scope then return pending("to-be-closed variables need Lua 5.4") end
    local keep = assert(mc.socket())
    H.close_scope(keep)
    assert.matches("%(closed%)", tostring(keep))
  end)

  it("reports the family and the bound address", function()
    local s = track(assert(mc.socket{family = "inet6"}))
    assert.equal("inet6", s:getfamily())
    assert(s:bind(V6A, 0))
    local ip, port, fam = s:getsockname()
    assert.equal(V6A, ip)
    assert.is_true(port > 0)
    assert.equal("inet6", fam)
  end)

  it("works as plain unicast UDP too", function()
    local a = track(assert(mc.socket{timeout = 2}))
    assert(a:bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    local b = track(assert(require("netlua.udp").socket()))
    assert.equal(5, b:sendto("hello", "localhost", port))
    assert.equal("hello", (a:receivefrom()))
  end)

  it("returns run-time failures as nil, LuaSocket's err, msg, code", function()
    local s = track(assert(mc.socket()))
    local ok, err, msg, code = s:bind("192.0.2.1", 0)  -- not ours
    assert.is_nil(ok)
    assert.equal("Cannot assign requested address", err)
    assert.equal("addrnotavail", code, msg)
    assert.matches("^bind 192.0.2.1 port 0: ", msg)
    ok, err, msg, code = s:sendto(("x"):rep(70000), "239.1.1.1", 9)
    assert.is_nil(ok)
    assert.equal("Message too long", err)
    assert.equal("msgsize", code, msg)
    ok, err, msg, code = s:sendto("x", "no-such-host.invalid", 9)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.equal("resolve", code, msg)
    -- a port taken without SO_REUSEADDR: LuaSocket's words
    local a = track(assert(mc.socket()))
    assert(a:bind("127.0.0.1", 0))
    local _, taken = a:getsockname()
    local b = track(assert(mc.socket()))
    ok, err, msg, code = b:bind("127.0.0.1", taken)
    assert.same({nil, "address already in use", "addrinuse"}, {ok, err, code})
    assert.matches("^bind 127.0.0.1 port %d+: ", msg)
    ok, msg, code = s:sendmany({"x", ("y"):rep(70000)}, "239.1.1.1", 9)
    assert.is_nil(ok)
    assert.equal("msgsize", code, msg)
  end)
end)

describe("bad input raises", function()
  local s
  before_each(function() s = track(assert(mc.socket())) end)

  it("for a group that is not multicast", function()
    assert.has_error(function() mc.receiver{group = "10.0.0.1", port = 1} end,
      "bad option 'group' to 'receiver' ('10.0.0.1' is not a multicast address)")
    assert.has_error(function() s:join("127.0.0.1") end)
    assert.has_error(function() s:join("banana") end)
    assert.has_error(function() s:leave("10.1.1.1") end)
    assert.has_error(function() s:block("10.1.1.1", "127.0.0.1") end)
    assert.has_error(function() s:setoption("ip-add-membership", {multiaddr = "10.1.1.1"}) end)
    assert.has_error(function() s:join("ff15::1") end)  -- other family
    local ok, err = pcall(s.join, s, "127.0.0.1")
    assert.is_false(ok)
    assert.matches("not a multicast address", err)
  end)

  it("for an unknown interface name", function()
    assert.has_error(function() mc.receiver{group = "239.1.1.1", port = 0, interface = "nope0"} end,
      "bad option 'interface' to 'receiver' (unknown interface 'nope0')")
    assert.has_error(function() mc.sender{interface = "nope0"} end,
      "bad option 'interface' to 'sender' (unknown interface 'nope0')")
    local ok, err = pcall(s.setinterface, s, "nope0")
    assert.is_false(ok)
    assert.matches("unknown interface 'nope0'", err)
    assert.has_error(function() s:join("239.1.1.1", {interface = "nope0"}) end)
    assert.has_error(function() s:setinterface(9999) end)
    assert.has_error(function() s:setinterface("192.0.2.1") end)  -- no such address here
    assert.has_error(function() s:setinterface(1.5) end)
    assert.has_error(function() s:setinterface({}) end)
  end)

  it("for a TTL outside 0..255", function()
    for _, t in ipairs {-1, 256, 1000} do
      local ok, err = pcall(s.setttl, s, t)
      assert.is_false(ok)
      assert.matches("TTL out of range 0..255", err)
      assert.has_error(function() s:setoption("ip-multicast-ttl", t) end)
      assert.has_error(function() mc.sender{ttl = t} end)
    end
    assert.has_error(function() s:setttl(1.5) end)
    assert.has_error(function() s:setttl("x") end)
  end)

  it("for a source of the other family", function()
    local ok, err = pcall(s.join, s, "232.1.1.1", {source = "::1"})
    assert.is_false(ok)
    assert.matches("source ::1 is inet6 but the group is inet", err, 1, true)
    assert.has_error(function() s:block("239.1.1.1", V6A) end)
    assert.has_error(function() mc.receiver{group = "232.1.1.1", port = 0, source = V6B} end)
    assert.has_error(function() s:join("232.1.1.1", {source = "nonsense"}) end)
    assert.has_error(function() s:join("232.1.1.1", {source = "239.1.1.1"}) end)
  end)

  it("for a port outside 0..65535", function()
    for _, p in ipairs {-1, 65536, 1e9} do
      assert.has_error(function() s:sendto("x", "239.1.1.1", p) end)
      assert.has_error(function() s:sendmany({"x"}, "239.1.1.1", p) end)
      assert.has_error(function() s:bind("*", p) end)
      assert.has_error(function() mc.receiver{group = "239.1.1.1", port = p} end)
    end
    local ok, err = pcall(s.sendto, s, "x", "239.1.1.1", 70000)
    assert.is_false(ok)
    assert.matches("port out of range", err)
    assert.has_error(function() mc.receiver{group = "239.1.1.1"} end)  -- port required
  end)

  it("for wrong argument types and values", function()
    assert.has_error(function() mc.receiver() end)
    assert.has_error(function() mc.receiver("239.1.1.1") end)
    assert.has_error(function() mc.socket{family = "ipx"} end)
    assert.has_error(function() mc.sender{family = "ipx"} end)
    assert.has_error(function() mc.socket{timeout = "soon"} end)
    assert.has_error(function() s:sendto(nil, "239.1.1.1", 9) end)
    assert.has_error(function() s:sendmany("x", "239.1.1.1", 9) end)
    assert.has_error(function() s:sendmany({"x", 2}, "239.1.1.1", 9) end)
    assert.has_error(function() s:receivefrom(0) end)
    assert.has_error(function() s:receivefrom(2 ^ 30) end)
    assert.has_error(function() s:receivemany(0) end)
    assert.has_error(function() s:receivemany(5000) end)
    assert.has_error(function() s:setoption("no-such-option", 1) end)
    assert.has_error(function() s:setoption("ipv6-multicast-hops", 1) end)  -- inet socket
    assert.has_error(function() s:getoption("ip-add-membership") end)
    assert.has_error(function() s:setoption("ip-add-membership", "239.1.1.1") end)
    assert.has_error(function() s:setoption("rcvbuf", -5) end)
    assert.has_error(function() s:setloop() end)
    assert.has_error(function() s:bind("not-an-ip", 0) end)
    assert.has_error(function() s.sendto({}, "x", "239.1.1.1", 9) end)
  end)
end)

describe("netlua integration", function()
  it("is reachable as netlua.multicast and netlua.udp", function()
    assert.equal(mc, netlua.multicast)
    assert.equal(mc.socket, netlua.udp.socket)
  end)
end)
