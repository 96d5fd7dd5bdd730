-- router_shell.lua [-c COMMAND] - a router CLI as a login shell, for the
-- SSH shell helpers' specs (spec/ssh_helper.lua runs it under sshd and
-- dropbear for a throwaway user).
--
-- The SSH sibling of device.lua (the Telnet router): same hostname
-- prompts, command texts, pager and error lines, but a plain program on
-- stdin/stdout.  The server gives it a pty when the client asks for one:
-- the pty's line discipline echoes what is typed, edits the line and
-- turns "\n" into CR LF, so this program only reads lines and prints.
-- Only the pager's key is read in non-canonical mode without echo (stty),
-- as a device reads it: the key counts without Enter and is not shown.
-- Without a pty (ssh without -t) it still works, just without that mode.
--
-- Commands: show version, show running-config (57 lines, " --More-- "
-- every 24 lines: space or any key goes on, q stops), show interfaces
-- brief, terminal length N (0: no pager), echo TEXT, enable, disable,
-- configure terminal, interface X, end, exit, quit, logout.  Anything
-- else gets device.lua's "% Invalid input detected" with the caret line.
-- Prompts: R1# (it starts privileged, as a device's SSH login often
-- does), R1> after disable, R1(config)#, R1(config-if)#.
--
-- Hostname: ROUTER_HOSTNAME (default R1).  Run as `router_shell.lua -c
-- CMD` (how sshd runs a login shell for `ssh host CMD`) or with
-- SSH_ORIGINAL_COMMAND set (ForceCommand, dropbear -c), it runs that one
-- command, without prompt or pager, and exits: exec channels work too.
-- Needs nothing but a Lua (no netlua): the throwaway SSH user runs it.
local hostname = os.getenv("ROUTER_HOSTNAME") or "R1"
if hostname == "" then hostname = "R1" end
io.stdout:setvbuf("no")

local length = 24
local mode = "#"

-- stty speaks to stdin, which os.execute's shell inherits
local function stty(args)
  return os.execute("stty " .. args .. " 2>/dev/null")
end
local tty = os.execute("test -t 0")
tty = tty == true or tty == 0

local function prompt() return hostname .. mode end

-- one key, not echoed: the pager's answer
local function getkey()
  if tty then stty("-icanon -echo min 1 time 0") end
  local k = io.read(1)
  if tty then stty("icanon echo") end
  return k
end

-- prints lines with the pager; false when the input ended
local function output(lines)
  local shown = 0
  for _, l in ipairs(lines) do
    if length > 0 and shown == length then
      io.write(" --More-- ")
      local key = getkey()
      if not key then return false end
      io.write(("\b"):rep(10) .. (" "):rep(10) .. ("\b"):rep(10))
      if key == "q" or key == "Q" then return true end
      shown = 0
    end
    io.write(l, "\n")
    shown = shown + 1
  end
  return true
end

local function running_config()
  local t = {"Building configuration...", "", "Current configuration : 1843 bytes", "!"}
  for i = 1, 13 do
    t[#t + 1] = ("interface GigabitEthernet0/%d"):format(i)
    t[#t + 1] = (" ip address 10.0.%d.1 255.255.255.0"):format(i)
    t[#t + 1] = " no shutdown"
    t[#t + 1] = "!"
  end
  t[#t + 1] = "end"
  return t
end

-- runs one command line; returns "exit" to end the session, false when
-- the input ended inside the pager, true otherwise
local function run(line)
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = w end
  local cmd = table.concat(words, " ")
  if cmd == "" then return true end
  if cmd == "quit" or cmd == "logout" or (cmd == "exit" and (mode == ">" or mode == "#")) then
    return "exit"
  elseif cmd == "enable" then mode = "#"
  elseif cmd == "disable" then mode = ">"
  elseif (cmd == "configure terminal" or cmd == "conf t") and mode == "#" then
    mode = "(config)#"
    return output {"Enter configuration commands, one per line.  End with CNTL/Z."}
  elseif words[1] == "interface" and mode:find("config") then mode = "(config-if)#"
  elseif cmd == "exit" then mode = mode == "(config-if)#" and "(config)#" or "#"
  elseif cmd == "end" and mode:find("config") then mode = "#"
  elseif words[1] == "terminal" and words[2] == "length" and tonumber(words[3]) then
    length = tonumber(words[3])
  elseif cmd == "show version" then
    return output {
      "Cisco IOS Software, Version 15.2(4)M7",
      hostname .. " uptime is 5 days, 3 hours",
      "Processor board ID FTX1234A5BC",
    }
  elseif cmd == "show interfaces brief" then
    return output {
      "Interface              Status",
      "GigabitEthernet0/1     up",
      "GigabitEthernet0/2     down",
    }
  elseif cmd == "show running-config" then
    return output(running_config())
  elseif words[1] == "echo" then
    return output {line:match("^%s*echo (.*)$") or ""}
  else
    local at = line:find("%S") or 1
    return output {(" "):rep(#prompt() + at - 1) .. "^",
      "% Invalid input detected at '^' marker.", ""}
  end
  return true
end

-- one command, as exec channels ask: no prompt, no pager
local one = (arg[1] == "-c" and arg[2]) or os.getenv("SSH_ORIGINAL_COMMAND")
if one and one ~= "" then
  length = 0
  run(one)
  os.exit(0)
end

io.write("\n", prompt())
while true do
  local line = io.read("l")
  if not line then break end
  local r = run((line:gsub("\r$", "")))
  if r == "exit" or r == false then break end
  io.write(prompt())
end
os.exit(0)
