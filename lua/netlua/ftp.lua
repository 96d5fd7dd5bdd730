--- netlua.ftp: an FTP/FTPS client with Python ftplib's methods, on libcurl.
--
--     local ftp = require "netlua.ftp"
--     local s = assert(ftp.new{host = "127.0.0.1", port = 2121,
--                              user = "me", password = "secret", timeout = 10})
--     print(s:getwelcome())
--     s:cwd("pub")
--     for _, e in ipairs(assert(s:list())) do print(e.type, e.size, e.name) end
--     assert(s:get("file.bin", "/tmp/file.bin"))
--     s:quit()
--
-- The session object (C, csrc/ftp.c) has connect, login, getwelcome,
-- set_debuglevel, set_pasv, sendcmd, voidcmd, retrbinary, retrlines,
-- storbinary, storlines, cwd, pwd, size, abort, quit and close.  This file
-- adds the methods that are plain compositions of those (nlst, dir, mlsd,
-- rename, delete, mkd, rmd), listing parsers and the helpers get, put,
-- list, exists, makedirs and mirror.  It does no I/O of its own beyond
-- local files.
--
-- Inside a task of `netlua.run` every method that talks to the server
-- yields while it waits, so other tasks run meanwhile; mirror then fetches
-- in parallel through worker tasks, each with a session of its own.
--
-- Failures return `nil, message, code`: the reply text and the reply code
-- (a number) for a 4xx/5xx reply, or a string code for transport trouble
-- ("timeout", "closed", "refused", "resolve", "tls", "protocol",
-- "callback", "aborted", "io").
-- @module netlua.ftp
local core = require "netlua.core"

-- math.type is 5.3+; before, a number is an integer when it has no fraction
local mtype = math.type or function(x)
  if type(x) == "number" then return x % 1 == 0 and "integer" or "float" end
end

local M = {}
local S = core.methods("netlua.ftp")

--- Version of the libcurl in use (decides the TLS workarounds).
M.curl_version = core.ftp_curl_version()

--- Makes a session.  opts: `host` (connects when given), `port` (21, or
-- 990 for implicit TLS), `user` (logs in when given), `password`, `acct`,
-- `timeout` (seconds per call; nil blocks), `passive` (true), `tls`
-- (nil | "explicit" | "implicit"), `verify` (true), `cafile`, `debug`
-- (level number, or a function receiving each debug line).
-- @return session, or nil, message, code
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error("bad argument #1 to 'new' (table expected, got " .. type(opts) .. ")", 2)
  end
  local s = core.ftp_session(opts)
  if opts.host ~= nil then
    local ok, msg, code = s:connect(opts.host, opts.port)
    if not ok then s:close() return nil, msg, code end
    if opts.user ~= nil then
      ok, msg, code = s:login(opts.user, opts.password, opts.acct)
      if not ok then s:close() return nil, msg, code end
    end
  end
  return s
end

-- A reply {code=, text=} from s:_ask checked against an accepted range;
-- a failure's message starts with what failed ("delete f: 550 ...").
local function want(r, lo, hi, what)
  if r.code >= lo and r.code <= hi then return r.text end
  if r.code < 0 then return nil, what .. ": no reply from the server", "closed" end
  if r.code < 100 or r.code > 599 then return nil, what .. ": " .. r.text, "protocol" end
  if r.code < 200 then
    -- only a preliminary reply: the command's own reply never came
    return nil, what .. ": " .. r.text .. " (and no final reply)", "closed"
  end
  return nil, what .. ": " .. r.text, r.code
end

local function checkstr(v, n, who)
  if type(v) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(n, who, type(v)), 3)
  end
end

-- A remote name: a string without CR, LF or NUL (they would end the
-- command early and smuggle in another).
local function checkname(v, n, who)
  checkstr(v, n, who)
  if v:find("[\r\n%z]") then
    error(("bad argument #%d to '%s' (CR, LF or NUL in name)"):format(n, who), 3)
  end
end

local function checkopts(v, n, who)
  if v ~= nil and type(v) ~= "table" then
    error(("bad argument #%d to '%s' (table expected, got %s)"):format(n, who, type(v)), 3)
  end
  return v or {}
end

local function checkfn(v, name, who)
  if v ~= nil and type(v) ~= "function" then
    error(("bad option '%s' to '%s' (function expected, got %s)"):format(name, who, type(v)), 3)
  end
end

