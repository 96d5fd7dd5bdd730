-- Memory per Telnet session: buffers grow on demand and shrink back, so a
-- fleet of thousands of sessions fits where Python's asyncio does
-- (bench/fleet.lua measures the real thing).  The peer is the router-like
-- spec/servers/router.lua; `_memory()` is the bytes of C memory a session
-- holds (its struct, buffers and engine allocations).
local H = require "helper"
local telnet = require "netlua.telnet"

describe("telnet session memory", function()
  local port, pid
  setup(function()
    port = H.free_port()
    pid = H.lua_server("router", port, 0)
  end)
  teardown(function() H.kill(pid) end)

  local function login()
    local tn = assert(telnet.open("127.0.0.1", port, {timeout = 10}))
    assert(tn:login{user = "admin", password = "pw", prompt = "r%d+> $"})
    return tn
  end

  it("holds a few hundred bytes of buffers once logged in", function()
    local tn = login()
    -- the struct with its engine, an input and an output buffer: no
    -- 128 KiB receive block, no 8 KiB of engine arrays
    assert.is_true(tn:_memory() <= 2048, "holds " .. tn:_memory())
    assert(tn:cmd("show version"))
    assert.is_true(tn:_memory() <= 2048, "holds " .. tn:_memory())
    tn:close()
  end)

  it("grows for a large read and gives the memory back after it", function()
    local tn = login()
    local big = ("x"):rep(1000000)
    assert(tn:write("echo " .. big .. "\n"))
    -- the echo of the command, then its output, then the prompt
    local echo = assert(tn:read_until(big .. "\r\n"))
    local out = assert(tn:read_until(big .. "\r\n"))
    assert.are.equal(#big + 2, #out)
    assert.is_true(#echo >= #big)
    assert(tn:expect({"r%d+> $"}, 10))
    assert.is_true(tn:_memory() <= 4096, "holds " .. tn:_memory())
    tn:close()
  end)

  it("keeps 1000 logged-in sessions in a few KiB each", function()
    if (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) then
      -- redzones and quarantine: RSS says nothing about our memory there
      return pending("peak RSS under AddressSanitizer")
    end
    -- a child process: its peak RSS is ours to read, not the suite's
    local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(
      H.shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;"),
      H.shquote(H.root .. "/" .. H.build .. "/?.so;;"))
    local code = ([[
      local netlua = require "netlua"
      local telnet = require "netlua.telnet"
      local function vm(f) local h = io.open("/proc/self/status") local t = h:read("*a") h:close()
        return tonumber(t:match(f .. ":%%s+(%%d+)")) end
      local n, up, failed, base = 1000, 0, 0, vm("VmHWM")
      for i = 1, n do
        netlua.spawn(function()
          local tn = telnet.open("127.0.0.1", %d, {timeout = 60})
          local ok = tn and tn:login{user = "admin", password = "pw", prompt = "r%%d+> $"}
          ok = ok and tn:cmd("show version")
          if not ok then failed = failed + 1 end
          up = up + 1
          while up < n do netlua.sleep(0.05) end  -- all open at once
          if tn then tn:close() end
        end)
      end
      assert(netlua.run())
      print(("per %%.1f failed %%d"):format((vm("VmHWM") - base) / n, failed))
    ]]):format(port)
    local script = os.tmpname()
    H.write_file(script, code)
    local out = H.sh(("ulimit -n 4096 && env %s " .. H.lua .. " %s"):format(env, H.shquote(script)))
    os.remove(script)
    local per, failed = out:match("per (%S+) failed (%d+)")
    assert.are.equal("0", failed, out)
    -- ~24 KiB each when every session had a 128 KiB receive block and an
    -- 8 KiB engine; Python's asyncio client takes ~9 KiB.  12-13 on 5.4;
    -- the older Luas' coroutines cost more (14.9 measured on 5.3)
    local bound = H.lua == "lua5.4" and 14 or 16
    assert.is_true(tonumber(per) <= bound, out)
  end)
end)
