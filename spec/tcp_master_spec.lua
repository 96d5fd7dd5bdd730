-- LuaSocket's unconnected TCP object: tcp.tcp() then settimeout,
-- setoption, bind, connect or listen; the non-blocking connect copas
-- does; setfd, getstats and setstats on every TCP object.
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local H = require "helper"

local function server(host)
  local srv = assert(tcp.listen(host or "127.0.0.1", 0))
  srv:settimeout(5)
  local _, port = srv:getsockname()
  return srv, port
end

-- copas.connect as copas 4 writes it: a zero timeout, then connect again
-- each time the socket is writable, "already connected" meaning done
local function copas_connect(skt, host, port)
  skt:settimeout(0)
  local tried = false
  local deadline = netlua.monotime() + 10
  repeat
    local ret, err = skt:connect(host, port)
    if ret or (err ~= "timeout" and err ~= "Operation already in progress") then
      if not ret and err == "already connected" and tried then return 1 end
      return ret, err
    end
    tried = true
    netlua.wait({skt}, 1, "w")
  until netlua.monotime() > deadline
  return nil, "copas_connect gave up"
end

describe("tcp.tcp(): the unconnected object", function()
  it("is a master until it connects, then a client (the same object)", function()
    local srv, port = server()
    local c = assert(tcp.tcp())
    assert.matches("^netlua.tcpmaster: ", tostring(c))
    assert.is_nil(c.send)            -- no reading or writing yet
    assert.equal(1, c:settimeout(5))
    assert.equal(1, c:setoption("keepalive", true))
    assert.equal(1, c:connect("127.0.0.1", port))
    assert.matches("^netlua.tcp: ", tostring(c))
    assert.is_true(c:getoption("keepalive"))
    local a = assert(srv:accept())
    assert.equal(6, c:send("hello\n"))
    assert.equal("hello", a:receive())
    a:send("back\n")
    assert.equal("back", c:read("l"))
    assert.same({"127.0.0.1", port, "inet"}, {c:getpeername()})
    assert.equal(5, c:gettimeout())
    c:close() a:close() srv:close()
  end)

  it("binds, then listens and accepts as a server", function()
    local m = assert(tcp.new())
    assert(m:setoption("reuseaddr", true))
    assert.equal(1, m:bind("127.0.0.1", 0))
    local ip, port = m:getsockname()
    assert.equal("127.0.0.1", ip)
    assert.equal(1, m:listen(8))
    assert.matches("^netlua.tcpserver: ", tostring(m))
    m:settimeout(5)
    local c = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
    local a = assert(m:accept())
    c:write("x\n")
    assert.equal("x", a:read("l"))
    c:close() a:close() m:close()
  end)

  it("binds a local address before it connects", function()
    local srv, port = server()
    local c = assert(tcp.tcp())
    c:settimeout(5)
    assert(c:bind("127.0.0.2", 0))
    assert(c:connect("127.0.0.1", port))
    local a = assert(srv:accept())
    assert.equal("127.0.0.2", (a:getpeername()))
    c:close() a:close() srv:close()
  end)

  it("takes the family of the address it meets and keeps its options", function()
    local srv, port = server("::1")
    local c = assert(tcp.tcp())
    c:settimeout(5)
    assert(c:setoption("keepalive", true))
    assert.equal("inet", c:getfamily())
    assert(c:connect("::1", port))
    assert.equal("inet6", c:getfamily())
    assert.is_true(c:getoption("keepalive"))
    local a = assert(srv:accept())
    c:close() a:close() srv:close()
    -- tcp6 stays IPv6, tcp4 IPv4: the other family is refused
    local six = assert(tcp.tcp6())
    assert.equal("inet6", six:getfamily())
    local ok, err, msg, code = six:bind("127.0.0.1", 0)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.matches("^bind ", msg)
    assert.is_string(code)
    assert(six:bind("::1", 0))
    six:close()
    local four = assert(tcp.tcp4())
    assert.is_nil((four:bind("::1", 0)))
    four:close()
  end)

  it("fails with LuaSocket's strings first, netlua's message and code after", function()
    local port = H.free_port()
    local c = assert(tcp.tcp())
    c:settimeout(5)
    local ok, err, msg, code = c:connect("127.0.0.1", port)
    assert.same({nil, "connection refused", "refused"}, {ok, err, code})
    assert.equal(("connect 127.0.0.1:%d: Connection refused"):format(port), msg)
    c:close()
    local srv, taken = server()
    local m = assert(tcp.tcp())
    ok, err, msg, code = m:bind("127.0.0.1", taken)
    assert.same({nil, "address already in use", "addrinuse"}, {ok, err, code})
    assert.matches("^bind 127.0.0.1:%d+: Address already in use$", msg)
    ok, err, msg, code = m:connect("no-such-host.invalid", 80)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.matches("^connect no%-such%-host%.invalid:80: ", msg)
    assert.equal("resolve", code)
    m:close() srv:close()
  end)

  it("raises on bad arguments and after close", function()
    local m = assert(tcp.tcp())
    assert.has_error(function() m:bind(true, 0) end)
    assert.has_error(function() m:connect("127.0.0.1", 70000) end)
    assert.has_error(function() m:listen("many") end)
    assert.has_error(function() m:setoption("no-such-option", true) end)
    m:close()
    assert.has_error(function() m:connect("127.0.0.1", 80) end, "attempt to use a closed socket")
    assert.matches("%(closed%)$", tostring(m))
  end)

  it("connects the way copas.connect does: zero timeout, then again", function()
    local srv, port = server()
    local c = assert(tcp.tcp())
    local first, ferr = c:connect("127.0.0.1", port)
    -- with no timeout set it blocks and succeeds; now the copas way
    assert.equal(1, first, ferr)
    c:close()
    assert(srv:accept()):close()
    c = assert(tcp.tcp())
    assert.equal(1, copas_connect(c, "127.0.0.1", port))
    assert.equal(0, c:gettimeout())
    local ok, err = c:connect("127.0.0.1", port)
    assert.same({nil, "already connected"}, {ok, err})
    local a = assert(srv:accept())
    assert.equal(4, c:send("abc\n"))
    assert.equal("abc", a:receive())
    a:send("def\n")
    local got, part
    local deadline = netlua.monotime() + 5
    repeat
      got, err, part = c:receive("*l", part)
      if not got then
        assert.equal("timeout", err)
        netlua.wait({c}, 1, "r")
      end
    until got or netlua.monotime() > deadline
    assert.equal("def", got)
    -- a refused non-blocking connect ends with LuaSocket's string
    local dead = H.free_port()
    local d = assert(tcp.tcp())
    local r, e = copas_connect(d, "127.0.0.1", dead)
    assert.same({nil, "connection refused"}, {r, e})
    d:close() c:close() a:close() srv:close()
  end)

  it("connects inside a task, and copas-style too", function()
    local srv, port = server()
    local results = {}
    netlua.spawn(function()
      local c = assert(tcp.tcp())
      c:settimeout(5)
      results.blocking = c:connect("localhost", port)
      c:close()
    end)
    netlua.spawn(function()
      local c = assert(tcp.tcp())
      results.copas = copas_connect(c, "127.0.0.1", port)
      c:close()
    end)
    assert(netlua.run())
    assert.same({blocking = 1, copas = 1}, results)
    srv:close()
  end)
end)

