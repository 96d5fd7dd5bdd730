-- spec/servers/ftp_hostile.lua MODE PORT - a scripted FTP server that
-- misbehaves the way real servers will not on demand.
--
-- Modes: split (every reply dribbled out a few bytes at a time),
-- multiline (multi-line greeting and replies), longline (a 100 KB reply
-- line), foreignpasv (PASV names 192.0.2.1, a TEST-NET address nobody may
-- connect to; EPSV is refused so the client must use PASV), garbage
-- (replies without codes after login), binary (a binary blob answers
-- NOOP after login), badcode (the PWD of the login is answered with a
-- letter in its code), hello (USER is answered "hello there", as from a
-- server of some other protocol), notftp (the greeting is "hello
-- there"), dropmid (closes everything half way
-- through a RETR), traversal (LIST names entries "../escape", "a/b",
-- ".." and "ok": a mirror must fetch only "ok"), dropmany (LIST names
-- f1..f4 and every RETR dies half way, as in dropmid), notretr (LIST as
-- in dropmany, every RETR answered with a line that is not FTP), mlsd
-- (FEAT offers MLST; the first OPTS MLST narrows the facts, any later one
-- is refused; MLSD and LIST list one file "f"), short and long (a 150
-- announcing 1 MiB, then half or twice that, then 226), quiet (a 150
-- naming no size, then half of the 1 MiB that SIZE and LIST give, then
-- 226), 421_VERB (VERB --
-- noop, pass, cwd, pasv or retr -- is answered "421 going down" and the
-- connection closed), prelim_VERB (VERB -- noop or retr -- is answered
-- "150 wait", then the connection closed), biggreet (a 1 MiB greeting
-- without a line end), deep (every directory lists one directory "d" and
-- one file "f"), longentry (LIST: a file "ok", one whose line is 2 MiB
-- long, then "after"), stall_VERB (VERB -- retr, size or pasv -- is never
-- answered), stall_stor (STOR takes the data connection and never reads
-- it), stall_prelim (RETR: a 150 and 1000 bytes, then nothing, the data
-- connection left open), stall_half (RETR: a 150 announcing the 1 MiB,
-- its first half, then nothing, the data connection left open: the rest
-- is never handed to the kernel, so a client killing the server mid-RETR
-- always kills it with bytes unsent), twice (NOOP is answered "200 noop" and
-- "200 noop again" in one segment), twicelate (NOOP is answered "200
-- noop", and 0.1 s later "200 noop late").  DELE is always "550 no such
-- file".  Serves each
-- client in a task of its own on 127.0.0.1:PORT, so parallel connections
-- work; prints "ready" once listening.  Tests nothing itself.
local tcp = require "netlua.tcp"
local netlua = require "netlua"

local mode, port = arg[1], tonumber(arg[2])
local srv = assert(tcp.listen("127.0.0.1", port))
print("ready")
io.stdout:flush()

local FILE = ("0123456789abcdef"):rep(64 * 1024)   -- 1 MiB

local function send(c, text)
  if mode == "split" then
    for i = 1, #text, 3 do
      if not c:write(text:sub(i, i + 2)) then return end
      netlua.sleep(0.002)
    end
  else
    c:write(text)
  end
end

local function serve(c)
  local data_srv
  if mode == "biggreet" then
    send(c, "220 " .. ("G"):rep(1024 * 1024))
    netlua.sleep(30)
    return
  elseif mode == "multiline" then
    send(c, "220-Welcome\r\n220-to the\r\n  indented text\r\n220 hostile server\r\n")
  elseif mode == "notftp" then
    send(c, "hello there\r\n")
  else
    send(c, "220 hostile server ready\r\n")
  end
  local logged = false
  local facts, opts_seen = {type = true, size = true, modify = true}, false
  while true do
    local line = c:read("l")
    if not line then return end
    line = line:gsub("\r$", "")
    local verb, rest = line:match("^(%S+) ?(.*)$")
    verb = (verb or ""):upper()
    local fail = mode:match("^421_(%a+)$")
    local pre = mode:match("^prelim_(%a+)$")
    if fail == "pasv" then fail = (verb == "EPSV" or verb == "PASV") and verb:lower() end
    local stall = mode:match("^stall_(%a+)$")
    if stall == verb:lower() then
      -- never answered: the client's timeout must end its wait
    elseif stall == "stor" and verb == "STOR" then
      -- the data connection is taken and never read
      local d = data_srv and data_srv:accept(5)
      send(c, "150 send it\r\n")
      netlua.sleep(30)
      if d then d:close() end
    elseif (stall == "prelim" or stall == "half") and verb == "RETR" then
      -- some data, then neither more nor the end
      local d = data_srv and data_srv:accept(5)
      if stall == "half" then
        send(c, ("150 Opening BINARY mode data connection for %s (%d bytes).\r\n")
          :format(rest, #FILE))
      else
        send(c, "150 here it comes\r\n")
      end
      if d then d:write(FILE:sub(1, stall == "half" and math.floor(#FILE / 2) or 1000)) end
      netlua.sleep(30)
      if d then d:close() end
    elseif fail == verb:lower() then
      send(c, "421 going down\r\n")
      return
    elseif pre == verb:lower() then
      -- the data connection (if any) goes down with the control one
      local d = verb == "RETR" and data_srv and data_srv:accept(5)
      send(c, "150 wait\r\n")
      if d then d:close() end
      return
    elseif logged and mode == "garbage" and verb == "NOOP" then
      send(c, "this is not an ftp reply\r\n")
    elseif logged and mode == "binary" and verb == "NOOP" then
      send(c, "\0\1\2\255\254PK\3\4\0\27[2J" .. ("Z"):rep(300) .. "\n\200\201 binary\0\r\n")
    elseif mode == "hello" and verb == "USER" then send(c, "hello there\r\n")
    elseif verb == "USER" then send(c, "331 password please\r\n")
    elseif verb == "PASS" then
      logged = true
      if mode == "multiline" then
        send(c, "230-Welcome\r\n any text\r\n 230 lookalike\r\n230-more\r\n230 done\r\n")
      else
        send(c, "230 in\r\n")
      end
    elseif verb == "PWD" and mode == "badcode" then send(c, '2o7 "/" is cwd\r\n')
    elseif verb == "PWD" then send(c, '257 "/" is cwd\r\n')
    elseif verb == "CWD" then send(c, "250 ok\r\n")
    elseif verb == "TYPE" then send(c, "200 type set\r\n")
    elseif verb == "EPSV" then send(c, "500 no EPSV here\r\n")
    elseif verb == "PASV" then
      if data_srv then data_srv:close() end
      data_srv = assert(tcp.listen("127.0.0.1", 0))
      local _, p = data_srv:getsockname()
      local addr = mode == "foreignpasv" and "192,0,2,1" or "127,0,0,1"
      send(c, ("227 Entering Passive Mode (%s,%d,%d)\r\n"):format(addr, math.floor(p / 256), p % 256))
    elseif verb == "FEAT" and mode == "mlsd" then
      send(c, "211-Features:\r\n MLST type*;size*;modify*;\r\n UTF8\r\n211 End\r\n")
    elseif verb == "OPTS" and mode == "mlsd" and rest:upper():find("^MLST") then
      if opts_seen then send(c, "501 OPTS MLST only once here\r\n")
      else
        opts_seen = true
        facts = {}
        for f in rest:sub(6):gmatch("([^;]+)") do facts[f:lower()] = true end
        send(c, "200 MLST OPTS\r\n")
      end
    elseif verb == "SIZE" then send(c, ("213 %d\r\n"):format(#FILE))
    elseif verb == "REST" then send(c, "350 ok\r\n")
    elseif verb == "RETR" and mode == "notretr" then
      send(c, "this is not an ftp reply\r\n")
    elseif verb == "RETR" or verb == "LIST" or verb == "NLST" or verb == "MLSD" then
      local d = data_srv and data_srv:accept(5)
      if not d then send(c, "425 no data connection\r\n")
      else
        if verb == "RETR" and (mode == "short" or mode == "long") then
          send(c, ("150 Opening BINARY mode data connection for %s (%d bytes).\r\n")
            :format(rest, #FILE))
        else
          send(c, "150 here it comes\r\n")
        end
        if verb == "MLSD" then
          local l = {}
          if facts.type then l[#l + 1] = "type=file;" end
          if facts.size then l[#l + 1] = "size=5;" end
          if facts.modify then l[#l + 1] = "modify=20200101000000;" end
          d:write(table.concat(l) .. " f\r\n")
        elseif verb == "LIST" and mode == "mlsd" then
          d:write("-rw-r--r-- 1 a b 5 Jan  1  2020 f\r\n")
        elseif verb ~= "RETR" and mode == "traversal" then
          for _, name in ipairs {"../escape", "a/b", "..", "ok"} do
            d:write(("-rw-r--r-- 1 a b %d Jan  1  2020 %s\r\n"):format(#FILE, name))
          end
        elseif verb ~= "RETR" and (mode == "dropmany" or mode == "notretr") then
          for i = 1, 4 do
            d:write(("-rw-r--r-- 1 a b %d Jan  1  2020 f%d\r\n"):format(#FILE, i))
          end
        elseif verb ~= "RETR" and mode == "longentry" then
          d:write("-rw-r--r-- 1 a b 5 Jan  1  2020 ok\r\n")
          d:write("-rw-r--r-- 1 a b 5 Jan  1  2020 " .. ("x"):rep(2 * 1024 * 1024) .. "\r\n")
          d:write("-rw-r--r-- 1 a b 5 Jan  1  2020 after\r\n")
        elseif verb ~= "RETR" and mode == "deep" then
          d:write("drwxr-xr-x 2 a b 4096 Jan  1  2020 d\r\n")
          d:write("-rw-r--r-- 1 a b 5 Jan  1  2020 f\r\n")
        elseif verb ~= "RETR" then
          d:write(("-rw-r--r-- 1 a b %d Jan  1  2020 x\r\n"):format(#FILE))
        elseif mode == "short" or mode == "quiet" then
          d:write(FILE:sub(1, math.floor(#FILE / 2)))
        elseif mode == "long" then
          d:write(FILE .. FILE)
        elseif mode == "deep" then
          d:write("hello")
        elseif mode == "dropmid" or mode == "dropmany" then
          d:write(FILE:sub(1, math.floor(#FILE / 2)))
          netlua.sleep(0.05)
          d:close(); c:close()
          return
        else
          d:write(FILE)
        end
        d:close()
        send(c, "226 done\r\n")
      end
    elseif verb == "NOOP" then
      if mode == "multiline" then
        send(c, "200-first\r\n second\r\n200-third\r\n200 done\r\n")
      elseif mode == "longline" then
        send(c, "200-" .. ("L"):rep(100000) .. "\r\n200 long done\r\n")
      elseif mode == "twice" then
        send(c, "200 noop\r\n200 noop again\r\n")
      elseif mode == "twicelate" then
        send(c, "200 noop\r\n")
        netlua.sleep(0.1)
        send(c, "200 noop late\r\n")
      else
        send(c, "200 noop\r\n")
      end
    elseif verb == "DELE" then send(c, "550 no such file\r\n")
    elseif verb == "QUIT" then send(c, "221 bye\r\n"); return
    else send(c, "500 what is " .. verb .. "\r\n") end
    local _ = rest
  end
end

netlua.run(function()
  while true do
    local c = srv:accept()
    if c then
      netlua.spawn(function()
        netlua.pcall(serve, c)  -- a plain pcall would block every task on 5.1
        c:close()
      end)
    end
  end
end)
