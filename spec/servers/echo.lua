-- echo.lua PORT [DIR] - a line echo server on 127.0.0.1 and ::1, same port.
--
-- Every connection is served in a task of its own: each line read is
-- written back, and the connection stays open until the client closes
-- it (a peer that keeps the connection open, as most services do).
-- Prints "ready" once both listeners are up.
local netlua = require "netlua"
local tcp = require "netlua.tcp"

local port = tonumber(arg[1])
local listeners = {
  assert(tcp.listen("127.0.0.1", port)),
  assert(tcp.listen("::1", port, {ipv6only = true})),
}

local function session(c)
  c:settimeout(120)
  while true do
    local line = c:read("L")
    if not line or not c:write(line) then return end
  end
end

for _, srv in ipairs(listeners) do
  netlua.spawn(function()
    while true do
      local c = srv:accept()
      if c then netlua.spawn(function() session(c) c:close() end) end
    end
  end)
end
print("ready")
io.stdout:flush()
netlua.run()