describe("setfd, getstats, setstats", function()
  local function pair()
    local srv, port = server()
    local c = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
    local a = assert(srv:accept())
    srv:close()
    return c, a
  end

  it("getstats counts bytes received and sent, and the age", function()
    local c, a = pair()
    local r0, s0 = c:getstats()
    assert.same({0, 0}, {r0, s0})
    assert(c:send("hello"))
    assert.equal("hello", a:receive(5))
    assert(a:write("abc"))
    assert.equal("abc", c:receive(3))
    local rcv, snt, age = c:getstats()
    assert.equal(3, rcv)
    assert.equal(5, snt)
    assert.is_true(age >= 0 and age < 60, tostring(age))
    assert.equal(5, (a:getstats()))
    -- setstats: counting goes on from the values given
    assert.equal(1, c:setstats(100, 200, 30))
    assert(c:send("x"))
    rcv, snt, age = c:getstats()
    assert.equal(100, rcv)
    assert.equal(201, snt)
    assert.is_true(age >= 30 and age < 90, tostring(age))
    assert.has_error(function() c:setstats("x", 0) end)
    assert.has_error(function() c:setstats(-1, 0) end)
    local m = assert(tcp.tcp())  -- every TCP object has them
    local r0, s0 = m:getstats()
    assert.same({0, 0}, {r0, s0})
    m:close() c:close() a:close()
  end)

  it("setfd(-1) lets go of the descriptor, setfd(n) adopts one", function()
    local c1, a1 = pair()
    local c2, a2 = pair()
    local fd = c1:getfd()
    c1:setfd(-1)
    assert.matches("%(closed%)$", tostring(c1))
    c1:close()  -- closes nothing: the descriptor is no longer its own
    -- c2 takes c1's descriptor and closes its own: a2 sees the end
    c2:setfd(fd)
    assert.equal(fd, c2:getfd())
    c2:settimeout(5)
    assert(c2:send("via c1's connection\n"))
    assert.equal("via c1's connection", a1:receive())
    a2:settimeout(5)
    local v, err = a2:receive()
    assert.same({nil, "closed"}, {v, err})
    assert.has_error(function() c2:setfd("x") end)
    c2:close() a1:close() a2:close()
  end)
end)
