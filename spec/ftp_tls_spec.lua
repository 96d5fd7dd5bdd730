-- FTPS against vsftpd with require_ssl_reuse=YES: explicit and implicit
-- TLS, certificate verification, and the libcurl-version rules.
local H = require "helper"
local F = require "ftp_helper"
local ftp = require "netlua.ftp"

local function curl_at_least(maj, min)
  local a, b = ftp.curl_version:match("^(%d+)%.(%d+)")
  a, b = tonumber(a), tonumber(b)
  return a > maj or (a == maj and b >= min)
end

describe("ftps explicit (vsftpd, require_ssl_reuse=YES)", function()
  local srv

  setup(function() srv = F.vsftpd{tls = true} end)
  teardown(function() if srv then srv.stop() end end)

  it("does 20 uploads and downloads byte-exact", function()
    local s = assert(ftp.new(srv.opts()))
    for i = 1, 20 do
      local data = F.random_bytes(1000 + i * 7919) .. ("%d"):format(i)
      assert(s:storbinary("STOR t" .. i, data), i)
      assert.equal(data, H.read_file(srv.path("t" .. i)), i)
      assert.equal(data, s:get("t" .. i), i)
    end
    assert.equal(20, #s:nlst())
    assert.equal(1, #s:list() - 19)
    assert.matches("^221", s:quit())
  end)

  it("sends the login only under TLS", function()
    local lines = {}
    local s = assert(ftp.new(srv.opts{debug = function(l) lines[#lines + 1] = l end}))
    s:close()
    local all = table.concat(lines, "\n")
    assert.matches("%*cmd%* AUTH TLS.*%*cmd%* USER", all)
    assert.matches("%*cmd%* PBSZ 0", all)
    assert.matches("%*cmd%* PROT P", all)
  end)

  it("fails verification against a wrong CA, passes with verify=false", function()
    local dir = H.tmpdir()
    local other = F.make_cert(dir)
    local s, msg, code = ftp.new(srv.opts{cafile = other})
    assert.is_nil(s)
    assert.equal("tls", code)
    assert.is_string(msg)
    -- the system store does not know the test CA either
    local o = srv.opts()
    o.cafile = nil
    s, msg, code = ftp.new(o)
    assert.is_nil(s)
    assert.equal("tls", code)
    local t = assert(ftp.new(srv.opts{cafile = other, verify = false}))
    assert.equal("200 NOOP ok.", t:voidcmd("NOOP"))
    t:close()
    H.rm_rf(dir)
  end)

  it("without TLS the server refuses the login", function()
    local o = srv.opts()
    o.tls, o.cafile = nil, nil
    local s, msg, code = ftp.new(o)
    assert.is_nil(s)
    assert.equal(530, code)
    assert.matches("^login: 530", msg)
  end)

  it("active mode under TLS follows the libcurl version rule", function()
    if curl_at_least(8, 0) then
      local s = assert(ftp.new(srv.opts{passive = false}))
      assert(s:storbinary("STOR act", "active"))
      assert.equal("active", s:get("act"))
      s:close()
    else
      assert.has_error(function() ftp.new(srv.opts{passive = false}) end)
      local s = assert(ftp.new(srv.opts()))
      assert.has_error(function() s:set_pasv(false) end)
      assert(s:voidcmd("NOOP"))  -- still passive and working
      s:close()
    end
  end)
end)

describe("ftps implicit (vsftpd)", function()
  local srv

  setup(function() srv = F.vsftpd{tls = true, extra = {"implicit_ssl=YES"}} end)
  teardown(function() if srv then srv.stop() end end)

  it("connects with ftps:// semantics and transfers", function()
    local o = srv.opts()
    o.tls = "implicit"
    local s = assert(ftp.new(o))
    assert.equal("220 (vsFTPd 3.0.3)", s:getwelcome())
    assert(s:storbinary("STOR imp", "implicit data"))
    assert.equal("implicit data", s:get("imp"))
    s:close()
    local url = ("ftps://%s:%s@127.0.0.1:%d/imp"):format(srv.user, srv.password:gsub("!", "%%21"), srv.port)
    assert.equal("implicit data", ftp.get(url, {cafile = srv.cert, timeout = 10}))
  end)
end)
