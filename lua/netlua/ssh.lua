--- netlua.ssh: SSH connections (on libssh): remote commands, and shells
-- with every method and device helper of a Telnet session.
--
--     local ssh = require "netlua.ssh"
--     local c = assert(ssh.open("10.0.0.1", 22, {user = "admin", key = "id_ed25519"}))
--     local out, err, status = assert(c:exec("uname -a"))
--     local sh = assert(c:shell())
--     print(assert(sh:cmd("show version")))
--     c:close()
--
-- A script moves a device from Telnet to SSH by changing the line that
-- opens the session: `telnet.open(host, 23, opts)` and
-- `assert(ssh.open(host, 22, opts)):shell()` give objects with the same
-- reads, `expect`, `write`, `login`, `find_prompt`, `cmd`, `cmds`,
-- `set_log` (one implementation: csrc/telnet.c and netlua.cli).
--
-- Host keys are checked by default, as OpenSSH does: against
-- `~/.ssh/known_hosts` (or `known_hosts =`), or a given fingerprint
-- (`host_key = "SHA256:..."`).  An unknown or changed key fails with
-- code "hostkey", the key's fingerprint in the message.
-- Failures return `nil, message, code`; wrong types raise.
-- @module netlua.ssh
local core = require "netlua.core"
local tcp = require "netlua.tcp"

local M = {}

M.DEFAULT_PORT = 22
--- The libssh this module runs on ("0.10.6/openssl/zlib").
M.LIBRARY = core.SSH_LIBRARY

local cli = require "netlua.cli"

local conn = core.methods("netlua.ssh")
local chan = core.methods("netlua.ssh_channel")
local shell = core.methods("netlua.ssh_shell")

local monotime = core.monotime
local unpack = table.unpack or unpack

local function argerror(n, who, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, who, msg), (level or 2) + 1)
end

local function opterror(name, msg, level)
  error(("bad option '%s' (%s)"):format(name, msg), (level or 2) + 1)
end

-- opts.timeout by netlua's one rule: nil is dflt, negative blocks (-1),
-- NaN and what is no number raise
local function opt_timeout(opts, dflt, level)
  if opts.timeout == nil then return dflt end
  local t, why = core.timeout(opts.timeout)
  if t == nil then opterror("timeout", why, (level or 2) + 1) end
  return t
end

local function checkopts(opts, n, who)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(n, who, "table expected, got " .. type(opts), 3)
  end
  return opts or {}
end

local function opt_type(opts, name, want, level)
  local v = opts[name]
  if v ~= nil and type(v) ~= want then
    opterror(name, want .. " expected, got " .. type(v), (level or 2) + 1)
  end
  return v
end

-- seconds left until `at` (nil: none), never below 0
local function left(at)
  if at == nil then return nil end
  local l = at - monotime()
  return l > 0 and l or 0
end

-- ~/.ssh/known_hosts, as OpenSSH reads it
local function default_known_hosts()
  local home = os.getenv("HOME")
  if home == nil or home == "" then return nil end
  return home .. "/.ssh/known_hosts"
end

-- The server's key against what the script trusts.  nil when it is
-- trusted, else msg, code.
local function check_host_key(c, opts, host)
  local fp, ktype, state, err = c:_hostkey()
  if not fp then return ktype, state end  -- nil, msg, code
  local what = ("%s key %s"):format(ktype, fp)
  if opts.host_key ~= nil then
    local want = opts.host_key
    if type(want) == "string" then want = {want} end
    for _, w in ipairs(want) do
      -- "SHA256:abc" as ssh-keygen -lf prints it; the prefix is optional
      if w == fp or "SHA256:" .. w == fp then return nil end
    end
    return ("ssh %s: host key mismatch: the server has %s, expected %s")
      :format(host, what, table.concat(want, " or ")), "hostkey"
  end
  if opts.insecure then return nil end
  if state == "ok" then return nil end
  if state == "changed" or state == "other" then
    return ("ssh %s: HOST KEY CHANGED: the server has %s, but known_hosts "
      .. "lists %s for it (possible man-in-the-middle; never accepted "
      .. "automatically)"):format(host, what,
        state == "changed" and "another key of that type" or "only keys of other types"),
      "hostkey"
  end
  if state == "error" then
    return ("ssh %s: cannot read known_hosts: %s"):format(host, err), "hostkey"
  end
  -- unknown host, or no known_hosts file yet
  if opts.accept_new then
    local ok, msg, code = c:_learn_hostkey()
    if not ok then return msg, code end
    return nil
  end
  return ("ssh %s: unknown host key: the server has %s; to trust it, add "
    .. "it to known_hosts, or pass host_key = %q or accept_new = true")
    :format(host, what, fp), "hostkey"
