-- The tour `make demo` runs (examples/tour.lua and its parts) must run
-- to its end: a part that fails prints "!! ..." and the tour exits
-- non-zero, and then this spec fails with what it printed.
local H = require "helper"

describe("the tour of make demo", function()
  it("runs every part to its end", function()
    local out, ok = H.sh(("cd %s && LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' "
      .. "LUA_CPATH='%s/?.so;;' " .. H.lua .. " examples/tour.lua 2>&1"):format(H.shquote(H.root), H.build))
    assert.is_nil(out:find("\n!!"), out)
    assert.is_true(ok, out)
  end)
end)
