-- The SSH peers of spec/ssh_helper.lua, checked with the OpenSSH client
-- alone (no netlua code talks SSH here): if one of these fails, the
-- netlua.ssh specs and the bench that use the peers cannot be trusted.
-- sshd and dropbear with throwaway users and fresh keys, the router CLI
-- as a login shell and as a forced command, the stalling peer, and the
-- cleanup of users.
local H = require "helper"
local S = require "ssh_helper"

-- out must contain text (plain, not a pattern)
local function has(out, text)
  assert(out:find(text, 1, true), ("expected %q in:\n%s"):format(text, out))
end
local function lacks(out, text)
  assert(not out:find(text, 1, true), ("did not expect %q in:\n%s"):format(text, out))
end
local function count(out, text)
  local n, i = 0, 1
  while true do
    local a, b = out:find(text, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

-- the algorithm that makes ssh use (and verify) one host key type
local HOSTKEY_ALGS = {
  ed25519 = "ssh-ed25519",
  ecdsa = "ecdsa-sha2-nistp256",
  rsa = "rsa-sha2-512,rsa-sha2-256",
}

local function user_exists(name)
  local out = S.sh("getent passwd " .. name)
  return out:find(name .. ":", 1, true) ~= nil
end

describe("ssh peers", function()
  local kdir, keys

  setup(function()
    S.cleanup()
    kdir = H.tmpdir()
    keys = S.keys(kdir)
  end)

  teardown(function()
    S.cleanup()
    if kdir then H.rm_rf(kdir) end
  end)

  it("S.keys makes rsa 3072, ed25519 and a passphrase ed25519 key", function()
    local out = S.sh("ssh-keygen -l -f " .. H.shquote(keys.rsa_pub))
    has(out, "3072 SHA256:")
    has(out, "(RSA)")
    has(S.sh("ssh-keygen -l -f " .. H.shquote(keys.ed25519_pub)), "(ED25519)")
    has(S.sh("ssh-keygen -l -f " .. H.shquote(keys.ed25519_pass_pub)), "(ED25519)")
    for _, k in ipairs {"rsa", "ed25519", "ed25519_pass"} do
      has(H.read_file(keys[k]), "-----BEGIN OPENSSH PRIVATE KEY-----")
    end
    -- the passphrase opens the key, and nothing else does
    local pub = H.read_file(keys.ed25519_pass_pub):match("^(%S+ %S+)")
    local opened, ok = S.sh(("ssh-keygen -y -P %s -f %s"):format(
      H.shquote("pass phrase"), H.shquote(keys.ed25519_pass)))
    assert.is_true(ok, opened)
    assert.equal(pub, opened:match("^(%S+ %S+)"))
    local _, bad = S.sh("ssh-keygen -y -P '' -f " .. H.shquote(keys.ed25519_pass))
    assert.is_nil(bad)
    local _, plain = S.sh("ssh-keygen -y -P '' -f " .. H.shquote(keys.ed25519))
    assert.is_true(plain)
    assert.equal("pass phrase", keys.passphrase)
    assert.same({keys.rsa_pub, keys.ed25519_pub, keys.ed25519_pass_pub}, keys.authorized)
  end)

  for _, kind in ipairs {"sshd", "dropbear"} do
    describe(kind, function()
      local u, srv

      setup(function()
        u = S.user{keys = keys.authorized}
        srv = S[kind]{user = u, ipv6 = true}
      end)

      teardown(function()
        if srv then srv.stop() end
        if u then u.remove() end
      end)

      it("runs echo hi after a key login, rsa and ed25519, on 127.0.0.1 and ::1", function()
        assert.same({"127.0.0.1", "::1"}, srv.hosts)
        for _, k in ipairs {"rsa", "ed25519"} do
          for _, host in ipairs(srv.hosts) do
            local out, ok = S.ssh_cli(srv, u, keys[k], "echo hi", {host = host})
            assert.is_true(ok, k .. " " .. host .. ": " .. out)
            assert.equal("hi\n", out)
          end
        end
      end)

      it("lets the passphrase key in given its passphrase", function()
        local out, ok = S.ssh_cli(srv, u, keys.ed25519_pass, "echo pass", {passphrase = keys.passphrase})
        assert.is_true(ok, out)
        assert.equal("pass\n", out)
        -- BatchMode cannot ask for it: the key is useless without it
        out, ok = S.ssh_cli(srv, u, keys.ed25519_pass, "echo pass")
        assert.is_nil(ok, out)
      end)

      it("takes the password and refuses a wrong one", function()
        local out, ok = S.ssh_cli(srv, u, nil, "echo pw", {password = u.password})
        assert.is_true(ok, out)
        assert.equal("pw\n", out)
        out, ok = S.ssh_cli(srv, u, nil, "echo pw", {password = u.password .. "x"})
        assert.is_nil(ok, out)
        has(out, "Permission denied")
      end)

      it("refuses a key it was not given", function()
        local out, ok = S.ssh_cli(srv, u, keys.stranger, "echo hi")
        assert.is_nil(ok, out)
        has(out, "Permission denied")
        lacks(out, "hi\n")
        -- and takes it once it is authorized
        u.authorize(keys.stranger_pub)
        out, ok = S.ssh_cli(srv, u, keys.stranger, "echo hi")
        assert.is_true(ok, out)
        assert.equal("hi\n", out)
      end)

      it("known_hosts verifies every host key type with StrictHostKeyChecking=yes", function()
        for t, algs in pairs(HOSTKEY_ALGS) do
          local out, ok = S.ssh_cli(srv, u, keys.ed25519, "echo " .. t,
            {options = {"HostKeyAlgorithms=" .. algs}})
          assert.is_true(ok, t .. ": " .. out)
          assert.equal(t .. "\n", out)
        end
      end)

      it("an unknown or a changed host key is refused", function()
        local empty = kdir .. "/empty_known_hosts"
        H.write_file(empty, "")
        local out, ok = S.ssh_cli(srv, u, keys.ed25519, "echo hi", {known_hosts = empty})
        assert.is_nil(ok, out)
        has(out, "Host key verification failed")
        out, ok = S.ssh_cli(srv, u, keys.ed25519, "echo hi",
          {known_hosts = srv.known_hosts_wrong, options = {"HostKeyAlgorithms=ssh-ed25519"}})
        assert.is_nil(ok, out)
        has(out, "REMOTE HOST IDENTIFICATION HAS CHANGED")
        has(out, srv.fingerprints.ed25519)  -- ssh names the key it was shown
        lacks(out, srv.foreign_fingerprint)
      end)

      it("gives the fingerprints the client is shown", function()
        for t, algs in pairs(HOSTKEY_ALGS) do
          assert.matches("^SHA256:[%w+/]+$", srv.fingerprints[t])
          local out, ok = S.ssh_cli(srv, u, keys.ed25519, "true",
            {loglevel = "DEBUG1", options = {"HostKeyAlgorithms=" .. algs}})
          assert.is_true(ok, out)
          local shown = out:match("Server host key: %S+ (SHA256:%S+)")
          assert.equal(srv.fingerprints[t], shown)
          -- and pubkeys holds that key
          assert.equal(H.read_file(srv.pubfiles[t]):match("^(%S+ %S+)"), srv.pubkeys[t])
        end
      end)

      if kind == "sshd" then
        it("offers keyboard-interactive but cannot ask without PAM", function()
          local out, ok = S.ssh_cli(srv, u, nil, "echo kbd",
            {password = u.password, method = "keyboard-interactive"})
          assert.is_nil(ok, out)
          has(out, "Permission denied (publickey,password,keyboard-interactive)")
        end)
      else
        it("offers no keyboard-interactive", function()
          local out, ok = S.ssh_cli(srv, u, nil, "echo kbd",
            {password = u.password, method = "keyboard-interactive"})
          assert.is_nil(ok, out)
          has(out, "Permission denied (publickey,password)")
        end)
      end

      it("logs the logins", function()
        local log = srv.log_text()
        if kind == "sshd" then
          has(log, "Accepted publickey for " .. u.name)
          has(log, "Accepted password for " .. u.name)
        else
          has(log, "Pubkey auth succeeded for '" .. u.name .. "'")
          has(log, "Password auth succeeded for '" .. u.name .. "'")
        end
      end)
    end)
  end

  describe("sshd with PAM", function()
    local u, srv

    setup(function()
      u = S.user{keys = keys.authorized}
      srv = S.sshd{user = u, pam = true}
    end)

    teardown(function()
      if srv then srv.stop() end
      if u then u.remove() end
    end)

    it("asks the password by keyboard-interactive", function()
      local out, ok = S.ssh_cli(srv, u, nil, "echo kbd",
        {password = u.password, method = "keyboard-interactive"})
      assert.is_true(ok, out)
      has(out, "kbd\n")
      has(srv.log_text(), "Accepted keyboard-interactive/pam for " .. u.name)
      out, ok = S.ssh_cli(srv, u, nil, "echo kbd",
        {password = "wrong", method = "keyboard-interactive"})
      assert.is_nil(ok, out)
    end)
  end)

  describe("the router CLI", function()
    local u, sshd, du, db

    setup(function()
      -- sshd: the router is the user's login shell
      u = S.user{keys = keys.authorized, shell = "router"}
      sshd = S.sshd{user = u}
      -- dropbear: a /bin/sh user, the router as the forced command
      du = S.user{keys = keys.authorized, router = "R2"}
      db = S.dropbear{user = du, force_command = du.router}
    end)

    teardown(function()
      if sshd then sshd.stop() end
      if db then db.stop() end
      if u then u.remove() end
      if du then du.remove() end
    end)

    local function session(srv, user, input)
      return S.ssh_cli(srv, user, keys.ed25519, nil, {tty = true, stdin = input})
    end

    it("is the login shell under sshd: prompt, show version", function()
      assert.equal(u.router, u.shell)
      local out, ok = session(sshd, u, "show version\nexit\n")
      assert.is_true(ok, out)
      has(out, "\r\nR1#")
      has(out, "Cisco IOS Software, Version 15.2(4)M7\r\n")  -- the pty makes CR LF
      has(out, "R1 uptime is 5 days, 3 hours")
      has(out, "show version")  -- the pty echoed it
    end)

    it("pages show running-config every 24 lines; q stops; terminal length 0 ends it", function()
      local out, ok = session(sshd, u, "show running-config\n  \nexit\n")
      assert.is_true(ok, out)
      assert.equal(2, count(out, " --More-- "))
      has(out, "interface GigabitEthernet0/13\r\n")
      has(out, "\r\nend\r\n")
      out, ok = session(sshd, u, "show running-config\nq\nexit\n")
      assert.is_true(ok, out)
      assert.equal(1, count(out, " --More-- "))
      has(out, "interface GigabitEthernet0/5\r\n")
      lacks(out, "interface GigabitEthernet0/6")
      out, ok = session(sshd, u, "terminal length 0\nshow running-config\nexit\n")
      assert.is_true(ok, out)
      assert.equal(0, count(out, "--More--"))
      has(out, "interface GigabitEthernet0/13\r\n")
      has(out, "\r\nend\r\n")
    end)

    it("knows echo, modes and the invalid-input error", function()
      local out, ok = session(sshd, u,
        "echo hello there\nconfigure terminal\ninterface Gi0/1\nend\ndisable\nfoo bar\nexit\n")
      assert.is_true(ok, out)
      has(out, "hello there\r\n")
      has(out, "R1(config)#")
      has(out, "R1(config-if)#")
      has(out, "R1>")
      has(out, "   ^\r\n% Invalid input detected at '^' marker.")
    end)

    it("runs one command on an exec channel, without prompt", function()
      local out, ok = S.ssh_cli(sshd, u, keys.ed25519, "show version")
      assert.is_true(ok, out)
      assert.equal("Cisco IOS Software, Version 15.2(4)M7\nR1 uptime is 5 days, 3 hours\n"
        .. "Processor board ID FTX1234A5BC\n", out)
    end)

    it("is dropbear's forced command: prompt, show version, exec channel", function()
      local out, ok = session(db, du, "show version\nexit\n")
      assert.is_true(ok, out)
      has(out, "\r\nR2#")
      has(out, "R2 uptime is 5 days, 3 hours")
      out, ok = S.ssh_cli(db, du, keys.ed25519, "echo via exec")
      assert.is_true(ok, out)
      assert.equal("via exec\n", out)
    end)

    it("cannot be a login shell under dropbear (/etc/shells)", function()
      local out, ok = S.ssh_cli(db, u, keys.ed25519, "show version")
      assert.is_nil(ok, out)
      has(out, "Permission denied")
      has(db.log_text(), "User '" .. u.name .. "' has invalid shell, rejected")
    end)
  end)

  describe("the stalling peer", function()
    local function try(srv)
      return H.timed(S.ssh_cli, srv, "nobody", nil, "true",
        {known_hosts = "/dev/null", timeout = 3, loglevel = "INFO"})
    end

    it("stall: a version line, then silence until the client gives up", function()
      local srv = S.stall_server("stall")
      finally(srv.stop)
      local netlua = require "netlua"
      local c = assert(netlua.tcp.connect(srv.host, srv.port, {timeout = 5}))
      c:settimeout(5)
      assert.equal("SSH-2.0-stall\r\n", c:read("L"))
      c:write("SSH-2.0-client\r\n" .. ("\0"):rep(200))
      c:settimeout(1)
      local data, _, code = c:recv()
      assert.is_nil(data)
      assert.equal("timeout", code)
      c:close()
      local t, out, ok = try(srv)
      assert.is_nil(ok, out)
      assert.is_true(t >= 2.8, "ssh gave up after " .. t .. " s: " .. out)
      lacks(out, "Connection closed")
    end)

    it("garbage: no version line, ssh fails at once", function()
      local srv = S.stall_server("garbage")
      finally(srv.stop)
      local netlua = require "netlua"
      local c = assert(netlua.tcp.connect(srv.host, srv.port, {timeout = 5}))
      c:settimeout(5)
      for _ = 1, 1024 do
        local line = assert(c:read("L"))
        assert.is_nil(line:find("SSH-", 1, true), line)
      end
      c:settimeout(0.5)
      local data, _, code = c:recv()
      assert.is_nil(data)
      assert.equal("timeout", code)
      c:close()
      local t, out, ok = try(srv)
      assert.is_nil(ok, out)
      assert.is_true(t < 2.5, "took " .. t .. " s")
      has(out, "kex_exchange_identification")
    end)

    it("close: the version line, then EOF", function()
      local srv = S.stall_server("close")
      finally(srv.stop)
      local netlua = require "netlua"
      local c = assert(netlua.tcp.connect(srv.host, srv.port, {timeout = 5}))
      c:settimeout(5)
      assert.equal("SSH-2.0-stall\r\n", c:read("L"))
      local data, _, code = c:recv()
      assert.is_nil(data)
      assert.equal("closed", code)
      c:close()
      local t, out, ok = try(srv)
      assert.is_nil(ok, out)
      assert.is_true(t < 2.5, "took " .. t .. " s")
      -- ssh meets the closed connection reading (EOF) or writing its
      -- KEXINIT (EPIPE, a reset): which one comes first is a race
      assert(out:find("Connection closed by", 1, true) or out:find("Broken pipe", 1, true)
        or out:find("reset by", 1, true), out)
    end)
  end)

  describe("cleanup", function()
    it("remove() ends the user's sessions and leaves no user, home or process", function()
      local u = S.user{keys = keys.authorized}
      local srv = S.sshd{user = u}
      finally(function() srv.stop() u.remove() end)
      -- a session that would last ten minutes
      local client = H.spawn(S.ssh_command(srv, u, keys.ed25519) .. " 'sleep 600'")
      local deadline = os.time() + 10
      while #S.user_pids(u.uid) == 0 and os.time() < deadline do
        require("netlua").sleep(0.05)
      end
      assert.is_true(#S.user_pids(u.uid) > 0, "the session never started")
      assert.is_true(user_exists(u.name))
      u.remove()
      assert.is_false(user_exists(u.name))
      assert.is_false(H.exists(u.home .. "/.ssh/authorized_keys"))
      assert.same({}, S.user_pids(u.uid))
      -- the server side went away, so the client did too
      deadline = os.time() + 5
      while H.alive(client) and os.time() < deadline do require("netlua").sleep(0.05) end
      local alive = H.alive(client)
      H.kill(client)
      assert.is_false(alive)
      local pid = srv.pid
      srv.stop()
      assert.is_false(H.alive(pid))
      assert.is_false(H.exists(srv.dir))
    end)

    it("S.cleanup removes what a dead run left, not what a live one uses", function()
      local dead = S.user{creator = 99999999}
      local live = S.user{creator = 1}  -- PID 1 is always alive
      finally(function() dead.remove() live.remove() end)
      local removed = S.cleanup()
      assert.is_false(user_exists(dead.name))
      assert.is_false(H.exists(dead.dir))
      assert.is_true(user_exists(live.name))
      local names = table.concat(removed, " ")
      has(names, dead.name)
      lacks(names, live.name)
    end)
  end)
end)
