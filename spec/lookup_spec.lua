-- netlua.lookup against the machine's own databases: /etc/hosts,
-- /etc/services, /etc/protocols and the interfaces of the private network
-- namespace scripts/netns.sh makes (lo plus the veth pair nlva/nlvb).
-- Nothing here leaves the machine: names under .invalid fail locally (no
-- route out of the namespace) and everything else is in the files.
local lookup = require "netlua.lookup"
local helper = require "helper"

local MARGIN = 10  -- seconds: "returns quickly" for a failing resolver

local function python(expr)
  local out, ok = helper.sh("/usr/bin/python3 -c " ..
    helper.shquote("import socket; print(" .. expr .. ")"))
  assert(ok, out)
  return (out:gsub("%s+$", ""))
end

-- fn raises an error whose message contains every fragment given
local function raises(fn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  err = tostring(err)
  for i = 1, select("#", ...) do
    local frag = select(i, ...)
    assert.is_truthy(err:find(frag, 1, true),
      ("error %q lacks %q"):format(err, frag))
  end
end

-- a failure result nil, msg, code with the code given (or any EAI_*)
-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end

local function fails(code, msgfrag, ...)
  local r = pack(...)
  assert.is_nil(r[1], "expected a failure, got " .. tostring(r[1]))
  assert.is_string(r[2])
  if msgfrag then
    assert.is_truthy(r[2]:find(msgfrag, 1, true),
      ("message %q lacks %q"):format(r[2], msgfrag))
  end
  if code == "EAI" then
    assert.is_truthy(r[3]:match("^EAI_%u+$"), tostring(r[3]))
  else
    assert.equal(code, r[3])
  end
  return r[2], r[3]
end

describe("netlua.lookup", function()
  setup(function() helper.require_netns() end)

  it("is reachable as netlua.lookup", function()
    assert.equal(lookup, require("netlua").lookup)
  end)

  describe("getaddrinfo", function()
    it("resolves localhost with a service name", function()
      local r = assert(lookup.getaddrinfo("localhost", "http"))
      assert.is_true(#r >= 1)
      for _, a in ipairs(r) do
        assert.equal(80, a.port)
        assert.is_truthy(a.addr == "127.0.0.1" or a.addr == "::1", a.addr)
        assert.equal(a.addr == "::1" and "inet6" or "inet", a.family)
      end
    end)

    it("gives one entry per socket type without hints", function()
      local r = assert(lookup.getaddrinfo("127.0.0.1", 21))
      local seen = {}
      for _, a in ipairs(r) do
        assert.equal("inet", a.family)
        assert.equal("127.0.0.1", a.addr)
        assert.equal(21, a.port)
        seen[a.socktype] = a.protocol
      end
      assert.equal("tcp", seen.stream)
      assert.equal("udp", seen.dgram)
    end)

    it("honours family, socktype and protocol hints", function()
      local r = assert(lookup.getaddrinfo("::1", 5353,
        {family = "inet6", socktype = "dgram"}))
      assert.equal(1, #r)
      assert.same({family = "inet6", socktype = "dgram", protocol = "udp",
                   addr = "::1", port = 5353}, r[1])
      r = assert(lookup.getaddrinfo("localhost", 21, {protocol = "tcp"}))
      for _, a in ipairs(r) do
        assert.equal("stream", a.socktype)
        assert.equal("tcp", a.protocol)
      end
      r = assert(lookup.getaddrinfo("127.0.0.1", 9, {socktype = 2,
                                                    protocol = 17}))
      assert.equal("dgram", r[1].socktype)
      assert.equal("udp", r[1].protocol)
    end)

    it("family inet finds no IPv6 literal", function()
      fails("EAI", "getaddrinfo ::1",
        lookup.getaddrinfo("::1", 80, {family = "inet"}))
    end)

    it("passive with no host gives the wildcard addresses", function()
      local r = assert(lookup.getaddrinfo(nil, 8080,
        {socktype = "stream", flags = {"passive"}}))
      local addrs = {}
      for _, a in ipairs(r) do addrs[a.addr] = a.family end
      assert.equal("inet", addrs["0.0.0.0"])
      assert.equal(8080, r[1].port)
      -- without passive, no host means loopback
      r = assert(lookup.getaddrinfo(nil, 8080, {socktype = "stream",
                                               family = "inet"}))
      assert.equal("127.0.0.1", r[1].addr)
    end)

    it("takes flags as a list, a set or one name", function()
      local r = assert(lookup.getaddrinfo("localhost", nil,
        {family = "inet", socktype = "stream", flags = {"canonname"}}))
      assert.equal("localhost", r[1].canonname)
      r = assert(lookup.getaddrinfo("localhost", nil,
        {family = "inet", socktype = "stream", flags = {canonname = true}}))
      assert.equal("localhost", r[1].canonname)
      r = assert(lookup.getaddrinfo("localhost", nil,
        {family = "inet", socktype = "stream", flags = "canonname"}))
      assert.equal("localhost", r[1].canonname)
      r = assert(lookup.getaddrinfo("localhost", nil,
        {family = "inet", socktype = "stream", flags = {canonname = false}}))
      assert.is_nil(r[1].canonname)
    end)

    it("numerichost refuses names, numericserv refuses service names", function()
      assert.equal("127.0.0.1", assert(lookup.getaddrinfo("127.0.0.1", 80,
        {flags = {"numerichost"}}))[1].addr)
      fails("EAI_NONAME", "getaddrinfo localhost",
        lookup.getaddrinfo("localhost", 80, {flags = {"numerichost"}}))
      fails("EAI", "service http",
        lookup.getaddrinfo("127.0.0.1", "http", {flags = {"numericserv"}}))
      assert.equal(80, assert(lookup.getaddrinfo("127.0.0.1", "80",
        {flags = {"numericserv"}, socktype = "stream"}))[1].port)
    end)

    it("v4mapped maps IPv4 answers into IPv6", function()
      local r = assert(lookup.getaddrinfo("127.0.0.1", 80,
        {family = "inet6", socktype = "stream", flags = {"v4mapped"}}))
      assert.equal("::ffff:127.0.0.1", r[1].addr)
      assert.equal("inet6", r[1].family)
      r = assert(lookup.getaddrinfo("localhost", 80,
        {family = "inet6", socktype = "stream", flags = {"v4mapped", "all"}}))
      local found = false
      for _, a in ipairs(r) do found = found or a.addr == "::ffff:127.0.0.1" end
      assert.is_true(found)
    end)

    it("addrconfig is accepted", function()
      -- the namespace has no non-loopback IPv4 address, so what comes back
      -- depends on the libc: a list of valid entries or an EAI failure
      local r, msg, code = lookup.getaddrinfo("localhost", 80,
        {flags = {"addrconfig"}})
      if r then
        assert.is_true(#r >= 1)
        for _, a in ipairs(r) do assert.equal(80, a.port) end
      else
        assert.is_string(msg)
        assert.is_truthy(code:match("^EAI_"), code)
      end
    end)

    it("keeps the scope of a link-local address", function()
      local r = assert(lookup.getaddrinfo("fe80::1%nlva", 80,
        {flags = {"numerichost"}, socktype = "stream"}))
      assert.equal("fe80::1%nlva", r[1].addr)
    end)

    it("fails quickly with an EAI code for a name under .invalid", function()
      local dt, r, msg, code = helper.timed(lookup.getaddrinfo,
        "nosuch.invalid", 80)
      assert.is_nil(r)
      assert.is_true(code == "EAI_NONAME" or code == "EAI_AGAIN"
        or code == "EAI_NODATA", tostring(code))
      assert.is_truthy(msg:find("getaddrinfo nosuch.invalid", 1, true), msg)
      assert.is_true(dt < MARGIN, tostring(dt))
    end)

    it("fails with EAI_SERVICE for an unknown service", function()
      local msg = fails("EAI_SERVICE", "service nosuchservice",
        lookup.getaddrinfo("localhost", "nosuchservice"))
      assert.is_truthy(msg:find("^getaddrinfo localhost"), msg)
    end)

    it("raises on bad arguments, naming them", function()
      raises(function() lookup.getaddrinfo(80, "localhost") end,
        "#1", "getaddrinfo", "string expected")
      raises(function() lookup.getaddrinfo(nil, nil) end, "#1", "both nil")
      raises(function() lookup.getaddrinfo("localhost", 65536) end,
        "#2", "out of range")
      raises(function() lookup.getaddrinfo("localhost", -1) end,
        "#2", "out of range")
      raises(function() lookup.getaddrinfo("localhost", "70000") end,
        "#2", "out of range")
      raises(function() lookup.getaddrinfo("localhost", 80.5) end,
        "#2", "integer")
      raises(function() lookup.getaddrinfo("localhost", {}) end, "#2")
      raises(function() lookup.getaddrinfo("localhost", 80, "inet") end,
        "#3", "table expected")
      raises(function() lookup.getaddrinfo("a\0b", 80) end, "#1", "NUL")
    end)

    it("raises on unknown option, family, socktype, protocol and flag names", function()
      local function opt(o) return function() lookup.getaddrinfo("localhost", 80, o) end end
      raises(opt {famly = "inet"}, "#3", "unknown option 'famly'")
      raises(opt {family = "inet7"}, "#3", "unknown family 'inet7'")
      raises(opt {family = 2}, "#3", "family")
      raises(opt {socktype = "streem"}, "#3", "unknown socktype 'streem'")
      raises(opt {socktype = true}, "#3", "socktype")
      raises(opt {protocol = "nosuchproto"}, "#3", "unknown protocol 'nosuchproto'")
      raises(opt {protocol = 256}, "#3", "protocol out of range")
      raises(opt {flags = {"passive", "bogus"}}, "#3", "unknown flag 'bogus'")
      raises(opt {flags = {bogus = true}}, "#3", "unknown flag 'bogus'")
      raises(opt {flags = {1}}, "#3", "flags")
      raises(opt {flags = 3}, "#3", "flags")
      raises(opt {timeout = "soon"}, "bad option 'timeout' (number expected, got string)")
      raises(opt {timeout = 0 / 0}, "bad option 'timeout' (NaN)")
    end)

    it("takes a timeout: a numeric address needs no wait, a name gets its time", function()
      local r = assert(lookup.getaddrinfo("127.0.0.1", 80, {timeout = 0}))
      assert.are.equal("127.0.0.1", r[1].addr)
      r = assert(lookup.getaddrinfo("localhost", 80, {timeout = 5, family = "inet"}))
      assert.are.equal("127.0.0.1", r[1].addr)
      -- no time at all for a name: the lookup cannot finish
      local none, msg, code = lookup.getaddrinfo("localhost", 80, {timeout = 0})
      assert.is_nil(none)
      assert.are.equal("timeout", code)
      assert.matches("getaddrinfo localhost port 80", msg, 1, true)
    end)
  end)

  describe("getnameinfo", function()
    it("names loopback and a well-known port", function()
      local host, serv = lookup.getnameinfo("127.0.0.1", 80)
      assert.equal("localhost", host)
      assert.equal("http", serv)
    end)

    it("stays numeric when asked", function()
      local host, serv = lookup.getnameinfo("127.0.0.1", 80,
        {flags = {"numerichost", "numericserv"}})
      assert.equal("127.0.0.1", host)
      assert.equal("80", serv)
      host, serv = lookup.getnameinfo("::1", 23, {flags = "numerichost"})
      assert.equal("::1", host)
      assert.equal("telnet", serv)
    end)

    it("dgram picks the UDP service name", function()
      -- 21/tcp is ftp, 21/udp is fsp in Debian's /etc/services
      local _, tcp = lookup.getnameinfo("127.0.0.1", 21)
      local _, udp = lookup.getnameinfo("127.0.0.1", 21, {flags = {"dgram"}})
      assert.equal("ftp", tcp)
      assert.equal(lookup.getservbyport(21, "udp"), udp)
      assert.not_equal(tcp, udp)
    end)

    it("port defaults to 0 and nofqdn is accepted", function()
      local host, serv = lookup.getnameinfo("127.0.0.1", nil,
        {flags = {nofqdn = true}})
      assert.equal("localhost", host)
      assert.equal("0", serv)
    end)

    it("namereqd fails with an EAI code when there is no name", function()
      -- fd6e:6c75:6100::1 is in no hosts file and DNS is unreachable
      local dt, h, msg, code = helper.timed(lookup.getnameinfo,
        "fd6e:6c75:6100::1", 80, {flags = {"namereqd"}})
      assert.is_nil(h)
      assert.is_truthy(code:match("^EAI_"), code)
      assert.is_truthy(msg:find("getnameinfo fd6e:6c75:6100::1", 1, true), msg)
      assert.is_true(dt < MARGIN)
    end)

    it("raises on a name, bad ports and unknown flags", function()
      raises(function() lookup.getnameinfo("localhost", 80) end,
        "#1", "not a numeric IP address")
      raises(function() lookup.getnameinfo(127, 80) end, "#1", "string expected")
      raises(function() lookup.getnameinfo("127.0.0.1", 65536) end,
        "#2", "out of range")
      raises(function() lookup.getnameinfo("127.0.0.1", "http") end, "#2", "number expected")
      raises(function() lookup.getnameinfo("127.0.0.1", 80, {flags = {"passive"}}) end,
        "#3", "unknown flag 'passive'")
      raises(function() lookup.getnameinfo("127.0.0.1", 80, {family = "inet"}) end,
        "#3", "unknown option 'family'")
      raises(function() lookup.getnameinfo("127.0.0.1", 80, {timeout = "soon"}) end,
        "bad option 'timeout' (number expected, got string)")
    end)

    it("takes a timeout; a numerichost answer needs no wait", function()
      assert.are.equal("127.0.0.1", (lookup.getnameinfo("127.0.0.1", 21,
        {flags = {"numerichost"}, timeout = 0})))
      local host, serv = lookup.getnameinfo("127.0.0.1", 21, {timeout = 5})
      assert.are.equal("localhost", host)
      assert.are.equal("ftp", serv)
    end)
  end)

  describe("gethostbyname", function()
    it("gives the IPv4 address of localhost and of this host", function()
      assert.equal("127.0.0.1", lookup.gethostbyname("localhost"))
      assert.equal(python("socket.gethostbyname(socket.gethostname())"),
        lookup.gethostbyname(lookup.gethostname()))
      assert.equal("10.1.2.3", lookup.gethostbyname("10.1.2.3"))
    end)

    it("answers the empty name with the wildcard address, as Python does", function()
      assert.equal(python("socket.gethostbyname('')"), lookup.gethostbyname(""))
      assert.equal("0.0.0.0", lookup.gethostbyname(""))
    end)

    it("fails quickly for a name under .invalid", function()
      local dt, r, msg, code = helper.timed(lookup.gethostbyname, "nosuch.invalid")
      assert.is_nil(r)
      assert.is_truthy(code:match("^EAI_"), code)
      assert.is_truthy(msg:find("gethostbyname nosuch.invalid", 1, true), msg)
      assert.is_true(dt < MARGIN)
    end)

    it("has no IPv4 address for an IPv6 literal", function()
      fails("EAI", "gethostbyname ::1", lookup.gethostbyname("::1"))
    end)

    it("raises on a non-string", function()
      raises(function() lookup.gethostbyname() end, "#1", "string expected")
      raises(function() lookup.gethostbyname({}) end, "#1")
    end)
  end)

  describe("gethostbyname_ex and gethostbyaddr", function()
    it("gethostbyname_ex gives name, aliases and addresses", function()
      local name, aliases, addrs = lookup.gethostbyname_ex("localhost")
      assert.equal("localhost", name)
      assert.is_table(aliases)
      assert.same({"127.0.0.1"}, addrs)
      -- the same answer Python gives
      assert.equal(python("socket.gethostbyname_ex('localhost')"),
        ("('%s', [%s], [%s])"):format(name,
          #aliases > 0 and "'" .. table.concat(aliases, "', '") .. "'" or "",
          "'" .. table.concat(addrs, "', '") .. "'"))
    end)

    it("gethostbyname_ex takes a family", function()
      local name, _, addrs = lookup.gethostbyname_ex("::1", "inet6")
      assert.equal("::1", name)
      assert.same({"::1"}, addrs)
      raises(function() lookup.gethostbyname_ex("localhost", "inet7") end,
        "#2", "unknown family")
      raises(function() lookup.gethostbyname_ex("localhost", "unspec") end,
        "#2", "unknown family")
    end)

    it("gethostbyname_ex fails with an EAI code", function()
      local dt, r, msg, code = helper.timed(lookup.gethostbyname_ex, "nosuch.invalid")
      assert.is_nil(r)
      assert.is_truthy(code:match("^EAI_"), code)
      assert.is_truthy(msg:find("gethostbyname_ex nosuch.invalid", 1, true), msg)
      assert.is_true(dt < MARGIN)
    end)

    it("gethostbyaddr names loopback and this host's name", function()
      local name, aliases, addrs = lookup.gethostbyaddr("127.0.0.1")
      assert.equal("localhost", name)
      assert.is_table(aliases)
      assert.same({"127.0.0.1"}, addrs)
      -- a name is resolved first, as Python does
      name = lookup.gethostbyaddr(lookup.gethostname())
      assert.equal(python("socket.gethostbyaddr(socket.gethostname())[0]"), name)
    end)

    it("gethostbyaddr fails with an EAI code for an unknown address", function()
      local dt, r, msg, code = helper.timed(lookup.gethostbyaddr, "fd6e:6c75:6100::1")
      assert.is_nil(r)
      assert.is_truthy(code:match("^EAI_"), code)
      assert.is_truthy(msg:find("gethostbyaddr fd6e:6c75:6100::1", 1, true), msg)
      assert.is_true(dt < MARGIN)
      fails("EAI", "gethostbyaddr nosuch.invalid",
        lookup.gethostbyaddr("nosuch.invalid"))
    end)

    it("raise on non-strings", function()
      raises(function() lookup.gethostbyname_ex(1) end, "#1", "string expected")
      raises(function() lookup.gethostbyaddr(nil) end, "#1", "string expected")
    end)
  end)

  describe("gethostname and getfqdn", function()
    it("gethostname is the kernel's host name", function()
      local want = helper.read_file("/proc/sys/kernel/hostname"):gsub("%s+$", "")
      assert.equal(want, lookup.gethostname())
    end)

    it("getfqdn agrees with Python's", function()
      assert.equal(python("socket.getfqdn()"), lookup.getfqdn())
      assert.equal(python("socket.getfqdn('localhost')"), lookup.getfqdn("localhost"))
      assert.equal(python("socket.getfqdn('127.0.0.1')"), lookup.getfqdn("127.0.0.1"))
    end)

    it("getfqdn trims, treats wildcards as this host, keeps unknown names", function()
      assert.equal(lookup.getfqdn(), lookup.getfqdn("  "))
      assert.equal(lookup.getfqdn(), lookup.getfqdn("0.0.0.0"))
      assert.equal(lookup.getfqdn(), lookup.getfqdn("::"))
      assert.equal("localhost", lookup.getfqdn(" localhost\n"))
      local dt, n = helper.timed(lookup.getfqdn, "nosuch.invalid")
      assert.equal("nosuch.invalid", n)
      assert.is_true(dt < MARGIN)
    end)

    it("getfqdn raises on a non-string", function()
      raises(function() lookup.getfqdn(42) end, "#1", "getfqdn", "string expected")
    end)
  end)

  describe("services and protocols", function()
    it("getservbyname finds the notes' services", function()
      assert.equal(21, lookup.getservbyname("ftp"))
      assert.equal(23, lookup.getservbyname("telnet"))
      assert.equal(80, lookup.getservbyname("http"))
      assert.equal(80, lookup.getservbyname("http", "tcp"))
      assert.equal(53, lookup.getservbyname("domain", "udp"))
      assert.equal(tonumber(python("socket.getservbyname('ssh')")),
        lookup.getservbyname("ssh"))
    end)

    it("getservbyname of an unknown service is notfound", function()
      fails("notfound", "getservbyname nosuchservice", lookup.getservbyname("nosuchservice"))
      -- ssh exists for tcp; "telnet"/"bogusproto" does not
      fails("notfound", "getservbyname telnet/bogusproto",
        lookup.getservbyname("telnet", "bogusproto"))
    end)

    it("getservbyport names ports, per protocol", function()
      assert.equal("ftp", lookup.getservbyport(21))
      assert.equal("telnet", lookup.getservbyport(23, "tcp"))
      assert.equal("domain", lookup.getservbyport(53, "udp"))
      assert.equal(python("socket.getservbyport(22)"), lookup.getservbyport(22))
      fails("notfound", "getservbyport 65000", lookup.getservbyport(65000))
      fails("notfound", "getservbyport 0", lookup.getservbyport(0))
    end)

    it("getprotobyname gives numbers", function()
      assert.equal(6, lookup.getprotobyname("tcp"))
      assert.equal(17, lookup.getprotobyname("udp"))
      assert.equal(1, lookup.getprotobyname("icmp"))
      assert.equal(tonumber(python("socket.getprotobyname('ipv6-icmp')")),
        lookup.getprotobyname("ipv6-icmp"))
      fails("notfound", "getprotobyname nosuchproto", lookup.getprotobyname("nosuchproto"))
    end)

    it("raise on bad arguments", function()
      raises(function() lookup.getservbyname(21) end, "#1", "string expected")
      raises(function() lookup.getservbyname("ftp", 6) end, "#2", "string expected")
      raises(function() lookup.getservbyport("ftp") end, "#1", "number expected")
      raises(function() lookup.getservbyport(65536) end, "#1", "out of range")
      raises(function() lookup.getservbyport(-1) end, "#1", "out of range")
      raises(function() lookup.getservbyport(21.5) end, "#1", "integer")
      raises(function() lookup.getprotobyname(6) end, "#1", "string expected")
      raises(function() lookup.getprotobyname("t\0cp") end, "#1", "NUL")
    end)
  end)

  describe("inet_pton and inet_ntop", function()
    it("convert both families, family taken from the input", function()
      assert.equal("\127\0\0\1", lookup.inet_pton("127.0.0.1"))
      assert.equal(("\0"):rep(15) .. "\1", lookup.inet_pton("::1"))
      assert.equal("\192\168\1\254", lookup.inet_pton("192.168.1.254"))
      assert.equal("127.0.0.1", lookup.inet_ntop("\127\0\0\1"))
      assert.equal("::1", lookup.inet_ntop(("\0"):rep(15) .. "\1"))
      assert.equal("fe80::1:2", lookup.inet_ntop(lookup.inet_pton("fe80:0::1:2")))
      assert.equal("::ffff:10.0.0.1", lookup.inet_ntop(lookup.inet_pton("::ffff:10.0.0.1")))
    end)

    it("accept an explicit family first, like Python", function()
      assert.equal("\10\0\0\1", lookup.inet_pton("inet", "10.0.0.1"))
      assert.equal(16, #lookup.inet_pton("inet6", "2001:db8::1"))
      assert.equal("10.0.0.1", lookup.inet_ntop("inet", "\10\0\0\1"))
      assert.equal("2001:db8::1",
        lookup.inet_ntop("inet6", lookup.inet_pton("2001:db8::1")))
      fails("invalid", "not an IPv6 address", lookup.inet_pton("inet6", "10.0.0.1"))
      fails("invalid", "not an IPv4 address", lookup.inet_pton("inet", "::1"))
    end)

    it("inet_pton of a non-address returns nil, msg, 'invalid'", function()
      for _, s in ipairs {"", "localhost", "1.2.3", "256.1.1.1", "::1::2",
                          "fe80::1%lo", " 1.2.3.4"} do
        fails("invalid", "is not an IPv4 or IPv6 address", lookup.inet_pton(s))
      end
    end)

    it("raise on bad lengths, families and types", function()
      raises(function() lookup.inet_ntop("abc") end, "#1", "4 or 16 bytes")
      raises(function() lookup.inet_ntop("") end, "#1", "4 or 16 bytes")
      raises(function() lookup.inet_ntop(("x"):rep(17)) end, "#1")
      raises(function() lookup.inet_ntop("inet", ("\0"):rep(16)) end, "#2", "4 bytes")
      raises(function() lookup.inet_ntop("inet6", "\1\2\3\4") end, "#2", "16 bytes")
      raises(function() lookup.inet_ntop("inet9", "\1\2\3\4") end, "#1", "unknown family")
      raises(function() lookup.inet_ntop(nil) end, "#1", "string expected")
      raises(function() lookup.inet_pton(nil) end, "#1", "string expected")
      raises(function() lookup.inet_pton(127001) end, "#1", "string expected")
      raises(function() lookup.inet_pton("unspec", "::1") end, "#1", "unknown family")
    end)
  end)

  describe("interfaces", function()
    local list
    setup(function() list = assert(lookup.interfaces()) end)

    local function find(name)
      for _, i in ipairs(list) do if i.name == name then return i end end
    end

    it("lists lo and the veth pair, ordered by index", function()
      assert.is_table(find("lo"))
      assert.is_table(find("nlva"))
      assert.is_table(find("nlvb"))
      for n = 2, #list do assert.is_true(list[n - 1].index < list[n].index) end
    end)

    it("agrees with if_nameindex and if_nametoindex", function()
      local byindex = {}
      for _, e in ipairs(lookup.if_nameindex()) do byindex[e.index] = e.name end
      for _, i in ipairs(list) do
        assert.equal(i.name, byindex[i.index])
        assert.equal(i.index, lookup.if_nametoindex(i.name))
      end
    end)

    it("describes lo: flags and both loopback addresses", function()
      local lo = find("lo")
      assert.is_true(lo.flags.up)
      assert.is_true(lo.flags.loopback)
      assert.is_true(lo.flags.running)
      assert.is_true(lo.flags.multicast)  -- netns.sh turns it on
      assert.is_false(lo.flags.broadcast)
      assert.is_false(lo.flags.pointtopoint)
      local by = {}
      for _, a in ipairs(lo.addrs) do by[a.addr] = a end
      assert.same({family = "inet", addr = "127.0.0.1", netmask = "255.0.0.0",
                   prefixlen = 8}, by["127.0.0.1"])
      assert.same({family = "inet6", addr = "::1",
                   netmask = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                   prefixlen = 128}, by["::1"])
    end)

    it("describes the veth ends: their ULA addresses, MACs and flags", function()
      for name, ip in pairs {nlva = "fd6e:6c75:6100::1", nlvb = "fd6e:6c75:6100::2"} do
        local i = find(name)
        assert.is_true(i.flags.up)
        assert.is_false(i.flags.loopback)
        assert.is_true(i.flags.multicast)
        assert.is_true(i.flags.broadcast)
        assert.is_truthy(i.mac:match("^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$"), i.mac)
        local got, linklocal
        for _, a in ipairs(i.addrs) do
          assert.equal("inet6", a.family)
          if a.addr == ip then got = a end
          if a.addr:match("^fe80:") then linklocal = a end
        end
        assert.same({family = "inet6", addr = ip,
                     netmask = "ffff:ffff:ffff:ffff::", prefixlen = 64}, got)
        if linklocal then  -- link-local addresses carry their scope
          assert.equal("%" .. name, linklocal.addr:match("%%.*$"))
        end
      end
    end)
  end)

  describe("if_nametoindex and if_indextoname", function()
    it("map lo and back", function()
      local i = assert(lookup.if_nametoindex("lo"))
      assert.equal("lo", lookup.if_indextoname(i))
      local a = assert(lookup.if_nametoindex("nlva"))
      assert.equal("nlva", lookup.if_indextoname(a))
      assert.not_equal(i, a)
    end)

    it("unknown names and indexes are notfound", function()
      fails("notfound", "if_nametoindex nosuch0", lookup.if_nametoindex("nosuch0"))
      fails("notfound", "if_nametoindex", lookup.if_nametoindex(("x"):rep(40)))
      fails("notfound", "if_indextoname 99999", lookup.if_indextoname(99999))
    end)

    it("raise on bad arguments", function()
      raises(function() lookup.if_nametoindex(1) end, "#1", "string expected")
      raises(function() lookup.if_indextoname("lo") end, "#1", "number expected")
      raises(function() lookup.if_indextoname(0) end, "#1", "out of range")
      raises(function() lookup.if_indextoname(-1) end, "#1", "out of range")
      raises(function() lookup.if_indextoname(1.5) end, "#1")
    end)
  end)

  -- /etc/hosts here has no aliases or dotted names; a private mount
  -- namespace with our own hosts file shows aliases and getfqdn's choice.
  describe("with a hosts file of our own", function()
    local dir, out

    local HOSTS = table.concat({
      "127.0.0.1 localhost",
      "10.9.8.7 box box.example.test boxalias",
      "10.9.8.8 box",
      "10.9.8.9 plainhost",
      "fd00::7 box6 box6.example.test",
    }, "\n") .. "\n"

    -- runs in the child: prints key=value lines
    local CHILD = [==[
      local lookup = require "netlua.lookup"
      local function list(t) return table.concat(t, ",") end
      local function show(k, ...) print(k .. "=" .. table.concat({...}, "|")) end
      local n, al, ad = lookup.gethostbyname_ex("box")
      show("ex", n, list(al), list(ad))
      n, al, ad = lookup.gethostbyname_ex("box6", "inet6")
      show("ex6", n, list(al), list(ad))
      n, al, ad = lookup.gethostbyaddr("10.9.8.7")
      show("byaddr", n, list(al), list(ad))
      n, al, ad = lookup.gethostbyaddr("fd00::7")
      show("byaddr6", n, list(al), list(ad))
      show("byname", lookup.gethostbyname("box"))
      show("fqdn", lookup.getfqdn("box"), lookup.getfqdn("boxalias"),
           lookup.getfqdn("10.9.8.7"), lookup.getfqdn("plainhost"),
           lookup.getfqdn("box6"))
      show("nameinfo", lookup.getnameinfo("10.9.8.9", 23))
      local r = lookup.getaddrinfo("box", nil, {socktype = "stream",
                                                flags = {"canonname"}})
      local addrs = {}
      for _, a in ipairs(r) do addrs[#addrs + 1] = a.addr end
      table.sort(addrs)
      show("gai", r[1].canonname, list(addrs))
      r = lookup.getaddrinfo("box6", 7, {socktype = "dgram"})
      show("gai6", r[1].family, r[1].addr, r[1].port, r[1].protocol)
    ]==]

    setup(function()
      dir = helper.tmpdir()
      helper.write_file(dir .. "/hosts", HOSTS)
      helper.write_file(dir .. "/child.lua", CHILD)
      local root = helper.root
      local cmd = ("unshare -m sh -c %s"):format(helper.shquote(
        ("mount --bind %s /etc/hosts && exec env LUA_PATH=%s LUA_CPATH=%s " .. helper.lua .. " %s")
        :format(helper.shquote(dir .. "/hosts"),
          helper.shquote(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"),
          helper.shquote(root .. "/" .. helper.build .. "/?.so;;"),
          helper.shquote(dir .. "/child.lua"))))
      local text, ok = helper.sh(cmd)
      out = {}
      if ok then
        for k, v in text:gmatch("(%w+)=([^\n]*)") do out[k] = v end
      else
        out.error = text
      end
    end)

    teardown(function() if dir then helper.rm_rf(dir) end end)

    local function need()
      if out.error and out.error:match("unshare") then
        pending("no mount namespace here: " .. out.error)
        return false
      end
      assert.is_nil(out.error)
      return true
    end

    it("gethostbyname_ex gives aliases and every address", function()
      if not need() then return end
      assert.equal("box|box.example.test,boxalias|10.9.8.7,10.9.8.8", out.ex)
      assert.equal("box6|box6.example.test|fd00::7", out.ex6)
    end)

    it("gethostbyaddr gives the name and aliases of an address", function()
      if not need() then return end
      assert.equal("box|box.example.test,boxalias|10.9.8.7", out.byaddr)
      assert.equal("box6|box6.example.test|fd00::7", out.byaddr6)
    end)

    it("gethostbyname and getaddrinfo read the same file", function()
      if not need() then return end
      assert.equal("10.9.8.7", out.byname)
      assert.equal("box|10.9.8.7,10.9.8.8", out.gai)
      assert.equal("inet6|fd00::7|7|udp", out.gai6)
      assert.equal("plainhost|telnet", out.nameinfo)
    end)

    it("getfqdn takes the first dotted name, else the hostname", function()
      if not need() then return end
      assert.equal(table.concat({"box.example.test", "box.example.test",
        "box.example.test", "plainhost", "box6.example.test"}, "|"), out.fqdn)
    end)
  end)
end)
