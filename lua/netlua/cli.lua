--- netlua.cli: the device helpers of a Telnet session (login, find_prompt,
-- cmd, cmds, set_log), built only on the session's `expect`, `write`,
-- `read_very_eager` and `_set_log`, so any session object with those can
-- take them (`cli.install(methods)`).
--
-- What they do for a script driving routers, switches and shells, as
-- Netmiko and scrapli do for Python: learn the prompt the device shows
-- and remove its whole line from command output, remove the echoed
-- command however the device echoed it (CR redraws, backspaces, a wrap at
-- the window width), answer pagers (`--More--` ...), turn colours and
-- cursor moves into plain text (netlua.screen), stop a command list at
-- the first error, and keep a session log with passwords masked.
-- Every failure returns `nil, message, code[, partial]`.
-- @module netlua.cli
local core = require "netlua.core"
local screen = require "netlua.screen"

local M = {}

local monotime = core.monotime
local LOG = core.TELNET_LOG  -- what the session hands to the log writer

-- per-session state, weak keys: {prompt = login's pattern, learnt = the
-- raw prompt line, base = pattern for the learnt prompt, secrets = {...},
-- log = {write = fn, close = fn}}
local state = setmetatable({}, {__mode = "k"})

local function add_secret(t, secret)
  for _, v in ipairs(t.secrets) do
    if v == secret then return end
  end
  t.secrets[#t.secrets + 1] = secret
end

local function st(s)
  local t = state[s]
  if not t then
    t = {secrets = {}}
    state[s] = t
  end
  return t
end

-- a prompt may end in colour codes, blanks, a cursor position query
-- (busybox ash sends ESC [6n) and erase sequences (ash redraws its prompt
-- as CR, prompt, ESC [J when the window size arrives after it) after its
-- last character
local TAIL = "[ \27%[%d;mnJK]*"
local ENDS = "[>#%$%%%]]"

M.DEFAULT_PROMPT = "[%$#>%%]" .. TAIL .. "$"
M.DEFAULT_LOGIN = "[Ll]ogin: ?$"
M.DEFAULT_USERNAME = "[Uu]sername: ?$"
M.DEFAULT_PASSWORD = "[Pp]assword: ?$"
local INCORRECT = "[Ll]ogin incorrect"

--- The pagers `cmd` answers unless told otherwise: each `pattern` must
-- match at the end of the data received so far; `answer` is sent.
M.PAGERS = {
  {pattern = " *[<%-]*%-%- ?[Mm][Oo][Rr][Ee] ?%-%-[%->]*[^\n\r]*", answer = " "},
  {pattern = "%-%-%-%([Mm]ore[^%)\n\r]*%)%-%-%-[^\n\r]*", answer = " "},
  {pattern = "[Pp]ress any key to continue[^\n\r]*", answer = " "},
  {pattern = "[Pp]ress [Qq] to quit[^\n\r]*", answer = " "},
}


local function esc(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?%z]", function(c)
    return c == "\0" and "%z" or "%" .. c
  end))
end

-- opts.timeout by netlua's one rule (core.timeout): nil is the
-- session's timeout, a negative one blocks; NaN and what is no number
-- raise, at the given level as error() has it
local function check_timeout(opts, who, level)
  if opts.timeout == nil then return end
  local t, why = core.timeout(opts.timeout)
  if not t then error(("bad option 'timeout' to '%s' (%s)"):format(who, why), level + 1) end
end

-- The deadline of a whole call: opts.timeout (checked) or the session's
local function deadline_of(self, opts)
  local t = opts.timeout
  if t == nil then t = self:gettimeout() else t = core.timeout(t) end
  if t == nil or t < 0 then return nil end
  return monotime() + t
end

local function left(deadline)
  if not deadline then return nil end
  local t = deadline - monotime()
  return t > 0 and t or 0
end

-- The base of a prompt line: what stays the same when the device changes
-- mode (R1> R1# R1(config)#) or the shell its directory (dev1:~# dev1:/tmp#):
-- the line without its last character and blanks, up to the first "(",
-- ":" or blank; in a prompt opening with "<" or "[", the part between
-- that bracket (matched as optional) and the first "-".  Nil when that has no letter or digit (a bare "$ " or
-- "/tmp # "): then no base can be trusted.
local function rstrip(s)  -- blanks and whole colour/DSR/erase sequences
  repeat
    local n = #s
    s = s:gsub("%s+$", ""):gsub("\27%[[%d;]*[mnJK]$", "")
  until #s == n
  return s
end

local function base_of(raw)
  local b = rstrip(raw)
  if not b:find(ENDS .. "$") then return nil end
  b = rstrip(b:sub(1, -2))
  b = b:match("^[^%(: ]*") or b
  -- <R1>, [R1] and [R1-GigabitEthernet0/1] (Huawei, H3C): the bracket
  -- changes with the mode, a view is added after a "-"
  if b:find("^[<%[]") then b = b:sub(2):match("^[^%-]*") end
  local visible = screen.clean(b)
  if not visible:find("%w") then return nil end
  return b
end

-- Learns the prompt from the text that ended with it.
local function learn(s, text)
  -- the last line; "[^\r\n]*$" would be tried at every byte of a banner
  local raw = text:sub(text:match("^.*[\r\n]()") or 1)
  local t = st(s)
  t.learnt, t.base = raw, base_of(raw)
  return raw
end

-- A pattern whose two position captures frame its match, and whether the
-- whole line the match is on goes (false: only the match).
local function framed(p)
  local head, tail = "", ""
  if p:sub(1, 1) == "^" then head, p = "^", p:sub(2) end
  if p:sub(-1) == "$" and p:sub(-2) ~= "%$" then tail, p = "$", p:sub(1, -2) end
  return head .. "()" .. p .. "()" .. tail, true
end

local function prompt_pattern(s, opts)
  if opts.prompt then return framed(opts.prompt) end
  local t = state[s]
  if t and t.base then
    return "()[<%[]?" .. esc(t.base) .. "[^\n\r]-" .. ENDS .. TAIL .. "()$", false
  end
  return framed((t and t.prompt) or M.DEFAULT_PROMPT)
end

local LOGIN_FIELDS = {"user", "password", "login_prompt", "password_prompt", "prompt"}

--- Logs in: answers the login (or "Username:") prompt with `user` and the
-- password prompt with `password` (masked in debug output and the session
-- log), then waits for the shell prompt and learns it (see `find_prompt`).
-- "Login incorrect" is recognised as soon as it arrives.
-- opts: `user`, `password`, `login_prompt` (Lua pattern, default
-- "[Ll]ogin: ?$" or "[Uu]sername: ?$"), `password_prompt` ("[Pp]assword: ?$"),
-- `prompt` (M.DEFAULT_PROMPT: one of $ # > % then blanks, colour codes or
-- a cursor position query), `timeout` (whole call; default the session's).
-- @return the text before the prompt (banner, motd) and the prompt line,
-- or nil, msg, code ("denied", "timeout", "closed"), text so far
function M.login(self, opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'login' (table expected, got " .. type(opts) .. ")", 2)
  end
  for _, k in ipairs(LOGIN_FIELDS) do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then
      error(("bad argument #1 to 'login' (field '%s' must be a string)"):format(k), 2)
    end
  end
  check_timeout(opts, "login", 2)
  local t = st(self)
  local prompt = opts.prompt or M.DEFAULT_PROMPT
  local pp = opts.password_prompt or M.DEFAULT_PASSWORD
  local pats = {prompt, INCORRECT, opts.login_prompt or M.DEFAULT_LOGIN, pp}
  if not opts.login_prompt then pats[5] = M.DEFAULT_USERNAME end
  local deadline = deadline_of(self, opts)
  t.prompt, t.learnt, t.base = prompt, nil, nil
  if opts.password and #opts.password > 0 then add_secret(t, opts.password) end
  local seen = {}
  local sent_user, sent_pass = false, false
  while true do
    local i, text, code, part = self:expect(pats, left(deadline))
    if not i then
      seen[#seen + 1] = part
      local msg = code == "timeout" and "login: timeout" or (text:gsub("^expect", "login"))
      return nil, msg, code, table.concat(seen)
    end
    seen[#seen + 1] = text
    if i == 1 then
      local all = table.concat(seen)
      local raw = learn(self, all)
      return all:sub(1, #all - #raw), raw
    elseif i == 2 or (i >= 3 and i ~= 4 and sent_user) then
      return nil, "login: Login incorrect", "denied", table.concat(seen)
    elseif i ~= 4 then
      if not opts.user then
        return nil, "login: the server asks for a user name", "denied", table.concat(seen)
      end
      local ok, msg, c = self:write(opts.user .. "\n")
      if not ok then return nil, msg, c end
      sent_user = true
    else
      if sent_pass or not opts.password then
        return nil, "login: " .. (sent_pass and "Login incorrect" or "a password is needed"),
          "denied", table.concat(seen)
      end
      local ok, msg, c = self:write(opts.password .. "\n", true)
      if not ok then return nil, msg, c end
      sent_pass = true
    end
  end
end

local NONE = {}  -- read only: no options given, no pagers wanted

local function checkopts(opts, n, who)
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(n, who, type(opts)), 3)
  end
  opts = opts or NONE
  if opts.prompt ~= nil and type(opts.prompt) ~= "string" then
    error(("bad argument #%d to '%s' (field 'prompt' must be a string)"):format(n, who), 3)
  end
  check_timeout(opts, who, 3)
  return opts
end

--- Finds the device's prompt as Netmiko's find_prompt does: drops what is
-- buffered, sends an empty line and returns the prompt line the device
-- answers with, colours removed and trailing blanks trimmed ("R1#").
-- `cmd` then uses it (its part before the mode: "R1" matches R1>, R1#
-- and R1(config)#).  opts: `prompt` (a Lua pattern for the prompt's end,
-- default: one of > # $ % ] then blanks or colour codes), `timeout`.
-- @return the prompt, or nil, msg, code, text so far
function M.find_prompt(self, opts)
  opts = checkopts(opts, 1, "find_prompt")
  local junk, jm, jc = self:read_very_eager()
  if not junk and jc ~= "closed" then return nil, jm, jc, "" end
  local ok, msg, code = self:write("\n")
  if not ok then return nil, msg, code, "" end
  -- the device was asked for a prompt: one ending in "]" counts too; it
  -- comes after the line end that answers ours (before it: a redraw)
  local deadline = deadline_of(self, opts)
  local seen = {}
  repeat
    local i, text, c2, part = self:expect({opts.prompt or ENDS .. TAIL .. "$"}, left(deadline))
    if not i then
      seen[#seen + 1] = part
      return nil, c2 == "timeout" and "find_prompt: timeout" or (text:gsub("^expect", "find_prompt")),
        c2, table.concat(seen)
    end
    seen[#seen + 1] = text
  until text:find("\n")
  local raw = learn(self, seen[#seen] .. (self:read_very_eager() or ""))
  return (screen.clean(raw):gsub("%s+$", ""))
end

-- The echoed command at the start of cleaned output: the first lines,
-- joined (a wrap at the window width splits it), ending with the command
-- (a CR redraw puts the prompt before it).  Without it, the output stays.
local function strip_echo(out, line)
  local want = line:gsub("%s+$", "")
  local acc, pos = "", 1
  while #acc <= 2 * #want + 256 do  -- a CR redraw shows it twice
    local nl = out:find("\n", pos, true)
    if not nl then break end
    acc = acc .. out:sub(pos, nl - 1)
    pos = nl + 1
    local a = acc:gsub("%s+$", "")
    if #want == 0 and a == "" or #want > 0 and a:sub(-#want) == want then
      return out:sub(pos)
    end
  end
  return out
end

-- raw = true: only an exact first line (CR and NUL aside) counts
local function strip_echo_raw(out, line)
  local first, rest = out:match("^([^\n]*\n)(.*)$")
  if first then
    local f = first:gsub("[\r\n%z]", "")
    if f == line or (#line > 0 and f:sub(-#line) == line) then return rest end
  end
  return out
end

local function finish(text, line, raw)
  if raw then return strip_echo_raw(text, line) end
  return strip_echo(screen.clean(text), line)
end

local function pagers_of(opt, n, who)
  if opt == false then return NONE end
  if opt == nil then return M.PAGERS end  -- read only
  if type(opt) ~= "table" then
    error(("bad argument #%d to '%s' (field 'pager' must be false or a table)"):format(n, who), 3)
  end
  local list = {}
  local extra = opt.pattern and {opt} or opt
  for _, p in ipairs(extra) do
    if type(p) ~= "table" or type(p.pattern) ~= "string"
      or (p.answer ~= nil and type(p.answer) ~= "string") then
      error(("bad argument #%d to '%s' (pager: {pattern = string, answer = string})"):format(n, who), 3)
    end
    local pat = p.pattern  -- matched at the end of the data anyway
    if pat:sub(-1) == "$" and pat:sub(-2) ~= "%$" then pat = pat:sub(1, -2) end
    list[#list + 1] = {pattern = pat, answer = p.answer or " "}
  end
  for _, p in ipairs(M.PAGERS) do list[#list + 1] = p end
  return list
end

local function check_line(line, n, who)
  if type(line) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, who, type(line)), 3)
  end
  if line:find("[\r\n]") then
    error(("bad argument #%d to '%s' (line contains CR or LF)"):format(n, who), 3)
  end
end

-- expect's results, no table made: index, text, first and last value
-- after them (the match's start and end captures; on a failure the
-- message, code and text so far)
local function ends(i, text, a, ...)
  local n = select("#", ...)
  if n == 0 then return i, text, a, nil end
  return i, text, a, (select(n, ...))
end

-- cmd's work, for cmd and cmds (arguments already checked)
local function run(self, line, opts, pagers)
  local deadline = deadline_of(self, opts)
  local pat, whole_line = prompt_pattern(self, opts)
  -- pagers first: "<--- More --->" also ends the way a prompt may
  local pats = {}
  for i, p in ipairs(pagers) do pats[i] = "()" .. p.pattern .. "()$" end
  pats[#pats + 1] = pat
  -- what came before the command is not its output (a late prompt
  -- redraw, the tail of an earlier command)
  local _, jm, jc = self:read_very_eager()
  if jm and jc ~= "closed" then return nil, (jm:gsub("^[%w_]+", "cmd")), jc, "" end
  local ok, msg, code = self:write(line .. "\n")
  if not ok then return nil, msg, code, "" end
  local parts, ended = {}, false
  while true do
    local i, text, a, z = ends(self:expect(pats, left(deadline)))
    if not i then  -- text: the message, a: the code, z: the text so far
      parts[#parts + 1] = z or ""
      local m = a == "timeout" and "cmd: timeout" or (text:gsub("^expect", "cmd"))
      return nil, m, a, finish(table.concat(parts), line, opts.raw)
    end
    -- the first and last captures are ours: the match's start and end
    local body = text:sub(1, #text - (z - a))
    ended = ended or text:find("\n") ~= nil
    if i == #pats and not ended then
      -- a prompt before any line ended: the command's echo and its line
      -- end always come first, so this is the old prompt redrawn (ash
      -- does when the window size arrives late), not the command's end
      parts[#parts + 1] = body
    elseif i == #pats then
      if whole_line then body = body:match("^(.*[\r\n])") or "" end
      parts[#parts + 1] = body
      return finish(table.concat(parts), line, opts.raw)
    else
      parts[#parts + 1] = body
      ok, msg, code = self:write(pagers[i].answer)
      if not ok then return nil, msg, code, finish(table.concat(parts), line, opts.raw) end
    end
  end
end

--- Runs one command line: writes `line` and a newline, answers pagers
-- until the prompt comes, and returns the output between the echoed
-- command and the prompt line, as a terminal shows it (netlua.screen:
-- LF line ends, no colours or cursor moves, backspaces applied).
-- opts: `prompt` (Lua pattern; default the prompt `login`/`find_prompt`
-- learnt, else login's or M.DEFAULT_PROMPT), `timeout` (whole call, default the
-- session's), `pager` (false: answer none; `{pattern =, answer =}` or a
-- list of them: answered before the built-in ones), `raw` (true: the
-- bytes as received, only the echo line, pager texts and prompt removed).
-- @return output, or nil, msg, code ("timeout", "closed"), output so far
function M.cmd(self, line, opts)
  check_line(line, 1, "cmd")
  opts = checkopts(opts, 2, "cmd")
  return run(self, line, opts, pagers_of(opts.pager, 2, "cmd"))
end

--- Runs command lines in order, as `cmd` does each (opts as for `cmd`,
-- `timeout` per command), plus `error_pattern`: a Lua pattern tried on
-- each line of each output ("^%% " for "% Invalid input"); the first
-- output with a matching line stops the list.
-- @return the list of outputs, or nil, msg, code ("command", "timeout",
-- "closed"), the outputs so far (the failing command's last)
function M.cmds(self, list, opts)
  if type(list) ~= "table" then
    error("bad argument #1 to 'cmds' (table expected, got " .. type(list) .. ")", 2)
  end
  for i = 1, #list do
    if type(list[i]) ~= "string" or list[i]:find("[\r\n]") then
      error(("bad argument #1 to 'cmds' (entry %d: a line without CR or LF expected)"):format(i), 2)
    end
  end
  opts = checkopts(opts, 2, "cmds")
  local ep = opts.error_pattern
  if ep ~= nil and type(ep) ~= "string" then
    error("bad argument #2 to 'cmds' (field 'error_pattern' must be a string)", 2)
  end
  local pagers = pagers_of(opts.pager, 2, "cmds")
  local outs = {}
  for i, line in ipairs(list) do
    local out, msg, code, part = run(self, line, opts, pagers)
    if not out then
      outs[i] = part
      return nil, (msg:gsub("^cmd", "cmds")), code, outs
    end
    outs[i] = out
    if ep then
      for l in out:gmatch("[^\n]+") do
        if l:find(ep) then
          return nil, ("cmds: '%s': %s"):format(line, l), "command", outs
        end
      end
    end
  end
  return outs
end

-- The log writer: masks every secret, also one split across two reads
-- (the bytes that may start a secret wait for the next call).
local function log_writer(s, f, owned)
  local t = st(s)
  local pending = ""
  local function mask(d)
    for _, sec in ipairs(t.secrets) do d = d:gsub(esc(sec), "********") end
    return d
  end
  local function held(d)
    local keep = 0
    for _, sec in ipairs(t.secrets) do
      for k = math.min(#sec - 1, #d), keep + 1, -1 do
        if d:sub(-k) == sec:sub(1, k) then keep = k break end
      end
    end
    return keep
  end
  local function flush()
    if #pending > 0 then f:write(mask(pending)) pending = "" end
  end
  local w = {}
  function w.write(data, dir)
    if dir == LOG.read then
      local d = pending .. data
      local keep = held(d)
      pending = d:sub(#d - keep + 1)
      f:write(mask(d:sub(1, #d - keep)))
    else
      flush()
      f:write(dir == LOG.secret and "********" .. data:match("[\r\n]*$") or mask(data))
    end
    f:flush()
  end
  function w.close()
    flush()
    if owned then f:close() else f:flush() end
  end
  return w
end

--- Starts (or stops, with nil) the session log: every data byte read and
-- written goes to `target` (a path, opened for writing, or an open file),
-- with passwords given to `login` (and `secrets`) shown as "********".
-- Negotiation bytes are not logged.  The log is closed with the session.
-- @return true, or nil, msg, code when the file cannot be opened
function M.set_log(self, target, secrets)
  if target ~= nil and type(target) ~= "string" and io.type(target) ~= "file" then
    error("bad argument #1 to 'set_log' (path or open file expected, got " .. type(target) .. ")", 2)
  end
  if secrets ~= nil and type(secrets) ~= "table" then
    error("bad argument #2 to 'set_log' (table expected, got " .. type(secrets) .. ")", 2)
  end
  local t = st(self)
  for _, sec in ipairs(secrets or {}) do
    if type(sec) == "string" and #sec > 0 then add_secret(t, sec) end
  end
  if t.log then t.log.close() t.log = nil end
  if target == nil then
    self:_set_log(nil)
    return true
  end
  local f, owned = target, false
  if type(target) == "string" then
    local msg, code
    f, msg, code = io.open(target, "wb")
    if not f then return nil, "set_log: " .. msg, code end
    owned = true
  end
  t.log = log_writer(self, f, owned)
  self:_set_log(t.log.write)
  return true
end

--- Closes the session log, if any (the session's close calls it).
function M.close_log(self)
  local t = state[self]
  if t and t.log then
    self:_set_log(nil)
    t.log.close()
    t.log = nil
  end
end

--- Adds login, find_prompt, cmd, cmds and set_log to a methods table.
-- the metatables whose __close already closes the session log too
local closing = setmetatable({}, {__mode = "k"})

--- What opening a session ends with, for either transport: `<close>`
-- closes the session log too (the metatable's __close calls the
-- session's close), and `log` (a path or an open file, or nil) starts
-- the session log.  Returns s, or nil, msg, code (s closed then).
function M.opened(s, log)
  local mt = getmetatable(s)
  if not closing[mt] then
    mt.__close = function(x) x:close() end
    closing[mt] = true
  end
  if log then
    local ok, msg, code = s:set_log(log)
    if not ok then
      s:close()
      return nil, msg, code
    end
  end
  return s
end

function M.install(methods)
  methods.login = M.login
  methods.find_prompt = M.find_prompt
  methods.cmd = M.cmd
  methods.cmds = M.cmds
  methods.set_log = M.set_log
end

return M