-- Checks that path names a directory (vsftpd lists a missing one as empty).
local function checkdir(s, abs, what)
  local r, msg, code = s:_ask(what, "CWD " .. abs)
  if not r then return nil, msg, code end
  return want(r[1], 200, 299, what)
end

--- Deletes a file.  @return reply text, or nil, message, code
function S:delete(name)
  checkstr(name, 1, "delete")
  local what = "delete " .. name
  local r, msg, code = self:_ask(what, "DELE " .. self:_abspath(name))
  if not r then return nil, msg, code end
  return want(r[1], 200, 299, what)
end

--- Renames `from` to `to` (RNFR + RNTO).  @return reply text, or nil, message, code
function S:rename(from, to)
  checkstr(from, 1, "rename")
  checkstr(to, 2, "rename")
  local a, b = self:_abspath(from), self:_abspath(to)
  local r, msg, code = self:_ask("rename " .. from, "RNFR " .. a, "RNTO " .. b)
  if not r then return nil, msg, code end
  local ok, m2, c2 = want(r[1], 300, 399, "rename " .. from)
  if not ok then return nil, m2, c2 end
  return want(r[2], 200, 299, "rename " .. from .. " to " .. to)
end

--- Makes a directory.  @return the new directory's path, or nil, message, code
function S:mkd(path)
  checkstr(path, 1, "mkd")
  local abs = self:_abspath(path)
  local r, msg, code = self:_ask("mkd " .. path, "MKD " .. abs)
  if not r then return nil, msg, code end
  local ok, m2, c2 = want(r[1], 200, 299, "mkd " .. path)
  if not ok then return nil, m2, c2 end
  local q = r[1].text:match('^%d+ "(.-)"[^"]*$')
  return q and q:gsub('""', '"') or abs
end

--- Removes a directory.  @return reply text, or nil, message, code
function S:rmd(path)
  checkstr(path, 1, "rmd")
  local what = "rmd " .. path
  local r, msg, code = self:_ask(what, "RMD " .. self:_abspath(path))
  if not r then return nil, msg, code end
  return want(r[1], 200, 299, what)
end

