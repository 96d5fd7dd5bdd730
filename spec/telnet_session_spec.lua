-- Every telnetlib method of the session, its bad input and its timeouts,
-- against the scripted server's echo/bursts/prompt/silent scenarios.
local H = require "helper"

-- math.type is 5.3+; before, a number is an integer when it has no fraction
local mtype = math.type or function(x)
  if type(x) == "number" then return x % 1 == 0 and "integer" or "float" end
end
local netlua = require "netlua"
local telnet = require "netlua.telnet"

local MARGIN = 0.5

describe("telnet session methods", function()
  local srv = H.scripted_server("telnet_hostile")
  setup(srv.start)
  teardown(srv.stop)

  local function open(scenario, opts)
    local s = assert(telnet.open("127.0.0.1", srv.port, opts or {timeout = 5}))
    assert(s:write(scenario .. "\n"))
    return s
  end

  -- runs `script` (a format with the server's port as its %d) in a lua5.4
  -- of its own, its stdin from the shell command `input`; its output
  local function run_script(name, script, input)
    local f = srv.dir .. "/" .. name .. ".lua"
    H.write_file(f, script:format(srv.port))
    return H.sh(("%s | LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' " .. H.lua .. " %s 2>&1")
      :format(input or "true", H.build, f))
  end

  describe("open", function()
    it("returns nil, msg, 'refused' when nothing listens", function()
      local p = H.free_port()
      local s, msg, code = telnet.open("127.0.0.1", p, {timeout = 2})
      assert.is_nil(s)
      assert.equal("refused", code)
      assert.matches("127.0.0.1", msg)
    end)

    it("rejects bad arguments and options", function()
      assert.has_error(function() telnet.open(nil, srv.port) end)
      assert.has_error(function() telnet.open("127.0.0.1", srv.port, 5) end)
      assert.has_error(function() telnet.open("127.0.0.1", 70000) end)
      for _, bad in ipairs {
        {terminal = 5}, {terminal = {}}, {window = {0, 10}}, {window = {80}},
        {env = "USER=x"}, {max_buffer = 0}, {max_buffer = "big"}, {debug = {}}, {max_match = -1},
      } do
        assert.has_error(function() telnet.open("127.0.0.1", srv.port, bad) end)
      end
    end)

    it("is a closable object with fileno, get_socket and __tostring", function()
      local s = open("echo")
      assert.matches("^netlua.telnet: .*127.0.0.1:" .. srv.port, tostring(s))
      assert.is_true(mtype(s:fileno()) == "integer" and s:fileno() > 2)
      assert.equal(s, s:get_socket())
      assert.equal(s:fileno(), s:get_socket():fileno())
      assert(s:write("quit\n"))
      assert.is_true(s:close())
      assert.is_true(s:close())
      assert.matches("%(closed%)", tostring(s))
      assert.has_error(function() s:read_some() end, "attempt to use a closed telnet session")
      assert.has_error(function() s:write("x") end, "attempt to use a closed telnet session")
    end)

    it("closes through <close>", function()
      if not H.close_scope then return pending("to-be-closed variables need Lua 5.4") end
      local keep = open("echo")
      H.close_scope(keep)
      assert.matches("%(closed%)", tostring(keep))
    end)
  end)

  describe("write and read_until", function()
    it("doubles IAC and sends a bare CR as CR NUL", function()
      local s = open("echo")
      assert.is_true(s:write("a\255b\n"))
      assert.equal("a\255b\n", s:read_until("\n"))
      assert.is_true(s:write("x\ry\r\n"))
      assert.equal("x\ry\r\n", s:read_until("\r\n"))
      s:write("quit\n")
      s:close()
    end)

    it("stops right after the expected bytes, leaving the rest", function()
      local s = open("echo")
      s:write("one two three\n")
      assert.equal("one two", s:read_until("two"))
      assert.equal(" three\n", s:read_until("\n"))
      s:write("quit\n")
      s:close()
    end)

    it("fails with 'timeout' within the timeout, the data so far fourth", function()
      local s = open("silent")
      local dt, ok, msg, code, part = H.timed(s.read_until, s, "never", 0.3)
      assert.same({nil, "read_until: timeout", "timeout", "login: "}, {ok, msg, code, part})
      assert.is_true(dt >= 0.29 and dt < 0.3 + MARGIN, tostring(dt))
      -- assert() catches it, as with every other failure
      local raised, err = pcall(function() assert(s:read_until("never", 0.05)) end)
      assert.is_false(raised)
      assert.matches("read_until: timeout$", err)
      -- nothing more: an empty partial
      assert.same({nil, "read_until: timeout", "timeout", ""}, {s:read_until("never", 0.1)})
      s:close()
    end)

    it("uses the session timeout when none is given", function()
      local s = open("silent", {timeout = 0.2})
      local dt, _, _, code = H.timed(s.read_until, s, "never")
      assert.equal("timeout", code)
      assert.is_true(dt < 0.2 + MARGIN, tostring(dt))
      s:settimeout(0.1)
      assert.equal(0.1, s:gettimeout())
      s:close()
    end)

    -- outside a task a read waits in recv() under SO_RCVTIMEO, which is
    -- kept from call to call: each call must still get its own timeout
    it("holds each call's own timeout, shorter or longer, and nil waits", function()
      local s = open("bursts", {timeout = 5})
      assert.equal("one\r\n", s:read_until("\n"))
      local dt, data, msg, code, part = H.timed(s.read_until, s, "never", 0.05)
      assert.same({nil, "read_until: timeout", "timeout", ""}, {data, msg, code, part})
      assert.is_true(dt >= 0.045 and dt < 0.05 + MARGIN, tostring(dt))
      s:settimeout(nil)  -- blocks: "two" comes about 0.3 s after "one"
      dt, data = H.timed(s.read_until, s, "\n")
      assert.equal("two\r\n", data)
      assert.is_true(dt > 0.1, tostring(dt))
      dt, data, msg, code, part = H.timed(s.read_until, s, "never", 0.02)
      assert.same({nil, "read_until: timeout", "timeout", ""}, {data, msg, code, part})
      assert.is_true(dt >= 0.018 and dt < 0.02 + MARGIN, tostring(dt))
      dt, data, msg, code, part = H.timed(s.read_until, s, "never", 0)  -- one look, no wait
      assert.same({nil, "read_until: timeout", "timeout", ""}, {data, msg, code, part})
      assert.is_true(dt < 0.05, tostring(dt))
      s:close()
    end)

    it("rejects bad arguments", function()
      local s = open("echo")
      assert.has_error(function() s:read_until() end)
      assert.has_error(function() s:read_until({}) end)
      assert.has_error(function() s:read_until("x", "soon") end)
      assert.has_error(function() s:read_until("x", 0 / 0) end)
      assert.has_error(function() s:write() end)
      assert.has_error(function() s:write({}) end)
      s:write("quit\n")
      s:close()
    end)
  end)

  describe("expect", function()
    it("returns the index, the text and the captures", function()
      local s = open("prompt")
      local i, text, who = s:expect({"nomatch", "(%w+)%$ $"}, 2)
      assert.equal(2, i)
      assert.equal("Welcome\r\nuser$ ", text)
      assert.equal("user", who)
      local j, t2 = s:expect("output\r\n", 2)
      assert.equal(1, j)
      assert.equal("more output\r\n", t2)
      s:close()
    end)

    it("fails with 'timeout' within the timeout, the text so far fourth", function()
      local s = open("silent")
      local dt, i, msg, code, text = H.timed(s.expect, s, {"password", "%d+"}, 0.3)
      assert.same({nil, "expect: timeout", "timeout", "login: "}, {i, msg, code, text})
      assert.is_true(dt < 0.3 + MARGIN, tostring(dt))
      s:close()
    end)

    it("fails with 'closed' at EOF, the text so far fourth, then '' after", function()
      local s = open("vanish")
      local i, msg, code, text = s:expect({"never"})
      assert.same({nil, "expect 127.0.0.1:" .. srv.port .. ": closed by peer", "closed", "partial line"},
        {i, msg, code, text})
      local i2, msg2, code2, text2 = s:expect({"never"})
      assert.same({nil, msg, "closed", ""}, {i2, msg2, code2, text2})
      s:close()
    end)

    it("finds anchored patterns only at the start", function()
      local s = open("prompt")
      local i, text = s:expect({"^Welcome"}, 2)
      assert.equal(1, i)
      assert.equal("Welcome", text)
      local i2, _, c2, t2 = s:expect({"^user"}, 2)
      assert.is_nil(i2)
      assert.equal("closed", c2)  -- the server is done after the prompts
      assert.matches("^\r\nuser%$ ", t2)
      s:close()
    end)

    it("matches across arrivals, within max_match", function()
      local s = open("bursts")
      local i, text = s:expect({"one.-three"}, 5)
      assert.equal(1, i)
      assert.equal("one\r\ntwo\r\nthree", text)
      s:close()
      -- with a tiny max_match, the start of a long match is out of reach
      s = open("bursts", {timeout = 5, max_match = 4})
      local j, _, code, t2 = s:expect({"one.-three"}, 5)
      assert.is_nil(j)
      assert.equal("one\r\ntwo\r\nthree", t2)
      assert.equal("closed", code)
      s:close()
    end)

    it("finds a prompt after a long output, captures counted from the text's start", function()
      -- each pattern is tried on each arrival; a prompt pattern (ends
      -- with $, takes no line end) is only tried on the last line
      local s = open("longout")
      local i, text, a, b = s:expect({"[Ll]ogin: ?$", "()r1%(config%)# ()$"}, 5)
      assert.equal(2, i)
      assert.equal(4692 + #"more\r\n" + #"r1(config)# ", #text)
      assert.matches("^line 1 of the output\r\n", text)
      assert.equal("r1(config)# ", text:sub(a, b - 1))
      assert.equal(#text + 1, b)
      s:close()
      -- a pattern that takes line ends still matches across them
      s = open("longout")
      local j, t2, c = s:expect({"output\r\nmore\r\n()r1%(config%)# $"}, 5)
      assert.equal(1, j)
      assert.equal(#t2 - 11, c)
      assert.matches("line 200 of the output\r\nmore\r\nr1%(config%)# $", t2)
      s:close()
      -- with a small max_match the window starts late: captures still
      -- count from the start of the text returned
      s = open("longout", {timeout = 5, max_match = 64})
      local k, t3, p = s:expect({"()%(config%)# $"}, 5)
      assert.equal(1, k)
      assert.equal("(config)# ", t3:sub(p))
      s:close()
    end)

    it("knows which patterns only ever match the last line", function()
      local core = require "netlua.core"
      local tail = {"r%d+> $", "[Pp]assword: ?$", "()[^\n\r]*()$", "%S+$", "%%$", "[]]$",
        "[^]\n\r]$", "(a)%1$", "a-$", "[a-z]+$", "%C$", "()[<%[]?r1[^\n\r]-[>#%$%%%]][ \27%[%d;mnJK]*()$"}
      local not_tail = {"[Ll]ogin incorrect", "()[^\n]*()$", ".$", "%s$", "[%s]$", "[\0-\31]$",
        "[\t-\r]$", "%b()$", "%f[%w]x$", "%$", "a%$", "a$b", "^x$", "%c$", "\n$", "\r$", "[x"}
      for _, p in ipairs(tail) do assert.is_true(core.pattern_line_tail(p), p) end
      for _, p in ipairs(not_tail) do assert.is_false(core.pattern_line_tail(p), p) end
    end)

    it("rejects bad patterns", function()
      local s = open("echo")
      assert.has_error(function() s:expect({}) end)
      assert.has_error(function() s:expect(5) end)
      assert.has_error(function() s:expect({"ok", 5}) end)
      s:write("hi\n")
      assert.has_error(function() s:expect({"[unclosed"}, 1) end)
      s:write("quit\n")
      s:close()
    end)

    it("fails with 'limit' past max_buffer", function()
      local s = open("bigline", {timeout = 10, max_buffer = 100000})
      local i, msg, code = s:expect({"never"})
      assert.is_nil(i)
      assert.equal("limit", code)
      assert.matches("max_buffer", msg)
      s:close()
    end)
  end)

  describe("the other reads", function()
    it("read_some returns what arrived, then the next burst", function()
      local s = open("bursts")
      assert.equal("one\r\n", s:read_some())
      assert.equal("two\r\n", s:read_some())
      assert.equal("three", s:read_some())
      local ok, msg, code = s:read_some()
      assert.is_nil(ok)
      assert.equal("closed", code)
      assert.matches("closed", msg)
      s:close()
    end)

    it("read_eager and read_very_eager never block", function()
      local s = open("bursts")
      assert.equal("one\r\n", s:read_until("\n"))
      local dt, d = H.timed(s.read_eager, s)
      assert.equal("", d)
      assert.is_true(dt < 0.1, tostring(dt))
      dt, d = H.timed(s.read_very_eager, s)
      assert.equal("", d)
      assert.is_true(dt < 0.1, tostring(dt))
      netlua.sleep(0.8)
      assert.equal("two\r\nthree", s:read_very_eager())
      local ok, _, code = s:read_very_eager()
      assert.is_nil(ok)
      assert.equal("closed", code)
      s:close()
    end)

    it("read_lazy and read_very_lazy do no I/O", function()
      local s = open("bursts")
      assert.equal("", s:read_very_lazy())
      assert.equal("", s:read_lazy())
      assert.equal("on", s:read_until("on"))
      assert.equal("e\r\n", s:read_very_lazy())
      netlua.sleep(0.8)
      assert.equal("", s:read_lazy())  -- still unread in the socket
      assert.equal("two\r\nthree", s:read_all())
      local ok, _, code = s:read_very_lazy()
      assert.is_nil(ok)
      assert.equal("closed", code)
      s:close()
    end)

    it("read_all returns everything up to EOF, or fails with 'timeout'", function()
      local s = open("bursts")
      assert.equal("one\r\ntwo\r\nthree", s:read_all())
      s:close()
      s = open("silent")
      local dt, d, msg, code, part = H.timed(s.read_all, s, 0.3)
      assert.same({nil, "read_all: timeout", "timeout", "login: "}, {d, msg, code, part})
      assert.is_true(dt < 0.3 + MARGIN, tostring(dt))
      s:close()
    end)

    it("read_all fails with 'limit' past max_buffer and keeps the data", function()
      local s = open("bigline", {timeout = 10, max_buffer = 65536})
      local ok, _, code = s:read_all()
      assert.is_nil(ok)
      assert.equal("limit", code)
      local d = s:read_very_lazy()
      assert.is_true(#d >= 65536)
      s:close()
    end)

    it("read_sb_data returns the last subnegotiation, then ''", function()
      local s = open("ttype", {timeout = 5, terminal = "ANSI"})
      assert.equal("typed", s:read_all())
      assert.equal(string.char(24, 1), s:read_sb_data())
      assert.equal("", s:read_sb_data())
      s:close()
    end)
  end)

  describe("negotiation state", function()
    it("option() tells our and their state; request() asks", function()
      local s = open("nego", {timeout = 5, terminal = "VT100"})
      assert.equal("hi", s:read_all())
      assert.same({"no", "yes"}, {s:option("ECHO")})
      assert.same({"no", "yes"}, {s:option(telnet.SGA)})
      assert.same({"yes", "no"}, {s:option("TTYPE")})
      assert.same({"no", "no"}, {s:option(telnet.COMPRESS2)})
      assert.has_error(function() s:option(999) end)
      assert.has_error(function() s:option("BOGUS") end)
      assert.has_error(function() s:request("please", 1) end)
      s:close()
    end)

    it("set_window validates and reports whether NAWS is on", function()
      local s = open("naws", {timeout = 5, window = {80, 24}})
      assert.equal("sized", s:read_all())
      assert.is_true(s:set_window(100, 50))
      assert.has_error(function() s:set_window(0, 10) end)
      assert.has_error(function() s:set_window(10, 70000) end)
      assert.has_error(function() s:set_window("x", 10) end)
      s:close()
    end)
  end)

  describe("debug", function()
    it("set_debuglevel, msg and masked secrets", function()
      local s = open("echo")
      assert.equal(0, s:get_debuglevel())
      s:set_debuglevel(1)
      assert.equal(1, s:get_debuglevel())
      assert.has_error(function() s:set_debuglevel("loud") end)
      s:set_debuglevel(0)
      s:msg("quiet %d", 1)
      s:write("quit\n")
      s:close()
    end)

    it("prints negotiation and masks a secret write", function()
      local script = [[
        local telnet = require "netlua.telnet"
        local s = assert(telnet.open("127.0.0.1", %d, {timeout = 5, debug = 1}))
        s:write("echo\n")
        s:write("hunter2\n", true)
        s:msg("hello %%s", "there")
        s:read_until("\n")
        s:write("quit\n")
        s:read_all()
        s:close()
      ]]
      local out = run_script("dbg", script)
      assert.matches("Telnet%(127.0.0.1:%d+%): send 'echo\\x0a'", out)
      assert.matches("send '%*%*%*%*'", out)
      assert.matches("hello there", out)
      assert.is_nil(out:find("hunter2", 1, true))
    end)
  end)

  describe("interact", function()
    it("bridges stdin and the session until EOF", function()
      local out = run_script("interact", [[
        local telnet = require "netlua.telnet"
        local s = assert(telnet.open("127.0.0.1", %d, {timeout = 5}))
        s:write("echo\n")
        assert(s:interact())
        s:close()
      ]], "(printf 'hello\\nquit\\n'; sleep 1)")
      assert.matches("hello\n", out)
      assert.matches("Connection closed by remote host", out)
    end)

    it("ends at EOF on stdin", function()
      local out = run_script("interact2", [[
        local telnet = require "netlua.telnet"
        local s = assert(telnet.open("127.0.0.1", %d, {timeout = 5}))
        s:write("echo\n")
        assert(s:interact())
        io.write("returned\n")
        s:write("quit\n")
        s:close()
      ]], "cat /dev/null")
      assert.matches("returned", out)
    end)

    it("inside a task waits as a task: the others keep running", function()
      -- the input comes in two parts a second apart; "quit" ends the echo
      local out = run_script("interact3", [[
        local netlua = require "netlua"
        local telnet = require "netlua.telnet"
        local ticks, done = 0, false
        netlua.spawn(function()
          while not done do netlua.sleep(0.05) ticks = ticks + 1 end
        end)
        assert(netlua.run(function()
          local s = assert(telnet.open("127.0.0.1", %d, {timeout = 5}))
          s:write("echo\n")
          assert(s:interact())
          done = true
          s:close()
        end))
        io.write("ticks ", ticks, "\n")
      ]], "(printf 'hello\\n'; sleep 1; printf 'quit\\n'; sleep 1)")
      assert.matches("hello\n", out)
      assert.matches("Connection closed by remote host", out)
      local ticks = tonumber(out:match("ticks (%d+)"))
      assert.is_true(ticks and ticks >= 10, out)  -- about 20 in 1 s+
    end)

    it("checks its descriptors inside a task too", function()
      netlua.run(function()
        local s = open("echo")
        assert.has_error(function() s:interact(-1) end,
          "bad argument #1 to 'interact' (descriptor expected)")
        assert.has_error(function() s:interact(0, "x") end,
          "bad argument #2 to 'interact' (descriptor expected)")
        s:close()
      end)
    end)
  end)
end)

describe("telnet helpers against a scripted login dialogue", function()
  local srv = H.scripted_server("telnet_hostile")
  setup(srv.start)
  teardown(srv.stop)

  local function open()
    local s = assert(telnet.open("127.0.0.1", srv.port, {timeout = 5}))
    assert(s:write("login\n"))
    return s
  end

  it("logs in and runs commands without echo and prompt", function()
    local s = open()
    local banner = assert(s:login{user = "admin", password = "s3cret", prompt = "router1> $"})
    assert.matches("Welcome, admin", banner)
    assert.equal("Version 1.2.3\nUptime 5 days\n", s:cmd("show version"))
    assert.equal("", s:cmd("noop"))
    -- the prompt login() learnt is the default for cmd
    assert.equal("Version 1.2.3\nUptime 5 days\n", s:cmd("show version", {timeout = 2}))
    s:close()
  end)

  it("recognises Login incorrect at once", function()
    local s = open()
    local dt, ok, msg, code = H.timed(s.login, s, {user = "admin", password = "nope", prompt = "router1> $", timeout = 4})
    assert.is_nil(ok)
    assert.equal("denied", code)
    assert.matches("Login incorrect", msg)
    assert.is_true(dt < 2, tostring(dt))
    s:close()
  end)

  it("says when a password is needed but none was given", function()
    local s = open()
    local ok, msg, code = s:login{user = "admin", prompt = "router1> $"}
    assert.is_nil(ok)
    assert.equal("denied", code)
    assert.matches("password is needed", msg)
    s:close()
  end)

  it("never shows the password in debug output", function()
    local script = ([[
      local telnet = require "netlua.telnet"
      local s = assert(telnet.open("127.0.0.1", %d, {timeout = 5, debug = 1}))
      s:write("login\n")
      assert(s:login{user = "admin", password = "s3cret", prompt = "router1> $"})
      s:write("exit\n")
      s:close()
    ]]):format(srv.port)
    local f = srv.dir .. "/login.lua"
    H.write_file(f, script)
    local out = H.sh(("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' " .. H.lua .. " %s"):format(H.build, f))
    assert.matches("send 'admin\\x0a'", out)
    assert.matches("send '%*%*%*%*'", out)
    assert.is_nil(out:find("s3cret", 1, true))
  end)
end)
