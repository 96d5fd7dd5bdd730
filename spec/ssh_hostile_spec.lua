-- netlua.ssh against peers that break the rules or die: each failure
-- within its deadline, as nil, msg, code.
local H = require "helper"
local S = require "ssh_helper"
local netlua = require "netlua"
local ssh = require "netlua.ssh"

describe("ssh hostile peers", function()
  for _, case in ipairs {
    {mode = "stall", code = "timeout"},  -- the key exchange never starts
    {mode = "garbage"},                  -- no version line at all
    {mode = "close", code = "closed"},   -- EOF where KEXINIT should be
  } do
    it("a server that " .. case.mode .. "s in the handshake fails within the timeout", function()
      local srv = S.stall_server(case.mode)
      finally(srv.stop)
      local before = H.fd_count()
      local t0 = netlua.monotime()
      local no, msg, code = ssh.open(srv.host, srv.port, {user = "x", insecure = true, timeout = 1})
      local took = netlua.monotime() - t0
      assert.is_nil(no)
      assert.is_string(msg)
      if case.code then
        assert.equal(case.code, code, msg)
      else
        -- garbage is a protocol error, or (when the peer then goes
        -- silent) a timeout: never success
        assert.truthy(code == "protocol" or code == "timeout", code)
      end
      assert.is_true(took < 2, "took " .. took)
      assert.equal(before, H.fd_count())
    end)
  end

  it("the handshake stalls inside a task without stopping the others", function()
    local srv = S.stall_server("stall")
    finally(srv.stop)
    local ticks, res = 0, nil
    netlua.run(function()
      local done = false
      netlua.spawn(function()
        while not done do ticks = ticks + 1 netlua.sleep(0.05) end
      end)
      res = {ssh.open(srv.host, srv.port, {user = "x", insecure = true, timeout = 1})}
      done = true
    end)
    assert.is_nil(res[1])
    assert.equal("timeout", res[3])
    assert.is_true(ticks >= 10, "ticks " .. ticks)
  end)

  describe("against sshd", function()
    local dir, keys, user, srv
    setup(function()
      dir = H.tmpdir()
      keys = S.keys(dir)
      user = S.user {keys = keys.authorized}
      srv = S.sshd {user = user}
    end)
    teardown(function()
      if srv then srv.stop() end
      if user then user.remove() end
      H.rm_rf(dir)
    end)
    local function open()
      return assert(ssh.open(srv.host, srv.port, {user = user.name, key = keys.ed25519,
        known_hosts = srv.known_hosts, timeout = 10}))
    end

    it("a server dying mid-exec is 'closed' at once, with the output so far", function()
      local c = open()
      local t0 = netlua.monotime()
      local res
      netlua.run(function()
        netlua.spawn(function()
          res = {c:exec("echo first; sleep 30", {timeout = 20})}
        end)
        netlua.sleep(0.5)
        -- this connection's own sshd process runs as the user, with the
        -- command: the listener lives on, the connection's server dies
        for _, pid in ipairs(S.user_pids(user.name)) do H.sh("kill -KILL " .. pid) end
      end)
      local took = netlua.monotime() - t0
      assert.is_nil(res[1])
      assert.equal("closed", res[3], res[2])
      assert.equal("first\n", res[4])
      assert.is_true(took < 5, "took " .. took)
      c:close()
    end)

    it("takes 100 MB of output, counted and collected", function()
      local c = open()
      local n = 0
      local out, err, status = c:exec("head -c 100000000 /dev/zero",
        {stdout = function(chunk) n = n + #chunk end, timeout = 60})
      assert.equal(0, status)
      assert.equal(100000000, n)
      assert.equal("", out)
      assert.equal("", err)
      out = c:exec("head -c 30000000 /dev/urandom | od -An -tx1 | head -c 50000000", {timeout = 60})
      assert.equal(50000000, #out)
      c:close()
    end)
  end)
end)
