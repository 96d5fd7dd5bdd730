-- LuaSocket itself as the reference: the same script, run once on a
-- LuaSocket object and once on a netlua one, must see the same values
-- where LuaSocket code looks (the bare error strings, the partial data,
-- the non-blocking connect sequence, the byte counters).
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local udp = require "netlua.udp"
local H = require "helper"

local ok_ls, socket = pcall(require, "socket")

local libs = {
  luasocket = ok_ls and {
    tcp = function() return assert(socket.tcp()) end,
    udp = function() return assert(socket.udp()) end,
    writable = function(s) socket.select(nil, {s}, 2) end,
  } or nil,
  netlua = {
    tcp = function() return assert(tcp.tcp()) end,
    udp = function() return assert(udp.socket()) end,
    writable = function(s) netlua.wait({s}, 2, "w") end,
  },
}

-- a netlua listener on a free port; returns it and the port
local function listener()
  local srv = assert(tcp.listen("127.0.0.1", 0))
  srv:settimeout(5)
  local _, port = srv:getsockname()
  return srv, port
end

-- a connected pair: lib's client, netlua's accepted end
local function pair(lib)
  local srv, port = listener()
  local c = lib.tcp()
  c:settimeout(5)
  assert(c:connect("127.0.0.1", port))
  local a = assert(srv:accept())
  srv:close()
  return c, a
end

local scenarios = {
  ["connect refused"] = function(lib)
    local c = lib.tcp()
    c:settimeout(2)
    local r = {c:connect("127.0.0.1", H.free_port())}
    c:close()
    return {r[1], r[2]}
  end,
  ["bind to a port in use"] = function(lib)
    local srv, port = listener()
    local m = lib.tcp()
    local r = {m:bind("127.0.0.1", port)}
    m:close() srv:close()
    return {r[1], r[2]}
  end,
  ["accept timeout"] = function(lib)
    local m = lib.tcp()
    assert(m:bind("127.0.0.1", 0))
    assert(m:listen())
    m:settimeout(0.1)
    local r = {m:accept()}
    m:close()
    return {r[1], r[2]}
  end,
  ["receive timeout keeps the partial line"] = function(lib)
    local c, a = pair(lib)
    a:write("par")
    c:settimeout(0.3)
    local r = {c:receive("*l")}
    c:close() a:close()
    return {r[1], r[2], r[3]}
  end,
  ["receive at end of stream"] = function(lib)
    local c, a = pair(lib)
    a:write("end")
    a:close()
    local r = {c:receive("*l")}
    local r2 = {c:receive(10)}
    c:close()
    return {r[1], r[2], r[3], r2[1], r2[2], r2[3]}
  end,
  ["receive after a reset"] = function(lib)
    local c, a = pair(lib)
    c:send("unread")
    netlua.sleep(0.05)
    assert(a:setoption("linger", {on = true, timeout = 0}))
    a:close()
    netlua.sleep(0.05)
    local r = {c:receive("*a")}
    c:close()
    return {r[1], r[2], r[3]}
  end,
  ["send to a peer that is gone"] = function(lib)
    local c, a = pair(lib)
    a:close()
    local r
    for _ = 1, 200 do
      r = {c:send(("z"):rep(65536))}
      if not r[1] then break end
      netlua.sleep(0.01)
    end
    c:close()
    return {r[1], r[2]}
  end,
  ["non-blocking connect, as copas does it"] = function(lib)
    local srv, port = listener()
    local c = lib.tcp()
    c:settimeout(0)
    local r1 = {c:connect("127.0.0.1", port)}
    lib.writable(c)
    netlua.sleep(0.05)
    local r2 = {c:connect("127.0.0.1", port)}
    local r3 = {c:connect("127.0.0.1", port)}
    c:close() srv:close()
    return {r1[1], r1[2], r2[1], r2[2], r3[1], r3[2]}
  end,
  ["byte counters"] = function(lib)
    local c, a = pair(lib)
    assert(c:send("hello"))
    assert.equal("hello", a:receive(5))
    a:write("abc")
    assert.equal("abc", c:receive(3))
    local rcv, snt, age = c:getstats()
    c:close() a:close()
    return {rcv, snt, type(age)}
  end,
  ["UDP receive and receivefrom timeout"] = function(lib)
    local u = lib.udp()
    assert(u:setsockname("127.0.0.1", 0))
    u:settimeout(0.1)
    local r1 = {u:receive()}
    local r2 = {u:receivefrom()}
    u:close()
    return {r1[1], r1[2], r2[1], r2[2]}
  end,
  ["UDP bind to a port in use"] = function(lib)
    local taken = assert(udp.socket())
    assert(taken:bind("127.0.0.1", 0))
    local _, port = taken:getsockname()
    local u = lib.udp()
    local r = {u:setsockname("127.0.0.1", port)}
    u:close() taken:close()
    return {r[1], r[2]}
  end,
}

-- what LuaSocket answers, so that a test comparing two wrong answers
-- cannot pass
local expected = {
  ["connect refused"] = {nil, "connection refused"},
  ["bind to a port in use"] = {nil, "address already in use"},
  ["accept timeout"] = {nil, "timeout"},
  ["receive timeout keeps the partial line"] = {nil, "timeout", "par"},
  ["receive at end of stream"] = {nil, "closed", "end", nil, "closed", ""},
  ["receive after a reset"] = {nil, "closed", ""},
  ["send to a peer that is gone"] = {nil, "closed"},
  ["non-blocking connect, as copas does it"] = {nil, "timeout", 1, nil, nil, "already connected"},
  ["byte counters"] = {3, 5, "number"},
  ["UDP receive and receivefrom timeout"] = {nil, "timeout", nil, "timeout"},
  ["UDP bind to a port in use"] = {nil, "address already in use"},
}

describe("LuaSocket's answers", function()
  for name, run in pairs(scenarios) do
    it(name, function()
      if not libs.luasocket then
        pending("LuaSocket (lua-socket) is not installed for Lua 5.4")
        return
      end
      local want = run(libs.luasocket)
      assert.same(expected[name], want, "LuaSocket itself answered otherwise")
      assert.same(want, run(libs.netlua))
    end)
  end
end)
