-- netlua.sftp when the server stops answering in the middle of a
-- transfer: OpenSSH's sshd runs OpenSSH's sftp-server as the sftp
-- subsystem (spec/ssh_helper.lua), and a spec stops that process with
-- SIGSTOP (by its PID, found below the sshd this spec started) once the
-- first block has moved.  The SSH connection itself stays alive, so only
-- the session's own timeout can end the call.  What doc/sftp.md promises
-- is checked: `nil, msg, "timeout"` within the timeout, the session
-- usable afterwards (the next call answers, and answers right), a get's
-- data never under the target name (and its .part only with resume), a
-- put's target holding only what the server got.  Every stopped process
-- is continued in a finally.
local H = require "helper"
local S = require "ssh_helper"
local netlua = require "netlua"
local ssh = require "netlua.ssh"

local SFTP_SERVER = "/usr/lib/openssh/sftp-server"
local T = 2                      -- the sessions' timeout
local LIMIT = T + 2 * H.slack    -- what a timed-out call may take at most
local MIB = 1024 * 1024

-- the state letter of a process ("T" when stopped)
local function state(pid)
  return (H.read_file("/proc/" .. pid .. "/stat") or ""):match("^%d+ %b() (%a)")
end

-- a call's results against the stopped server: nil, "WHAT: ...",
-- "timeout", within the limit
local function timed_out(what, took, ok, msg, code)
  assert.is_nil(ok)
  assert.equal("timeout", code, msg)
  assert.equal(what .. ": ", msg:sub(1, #what + 2), msg)
  assert.truthy(took < LIMIT, ("took %.2f s"):format(took))
end

-- sf:stat(name) against the stopped server times out, and says so itself
local function stat_times_out(sf, name)
  timed_out("stat " .. name, H.timed(sf.stat, sf, name))
end

local describe_if = H.exists(SFTP_SERVER) and describe or pending

describe_if("sftp when OpenSSH's sftp-server stops answering mid-transfer", function()
  local dir, keys, user, srv, conn
  local stopped = {}  -- PIDs this spec stopped and has not continued

  -- stops pid and waits until it is stopped (kill returns before a
  -- process running on another CPU has stopped)
  local function stop(pid)
    stopped[pid] = true
    assert(select(2, S.sh("kill -STOP " .. pid)), "kill -STOP " .. pid)
    local t = netlua.monotime() + 2
    while state(pid) ~= "T" and netlua.monotime() < t do netlua.sleep(0.002) end
  end

  local function cont(pid)
    if not stopped[pid] then return end
    stopped[pid] = nil
    S.sh("kill -CONT " .. pid)
  end

  local function home(name) return user.home .. "/" .. name end

  -- a file in the user's home, owned by the user
  local function remote_file(name, data)
    H.write_file(home(name), data)
    S.sh(("chown %s: %s"):format(user.name, H.shquote(home(name))))
  end

  -- the sftp-server processes below our sshd
  local function servers()
    local t = {}
    for _, pid in ipairs(S.descendants(srv.pid)) do
      if (H.read_file("/proc/" .. pid .. "/comm") or ""):match("^sftp%-server") then t[pid] = true end
    end
    return t
  end

  -- a session with timeout T, and the PID of the sftp-server serving it;
  -- the session is closed and the server continued when the test ends
  local function session()
    local before = servers()
    local sf = assert(conn:sftp({timeout = T}))
    local pid
    for p in pairs(servers()) do
      if not before[p] then
        assert.is_nil(pid, "one new sftp-server per session")
        pid = p
      end
    end
    assert.is_number(pid, "the session's sftp-server")
    finally(function()
      cont(pid)
      sf:close()
    end)
    return sf, pid
  end

  -- progress option that stops pid at its first call (after the first
  -- block moved); first[1] gets the bytes done then, last[1] the last
  local function stopper(pid, first, last)
    return function(done)
      if not first[1] then
        first[1] = done
        stop(pid)
        assert.equal("T", state(pid))
      end
      last[1] = done
    end
  end

  setup(function()
    dir = H.tmpdir()
    keys = S.keys(dir)
    user = S.user {keys = keys.authorized}
    srv = S.sshd {user = user, sftp_server = SFTP_SERVER}
    conn = assert(ssh.open(srv.host, srv.port, {user = user.name, key = keys.ed25519,
      known_hosts = srv.known_hosts, timeout = 20}))
  end)
  teardown(function()
    for pid in pairs(stopped) do cont(pid) end
    if conn then conn:close() end
    if srv then srv.stop() end
    if user then user.remove() end
    H.rm_rf(dir)
  end)

  it("get to a path: timeout in time, nothing under the name, not even the .part", function()
    local data = H.random_bytes(64 * MIB)
    remote_file("big", data)
    local sf, pid = session()
    local dst = dir .. "/big"
    local first, last = {}, {}
    local took, ok, msg, code = H.timed(sf.get, sf, "big", dst, {progress = stopper(pid, first, last)})
    timed_out("get big", took, ok, msg, code)
    assert.truthy(took > T - 0.25, ("gave up early: %.2f s"):format(took))
    -- it stalled mid-file
    assert.truthy(first[1] > 0 and last[1] < #data, ("%s .. %s"):format(first[1], last[1]))
    assert.is_false(H.exists(dst))
    assert.is_false(H.exists(dst .. ".part"))
    -- still stopped: the next call fails cleanly, in time too
    stat_times_out(sf, "big")
    -- going on: the late answers to the old reads are not taken for
    -- the new calls' answers
    cont(pid)
    assert.equal(#data, sf:size("big"))
    local got = assert(sf:get("big"))
    assert.equal(#data, #got)
    assert.is_true(got == data, "the data after the stall")
    assert.is_true(sf:get("big", dst))
    assert.is_true(H.read_file(dst) == data, "the file after the stall")
    assert.is_false(H.exists(dst .. ".part"))
  end)

  it("get with resume: keeps only a .part holding a prefix, which the next get completes", function()
    local data = H.random_bytes(64 * MIB)
    remote_file("res", data)
    local sf, pid = session()
    local dst = dir .. "/res"
    local first, last = {}, {}
    local took, ok, msg, code = H.timed(sf.get, sf, "res", dst,
      {resume = true, progress = stopper(pid, first, last)})
    timed_out("get res", took, ok, msg, code)
    assert.is_false(H.exists(dst))
    local part = assert(H.read_file(dst .. ".part"))
    assert.equal(last[1], #part)
    assert.truthy(#part > 0 and #part < #data, #part)
    assert.is_true(part == data:sub(1, #part), "the .part is the file's start")
    cont(pid)
    assert.is_true(sf:get("res", dst, {resume = true}))
    assert.is_true(H.read_file(dst) == data, "the resumed file")
    assert.is_false(H.exists(dst .. ".part"))
  end)

  it("get into a string and into an open file: timeout in time, then right answers", function()
    local data = H.random_bytes(64 * MIB)
    remote_file("mem", data)
    for _, into in ipairs {"string", "file"} do
      local sf, pid = session()
      local f = into == "file" and assert(io.open(dir .. "/mem-open", "wb")) or nil
      local first, last = {}, {}
      local took, ok, msg, code = H.timed(sf.get, sf, "mem", f, {progress = stopper(pid, first, last)})
      if f then f:close() end
      assert.is_nil(ok, into)
      assert.equal("timeout", code, msg)
      assert.truthy(msg:find("^get mem: "), msg)
      assert.truthy(took < LIMIT, ("%s: took %.2f s"):format(into, took))
      assert.truthy(last[1] < #data, into)
      cont(pid)
      local e = assert(sf:stat("mem"))
      assert.equal("file", e.type)
      assert.equal(#data, e.size)
      assert.is_true(sf:get("mem") == data, into .. ": the data after the stall")
    end
  end)

  it("put stalled while sending: timeout in time, a prefix under the name, the session usable", function()
    -- far more than the channel's window (2 MiB on sshd): the write
    -- itself blocks once the stopped server reads no more
    local data = H.random_bytes(64 * MIB)
    local sf, pid = session()
    local first, last = {}, {}
    local took, ok, msg, code = H.timed(sf.put, sf, data, "up",
      {data = true, progress = stopper(pid, first, last)})
    timed_out("put up", took, ok, msg, code)
    assert.truthy(took > T - 0.25, ("gave up early: %.2f s"):format(took))
    -- written in place: the name holds what the server got, the data's start
    local there = assert(H.read_file(home("up")))
    assert.truthy(#there < #data, #there)
    assert.is_true(there == data:sub(1, #there), "the file is the data's start")
    -- still stopped: the next call times out too, and says so itself
    stat_times_out(sf, "up")
    -- going on: the session is usable and its answers are the server's
    cont(pid)
    local e = assert(sf:stat("up"))
    there = assert(H.read_file(home("up")))
    assert.equal(#there, e.size)
    assert.truthy(e.size < #data, e.size)
    assert.is_true(there == data:sub(1, #there), "the file is still the data's start")
    assert.equal(#there, #assert(sf:get("up")))
    assert.is_true(sf:put("after the stall", "up", {data = true}))
    assert.equal("after the stall", H.read_file(home("up")))
    assert.equal("after the stall", sf:get("up"))
  end)

  it("put whose answers stall (all of it sent): timeout in time, then right answers", function()
    -- less than the window: every WRITE goes, the answers do not come
    local data = H.random_bytes(MIB)
    local sf, pid = session()
    local first, last = {}, {}
    local took, ok, msg, code = H.timed(sf.put, sf, data, "up2",
      {data = true, progress = stopper(pid, first, last)})
    timed_out("put up2", took, ok, msg, code)
    -- (how much the server wrote before it stopped is a race here)
    local there = assert(H.read_file(home("up2")))
    assert.is_true(there == data:sub(1, #there), "the file is the data's start")
    cont(pid)
    -- the server now writes what it was sent: a put that timed out may
    -- still have arrived whole; each call gets its own answer
    assert.is_true(sf:get("up2") == data, "the file the late server finished")
    assert.is_true(sf:put("small", "up2", {data = true}))
    assert.equal(5, sf:size("up2"))
    assert.equal("small", H.read_file(home("up2")))
  end)
end)
