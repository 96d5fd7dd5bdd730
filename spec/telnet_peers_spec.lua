-- The Telnet session against real servers on loopback: busybox telnetd
-- (/bin/sh on 127.0.0.1 and ::1, /bin/login with a throwaway user) and
-- inetutils-telnetd under socat (which waits for answers to its DO TTYPE).
local H = require "helper"
local netlua = require "netlua"
local telnet = require "netlua.telnet"

local MARGIN = 0.5

local function busybox(port, bind, program)
  local bb = assert(H.busybox(), "busybox missing: run sh scripts/deps.sh test")
  return H.spawn(("%s telnetd -F -p %d -b %s -l %s"):format(bb, port, bind, program))
end

describe("telnet vs busybox telnetd with /bin/sh", function()
  local pid, port

  setup(function()
    port = H.free_port()
    pid = busybox(port, "127.0.0.1", "/bin/sh")
    H.wait_port("127.0.0.1", port)
  end)

  teardown(function() H.kill(pid) end)

  local function shell(opts)
    opts = opts or {}
    opts.timeout = opts.timeout or 10
    local s = assert(telnet.open("127.0.0.1", port, opts))
    assert(s:login{})
    return s
  end

  it("logs into the shell and runs commands", function()
    local s = shell()
    assert.equal("hello\n", s:cmd("echo hello"))
    assert.equal("a\nb\n", s:cmd("printf 'a\\nb\\n'"))
    assert.equal("", s:cmd("true"))
    s:close()
  end)

  it("negotiates ECHO, SGA and NAWS the way busybox asks", function()
    local s = shell({window = {100, 40}})
    assert.same({"no", "yes"}, {s:option("ECHO")})
    assert.same({"no", "yes"}, {s:option("SGA")})
    assert.same({"yes", "no"}, {s:option("NAWS")})
    assert.same({"no", "no"}, {s:option("TTYPE")})
    s:close()
  end)

  it("shows the window size to stty, and set_window changes it", function()
    local s = shell({window = {100, 40}})
    assert.equal("40 100\n", s:cmd("stty size"))
    assert.is_true(s:set_window(132, 50))
    assert.equal("50 132\n", s:cmd("stty size"))
    s:close()
  end)

  it("delivers a 0xFF byte the server escaped", function()
    local s = shell()
    assert.equal("x\255y\n", s:cmd("printf 'x\\377y\\n'"))
    s:close()
  end)

  it("read_until, expect and the eager reads against a live shell", function()
    local s = shell()
    assert(s:write("expr 6 \\* 7\n"))
    local i, text, n = s:expect({"error", "\n(%d+)\r\n"}, 5)
    assert.equal(2, i)
    assert.equal("42", n)
    assert.matches("expr 6", text)
    assert.matches("[#$] $", s:read_until("# ", 5) or s:read_until("$ ", 5))
    assert(s:write("echo marker\n"))
    assert.equal("echo marker\r\n", s:read_until("\r\n", 5))
    assert.equal("marker\r\n", s:read_until("\r\n", 5))
    local prompt = s:read_some()
    assert.is_true(#prompt > 0)
    assert.equal("", s:read_eager())
    assert.equal("", s:read_very_eager())
    assert.equal("", s:read_lazy())
    assert.equal("", s:read_very_lazy())
    s:close()
  end)

  it("times out within the timeout while a command runs", function()
    local s = shell()
    assert(s:write("sleep 5; echo la''te\n"))
    local dt, ok, msg0, code, data = H.timed(s.read_until, s, "late\r\n", 0.4)
    assert.same({nil, "read_until: timeout", "timeout"}, {ok, msg0, code})
    assert.matches("sleep 5", data)
    assert.is_true(dt < 0.4 + MARGIN, tostring(dt))
    local dt2, out, msg, code2, part = H.timed(s.cmd, s, "echo x", {timeout = 0.3})
    assert.same({nil, "cmd: timeout", "timeout"}, {out, msg, code2})
    assert.is_string(part)
    assert.is_nil(part:find("sleep 5", 1, true))  -- read before: not repeated
    assert.is_true(dt2 < 0.3 + MARGIN, tostring(dt2))
    s:close()
  end)

  it("read_all returns the rest at exit, then reads say closed", function()
    local s = shell()
    assert(s:write("echo bye; exit\n"))
    local rest = s:read_all()
    assert.matches("bye\r\n", rest)
    local ok, msg, code = s:read_some()
    assert.is_nil(ok)
    assert.equal("closed", code)
    assert.matches("closed", msg)
    s:close()
  end)

  it("keeps working with a negotiation callback that refuses everything", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 10}))
    local calls = 0
    s:set_option_negotiation_callback(function(sock, cmd, opt)
      calls = calls + 1
      if cmd == telnet.DO or cmd == telnet.DONT then sock:sendall(string.char(255, telnet.WONT, opt))
      elseif cmd == telnet.WILL or cmd == telnet.WONT then sock:sendall(string.char(255, telnet.DONT, opt)) end
    end)
    local i = s:expect({"[#$] $"}, 5)
    assert.equal(1, i)
    assert.is_true(calls >= 4)
    assert.same({"no", "no"}, {s:option("ECHO")})
    s:close()
  end)
