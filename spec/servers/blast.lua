-- blast.lua PORT MIB: accepts one client on 127.0.0.1:PORT, sends it MIB
-- MiB as fast as it can (64 KiB writes of one repeated block), closes.
-- A peer whose data is always there: a reader never has to wait.
local netlua = require "netlua"
local port, mib = tonumber(arg[1]), tonumber(arg[2]) or 256
local srv = assert(netlua.tcp.listen("127.0.0.1", port))
print("ready") io.stdout:flush()
local c = assert(srv:accept(30))
local block = ("netlua"):rep(math.floor(65536 / 6) + 1):sub(1, 65536)
for _ = 1, mib * 16 do
  if not c:write(block) then break end
end
c:close()
srv:close()
