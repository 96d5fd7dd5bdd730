-- netlua.ftp against a real proftpd 1.3.8, plain and explicit FTPS: the
-- everyday methods checked on disk, and a RETR of a missing file followed
-- by 20 mixed commands, each of which must get its own reply.  Over FTPS
-- proftpd drops the data connection of a failed RETR mid-handshake, and
-- libcurl 7.88 then sends PASV with RETR's 550 still unread: every later
-- reply used to belong to the command before.
local H = require "helper"
local F = require "ftp_helper"
local ftp = require "netlua.ftp"

-- A session whose debug stream (commands, replies, curl's info lines) is
-- kept, so a failure can show what was said on the wire.
local function open(srv)
  local lines = {}
  local s = assert(ftp.new(srv.opts{debug = function(l) lines[#lines + 1] = l end}))
  s:set_debuglevel(2)
  -- the stream from line `from` on (default: the last 60 lines), at most 80 lines
  local function wire(from)
    from = from or math.max(1, #lines - 60)
    return table.concat(lines, "\n", from, math.min(#lines, from + 79))
  end
  return s, lines, wire
end

local function is_dir(p)
  local _, ok = F.sh("test -d " .. H.shquote(p))
  return ok == true
end

for _, tls in ipairs {false, true} do
  local name = tls and "explicit FTPS" or "plain FTP"
  describe("ftp against proftpd (" .. name .. ")", function()
    local srv, s, lines, wire

    setup(function() srv = F.proftpd{tls = tls} end)
    teardown(function() if srv then srv.stop() end end)

    -- each test works in a folder of its own on the shared server
    local n = 0
    local sub
    before_each(function()
      n = n + 1
      sub = "t" .. n
      s, lines, wire = open(srv)
      assert(s:mkd(sub))
      assert(s:cwd(sub))
    end)
    after_each(function() if s then s:close() end end)

    local function P(p) return srv.path(sub .. "/" .. p) end

    it("logs in and keeps the welcome and entry path", function()
      assert.matches("^220 ProFTPD Server", s:getwelcome())
      assert.equal(srv.root, s:_info().entry)
      assert.equal(srv.root .. "/" .. sub, s:pwd())
      assert.matches("^200 ", s:voidcmd("NOOP"))
      if tls then
        local all = table.concat(lines, "\n")
        assert.matches("%*cmd%* AUTH TLS.*%*cmd%* USER", all)
        assert.matches("%*cmd%* PROT P", all)
      end
    end)

    it("moves bytes exactly both ways, checked on disk", function()
      local data = F.random_bytes(200000)
      assert.matches("^226 ", s:storbinary("STOR bin.dat", data, 8192))
      assert.equal(data, H.read_file(P("bin.dat")))
      local parts = {}
      assert.matches("^226 ", s:retrbinary("RETR bin.dat", function(b) parts[#parts + 1] = b end))
      assert.equal(data, table.concat(parts))
      assert.equal(#data, s:size("bin.dat"))
      -- helpers
      assert(s:put("small text\n", "p.txt"))
      assert.equal("small text\n", H.read_file(P("p.txt")))
      assert.equal("small text\n", s:get("p.txt"))
      -- resumed download
      parts = {}
      assert(s:retrbinary("RETR bin.dat", function(b) parts[#parts + 1] = b end, nil, 150000))
      assert.equal(data:sub(150001), table.concat(parts))
    end)

    it("lists, makes and removes folders, renames and deletes", function()
      H.write_file(P("a.txt"), "aaa")
      assert.same({"a.txt"}, s:nlst())
      local l = assert(s:list())
      assert.equal(1, #l)
      assert.equal("a.txt", l[1].name)
      assert.equal("file", l[1].type)
      assert.equal(3, l[1].size)
      local got = {}
      assert.matches("^226 ", s:dir(function(x) got[#got + 1] = x end))
      assert.equal(1, #got)
      assert.matches("a%.txt$", got[1])

      assert.equal(srv.root .. "/" .. sub .. "/d", s:mkd("d"))
      assert.is_true(is_dir(P("d")))
      assert.matches("^250 ", s:rename("a.txt", "d/b.txt"))
      assert.is_false(H.exists(P("a.txt")))
      assert.equal("aaa", H.read_file(P("d/b.txt")))
      local ok, msg, code = s:rmd("d")
      assert.is_nil(ok)
      assert.equal(550, code)
      assert.is_string(msg)
      assert.is_true(is_dir(P("d")))
      assert.matches("^250 ", s:delete("d/b.txt"))
      assert.is_false(H.exists(P("d/b.txt")))
      assert.matches("^250 ", s:rmd("d"))
      assert.is_false(is_dir(P("d")))
      local n, m2, c2 = s:size("gone.txt")
      assert.is_nil(n)
      assert.equal(550, c2, m2)
      assert.matches("^221 ", s:quit())
    end)

    it("takes each reply for its own command after a RETR of a missing file", function()
      local called = false
      local first = #lines + 1
      local ok, msg, code = s:retrbinary("RETR nosuch.bin", function() called = true end)
      assert.is_nil(ok)
      assert.equal(550, code, msg)
      assert.matches("^retrbinary RETR nosuch.bin: 550 ", msg)
      assert.is_false(called)
      assert.is_false(H.exists(P("nosuch.bin")))

      local home = srv.root .. "/" .. sub
      local d1, d2 = F.random_bytes(70000), F.random_bytes(1234) .. "end"
      -- {what, function returning nil or a complaint}
      local steps = {
        {"NOOP", function()
          local r = s:sendcmd("NOOP")
          if not (r and r:match("^200 ")) then return r end
        end},
        {"PWD keeps the folder", function()
          local r = s:pwd()
          if r ~= home then return r end
        end},
        {"MKD r1", function()
          local r = s:mkd("r1")
          if r ~= home .. "/r1" or not is_dir(home .. "/r1") then
            return tostring(r) .. ", on disk: " .. tostring(is_dir(home .. "/r1"))
          end
        end},
        {"put r1/a.bin", function()
          local r, m = s:put(d1, "r1/a.bin")
          if not r or H.read_file(home .. "/r1/a.bin") ~= d1 then return r or m end
        end},
        {"SIZE r1/a.bin", function()
          local r, m = s:size("r1/a.bin")
          if r ~= #d1 then return r or m end
        end},
        {"get r1/a.bin", function()
          local r, m = s:get("r1/a.bin")
          if r ~= d1 then return r and ("%d bytes"):format(#r) or m end
        end},
        {"rename r1/a.bin r1/b.bin", function()
          local r, m = s:rename("r1/a.bin", "r1/b.bin")
          if not (r and r:match("^250 ")) or H.exists(home .. "/r1/a.bin")
            or H.read_file(home .. "/r1/b.bin") ~= d1 then return r or m end
        end},
        {"NLST r1", function()
          local r, m = s:nlst("r1")
          if not r or #r ~= 1 or not r[1]:match("b%.bin$") then
            return r and table.concat(r, ",") or m
          end
        end},
        {"CWD r1", function()
          local r, m = s:cwd("r1")
          if not (r and r:match("^250 ")) then return r or m end
        end},
        {"PWD in r1", function()
          local r = s:pwd()
          if r ~= home .. "/r1" then return r end
        end},
        {"SYST", function()
          local r = s:sendcmd("SYST")
          if not (r and r:match("^215 ")) then return r end
        end},
        {"list", function()
          local r, m = s:list()
          if not r or #r ~= 1 or r[1].name ~= "b.bin" or r[1].size ~= #d1 then
            return r and ("%d entries"):format(#r) or m
          end
        end},
        {"STOR c.bin", function()
          local r, m = s:storbinary("STOR c.bin", d2)
          if not (r and r:match("^226 ")) or H.read_file(home .. "/r1/c.bin") ~= d2 then
            return r or m
          end
        end},
        {"RETR c.bin", function()
          local t = {}
          local r, m = s:retrbinary("RETR c.bin", function(b) t[#t + 1] = b end)
          if not (r and r:match("^226 ")) or table.concat(t) ~= d2 then return r or m end
        end},
        {"DELE b.bin", function()
          local r, m = s:delete("b.bin")
          if not (r and r:match("^250 ")) or H.exists(home .. "/r1/b.bin") then return r or m end
        end},
        {"CWD ..", function()
          local r, m = s:cwd("..")
          if not (r and r:match("^250 ")) or s:pwd() ~= home then return r or m end
        end},
        {"MKD r2", function()
          local r = s:mkd("r2")
          if r ~= home .. "/r2" or not is_dir(home .. "/r2") then return r end
        end},
        {"RMD r2", function()
          local r, m = s:rmd("r2")
          if not (r and r:match("^250 ")) or is_dir(home .. "/r2") then
            return tostring(r or m) .. ", on disk: " .. tostring(is_dir(home .. "/r2"))
          end
        end},
        {"LIST r1", function()
          local t = {}
          local r, m = s:dir("r1", function(l) t[#t + 1] = l end)
          if not (r and r:match("^226 ")) or #t ~= 1 or not t[1]:match("c%.bin$") then
            return r or m
          end
        end},
        {"DELE r1/c.bin, RMD r1", function()
          local r, m = s:delete("r1/c.bin")
          if not (r and r:match("^250 ")) or H.exists(home .. "/r1/c.bin") then return r or m end
          r, m = s:rmd("r1")
          if not (r and r:match("^250 ")) or is_dir(home .. "/r1") then return r or m end
        end},
      }
      assert.equal(20, #steps)
      local wrong = {}
      for i, st in ipairs(steps) do
        local okc, bad = pcall(st[2])
        if not okc or bad ~= nil then
          wrong[#wrong + 1] = ("%2d %s -> %s"):format(i, st[1], tostring(bad))
        end
      end
      local q = s:quit()
      if not (q and q:match("^221 ")) then wrong[#wrong + 1] = "QUIT -> " .. tostring(q) end
      assert(#wrong == 0, "replies or effects that do not belong:\n"
        .. table.concat(wrong, "\n") .. "\n--- wire from the RETR on:\n" .. wire(first))
    end)
  end)
end