end

local function contains(list, x)
  for _, v in ipairs(list or {}) do
    if v == x then return true end
  end
  return false
end

-- The answers to keyboard-interactive prompts: opts.kbdint (a function
-- or a list), or the password for each prompt that asks for one.
local function kbdint_answers(opts, name, instruction, prompts)
  local k = opts.kbdint
  if type(k) == "function" then return k(name, instruction, prompts) end
  if type(k) == "table" then return k end
  local answers = {}
  for i, p in ipairs(prompts) do
    if opts.password and p.prompt:lower():find("password") then
      answers[i] = opts.password
    else
      return nil
    end
  end
  return answers
end

-- Runs every authentication the options allow, the way OpenSSH orders
-- them: keys, agent, keyboard-interactive, password.  true, or nil, msg,
-- code ("denied" when the server refused them all).
local function authenticate(c, opts, user, at)
  c:settimeout(left(at) or -1)
  local res, methods, code = c:_auth("none")
  if res == nil then return nil, methods, code end
  if res == "success" then return true end
  local tried = {}
  local function try(label, ...)
    c:settimeout(left(at) or -1)
    local r, a, b, d = c:_auth(...)
    tried[#tried + 1] = label
    return r, a, b, d
  end
  local keys = opts.key or nil
  if type(keys) == "string" then keys = {keys} end
  local steps = {}
  for _, k in ipairs(keys or {}) do steps[#steps + 1] = {"publickey", k} end
  if opts.agent then steps[#steps + 1] = {"agent"} end
  if opts.kbdint or opts.password then steps[#steps + 1] = {"keyboard-interactive"} end
  if opts.password then steps[#steps + 1] = {"password"} end
  for _, st in ipairs(steps) do
    if contains(methods, st[1] == "agent" and "publickey" or st[1]) then
      local r, a, b, d
      if st[1] == "publickey" then
        r, a, b = try("publickey " .. st[2], "publickey", st[2], opts.passphrase)
        if r == nil and b == "key" then return nil, a, b end
      elseif st[1] == "agent" then
        r, a, b = try("agent", "agent")
      elseif st[1] == "password" then
        r, a, b = try("password", "password", opts.password)
      else
        r, a, b, d = try("keyboard-interactive", "kbdint")
        local rounds = 0
        while r == "info" and rounds < 10 do
          rounds = rounds + 1
          local answers = kbdint_answers(opts, a, b, d)
          if answers == nil then r, a = "denied", methods break end
          r, a, b, d = c:_auth("kbdint", answers)
        end
      end
      if r == nil then return nil, a, b end
      if r == "success" then return true end
      if r == "partial" or r == "denied" then methods = a end
    end
  end
  return nil, ("ssh %s: authentication failed (tried: %s; the server takes: %s)")
    :format(c:_name(), #tried > 0 and table.concat(tried, ", ") or "nothing it takes",
      table.concat(methods or {}, ", ")), "denied"
end

local patched = false

--- Opens an SSH connection: TCP connect, handshake, host key check and
-- login, all within `timeout`.
-- opts (all optional but a way to log in):
-- `user` (default: $USER), `password`, `key` (a private key file, or a
-- list of them; OpenSSH or PEM format), `passphrase` (for the key),
-- `agent` (true: keys from ssh-agent at $SSH_AUTH_SOCK; a path: the
-- agent at that socket), `kbdint` (keyboard-interactive
-- answers: a list, or `function(name, instruction, prompts)` returning
-- one; by default each prompt asking for a password gets `password`),
-- `timeout` (seconds for opening and the default for every call; nil
-- blocks), `keepalive` (seconds: while a call waits that long, an
-- SSH_MSG_IGNORE goes out), `known_hosts` (file; default
-- `~/.ssh/known_hosts`), `host_key` (trusted fingerprint
-- "SHA256:...", or a list), `accept_new` (true: an unknown host's key is
-- added to known_hosts; a changed one never is), `insecure` (true: no
-- host key check at all), `family` ("inet" | "inet6"), `debug` (libssh's
-- log level 1..4, to stderr).
-- @return connection, or nil, message, code ("refused", "timeout",
-- "hostkey", "denied", "key", "protocol", "closed")
function M.open(host, port, opts)
  if type(host) ~= "string" then argerror(1, "open", "string expected, got " .. type(host)) end
  if port == nil then port = M.DEFAULT_PORT end
  if math.type and math.type(port) ~= "integer" and type(port) == "number" then
    port = math.tointeger(port) or port
  end
  if type(port) ~= "number" or port < 1 or port > 65535 or port % 1 ~= 0 then
    argerror(2, "open", "port 1..65535 expected")
  end
  opts = checkopts(opts, 3, "open")
  local user = opt_type(opts, "user", "string") or os.getenv("USER") or os.getenv("LOGNAME")
  if user == nil then opterror("user", "no user given and $USER is not set") end
  opt_type(opts, "password", "string")
  opt_type(opts, "passphrase", "string")
  if opts.agent ~= nil and type(opts.agent) ~= "boolean" and type(opts.agent) ~= "string" then
    opterror("agent", "true or a socket path expected, got " .. type(opts.agent))
  end
  opt_type(opts, "known_hosts", opts.known_hosts == false and "boolean" or "string")
  if opts.key ~= nil and opts.key ~= false and type(opts.key) ~= "string"
      and type(opts.key) ~= "table" then
    opterror("key", "path or list of paths expected, got " .. type(opts.key))
  end
  if opts.host_key ~= nil and type(opts.host_key) ~= "string" and type(opts.host_key) ~= "table" then
    opterror("host_key", "fingerprint or list expected, got " .. type(opts.host_key))
  end
  if opts.kbdint ~= nil and type(opts.kbdint) ~= "function" and type(opts.kbdint) ~= "table" then
    opterror("kbdint", "function or list expected, got " .. type(opts.kbdint))
  end
  local timeout = opt_timeout(opts, -1)
  local ka = opts.keepalive
  if ka ~= nil and (type(ka) ~= "number" or ka ~= ka or ka < 0) then
    opterror("keepalive", "seconds expected")
  end
  local at = timeout >= 0 and monotime() + timeout or nil

  local sock, msg, code = tcp.connect(host, port, {timeout = timeout, family = opts.family})
  if not sock then return nil, msg, code end
  local kh = opts.known_hosts
  if kh == nil then kh = default_known_hosts() or false end
  local c = core.ssh_new(sock, {host = host, port = port, user = user,
    known_hosts = kh, timeout = timeout, keepalive = ka, debug = opts.debug,
    agent_socket = type(opts.agent) == "string" and opts.agent or nil})
  if not c then return nil, msg, code end
  if not patched then  -- <close> ends what close ends
    getmetatable(c).__close = function(x) x:close() end
    patched = true
  end
  local ok, m, cd = c:_handshake(left(at) or -1)
  if ok then
    m, cd = check_host_key(c, opts, c:_name():match("@(.*)$") or host)
    ok = m == nil
  end
  if ok then ok, m, cd = authenticate(c, opts, user, at) end
  if not ok then
    c:close()
    return nil, m, cd
  end
  c:settimeout(timeout)
  return c
end

-- ---- channels -------------------------------------------------------------

--- Opens a session channel and makes its requests (a list of argument
-- lists for ch:_request, in order), all before `at`.  A server that
-- closes the new channel with a request unanswered has not carried it
-- out (it answers before anything else of the channel), and the
-- connection is fine: dropbear 2022.83 does so when an earlier
-- channel's command exits late and its slot was reused; it may also
-- close the channel as it opens it.  Then a fresh channel is tried,
-- three times in all.  Internal (exec, shell, sftp).
-- @return channel, or nil, msg, code (`refused(name, msg)` words a
-- refusal of the request named name)
function M._open_channel(c, at, requests, refused)
  local msg, code
  for _ = 1, 3 do
    local ch
    ch, msg, code = c:_channel(left(at) or -1)
    if not ch then
      if code ~= "closed" or not c:isopen() then return nil, msg, code end
    end
    local ok = ch ~= nil
    for _, r in ipairs(ch and requests or {}) do
      ok, msg, code = ch:_request(unpack(r))
      if not ok then
        if refused and code == "denied" then msg = refused(r, msg) end
        break
      end
    end
    if ok then return ch end
    if ch then ch:close() end
    if code ~= "closed" or not c:isopen() then break end
  end
  return nil, msg, code
end

-- ---- remote commands ----------------------------------------------------

local function call_stream(fn, chunk, who)
  local ok, err = pcall(fn, chunk)
  if not ok then error(who .. " callback: " .. tostring(err), 0) end
end

--- Runs `command` on the server (one channel, closed afterwards) and
-- waits for its end.
-- opts: `timeout` (for the whole command; default the connection's),
-- `stdin` (a string sent as the command's input, then EOF), `env`
-- (table of variables; the server must accept them), `stdout` /
-- `stderr` (functions called with each chunk as it arrives, instead of
-- collecting it), `pty` (true: a terminal, as `ssh -t`).
-- @return stdout, stderr, exit status (nil when a signal ended the
-- command: then its name, "KILL", is the fourth value), or nil, msg,
-- code, stdout so far
function conn:exec(command, opts)
  if type(command) ~= "string" then argerror(1, "exec", "string expected, got " .. type(command)) end
  opts = checkopts(opts, 2, "exec")
  opt_type(opts, "stdin", "string")
  opt_type(opts, "env", "table")
  opt_type(opts, "stdout", "function")
  opt_type(opts, "stderr", "function")
  local timeout = opt_timeout(opts, self:gettimeout())
  local at = timeout >= 0 and monotime() + timeout or nil
  local requests = {}
  for k, v in pairs(opts.env or {}) do requests[#requests + 1] = {"env", tostring(k), tostring(v)} end
  if opts.pty then requests[#requests + 1] = {"pty", "vt100", 80, 24} end
  requests[#requests + 1] = {"exec", command}
  local ch, msg, code = M._open_channel(self, at, requests, function(r, m)
    if r[1] ~= "env" then return m end
    return ("exec: the server refused variable %s: %s"):format(r[2], m)
  end)
  if not ch then return nil, msg, code, "" end
  local out, err = {}, {}
  local function fail(m, c)
    ch:close()
    return nil, m, c, table.concat(out)
  end
  local ok
  if opts.stdin and #opts.stdin > 0 then
    ok, msg, code = ch:_write(opts.stdin, left(at) or -1)
    if not ok then return fail(msg, code) end
  end
  ok, msg, code = ch:_eof()
  if not ok and code ~= "closed" then return fail(msg, code) end
  local on_out, on_err = opts.stdout, opts.stderr
  while true do
    local o, e, c = ch:_read(left(at) or -1)
    if o == nil then
      if c ~= "closed" then return fail(e, c) end
      break
    end
    if #o > 0 then if on_out then call_stream(on_out, o, "stdout") else out[#out + 1] = o end end
    if #e > 0 then if on_err then call_stream(on_err, e, "stderr") else err[#err + 1] = e end end
  end
  local status, signal, c = ch:_status(left(at) or -1)
  if status == nil then return fail(signal, c) end
  ch:close()
  if status == false then
    -- a command ended by a signal is an answer; a channel that closed
    -- with neither status nor signal is not (the server or its session
    -- process died): never a result that looks like success
    if signal == nil then
      return fail(("ssh exec %s: the channel closed without an exit status"):format(self:_name()), "closed")
    end
    return table.concat(out), table.concat(err), nil, signal
  end
  return table.concat(out), table.concat(err), status
end

-- ---- shells ----------------------------------------------------------------

--- Opens an interactive shell (a pty and the user's login shell) as a
-- session object with the Telnet session's methods: `read_until`,
-- `read_some`, `read_very_eager`, `expect`, `write`, `login`,
-- `find_prompt`, `cmd`, `cmds`, `set_log`, `set_window`, `close`...
-- opts: `terminal` (default "vt100"), `window` ({cols, rows}, default
-- {80, 24}), `timeout` (default for its reads; the connection's),
-- `max_buffer`, `max_match` and `log` as for telnet.open, `prompt` (a
-- Lua pattern for the first prompt; default netlua.cli's),
-- `greeting` (seconds to wait for that first prompt: default the
-- timeout, or 10 without one; false: do not wait, for a device that
-- prompts only after a line end).
-- @return session and the greeting read before the first prompt, or
-- nil, msg, code
function conn:shell(opts)
  opts = checkopts(opts, 1, "shell")
  local term = opts.terminal or "vt100"
  if type(term) == "table" then term = term[1] end
  if type(term) ~= "string" then opterror("terminal", "string expected") end
  local w = opts.window or {80, 24}
  if type(w) ~= "table" then opterror("window", "{cols, rows} expected") end
  local cols, rows = w[1] or w.cols, w[2] or w.rows
  if type(cols) ~= "number" or type(rows) ~= "number" then opterror("window", "{cols, rows} expected") end
  if opts.log ~= nil and type(opts.log) ~= "string" and io.type(opts.log) ~= "file" then
    opterror("log", "path or open file expected")
  end
  local timeout = opt_timeout(opts, self:gettimeout())
  local ch, msg, code = M._open_channel(self, timeout >= 0 and monotime() + timeout or nil,
    {{"pty", term, cols, rows}, {"shell"}})
  if not ch then return nil, msg, code end
  local s = core.ssh_term(ch, {timeout = timeout, max_buffer = opts.max_buffer,
    max_match = opts.max_match, debug = opts.debug}, self:_name())
  local lmsg, lcode
  s, lmsg, lcode = cli.opened(s, opts.log)
  if not s then return nil, lmsg, lcode end
  -- The shell's greeting (banner, motd) up to its first prompt is read
  -- here, so that find_prompt and cmd start on a quiet line: a prompt
  -- still on its way would be taken for the answer to what they send.
  -- A busy server can take seconds to show it, so the wait is the
  -- shell's whole timeout (10 s when it has none); a device that shows
  -- no prompt until it gets a line end wants `greeting = false`.
  local greeting = ""
  if opts.greeting ~= false then
    local g = opts.greeting
    if g == nil then g = timeout >= 0 and timeout or 10 end
    if type(g) ~= "number" or g ~= g then opterror("greeting", "seconds or false expected") end
    local i, text, code, part = s:expect({opts.prompt or cli.DEFAULT_PROMPT}, g)
    if i then
      greeting = text
    elseif code == "timeout" then
      greeting = part or ""
    else
      s:close()
      return nil, text, code
    end
  end
  return s, greeting
end

--- Opens an SFTP session on this connection (its own channel running the
-- server's "sftp" subsystem): the object of netlua.sftp, with `get`,
-- `put`, `list`, `stat`, `exists`, `size`, `mkdir`, `makedirs`,
-- `rmdir`, `remove`, `rename`, `realpath`, `mirror` and `close` (which
-- closes the session, not the connection).  See doc/sftp.md.
-- opts: `timeout` (seconds each of its calls may take; default the
-- connection's).
-- @return session, or nil, msg, code
function conn:sftp(opts)
  if opts ~= nil and type(opts) ~= "table" then
    argerror(1, "sftp", "table expected, got " .. type(opts))
  end
  return require("netlua.sftp").open(self, opts)
end

--- Sends one keepalive (SSH_MSG_IGNORE) now.
function conn:keepalive()
  return self:send_ignore("")
end

-- the device helpers, the same as a Telnet session's
cli.install(shell)

local c_close = shell.close

--- Closes the shell (and its session log); the connection stays open.
function shell:close()
  cli.close_log(self)
  return c_close(self)
end


--- The text a terminal would show for device output (netlua.screen).
M.clean = require("netlua.screen").clean

-- the channel object is internal (exec and shell use it)
M._channel_methods = chan

return M
