-- Every ftplib method of netlua.ftp against a real vsftpd, in passive and
-- active mode, over IPv4 and IPv6.
local H = require "helper"
local F = require "ftp_helper"
local ftp = require "netlua.ftp"

local function collect()
  local t = {}
  return t, function(x) t[#t + 1] = x end
end

for _, family in ipairs {"inet", "inet6"} do
  describe("ftp against vsftpd (" .. family .. ")", function()
    local srv

    setup(function()
      srv = F.vsftpd{ipv6 = family == "inet6"}
    end)

    teardown(function()
      if srv then srv.stop() end
    end)

    for _, passive in ipairs {true, false} do
      local mode = passive and "passive" or "active"
      describe(mode, function()
        local s
        -- each mode works in a folder of its own on the shared server
        local function P(name) return srv.path(mode .. "/" .. name) end
        local function home() return srv.root .. "/" .. mode end

        before_each(function()
          s = assert(ftp.new(srv.opts{passive = passive}))
          assert(s:makedirs(mode))
          assert(s:cwd(mode))
        end)

        after_each(function()
          if s then s:close() end
        end)

        it("connects, logs in and keeps the welcome and entry path", function()
          assert.equal("220 (vsFTPd 3.0.3)", s:getwelcome())
          assert.equal(srv.root, s:_info().entry)
          assert.equal(home(), s:pwd())
          assert.matches("^netlua.ftp: ", tostring(s))
        end)

        it("connect then login, ftplib style", function()
          local t = ftp.new{timeout = 10, passive = passive}
          assert.equal("220 (vsFTPd 3.0.3)", t:connect(srv.host, srv.port))
          assert.matches("^230 ", t:login(srv.user, srv.password))
          assert.equal("220 (vsFTPd 3.0.3)", t:getwelcome())
          assert.equal(srv.root, t:pwd())
          t:close()
        end)

        it("reports a wrong password as 530", function()
          local t = ftp.new{timeout = 10}
          assert(t:connect(srv.host, srv.port))
          local ok, msg, code = t:login(srv.user, "wrong")
          assert.is_nil(ok)
          assert.equal(530, code)
          assert.matches("^login: 530 ", msg)
          t:close()
        end)

        it("storbinary and retrbinary move bytes exactly, in blocksize pieces", function()
          local data = F.random_bytes(300000)
          local sent = 0
          assert.matches("^226 ", s:storbinary("STOR bin.dat", data, 10000,
            function(b) sent = sent + #b end))
          assert.equal(#data, sent)
          assert.equal(data, H.read_file(P("bin.dat")))
          local parts, add = collect()
          assert.matches("^226 ", s:retrbinary("RETR bin.dat", add, 65536))
          for i = 1, #parts - 1 do assert.equal(65536, #parts[i]) end
          assert.equal(data, table.concat(parts))
          -- rest: resume a download at an offset
          parts, add = collect()
          assert(s:retrbinary("RETR bin.dat", add, 8192, 250000))
          assert.equal(data:sub(250001), table.concat(parts))
          assert.equal(300000, s:size("bin.dat"))
        end)

        it("storbinary takes files and chunk functions; APPE appends", function()
          local tmp = os.tmpname()
          H.write_file(tmp, "from a file\n")
          local f = assert(io.open(tmp, "rb"))
          assert(s:storbinary("STOR f.txt", f))
          f:close()
          os.remove(tmp)
          local chunks = {"a", "", "bc", "def"}
          local i = 0
          assert(s:storbinary("APPE f.txt", function() i = i + 1 return chunks[i] end))
          assert.equal("from a file\nabcdef", H.read_file(P("f.txt")))
          -- resumed upload: rest skips what the server has
          assert(s:storbinary("STOR r.txt", "0123"))
          assert(s:storbinary("STOR r.txt", "0123456789", 8192, nil, 4))
          assert.equal("0123456789", H.read_file(P("r.txt")))
        end)

        it("storlines sends CRLF lines and retrlines strips them", function()
          assert(s:storlines("STOR l.txt", "one\ntwo\r\nthree"))
          -- vsftpd stores what it gets in ASCII mode: CRLF line ends
          assert.equal("one\r\ntwo\r\nthree\r\n", H.read_file(P("l.txt")))
          local lines, add = collect()
          assert(s:retrlines("RETR l.txt", add))
          assert.same({"one", "two", "three"}, lines)
        end)

        it("sendcmd and voidcmd return replies; errors carry the code", function()
          assert.equal("200 NOOP ok.", s:sendcmd("NOOP"))
          assert.equal("215 UNIX Type: L8", s:voidcmd("syst"))
          local ok, msg, code = s:sendcmd("XYZZY")
          assert.is_nil(ok)
          assert.equal(500, code)
          assert.equal("sendcmd XYZZY: 500 Unknown command.", msg)
          -- voidcmd wants 2xx: a 350 is an error for it
          assert(s:storbinary("STOR x", "x"))
          ok, msg, code = s:voidcmd("RNFR x")
          assert.is_nil(ok)
          assert.equal(350, code)
          assert.matches("^voidcmd RNFR x: 350 ", msg)
          -- a multi-line reply comes back whole
          local feat = assert(s:sendcmd("FEAT"))
          assert.matches("^211%-", feat)
          assert.matches("\n211 End$", feat)
        end)

        it("mkd, cwd, pwd, nlst, dir, rename, delete, rmd", function()
          local made = assert(s:mkd("d1"))
          assert.equal(home() .. "/d1", made)
          assert.matches("^250 ", s:cwd("d1"))
          assert.equal(home() .. "/d1", s:pwd())
          assert(s:storbinary("STOR a", "A"))
          assert(s:storbinary("STOR b", "BB"))
          assert.same({"a", "b"}, s:nlst())
          assert.matches("^250 ", s:cwd(".."))
          assert.equal(home(), s:pwd())
          local names = s:nlst("d1")
          table.sort(names)
          assert.same({"d1/a", "d1/b"}, names)
          local lines, add = collect()
          assert(s:dir("d1", add))
          assert.equal(2, #lines)
          assert.matches("^%-rw%-r%-%-r%-%-.* a$", lines[1])
          assert.matches("^250 ", s:rename("d1/a", "d1/c"))
          assert.is_true(H.exists(P("d1/c")))
          assert.matches("^250 ", s:delete("d1/c"))
          assert.matches("^250 ", s:delete("d1/b"))
          assert.matches("^250 ", s:rmd("d1"))
          assert.is_false(H.exists(P("d1")))
        end)

        it("failures return the reply text and code", function()
          -- the message names the operation and what it was given
          local function fails(code, ok, msg, c)
            assert.is_nil(ok)
            assert.equal(code, c)
            assert.is_string(msg)
            assert.matches("^%l+ [^:]+: " .. code .. " ", msg)
          end
          fails(550, s:cwd("missing"))
          fails(550, s:delete("missing"))
          fails(550, s:rmd("missing"))
          fails(550, s:rename("missing", "x"))
          fails(550, s:size("missing"))
          fails(550, s:retrbinary("RETR missing", function() end))
          fails(550, s:dir("missing", function() end))
          fails(550, s:nlst("missing"))
          fails(550, s:mkd("missing/sub"))
          -- the session still works after all that
          assert.equal("200 NOOP ok.", s:voidcmd("NOOP"))
        end)

        it("abort ends a transfer and the next call works", function()
          assert(s:storbinary("STOR big", F.random_bytes(2 * 1024 * 1024)))
          local n = 0
          local ok, msg, code = s:retrbinary("RETR big", function(b)
            n = n + #b
            s:abort()
          end, 4096)
          assert.is_nil(ok)
          assert.equal("aborted", code)
          assert.is_string(msg)
          assert.equal(4096, n)
          assert.equal(2 * 1024 * 1024, s:size("big"))
          assert.equal("200 NOOP ok.", s:voidcmd("NOOP"))
          assert.equal(1, s:_info().reconnects)
          assert.is_true(s:abort())  -- outside a transfer: nothing to do
        end)

        it("keeps the client-side cwd across a reconnect", function()
          assert(s:mkd("keep"))
          assert(s:cwd("keep"))
          assert(s:storbinary("STOR big", F.random_bytes(1024 * 1024)))
          s:retrbinary("RETR big", function() s:abort() end)
          assert.equal(home() .. "/keep", s:pwd())
          assert(s:storbinary("STOR after", "x"))
          assert.is_true(H.exists(P("keep/after")))
          -- a raw command with a relative path also means the client cwd
          assert.matches("^213 ", s:sendcmd("MDTM after"))
        end)

        it("a callback error ends the transfer and is returned", function()
          assert(s:storbinary("STOR cb", ("x"):rep(100000)))
          local ok, msg, code = s:retrbinary("RETR cb", function() error("boom") end)
          assert.is_nil(ok)
          assert.equal("callback", code)
          assert.matches("boom", msg)
          ok, msg, code = s:storbinary("STOR cb2", function() error("src boom") end)
          assert.is_nil(ok)
          assert.equal("callback", code)
          assert.matches("src boom", msg)
          ok, msg, code = s:storbinary("STOR cb3", function() return 42 end)
          assert.is_nil(ok)
          assert.equal("callback", code)
          assert.equal("200 NOOP ok.", s:voidcmd("NOOP"))
        end)

        it("get with mtime gives the file the server's time, from one operation", function()
          local core = require "netlua.core"
          local data = F.random_bytes(5000)
          H.write_file(P("t.bin"), data)
          F.sh(("chown %s %s && touch -d @1700000123 %s"):format(srv.user,
            H.shquote(P("t.bin")), H.shquote(P("t.bin"))))
          local dir = H.tmpdir()
          local cmds = {}
          s:set_debuglevel(function(l) cmds[#cmds + 1] = l:match("^%*cmd%* (%u+)") end)
          local ok, t = s:get("t.bin", dir .. "/t.bin", {mtime = true})
          s:set_debuglevel(0)
          assert.is_true(ok)
          assert.equal(1700000123, t)
          assert.equal(data, H.read_file(dir .. "/t.bin"))
          assert.equal(1700000123, core.fs_stat(dir .. "/t.bin").modify)
          -- MDTM went first (before the RETR: a file changed in between
          -- gets the older time), once
          assert.equal("MDTM", cmds[1], table.concat(cmds, " "))
          assert.equal("RETR", cmds[#cmds], table.concat(cmds, " "))
          local n = 0
          for _, c in ipairs(cmds) do if c == "MDTM" then n = n + 1 end end
          assert.equal(1, n)
          -- into a string: the data and the time
          local got, t2 = s:get("t.bin", nil, {mtime = true})
          assert.equal(data, got)
          assert.equal(1700000123, t2)
          -- a missing file: the RETR's refusal, and no file
          local nok, msg, code = s:get("nosuch", dir .. "/nosuch", {mtime = true})
          assert.is_nil(nok, msg)
          assert.equal(550, code, msg)
          assert.is_false(H.exists(dir .. "/nosuch"))
          assert.is_false(H.exists(dir .. "/nosuch.part"))
          assert.has_error(function() s:get("t.bin", dir .. "/x", {mtime = 1}) end,
            "bad option 'mtime' to 'get' (boolean expected)")
          H.rm_rf(dir)
        end)

        it("quit says goodbye and closes", function()
          assert.matches("^221 ", s:quit())
          assert.equal("netlua.ftp (closed)", tostring(s))
          assert.has_error(function() s:pwd() end, "attempt to use a closed ftp session")
          s:close()  -- twice is fine
          s = nil
        end)
      end)
    end

    it("uses one control connection for a whole session", function()
      local before = srv.connections()
      local s = assert(ftp.new(srv.opts()))
      assert(s:mkd("one"))
      assert(s:cwd("one"))
      for i = 1, 5 do
        assert(s:storbinary("STOR f" .. i, ("%d"):format(i):rep(1000)))
        assert(s:retrbinary("RETR f" .. i, function() end))
      end
      assert(s:storlines("STOR t", "a\nb\n"))
      assert(s:retrlines("RETR t", function() end))
      assert.equal(6, #s:nlst())
      assert(s:dir(nil, function() end))
      assert(s:list())
      assert(s:size("f1"))
      assert(s:rename("f1", "g1"))
      assert(s:delete("g1"))
      assert(s:voidcmd("NOOP"))
      assert.matches("^221", s:quit())
      assert.equal(1, srv.connections() - before)
    end)

    it("fileno/getfd give the control connection's descriptor", function()
      local t = ftp.new{timeout = 10}
      assert.equal(-1, t:fileno())
      assert(t:connect(srv.host, srv.port))
      local fd = t:fileno()
      assert.is_true(fd >= 0)
      local me = H.sh("echo $PPID"):match("%d+")
      assert.matches("^socket:", (H.sh("readlink /proc/" .. me .. "/fd/" .. fd)))
      assert(t:login(srv.user, srv.password))
      assert.equal(fd, t:getfd())  -- curl took the same connection over
      assert(t:voidcmd("NOOP"))
      assert.equal(fd, t:fileno())
      t:close()
      assert.has_error(function() t:fileno() end, "attempt to use a closed ftp session")
    end)

    it("masks PASS in debug output", function()
      local lines = {}
      local s = assert(ftp.new(srv.opts{debug = function(l) lines[#lines + 1] = l end}))
      s:set_debuglevel(0)
      assert(s:voidcmd("NOOP"))
      s:close()
      local all = table.concat(lines, "\n")
      assert.matches("%*cmd%* USER " .. srv.user, all)
      assert.matches("%*cmd%* PASS %*%*%*%*", all)
      assert.is_nil(all:find(srv.password, 1, true))
      assert.is_nil(all:find("NOOP", 1, true))  -- level 0 silenced it
    end)
  end)
end
