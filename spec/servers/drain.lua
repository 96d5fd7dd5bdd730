-- drain.lua PORT: accepts one client on 127.0.0.1:PORT and reads all it
-- sends, as fast as it can, until it closes.  A peer that always keeps
-- up: a writer never has to wait for room.
local netlua = require "netlua"
local port = tonumber(arg[1])
local srv = assert(netlua.tcp.listen("127.0.0.1", port))
print("ready") io.stdout:flush()
local c = assert(srv:accept(30))
c:settimeout(60)
while c:recv(1024 * 1024) do end
c:close()
srv:close()
