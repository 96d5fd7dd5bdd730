local netlua = require "netlua"

describe("netlua", function()
  it("loads every part as a field", function()
    for _, k in ipairs {"lookup", "tcp", "multicast", "ftp", "telnet"} do
      assert.is_table(netlua[k], k)
      assert.equal(require("netlua." .. k), netlua[k])
    end
    assert.is_string(netlua.version)
  end)

  it("monotime moves forward and sleep waits", function()
    local t0 = netlua.monotime()
    netlua.sleep(0.05)
    local dt = netlua.monotime() - t0
    assert.is_true(dt >= 0.05 and dt < 1, tostring(dt))
  end)

  it("sleep rejects bad input", function()
    assert.has_error(function() netlua.sleep("x") end)
    assert.has_error(function() netlua.sleep(0/0) end)
  end)
end)
