--- netlua.sftp: SFTP (version 3) over an SSH connection, with the FTP
-- session's helpers: `get`, `put`, `list`, `exists`, `size`,
-- `makedirs`, `mirror` take the same arguments and options and give the
-- same results as netlua.ftp's, so a script moves between them.
--
--     local ssh = require "netlua.ssh"
--     local c = assert(ssh.open("10.0.0.1", 22, {user = "admin", key = "id_ed25519"}))
--     local sf = assert(c:sftp())
--     assert(sf:get("logs/today.log", "/tmp/today.log"))
--     for _, e in ipairs(assert(sf:list("logs"))) do print(e.type, e.size, e.name) end
--     sf:close()
--
-- One session is one channel running the server's "sftp" subsystem;
-- `close` ends the channel, not the connection, and a connection holds
-- any number of sessions at once.  Reads and writes are pipelined: up
-- to 16 requests of the largest block the server takes (its
-- limits@openssh.com, else 32 KiB) are in flight.  The wire format is
-- csrc/sftp_proto.c's (core.sftp_encode / core.sftp_decode), whose
-- header lists what OpenSSH's sftp-server does beyond the draft.
-- Failures return `nil, message, code`; wrong argument types raise.
-- @module netlua.sftp
local core = require "netlua.core"
local sched = require "netlua.sched"
local drive = require "netlua.drive"

local encode, decode = core.sftp_encode, core.sftp_decode
local monotime = core.monotime
local floor = math.floor
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local unpack = table.unpack or unpack

-- math.type is 5.3+; before, a number is an integer when it has no fraction
local mtype = math.type or function(x)
  if type(x) == "number" then return x % 1 == 0 and "integer" or "float" end
end

local M = {}

--- Requests in flight at once during a transfer.
M.DEPTH = 16
--- The block of a READ or WRITE when the server does not say its limits.
M.BLOCK = 32 * 1024
-- the largest block asked for even when a server allows more: its DATA
-- reply must fit the codec's default packet limit (256 KiB + 1 KiB)
local MAX_BLOCK = 255 * 1024

local FXF_READ, FXF_WRITE, FXF_APPEND, FXF_CREAT, FXF_TRUNC = 1, 2, 4, 8, 16
local FX_EOF = 1

-- status codes as failure codes
local CODES = {[2] = "nofile", [3] = "denied"}

local Session = {}
local S = {}
Session.__index = S

local function argerror(n, who, msg, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, who, msg), (level or 2) + 1)
end

local function checkstr(v, n, who)
  if type(v) ~= "string" then argerror(n, who, "string expected, got " .. type(v), 3) end
end

local function checkopts(v, n, who)
  if v ~= nil and type(v) ~= "table" then argerror(n, who, "table expected, got " .. type(v), 3) end
  return v or {}
end

local function checkfn(v, name, who)
  if v ~= nil and type(v) ~= "function" then
    error(("bad option '%s' to '%s' (function expected, got %s)"):format(name, who, type(v)), 3)
  end
end

local function checkself(self, who)
  if getmetatable(self) ~= Session then
    error(("calling '%s' on bad self (sftp session expected)"):format(who), 3)
  end
  if self._closed then error(("sftp %s: the session is closed"):format(who), 3) end
end

-- seconds left until at (nil: none): -1 blocks, never below 0 otherwise
local function left(at)
  if at == nil then return -1 end
  local l = at - monotime()
  return l > 0 and l or 0
end

local function join(dir, name)
  if dir == "" or dir == "." then return name end
  if dir:sub(-1) == "/" then return dir .. name end
  return dir .. "/" .. name
end

---------------------------------------------------------------------------
-- Entries
---------------------------------------------------------------------------

-- st_mode's type bits (mode / 4096 % 16) as list()'s type and ls's letter
local TYPES = {[4] = "dir", [8] = "file", [10] = "link"}
local LETTERS = {[1] = "p", [2] = "c", [4] = "d", [6] = "b", [8] = "-", [10] = "l", [12] = "s"}