--- Names in a directory (NLST), as an array.  Without `path`, bare names
-- of the current directory; with it, names as the server gives them
-- relative to `path` as written.
function S:nlst(path)
  if path ~= nil then checkstr(path, 1, "nlst") end
  local abs = self:_abspath(path or ".")
  local what = path and "nlst " .. path or "nlst"
  local ok, msg, code = checkdir(self, abs, what)
  if not ok then return nil, msg, code end
  local names = {}
  ok, msg, code = self:retrlines("NLST " .. abs, function(l) names[#names + 1] = l end, what)
  if not ok then return nil, msg, code end
  local prefix = abs == "/" and "/" or abs .. "/"
  local lead = path and (path:gsub("/+$", "") .. "/") or ""
  if path == "/" then lead = "/" end
  for i, n in ipairs(names) do
    if n:sub(1, #prefix) == prefix then names[i] = lead .. n:sub(#prefix + 1) end
  end
  return names
end

--- Directory listing (LIST) line by line to `callback` (default: print).
-- @return reply text, or nil, message, code
function S:dir(path, callback)
  if type(path) == "function" then path, callback = nil, path end
  if path ~= nil then checkstr(path, 1, "dir") end
  local abs = self:_abspath(path or ".")
  local what = path and "dir " .. path or "dir"
  local ok, msg, code = checkdir(self, abs, what)
  if not ok then return nil, msg, code end
  return self:retrlines("LIST " .. abs, callback or print, what)
end

-- FEAT answers, per session (weak keys): false without MLSD, else
-- {facts = the facts the server gives by default (the starred ones of its
-- MLST line) as an OPTS MLST argument, or nil}.
local feats = setmetatable({}, {__mode = "k"})

-- The FEAT answer of s, asked once: {MDTM = true, MFMT = true, ...} by
-- upper-case feature name, and mlst = {facts=} or false.
local function features(s)
  local f = feats[s]
  if f == nil then
    local r = s:_cmds("FEAT")
    f = {mlst = false}
    if r and r[1].code == 211 then
      for line in r[1].text:gmatch("\n([^\n]*)") do
        local name, rest = line:match("^%s*(%S+)(.*)$")
        if name then
          name = name:upper()
          f[name] = true
          if name == "MLST" then
            local on = {}
            for fact in rest:gmatch("([^;%s]+)%*") do on[#on + 1] = fact .. ";" end
            f.mlst = {facts = #on > 0 and table.concat(on) or nil}
          end
        end
      end
    end
    feats[s] = f
  end
  return f
end
M._features = features

-- A clone of s talks to the same server: it may take s's FEAT answer
-- instead of asking again (one round trip per mirror worker).
function M._share_features(s, clone)
  if feats[s] ~= nil and feats[clone] == nil then feats[clone] = feats[s] end
end

local function has_mlsd(s) return features(s).mlst end

-- Sessions whose MLSD facts an OPTS MLST of s:mlsd(path, facts) narrowed
-- (weak keys: sessions come and go).
local narrowed = setmetatable({}, {__mode = "k"})

--- MLSD listing: an iterator of name, facts (a table with lower-case fact
-- names: type, size, modify, perm, unique, ...).  `facts` (array) asks the
-- server for those facts first (OPTS MLST); they stay asked for on that
-- session, except that s:list() asks for its own again.
-- @return iterator, or nil, message, code
function S:mlsd(path, facts)
  if path ~= nil then checkstr(path, 1, "mlsd") end
  if facts ~= nil then
    if type(facts) ~= "table" then error("bad argument #2 to 'mlsd' (table expected)", 2) end
    if #facts > 0 then
      has_mlsd(self)   -- FEAT stars the facts in use: ask before narrowing
      local r, msg, code = self:_cmds("OPTS MLST " .. table.concat(facts, ";") .. ";")
      if not r then return nil, msg, code end
      if r[1].code >= 200 and r[1].code < 300 then narrowed[self] = true end
    end
  end
  -- RFC 3659: MLSD data is 8-bit whatever the TYPE, so blocks, not lines
  local blocks = {}
  local ok, msg, code = self:retrbinary("MLSD " .. self:_abspath(path or "."),
    function(b) blocks[#blocks + 1] = b end, 256 * 1024, nil,
    path and "mlsd " .. path or "mlsd")
  if not ok then return nil, msg, code end
  local text, pos = table.concat(blocks), 1
  blocks = nil
  return function()
    if not pos then return nil end
    local name, f
    pos, name, f = core.ftp_mlsd_next(text, pos)
    return name, f
  end
end

---------------------------------------------------------------------------
-- Listing parsers (C, csrc/ftp_list.c)
---------------------------------------------------------------------------

-- Seconds since the epoch for a UTC calendar time.
local function timegm(y, mo, d, h, mi, s)
  y = mo <= 2 and y - 1 or y
  local era = math.floor((y >= 0 and y or y - 399) / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * (mo + (mo > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + h * 3600 + mi * 60 + (s or 0)
end
M.timegm = timegm

-- epoch seconds of an MDTM answer "213 YYYYMMDDHHMMSS[.sss]" (or of
-- the first such stamp in text), or nil
local function parse_mdtm(text)
  local y, mo, d, h, mi, s = text:match("(%d%d%d%d)(%d%d)(%d%d)(%d%d)(%d%d)(%d%d)")
  if not y then return nil end
  return timegm(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(s))
end
M._parse_mdtm = parse_mdtm

--- Turns MLSD facts (keys in any case) into a list entry `{name=, type=,
-- size=, modify=, perm=, unique=, owner=, group=, target=, facts=}`; nil
-- for ".", ".." and the cdir/pdir entries.
function M.mlsd_entry(name, facts)
  return core.ftp_mlsd_entry(name, facts)
end

--- Parses one LIST line (Unix `ls -l` or DOS/IIS style); nil when the
-- line is not an entry (e.g. "total 12").  `now` (default os.time())
-- places year-less Unix dates in the last year not after now + 1 day.
function M.parse_list_line(line, now)
  return core.ftp_parse_line(line, "list", now)
end

-- What list() reads, for servers whose FEAT does not say their defaults.
local LIST_FACTS = "type;size;sizd;modify;perm;unique;unix.mode;unix.owner;unix.uid;unix.group;unix.gid;"

-- After s:mlsd(path, facts), the facts the server gives by default again.
-- true when it took them; false when it refused (list then uses LIST).
local function unnarrow(s, f)
  local r, msg, code = s:_cmds("OPTS MLST " .. (f.facts or LIST_FACTS))
  if not r then return nil, msg, code end
  if r[1].code >= 200 and r[1].code < 300 then narrowed[s] = nil return true end
  return false
end

-- What list entries can hold (fields = {...} picks among them).
local ENTRY_FIELDS = {name = true, type = true, size = true, modify = true, perm = true,
  links = true, owner = true, group = true, target = true, unique = true}

-- Checks list's `fields` option against the names `allowed` (a set),
-- raising for list's caller (FTP's and SFTP's list share it); returns it.
function M._check_fields(fields, allowed)
  if fields == nil then return nil end
  if type(fields) ~= "table" then
    error("bad option 'fields' to 'list' (array of field names expected)", 3)
  end
  for _, f in ipairs(fields) do
    if not allowed[f] then
      error(("bad option 'fields' to 'list' (no field '%s')"):format(tostring(f)), 3)
    end
  end
  return fields
end

--- Parsed directory listing: an array of entries `{name=, type="file"|
-- "dir"|"link"|..., size=, modify=epoch seconds (UTC), perm=, target=
-- (links), owner=, group=, unique=, links=}` sorted by name, from MLSD
-- where the server has it, else LIST parsed.  Fields the listing lacks
-- are nil.
-- @return array, or nil, message, code
function S:list(path, opts)
  if path ~= nil then checkstr(path, 1, "list") end
  opts = checkopts(opts, 2, "list")
  local fields = M._check_fields(opts.fields, ENTRY_FIELDS)
  local entries, msg, code = M._listdir(self, self:_abspath(path or "."),
    path and "list " .. path or "list", fields)
  return entries, msg, code
end

-- list() of the absolute path abs, and how it was read: "mlsd" (times
-- to the second) or "list" (LIST: times to the minute, or the day).
-- fields: the entry fields to keep (nil: all).
function M._listdir(s, abs, what, fields)
  local kind = "list"
  local f = has_mlsd(s)
  if f then
    kind = "mlsd"
    if narrowed[s] then
      local ok, msg, code = unnarrow(s, f)
      if ok == nil then return nil, msg, code end
      if not ok then kind = "list" end
    end
  end
  if kind == "list" then
    -- MLSD of a missing folder is an error; LIST of one is empty on vsftpd
    local ok, msg, code = checkdir(s, abs, what)
    if not ok then return nil, msg, code end
  end
  -- the listing is parsed in C as it comes, piece by piece: no Lua
  -- string per line or per block, no copy of the whole text
  local sink = core.ftp_list_sink(kind, os.time(), fields)
  local ok, msg, code = s:retrbinary((kind == "mlsd" and "MLSD " or "LIST ") .. abs, sink,
    nil, nil, what)
  if not ok then return nil, msg, code end
  local out
  out, msg, code = sink:finish()
  if not out then return nil, what .. ": " .. msg, code end
  return core.ftp_sort_names(out), kind
end

--- True when `path` names a file or directory on the server.
-- @return boolean, or nil, message, code on transport trouble
function S:exists(path)
  checkstr(path, 1, "exists")
  local abs = self:_abspath(path)
  local r, msg, code = self:_ask("exists " .. path, "CWD " .. abs)
  if not r then return nil, msg, code end
  if r[1].code >= 200 and r[1].code < 300 then return true end
  local n
  n, msg, code = self:size(abs)
  if n then return true end
  if type(code) == "number" then return false end
  return nil, msg, code
end

--- Makes `path` and any missing parent directories.
-- @return true, or nil, message, code
function S:makedirs(path)
  checkstr(path, 1, "makedirs")
  local abs, sofar = self:_abspath(path), ""
  local what = "makedirs " .. path
  for part in abs:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    local r, msg, code = self:_ask(what, "CWD " .. sofar)
    if not r then return nil, msg, code end
    if r[1].code >= 300 then
      r, msg, code = self:_ask(what, "MKD " .. sofar)
      if not r then return nil, msg, code end
      if r[1].code >= 300 then return want(r[1], 200, 299, what) end
    end
  end
  return true
end

---------------------------------------------------------------------------
-- Transfers to and from local files
---------------------------------------------------------------------------

--- Downloads `remote`.  `dst` is a local path (written as `dst..".part"`
-- and renamed only on success, so a failure never leaves a complete-looking
-- file), an open Lua file, or nil (the data is returned as a string).
-- opts: `resume` (continue a `.part` left by an earlier failed get; the
-- partial file is then kept on failure), `progress(done, total)`, `size`
-- (the size a listing gave: the file must have it, and SIZE is not asked).
-- A download succeeds only when the bytes received match the size the
-- server gave: its 150 reply, and SIZE when `progress` asked for it or
-- when the 150 named no size (pyftpdlib's); otherwise it fails with code
-- "partial".  A server that names no size and has no SIZE cannot be
-- checked: its 226 is taken, as ftplib does.  `mtime = true` also asks
-- the file's modification time (MDTM, sent before RETR in the same
-- operation: a file changed in between gets the older time) and gives it
-- to the local file when dst is a path.
-- @return true (or the data when dst is nil) and, with `mtime`, the
-- server's time in epoch seconds (nil when it gave none); or nil,
-- message, code
function S:get(remote, dst, opts)
  checkname(remote, 1, "get")
  if dst ~= nil and type(dst) ~= "string" and io.type(dst) ~= "file" then
    error("bad argument #2 to 'get' (path or open file expected)", 2)
  end
  opts = checkopts(opts, 3, "get")
  checkfn(opts.progress, "progress", "get")
  if opts.size ~= nil and mtype(opts.size) ~= "integer" then
    error("bad option 'size' to 'get' (integer expected)", 2)
  end
  if opts.mtime ~= nil and type(opts.mtime) ~= "boolean" then
    error("bad option 'mtime' to 'get' (boolean expected)", 2)
  end
  local what = "get " .. remote
  local want_time, early = opts.mtime == true, nil
  if want_time and remote:find("%c") then
    -- such names go past libcurl, where MDTM is a command of its own:
    -- asked first all the same
    local r = self:_ask(what, "MDTM " .. self:_abspath(remote))
    early = r and r[1].code == 213 and parse_mdtm(r[1].text) or nil
  end
  -- the time the transfer's MDTM gave, else the one asked first
  local function mtime()
    if not want_time then return nil end
    local _, _, t = self:_received()
    return t or early
  end
  local progress = opts.progress
  local total, done = opts.size, 0
  if progress and total == nil then total = self:size(remote) end
  -- what SIZE says must hold too (the 150 reply is checked in C); asked
  -- after the transfer only when the 150 named no size
  local function short(offset)
    local moved, announced = self:_received()
    if not moved then return true end
    local want = total
    if want == nil and announced == nil and offset == 0 then want = self:size(remote) end
    if want and moved + offset ~= want then
      return nil, ("%s: %d of %d bytes%s received"):format(what, moved + offset, want,
        opts.size and " (as listed)" or ""), "partial"
    end
    return true
  end
  if dst == nil then
    local parts = {}
    local ok, msg, code = self:retrbinary("RETR " .. remote, function(b)
      parts[#parts + 1] = b
      done = done + #b
      if progress then progress(done, total) end
    end, 65536, nil, what, want_time)
    if ok then ok, msg, code = short(0) end
    if not ok then return nil, msg, code end
    return table.concat(parts), mtime()
  end
  local f, tmp, offset = dst, nil, 0
  if type(dst) == "string" then
    tmp = dst .. ".part"
    local mode = "wb"
    if opts.resume then
      local old = io.open(tmp, "rb")
      if old then offset = old:seek("end"); old:close(); mode = "ab" end
    end
    local err
    f, err = io.open(tmp, mode)
    if not f then return nil, what .. ": " .. err, "io" end
  end
  done = offset
  local cb = f
  if progress then
    cb = function(b)
      assert(f:write(b))
      done = done + #b
      progress(done, total)
    end
  end
  local ok, msg, code = self:retrbinary("RETR " .. remote, cb, 256 * 1024, offset, what, want_time)
  local t = ok and mtime()
  if ok then ok, msg, code = short(offset) end
  if tmp then
    local cok, cerr = f:close()
    if ok and not cok then ok, msg, code = nil, what .. ": " .. tostring(cerr), "io" end
    if not ok then
      -- a resumed .part is kept for the next try, unless its bytes are
      -- not what the server announced
      if not opts.resume or code == "partial" then os.remove(tmp) end
      return nil, msg, code
    end
    local rok, rerr = os.rename(tmp, dst)
    if not rok then return nil, what .. ": " .. rerr, "io" end
    if t then
      local sok, serr = core.fs_setmtime(dst, t)
      if not sok then return nil, what .. ": " .. tostring(serr), "io" end
    end
  elseif not ok then
    return nil, msg, code
  end
  if want_time then return true, t or nil end
  return true
end

--- Uploads to `remote`.  `src` is an open Lua file, a function returning
-- chunks, or a string: the name of an existing local file, else the data
-- itself (force data with `opts.data = true`).  opts: `append` (APPE),
-- `progress(done, total)`.
-- @return reply text, or nil, message, code
function S:put(src, remote, opts)
  checkname(remote, 2, "put")
  opts = checkopts(opts, 3, "put")
  checkfn(opts.progress, "progress", "put")
  local source, total, close = src, nil, nil
  if type(src) == "string" and not opts.data then
    local f = io.open(src, "rb")
    if f then
      source, close = f, f
      total = f:seek("end"); f:seek("set", 0)
    else
      total = #src
    end
  elseif type(src) == "string" then
    total = #src
  elseif io.type(src) ~= "file" and type(src) ~= "function" then
    error("bad argument #1 to 'put' (string, file or function expected)", 2)
  end
  local done, cb = 0, nil
  if opts.progress then
    local progress = opts.progress
    cb = function(b) done = done + #b; progress(done, total) end
  end
  local ok, msg, code = self:storbinary((opts.append and "APPE " or "STOR ") .. remote,
    source, 256 * 1024, cb, nil, "put " .. remote)
  if close then close:close() end
  return ok, msg, code
end

--- Makes `local_dir` a copy of the tree under `remote_dir` (or, with
-- `reverse`, the server's `remote_dir` a copy of `local_dir`), copying
-- only what differs, as lftp's mirror does; see doc/ftp.md for the
-- options (parallel, delete, dry_run, reverse, only_newer, ignore_time,
-- ignore_size, include, exclude, max_depth, symlinks, progress, resume).
-- @return report {files=, bytes=, skipped=, transferred=, deleted=,
-- failed=}, or nil, message, code, report when the run itself failed
function S:mirror(remote_dir, local_dir, opts)
  checkname(remote_dir, 1, "mirror")
  checkstr(local_dir, 2, "mirror")
  opts = checkopts(opts, 3, "mirror")
  return require("netlua.ftp_mirror").run(self, {listdir = M._listdir,
    features = features, share_features = M._share_features},
    remote_dir, local_dir, opts)
end

---------------------------------------------------------------------------
-- One-shot URL functions
---------------------------------------------------------------------------

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Splits an ftp:// or ftps:// URL into session options, a path and the
-- transfer type of a `;type=a|i|d` suffix (RFC 1738; "i" when absent).
function M.parse_url(url, extra)
  checkstr(url, 1, "parse_url")
  local scheme, rest = url:match("^(ftps?)://(.*)$")
  if not scheme then error("bad argument #1 (ftp:// or ftps:// URL expected)", 3) end
  local typ = "i"
  local head, t = rest:match("^(.*);[Tt][Yy][Pp][Ee]=([AaIiDd])$")
  if head then rest, typ = head, t:lower() end
  local auth, hostport, path = rest:match("^([^/]*@)([^/]*)(.*)$")
  if not auth then hostport, path = rest:match("^([^/]*)(.*)$") end
  local o = {}
  for k, v in pairs(extra or {}) do o[k] = v end
  if auth then
    local u, p = auth:sub(1, -2):match("^([^:]*):?(.*)$")
    o.user, o.password = unescape(u), p ~= "" and unescape(p) or nil
  else
    o.user = o.user or "anonymous"
  end
  local h, port = hostport:match("^%[(.-)%]:?(%d*)$")
  if not h then h, port = hostport:match("^([^:]*):?(%d*)$") end
  o.host = h
  o.port = port ~= "" and tonumber(port) or nil
  if scheme == "ftps" and not o.tls then o.tls = "implicit" end
  -- "/%2Fabs" and "//abs" name an absolute path; "/rel" one relative to
  -- the login folder
  if path:sub(1, 4):upper() == "/%2F" or path:sub(1, 2) == "//" then path = unescape(path:sub(2))
  else path = unescape(path:sub(2)) end
  return o, path, typ
end

-- Session options a LuaSocket-style request table may carry besides the
-- location (host, port, user, password, path or url) and the transfer.
local SESSION_KEYS = {"timeout", "tls", "verify", "cafile", "passive", "acct", "debug"}

-- The session options, path and type of ftp.get{} / ftp.put{}: a `url`
-- field, or host/port/user/password/path as LuaSocket's ftp takes them,
-- with `type` ("i" or "a") overriding the URL's.
local function request(t, who)
  local o, path, typ = {}, t.path, "i"
  if t.url ~= nil then
    checkstr(t.url, 1, who)
    o, path, typ = M.parse_url(t.url)
  else
    if type(t.host) ~= "string" then
      error(("bad argument #1 to '%s' (field 'host' or 'url' expected)"):format(who), 3)
    end
    o.host, o.port = t.host, t.port
    o.user = t.user or "anonymous"
    o.password = t.password
  end
  for _, k in ipairs(SESSION_KEYS) do if t[k] ~= nil then o[k] = t[k] end end
  if t.type ~= nil then typ = tostring(t.type):lower() end
  if typ ~= "i" and typ ~= "a" and typ ~= "d" then
    error(("bad argument #1 to '%s' (type must be \"i\", \"a\" or \"d\")"):format(who), 3)
  end
  if type(path) ~= "string" or path == "" then
    error(("bad argument #1 to '%s' (a path to a file expected)"):format(who), 3)
  end
  return o, path, typ
end

-- Fetches path on s by type: "i" blocks as they come, "a" lines with
-- "\n" ends, "d" the names (NLST), each to put(chunk).
local function fetch(s, path, typ, put)
  if typ == "d" then
    local names, msg, code = s:nlst(path)
    if not names then return nil, msg, code end
    for _, n in ipairs(names) do put(n .. "\n") end
    return true
  elseif typ == "a" then
    return s:retrlines("RETR " .. path, function(l) return put(l .. "\n") end, "get " .. path)
  end
  return s:retrbinary("RETR " .. path, put, 65536, nil, "get " .. path)
end

--- Downloads in one call.  `ftp.get(url [, opts])` returns the data of
-- `ftp://user:pass@host:port/path[;type=a|i|d]` (opts adds session
-- options: timeout, tls, cafile, ...).  `ftp.get{...}` is LuaSocket's
-- form: `url` or `host`, `port`, `user`, `password`, `path`; `type`
-- ("i", "a"); `sink`, an ltn12 sink that gets each chunk and then nil
-- (or nil, err when the download failed); session options as fields.
-- @return the data (string form) or 1 (table form), or nil, message, code
function M.get(url, opts)
  local sink
  local o, path, typ
  if type(url) == "table" then
    o, path, typ = request(url, "get")
    sink = url.sink
    if sink ~= nil and type(sink) ~= "function" then
      error("bad argument #1 to 'get' (field 'sink' must be a function)", 2)
    end
  else
    o, path, typ = M.parse_url(url, opts)
  end
  local s, msg, code = M.new(o)
  if not s then
    if sink then sink(nil, msg) end
    return nil, msg, code
  end
  local parts, ok = {}, nil
  local put = function(b) parts[#parts + 1] = b end
  if sink then
    put = function(b)
      local r, e = sink(b)
      if not r then return nil, e or "sink failed" end
      return 1
    end
  end
  ok, msg, code = fetch(s, path, typ, put)
  s:close()
  if not ok then
    if sink then sink(nil, msg) end
    return nil, msg, code
  end
  if sink then
    sink(nil)  -- the end: ltn12's file sink closes its file here
    return 1
  end
  return table.concat(parts)
end

--- Uploads in one call.  `ftp.put(url, data [, opts])` stores `data` (a
-- string, an open file or a function returning chunks) at the URL
-- (`;type=a` sends it as text).  `ftp.put{...}` is LuaSocket's form:
-- location fields as for ftp.get{}, `source` (an ltn12 source: chunks,
-- then nil; nil, err fails the upload), `type`, session options.
-- @return the final reply text (string form) or 1 (table form), or nil,
-- message, code
function M.put(url, data, opts)
  local o, path, typ, tablef
  if type(url) == "table" then
    o, path, typ = request(url, "put")
    data, tablef = url.source, true
    if type(data) ~= "function" then
      error("bad argument #1 to 'put' (field 'source' must be a function)", 2)
    end
  else
    o, path, typ = M.parse_url(url, opts)
  end
  if typ == "d" then error("bad argument #1 to 'put' (type d is a listing)", 2) end
  local s, msg, code = M.new(o)
  if not s then return nil, msg, code end
  local ok
  if typ == "a" then
    ok, msg, code = s:storlines("STOR " .. path, data, nil, "put " .. path)
  else
    ok, msg, code = s:put(data, path, {data = type(data) == "string"})
  end
  s:close()
  if not ok then return nil, msg, code end
  return tablef and 1 or ok
end

return M
