-- ssh_stall.lua PORT [MODE] - a hostile SSH peer on 127.0.0.1:PORT, for
-- the SSH client's timeout and error specs.
--
-- MODE says what every connection gets:
--   stall    (default) a valid version line "SSH-2.0-stall\r\n", then
--            nothing, ever: the key exchange never starts, so only the
--            client's own timeout ends the wait
--   garbage  bytes that are no version line (RFC 4253 4.2 lets a server
--            send other lines first, so this is 64 KiB of lines that
--            never become "SSH-"), then silence
--   close    the version line, then the connection is closed at once:
--            the client meets EOF where the server's KEXINIT should be
-- Whatever the client sends is read and thrown away, so its writes never
-- block.  Serves every connection at once; prints "ready" once it listens.
local netlua = require "netlua"
local tcp = require "netlua.tcp"

local port, mode = tonumber(arg[1]), arg[2] or "stall"
assert(mode == "stall" or mode == "garbage" or mode == "close", "unknown mode " .. mode)
local srv = assert(tcp.listen("127.0.0.1", port, {backlog = 64}))

local BANNER = "SSH-2.0-stall\r\n"

local function garbage()
  local t = {}
  for i = 1, 1024 do
    t[i] = ("not a version line %04d %s\r\n"):format(i, ("\1\255x"):rep(12))
  end
  return table.concat(t)
end

local function session(c)
  c:settimeout(600)
  if mode == "garbage" then
    c:write(garbage())
  else
    c:write(BANNER)
  end
  if mode == "close" then return end
  -- swallow what the client says until it gives up
  while c:recv(4096) do end
end

netlua.spawn(function()
  print("ready")
  io.stdout:flush()
  while true do
    local c = srv:accept()
    if c then
      netlua.spawn(function() session(c) c:close() end)
    end
  end
end)
netlua.run()