end)

describe("telnet vs busybox telnetd on ::1", function()
  it("works over IPv6", function()
    local port = H.free_port("inet6")
    local pid = busybox(port, "[::1]", "/bin/sh")
    finally(function() H.kill(pid) end)
    H.wait_port("::1", port)
    local s = assert(telnet.open("::1", port, {timeout = 10}))
    assert.matches("%[::1%]", tostring(s))
    assert(s:login{})
    assert.equal("v6\n", s:cmd("echo v6"))
    s:close()
  end)
end)

describe("telnet vs busybox telnetd with /bin/login", function()
  local pid, port, user
  local password = "Nl-" .. math.random(100000, 999999)

  setup(function()
    user = "nltelnet" .. math.random(100000, 999999)
    local out, ok = H.sh(("useradd -m -s /bin/sh %s && echo %s | chpasswd"):format(user, H.shquote(user .. ":" .. password)))
    assert(ok, out)
    port = H.free_port()
    pid = busybox(port, "127.0.0.1", "/bin/login")
    H.wait_port("127.0.0.1", port)
  end)

  teardown(function()
    H.kill(pid)
    H.sh("userdel -r " .. user)
  end)

  it("logs in with the right password and runs a command as the user", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 15}))
    local banner = assert(s:login{user = user, password = password})
    assert.matches("[Pp]assword", banner)
    assert.equal(user .. "\n", s:cmd("id -un"))
    s:close()
  end)

  it("keeps a session log with the password masked", function()
    local dir = H.tmpdir()
    finally(function() H.rm_rf(dir) end)
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 15, log = dir .. "/s.log"}))
    assert(s:login{user = user, password = password})
    assert.equal(user .. "\n", s:cmd("id -un"))
    s:close()
    local log = H.read_file(dir .. "/s.log")
    assert.is_nil(log:find(password, 1, true))
    assert.matches("login: " .. user .. "\n", log, 1, true)  -- written
    assert.matches("Password: ********\n", log, 1, true)
    assert.matches("id -un\n", log, 1, true)
    assert.matches("id -un\r\n" .. user .. "\r\n", log, 1, true)  -- read
  end)

  it("recognises Login incorrect without waiting out the timeout", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 30}))
    local dt, ok, msg, code = H.timed(s.login, s, {user = user, password = "wrong"})
    assert.is_nil(ok)
    assert.equal("denied", code)
    assert.matches("Login incorrect", msg)
    assert.is_true(dt < 15, tostring(dt))
    s:close()
  end)

  it("times out on a login prompt that never comes", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 15}))
    local dt, ok, msg, code = H.timed(s.login, s, {user = user, password = password,
      login_prompt = "no such prompt", timeout = 0.5})
    assert.is_nil(ok)
    assert.equal("timeout", code)
    assert.equal("login: timeout", msg)
    assert.is_true(dt < 0.5 + MARGIN, tostring(dt))
    s:close()
  end)

  it("rejects bad login arguments", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 5}))
    assert.has_error(function() s:login("root") end)
    assert.has_error(function() s:login({user = 5}) end)
    assert.has_error(function() s:cmd(5) end)
    assert.has_error(function() s:cmd("a\nb") end)
    assert.has_error(function() s:cmd("ls", "fast") end)
    s:close()
  end)
