-- Listings: MLSD and list() against pyftpdlib, and the LIST parsers on
-- Unix and DOS/IIS lines.
local H = require "helper"

-- math.type is 5.3+; before, a number is an integer when it has no fraction
local mtype = math.type or function(x)
  if type(x) == "number" then return x % 1 == 0 and "integer" or "float" end
end
local F = require "ftp_helper"
local ftp = require "netlua.ftp"

describe("ftp listings against pyftpdlib", function()
  local srv, s

  setup(function()
    srv = F.pyftpd()
    H.write_file(srv.path("a.txt"), "hello")
    F.sh("mkdir -p " .. H.shquote(srv.path("sub dir")))
    H.write_file(srv.path("sub dir/b.bin"), ("x"):rep(1234))
    F.sh("ln -s a.txt " .. H.shquote(srv.path("link")))
  end)
  teardown(function() if srv then srv.stop() end end)
  before_each(function() s = assert(ftp.new(srv.opts())) end)
  after_each(function() if s then s:close() end end)

  it("mlsd yields names with facts", function()
    local seen = {}
    for name, facts in assert(s:mlsd()) do seen[name] = facts end
    assert.equal("file", seen["a.txt"].type)
    assert.equal("5", seen["a.txt"].size)
    assert.equal("dir", seen["sub dir"].type)
    assert.matches("^%d%d%d%d%d%d%d%d%d%d%d%d%d%d", seen["a.txt"].modify)
    local only = {}
    for name, facts in assert(s:mlsd("sub dir", {"type", "size"})) do only[name] = facts end
    assert.equal("1234", only["b.bin"].size)
    local ok, msg, code = s:mlsd("missing")
    assert.is_nil(ok)
    assert.is_true(mtype(code) == "integer" and code >= 500, tostring(code))
    assert.is_string(msg)
  end)

  it("list uses MLSD and gives parsed entries", function()
    local lines = {}
    s:set_debuglevel(function(l) lines[#lines + 1] = l end)
    local entries = assert(s:list())
    local by = {}
    for _, e in ipairs(entries) do by[e.name] = e end
    assert.equal("file", by["a.txt"].type)
    assert.equal(5, by["a.txt"].size)
    assert.is_true(math.abs(by["a.txt"].modify - os.time()) < 3600)
    assert.equal("dir", by["sub dir"].type)
    assert.matches("%*cmd%* MLSD", table.concat(lines, "\n"))
    local sub = assert(s:list("sub dir"))
    assert.equal(1, #sub)
    assert.equal(1234, sub[1].size)
    local ok, _, code = s:list("missing")
    assert.is_nil(ok)
    assert.is_true(mtype(code) == "integer" and code >= 500, tostring(code))
  end)

  it("list after mlsd(path, facts) still has size and modify", function()
    -- OPTS MLST narrows the facts for the whole session
    for _ in assert(s:mlsd(nil, {"type"})) do end
    local by = {}
    for _, e in ipairs(assert(s:list())) do by[e.name] = e end
    assert.equal(5, by["a.txt"].size)
    assert.is_true(math.abs(by["a.txt"].modify - os.time()) < 3600)
    assert.equal("dir", by["sub dir"].type)
    -- and plain mlsd gets the server's default facts again
    local seen = {}
    for name, facts in assert(s:mlsd()) do seen[name] = facts end
    assert.equal("5", seen["a.txt"].size)
    assert.is_string(seen["a.txt"].modify)
  end)

  it("list entries are sorted and carry no facts table", function()
    H.write_file(srv.path("B"), "")
    finally(function() os.remove(srv.path("B")) end)
    local entries = assert(s:list())
    local names = {}
    for i, e in ipairs(entries) do
      names[i] = e.name
      assert.is_nil(e.facts)
    end
    assert.same({"B", "a.txt", "link", "sub dir"}, names)
  end)

  it("list keeps only the fields asked for, and refuses unknown ones", function()
    local full = assert(s:list())
    local lean = assert(s:list(nil, {fields = {"size", "modify"}}))
    assert.equal(#full, #lean)
    for i, e in ipairs(lean) do
      local want = {name = full[i].name, size = full[i].size, modify = full[i].modify}
      assert.same(want, e)
    end
    assert.has_error(function() s:list(nil, {fields = {"sizes"}}) end)
    assert.has_error(function() s:list(nil, {fields = "size"}) end)
  end)

  it("nlst gives bare names", function()
    local names = assert(s:nlst())
    table.sort(names)
    assert.same({"a.txt", "link", "sub dir"}, names)
  end)
end)

describe("list when the server refuses OPTS MLST", function()
  local pid

  after_each(function() H.kill(pid) pid = nil end)

  it("falls back to LIST after mlsd narrowed the facts", function()
    local port = H.free_port("inet")
    pid = H.lua_server("ftp_hostile", "mlsd", port)
    local lines = {}
    local s = assert(ftp.new{host = "127.0.0.1", port = port, user = "u", password = "p",
      timeout = 5, debug = function(l) lines[#lines + 1] = l end})
    s:set_debuglevel(1)
    local e = assert(s:list())[1]
    assert.same({name = "f", type = "file", size = 5, modify = ftp.timegm(2020, 1, 1, 0, 0, 0)}, e)
    local only = {}
    for name, facts in assert(s:mlsd(nil, {"type"})) do only[name] = facts end
    assert.same({type = "file"}, only.f)
    lines = {}
    e = assert(s:list())[1]
    assert.equal(5, e.size)
    assert.equal(ftp.timegm(2020, 1, 1, 0, 0, 0), e.modify)
    local all = table.concat(lines, "\n")
    assert.matches("OPTS MLST type;size;modify;", all, 1, true)
    assert.matches("LIST", all, 1, true)
    s:close()
  end)
end)

describe("LIST parsing", function()
  local now = ftp.timegm(2024, 6, 15, 12, 0, 0)

  it("reads Unix ls -l lines, symlinks and years", function()
    local e = ftp.parse_list_line("-rw-r--r--    1 1001     1001         4096 Nov 27 10:31 my file.txt", now)
    assert.same({type = "file", perm = "-rw-r--r--", links = 1, owner = "1001", group = "1001",
      size = 4096, modify = ftp.timegm(2023, 11, 27, 10, 31), name = "my file.txt"}, e)
    e = ftp.parse_list_line("drwxr-xr-x 2 ftp ftp 4096 Jan  2  2020 dir", now)
    assert.equal("dir", e.type)
    assert.equal(ftp.timegm(2020, 1, 2, 0, 0), e.modify)
    e = ftp.parse_list_line("lrwxrwxrwx 1 root root 7 Jun 14 09:00 lnk -> target dir", now)
    assert.equal("link", e.type)
    assert.equal("lnk", e.name)
    assert.equal("target dir", e.target)
    assert.equal(ftp.timegm(2024, 6, 14, 9, 0), e.modify)
    e = ftp.parse_list_line("-rw-r--r-- 1 owner 12 Jun 14 09:00 nogroup", now)
    assert.equal(12, e.size)
    assert.equal("nogroup", e.name)
    assert.is_nil(ftp.parse_list_line("total 12", now))
    assert.is_nil(ftp.parse_list_line("drwxr-xr-x 2 a b 4096 Jan  2  2020 .", now))
    assert.is_nil(ftp.parse_list_line("garbage", now))
  end)

  it("reads DOS/IIS lines", function()
    local e = ftp.parse_list_line("11-27-24  10:31AM       <DIR>          Program Files", now)
    assert.same({type = "dir", name = "Program Files", modify = ftp.timegm(2024, 11, 27, 10, 31)}, e)
    e = ftp.parse_list_line("01-02-2020  01:05PM              1,234 report.doc", now)
    assert.same({type = "file", name = "report.doc", size = 1234,
      modify = ftp.timegm(2020, 1, 2, 13, 5)}, e)
    e = ftp.parse_list_line("01-02-99  12:00AM                 10 old.txt", now)
    assert.equal(ftp.timegm(1999, 1, 2, 0, 0), e.modify)
  end)

  it("turns MLSD facts into entries", function()
    local e = ftp.mlsd_entry("x", {type = "file", size = "10", modify = "20240102030405", perm = "r"})
    assert.equal("file", e.type)
    assert.equal(10, e.size)
    assert.equal(ftp.timegm(2024, 1, 2, 3, 4, 5), e.modify)
    assert.is_nil(ftp.mlsd_entry(".", {type = "cdir"}))
    e = ftp.mlsd_entry("l", {type = "OS.unix=slink:/etc"})
    assert.equal("link", e.type)
    assert.equal("/etc", e.target)
    assert.equal(0, ftp.timegm(1970, 1, 1, 0, 0, 0))
    assert.equal(951782400, ftp.timegm(2000, 2, 29, 0, 0, 0))
  end)

  it("keeps names as the server wrote them", function()
    local e = ftp.parse_list_line("-rw-r--r-- 1 a b 5 Jan  1  2020  two  spaces ", now)
    assert.equal(" two  spaces ", e.name)
    e = ftp.parse_list_line("-rw-r--r--\t1\ta\tb\t5\tJan\t1\t2020\ttabbed", now)
    assert.equal("tabbed", e.name)
    assert.equal(5, e.size)
    e = ftp.parse_list_line("lrwxrwxrwx 1 a b 5 Jan  1  2020 a -> b -> c", now)
    assert.equal("a", e.name)
    assert.equal("b -> c", e.target)
    e = ftp.parse_list_line("lrwxrwxrwx 1 a b 5 Jan  1  2020 no arrow", now)
    assert.equal("no arrow", e.name)
    assert.is_nil(e.target)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 5 Jan  1  2020 x -> y", now)
    assert.equal("x -> y", e.name)     -- only links have targets
    assert.is_nil(ftp.parse_list_line("-rw-r--r-- 1 a b 5 Jan  1  2020 ", now))
    assert.is_nil(ftp.parse_list_line("drwxr-xr-x 2 a b 4096 Jan  2  2020 ..", now))
    assert.is_nil(ftp.parse_list_line("", now))
  end)

  it("reads the odd columns of ls -l", function()
    local e = ftp.parse_list_line("prw-r--r-- 1 a b 0 Jan  1  2020 fifo", now)
    assert.equal("other", e.type)
    assert.equal("prw-r--r--", e.perm)
    -- device files show "major, minor" where the size goes: not parsed
    assert.is_nil(ftp.parse_list_line("crw-rw-rw- 1 root root 1, 3 Jun 14 09:00 null", now))
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 99999999999999999999 Jan  1  2020 huge", now)
    assert.equal("huge", e.name)
    assert.is_nil(e.size)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 8 NOV 27  2023 upper", now)
    assert.equal(ftp.timegm(2023, 11, 27, 0, 0), e.modify)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 8 Xyz 27  2023 badmonth", now)
    assert.equal("badmonth", e.name)
    assert.is_nil(e.modify)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 8 Nov 27 25:00 badtime", now)
    assert.is_nil(e.modify)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 8 Nov 32  2023 badday", now)
    assert.is_nil(e.modify)
  end)

  it("puts year-less dates in the last year before now + 1 day", function()
    -- now is 2024-06-15 12:00 UTC
    local e = ftp.parse_list_line("-rw-r--r-- 1 a b 1 Jun 16 11:59 x", now)
    assert.equal(ftp.timegm(2024, 6, 16, 11, 59), e.modify)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 1 Jun 16 12:01 x", now)
    assert.equal(ftp.timegm(2023, 6, 16, 12, 1), e.modify)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 1 Dec 31 23:59 x", now)
    assert.equal(ftp.timegm(2023, 12, 31, 23, 59), e.modify)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 1 Jan  1 0:05 x", now)
    assert.equal(ftp.timegm(2024, 1, 1, 0, 5), e.modify)
    -- on New Year's Eve a listing may already show tomorrow's date
    local eve = ftp.timegm(2024, 12, 31, 22, 0, 0)
    e = ftp.parse_list_line("-rw-r--r-- 1 a b 1 Jan  1 00:30 x", eve)
    assert.equal(ftp.timegm(2025, 1, 1, 0, 30), e.modify)
  end)

  it("reads the odd DOS/IIS lines", function()
    local e = ftp.parse_list_line("01-02-2020  12:05PM                 1 noon", now)
    assert.equal(ftp.timegm(2020, 1, 2, 12, 5), e.modify)
    e = ftp.parse_list_line("01-02-2020  12:05am                 1 midnight", now)
    assert.equal(ftp.timegm(2020, 1, 2, 0, 5), e.modify)
    e = ftp.parse_list_line("01-02-69  12:05AM        1,234,567 big one", now)
    assert.equal(ftp.timegm(2069, 1, 2, 0, 5), e.modify)
    assert.equal(1234567, e.size)
    assert.equal("big one", e.name)
    e = ftp.parse_list_line("01-02-70  12:05AM       <dir>  old", now)
    assert.equal("dir", e.type)
    assert.equal(ftp.timegm(1970, 1, 2, 0, 5), e.modify)
    assert.is_nil(ftp.parse_list_line("13-02-70  12:05AM  <DIR>  badmonth", now))
    assert.is_nil(ftp.parse_list_line("01-02-70  12:05AM  <DIR>  .", now))
    assert.is_nil(ftp.parse_list_line("01-02-70  12:05AM  <DIR>  ", now))
  end)

  it("reads MLSD facts in any case", function()
    local e = ftp.mlsd_entry("d", {Type = "DIR", SIZD = "4096", ["UNIX.mode"] = "0755",
      ["unix.uid"] = "1000", ["unix.gid"] = 100, Unique = "U1"})
    assert.equal("dir", e.type)
    assert.equal(4096, e.size)
    assert.equal("0755", e.perm)
    assert.equal("1000", e.owner)
    assert.equal("100", e.group)
    assert.equal("U1", e.unique)
    e = ftp.mlsd_entry("f", {type = "file", size = 7, sizd = "9", perm = "r",
      ["unix.mode"] = "0644", ["unix.owner"] = "me", ["unix.uid"] = "1",
      ["unix.group"] = "us", ["unix.gid"] = "2", modify = "20240102030405.678"})
    assert.same({name = "f", type = "file", size = 7, perm = "r", owner = "me", group = "us",
      modify = ftp.timegm(2024, 1, 2, 3, 4, 5), facts = e.facts}, e)
    e = ftp.mlsd_entry("l", {type = "OS.unix=SLINK:/Some/Where"})
    assert.equal("link", e.type)
    assert.equal("/Some/Where", e.target)
    e = ftp.mlsd_entry("c", {type = "OS.unix=chr-13/29"})
    assert.equal("os.unix=chr-13/29", e.type)
    assert.is_nil(ftp.mlsd_entry("p", {type = "PDIR"}))
    assert.is_nil(ftp.mlsd_entry("..", {type = "dir"}))
    e = ftp.mlsd_entry("bad", {type = "file", size = "12x", modify = "2024"})
    assert.is_nil(e.size)
    assert.is_nil(e.modify)
  end)

  it("parses whole listings in blocks cut anywhere", function()
    local core = require "netlua.core"
    local text = "type=file;size=1; a\r\ntype=cdir; .\r\nnospace\r\n"
      .. "type=dir;modify=20200101000000; b c\r\ntype=file;size=3;  lead"
    for cut = 0, #text do
      local sink = core.ftp_list_sink("mlsd", now)
      sink:write(text:sub(1, cut))
      sink:write(text:sub(cut + 1))
      local out = assert(sink:finish())
      assert.equal(3, #out)
      assert.equal("a", out[1].name)
      assert.equal("b c", out[2].name)
      assert.equal(" lead", out[3].name)
      assert.equal(3, out[3].size)
    end
    local function sorted(...)
      local sink = core.ftp_list_sink("list", now)
      for _, name in ipairs{...} do sink:write("-rw-r--r-- 1 a b 1 Jan  1  2020 " .. name .. "\n") end
      local t = {}
      for i, e in ipairs(core.ftp_sort_names(assert(sink:finish()))) do t[i] = e.name end
      return t
    end
    assert.same({"B", "a", "b"}, sorted("b", "B", "a"))
    -- already in order (the pass that skips the sort), and out of order last
    assert.same({"B", "a", "b"}, sorted("B", "a", "b"))
    assert.same({"B", "a", "b", "c"}, sorted("B", "a", "c", "b"))
    assert.same({"a", "a", "b"}, sorted("a", "b", "a"))
    -- a line of up to 64 KiB with its line end is a listing line, one
    -- byte more is not, whether it comes whole or cut in two
    local prefix = "-rw-r--r-- 1 a b 1 Jan  1  2020 "
    for _, extra in ipairs {0, 1} do
      local line = prefix .. ("n"):rep(65536 - #prefix - 1 + extra) .. "\n"
      for _, cut in ipairs {0, 100, #line - 1} do
        local s2 = core.ftp_list_sink("list", now)
        s2:write(line:sub(1, cut))
        s2:write(line:sub(cut + 1))
        local out, msg, code = s2:finish()
        if extra == 0 then
          assert.equal(65536 - #prefix - 1, #out[1].name)
        else
          assert.same({nil, "listing line over 65536 bytes", "protocol"}, {out, msg, code})
        end
      end
    end
    -- a line too long for a listing stops the parsing, and says so
    local sink = core.ftp_list_sink("list", now)
    sink:write("-rw-r--r-- 1 a b 1 Jan  1  2020 ok\n" .. ("x"):rep(1024 * 1024))
    sink:write("y\n-rw-r--r-- 1 a b 1 Jan  1  2020 after\n")
    local ok, msg, code = sink:finish()
    assert.is_nil(ok)
    assert.matches("listing line over", msg)
    assert.equal("protocol", code)
  end)
end)
