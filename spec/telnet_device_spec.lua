-- The device helpers (login, find_prompt, cmd, cmds, the session log)
-- against a router CLI: spec/servers/device.lua, with its banner,
-- R1> / R1# / R1(config)# prompts, pagers, colours, echo styles, wraps
-- at the window width and "% Invalid input" errors.
local H = require "helper"
local telnet = require "netlua.telnet"
local netlua = require "netlua"

local MARGIN = 0.5
local BANNER = "\r\n\27[1;31m*** R1 lab router: authorized access only ***\27[0m\r\n"
  .. "\r\nUser Access Verification\r\n\r\n"
local VERSION = "Cisco IOS Software, Version 15.2(4)M7\nR1 uptime is 5 days, 3 hours\n"
  .. "Processor board ID FTX1234A5BC\n"

-- what "show running-config" prints, made here independently of the server
local function running_config()
  local t = {"Building configuration...", "", "Current configuration : 1843 bytes", "!"}
  for i = 1, 13 do
    t[#t + 1] = ("interface GigabitEthernet0/%d\n ip address 10.0.%d.1 255.255.255.0\n no shutdown\n!"):format(i, i)
  end
  t[#t + 1] = "end"
  return table.concat(t, "\n") .. "\n"
end

describe("telnet device helpers against a router CLI", function()
  local pid, port

  setup(function()
    port = H.free_port()
    pid = H.lua_server("device", port)
  end)

  teardown(function() H.kill(pid) end)

  local function session(opts)
    opts = opts or {}
    opts.timeout = opts.timeout or 5
    local s = assert(telnet.open("127.0.0.1", port, opts))
    assert(s:login{user = "admin", password = "secret"})
    return s
  end

  describe("login and prompts", function()
    it("answers Username:/Password: after the banner and learns the prompt", function()
      local s = assert(telnet.open("127.0.0.1", port, {timeout = 5}))
      local banner, prompt = s:login{user = "admin", password = "secret"}
      assert.equal(BANNER .. "Username: admin\r\nPassword: \r\n\r\n", banner)
      assert.equal("R1>", prompt)
      s:close()
    end)

    it("says denied when the device asks for the user name again", function()
      local s = assert(telnet.open("127.0.0.1", port, {timeout = 5}))
      local ok, msg, code, text = s:login{user = "admin", password = "wrong"}
      assert.same({nil, "login: Login incorrect", "denied"}, {ok, msg, code})
      assert.matches("%% Login invalid\r\n\r\nUsername: $", text)
      s:close()
    end)

    it("fails on a timeout with the text so far", function()
      local s = assert(telnet.open("127.0.0.1", port, {timeout = 5}))
      local dt, ok, msg, code, text = H.timed(s.login, s,
        {user = "admin", password = "secret", password_prompt = "never", timeout = 0.5})
      assert.same({nil, "login: timeout", "timeout", BANNER .. "Username: admin\r\nPassword: "},
        {ok, msg, code, text})
      assert.is_true(dt < 0.5 + MARGIN, tostring(dt))
      s:close()
    end)

    it("find_prompt returns the prompt line in every mode, and cmd follows it", function()
      local s = session()
      assert.equal("R1>", s:find_prompt())
      assert.equal("", s:cmd("enable"))
      assert.equal("R1#", s:find_prompt())
      -- the learnt "R1" base matches the next modes without find_prompt
      assert.equal("Enter configuration commands, one per line.  End with CNTL/Z.\n",
        s:cmd("configure terminal"))
      assert.equal("", s:cmd("interface GigabitEthernet0/1"))
      assert.equal("R1(config-if)#", s:find_prompt())
      assert.equal("", s:cmd("end"))
      assert.equal(VERSION, s:cmd("show version"))
      s:close()
    end)
  end)

  it("learns a bracketed prompt (<R1>, [R1], [R1-GigabitEthernet0/1])", function()
    local s = session()
    assert.equal("", s:cmd("terminal brackets"))
    assert.equal("<R1>", s:find_prompt())
    assert.equal(VERSION, s:cmd("show version"))
    assert.equal("", s:cmd("enable"))
    assert.equal("Enter configuration commands, one per line.  End with CNTL/Z.\n",
      s:cmd("configure terminal"))
    assert.equal("[R1]", s:find_prompt())
    assert.equal("", s:cmd("interface GigabitEthernet0/1"))
    assert.equal(VERSION, s:cmd("show version"))
    assert.equal("[R1-GigabitEthernet0/1]", s:find_prompt())
    assert.equal("", s:cmd("end"))
    assert.equal("<R1>", s:find_prompt())
    s:close()
  end)

  describe("cmd", function()
    it("removes the echo, the whole prompt line and the colours", function()
      local s = session()
      assert.equal(VERSION, s:cmd("show version"))
      assert.equal("Interface              Status\nGigabitEthernet0/1     up\nGigabitEthernet0/2     down\n",
        s:cmd("show interfaces brief"))
      assert.equal("", s:cmd(""))
      s:close()
    end)

    it("takes a prompt pattern, captures and all, and removes its whole line", function()
      local s = session()
      assert.equal(VERSION, s:cmd("show version", {prompt = "(%w+)([>#])$"}))
      assert.equal(VERSION, s:cmd("show version", {prompt = "[>#]"}))
      -- both anchors: the match takes all the pending data, so no output,
      -- but the prompt is found
      assert.equal("", s:cmd("show version", {prompt = "^.-R1>$"}))
      assert.equal(VERSION, s:cmd("show version"))
      assert.equal("", s:cmd("terminal pager custom"))
      assert.equal(running_config(), s:cmd("show running-config",
        {prompt = "R1>$", pager = {pattern = "== (next) page%? ==$"}}))
      s:close()
    end)

    it("keeps the bytes with raw = true, less the echo and the prompt line", function()
      local s = session()
      assert.equal("Interface              Status\r\nGigabitEthernet0/1     \27[32mup\27[0m\r\n"
        .. "GigabitEthernet0/2     \27[31;1mdown\27[0m\r\n", s:cmd("show interfaces brief", {raw = true}))
      s:close()
    end)

    it("answers every pager style until the prompt and removes pager and erase", function()
      local s = session()
      local want = running_config()
      assert.equal(want, s:cmd("show running-config"))  -- " --More-- " + backspaces
      for _, style in ipairs {"more", "spaced", "arrows", "anykey", "quit", "juniper"} do
        assert.equal("", s:cmd("terminal pager " .. style))
        assert.equal(want, s:cmd("show running-config"), style)
      end
      s:close()
    end)

    it("answers a pager given as {pattern, answer}; pager = false answers none", function()
      local s = session()
      assert.equal("", s:cmd("terminal pager custom"))
      assert.equal(running_config(), s:cmd("show running-config",
        {pager = {pattern = "== next page%? ==", answer = " "}}))
      s:close()
      s = session()
      assert.equal("", s:cmd("terminal pager more"))
      local out, msg, code, part = s:cmd("show running-config", {pager = false, timeout = 0.5})
      assert.same({nil, "cmd: timeout", "timeout"}, {out, msg, code})
      local lines = select(2, running_config():gsub("\n", "\n"))
      assert.is_true(lines > 24)
      assert.equal(running_config():match(("[^\n]*\n"):rep(24)) .. "--More--", part)
      s:close()
    end)

    it("needs no pager with terminal length 0", function()
      local s = session()
      assert.equal("", s:cmd("terminal length 0"))
      assert.equal(running_config(), s:cmd("show running-config", {pager = false}))
      s:close()
    end)

    it("removes an echo redrawn after a CR or over backspaces", function()
      local s = session()
      assert.equal("", s:cmd("terminal echo cr"))
      assert.equal(VERSION, s:cmd("show version"))
      assert.equal("hello\n", s:cmd("echo hello"))
      assert.equal("", s:cmd("terminal echo bs"))
      assert.equal(VERSION, s:cmd("show version"))
      assert.equal("hello\n", s:cmd("echo hello"))
      s:close()
    end)

    -- busybox ash redraws its prompt when the window size comes after it:
    -- that old prompt is not the end of the next command's output
    it("takes a prompt redrawn before the echo, or while idle, for no command's end", function()
      local s = assert(telnet.open("127.0.0.1", port, {timeout = 5}))
      local _, prompt = assert(s:login{user = "redraw", password = "secret"})
      assert.equal("R1>\27[J", prompt)
      assert.equal("R1>", s:find_prompt())
      assert.equal(VERSION, s:cmd("show version"))
      assert.equal("hello\n", s:cmd("echo hello"))
      assert.equal("", s:cmd("terminal redraw after"))
      netlua.sleep(0.15)  -- the redraw is waiting, unread
      assert.equal(VERSION, s:cmd("show version"))
      netlua.sleep(0.15)
      assert.equal("hello\n", s:cmd("echo hello"))
      s:close()
    end)

    it("removes an echo wrapped at 80 columns, or at the NAWS width", function()
      local long = ("x"):rep(100) .. " " .. ("y"):rep(100)
      local s = session()
      assert.equal(long .. "\n", s:cmd("echo " .. long))
      assert.equal("", s:cmd("terminal echo cr"))
      assert.equal(long .. "\n", s:cmd("echo " .. long))
      s:close()
      s = session({window = {30, 24}})
      assert.equal(long .. "\n", s:cmd("echo " .. long))
      s:close()
    end)

    it("returns the % Invalid input error as output", function()
      local s = session()
      assert.equal("    ^\n% Invalid input detected at '^' marker.\n\n", s:cmd(" bogus"))
      s:close()
    end)

    it("fails on a timeout with the output so far, without the echo", function()
      local s = session()
      local dt, out, msg, code, part = H.timed(s.cmd, s, "show slow", {timeout = 0.5})
      assert.same({nil, "cmd: timeout", "timeout", "partial output\n"}, {out, msg, code, part})
      assert.is_true(dt < 0.5 + MARGIN, tostring(dt))
      s:close()
    end)

    it("fails with 'closed' when the device hangs up before the prompt", function()
      local s = session()
      local out, msg, code, part = s:cmd("quit")
      assert.same({nil, "cmd 127.0.0.1:" .. port .. ": closed by peer", "closed", ""}, {out, msg, code, part})
      s:close()
    end)

    it("rejects bad arguments", function()
      local s = session()
      assert.has_error(function() s:cmd(5) end, "bad argument #1 to 'cmd' (string expected, got number)")
      assert.has_error(function() s:cmd("a\nb") end, "bad argument #1 to 'cmd' (line contains CR or LF)")
      assert.has_error(function() s:cmd("x", 5) end, "bad argument #2 to 'cmd' (table expected, got number)")
      assert.has_error(function() s:cmd("x", {pager = 5}) end)
      assert.has_error(function() s:cmd("x", {pager = {pattern = 5}}) end)
      assert.has_error(function() s:find_prompt(5) end)
      s:close()
    end)
  end)

  describe("cmds", function()
    it("runs commands in order and returns their outputs", function()
      local s = session()
      local outs = assert(s:cmds({"enable", "configure terminal", "interface Gi0/1", "end", "show version"}))
      assert.same({"", "Enter configuration commands, one per line.  End with CNTL/Z.\n", "", "", VERSION}, outs)
      assert.equal("R1#", s:find_prompt())
      s:close()
    end)

    it("stops at the first output matching error_pattern", function()
      local s = session()
      local ok, msg, code, outs = s:cmds({"enable", "configure terminal", "bogus", "end"},
        {error_pattern = "^%% "})
      assert.same({nil, "cmds: 'bogus': % Invalid input detected at '^' marker.", "command"}, {ok, msg, code})
      assert.same({"", "Enter configuration commands, one per line.  End with CNTL/Z.\n",
        "           ^\n% Invalid input detected at '^' marker.\n\n"}, outs)
      assert.equal("R1(config)#", s:find_prompt())  -- "end" never ran
      s:close()
    end)

    it("without error_pattern an error is just output", function()
      local s = session()
      local outs = assert(s:cmds({"bogus", "show version"}))
      assert.same({"   ^\n% Invalid input detected at '^' marker.\n\n", VERSION}, outs)
      s:close()
    end)

    it("fails on a timeout with the outputs so far, the partial one last", function()
      local s = session()
      local ok, msg, code, outs = s:cmds({"show version", "show slow", "show version"}, {timeout = 0.5})
      assert.same({nil, "cmds: timeout", "timeout", {VERSION, "partial output\n"}}, {ok, msg, code, outs})
      s:close()
    end)

    it("rejects bad arguments", function()
      local s = session()
      assert.has_error(function() s:cmds("show version") end)
      assert.has_error(function() s:cmds({"a", 5}) end)
      assert.has_error(function() s:cmds({"a\nb"}) end)
      assert.has_error(function() s:cmds({"a"}, {error_pattern = 5}) end)
      s:close()
    end)
  end)

  describe("in tasks", function()
    it("runs many sessions at once under netlua.run, pagers and all", function()
      local netlua = require "netlua"
      local got = {}
      for i = 1, 8 do
        netlua.spawn(function()
          local s = session()
          got[i] = {s:cmd("show running-config"), assert(s:cmds({"enable", "show version"}))[2]}
          s:close()
        end)
      end
      assert(netlua.run())
      for i = 1, 8 do assert.same({running_config(), VERSION}, got[i]) end
    end)
  end)

  describe("session log", function()
    it("has every byte read and written, the password masked", function()
      local dir = H.tmpdir()
      finally(function() H.rm_rf(dir) end)
      local path = dir .. "/session.log"
      local s = assert(telnet.open("127.0.0.1", port, {timeout = 5, log = path}))
      assert(s:login{user = "admin", password = "secret"})
      assert.equal(VERSION, s:cmd("show version"))
      s:close()
      assert.equal(BANNER .. "Username: " .. "admin\n" .. "admin\r\nPassword: " .. "********\n"
        .. "\r\n" .. "\r\nR1>" .. "show version\n" .. "show version\r\n"
        .. "Cisco IOS Software, Version 15.2(4)M7\r\n\27[1mR1\27[0m uptime is \27[33m5 days, 3 hours\27[0m\r\n"
        .. "Processor board ID \27[36mFTX1234A5BC\27[0m\r\nR1>", H.read_file(path))
    end)

    it("masks secrets in what is read too, and leaves an open file open", function()
      local f = assert(io.tmpfile())
      local s = session()
      assert.is_true(s:set_log(f, {"hunter2"}))
      assert.equal("a hunter2 b\n", s:cmd("echo a hunter2 b"))
      s:close()
      assert(f:seek("set"))
      local log = f:read("*a")
      f:close()
      assert.equal("echo a ******** b\necho a ******** b\r\na ******** b\r\nR1>", log)
    end)

    it("set_log(nil) stops it; a bad target raises, an unwritable path fails", function()
      local f = assert(io.tmpfile())
      local s = session()
      assert(s:set_log(f))
      assert.equal("", s:cmd("enable"))
      assert(s:set_log(nil))
      assert.equal("", s:cmd("disable"))
      assert(f:seek("set"))
      assert.equal("enable\nenable\r\nR1#", f:read("*a"))
      f:close()
      assert.has_error(function() s:set_log(5) end)
      local ok, msg = s:set_log("/nonexistent/dir/x.log")
      assert.is_nil(ok)
      assert.matches("^set_log: /nonexistent/dir/x.log", msg)
      s:close()
      assert.has_error(function() telnet.open("127.0.0.1", port, {log = 5}) end)
    end)
  end)
end)
