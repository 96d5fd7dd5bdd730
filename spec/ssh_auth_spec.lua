-- netlua.ssh: the other ways in (ssh-agent, keyboard-interactive through
-- PAM, two methods in a row), IPv6, and keepalives on the wire.
local H = require "helper"
local S = require "ssh_helper"
local netlua = require "netlua"
local ssh = require "netlua.ssh"

describe("ssh logins and transport", function()
  local dir, keys, user
  setup(function()
    dir = H.tmpdir()
    keys = S.keys(dir)
    user = S.user {keys = keys.authorized}
  end)
  teardown(function()
    if user then user.remove() end
    H.rm_rf(dir)
  end)

  local function with_sshd(opts, fn)
    opts.user = user
    local srv = S.sshd(opts)
    local ok, err = pcall(fn, srv)
    srv.stop()
    if not ok then error(err, 0) end
  end

  it("logs in with a key held by ssh-agent, never reading the key file", function()
    with_sshd({}, function(srv)
      local sock = dir .. "/agent.sock"
      local pid = H.spawn("ssh-agent -D -a " .. H.shquote(sock))
      finally(function() H.kill(pid) end)
      local t = netlua.monotime() + 5
      while not H.exists(sock) and netlua.monotime() < t do netlua.sleep(0.02) end
      local out, ok = H.sh(("SSH_AUTH_SOCK=%s ssh-add %s 2>&1"):format(H.shquote(sock), H.shquote(keys.rsa)))
      assert(ok, out)
      local c = assert(ssh.open(srv.host, srv.port, {user = user.name, agent = sock,
        known_hosts = srv.known_hosts, timeout = 10}))
      assert.equal("agent\n", (c:exec("echo agent")))
      c:close()
      -- an empty agent: denied
      H.sh(("SSH_AUTH_SOCK=%s ssh-add -D 2>&1"):format(H.shquote(sock)))
      local no, msg, code = ssh.open(srv.host, srv.port, {user = user.name, agent = sock,
        known_hosts = srv.known_hosts, timeout = 10})
      assert.is_nil(no)
      assert.equal("denied", code, msg)
      assert.truthy(msg:find("agent", 1, true))
    end)
  end)

  it("answers keyboard-interactive prompts (PAM), with the password or a function", function()
    with_sshd({pam = true, extra = {"PasswordAuthentication no"}}, function(srv)
      local c = assert(ssh.open(srv.host, srv.port, {user = user.name, password = user.password,
        known_hosts = srv.known_hosts, timeout = 10}))
      assert.equal(user.name .. "\n", (c:exec("id -un")))
      c:close()
      local asked = {}
      c = assert(ssh.open(srv.host, srv.port, {user = user.name, known_hosts = srv.known_hosts,
        timeout = 10, kbdint = function(_, _, prompts)
          for _, p in ipairs(prompts) do asked[#asked + 1] = p.prompt end
          return {user.password}
        end}))
      c:close()
      assert.truthy(asked[1]:lower():find("password"), asked[1])
      local no, msg, code = ssh.open(srv.host, srv.port, {user = user.name, password = "wrong",
        known_hosts = srv.known_hosts, timeout = 15})
      assert.is_nil(no)
      assert.equal("denied", code, msg)
      assert.truthy(msg:find("keyboard-interactive", 1, true))
    end)
  end)

  it("logs in with two methods when the server asks for both", function()
    with_sshd({extra = {"AuthenticationMethods publickey,password"}}, function(srv)
      local no, _, code = ssh.open(srv.host, srv.port, {user = user.name, key = keys.ed25519,
        known_hosts = srv.known_hosts, timeout = 10})
      assert.is_nil(no)
      assert.equal("denied", code)
      local c = assert(ssh.open(srv.host, srv.port, {user = user.name, key = keys.ed25519,
        password = user.password, known_hosts = srv.known_hosts, timeout = 10}))
      assert.equal("both\n", (c:exec("echo both")))
      c:close()
    end)
  end)

  it("connects over IPv6", function()
    with_sshd({ipv6 = true}, function(srv)
      local c = assert(ssh.open("::1", srv.port, {user = user.name, key = keys.ed25519,
        known_hosts = srv.known_hosts, timeout = 10}))
      assert.truthy(c:exec("echo $SSH_CONNECTION"):find("::1", 1, true))
      c:close()
    end)
  end)

  it("sends keepalives while a call waits", function()
    with_sshd({}, function(srv)
      local function packets_during_sleep(ka)
        local c = assert(ssh.open(srv.host, srv.port, {user = user.name, key = keys.ed25519,
          known_hosts = srv.known_hosts, timeout = 10, keepalive = ka}))
        local before = c:stats().packets_out
        assert(c:exec("sleep 1.5"))
        local n = c:stats().packets_out - before
        c:close()
        return n
      end
      local plain, kept = packets_during_sleep(nil), packets_during_sleep(0.25)
      -- about six keepalives in 1.5 s
      assert.is_true(kept - plain >= 4, ("%d packets with keepalives, %d without"):format(kept, plain))
    end)
  end)
end)
