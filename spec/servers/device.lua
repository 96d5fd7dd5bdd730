-- device.lua PORT [HOSTNAME [PASSWORD]] - a router CLI over Telnet, for
-- the device helper specs (login, find_prompt, cmd, cmds) and the docs.
--
-- Behaves like the devices Netmiko users meet: a coloured banner before
-- "Username:"/"Password:" (any user, password "secret" or PASSWORD; else
-- "% Login invalid"), hostname prompts R1> (exec), R1# (after "enable"),
-- R1(config)# and R1(config-if)#, a pager every 24 lines, colour codes in
-- some output, `% Invalid input detected` errors with the caret line, and
-- the command echoed by the server (it offers WILL ECHO), wrapped with
-- CR LF at the window width (80 columns, or what NAWS says).
-- Per-session settings, so one server serves every spec:
--   terminal length N        lines per page (0: no pager)
--   terminal pager STYLE     cisco " --More-- " (default), more "--More--",
--                            spaced "-- More --", arrows "<--- More --->",
--                            anykey "Press any key to continue",
--                            quit "Press Q to quit", juniper "---(more 42%)---",
--                            custom "== next page? ==" (no built-in pattern)
--   terminal brackets        Huawei-style prompts: <R1> (exec), [R1] (config),
--                            [R1-GigabitEthernet0/1] (interface)
--   terminal echo STYLE      plain (default), cr (echo, CR, prompt and
--                            command again), bs (echo, backspaces over it,
--                            echo again), none
--   terminal redraw WHEN     the prompt redrawn (CR, prompt, ESC [J), as
--                            busybox ash does when a window size comes
--                            late: "before" each echo (0.05 s before
--                            it), "after" (0.05 s after each prompt),
--                            "off"; user "redraw" logs in to a prompt
--                            sent twice so, then "before"
-- Commands: show version, show running-config (57 lines),
-- show interfaces brief, echo TEXT, show slow (a line, then silence),
-- enable, disable, configure terminal, interface X, exit, end, quit.
-- Serves every connection at once (netlua.run); prints "ready".
local netlua = require "netlua"
local tcp = require "netlua.tcp"
local telnet = require "netlua.telnet"

local port, hostname, password = tonumber(arg[1]), arg[2] or "R1", arg[3] or "secret"
local srv = assert(tcp.listen("127.0.0.1", port, {backlog = 64}))

local IAC, WILL, DO = "\255", "\251", "\253"

local PAGERS = {
  cisco = {" --More-- ", ("\b"):rep(10) .. (" "):rep(10) .. ("\b"):rep(10)},
  more = {"--More--", "\r" .. (" "):rep(8) .. "\r"},
  spaced = {"-- More --", "\r\27[K"},
  arrows = {"<--- More --->", "\27[14D\27[K"},
  anykey = {"Press any key to continue", "\r\27[2K"},
  quit = {"Press Q to quit", "\r" .. (" "):rep(15) .. "\r"},
  juniper = {"---(more 42%)---", "\r" .. (" "):rep(16) .. "\r"},
  custom = {"== next page? ==", "\r" .. (" "):rep(16) .. "\r"},  -- no built-in pattern
}

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

local function session(c)
  c:settimeout(120)
  local eng = telnet.engine{manual = true}
  local buf, pos, skip = "", 1, false
  local width, length, pager, echo = 80, 24, "cisco", "plain"
  local mode = ">"  -- ">" exec, "#" enable, "(config)#", "(config-if)#"

  local function send(s) return c:write(s) end

  -- the next data byte from the client (IAC commands stripped), nil at EOF
  local function getc()
    while pos > #buf do
      local b = c:read(1)
      if not b then return nil end
      local data, _, events = eng:feed(b)
      for _, ev in ipairs(events) do
        if ev.kind == "subnegotiation" and ev.opt == 31 and #ev.data >= 4 then
          width = ev.data:byte(1) * 256 + ev.data:byte(2)
        end
      end
      buf, pos = data, 1
    end
    pos = pos + 1
    return buf:sub(pos - 1, pos - 1)
  end

  -- a line (CR, LF, CR LF or CR NUL ends it), without echo
  local function readline()
    local t = {}
    while true do
      local ch = getc()
      if not ch then return nil end
      if skip and (ch == "\n" or ch == "\0") then
        skip = false
      else
        skip = false
        if ch == "\r" then skip = true return table.concat(t) end
        if ch == "\n" then return table.concat(t) end
        t[#t + 1] = ch
      end
    end
  end

  local brackets = false  -- Huawei/H3C style: <R1> and [R1], [R1-if]
  local redraw = "off"
  local function prompt()
    if not brackets then return hostname .. mode end
    if mode == ">" or mode == "#" then return "<" .. hostname .. ">" end
    return "[" .. hostname .. (mode == "(config-if)#" and "-GigabitEthernet0/1" or "") .. "]"
  end

  -- what the terminal shows when the line is echoed: wrapped at the width
  local function wrap(text, col)
    local out = {}
    for i = 1, #text do
      out[#out + 1] = text:sub(i, i)
      col = col + 1
      if col >= width then out[#out + 1] = "\r\n" col = 0 end
    end
    return table.concat(out)
  end

  local function echo_line(line)
    local p = prompt()
    if redraw == "before" then
      send("\r" .. p .. "\27[J")
      netlua.sleep(0.05)
    end
    if echo == "none" then return send("\r\n") end
    if echo == "cr" then
      return send(wrap(line, #p) .. "\r" .. p .. wrap(line, #p) .. "\r\n")
    elseif echo == "bs" then
      return send(line .. ("\b"):rep(#line) .. wrap(line, #p) .. "\r\n")
    end
    return send(wrap(line, #p) .. "\r\n")
  end

  -- sends lines with the pager; false when the client went away
  local function output(lines)
    local shown = 0
    for _, l in ipairs(lines) do
      if length > 0 and shown == length then
        local p = PAGERS[pager]
        send(p[1])
        local key = getc()
        if not key then return false end
        send(p[2])
        if key == "q" or key == "Q" then return true end
        shown = 0
      end
      send(l .. "\r\n")
      shown = shown + 1
    end
    return true
  end

  local function invalid(line, at)
    local col = #prompt() + (at or 1) - 1
    return output {(" "):rep(col) .. "^", "% Invalid input detected at '^' marker.", ""}
  end

  send(IAC .. WILL .. "\1" .. IAC .. WILL .. "\3" .. IAC .. DO .. "\31")
  send("\r\n\27[1;31m*** " .. hostname .. " lab router: authorized access only ***\27[0m\r\n"
    .. "\r\nUser Access Verification\r\n\r\n")
  local tries, user = 0, nil
  while true do
    send("Username: ")
    user = readline()
    if not user then return end
    send(user .. "\r\nPassword: ")
    local pw = readline()
    if not pw then return end
    send("\r\n")
    if pw == password then break end
    tries = tries + 1
    send("% Login invalid\r\n\r\n")
    if tries == 3 then return end
  end
  if user == "redraw" then
    redraw = "before"
    send("\r\n" .. prompt() .. "\r" .. prompt() .. "\27[J")
  else
    send("\r\n" .. prompt())
  end
  while true do
    local line = readline()
    if not line then return end
    echo_line(line)
    local words = {}
    for w in line:gmatch("%S+") do words[#words + 1] = w end
    local cmd = table.concat(words, " ")
    local ok = true
    if cmd == "" then
      ok = true
    elseif cmd == "quit" or cmd == "logout" or (cmd == "exit" and (mode == ">" or mode == "#")) then
      return
    elseif cmd == "enable" then mode = "#"
    elseif cmd == "disable" then mode = ">"
    elseif (cmd == "configure terminal" or cmd == "conf t") and mode == "#" then
      ok = output {"Enter configuration commands, one per line.  End with CNTL/Z."}
      mode = "(config)#"
    elseif words[1] == "interface" and mode:find("config") then mode = "(config-if)#"
    elseif cmd == "exit" then mode = mode == "(config-if)#" and "(config)#" or "#"
    elseif cmd == "end" and mode:find("config") then mode = "#"
    elseif words[1] == "terminal" and words[2] == "length" and tonumber(words[3]) then
      length = tonumber(words[3])
    elseif words[1] == "terminal" and words[2] == "pager" and PAGERS[words[3] or ""] then
      pager = words[3]
    elseif cmd == "terminal brackets" then brackets = true
    elseif words[1] == "terminal" and words[2] == "echo" and words[3] then
      echo = words[3]
    elseif words[1] == "terminal" and words[2] == "redraw" and words[3] then
      redraw = words[3]
    elseif cmd == "show version" then
      ok = output {
        "Cisco IOS Software, Version 15.2(4)M7",
        "\27[1m" .. hostname .. "\27[0m uptime is \27[33m5 days, 3 hours\27[0m",
        "Processor board ID \27[36mFTX1234A5BC\27[0m",
      }
    elseif cmd == "show interfaces brief" then
      ok = output {
        "Interface              Status",
        "GigabitEthernet0/1     \27[32mup\27[0m",
        "GigabitEthernet0/2     \27[31;1mdown\27[0m",
      }
    elseif cmd == "show running-config" then
      ok = output(running_config())
    elseif words[1] == "echo" then
      ok = output {line:match("^%s*echo (.*)$") or ""}
    elseif cmd == "show slow" then
      send("partial output\r\n")
      netlua.sleep(120)
      return
    else
      ok = invalid(line, (line:find("%S") or 1))
    end
    if not ok then return end
    send(prompt())
    if redraw == "after" then
      local p = prompt()
      netlua.spawn(function() netlua.sleep(0.05) send("\r" .. p .. "\27[J") end)
    end
  end
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
