-- Listings: MLSD and list() against pyftpdlib, and the LIST parsers on
-- Unix and DOS/IIS lines.
local H = require "helper"
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
    assert.is_true(math.type(code) == "integer" and code >= 500, tostring(code))
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
    assert.is_true(math.type(code) == "integer" and code >= 500, tostring(code))
  end)

  it("nlst gives bare names", function()
    local names = assert(s:nlst())
    table.sort(names)
    assert.same({"a.txt", "link", "sub dir"}, names)
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
end)
