-- Multi-line replies from real servers: the session stops at once on a
-- line that is not FTP (spec/ftp_hostile_spec.lua), so make sure the
-- legal multi-line replies of vsftpd (a multi-line banner, FEAT, HELP,
-- STAT) and pyftpdlib (FEAT, HELP, STAT) never trip it.
local H = require "helper"
local F = require "ftp_helper"
local ftp = require "netlua.ftp"

describe("multi-line replies from real servers", function()
  local servers = {}
  local dir

  setup(function()
    dir = H.tmpdir()
    F.sh("chmod 755 " .. H.shquote(dir))
    -- text lines that look like codes, blank and indented lines
    H.write_file(dir .. "/banner",
      "Welcome to the test server.\n  indented line\n230 looks like a code\n\n211- and so does this\nlast line\n")
    F.sh("chmod 644 " .. H.shquote(dir .. "/banner"))
    servers.vsftpd = F.vsftpd{extra = {"banner_file=" .. dir .. "/banner"}}
    servers.pyftpdlib = F.pyftpd()
  end)

  teardown(function()
    for _, srv in pairs(servers) do srv.stop() end
    if dir then H.rm_rf(dir) end
  end)

  for _, name in ipairs {"vsftpd", "pyftpdlib"} do
    it("logs in, sends FEAT, HELP and STAT, and transfers, on " .. name, function()
      local srv = servers[name]
      local s = assert(ftp.new(srv.opts{timeout = 5}))
      if name == "vsftpd" then
        local w = s:getwelcome()
        assert.matches("^220%-Welcome to the test server%.\n", w)
        assert.matches("\n220%-230 looks like a code\n", w)
        assert.matches("\n220%-211%- and so does this\n220%-last line\n220 ?$", w)
      end
      local feat = assert(s:sendcmd("FEAT"))
      assert.matches("^211%-", feat)
      assert.matches("\n211 [^\n]*$", feat)
      assert.matches("\n %u+", feat)  -- the feature lines start with a space
      local help = assert(s:voidcmd("HELP"))
      assert.matches("^214%-", help)
      assert.matches("\n214 [^\n]*$", help)
      local stat = assert(s:sendcmd("STAT"))
      assert.matches("^211%-", stat)
      assert(s:put("one\ntwo\n", "multi.txt", {data = true}))
      assert.equal("one\ntwo\n", s:get("multi.txt"))
      -- the session did not lose its connection on the way
      assert.equal(0, s:_info().reconnects)
      s:close()
    end)
  end
end)
