-- Names with control characters (TAB, 0x01, ESC, DEL) next to a space and
-- a '%': libcurl 7.88 refuses any path byte below 0x20, so such names go
-- through a control connection of netlua's own.  Every byte but CR, LF
-- and NUL must work: put, get, retrbinary, storbinary (STOR and APPE),
-- size, delete, rename, listings, against vsftpd, pyftpdlib and proftpd,
-- contents checked byte for byte on disk.  Over TLS the data channel must
-- go in clear (we have no TLS of our own on it): a server that refuses
-- that gives a clear "tls" error, never a hang.
local H = require "helper"

-- 5.1 and LuaJIT lack table.pack
local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local F = require "ftp_helper"
local ftp = require "netlua.ftp"

-- binary data with CR LF pairs, lone CRs and LFs, 0xFF and NUL bytes
local DATA = "line one\r\nline two\r\n\255\255\0\r\r\n\n" .. F.random_bytes(300 * 1024)
  .. "\r\n\255"
local NAMES = {
  "tab\tname.bin", "soh\1name", "esc\27[1mname", "del\127name",
  "both\t\1\27\127 x%41%.bin", "\tleading tab",
}

local function shown(name) return (name:gsub("[%c\127]", function(c) return ("\\x%02x"):format(c:byte()) end)) end

local function on_disk(srv, name) return H.read_file(srv.path(name)) end

local function names_in(t)
  local seen = {}
  for _, e in ipairs(t) do seen[type(e) == "table" and e.name or e] = true end
  return seen
end

local servers = {
  {"vsftpd", function() return F.vsftpd() end},
  {"vsftpd (active mode)", function() return F.vsftpd() end, {passive = false}},
  {"pyftpdlib", function() return F.pyftpd() end},
  {"proftpd", function() return F.proftpd() end},
}

