-- tour_tcp.lua: the notes' socket helpers on a TCP connection over
-- loopback: getsockname, getpeername and makefile.
local tcp = require "netlua.tcp"

-- a tiny echo-upper server on a free port (port 0 lets the OS choose)
local server = assert(tcp.listen("127.0.0.1", 0))
local ip, port = server:getsockname()
print(("server listening on %s:%d"):format(ip, port))

local client = assert(tcp.connect("127.0.0.1", port, {timeout = 5}))
local conn = assert(server:accept(5))

print("client getsockname ->", client:getsockname())
print("client getpeername ->", client:getpeername())
print("server side sees   ->", conn:getpeername())

-- makefile turns a socket into a buffered file-like object
local out = client:makefile("w")
out:write("hello from the client\n", "second line\n")
out:flush()

local inp = conn:makefile("r")
for _ = 1, 2 do
  local line = inp:read("l")
  print("server read:", line)
  conn:write(line:upper(), "\n")
end

print("client got:", client:read("l"))
print("client got:", client:read("l"))

client:close()
print("after the client closes, the server reads:", conn:read("l"))
conn:close()
server:close()
