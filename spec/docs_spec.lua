-- Docs that run: every ```lua block of README.md and doc/*.md, against
-- local servers, under the convention README.md's "Contributing" section
-- describes:
--   * a block right after a line `<!-- fragment -->` is only compiled;
--   * every other block runs alone, in a child process, with the names
--     its file's prelude gives (PRELUDES below) and with placeholder hosts,
--     ports, interfaces and paths replaced by local ones (placeholders());
--   * a block fails on any error, and each `print(...) --> text` line
--     must print the first word of `text` (unless `text` starts "e.g.").
-- A wrong example therefore fails the suite; the last describe block
-- shows that it does.
local netlua = require "netlua"
local H = require "helper"
local F = require "ftp_helper"
local S = require "ssh_helper"

local DOCS = {"README.md", "doc/ftp.md", "doc/lookup.md", "doc/loops.md", "doc/multicast.md",
  "doc/ssh.md", "doc/sftp.md", "doc/telnet.md"}

--- The ```lua blocks of a Markdown text: {line =, code =, fragment =}.
local function blocks(text)
  local out, n, cur, prev = {}, 0, nil, ""
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        out[#out + 1] = cur
        cur, prev = nil, line
      else
        cur.lines[#cur.lines + 1] = line
      end
    elseif line:match("^```lua%s*$") then
      cur = {line = n, lines = {}, fragment = prev:match("^<!%-%-%s*fragment.-%-%->%s*$") ~= nil}
    elseif line:match("%S") then
      prev = line
    end
  end
  for _, b in ipairs(out) do b.code = table.concat(b.lines, "\n") .. "\n" end
  return out
end

--- What each `print(...) --> text` line promises: the first word of text.
local function promises(code)
  local words = {}
  for line in code:gmatch("[^\n]+") do
    local said = line:match("print%(.*%-%->%s*(.-)%s*$")
    if said and said ~= "" and not said:match("^e%.g%.") then
      words[#words + 1] = {line = line, word = said:match("^(%S+)")}
    end
  end
  return words
end

-- ports and peers, filled in by setup
local P = {}

--- Placeholder -> local replacement, in the order they are applied.
local function placeholders(dir)
  return {
    -- SSH: one sshd for a router (user "admin", a router CLI as its
    -- shell) and a server (user "deploy", /bin/sh), one key for both
    {'"192%.0%.2%.3[01]", 22%f[%D]', ('"127.0.0.1", %d'):format(P.ssh or 0)},
    {'user = "admin"', ('user = "%s"'):format(P.ssh_admin or "admin")},
    {'user = "deploy"', ('user = "%s"'):format(P.ssh_deploy or "deploy")},
    {'host = "ftp.example.org"', ('host = "127.0.0.1", port = %d'):format(P.ftp)},
    {"%f[%d]2121%f[%D]", tostring(P.ftp)},
    {'"192.0.2.10", 23%f[%D]', ('"127.0.0.1", %d'):format(P.telnet)},
    {"%f[%d]2323%f[%D]", tostring(P.telnet)},
    {'"192.0.2.20", 23%f[%D]', ('"127.0.0.1", %d'):format(P.device)},
    {"%f[%d]8080%f[%D]", tostring(P.echo)},
    {"%f[%d]9000%f[%D]", tostring(P.mc1)},
    {"%f[%d]5000%f[%D]", tostring(P.mc2)},
    {'"eth0"', '"lo"'},
    {'"10.0.0.7"', '"127.0.0.1"'},
    {'"/tmp/', '"' .. dir .. "/"},
    {'"/srv/', '"' .. dir .. "/"},
    -- last: the key's real path is under /tmp itself
    {'"/home/admin/%.ssh/id_ed25519"', ('"%s"'):format(P.ssh_key or "")},
  }
end

local function substitute(code, dir)
  for _, p in ipairs(placeholders(dir)) do
    code = code:gsub(p[1], (p[2]:gsub("%%", "%%%%")))
  end
  return code
end

-- The names a file's blocks may use without making them (globals).
local PRELUDES = {
  ["README.md"] = [[
netlua = require "netlua"
lookup, tcp, mc, ftp, telnet, ssh = netlua.lookup, netlua.tcp, netlua.multicast, netlua.ftp, netlua.telnet, netlua.ssh
sock = assert(tcp.connect("127.0.0.1", 8080, {timeout = 5}))
cmds = {"show version", "show clock"}
]],
  ["doc/ftp.md"] = [[
ftp = require "netlua.ftp"
s = assert(ftp.new{host = "ftp.example.org", user = "me", password = "secret", timeout = 10})
]],
  ["doc/lookup.md"] = [[
lookup = require "netlua.lookup"
]],
  ["doc/ssh.md"] = [[
ssh = require "netlua.ssh"
]],
  ["doc/sftp.md"] = [[
ssh = require "netlua.ssh"
]],
  ["doc/loops.md"] = [[
netlua = require "netlua"
]],
  ["doc/multicast.md"] = [[
mc = require "netlua.multicast"
r = assert(mc.receiver{group = "239.1.2.3", port = 5000, interface = "eth0", pktinfo = true, timeout = 5})
s = assert(mc.sender{interface = "eth0"})
u = assert(mc.socket{timeout = 5})
assert(s:sendto("hello", "239.1.2.3", 5000))  -- one datagram waits in r
]],
  ["doc/telnet.md"] = [[
telnet = require "netlua.telnet"
tn = assert(telnet.open("192.0.2.10", 23, {timeout = 10}))
bytes_from_peer = "\255\251\1\255\253\24login: "
]],
}

-- what runs after a block: the tasks it started
local POSTLUDE = 'assert(require("netlua").run())\n'

--- Runs one block (already substituted) in a child process in dir;
-- returns ok, output.
local function run_block(file, b, code, dir)
  local chunk = dir .. "/block.lua"
  H.write_file(chunk, code)
  local main = dir .. "/main.lua"
  H.write_file(main, substitute(PRELUDES[file] or "", dir) ..
    ("assert((loadstring or load)(assert(io.open(%q)):read('*a'), %q))()\n"):format(chunk, "@" .. file .. ":" .. b.line) ..
    POSTLUDE)
  -- HOME: its ~/.ssh/known_hosts knows the docs' sshd
  local env = ("cd %s && PW=pw HOME=%s LUA_PATH=%s LUA_CPATH=%s "):format(H.shquote(dir),
    H.shquote(P.ssh_home or dir),
    H.shquote(H.root .. "/lua/?.lua;" .. H.root .. "/lua/?/init.lua;;"),
    H.shquote(H.root .. "/" .. H.build .. "/?.so;;"))
  return H.sh(env .. "timeout -s KILL 60 " .. H.lua .. " main.lua 2>&1; echo \"exit=$?\"")
end

--- Checks one block; returns nil, reason when it fails.
local function check_block(file, b)
  local dir = H.tmpdir()
  H.write_file(dir .. "/backup.tar", ("backup"):rep(1000))
  H.write_file(dir .. "/report.csv", "a,b\n1,2\n")
  local code = substitute(b.code, dir)
  local f, err = (loadstring or load)(code, "@" .. file .. ":" .. b.line)  -- 5.1: loadstring
  if not f then H.rm_rf(dir) return nil, "does not compile: " .. err end
  if b.fragment then H.rm_rf(dir) return true end
  local out = run_block(file, b, code, dir)
  H.rm_rf(dir)
  if os.getenv("NETLUA_DOCS_VERBOSE") then  -- what each block printed
    io.stderr:write(("\n---- %s:%d\n%s"):format(file, b.line, out))
  end
  local status = tonumber(out:match("exit=(%d+)%s*$"))
  if status ~= 0 then return nil, "failed (exit " .. tostring(status) .. "):\n" .. out end
  for _, p in ipairs(promises(code)) do
    if not out:find(p.word, 1, true) then
      return nil, ("printed no %q for\n  %s\noutput:\n%s"):format(p.word, p.line, out)
    end
  end
  return true
end

-- FTP: pyftpdlib (has MLSD) with the user the docs use and anonymous
-- access, over a tree holding the files the examples fetch
local function start_ftp()
  local dir = H.tmpdir()
  local root = dir .. "/root"
  for _, d in ipairs {"", "/pub", "/pub/data", "/pub/data/sub", "/incoming"} do
    H.sh("mkdir -p " .. H.shquote(root .. d))
  end
  H.write_file(root .. "/file.tar.gz", ("tgz"):rep(3000))
  H.write_file(root .. "/pub/file.tar.gz", ("tgz"):rep(3000))
  H.write_file(root .. "/readme.txt", "read me\n")
  H.write_file(root .. "/pub/data/a.txt", "a\n")
  H.write_file(root .. "/pub/data/sub/b.txt", "b\n")
  local port = H.free_port("inet")
  H.write_file(dir .. "/ftpd.py", ([[
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
a = DummyAuthorizer()
a.add_user("me", "secret", %q, perm="elradfmwMT")
a.add_anonymous(%q, perm="elradfmwMT")
h = FTPHandler
h.authorizer = a
FTPServer(("127.0.0.1", %d), h).serve_forever()
]]):format(root, root, port))
  local pid = H.spawn("/usr/bin/python3 " .. H.shquote(dir .. "/ftpd.py"))
  H.wait_port("127.0.0.1", port, 15)
  return port, function() H.kill(pid) H.rm_rf(dir) end
end

describe("documentation examples", function()
  local stops = {}

  setup(function()
    H.require_netns()  -- the multicast examples send to groups
    local stop
    P.ftp, stop = start_ftp()
    stops[#stops + 1] = stop
    -- Telnet: router-like logins (password "pw") on 127.0.0.1, and the
    -- same on ::1 through socat
    P.telnet = H.free_port("inet")
    local router = H.lua_server("router", P.telnet, 0)
    local relay = H.spawn(("socat TCP6-LISTEN:%d,bind=[::1],reuseaddr,fork TCP4:127.0.0.1:%d")
      :format(P.telnet, P.telnet))
    H.wait_port("::1", P.telnet, 10)
    stops[#stops + 1] = function() H.kill(relay) H.kill(router) end
    -- a router CLI with pagers, modes and errors (password "pw")
    P.device = H.free_port("inet")
    local device = H.lua_server("device", P.device, "R1", "pw")
    stops[#stops + 1] = function() H.kill(device) end
    P.echo = H.free_port("inet")
    local echo = H.lua_server("echo", P.echo)
    stops[#stops + 1] = function() H.kill(echo) end
    P.mc1, P.mc2 = H.free_port("inet"), H.free_port("inet")
    -- SSH: the router user and the shell user on one sshd
    local sdir = H.tmpdir()
    local keys = S.keys(sdir)
    local admin = S.user {keys = keys.authorized, shell = "router"}
    local deploy = S.user {keys = keys.authorized}
    local sshd = S.sshd {user = admin, extra = {"AllowUsers " .. admin.name .. " " .. deploy.name}}
    P.ssh, P.ssh_key, P.ssh_admin, P.ssh_deploy = sshd.port, keys.ed25519, admin.name, deploy.name
    P.ssh_home = sdir .. "/home"
    H.sh("mkdir -p " .. H.shquote(P.ssh_home .. "/.ssh"))
    H.write_file(P.ssh_home .. "/.ssh/known_hosts", H.read_file(sshd.known_hosts))
    stops[#stops + 1] = function()
      sshd.stop() admin.remove() deploy.remove() H.rm_rf(sdir)
    end
  end)

  teardown(function()
    for _, stop in ipairs(stops) do stop() end
  end)

  for _, file in ipairs(DOCS) do
    local text = assert(H.read_file(H.root .. "/" .. file), file)
    for _, b in ipairs(blocks(text)) do
      it(("%s:%d %s"):format(file, b.line, b.fragment and "compiles" or "runs"), function()
        local ok, why = check_block(file, b)
        assert(ok, ("%s:%d: %s"):format(file, b.line, tostring(why)))
      end)
    end
  end
end)

describe("the docs spec itself", function()
  local md = table.concat({
    "```lua", 'print(lookup.getservbyname("ftp"))   --> 22', "```",
    "", "```lua", 'assert(lookup.getservbyname("no-such-service"))', "```",
    "", "<!-- fragment -->", "```lua", "s:mkd(dir)", "```",
    "", "<!-- fragment -->", "```lua", "s:mkd(", "```",
    "", "```lua", 'print(lookup.getservbyname("ftp"))   --> 21', "```",
  }, "\n")

  it("finds blocks and fragment marks", function()
    local bs = blocks(md)
    assert.equal(5, #bs)
    assert.same({false, false, true, true, false},
      {bs[1].fragment, bs[2].fragment, bs[3].fragment, bs[4].fragment, bs[5].fragment})
    assert.same({{line = 'print(lookup.getservbyname("ftp"))   --> 22', word = "22"}}, promises(bs[1].code))
  end)

  it("fails a wrong promise, an error and a fragment that does not compile", function()
    local bs = blocks(md)
    assert.is_nil((check_block("doc/lookup.md", bs[1])))
    assert.is_nil((check_block("doc/lookup.md", bs[2])))
    assert.is_true(check_block("doc/lookup.md", bs[3]))
    assert.is_nil((check_block("doc/lookup.md", bs[4])))
    assert.is_true(check_block("doc/lookup.md", bs[5]))
  end)
end)
