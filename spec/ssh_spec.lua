-- netlua.ssh against real servers: OpenSSH's sshd and dropbear, each
-- with a throwaway user, fresh host keys and a router CLI (spec/ssh_helper.lua).
local H = require "helper"
local S = require "ssh_helper"
local netlua = require "netlua"
local ssh = require "netlua.ssh"

local function each_server(fn)
  for _, kind in ipairs {"sshd", "dropbear"} do fn(kind) end
end

each_server(function(kind)
  describe("ssh against " .. kind, function()
    -- srv: a plain user (/bin/sh); rsrv: a router CLI (dropbear takes
    -- no login shell outside /etc/shells: there it is a forced command)
    local dir, keys, user, ruser, srv, rsrv
    setup(function()
      dir = H.tmpdir()
      keys = S.keys(dir)
      user = S.user {keys = keys.authorized}
      ruser = S.user {keys = keys.authorized, router = true,
        shell = kind == "sshd" and "router" or nil}
      srv = S[kind] {user = user}
      rsrv = S[kind] {user = ruser, force_command = kind == "dropbear" and ruser.router or nil}
    end)
    teardown(function()
      if srv then srv.stop() end
      if rsrv then rsrv.stop() end
      if user then user.remove() end
      if ruser then ruser.remove() end
      H.rm_rf(dir)
    end)

    local function opts(extra, server, who)
      server, who = server or srv, who or user
      local o = {user = who.name, key = keys.ed25519, known_hosts = server.known_hosts, timeout = 10}
      for k, v in pairs(extra or {}) do o[k] = v end
      return o
    end

    local function open(extra)
      return ssh.open(srv.host, srv.port, opts(extra))
    end

    local function open_router(extra)
      return ssh.open(rsrv.host, rsrv.port, opts(extra, rsrv, ruser))
    end

    it("logs in with an ed25519 key and runs a command", function()
      local c = assert(open())
      local out, err, status = c:exec("echo hi")
      assert.equal("hi\n", out)
      assert.equal("", err)
      assert.equal(0, status)
      assert.truthy(c:banner():find("^SSH%-2%.0%-"))
      c:close()
    end)

    it("logs in with a 3072-bit RSA key (rsa-sha2 signatures)", function()
      local c = assert(open {key = keys.rsa})
      assert.equal("rsa\n", (c:exec("echo rsa")))
      c:close()
    end)

    it("takes a key with a passphrase, and says 'key' for a wrong one", function()
      local c = assert(open {key = keys.ed25519_pass, passphrase = keys.passphrase})
      assert.equal("p\n", (c:exec("echo p")))
      c:close()
      local no, msg, code = open {key = keys.ed25519_pass, passphrase = "wrong"}
      assert.is_nil(no)
      assert.equal("key", code)
      assert.truthy(msg:find(keys.ed25519_pass, 1, true))
    end)

    it("logs in with a password", function()
      local c = assert(open {key = false, password = user.password})
      assert.equal(user.name .. "\n", (c:exec("id -un")))
      c:close()
    end)

    it("fails with 'denied' for a wrong password or an unknown key, quickly", function()
      local t0 = netlua.monotime()
      local no, msg, code = open {key = false, password = "not it"}
      assert.is_nil(no)
      assert.equal("denied", code)
      assert.truthy(msg:find("password", 1, true))
      no, msg, code = open {key = keys.stranger}
      assert.is_nil(no)
      assert.equal("denied", code)
      assert.truthy(msg:find("publickey", 1, true))
      -- both within the 10 s timeout, and far from it
      assert.is_true(netlua.monotime() - t0 < 8)
    end)

    it("gives stdout, stderr and the exit status apart", function()
      local c = assert(open())
      local out, err, status = c:exec("echo out; echo err >&2; exit 3")
      assert.equal("out\n", out)
      assert.equal("err\n", err)
      assert.equal(3, status)
      c:close()
    end)

    it("says 'denied' when the server refuses a request, and the connection goes on", function()
      local c = assert(open())
      if kind == "sshd" then  -- its AcceptEnv takes NETLUA_*
        assert.equal("1\n", (c:exec("echo $NETLUA_X", {env = {NETLUA_X = "1"}})))
      end
      local no, msg, code = c:exec("echo $REFUSED_X", {env = {REFUSED_X = "1"}})
      assert.is_nil(no)
      assert.equal("denied", code, msg)
      assert.truthy(msg:find("REFUSED_X", 1, true))
      assert.equal("still\n", (c:exec("echo still")))
      c:close()
    end)

    it("says which signal ended a command, with no exit status", function()
      local c = assert(open())
      local out, err, status, signal = c:exec("echo before; kill -KILL $$")
      assert.equal("before\n", out)
      assert.is_nil(status)
      assert.equal("KILL", signal)
      c:close()
    end)

    it("sends stdin, larger than every window on the way, and gets it back", function()
      local c = assert(open())
      local data = {}
      for i = 1, 40000 do data[i] = ("%07d line of input\n"):format(i) end
      data = table.concat(data)  -- 1 MB
      local out, err, status = c:exec("cat", {stdin = data})
      assert.equal(0, status)
      assert.equal("", err)
      assert.equal(#data, #out)
      assert.is_true(out == data)
      c:close()
    end)

    it("streams output through callbacks in chunks", function()
      local c = assert(open())
      local n, chunks = 0, 0
      local out, err, status = c:exec("head -c 10000000 /dev/zero", {
        stdout = function(chunk) n = n + #chunk chunks = chunks + 1 end})
      assert.equal("", out)
      assert.equal(0, status)
      assert.equal(10000000, n)
      assert.is_true(chunks > 1)
      c:close()
    end)

    it("runs many commands on one connection, one after another and at once", function()
      local c = assert(open())
      for i = 1, 10 do assert.equal(i .. "\n", (c:exec("echo " .. i))) end
      local got = {}
      netlua.run(function()
        for i = 1, 8 do
          netlua.spawn(function()
            got[i] = c:exec("sleep 0.2; echo " .. i)
          end)
        end
      end)
      for i = 1, 8 do assert.equal(i .. "\n", got[i]) end
      c:close()
    end)

    it("times out a command, keeps what it printed, and the connection stays usable", function()
      local c = assert(open())
      local t0 = netlua.monotime()
      local no, msg, code, partial = c:exec("echo started; sleep 30", {timeout = 1})
      local took = netlua.monotime() - t0
      assert.is_nil(no)
      assert.equal("timeout", code)
      assert.truthy(msg:find("timed out", 1, true))
      assert.equal("started\n", partial)
      assert.is_true(took >= 0.9 and took < 5, "took " .. took)
      assert.equal("again\n", (c:exec("echo again")))
      c:close()
    end)

    it("ends a channel that never closes at the deadline", function()
      local c = assert(open())
      -- the command ends its output (EOF) but never exits
      local t0 = netlua.monotime()
      local no, _, code, partial = c:exec("echo eof; exec >&- 2>&-; sleep 20", {timeout = 1})
      assert.is_nil(no)
      assert.equal("timeout", code)
      assert.equal("eof\n", partial)
      assert.is_true(netlua.monotime() - t0 < 3)
      if kind == "sshd" then
        -- sshd waits for the output of a child the command left behind
        no, _, code, partial = c:exec("sleep 20 & echo bg", {timeout = 1})
        assert.is_nil(no)
        assert.equal("timeout", code)
        assert.equal("bg\n", partial)
      end
      assert.equal("ok\n", (c:exec("echo ok")))
      c:close()
    end)

    it("opens a shell with the Telnet session's helpers", function()
      local c = assert(open_router())
      local sh = assert(c:shell())
      assert.equal("R1#", sh:find_prompt())
      local v = assert(sh:cmd("show version"))
      assert.truthy(v:find("Version", 1, true))
      assert.falsy(v:find("show version", 1, true))  -- no echo
      assert.falsy(v:find("R1#", 1, true))           -- no prompt
      -- 57 lines behind a pager every 24: all of them, no pager text
      local cfg = assert(sh:cmd("show running-config"))
      local lines = 0
      for _ in cfg:gmatch("\n") do lines = lines + 1 end
      assert.is_true(lines >= 57, "lines: " .. lines)
      assert.falsy(cfg:find("More", 1, true))
      assert.equal("hello\n", sh:cmd("echo hello"))
      assert.is_true(sh:set_window(132, 50))
      sh:close()
      -- the connection outlives its shell
      assert.equal("x\n", (c:exec("echo x")))  -- the router's echo
      c:close()
    end)

    it("runs the read methods on a shell", function()
      local c = assert(open())
      local sh = assert(c:shell())
      assert(sh:write("echo marker-$((6*7))\n"))
      assert.truthy(assert(sh:read_until("marker-42", 5)):find("marker%-42$"))
      local i, text = sh:expect({"never", "%$ $"}, 5)  -- /bin/sh's prompt
      assert.equal(2, i)
      assert.truthy(text:find("%$ $"))
      local none, msg, code = sh:read_until("never printed", 0.3)
      assert.is_nil(none)
      assert.equal("timeout", code)
      assert.truthy(msg)
      sh:close()
      c:close()
    end)

    it("closes: calls on a closed connection raise, descriptors come back", function()
      local before = H.fd_count()
      local c = assert(open())
      local sh = assert(c:shell())
      assert(c:exec("true"))
      c:close()
      assert.has_error(function() c:exec("true") end, "attempt to use a closed ssh connection")
      local no, _, code = sh:read_some(1)
      assert.is_nil(no)
      assert.equal("closed", code)
      sh:close()
      assert.equal(before, H.fd_count())
      assert.truthy(tostring(c):find("closed", 1, true))
    end)

    describe("host keys", function()
      it("fails on an unknown host key, naming its fingerprint", function()
        local kh = dir .. "/kh_empty_" .. kind
        H.write_file(kh, "")
        local no, msg, code = open {known_hosts = kh}
        assert.is_nil(no)
        assert.equal("hostkey", code)
        assert.truthy(msg:find("unknown host key", 1, true))
        local found = false
        for _, fp in pairs(srv.fingerprints) do
          if msg:find(fp, 1, true) then found = true end
        end
        assert.is_true(found, msg)
      end)

      it("adds an unknown key with accept_new, then knows it", function()
        local kh = dir .. "/kh_new_" .. kind
        os.remove(kh)
        local c = assert(open {known_hosts = kh, accept_new = true})
        c:close()
        local text = assert(H.read_file(kh))
        assert.truthy(text:find(("[%s]:%d"):format(srv.host, srv.port), 1, true))
        c = assert(open {known_hosts = kh})
        c:close()
      end)

      it("refuses a changed host key, even with accept_new", function()
        for _, extra in ipairs {{}, {accept_new = true}} do
          extra.known_hosts = srv.known_hosts_wrong
          local no, msg, code = open(extra)
          assert.is_nil(no)
          assert.equal("hostkey", code)
          assert.truthy(msg:find("CHANGED", 1, true))
        end
        -- and nothing was written to the file
        assert.equal(1, select(2, assert(H.read_file(srv.known_hosts_wrong)):gsub("\n", "")))
      end)

      it("takes a fingerprint instead of a file", function()
        local fps = {}
        for _, fp in pairs(srv.fingerprints) do fps[#fps + 1] = fp end
        local c = assert(open {known_hosts = false, host_key = fps})
        c:close()
        local no, msg, code = open {known_hosts = false, host_key = srv.foreign_fingerprint}
        assert.is_nil(no)
        assert.equal("hostkey", code)
        assert.truthy(msg:find("mismatch", 1, true))
      end)
    end)
  end)
end)

describe("ssh arguments", function()
  it("raises on wrong types", function()
    assert.has_error(function() ssh.open(1) end)
    assert.has_error(function() ssh.open("127.0.0.1", 22, 5) end)
    assert.has_error(function() ssh.open("127.0.0.1", 0) end)
    assert.has_error(function() ssh.open("127.0.0.1", 22, {user = 1}) end)
    assert.has_error(function() ssh.open("127.0.0.1", 22, {timeout = 0 / 0}) end)
    assert.has_error(function() ssh.open("127.0.0.1", 22, {key = 5}) end)
  end)

  it("fails with 'refused' where nothing listens", function()
    local no, _, code = ssh.open("127.0.0.1", H.free_port(), {user = "x", timeout = 2})
    assert.is_nil(no)
    assert.equal("refused", code)
  end)
end)
