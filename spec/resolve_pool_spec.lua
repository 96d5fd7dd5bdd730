-- Name lookups at fleet scale: many lookups at once hold a bounded number
-- of threads and descriptors, each task gets its own answer, and running
-- out of descriptors is reported as that.  The probe
-- (spec/probes/resolve_pool.lua) runs in a child with a low descriptor
-- limit, so "at scale" needs only a thousand lookups here.
local H = require "helper"

local function probe(limit, mode, n)
  local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(
    H.shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;"),
    H.shquote(H.root .. "/" .. H.build .. "/?.so;;"))
  local inner = ("ulimit -n %d && exec env %s " .. H.lua .. " %s %s %s"):format(
    limit, env, H.shquote(H.root .. "/spec/probes/resolve_pool.lua"), mode, n or "")
  local out = H.sh("sh -c " .. H.shquote(inner))
  local res = {}
  for key, rest in out:gmatch("(%S+) ([^\n]*)") do res[key] = rest end
  return res, out
end

describe("name lookups at fleet scale", function()
  it("answers 1000 lookups at once under a limit of 256 descriptors", function()
    -- a helper thread and a pipe per lookup ran out of descriptors here,
    -- and then the C library could not read /etc/services
    local r, out = probe(256, "fleet", 1000)
    assert.are.equal("1000", r.ok, out)
    assert.are.equal("none", r.first, out)
  end)

  it("gives each task the answer to its own question, from a few threads", function()
    local r, out = probe(256, "many", 1000)
    assert.are.equal("1000", r.ok, out)
    assert.are.equal("0", r.wrong, out)
    -- the resolver threads are a small pool, not one per lookup
    local threads = tonumber(r.threads)
    assert.is_true(threads ~= nil and threads <= 1 + 32, out)
  end)

  it("says so when no descriptor is left, and works again after", function()
    local r, out = probe(64, "exhausted")
    for _, key in ipairs {"plain", "deadline", "connect", "task", "taskconnect"} do
      assert.is_not_nil(r[key], key .. ": " .. out)
      local code, msg = r[key]:match("^(%S+) (.*)$")
      assert.are.equal("limit", code, key .. ": " .. out)
      assert.matches("Too many open files", msg, 1, true)
      assert.not_matches("Servname", msg, 1, true)
    end
    assert.matches("^ok", r.after, out)
    assert.matches("^ok", r.taskafter, out)
  end)
end)