for _, sv in ipairs(servers) do
  local label, start, extra = sv[1], sv[2], sv[3]
  describe("names with control characters against " .. label, function()
    local srv, s
    setup(function() srv = start() end)
    teardown(function() if srv then srv.stop() end end)
    before_each(function() s = assert(ftp.new(srv.opts(extra))) end)
    after_each(function() if s then s:close() end end)

    for _, name in ipairs(NAMES) do
      it("put, get, size, append, rename and delete " .. shown(name), function()
        assert.equal("string", type(assert(s:put(DATA, name, {data = true}))))
        assert.is_true(on_disk(srv, name) == DATA, "stored bytes differ")
        assert.equal(#DATA, assert(s:size(name)))
        assert.is_true(assert(s:get(name)) == DATA, "fetched bytes differ")
        -- to a local file, through get's .part and rename
        local dir = H.tmpdir()
        assert(s:get(name, dir .. "/copy"))
        assert.is_true(H.read_file(dir .. "/copy") == DATA)
        -- retrbinary with a small blocksize: every block counted
        local parts, blocks = {}, 0
        assert.matches("^2%d%d", assert(s:retrbinary("RETR " .. name, function(b)
          blocks = blocks + 1
          parts[#parts + 1] = b
        end, 4096)))
        assert.is_true(table.concat(parts) == DATA)
        assert.is_true(blocks >= math.floor(#DATA / 4096))
        -- resumed download: the last 1000 bytes
        parts = {}
        assert(s:retrbinary("RETR " .. name, function(b) parts[#parts + 1] = b end,
          8192, #DATA - 1000))
        assert.is_true(table.concat(parts) == DATA:sub(-1000))
        -- storbinary APPE with a chunk function and a callback
        local chunks, seen = {"\r\nmore\255", "\0tail\r\n"}, {}
        local i = 0
        assert(s:storbinary("APPE " .. name, function() i = i + 1 return chunks[i] end,
          8192, function(b) seen[#seen + 1] = b end))
        assert.is_true(on_disk(srv, name) == DATA .. table.concat(chunks))
        assert.equal(table.concat(chunks), table.concat(seen))
        -- listings of the folder name the file
        assert.is_true(names_in(assert(s:nlst()))[name] or label == "vsftpd" or
          label == "vsftpd (active mode)", "nlst lacks the name")
        local entries = assert(s:list())
        local found = names_in(entries)[name]
        if label:find("^vsftpd") then
          -- vsftpd shows unprintable bytes as '?' in listings
          found = found or names_in(entries)[name:gsub("[%c\127]", "?")]
        end
        assert.is_truthy(found, "list lacks the name")
        -- rename and delete go through libcurl's quote path
        local other = name .. "\t2"
        assert(s:rename(name, other))
        assert.is_true(on_disk(srv, other) == DATA .. table.concat(chunks))
        assert.is_nil(on_disk(srv, name))
        assert(s:delete(other))
        assert.is_nil(on_disk(srv, other))
        H.rm_rf(dir)
      end)
    end

    it("stores from a file and text with storlines/retrlines", function()
      local name = "lines\tfile.txt"
      local tmp = os.tmpname()
      H.write_file(tmp, DATA)
      assert(s:put(tmp, name))
      os.remove(tmp)
      assert.is_true(on_disk(srv, name) == DATA)
      local text = "alpha\nbeta\r\ngamma"
      assert(s:storlines("STOR text\1.txt", text))
      -- TYPE A: CR LF on the wire; pyftpdlib and proftpd store LF
      local stored = on_disk(srv, "text\1.txt")
      assert.is_true(stored == "alpha\r\nbeta\r\ngamma\r\n" or stored == "alpha\nbeta\ngamma\n",
        stored)
      local lines = {}
      assert(s:retrlines("RETR text\1.txt", function(l) lines[#lines + 1] = l end))
      assert.same({"alpha", "beta", "gamma"}, lines)
      assert(s:delete(name))
      assert(s:delete("text\1.txt"))
    end)

    it("works in a folder whose name has a control character", function()
      assert(s:mkd("dir\tone"))
      assert(s:cwd("dir\tone"))
      assert(s:put("x\1y", "plain", {data = true}))
      assert.equal("x\1y", on_disk(srv, "dir\tone/plain"))
      assert.equal("x\1y", assert(s:get(s:pwd() .. "/plain")))
      assert.equal("x\1y", assert(s:get("plain")))
      -- listings of the folder itself (its path has the TAB)
      assert.is_true(names_in(assert(s:list()))["plain"], "list lacks plain")
      local names = assert(s:nlst())
      assert.is_true(#names == 1 and names[1]:match("plain$") ~= nil, names[1])
      local lines = {}
      assert(s:retrlines("LIST", function(l) lines[#lines + 1] = l end))
      assert.equal(1, #lines)
      assert.matches(" plain$", lines[1])
      assert(s:cwd(".."))
      assert.equal(3, assert(s:size("dir\tone/plain")))
      assert(s:delete("dir\tone/plain"))
      assert(s:rmd("dir\tone"))
    end)

    it("mirrors a tree with such names", function()
      if label:find("^vsftpd") then
        -- vsftpd lists unprintable bytes as '?': the real names are unknowable
        return
      end
      assert(s:mkd("tree\t1"))
      assert(s:put(DATA, "tree\t1/f\1one", {data = true}))
      assert(s:put("two", "tree\t1/f two%", {data = true}))
      assert(s:mkd("tree\t1/sub\27dir"))
      assert(s:put("three", "tree\t1/sub\27dir/f\tthree", {data = true}))
      local dir = H.tmpdir()
      local results = pack(s:mirror("tree\t1", dir .. "/copy", {parallel = 2}))
      assert.equal(3, results[1] and results[1].files, tostring(results[2]))
      assert.is_true(H.read_file(dir .. "/copy/f\1one") == DATA)
      assert.equal("two", H.read_file(dir .. "/copy/f two%"))
      assert.equal("three", H.read_file(dir .. "/copy/sub\27dir/f\tthree"))
      H.rm_rf(dir)
    end)

    it("answers 550 with the label for a missing name", function()
      local ok, msg, code = s:get("missing\tname")
      assert.is_nil(ok)
      assert.equal(550, code)
      assert.equal("get missing\tname: 550", msg:sub(1, 21))
      ok, msg, code = s:size("missing\1name")
      assert.is_nil(ok)
      assert.equal(550, code)
      assert.matches("^size missing\1name: 550", msg)
      ok, msg, code = s:retrbinary("RETR missing\27name", function() end)
      assert.is_nil(ok)
      assert.equal(550, code)
      assert.matches("^retrbinary RETR missing\27name: 550", msg)
      -- the session is fine afterwards
      assert(s:put("ok", "after\tmissing", {data = true}))
      assert.equal("ok", assert(s:get("after\tmissing")))
      assert.matches("^200", s:voidcmd("NOOP"))
      assert(s:delete("after\tmissing"))
    end)

    it("passes a callback's error on and keeps the session usable", function()
      assert(s:put(DATA, "cb\tfail", {data = true}))
      local ok, msg, code = s:retrbinary("RETR cb\tfail", function() error("stop here", 0) end)
      assert.is_nil(ok)
      assert.equal("callback", code)
      assert.equal("stop here", msg)
      ok, msg, code = s:retrbinary("RETR cb\tfail", function() return nil, "sink full" end)
      assert.is_nil(ok)
      assert.equal("sink full", msg)
      assert.equal("callback", code)
      assert.equal(#DATA, assert(s:size("cb\tfail")))
      assert(s:delete("cb\tfail"))
    end)
  end)
end

describe("names with control characters over TLS", function()
  it("fails clearly when proftpd wants the data protected", function()
    local srv = F.proftpd{tls = true}
    local s = assert(ftp.new(srv.opts()))
    local t0 = F.monotime()
    local ok, msg, code = s:put("data", "tls\tname", {data = true})
    assert.is_nil(ok)
    assert.equal("tls", code)
    assert.matches("^put tls\tname: names with control characters need a clear data channel, which the server refused %(", msg)
    ok, msg, code = s:get("tls\tname")
    assert.is_nil(ok)
    assert.equal("tls", code)
    assert.matches("^get tls\tname: names with control characters need a clear data channel", msg)
    assert.is_true(F.monotime() - t0 < 8)
    -- SIZE needs no data channel
    assert(s:put("abc", "plain", {data = true}))
    assert(s:rename("plain", "tls\tname"))
    assert.equal(3, assert(s:size("tls\tname")))
    assert.matches("^200", s:voidcmd("NOOP"))
    s:close()
    srv.stop()
  end)

  it("fails clearly when vsftpd refuses a clear data connection", function()
    local srv = F.vsftpd{tls = true}
    local s = assert(ftp.new(srv.opts()))
    local ok, msg, code = s:put("data", "tls\tname", {data = true})
    assert.is_nil(ok)
    assert.equal("tls", code)
    assert.matches("^put tls\tname: names with control characters need a clear data channel", msg)
    assert.is_nil(on_disk(srv, "tls\tname"))
    s:close()
    srv.stop()
  end)

  it("moves the data in clear when vsftpd allows it", function()
    local srv = F.vsftpd{tls = true, extra = {"force_local_data_ssl=NO"}}
    local s = assert(ftp.new(srv.opts()))
    assert(s:put(DATA, "tls\tname", {data = true}))
    assert.is_true(on_disk(srv, "tls\tname") == DATA)
    assert.is_true(assert(s:get("tls\tname")) == DATA)
    assert.equal(#DATA, assert(s:size("tls\tname")))
    s:close()
    srv.stop()
  end)
end)

describe("names with control characters against a scripted server", function()
  local pid
  after_each(function() H.kill(pid) pid = nil end)

  local function serve(mode, timeout)
    local port = H.free_port("inet")
    pid = H.lua_server("ftp_hostile", mode, port)
    return assert(ftp.new{host = "127.0.0.1", port = port, user = "u", password = "p",
      timeout = timeout or 5})
  end

  it("falls back to PASV and checks the announced size", function()
    local s = serve("short")
    local ok, msg, code = s:get("half\tfile")
    assert.is_nil(ok)
    assert.equal("partial", code)
    assert.equal("get half\tfile: 524288 of 1048576 bytes received", msg)
    s:close()
  end)

  it("gets a whole file through PASV", function()
    local s = serve("plain")
    assert.equal(1024 * 1024, #assert(s:get("whole\tfile")))
    s:close()
  end)

  for _, verb in ipairs {"retr", "stor", "size", "pasv", "prelim"} do
    it("honours the timeout when the server stalls at " .. verb:upper(), function()
      local s = serve("stall_" .. verb, 1)
      local t0 = F.monotime()
      local ok, msg, code
      if verb == "stor" then
        ok, msg, code = s:put(("x"):rep(8 * 1024 * 1024), "stall\tname", {data = true})
      elseif verb == "size" then
        ok, msg, code = s:size("stall\tname")
      else
        ok, msg, code = s:get("stall\tname")
      end
      local took = F.monotime() - t0
      assert.is_nil(ok)
      assert.equal("timeout", code)
      assert.matches("stall\tname: timed out", msg, 1, true)
      -- a 1 s timeout; under valgrind every step is slower (H.slack)
      assert.is_true(took < 2.5 * H.slack, "took " .. took)
      s:close()
    end)
  end
end)
