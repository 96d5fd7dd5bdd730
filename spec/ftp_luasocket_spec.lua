-- LuaSocket's FTP habits against vsftpd: the table forms ftp.get{} and
-- ftp.put{} with real ltn12 sinks and sources, their errors, and the
-- ;type= suffix of RFC 1738 URLs.
local H = require "helper"
local F = require "ftp_helper"
local ftp = require "netlua.ftp"
local ltn12 = require "ltn12"

describe("ftp with LuaSocket's habits", function()
  local srv, base

  setup(function()
    srv = F.vsftpd()
    base = ("ftp://%s:%s@%s:%d"):format(srv.user, srv.password:gsub("!", "%%21"), srv.host, srv.port)
  end)
  teardown(function() srv.stop() end)

  local function loc(extra)
    local t = {host = srv.host, port = srv.port, user = srv.user, password = srv.password,
      timeout = 10}
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  it("ftp.get{} fills an ltn12 table sink and returns 1", function()
    local data = F.random_bytes(200000)
    H.write_file(srv.path("g.bin"), data)
    local t = {}
    assert.equal(1, ftp.get(loc{path = "g.bin", sink = ltn12.sink.table(t)}))
    assert.is_true(table.concat(t) == data)
    -- and by url
    t = {}
    assert.equal(1, ftp.get{url = base .. "/g.bin", sink = ltn12.sink.table(t), timeout = 10})
    assert.is_true(table.concat(t) == data)
  end)

  it("closes an ltn12 file sink at the end, as ltn12.pump would", function()
    H.write_file(srv.path("f.txt"), "file sink\n")
    local dir = H.tmpdir()
    local f = assert(io.open(dir .. "/out", "wb"))
    assert.equal(1, ftp.get(loc{path = "f.txt", sink = ltn12.sink.file(f)}))
    assert.equal("closed file", io.type(f))
    assert.equal("file sink\n", H.read_file(dir .. "/out"))
    H.rm_rf(dir)
  end)

  it("a failing sink fails the download, and a missing file is the server's 550", function()
    H.write_file(srv.path("e.bin"), F.random_bytes(100000))
    local ok, msg, code = ftp.get(loc{path = "e.bin", sink = ltn12.sink.error("boom")})
    assert.is_nil(ok)
    assert.equal("boom", msg)
    assert.equal("callback", code)
    local last
    ok, msg, code = ftp.get(loc{path = "nope", sink = function(c, e) last = {c, e} return 1 end})
    assert.is_nil(ok)
    assert.equal(550, code)
    assert.matches("^get nope: 550", msg)
    assert.is_nil(last[1])
    assert.equal(msg, last[2])   -- the sink hears of the failure
  end)

  it("ftp.put{} sends an ltn12 source; its nil, err fails the upload", function()
    local data = F.random_bytes(150000)
    assert.equal(1, ftp.put(loc{path = "p.bin", source = ltn12.source.string(data)}))
    assert.is_true(H.read_file(srv.path("p.bin")) == data)
    local ok, msg, code = ftp.put(loc{path = "q.bin", source = ltn12.source.error("disk gone")})
    assert.is_nil(ok)
    assert.equal("callback", code)
    assert.equal("disk gone", msg)
  end)

  it("honours ;type=a and ;type=d in URLs", function()
    H.write_file(srv.path("t.txt"), "one\r\ntwo\r\n")
    H.write_file(srv.path("b.bin"), "x\r\ny")
    assert.equal("one\ntwo\n", assert(ftp.get(base .. "/t.txt;type=a", {timeout = 10})))
    assert.equal("x\r\ny", assert(ftp.get(base .. "/b.bin;type=i", {timeout = 10})))
    assert.equal("x\r\ny", assert(ftp.get(base .. "/b.bin", {timeout = 10})))
    local names = assert(ftp.get(base .. "/;type=d", {timeout = 10}))
    assert.matches("t%.txt\n", names)
    assert(ftp.put(base .. "/u.txt;type=a", "a\nb\n", {timeout = 10}))
    assert.equal("a\r\nb\r\n", H.read_file(srv.path("u.txt")))
  end)

  it("raises on a request table without a place to go", function()
    assert.has_error(function() ftp.get{path = "x"} end)
    assert.has_error(function() ftp.get(loc{path = "x", sink = 5}) end)
    assert.has_error(function() ftp.put(loc{path = "x"}) end)
    assert.has_error(function() ftp.get(loc{path = "x", type = "z"}) end)
  end)
end)
