-- Name lookups with a slow or dead resolver: a lookup inside netlua.run
-- lets the other tasks run, and a timeout bounds the lookup too.  The
-- resolver is spec/servers/dns_slow.lua on 127.0.0.1:53 of the private
-- network namespace; the probe (spec/probes/resolve.lua) runs in a mount
-- namespace of its own where /etc/resolv.conf names it.
local H = require "helper"

describe("name lookups against a slow resolver", function()
  setup(function() H.require_netns() end)

  local function probe(delay, mode)
    local pid = H.lua_server("dns_slow", delay)
    local dir = H.tmpdir()
    local conf = dir .. "/resolv.conf"
    H.write_file(conf, "nameserver 127.0.0.1\noptions timeout:3 attempts:1\n")
    local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(
      H.shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;"),
      H.shquote(H.root .. "/" .. H.build .. "/?.so;;"))
    local inner = ("mount --bind %s /etc/resolv.conf && exec env %s " .. H.lua .. " %s %s"):format(
      H.shquote(conf), env, H.shquote(H.root .. "/spec/probes/resolve.lua"), mode)
    local t0 = require("netlua").monotime()
    local out = H.sh("unshare -m --propagation private sh -c " .. H.shquote(inner))
    local took = require("netlua").monotime() - t0
    H.kill(pid)
    H.rm_rf(dir)
    local res = {}
    for key, rest in out:gmatch("(%S+) ([^\n]*)") do
      local v, secs, msg = rest:match("^(%S+) ?(%S*) ?(.*)$")
      res[key] = {v = v, secs = tonumber(secs), msg = msg}
    end
    return res, out, took
  end

  it("lets other tasks run while names are looked up", function()
    local r, out = probe("0.5", "coop")
    assert.are.equal("ok", r.connect and r.connect.v, out)
    assert.are.equal("ok", r.getaddrinfo and r.getaddrinfo.v, out)
    assert.are.equal("ok", r.gethostbyname and r.gethostbyname.v, out)
    assert.are.equal("ok", r.ftp and r.ftp.v, out)
    -- closed by another task while looking the name up: woken at once
    assert.are.equal("closed", r.ftpclose and r.ftpclose.v, out)
    assert.is_true(r.ftpclose.secs < 0.4, out)
    for _, key in ipairs {"getnameinfo", "gethostbyname_ex", "gethostbyaddr", "sendto"} do
      assert.are.equal("ok", r[key] and r[key].v, out)
      assert.is_true(r[key].secs < 1.4, key .. ": " .. out)
    end
    -- the lookups overlap: each waits ~0.5 s, not 3.5 s in a row
    assert.is_true(r.connect.secs >= 0.45 and r.connect.secs < 1.4, out)
    -- and the ticker ran all along (0.5 s at 20 ms: ~25 ticks)
    assert.is_true(tonumber(r.ticks.v) >= 15, out)
  end)

  it("bounds a lookup by the timeout, in and out of tasks", function()
    local r, out, took = probe("never", "timeout")
    for _, key in ipairs {"connect", "getaddrinfo", "getnameinfo", "sendto", "telnet", "ftp", "task-connect"} do
      assert.are.equal("timeout", r[key] and r[key].v, out)
      assert.is_true(r[key].secs >= 0.29 and r[key].secs < 1.0, key .. ": " .. out)
    end
    -- the resolver's own 3 s was not waited out: the threads left behind
    -- did not hold the script at exit either (that would end after the
    -- first dead lookup's 3 s, ~3.2 s in; the seven 0.3 s timeouts and
    -- the start take ~2.3 s under ASan)
    assert.is_true(took < 2.9, out)
    assert.matches("name lookup", r.connect.msg)
    -- helper threads were still waiting then, each with signals blocked
    local helpers = tonumber(r.threads.v)
    assert.is_true(helpers >= 1, out)
    assert.are.equal(helpers, r.threads.secs, out)
  end)

  it("still resolves by the plain call outside tasks without a timeout", function()
    local r, out = probe("0.2", "block")
    assert.are.equal("127.0.0.1", r.getaddrinfo and r.getaddrinfo.v, out)
    assert.is_true(r.getaddrinfo.secs >= 0.19, out)
  end)

  it("runs queued lookups in order, one resolver thread at a time", function()
    local r, out = probe("0.2", "order")
    assert.are.equal("32", r.max and r.max.v, out)  -- the default
    assert.are.equal("1,2,3,4", r.order and r.order.v, out)
  end)

  it("drops queued lookups whose caller timed out or was closed", function()
    local r, out = probe("never", "cancel")
    for i = 1, 5 do
      local key = "dead" .. i
      assert.are.equal("timeout", r[key] and r[key].v, out)
      -- queued behind a lookup that holds the only thread for 3 s, each
      -- still ends at its own 0.3 s timeout
      assert.is_true(r[key].secs < 1.5, key .. ": " .. out)
    end
    assert.are.equal("closed", r.ftpclose and r.ftpclose.v, out)
    assert.is_true(r.ftpclose.secs < 1.5, out)
    -- the first dead lookup frees the thread after ~3 s; six abandoned
    -- lookups run first would take 3 s each more
    assert.are.equal("ok", r.after and r.after.v, out)
    assert.is_true(r.after.secs < 9, out)
  end)
end)