end)

describe("telnet vs inetutils-telnetd under socat", function()
  local port, stop

  setup(function() port, stop = H.inetutils_telnetd() end)
  teardown(function() if stop then stop() end end)

  it("answers its DO TTYPE etc. at once and shows TERM to the shell", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 10, terminal = "vt220"}))
    local dt = H.timed(function() assert(s:login{}) end)
    assert.is_true(dt < 5, tostring(dt))  -- a silent client waits 8 s+
    assert.equal("vt220\n", s:cmd("echo $TERM"))
    assert.same({"yes", "no"}, {s:option("TTYPE")})
    s:close()
  end)

  it("shows the window size to stty and follows set_window", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 10, window = {91, 37}}))
    assert(s:login{})
    assert.equal("37 91\n", s:cmd("stty size"))
    assert.is_true(s:set_window(120, 50))
    assert.equal("50 120\n", s:cmd("stty size"))
    s:close()
  end)

  it("turns the server's CR NUL back into CR and passes 0xFF", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 10}))
    assert(s:login{})
    assert.equal("a\rb\r\n", s:cmd("printf 'a\\rb\\n'", {raw = true}))
    assert.equal("b\n", s:cmd("printf 'a\\rb\\n'"))  -- what a terminal shows
    assert.equal("x\255y\n", s:cmd("printf 'x\\377y\\n'"))
    assert.same({"yes", "no"}, {s:option("BINARY")})
    s:close()
  end)

  it("read_until, expect, the eager reads and read_all at exit", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 10}))
    local i, text = s:expect({"[#$] $"}, 5)
    assert.equal(1, i)
    assert.is_string(text)
    assert(s:write("echo $((6*7))\n"))
    assert.equal("echo $((6*7))\r\n", s:read_until("\r\n", 5))
    local j, _, n = s:expect({"(%d+)\r\n"}, 5)
    assert.equal(1, j)
    assert.equal("42", n)
    assert.matches("[#$] $", s:read_until(" ", 5))
    assert.equal("", s:read_very_eager())
    assert.equal("", s:read_eager())
    assert.equal("", s:read_lazy())
    assert(s:write("echo b''ye\n"))
    assert.matches("\r\nbye\r\n$", s:read_until("\r\nbye\r\n", 5))
    -- inetutils drops output still queued when the shell exits, so read_all
    -- gives the rest or, as often, nil and "closed" at once
    assert(s:write("exit\n"))
    local rest, _, code = s:read_all()
    if rest == nil then assert.equal("closed", code) end
    local ok, _, code2 = s:read_very_lazy()
    assert.is_nil(ok)
    assert.equal("closed", code2)
    s:close()
  end)

  it("refuses what it cannot do exactly once", function()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 10, env = {DISPLAY = "x:1"}}))
    assert(s:login{})
    assert.same({"no", "no"}, {s:option("LINEMODE")})
    assert.same({"no", "no"}, {s:option("AUTHENTICATION")})
    assert.same({"yes", "no"}, {s:option("NEW-ENVIRON")})
    assert.equal("ok\n", s:cmd("echo ok"))
    s:close()
  end)
end)

describe("telnet vs inetutils-telnetd on ::1", function()
  it("works over IPv6", function()
    local port = H.free_port("inet6")
    local pid = H.spawn(("socat TCP6-LISTEN:%d,bind=[::1],reuseaddr,fork "
      .. "EXEC:\"/usr/sbin/telnetd -h -E /bin/sh\",nofork"):format(port))
    finally(function()
      local kids = H.read_file(("/proc/%d/task/%d/children"):format(pid, pid)) or ""
      for kid in kids:gmatch("%d+") do H.sh("kill -TERM " .. kid) end
      H.kill(pid)
    end)
    H.wait_port("::1", port)
    local s = assert(telnet.open("::1", port, {timeout = 10, terminal = "ansi"}))
    assert(s:login{})
    assert.equal("ansi v6\n", s:cmd("echo $TERM v6"))
    s:close()
  end)
end)
