-- The device helpers against real shells: busybox telnetd running busybox
-- ash with a coloured PS1 holding the host name (ash echoes through its
-- own line editor: wraps at the NAWS width, asks the cursor position after
-- the prompt), and inetutils-telnetd under socat running dash, whose
-- prompt the spec colours itself.
local H = require "helper"
local telnet = require "netlua.telnet"

local MARGIN = 0.5
local HOST = (H.sh("hostname"):gsub("%s+$", ""):match("^[^.]*"))

describe("device helpers vs busybox telnetd with a coloured ash prompt", function()
  local pid, port, dir

  setup(function()
    dir = H.tmpdir()
    H.sh(("mkdir -p %s/sub %s/tree/d && touch %s/tree/a.txt"):format(dir, dir, dir))
    H.write_file(dir .. "/shell.sh", table.concat({
      "#!/bin/sh",
      [[PS1='\[\033[1;32m\]\h\[\033[0m\]:\[\033[1;34m\]\w\[\033[0m\]\$ ']],
      "export PS1 HOME=/",
      "cd " .. H.shquote(dir),
      "exec " .. H.shquote(assert(H.busybox(), "busybox missing: run sh scripts/deps.sh test")) .. " sh -i",
    }, "\n") .. "\n")
    H.sh("chmod +x " .. dir .. "/shell.sh")
    port = H.free_port()
    pid = H.spawn(("%s telnetd -F -p %d -b 127.0.0.1 -l %s"):format(H.busybox(), port, dir .. "/shell.sh"))
    H.wait_port("127.0.0.1", port)
  end)

  teardown(function()
    H.kill(pid)
    H.rm_rf(dir)
  end)

  local function shell()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 10, window = {40, 24}}))
    local _, prompt = assert(s:login{})
    return s, prompt
  end

  it("learns the prompt with its colours and finds it again", function()
    local s, prompt = shell()
    -- ash redraws the prompt (CR, prompt, ESC [J) when the window size
    -- comes after it: either line is the prompt
    local line = "\27[1;32m" .. HOST .. "\27[0m:\27[1;34m" .. dir .. "\27[0m# "
    assert.is_true(prompt == line .. "\27[6n" or prompt == line .. "\27[J", prompt)
    assert.equal(HOST .. ":" .. dir .. "#", s:find_prompt())
    s:close()
  end)

  it("cmd leaves no host name, colour or echo in the output", function()
    local s = shell()
    assert.equal("Linux\n", s:cmd("uname -s"))
    assert.equal("a.txt\nd\n", s:cmd("ls -1 --color=always tree"))
    -- the colours were there: raw keeps them
    assert.matches("\27%[[%d;]*m", s:cmd("ls -1 --color=always tree", {raw = true}))
    assert.equal("abc", s:cmd("printf abc"))
    assert.equal("", s:cmd("true"))
    s:close()
  end)

  it("removes a command echo that ash wrapped at the 40-column window", function()
    local s = shell()
    local long = ("z"):rep(70)
    assert.equal(long .. "\n", s:cmd("echo " .. long))
    assert.equal(long .. " " .. long .. "\n", s:cmd("echo " .. long .. " " .. long))
    s:close()
  end)

  it("follows the prompt when the directory in it changes", function()
    local s = shell()
    assert.equal("", s:cmd("cd sub"))
    assert.equal(dir .. "/sub\n", s:cmd("pwd"))
    assert.equal(HOST .. ":" .. dir .. "/sub#", s:find_prompt())
    assert.same({"", dir .. "\n"}, assert(s:cmds({"cd ..", "pwd"})))
    s:close()
  end)

  it("cmds stops at an error line", function()
    local s = shell()
    local ok, msg, code, outs = s:cmds({"echo one", "ls /nonexistent", "echo three"},
      {error_pattern = "No such file"})
    assert.is_nil(ok)
    assert.equal("command", code)
    assert.equal("cmds: 'ls /nonexistent': ls: /nonexistent: No such file or directory", msg)
    assert.same({"one\n", "ls: /nonexistent: No such file or directory\n"}, outs)
    s:close()
  end)

  it("cmd fails on a timeout with the output so far", function()
    local s = shell()
    local dt, out, msg, code, part = H.timed(s.cmd, s, "echo st''art; sleep 3", {timeout = 0.8})
    assert.same({nil, "cmd: timeout", "timeout", "start\n"}, {out, msg, code, part})
    assert.is_true(dt < 0.8 + MARGIN, tostring(dt))
    s:close()
  end)
end)

describe("device helpers vs inetutils-telnetd running dash", function()
  local port, stop

  setup(function() port, stop = H.inetutils_telnetd() end)
  teardown(function() if stop then stop() end end)

  local function shell()
    local s = assert(telnet.open("127.0.0.1", port, {timeout = 10, window = {40, 24}}))
    assert(s:login{})
    -- a prompt with the host name in colour, as a device would show it
    assert(s:cmd([[PS1="$(printf '\033[1;33m')$(hostname -s)$(printf '\033[0m')> "]]))
    assert.equal(HOST .. ">", s:find_prompt())
    return s
  end

  it("cmd returns clean text and no prompt line", function()
    local s = shell()
    assert.equal("red\n", s:cmd([[printf '\033[31mred\033[0m\n']]))
    assert.equal("abc", s:cmd("printf abc"))
    assert.equal("a\nb\n", s:cmd([[printf 'a\nb\n']]))
    local long = ("q"):rep(90)
    assert.equal(long .. "\n", s:cmd("echo " .. long))
    s:close()
  end)

  it("cmds runs a list in order", function()
    local s = shell()
    assert.same({"1\n", "2\n", "3\n"}, assert(s:cmds({"echo 1", "echo 2", "echo 3"})))
    s:close()
  end)

  it("expect and cmd fail on a timeout with the data so far", function()
    local s = shell()
    assert(s:write("echo be''gin; sleep 3\n"))
    local dt, i, msg, code, text = H.timed(s.expect, s, {"never"}, 0.5)
    assert.same({nil, "expect: timeout", "timeout"}, {i, msg, code})
    assert.matches("begin\r\n$", text)
    assert.is_true(dt < 0.5 + MARGIN, tostring(dt))
    s:close()
  end)
end)
