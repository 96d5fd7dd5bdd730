-- Lookups asking the same question at once share one getaddrinfo: a fleet
-- opening many sessions to one host name makes one lookup, not one per
-- session.  Each asker still gets its own answer (its own copy), questions
-- that differ in name, service or hints are never joined, and a lookup
-- whose asker gave up still runs for those that joined it.
local netlua = require "netlua"
local lookup = require "netlua.lookup"
local tcp = require "netlua.tcp"
local core = require "netlua.core"

local function stats()
  local ran, joined = core.resolve_stats()
  return {ran = ran, joined = joined}
end

describe("lookups that ask the same at once", function()
  local threads
  before_each(function() threads = lookup.resolver_threads(1) end)
  after_each(function()
    core.resolve_hold(false)
    lookup.resolver_threads(threads)
  end)

  -- holding the pool keeps the lookups queued until `release` runs, so
  -- what joins what does not depend on the machine's speed
  local function release_after(s)
    netlua.spawn(function()
      netlua.sleep(s)
      core.resolve_hold(false)
    end)
  end

  it("share one getaddrinfo, and each task gets the whole answer", function()
    local n, ok, before = 300, 0, stats()
    core.resolve_hold(true)
    for _ = 1, n do
      netlua.spawn(function()
        local r = assert(lookup.getaddrinfo("localhost", "ftp", {socktype = "stream"}))
        if #r >= 1 and r[1].port == 21 then ok = ok + 1 end
      end)
    end
    release_after(0.05)
    assert(netlua.run())
    local after = stats()
    assert.equal(n, ok)
    assert.equal(1, after.ran - before.ran)
    assert.equal(n - 1, after.joined - before.joined)
  end)

  it("never join questions that differ in service or hints", function()
    local wrong, done = {}, 0
    local asks = {
      {"ftp", {socktype = "stream"}, 21, nil},
      {"http", {socktype = "stream"}, 80, nil},
      {"ftp", {socktype = "stream", family = "inet"}, 21, "inet"},
      {"ftp", {socktype = "stream", family = "inet6"}, 21, "inet6"},
    }
    -- all queued at once, so that the same questions do join
    core.resolve_hold(true)
    release_after(0.05)
    for i = 1, 200 do
      local a = asks[i % #asks + 1]
      netlua.spawn(function()
        local r = lookup.getaddrinfo("localhost", a[1], a[2])
        done = done + 1
        if not r then return end  -- no ::1 for localhost here: fine
        for _, e in ipairs(r) do
          if e.port ~= a[3] or (a[4] and e.family ~= a[4]) then
            wrong[#wrong + 1] = ("%s %s: got %s port %s"):format(a[1], tostring(a[4]), e.family, e.port)
          end
        end
      end)
    end
    assert(netlua.run())
    assert.equal(200, done)
    assert.same({}, wrong)
  end)

  it("run a lookup whose asker timed out, for the one that joined it", function()
    local before = stats()
    local a, b = {}, {}
    core.resolve_hold(true)
    netlua.spawn(function()
      a.r, a.msg, a.code = lookup.getaddrinfo("localhost", "ftp", {timeout = 0.05})
    end)
    netlua.spawn(function()
      b.r, b.msg, b.code = lookup.getaddrinfo("localhost", "ftp", {timeout = 10})
    end)
    release_after(0.2)  -- A's deadline passed while it was queued
    assert(netlua.run())
    assert.is_nil(a.r)
    assert.equal("timeout", a.code)
    assert.is_table(b.r, tostring(b.msg))
    assert.equal(21, b.r[1].port)
    assert.equal(1, stats().joined - before.joined)
    assert.equal(1, stats().ran - before.ran)
  end)

  it("connects many tasks by one name, each to its own copy of the addresses", function()
    local srv = assert(tcp.listen("127.0.0.1", 0))
    local _, port = srv:getsockname()
    local n, ok = 100, 0
    netlua.spawn(function()
      for _ = 1, n do
        local c = assert(srv:accept())
        c:close()
      end
    end)
    for _ = 1, n do
      netlua.spawn(function()
        local c = assert(tcp.connect("localhost", port, {family = "inet", timeout = 10}))
        ok = ok + 1
        c:close()
      end)
    end
    assert(netlua.run())
    srv:close()
    assert.equal(n, ok)
  end)
end)
