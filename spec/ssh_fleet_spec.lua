-- 200 SSH sessions at once under netlua.run: login, a shell, a command
-- on a router CLI, each checked; descriptors back to their start after.
local H = require "helper"
local S = require "ssh_helper"
local netlua = require "netlua"
local ssh = require "netlua.ssh"


describe("ssh fleet", function()
  local dir, keys, user, srv
  setup(function()
    dir = H.tmpdir()
    keys = S.keys(dir)
    user = S.user {keys = keys.authorized, shell = "router"}
    srv = S.sshd {user = user}
  end)
  teardown(function()
    if srv then srv.stop() end
    if user then user.remove() end
    H.rm_rf(dir)
  end)

  it("runs 200 sessions (login + cmd) concurrently", function()
    -- valgrind runs 200 handshakes' crypto too slowly: fewer there
    local N = H.slack > 1 and 40 or 200
    -- what lives on after a first run: the scheduler's poller, and what
    -- the crypto library opens at its first use
    assert(netlua.run(function()
      assert(ssh.open(srv.host, srv.port, {user = user.name, key = keys.ed25519,
        known_hosts = srv.known_hosts, timeout = 60})):close()
    end))
    local before = H.fds()
    local ok, failed = 0, {}
    netlua.run(function()
      for i = 1, N do
        netlua.spawn(function()
          local c, msg = ssh.open(srv.host, srv.port, {user = user.name, key = keys.ed25519,
            known_hosts = srv.known_hosts, timeout = 120})
          if not c then failed[#failed + 1] = msg return end
          local sh, m2 = c:shell()
          if not sh then failed[#failed + 1] = m2 c:close() return end
          local out, m3 = sh:cmd("echo fleet-" .. i)
          if out == "fleet-" .. i .. "\n" then ok = ok + 1
          else failed[#failed + 1] = tostring(out or m3) end
          c:close()
        end)
      end
    end)
    assert.same({}, failed)
    assert.equal(N, ok)
    -- no descriptor the run opened is left
    H.no_new_fds(before)
  end)
end)
