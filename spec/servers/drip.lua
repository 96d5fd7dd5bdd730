-- drip.lua PORT COUNT INTERVAL: accepts one client on 127.0.0.1:PORT and
-- sends it one byte every INTERVAL seconds, COUNT times, then closes.
local netlua = require "netlua"
local port, count, interval = tonumber(arg[1]), tonumber(arg[2]) or 20, tonumber(arg[3]) or 0.1
local srv = assert(netlua.tcp.listen("127.0.0.1", port))
print("ready") io.stdout:flush()
local c = assert(srv:accept(30))
for _ = 1, count do
  if not c:send("x") then break end
  netlua.sleep(interval)
end
c:close()
srv:close()
