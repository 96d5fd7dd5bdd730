-- netlua.tcp: connect/listen/accept, io-style reads, LuaSocket-style
-- receive/send, makefile, timeouts and peers that go away.
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local H = require "helper"

local MARGIN = 0.5 -- seconds a bounded wait may overrun its timeout

-- a connected pair on loopback: client, server-side socket, listener
local function pair(host, opts)
  host = host or "127.0.0.1"
  local srv = assert(tcp.listen(host, 0))
  local _, port = srv:getsockname()
  local c = assert(tcp.connect(host, port, opts or {timeout = 2}))
  local a = assert(srv:accept(2))
  return c, a, srv
end

describe("netlua.tcp", function()
  describe("connect / listen / accept", function()
    it("connects over IPv4 and reports both ends", function()
      local c, a, srv = pair("127.0.0.1")
      local sip, sport, fam = srv:getsockname()
      assert.equal("127.0.0.1", sip)
      assert.equal("inet", fam)
      local pip, pport = c:getpeername()
      assert.equal("127.0.0.1", pip)
      assert.equal(sport, pport)
      local lip, lport = c:getsockname()
      local rip, rport = a:getpeername()
      assert.equal(lip, rip)
      assert.equal(lport, rport)
      assert.equal("inet", c:getfamily())
      c:close() a:close() srv:close()
    end)

    it("connects over IPv6", function()
      local c, a, srv = pair("::1")
      assert.equal("::1", (c:getpeername()))
      assert.equal("inet6", select(3, c:getsockname()))
      assert.truthy(c:write("six\n"))
      assert.equal("six", a:read("l"))
      c:close() a:close() srv:close()
    end)

    it("resolves localhost and service names", function()
      local srv = assert(tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c = assert(tcp.connect("localhost", tostring(port), {timeout = 2, family = "inet"}))
      assert.truthy(srv:accept(1))
      c:close() srv:close()
    end)

    it("leaves a socket used only in tasks non-blocking; a read outside one waits in recv", function()
      -- O_NONBLOCK as /proc shows it: a fleet's sockets make no fcntl
      -- calls; the first read that waits outside a task turns the
      -- descriptor blocking (a recv under SO_RCVTIMEO, its fast path)
      local function nonblocking(sock)
        local f = io.open("/proc/self/fdinfo/" .. sock:fileno())
        local flags = tonumber(f:read("*a"):match("flags:%s*(%d+)"), 8)
        f:close()
        return math.floor(flags / 2048) % 2 == 1  -- O_NONBLOCK, 04000
      end
      local srv = assert(tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c, a
      assert(netlua.run(function()
        netlua.spawn(function() a = assert(srv:accept(2)) a:write("one\n") end)
        c = assert(tcp.connect("127.0.0.1", port, {timeout = 2}))
        assert.equal("one", c:read("l"))
      end))
      assert.is_true(nonblocking(c))
      -- outside a task: nothing there yet, so the read waits (and times out)
      c:settimeout(0.05)
      local r, _, code = c:read("l")
      assert.is_nil(r)
      assert.equal("timeout", code)
      assert.is_false(nonblocking(c))
      a:write("two\n")
      c:settimeout(2)
      assert.equal("two", c:read("l"))
      c:close() a:close() srv:close()
    end)

    it("binds the local end when asked", function()
      local srv = assert(tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local c = assert(tcp.connect("127.0.0.1", port, {bind = "127.0.0.2", timeout = 2}))
      assert.equal("127.0.0.2", (c:getsockname()))
      c:close() srv:close()
    end)

    it("returns nil, msg, 'refused' for a closed port", function()
      local port = H.free_port()
      local s, msg, code = tcp.connect("127.0.0.1", port, {timeout = 2})
      assert.is_nil(s)
      assert.equal("refused", code)
      assert.matches("connect 127.0.0.1:" .. port, msg, 1, true)
    end)

    it("returns nil, msg, 'resolve' for a name that cannot resolve", function()
      local t, s, msg, code = H.timed(tcp.connect, "no-such-host.invalid", 80, {timeout = 2})
      assert.is_nil(s)
      assert.equal("resolve", code)
      assert.matches("no%-such%-host%.invalid", msg)
      assert.is_true(t < 10)
    end)

    it("returns nil, msg, 'resolve' for an unknown service name", function()
      local s, msg, code = tcp.connect("127.0.0.1", "no-such-service", {timeout = 2})
      assert.is_nil(s)
      assert.equal("resolve", code)
      assert.matches("no%-such%-service", msg)
    end)

    it("reports a port already in use", function()
      local srv = assert(tcp.listen("127.0.0.1", 0, {reuse = false}))
      local _, port = srv:getsockname()
      local s2, msg, code = tcp.listen("127.0.0.1", port, {reuse = false})
      assert.is_nil(s2)
      assert.equal("addrinuse", code)
      assert.matches("listen 127.0.0.1:" .. port, msg, 1, true)
      srv:close()
    end)

    it("accept times out within its bound", function()
      local srv = assert(tcp.listen("127.0.0.1", 0))
      local t, s, err, msg, code = H.timed(srv.accept, srv, 0.2)
      assert.is_nil(s)
      assert.equal("timeout", err)  -- LuaSocket's bare string
      assert.equal("accept: timeout", msg)
      assert.equal("timeout", code)
      assert.is_true(t >= 0.19 and t < 0.2 + MARGIN, tostring(t))
      srv:settimeout(0.1)
      t, s, err = H.timed(srv.accept, srv)
      assert.equal("timeout", err)
      assert.is_true(t < 0.1 + MARGIN)
      srv:close()
    end)

    it("raises on bad arguments, naming them", function()
      assert.has_error(function() tcp.connect(nil, 80) end,
        "bad argument #1 to 'connect' (string expected, got nil)")
      assert.has_error(function() tcp.connect("127.0.0.1", 70000) end,
        "bad argument #2 to 'connect' (port out of range 0..65535)")
      assert.has_error(function() tcp.connect("127.0.0.1", -1) end,
        "bad argument #2 to 'connect' (port out of range 0..65535)")
      assert.has_error(function() tcp.connect("127.0.0.1", 1.5) end,
        "bad argument #2 to 'connect' (port must be an integer)")
      assert.has_error(function() tcp.connect("127.0.0.1", {}) end,
        "bad argument #2 to 'connect' (number expected, got table)")
      assert.has_error(function() tcp.connect("127.0.0.1", 80, 5) end,
        "bad argument #3 to 'connect' (table expected, got number)")
      assert.has_error(function() tcp.connect("127.0.0.1", 80, {family = "ipx"}) end)
      assert.has_error(function() tcp.connect("127.0.0.1", 80, {timeout = "soon"}) end)
      assert.has_error(function() tcp.listen("127.0.0.1", 65536) end,
        "bad argument #2 to 'listen' (port out of range 0..65535)")
      assert.has_error(function() tcp.listen("127.0.0.1", 0, {backlog = 0}) end)
    end)
  end)

  describe("reading", function()
    local c, a, srv
    before_each(function() c, a, srv = pair() end)
    after_each(function() c:close() a:close() srv:close() end)

    it("reads io formats with and without '*'", function()
      assert.equal(c, c:write("one\r\ntwo\nthree 42 0x10\nrest", "!", 7))
      c:shutdown("send")
      assert.equal("one", a:read("l"))
      assert.equal("two\n", a:read("*L"))
      assert.equal("three", a:read(5))
      assert.same({42, 16}, {a:read("n", "*n")})
      assert.equal("\nrest!7", a:read("a"))
      assert.equal("", a:read("a")) -- io: "a" at EOF is ""
    end)

    it("reads several formats in one call", function()
      c:write("a\nb\ncd")
      c:shutdown("send")
      assert.same({"a", "b\n", "cd"}, {a:read("l", "L", 2)})
    end)

    it("returns nil, msg, 'closed' at end of stream", function()
      c:write("last line without newline")
      c:close()
      assert.equal("last line without newline", a:read("l"))
      local v, msg, code = a:read("l")
      assert.is_nil(v)
      assert.equal("read: closed by peer", msg)
      assert.equal("closed", code)
      v, msg, code = a:read(4)
      assert.is_nil(v)
      assert.equal("closed", code)
    end)

    it("returns a short count when the peer closes mid-read", function()
      c:write("abc")
      c:close()
      assert.equal("abc", a:read(10))
    end)

    it("times out within the bound and keeps what arrived", function()
      c:write("partial")
      a:settimeout(0.2)
      local t, v, msg, code = H.timed(a.read, a, "l")
      assert.is_nil(v)
      assert.equal("timeout", code)
      assert.equal("read: timeout", msg)
      assert.is_true(t >= 0.19 and t < 0.2 + MARGIN, tostring(t))
      c:write(" line\n")
      assert.equal("partial line", a:read("l"))
    end)

    it("the deadline covers the whole call, not each recv", function()
      -- a byte every 0.1 s would reset a per-recv timeout forever
      local port = H.free_port()
      local pid = H.lua_server("drip", port, 30, 0.1)
      local s = assert(tcp.connect("127.0.0.1", port, {timeout = 0.3}))
      local t, v, _, code = H.timed(s.read, s, 100)
      s:close()
      H.kill(pid)
      assert.is_nil(v)
      assert.equal("timeout", code)
      assert.is_true(t >= 0.29 and t < 0.3 + MARGIN, tostring(t))
    end)

    -- outside a task a read waits in recv() under SO_RCVTIMEO, kept from
    -- call to call: a shorter or longer timeout must still hold exactly
    it("gives each call its own timeout, shorter or longer than the last", function()
      a:settimeout(2)
      assert(c:write("x"))
      assert.equal("x", a:read(1))
      for _, limit in ipairs {0.05, 0.4, 0.02} do
        a:settimeout(limit)
        local t, data, _, code = H.timed(a.read, a, 1)
        assert.is_nil(data)
        assert.equal("timeout", code)
        assert.is_true(t >= limit * 0.95 and t < limit + MARGIN, limit .. ": " .. t)
      end
    end)

    it("recv gives whatever has arrived, up to max, as Python's recv does", function()
      c:write("hello")
      a:settimeout(1)
      local t, v = H.timed(a.recv, a)
      assert.equal("hello", v)
      assert.is_true(t < 0.5, tostring(t))  -- did not wait for more
      c:write("world")
      assert.equal("wor", a:recv(3))
      assert.equal("ld", a:recv(10))  -- the rest of the buffer, no wait
      a:settimeout(0.1)
      local _, msg, code = a:recv()
      assert.equal("timeout", code)
      assert.equal("recv: timeout", msg)
      c:write("x")
      c:close()
      assert.equal("x", a:recv())
      _, msg, code = a:recv()
      assert.equal("closed", code)
      assert.equal("recv: closed by peer", msg)
      assert.has_error(function() a:recv(0) end, "bad argument #1 to 'recv' (size must be at least 1)")
      assert.has_error(function() a:recv("x") end)
    end)

    it("iterates lines, ending quietly at end of stream", function()
      c:write("l1\nl2\r\nl3")
      c:close()
      local got = {}
      for l in a:lines() do got[#got + 1] = l end
      assert.same({"l1", "l2", "l3"}, got)
    end)

    it("lines raises on a timeout, as io.lines does on errors", function()
      a:settimeout(0.05)
      assert.has_error(function() for _ in a:lines() do end end, "lines: timeout")
    end)

    it("reads a long line that arrives in pieces", function()
      local piece = string.rep("x", 65536)
      a:settimeout(0.01)
      for _ = 1, 5 do
        c:write(piece)
        assert.equal("timeout", select(3, a:read("l")))
      end
      c:write("\n")
      a:settimeout(1)
      assert.equal(5 * 65536, #a:read("l"))
    end)

    it("a buffer limit gives nil, msg, 'limit' and keeps the data", function()
      a:setlimit(1000)
      c:write(string.rep("y", 5000))
      a:settimeout(1)
      local v, _, code = a:read("l")
      assert.is_nil(v)
      assert.equal("limit", code)
      assert.equal(string.rep("y", 5000), a:read(5000))
    end)

    it("raises on bad formats and closed sockets", function()
      assert.has_error(function() a:read("x") end, "bad argument #1 to 'read' (invalid format)")
      assert.has_error(function() a:read(-1) end)
      assert.has_error(function() a:read({}) end)
      a:close()
      assert.has_error(function() a:read("l") end, "attempt to use a closed socket")
    end)
  end)

  describe("LuaSocket-style receive and send", function()
    local c, a, srv
    before_each(function() c, a, srv = pair() end)
    after_each(function() c:close() a:close() srv:close() end)

    it("receives lines, counts and all, with a prefix", function()
      assert.equal(13, c:send("hello\nworld\r\n"))
      assert.equal("hello", a:receive())
      assert.equal(">world", a:receive("*l", ">"))
      c:send("abcdef")
      assert.equal("abc", a:receive(3))
      c:close()
      assert.equal("def", a:receive("*a"))
    end)

    it("hands over partial data on close and timeout", function()
      c:send("no newline")
      c:close()
      local v, err, partial = a:receive("*l")
      assert.is_nil(v)
      assert.equal("closed", err)
      assert.equal("no newline", partial)
    end)

    it("receive times out with the partial data", function()
      c:send("half")
      a:settimeout(0.1)
      local v, err, partial = a:receive(10)
      assert.is_nil(v)
      assert.equal("timeout", err)
      assert.equal("half", partial)
    end)

    -- copas-style loops poll with timeout 0; the descriptor itself is
    -- blocking (reads outside tasks wait in recv), so 0 must still mean
    -- "one look, no wait" for reads and writes alike
    it("settimeout(0) never waits: one look, partial data and 'timeout'", function()
      a:settimeout(0)
      local t, v, err, partial = H.timed(a.receive, a, "*l")
      assert.same({nil, "timeout", ""}, {v, err, partial})
      assert.is_true(t < 0.05, tostring(t))
      c:send("half")
      local deadline = netlua.monotime() + 2
      repeat v, err, partial = a:receive("*l") until partial ~= "" or netlua.monotime() > deadline
      assert.same({nil, "timeout", "half"}, {v, err, partial})
      c:send(" line\n")  -- the partial goes back in as the prefix, as copas does
      local got = partial
      repeat
        v, err, partial = a:receive("*l", got)
        got = partial or got
      until v or netlua.monotime() > deadline
      assert.equal("half line", v)
      -- a write that cannot go out at once sends what fits and says so
      a:settimeout(0)
      local big = ("x"):rep(64 * 1024 * 1024)
      t, v, err, partial = H.timed(a.send, a, big)
      assert.is_nil(v)
      assert.equal("timeout", err)
      assert.is_true(partial > 0 and partial < #big, tostring(partial))
      assert.is_true(t < 1, tostring(t))
    end)

    it("send returns the index of the last byte sent, honouring i and j", function()
      assert.equal(5, c:send("hello"))
      assert.equal(4, c:send("0123456789", 2, 4))
      assert.equal(10, c:send("0123456789", -3))
      assert.equal("hello123789", a:receive(11))
    end)

    it("send to a vanished peer fails with 'closed'", function()
      a:close()
      local last, err
      for _ = 1, 100 do
        last, err = c:send(string.rep("z", 65536))
        if not last then break end
        netlua.sleep(0.01)
      end
      assert.is_nil(last)
      assert.equal("closed", err)
    end)

    it("receive from a peer that reset the connection fails with LuaSocket's 'closed'", function()
      c:send("part")
      assert(a:setoption("linger", {on = true, timeout = 0}))
      assert.equal("pa", a:receive(2))
      a:close()  -- linger 0: a reset, not an orderly end
      netlua.sleep(0.05)
      c:settimeout(2)
      local v, err, partial = c:receive("*a")
      assert.is_nil(v)
      assert.equal("closed", err)
      assert.equal("", partial)
    end)

    it("settimeout returns 1 and gettimeout reports it", function()
      assert.equal(1, c:settimeout(2.5))
      assert.equal(2.5, c:gettimeout())
      c:settimeout(nil)
      assert.is_nil(c:gettimeout())
      c:settimeout(-1)
      assert.is_nil(c:gettimeout())
      assert.has_error(function() c:settimeout("x") end)
      assert.has_error(function() c:settimeout(0/0) end)
    end)

    it("supports options", function()
      assert.equal(1, c:setoption("keepalive", true))
      assert.is_true(c:getoption("keepalive"))
      assert.is_true(c:getoption("tcp-nodelay"))
      assert.has_error(function() c:setoption("bogus", 1) end)
      -- LuaSocket's linger table
      assert.same({on = false, timeout = 0}, c:getoption("linger"))
      assert.equal(1, c:setoption("linger", {on = true, timeout = 3}))
      assert.same({on = true, timeout = 3}, c:getoption("linger"))
      assert.has_error(function() c:setoption("linger", true) end)
      assert.has_error(function() c:setoption("linger", {on = true, timeout = 1.5}) end)
    end)
  end)

  describe("object conventions", function()
    it("closes idempotently, prints its state, has a descriptor", function()
      local c, a, srv = pair()
      assert.matches("^netlua%.tcp: 0x%x+$", tostring(c))
      assert.is_true(c:fileno() >= 0)
      assert.equal(c:fileno(), c:getfd())
      assert.is_true(c:close())
      assert.is_true(c:close())
      assert.matches("^netlua%.tcp: 0x%x+ %(closed%)$", tostring(c))
      assert.matches("^netlua%.tcpserver: ", tostring(srv))
      assert.has_error(function() c:fileno() end, "attempt to use a closed socket")
      a:close() srv:close()
    end)

    it("closes at the end of a <close> scope", function()
      if not H.close_scope then return pending("to-be-closed variables need Lua 5.4") end
      local srv = assert(tcp.listen("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local keep = assert(tcp.connect("127.0.0.1", port))
      H.close_scope(keep)
      assert.matches("%(closed%)", tostring(keep))
      srv:close()
    end)

    it("methods reject objects of another kind", function()
      local c, a, srv = pair()
      assert.has_error(function() c.read(srv, "l") end)
      assert.has_error(function() c.read({}, "l") end)
      c:close() a:close() srv:close()
    end)
  end)

  describe("makefile", function()
    local c, a, srv
    before_each(function() c, a, srv = pair() end)
    after_each(function() c:close() a:close() srv:close() end)

    it("reads like a file", function()
      c:write("alpha\nbeta\n")
      c:shutdown("send")
      local f = a:makefile("r")
      assert.equal("alpha", f:read("l"))
      local rest = {}
      for l in f:lines() do rest[#rest + 1] = l end
      assert.same({"beta"}, rest)
      assert.is_true(f:close())
    end)

    it("buffers writes until flush or close", function()
      local f = c:makefile("w")
      assert.equal(f, f:write("one ", 2, "\n"))
      a:settimeout(0.05)
      assert.equal("timeout", select(3, a:read("l")))
      assert.equal(f, f:flush())
      a:settimeout(1)
      assert.equal("one 2", a:read("l"))
      f:write("tail\n")
      f:close()
      assert.equal("tail", a:read("l"))
      assert.has_error(function() f:write("x") end, "attempt to use a closed file")
      -- the socket outlives the file object
      assert.truthy(c:write("still\n"))
      assert.equal("still", a:read("l"))
    end)

    it("line buffering flushes at newlines", function()
      local f = c:makefile("w", {buffering = "line"})
      f:write("now\n")
      a:settimeout(1)
      assert.equal("now", a:read("l"))
    end)

    it("respects its mode and closes the socket when asked", function()
      local r = a:makefile("r")
      assert.equal("mode", select(3, r:write("x")))
      local w = c:makefile("w", {close = true})
      assert.equal("mode", select(3, w:read("l")))
      w:write("bye\n")
      w:close()
      assert.matches("%(closed%)", tostring(c))
      assert.equal("bye", a:read("l"))
      assert.has_error(function() a:makefile("q") end)
      assert.has_error(function() a:makefile("r", 3) end)
    end)
  end)
end)
