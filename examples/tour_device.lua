-- tour_device.lua: driving a router CLI as Netmiko users do, against the
-- scripted router of the specs (spec/servers/device.lua): log in, find
-- the prompt, run commands whose output is paged and coloured, run a
-- configuration list that stops at the first error, keep a session log.
local H = require "helper"
local telnet = require "netlua.telnet"

local port = H.free_port()
local pid = H.lua_server("device", port)
local log = os.tmpname()
local ok, err = pcall(function()
  print(("a router CLI listens on 127.0.0.1:%d (user admin, password secret)"):format(port))
  local tn = assert(telnet.open("127.0.0.1", port, {timeout = 5, log = log}))

  -- login answers Username:/Password: and learns the prompt it ends on
  local banner, prompt = assert(tn:login{user = "admin", password = "secret"})
  print(("banner: %d bytes, prompt %q"):format(#banner, prompt))

  -- cmd: no echo, no "R1>" line, colours gone
  io.write("R1> show version\n", assert(tn:cmd("show version")))

  -- a 57-line output behind " --More-- " every 24 lines: answered
  local cfg = assert(tn:cmd("show running-config"))
  print(("show running-config: %d lines, no pager left: %s"):format(
    select(2, cfg:gsub("\n", "")), tostring(not cfg:find("More", 1, true))))

  -- modes change the prompt; the learnt "R1" still matches, and
  -- find_prompt says where we are
  assert(tn:cmd("enable"))
  print("after enable:", tn:find_prompt())

  -- a configuration list stops at the first "% Invalid input"
  local outs, msg, code, so_far = tn:cmds({"configure terminal", "interface Gi0/1", "shutdwn", "end"},
    {error_pattern = "^%% "})
  print(("cmds: %s, %s (%s), %d outputs, prompt now %s"):format(tostring(outs), msg, code,
    #so_far, tn:find_prompt()))

  -- a command that never finishes: a failure with the output so far
  local out, m, c, part = tn:cmd("show slow", {timeout = 0.5})
  print(("show slow: %s, %q, %s, partial %q"):format(tostring(out), m, c, part))
  tn:close()

  local text = H.read_file(log)
  print(("session log: %d bytes, password masked: %s"):format(#text,
    tostring(text:find("********", 1, true) ~= nil and not text:find("secret", 1, true))))
end)
os.remove(log)
H.kill(pid)
print("router CLI stopped")
if not ok then error(err, 0) end
