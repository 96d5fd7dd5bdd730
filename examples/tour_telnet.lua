-- tour_telnet.lua: the notes' telnetlib session, in netlua: open a Telnet
-- connection to a local busybox telnetd running /bin/sh, wait for the
-- prompt, run commands, read their output; then a peek at the protocol
-- engine on its own.
local H = require "helper"
local telnet = require "netlua.telnet"

local busybox = H.busybox()
if not busybox then
  print("busybox with telnetd is missing (sh scripts/deps.sh demo fetches it); skipping the session part")
else
  local port = H.free_port()
  local pid = H.spawn(("%s telnetd -F -p %d -b 127.0.0.1 -l /bin/sh"):format(busybox, port))
  local ok, err = pcall(function()
    H.wait_port("127.0.0.1", port)
    print(("busybox telnetd listens on 127.0.0.1:%d (a shell, no password)"):format(port))

    -- like telnetlib.Telnet(host, port, timeout), with a window size for NAWS
    local tn = assert(telnet.open("127.0.0.1", port, {timeout = 10, window = {100, 30}}))
    print("connected:", tostring(tn))

    -- login{} waits for the shell prompt (no user/password needed here)
    assert(tn:login{})
    print("the server asked for ECHO and SGA; we agreed. ECHO (ours, theirs):", tn:option("ECHO"))

    -- cmd() = write a line, read up to the prompt, drop the echo
    io.write("$ echo hello from $0\n", tn:cmd("echo hello from $0"))
    io.write("$ stty size   (what NAWS told the server)\n", tn:cmd("stty size"))

    -- the telnetlib way: write, then read_until / expect
    tn:write("expr 6 \\* 7\n")
    local i, _, answer = tn:expect({"\n(%d+)\r\n"}, 5)
    print(("expect matched pattern %d, captured %q"):format(i, answer))
    tn:read_until("# ", 5)

    -- a timeout is a failure (so assert() catches it), never an
    -- exception; the data so far comes fourth
    tn:write("sleep 3\n")
    local ok, msg, code, data = tn:read_until("never printed", 0.5)
    print(("read_until with 0.5 s: %s, %q, %s, %q"):format(tostring(ok), msg, code, (data:gsub("\r\n", " "))))

    tn:close()
    print("closed:", tostring(tn))
  end)
  H.kill(pid)
  print("busybox telnetd stopped")
  if not ok then error(err, 0) end
end

-- The engine alone: bytes in, data + replies + events out.
local e = telnet.engine({terminal = "XTERM"})
local wire = "hi\255\255there" .. string.char(255, 253, 24) .. string.char(255, 250, 24, 1, 255, 240)
local data, replies = e:feed(wire)
local function bytes(s) return (s:gsub(".", function(c) return ("%d "):format(c:byte()) end)) end
print("engine fed:      " .. bytes(wire))
print("data out:        " .. bytes(data) .. "  (IAC IAC became one 255)")
print("replies to send: " .. bytes(replies) .. " (WILL TTYPE, then TTYPE IS XTERM)")