-- "drwxr-xr-x" of a mode, as ls -l (and FTP's LIST) shows it
local function permstring(mode)
  local t = {LETTERS[floor(mode / 4096) % 16] or "?"}
  local special = floor(mode / 512) % 8  -- setuid 4, setgid 2, sticky 1
  for i = 2, 0, -1 do
    local bits = floor(mode / 8 ^ i) % 8
    local x = bits % 2 == 1
    local s = floor(special / 2 ^ i) % 2 == 1
    t[#t + 1] = floor(bits / 4) % 2 == 1 and "r" or "-"
    t[#t + 1] = floor(bits / 2) % 2 == 1 and "w" or "-"
    if s then
      local c = i == 0 and "t" or "s"
      t[#t + 1] = x and c or c:upper()
    else
      t[#t + 1] = x and "x" or "-"
    end
  end
  return table.concat(t)
end
M.permstring = permstring

-- A list()/stat() entry from a name and its attributes.
local function entry(name, a)
  local e = {name = name}
  if a.permissions then
    e.type = TYPES[floor(a.permissions / 4096) % 16] or "other"
    e.perm = permstring(a.permissions)
    e.mode = a.permissions % 4096
  end
  e.size, e.modify, e.owner, e.group = a.size, a.mtime, a.uid, a.gid
  return e
end

---------------------------------------------------------------------------
-- The packet stream
---------------------------------------------------------------------------

local function nextid(self)
  local id = self._id
  self._id = (id + 1) % 4294967296
  return id
end

-- The session can go on no more (its channel or connection ended, a
-- write broke off inside a packet, the server sent what is not SFTP).
local function dead(self, msg, code)
  self._dead = {msg, code}
  self._ch:close()
  return nil, msg, code
end

-- the packet length at byte i of s (a big-endian uint32)
local function u32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- Sends bytes (whole packets), after what an earlier timeout left owing.
-- A timeout (a stopped server fills the channel's window) can cut a
-- packet: the rest of it is kept in self._owed and goes first next time,
-- so the stream stays whole and the session usable, as the docs promise
-- for a timeout; the packets not begun are dropped (their requests fail
-- with the call).  With `keep` all that did not go is owed (close_later's
-- CLOSE).  Any other failure ends the session.
local function send(self, what, bytes, at, keep)
  local owed, start = self._owed, 0  -- start: where the new packets begin
  if owed then bytes, start = owed .. bytes, #owed end
  local ok, msg, code, sent = self._ch:_write(bytes, left(at))
  if ok then
    self._owed = nil
    return true
  end
  if code == "timeout" and sent then
    -- the first packet boundary at or after what went
    local stop = start
    while stop < sent do stop = stop + 4 + u32(bytes, stop + 1) end
    local rest = bytes:sub(sent + 1, keep and #bytes or stop)
    self._owed = rest ~= "" and rest or nil
    return nil, what .. ": " .. msg, code
  end
  if code ~= "closed" then
    local _, m, c = dead(self, ("%s: %s (the session is closed)"):format(what, msg), code)
    return nil, m, c
  end
  return dead(self, what .. ": " .. msg, "closed")
end

-- The next packet from the server: packet, or nil, msg, code.  Bytes
-- read before a timeout stay in the buffer: the stream stays whole.
local function recv(self, what, at)
  while true do
    local pk, used, miss = decode(self._buf, self._max, self._pos)
    if pk then
      self._pos = self._pos + used
      return pk
    end
    if used == "malformed" then
      return dead(self, ("%s: the server sent what is not SFTP (%s)"):format(what, miss), "protocol")
    end
    local parts, got, fail = {}, 0, nil
    while got < miss do
      local o, e, c = self._ch:_read(left(at))
      if o == nil then fail = {e, c} break end
      if #o > 0 then parts[#parts + 1] = o; got = got + #o end
    end
    if got > 0 then
      if self._pos > #self._buf then
        self._buf = table.concat(parts)
      else
        parts[0] = self._buf:sub(self._pos)
        self._buf = table.concat(parts, "", 0)
      end
      self._pos = 1
    end
    if fail then
      if fail[2] == "timeout" then return nil, what .. ": timed out", "timeout" end
      return dead(self, what .. ": " .. tostring(fail[1]), fail[2] == "closed" and "closed" or fail[2])
    end
  end
end

-- The reply to request id: packet, or nil, msg, code (the id is then
-- left to be skipped when its reply comes).
local function await(self, what, id, at)
  while true do
    local pk, msg, code = recv(self, what, at)
    if not pk then
      self._orphan[id] = true
      return nil, msg, code
    end
    if pk.id == id then return pk end
    self._orphan[pk.id] = nil  -- a reply nobody waits for any more
  end
end

-- One request and its reply.
local function call(self, what, at, kind, ...)
  local id = nextid(self)
  local ok, msg, code = send(self, what, encode(kind, id, ...), at)
  if not ok then return nil, msg, code end
  return await(self, what, id, at)
end

local function status_fail(what, pk)
  local m = pk.message ~= "" and pk.message or pk.name or ("status " .. tostring(pk.code))
  return nil, what .. ": " .. m, CODES[pk.code] or "failure"
end

-- pk when it is of type want; else the failure it means
local function expect(self, what, pk, want)
  if pk.type == want then return pk end
  if pk.type == "status" then return status_fail(what, pk) end
  return dead(self, ("%s: a %s reply where %s was due"):format(what, pk.type, want), "protocol")
end

-- A request answered by STATUS: true or nil, msg, code.
local function simple(self, what, at, kind, ...)
  local pk, msg, code = call(self, what, at, kind, ...)
  if not pk then return nil, msg, code end
  if pk.type ~= "status" then return expect(self, what, pk, "status") end
  if pk.code ~= 0 then return status_fail(what, pk) end
  return true
end

-- A request answered by one packet of type want.
local function ask(self, what, at, want, kind, ...)
  local pk, msg, code = call(self, what, at, kind, ...)
  if not pk then return nil, msg, code end
  return expect(self, what, pk, want)
end

-- Sends CLOSE for handle without waiting for its answer (after a
-- failure: the reply is skipped when it comes).
local function close_later(self, handle)
  if self._dead then return end
  local id = nextid(self)
  self._orphan[id] = true
  -- no wait: what does not go now goes before the next request
  send(self, "close", encode("close", id, handle), monotime(), true)
end

-- Runs fn(self, at, ...) as one call: one at a time per session (other
-- tasks wait their turn), within the session's timeout.
local function run(self, who, fn, ...)
  local at = self._timeout >= 0 and monotime() + self._timeout or nil
  while self._busy do
    if not core.coop_task() then
      error(("sftp %s: the session is busy with another call (one call at a time)"):format(who), 3)
    end
    local ok = self._free:wait(at and left(at) or -1)
    if self._closed then return nil, ("sftp %s: the session was closed"):format(who), "closed" end
    if not ok and self._busy then
      return nil, ("sftp %s: timed out waiting for the session's other call"):format(who), "timeout"
    end
  end
  if self._dead then return nil, self._dead[1], "closed" end
  self._busy = true
  self._free:clear()
  local r = pack(drive.pcall(fn, self, at, ...))
  self._busy = false
  self._free:set()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

---------------------------------------------------------------------------
-- Opening
---------------------------------------------------------------------------

--- Opens an SFTP session on SSH connection `conn` (use `conn:sftp(opts)`).
-- opts: `timeout` (seconds each call may take; default the connection's).
-- @return session, or nil, message, code
function M.open(conn, opts)
  opts = checkopts(opts, 1, "sftp")
  local timeout = conn:gettimeout()
  if opts.timeout ~= nil then
    local t, why = core.timeout(opts.timeout)
    if t == nil then error(("bad option 'timeout' (%s)"):format(why), 3) end
    timeout = t
  end
  local at = timeout >= 0 and monotime() + timeout or nil
  -- dropbear may close a fresh channel unanswered: ssh.lua's opener
  -- tries a new one then
  local ch, msg, code = require("netlua.ssh")._open_channel(conn, at, {{"subsystem", "sftp"}})
  if not ch then
    if code == "denied" then
      return nil, "sftp: the server refused the sftp subsystem: " .. tostring(msg), code
    end
    return nil, "sftp: " .. tostring(msg), code
  end
  local ok
  local self = setmetatable({_conn = conn, _ch = ch, _opts = opts, _timeout = timeout,
    _buf = "", _pos = 1, _max = 0, _id = 1, _orphan = {}, _busy = false,
    _free = sched.event(), _rblock = M.BLOCK, _wblock = M.BLOCK}, Session)
  local function failed(m, c)
    ch:close()
    return nil, m, c
  end
  ok, msg, code = send(self, "sftp", encode("init"), at)
  if not ok then return failed(msg, code) end
  local pk
  pk, msg, code = recv(self, "sftp", at)
  if not pk then return failed(msg, code) end
  if pk.type ~= "version" then
    return failed(("sftp: a %s packet instead of VERSION"):format(pk.type), "protocol")
  end
  if pk.version < 3 then
    return failed(("sftp: the server speaks version %d, not 3"):format(pk.version), "protocol")
  end
  self.version, self.extensions = pk.version, pk.extensions
  if pk.extensions["limits@openssh.com"] then
    pk = ask(self, "sftp limits", at, "extended_reply", "limits")
    local l = pk and core.sftp_decode_limits(pk.data)
    if l then
      if l.max_read > 0 then self._rblock = math.min(l.max_read, MAX_BLOCK) end
      if l.max_write > 0 then self._wblock = math.min(l.max_write, MAX_BLOCK) end
      self.limits = l
    end
  end
  if self._dead then return nil, self._dead[1], self._dead[2] end
  return self
end

--- Closes the session's channel (the connection stays open).  A call of
-- another task waiting on it returns `nil, msg, "closed"`.  Safe twice.
function S:close()
  if getmetatable(self) ~= Session then error("calling 'close' on bad self", 2) end
  if self._closed then return true end
  self._closed = true
  -- EOF first: the server's subsystem ends on it (after the replies it
  -- owes, which nobody waits for now)
  if not self._dead and not self._busy then self._ch:_eof() end
  self._ch:close()
  self._free:set()
  return true
end
Session.__close = function(self) self:close() end
Session.__tostring = function(self)
  return ("netlua.sftp: %s%s"):format(self._conn:_name(), self._closed and " (closed)" or "")
end

-- a second session like this one, on the same connection (mirror's
-- workers); raises when it cannot be opened
function S:_clone()
  local s, msg = M.open(self._conn, self._opts)
  if not s then error(msg, 0) end
  return s
end

---------------------------------------------------------------------------
-- Names
---------------------------------------------------------------------------

local function do_stat(self, at, path, what, kind)
  local pk, msg, code = ask(self, what, at, "attrs", kind or "stat", path)
  if not pk then return nil, msg, code end
  return entry(path:match("([^/]*)/*$") or path, pk.attrs)
end

--- Attributes of `path` (links followed): an entry as `list` gives
-- (`name` is the last part of the path).
-- @return entry, or nil, message, code ("nofile", "denied", "failure",
-- "timeout", "closed")
function S:stat(path)
  checkself(self, "stat")
  checkstr(path, 1, "stat")
  return run(self, "stat", do_stat, path, "stat " .. path)
end

--- Attributes of `path` itself (a link is not followed).
-- @return entry, or nil, message, code
function S:lstat(path)
  checkself(self, "lstat")
  checkstr(path, 1, "lstat")
  return run(self, "lstat", do_stat, path, "lstat " .. path, "lstat")
end

--- True when `path` names anything on the server (a link that points
-- nowhere too); false when the server says there is no such file.
-- @return boolean, or nil, message, code for any other failure
function S:exists(path)
  checkself(self, "exists")
  checkstr(path, 1, "exists")
  local e, msg, code = run(self, "exists", do_stat, path, "exists " .. path, "lstat")
  if e then return true end
  if code == "nofile" then return false end
  return nil, msg, code
end

--- Size in bytes of the file `path` (links followed).
-- @return size, or nil, message, code ("failure" for what is not a file)
function S:size(path)
  checkself(self, "size")
  checkstr(path, 1, "size")
  local e, msg, code = run(self, "size", do_stat, path, "size " .. path)
  if not e then return nil, msg, code end
  if e.size == nil or (e.type and e.type ~= "file") then
    return nil, ("size %s: not a regular file"):format(path), "failure"
  end
  return e.size
end

--- The server's canonical absolute form of `path` ("." is the login
-- folder).  @return path, or nil, message, code
function S:realpath(path)
  checkself(self, "realpath")
  checkstr(path, 1, "realpath")
  return run(self, "realpath", function(_, at)
    local pk, msg, code = ask(self, "realpath " .. path, at, "name", "realpath", path)
    if not pk then return nil, msg, code end
    if not pk.entries[1] then return nil, "realpath " .. path .. ": an empty answer", "protocol" end
    return pk.entries[1].name
  end)
end

--- Makes a directory (an existing one is a failure, as FTP's MKD).
-- @return path, or nil, message, code
function S:mkdir(path)
  checkself(self, "mkdir")
  checkstr(path, 1, "mkdir")
  return run(self, "mkdir", function(_, at)
    local ok, msg, code = simple(self, "mkdir " .. path, at, "mkdir", path)
    if not ok then return nil, msg, code end
    return path
  end)
end
S.mkd = S.mkdir

--- Removes an empty directory.  @return true, or nil, message, code
function S:rmdir(path)
  checkself(self, "rmdir")
  checkstr(path, 1, "rmdir")
  return run(self, "rmdir", function(_, at)
    return simple(self, "rmdir " .. path, at, "rmdir", path)
  end)
end
S.rmd = S.rmdir

--- Removes a file (or a link).  @return true, or nil, message, code
function S:remove(path)
  checkself(self, "remove")
  checkstr(path, 1, "remove")
  return run(self, "remove", function(_, at)
    return simple(self, "remove " .. path, at, "remove", path)
  end)
end
S.delete = S.remove

local function do_rename(self, at, from, to)
  local what = "rename " .. from .. " to " .. to
  if self.extensions["posix-rename@openssh.com"] then
    return simple(self, what, at, "posix_rename", from, to)
  end
  return simple(self, what, at, "rename", from, to)
end

--- Renames `from` to `to`.  Where the server offers
-- posix-rename@openssh.com (OpenSSH does) an existing `to` is replaced,
-- as rename(2) and FTP's RNTO do; plain SFTP v3 RENAME refuses to.
-- @return true, or nil, message, code
function S:rename(from, to)
  checkself(self, "rename")
  checkstr(from, 1, "rename")
  checkstr(to, 2, "rename")
  return run(self, "rename", do_rename, from, to)
end

local function do_makedirs(self, at, path)
  local what = "makedirs " .. path
  local sofar = path:sub(1, 1) == "/" and "/" or ""
  for part in path:gmatch("[^/]+") do
    sofar = join(sofar, part)
    local pk, msg, code = call(self, what, at, "stat", sofar)
    if not pk then return nil, msg, code end
    if pk.type == "attrs" then
      if TYPES[floor((pk.attrs.permissions or 16384) / 4096) % 16] ~= "dir" then
        return nil, what .. ": " .. sofar .. " is not a directory", "failure"
      end
    elseif pk.type == "status" and pk.code == 2 then
      local ok, m2, c2 = simple(self, what, at, "mkdir", sofar)
      if not ok then
        -- made meanwhile by someone else is fine
        local again = call(self, what, at, "stat", sofar)
        if not (again and again.type == "attrs") then return nil, m2, c2 end
      end
    else
      return expect(self, what, pk, "attrs")
    end
  end
  return true
end

--- Makes `path` and any missing parent directories (existing ones are
-- fine).  @return true, or nil, message, code
function S:makedirs(path)
  checkself(self, "makedirs")
  checkstr(path, 1, "makedirs")
  return run(self, "makedirs", do_makedirs, path)
end

---------------------------------------------------------------------------
-- Listing
---------------------------------------------------------------------------

local ENTRY_FIELDS = {name = true, type = true, size = true, modify = true, perm = true,
  mode = true, owner = true, group = true, target = true}

local function do_list(self, at, path, what, fields)
  local pk, msg, code = ask(self, what, at, "handle", "opendir", path)
  if not pk then return nil, msg, code end
  local handle, out = pk.handle, {}
  local want_target = fields == nil
  local keep
  if fields then
    keep = {name = true}
    for _, f in ipairs(fields) do keep[f] = true end
    want_target = keep.target
  end
  while true do
    pk, msg, code = call(self, what, at, "readdir", handle)
    if not pk then close_later(self, handle) return nil, msg, code end
    if pk.type == "status" and pk.code == FX_EOF then break end
    if pk.type ~= "name" then
      close_later(self, handle)
      return expect(self, what, pk, "name")
    end
    for _, n in ipairs(pk.entries) do
      if n.name ~= "." and n.name ~= ".." then out[#out + 1] = entry(n.name, n.attrs) end
    end
  end
  simple(self, what, at, "close", handle)
  -- link targets: every READLINK in flight at once
  if want_target then
    local ids, n = {}, 0
    local batch = {}
    for _, e in ipairs(out) do
      if e.type == "link" then
        local id = nextid(self)
        ids[id] = e
        n = n + 1
        batch[#batch + 1] = encode("readlink", id, join(path, e.name))
      end
    end
    if n > 0 then
      local ok, m2, c2 = send(self, what, table.concat(batch), at)
      if not ok then return nil, m2, c2 end
      while n > 0 do
        local r, m3, c3 = recv(self, what, at)
        if not r then
          for id in pairs(ids) do self._orphan[id] = true end
          return nil, m3, c3
        end
        local e = ids[r.id]
        if e then
          ids[r.id] = nil
          n = n - 1
          if r.type == "name" and r.entries[1] then e.target = r.entries[1].name end
        else
          self._orphan[r.id] = nil
        end
      end
    end
  end
  if keep then
    for _, e in ipairs(out) do
      for k in pairs(e) do if not keep[k] then e[k] = nil end end
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

--- Directory listing: an array of entries `{name=, type="file"|"dir"|
-- "link"|"other", size=, modify=epoch seconds, perm="-rw-r--r--" (as
-- FTP's LIST gives it), mode=0644 (the permission bits as a number),
-- owner=uid, group=gid (numbers: SFTP v3 sends no names), target= (links,
-- by READLINK)}` sorted by name, without "." and "..".  opts: `fields`
-- (an array of field names: keep only them and `name`; without "target"
-- no READLINK is sent).  Fields the server did not send are nil.
-- @return array, or nil, message, code
function S:list(path, opts)
  checkself(self, "list")
  if path ~= nil then checkstr(path, 1, "list") end
  opts = checkopts(opts, 2, "list")
  local fields = require("netlua.ftp")._check_fields(opts.fields, ENTRY_FIELDS)
  return run(self, "list", do_list, path or ".", path and "list " .. path or "list", fields)
end

---------------------------------------------------------------------------
-- Transfers
---------------------------------------------------------------------------

-- Calls a script's function: its results, or nil, msg, "callback" when
-- it raised.
local function callback(fn, ...)
  local r = pack(drive.pcall(fn, ...))
  if not r[1] then return nil, tostring(r[2]), "callback", true end
  return unpack(r, 2, r.n)
end

-- Reads handle from offset to the end of the file with up to M.DEPTH
-- READs in flight, handing the data to sink(data) in file order (sink
-- returns true or nil, msg, code).  Short DATA is asked again for the
-- rest; only STATUS EOF ends the file.  @return the offset reached (the
-- end of the data delivered), or nil, msg, code
local function read_all(self, what, at, handle, offset, total, sink)
  local block, depth = self._rblock, M.DEPTH
  local out, nout = {}, 0     -- id -> {offset, length} of READs in flight
  local holes = {}            -- {offset, length} short answers left out
  local ahead = {}            -- offset -> data that came before its turn
  local pos, nextoff, seen, eof = offset, offset, offset, nil
  local function fail(msg, code)
    for id in pairs(out) do self._orphan[id] = true end
    return nil, msg, code
  end
  while true do
    local batch = {}
    while nout < depth do
      local off, len
      local h = table.remove(holes)
      if h then
        off, len = h[1], h[2]
      elseif eof == nil and (total == nil or nextoff <= math.max(total, seen)) then
        off, len = nextoff, block
        nextoff = nextoff + block
      else
        break
      end
      if eof == nil or off < eof then
        local id = nextid(self)
        out[id] = {off, len}
        nout = nout + 1
        batch[#batch + 1] = encode("read", id, handle, off, len)
      end
    end
    if #batch > 0 then
      local ok, msg, code = send(self, what, table.concat(batch), at)
      if not ok then return fail(msg, code) end
    end
    if nout == 0 then break end
    local pk, msg, code = recv(self, what, at)
    if not pk then return fail(msg, code) end
    local r = out[pk.id]
    if r then
      out[pk.id] = nil
      nout = nout - 1
      if pk.type == "data" and #pk.data > 0 then
        local data, off = pk.data, r[1]
        local n = #data
        if n > r[2] then
          return fail(select(2, dead(self, ("%s: %d bytes where %d were asked"):format(what, n, r[2]), "protocol")))
        end
        if off + n > seen then seen = off + n end
        if n < r[2] then holes[#holes + 1] = {off + n, r[2] - n} end
        if off == pos then
          local ok, m2, c2 = sink(data)
          if not ok then return fail(m2, c2) end
          pos = pos + n
          -- what came ahead and is next now
          local nxt = ahead[pos]
          while nxt do
            ahead[pos] = nil
            ok, m2, c2 = sink(nxt)
            if not ok then return fail(m2, c2) end
            pos = pos + #nxt
            nxt = ahead[pos]
          end
        elseif off > pos then
          ahead[off] = data
        end
      elseif pk.type == "data" or (pk.type == "status" and pk.code == FX_EOF) then
        if eof == nil or r[1] < eof then eof = r[1] end
      else
        return fail(select(2, expect(self, what, pk, "data")))
      end
    else
      self._orphan[pk.id] = nil
    end
  end
  return pos
end

--- Downloads `remote`.  `dst` is a local path (written as `dst..".part"`
-- and renamed to `dst` only when complete, so a failure never leaves a
-- complete-looking file), an open Lua file, or nil (the data is
-- returned as a string).  opts: `resume` (continue a `.part` left by an
-- earlier failure; the `.part` is then kept on failure, unless its size
-- was wrong), `progress(done, total)`, `size` (the size a listing gave:
-- the file must have it, and FSTAT is not asked).  The file is read to
-- its end (STATUS EOF); the bytes must number what FSTAT (or `size`)
-- said when it was opened, else the get fails with code "partial" (a
-- file written while it is read fails so too).
-- @return true (or the data when dst is nil), or nil, message, code
function S:get(remote, dst, opts)
  checkself(self, "get")
  checkstr(remote, 1, "get")
  if dst ~= nil and type(dst) ~= "string" and io.type(dst) ~= "file" then
    argerror(2, "get", "path or open file expected")
  end
  opts = checkopts(opts, 3, "get")
  checkfn(opts.progress, "progress", "get")
  if opts.size ~= nil and mtype(opts.size) ~= "integer" then
    error("bad option 'size' to 'get' (integer expected)", 2)
  end
  return run(self, "get", function(_, at)
    local what = "get " .. remote
    local pk, msg, code = ask(self, what, at, "handle", "open", remote, FXF_READ)
    if not pk then return nil, msg, code end
    local handle = pk.handle
    local total = opts.size
    if total == nil then
      pk, msg, code = ask(self, what, at, "attrs", "fstat", handle)
      if not pk then close_later(self, handle) return nil, msg, code end
      total = pk.attrs.size
    end
    local f, tmp, offset, parts = dst, nil, 0, nil
    if type(dst) == "string" then
      tmp = dst .. ".part"
      local mode = "wb"
      if opts.resume then
        local old = io.open(tmp, "rb")
        if old then offset = old:seek("end"); old:close(); mode = "ab" end
      end
      local err
      f, err = io.open(tmp, mode)
      if not f then close_later(self, handle) return nil, what .. ": " .. err, "io" end
    elseif dst == nil then
      parts = {}
    end
    local progress, done = opts.progress, offset
    local function sink(data)
      if parts then
        parts[#parts + 1] = data
      else
        local ok, err = f:write(data)
        if not ok then return nil, what .. ": " .. tostring(err), "io" end
      end
      done = done + #data
      if progress then
        local ok, m, c, raised = callback(progress, done, total)
        if raised then return nil, m, c end
        if ok == nil and m ~= nil then return nil, tostring(m), "callback" end
      end
      return true
    end
    local pos
    if total and offset > total then
      msg, code = ("%s: the .part holds %d bytes, the file %d"):format(what, offset, total), "partial"
    else
      pos, msg, code = read_all(self, what, at, handle, offset, total, sink)
      if pos and total and pos ~= total then
        pos, msg, code = nil, ("%s: %d of %d bytes received%s"):format(what, pos, total,
          opts.size and " (as listed)" or ""), "partial"
      end
    end
    if pos then
      simple(self, what, at, "close", handle)
    else
      close_later(self, handle)
    end
    if tmp then
      local cok, cerr = f:close()
      if pos and not cok then pos, msg, code = nil, what .. ": " .. tostring(cerr), "io" end
      if not pos then
        if not opts.resume or code == "partial" then os.remove(tmp) end
        return nil, msg, code
      end
      local rok, rerr = os.rename(tmp, dst)
      if not rok then return nil, what .. ": " .. rerr, "io" end
      return true
    end
    if not pos then return nil, msg, code end
    if parts then return table.concat(parts) end
    return true
  end)
end

-- Writes what next_block() gives (a string of at most the block size,
-- or nil at the end; or nil, msg, code) to handle from offset with up to
-- M.DEPTH WRITEs in flight.  @return the offset after the last byte
-- written, or nil, msg, code
local function write_all(self, what, at, handle, offset, next_block, acked)
  local out, nout, pos, ended = {}, 0, offset, false
  local function fail(msg, code)
    for id in pairs(out) do self._orphan[id] = true end
    return nil, msg, code
  end
  while true do
    local batch = {}
    while not ended and nout < M.DEPTH do
      local b, msg, code = next_block()
      if b == nil then
        if msg ~= nil then
          if #batch > 0 then send(self, what, table.concat(batch), at) end
          return fail(msg, code)
        end
        ended = true
        break
      end
      local id = nextid(self)
      out[id] = #b
      nout = nout + 1
      batch[#batch + 1] = encode("write", id, handle, pos, b)
      pos = pos + #b
    end
    if #batch > 0 then
      local ok, msg, code = send(self, what, table.concat(batch), at)
      if not ok then return fail(msg, code) end
    end
    if nout == 0 then break end
    local pk, msg, code = recv(self, what, at)
    if not pk then return fail(msg, code) end
    local n = out[pk.id]
    if n then
      out[pk.id] = nil
      nout = nout - 1
      if pk.type ~= "status" or pk.code ~= 0 then return fail(select(2, expect(self, what, pk, "status"))) end
      local ok, m2, c2 = acked(n)
      if not ok then return fail(m2, c2) end
    else
      self._orphan[pk.id] = nil
    end
  end
  return pos
end

--- Uploads to `remote` (written in place, as FTP's STOR: no temporary
-- name).  `src` is an open Lua file, a function returning chunks (nil at
-- the end; `nil, err` is a failure), or a string: the name of an
-- existing local file, else the data itself (force data with
-- `opts.data = true`).  opts: `append` (add to the end of the remote
-- file), `progress(done, total)`.  Afterwards the remote size (FSTAT)
-- must be what was there plus the bytes sent, else code "partial".
-- @return true, or nil, message, code
function S:put(src, remote, opts)
  checkself(self, "put")
  checkstr(remote, 2, "put")
  opts = checkopts(opts, 3, "put")
  checkfn(opts.progress, "progress", "put")
  local f, data, fn, total, close
  if type(src) == "string" and not opts.data then
    local h = io.open(src, "rb")
    if h then
      f, close = h, h
      total = h:seek("end"); h:seek("set", 0)
    else
      data, total = src, #src
    end
  elseif type(src) == "string" then
    data, total = src, #src
  elseif io.type(src) == "file" then
    f = src
  elseif type(src) == "function" then
    fn = src
  else
    argerror(1, "put", "string, file or function expected")
  end
  local r = pack(run(self, "put", function(_, at)
    local what = "put " .. remote
    local block = self._wblock
    local flags = FXF_WRITE + FXF_CREAT + (opts.append and FXF_APPEND or FXF_TRUNC)
    local pk, msg, code = ask(self, what, at, "handle", "open", remote, flags)
    if not pk then return nil, msg, code end
    local handle, offset = pk.handle, 0
    if opts.append then
      pk, msg, code = ask(self, what, at, "attrs", "fstat", handle)
      if not pk then close_later(self, handle) return nil, msg, code end
      offset = pk.attrs.size or 0
    end
    local next_block
    if data then
      local i = 1
      next_block = function()
        if i > #data then return nil end
        local b = data:sub(i, i + block - 1)
        i = i + #b
        return b
      end
    elseif f then
      next_block = function()
        local b, err = f:read(block)
        if b == nil and err then return nil, what .. ": " .. tostring(err), "io" end
        return b
      end
    else
      local rest, ended = "", false
      next_block = function()
        while #rest < block and not ended do
          local c, err, _, raised = callback(fn)
          if raised then return nil, what .. ": " .. err, "callback" end
          if c == nil then
            if err ~= nil then return nil, what .. ": " .. tostring(err), "callback" end
            ended = true
          elseif type(c) ~= "string" then
            return nil, what .. ": the source gave a " .. type(c), "callback"
          else
            rest = rest .. c
          end
        end
        if rest == "" then return nil end
        local b = rest:sub(1, block)
        rest = rest:sub(block + 1)
        return b
      end
    end
    local done, progress = 0, opts.progress
    local function acked(n)
      done = done + n
      if progress then
        local ok, m, c, raised = callback(progress, done, total)
        if raised then return nil, what .. ": " .. m, c end
        if ok == nil and m ~= nil then return nil, what .. ": " .. tostring(m), "callback" end
      end
      return true
    end
    local pos
    pos, msg, code = write_all(self, what, at, handle, offset, next_block, acked)
    if not pos then close_later(self, handle) return nil, msg, code end
    -- the server's own count
    pk, msg, code = ask(self, what, at, "attrs", "fstat", handle)
    if not pk then close_later(self, handle) return nil, msg, code end
    local size = pk.attrs.size
    local ok
    ok, msg, code = simple(self, what, at, "close", handle)
    if not ok then return nil, msg, code end
    if size ~= nil and size ~= pos then
      return nil, ("%s: the file has %d bytes, %d were written"):format(what, size, pos), "partial"
    end
    return true
  end))
  if close then close:close() end
  return unpack(r, 1, r.n)
end

---------------------------------------------------------------------------
-- Mirror: netlua.ftp_mirror's engine over this session
---------------------------------------------------------------------------

-- What ftp_mirror asks of a session beyond get/put/list and the names
-- calls: the path it was given (SFTP has no client-side folder), and
-- _ask for the raw FTP commands it sends: DELE (a failed upload's
-- temporary file) and MFMT (an upload's time), done as REMOVE and
-- SETSTAT.
function S:_abspath(path)
  if path == "" then return "." end
  if #path > 1 then path = path:gsub("/+$", "") end
  return path
end

function S:_ask(what, line)
  local cmd, arg = line:match("^(%u+) (.*)$")
  if cmd == "DELE" then
    local ok, msg = self:remove(arg)
    if ok then return {{code = 250, text = "250 removed"}} end
    return {{code = 550, text = "550 " .. tostring(msg)}}
  elseif cmd == "MFMT" then
    local stamp, path = arg:match("^(%d%d%d%d%d%d%d%d%d%d%d%d%d%d) (.*)$")
    local t = stamp and require("netlua.ftp")._parse_mdtm(stamp)
    if not t then return nil, what .. ": bad MFMT", "error" end
    local ok, msg, code = run(self, "mirror", function(_, at2)
      return simple(self, what, at2, "setstat", path, {atime = t, mtime = t})
    end)
    if ok then return {{code = 213, text = "213 done"}} end
    return nil, msg, code
  end
  error("sftp: no FTP command " .. tostring(cmd) .. " here", 2)
end

local MIRROR_LIB = {
  -- listings to the second, as MLSD gives them
  listdir = function(s, abs, what, fields)
    local list, msg, code = run(s, "mirror", do_list, abs, what, fields)
    if not list then return nil, msg, code end
    return list, "mlsd"
  end,
  features = function() return {MFMT = true} end,
  share_features = function() end,
}

--- Makes `local_dir` a copy of the tree under `remote_dir` (or, with
-- `reverse`, the server's `remote_dir` a copy of `local_dir`), copying
-- only what differs: netlua.ftp's mirror (the same options and report,
-- see doc/ftp.md), with `parallel` sessions on this connection.
-- @return report, or nil, message, code, report
function S:mirror(remote_dir, local_dir, opts)
  checkself(self, "mirror")
  checkstr(remote_dir, 1, "mirror")
  checkstr(local_dir, 2, "mirror")
  opts = checkopts(opts, 3, "mirror")
  return require("netlua.ftp_mirror").run(self, MIRROR_LIB, remote_dir, local_dir, opts)
end

M.Session = Session
return M
