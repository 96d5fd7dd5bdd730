--- spec/ssh_helper.lua: real SSH peers for the SSH specs and the bench.
--
-- OpenSSH's sshd and dropbear run in the foreground as child processes,
-- each with a temporary folder holding its config, fresh host keys, a
-- known_hosts file for the client and a log.  They listen on 127.0.0.1
-- (and ::1) at free ports and are stopped by PID, together with the
-- per-connection processes they forked.  Logins go to throwaway local
-- users (useradd/chpasswd, homes under /tmp, deleted again by remove);
-- their login shell may be a router CLI (spec/servers/router_shell.lua).
-- A scripted hostile peer (spec/servers/ssh_stall.lua) stalls or breaks
-- the handshake.  The OpenSSH client, run by S.ssh_cli, is the reference
-- the peers are checked with.  This file starts peers; it tests nothing.
--
-- What the peers can do (spec/ssh_peers_spec.lua shows each):
--   sshd      publickey (rsa, ed25519, ecdsa keys), password; with
--             `pam = true` also keyboard-interactive.  Without PAM
--             (the default, so nothing in /etc/pam.d runs) sshd still
--             offers keyboard-interactive but has no device to ask the
--             password with: every keyboard-interactive attempt fails.
--   dropbear  publickey and password only: it never offers
--             keyboard-interactive.  It rejects users whose login shell
--             is not in /etc/shells (the router wrapper is not): run the
--             router CLI through its forced command (`force_command`)
--             instead.  It allows at most 5 unauthenticated connections
--             per source address (MAX_UNAUTH_PER_IP, compiled in), so it
--             cannot take 200 handshakes at once from 127.0.0.1.
local H = require "helper"
local netlua = require "netlua"

local S = {}

--- The passphrase of the keys S.keys makes with one.
S.PASSPHRASE = "pass phrase"
--- Prefix of every throwaway user's name: S.cleanup looks for it.
S.PREFIX = "nlssh"

--- Runs a shell command line without the ASan runtime preloaded (ps
-- hangs with it, and sshd/ssh are not ours to instrument); returns its
-- output and success, as H.sh does.
local function sh(cmd)
  return H.sh("env -u LD_PRELOAD -u ASAN_OPTIONS sh -c " .. H.shquote(cmd))
end
S.sh = sh

local function must(cmd, what)
  local out, ok = sh(cmd)
  if not ok then error((what or cmd) .. ": " .. out, 2) end
  return out
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- this process (busted's, or the bench's): recorded on each user so that
-- S.cleanup can tell a dead run's leftovers from a live run's users
local function my_pid()
  return tonumber((H.read_file("/proc/self/stat") or ""):match("^(%d+)"))
end

local function rand_hex(n)
  local r = H.read_file("/proc/sys/kernel/random/uuid") or tostring(os.time())
  return (r:gsub("[^%x]", ""):sub(1, n))
end

-- a folder under /tmp other users can enter (mktemp's are 0700): the test
-- user must reach its home and the router shell, which live in them
local function open_tmpdir()
  local d = H.tmpdir()
  must("chmod 755 " .. H.shquote(d))
  return d
end

-- the public key line ("type base64 comment") in a .pub file or string
local function pubkey_line(p)
  if p:match("^%s*ssh%-") or p:match("^%s*ecdsa%-") or p:match("^%s*sk%-") then
    return trim(p)
  end
  return trim(assert(H.read_file(p), "no public key file " .. p))
end

-- "SHA256:..." of a public key file, as ssh prints it
local function fingerprint(pubfile)
  local out = must("ssh-keygen -l -E sha256 -f " .. H.shquote(pubfile), "ssh-keygen -l")
  return (assert(out:match("(SHA256:%S+)"), "no fingerprint in: " .. out))
end

-- all processes below pid (children first found, then theirs)
local function descendants(pid)
  local all, todo = {}, {pid}
  while #todo > 0 do
    local p = table.remove(todo)
    local kids = H.read_file(("/proc/%d/task/%d/children"):format(p, p)) or ""
    for kid in kids:gmatch("%d+") do
      all[#all + 1] = tonumber(kid)
      todo[#todo + 1] = tonumber(kid)
    end
  end
  return all
end

S.descendants = descendants

local function kill_pids(pids)
  for _, pid in ipairs(pids) do
    if H.alive(pid) then sh("kill -KILL " .. pid) end
  end
end

--- The PIDs of the live processes running as a user (a name or a uid).
-- Zombies do not count: a killed session's processes stay listed until
-- their parent (or init) reaps them, and nothing runs in them any more.
function S.user_pids(user)
  local t = {}
  for pid, stat in sh("ps -o pid=,stat= -u " .. user):gmatch("(%d+)%s+(%S+)") do
    if not stat:find("Z", 1, true) then t[#t + 1] = tonumber(pid) end
  end
  return t
end
local user_pids = S.user_pids

-- kills a user's processes by PID until none are left (a session being
-- killed may just have forked)
local function kill_user(name)
  for _ = 1, 10 do
    local pids = user_pids(name)
    if #pids == 0 then return end
    kill_pids(pids)
    netlua.sleep(0.05)
  end
end

local function userdel(name)
  -- the mail spool useradd never made is the only complaint expected
  sh("userdel -f -r " .. name)
  return not sh("getent passwd " .. name):find(name .. ":", 1, true)
end

--- Makes client key pairs with ssh-keygen in dir (OpenSSH's own key
-- format, the default of ssh-keygen since 7.8): `rsa` (3072 bits),
-- `ed25519`, `ed25519_pass` (encrypted with S.PASSPHRASE) and
-- `stranger` (ed25519, which no user authorizes: the wrong key).
-- Returns their paths, each public one as NAME_pub, plus `passphrase`
-- and `authorized` (the public key paths a user normally gets: all but
-- the stranger's).
function S.keys(dir)
  local k = {passphrase = S.PASSPHRASE}
  local function gen(name, args, pass)
    local path = dir .. "/" .. name
    os.remove(path) os.remove(path .. ".pub")  -- ssh-keygen would ask
    must(("ssh-keygen -q %s -N %s -C %s -f %s </dev/null")
      :format(args, H.shquote(pass or ""), H.shquote(name .. "@netlua-spec"), H.shquote(path)),
      "ssh-keygen " .. name)
    k[name] = path
    k[name .. "_pub"] = path .. ".pub"
  end
  gen("rsa", "-t rsa -b 3072")
  gen("ed25519", "-t ed25519")
  gen("ed25519_pass", "-t ed25519", k.passphrase)
  gen("stranger", "-t ed25519")
  k.authorized = {k.rsa_pub, k.ed25519_pub, k.ed25519_pass_pub}
  return k
end

--- Writes a router CLI login shell into dir: a copy of
-- spec/servers/router_shell.lua and a wrapper script that runs it on
-- lua5.4.  The copy is there because the throwaway user must read the
-- script, and the repository may sit where only root can (under /root,
-- say).  hostname sets its prompt (default R1).  Returns the wrapper's
-- path: a user's shell (S.user's `shell`), an sshd ForceCommand or a
-- dropbear forced command (`force_command` of S.sshd / S.dropbear).
function S.router_shell(dir, hostname)
  local src = assert(H.read_file(H.root .. "/spec/servers/router_shell.lua"),
    "no spec/servers/router_shell.lua under " .. H.root)
  local script, wrapper = dir .. "/router_shell.lua", dir .. "/router_shell"
  H.write_file(script, src)
  local lua = trim(must("command -v lua5.4", "lua5.4"))
  H.write_file(wrapper, table.concat({
    "#!/bin/sh",
    "# login shell of a netlua SSH spec user: the router CLI",
    "ROUTER_HOSTNAME=" .. H.shquote(hostname or "R1") .. "; export ROUTER_HOSTNAME",
    "LUA_PATH=" .. H.shquote(dir .. "/?.lua;;") .. "; export LUA_PATH",
    "exec " .. lua .. " " .. H.shquote(script) .. ' "$@"', ""}, "\n"))
  must(("chmod 755 %s %s && chmod 644 %s"):format(H.shquote(dir), H.shquote(wrapper),
    H.shquote(script)))
  return wrapper
end

local users = {}  -- made by this process and not yet removed, by name

--- A throwaway local user for logins: made with useradd -m (home in a
-- temporary folder), password set with chpasswd, login shell opts.shell
-- (default /bin/sh; "router": the router CLI of S.router_shell, which
-- sshd accepts as a login shell and dropbear does not).  opts.keys:
-- public keys to authorize (paths of .pub files or key lines), written
-- to ~/.ssh/authorized_keys with the ownership and modes sshd's
-- StrictModes and dropbear insist on.  opts.router: also make the router
-- wrapper (as `router`) without making it the shell, for a forced
-- command; a string names its hostname.  opts.password overrides the
-- random password.  opts.creator: the PID the user is recorded as made
-- by (default this process; the cleanup spec fakes a dead run's user).
-- Returns {name, uid, password, home, dir, shell, router, authorized_keys,
-- authorize=function(pub), remove=function}: remove() kills the user's
-- processes by PID (ps -o pid= -u NAME), then runs userdel -f -r and
-- removes the folder.
function S.user(opts)
  opts = opts or {}
  local u = {}
  u.dir = open_tmpdir()
  u.name = S.PREFIX .. rand_hex(8)
  u.password = opts.password or ("pw" .. rand_hex(6) .. "X!")
  u.home = u.dir .. "/" .. u.name
  if opts.router or opts.shell == "router" then
    local hostname = type(opts.router) == "string" and opts.router or nil
    u.router = S.router_shell(u.dir, hostname)
  end
  u.shell = opts.shell == "router" and u.router or opts.shell or "/bin/sh"
  -- the comment names the creator, for S.cleanup
  local out, ok = sh(("useradd -m -d %s -s %s -c %s %s && echo %s | chpasswd")
    :format(H.shquote(u.home), H.shquote(u.shell),
      H.shquote("netlua spec pid=" .. (opts.creator or my_pid())), u.name,
      H.shquote(u.name .. ":" .. u.password)))
  if not ok then
    userdel(u.name)
    H.rm_rf(u.dir)
    error("useradd: " .. out, 2)
  end
  -- a user made in another run's name (the cleanup spec) is not ours
  if not opts.creator or opts.creator == my_pid() then users[u.name] = u end
  u.uid = tonumber((sh("id -u " .. u.name)))
  u.ssh_dir = u.home .. "/.ssh"
  u.authorized_keys = u.ssh_dir .. "/authorized_keys"

  -- sshd (StrictModes) and dropbear refuse keys that others could have
  -- written: home and ~/.ssh owned by the user and not group/world
  -- writable, the file 0600
  local function fix_modes()
    must(("chown -R %s: %s && chmod 755 %s && chmod 700 %s && chmod 600 %s")
      :format(u.name, H.shquote(u.ssh_dir), H.shquote(u.home), H.shquote(u.ssh_dir),
        H.shquote(u.authorized_keys)), "authorized_keys modes")
  end

  --- Adds a public key (a .pub path or a key line) to authorized_keys.
  function u.authorize(pub)
    local old = H.read_file(u.authorized_keys) or ""
    H.write_file(u.authorized_keys, old .. pubkey_line(pub) .. "\n")
    fix_modes()
  end

  must("mkdir -p " .. H.shquote(u.ssh_dir))
  H.write_file(u.authorized_keys, "")
  for _, pub in ipairs(opts.keys or {}) do u.authorize(pub) end
  fix_modes()

  --- Kills the user's processes (by PID), deletes the user and its folder.
  function u.remove()
    if u.removed then return end
    u.removed = true
    kill_user(u.name)
    userdel(u.name)
    users[u.name] = nil
    H.rm_rf(u.dir)
  end
  return u
end

--- Removes throwaway users: those this process made and has not removed
-- yet, and those a run that no longer exists left behind (a crash, a
-- killed busted).  Only names S.PREFIX..hex whose comment says "netlua
-- spec pid=N" are touched, and only when N is gone or is this process,
-- so a suite running at the same time keeps its users.  Returns the
-- names removed.
function S.cleanup()
  local removed = {}
  for _, u in pairs(users) do
    u.remove()
    removed[#removed + 1] = u.name
  end
  local me = my_pid()
  for line in sh("getent passwd"):gmatch("[^\n]+") do
    local name, gecos, home = line:match("^([^:]+):[^:]*:%d+:%d+:([^:]*):([^:]*):")
    local pid = gecos and tonumber(gecos:match("^netlua spec pid=(%d+)$"))
    if name and name:match("^" .. S.PREFIX .. "%x+$") and pid
      and (pid == me or not H.alive(pid)) then
      kill_user(name)
      userdel(name)
      removed[#removed + 1] = name
      local dir = home:match("^(/tmp/netlua%-spec%.[^/]+)/")
      if dir then H.rm_rf(dir) end
    end
  end
  return removed
end

-- a free port on 127.0.0.1 that is free on ::1 too (ipv6: both listen)
local function free_port(ipv6)
  for _ = 1, 50 do
    local port = H.free_port("inet")
    if not ipv6 then return port end
    local s = netlua.tcp.listen("::1", port, {reuse = false, ipv6only = true})
    if s then s:close() return port end
  end
  error("no port free on both 127.0.0.1 and ::1")
end

local KEYTYPES = {"ed25519", "ecdsa", "rsa"}

-- Gives srv what both servers share: the known_hosts files, the
-- fingerprints, the stop function.  srv.pubfiles[type] must be set.
local function finish(srv, opts)
  srv.hosts = {"127.0.0.1"}
  if opts.ipv6 then srv.hosts[2] = "::1" end
  srv.host = opts.ipv6 and "::1" or "127.0.0.1"
  local names = {}
  for i, h in ipairs(srv.hosts) do names[i] = ("[%s]:%d"):format(h, srv.port) end
  names = table.concat(names, ",")
  srv.pubkeys, srv.fingerprints = {}, {}
  local lines = {}
  for _, t in ipairs(KEYTYPES) do
    local ktype, b64 = H.read_file(srv.pubfiles[t]):match("^(%S+) (%S+)")
    srv.pubkeys[t] = ktype .. " " .. b64
    srv.fingerprints[t] = fingerprint(srv.pubfiles[t])
    lines[#lines + 1] = names .. " " .. ktype .. " " .. b64
  end
  srv.known_hosts = srv.dir .. "/known_hosts"
  H.write_file(srv.known_hosts, table.concat(lines, "\n") .. "\n")
  -- the same names with a key the server does not have: what a client
  -- sees when someone else answers (host key changed)
  local foreign = srv.dir .. "/foreign_host_key"
  must(("ssh-keygen -q -N '' -t ed25519 -C '' -f %s </dev/null"):format(H.shquote(foreign)))
  local f_type, f_b64 = H.read_file(foreign .. ".pub"):match("^(%S+) (%S+)")
  srv.known_hosts_wrong = srv.dir .. "/known_hosts_wrong"
  H.write_file(srv.known_hosts_wrong, names .. " " .. f_type .. " " .. f_b64 .. "\n")
  srv.foreign_fingerprint = fingerprint(foreign .. ".pub")

  --- The server's log so far (sshd -e / dropbear -E output).
  function srv.log_text() return H.read_file(srv.log) or "" end

  --- Stops the server and every connection process it forked (by PID);
  -- opts.user's processes too.  Removes the temporary folder, not the user.
  function srv.stop()
    if srv.stopped then return end
    srv.stopped = true
    -- the listener's children serve the open connections and outlive it
    local kids = descendants(srv.pid)
    H.kill(srv.pid)
    kill_pids(kids)
    kill_pids(descendants(srv.pid))
    if srv.user then kill_user(srv.user.name) end
    if not opts.keep_dir then H.rm_rf(srv.dir) end
  end
  return srv
end

-- waits for every address srv listens on; on failure stops it and raises
-- with its log
local function started(srv)
  for _, h in ipairs(srv.hosts) do
    local ok, err = pcall(H.wait_port, h, srv.port, 10)
    if not ok then
      local log = srv.log_text()
      srv.stop()
      error(tostring(err) .. "\n" .. log, 3)
    end
  end
  return srv
end

--- Starts OpenSSH's sshd in the foreground (`/usr/sbin/sshd -D -e -f
-- CONFIG`, an absolute path: sshd re-executes itself per connection) with
-- a temporary config and fresh ed25519, ecdsa and rsa host keys, on
-- 127.0.0.1 at a free port (opts.ipv6: on ::1 too, same port, and
-- srv.host is "::1").  Password, publickey and keyboard-interactive are
-- enabled; UsePAM is off unless opts.pam (keyboard-interactive then asks
-- "Password:" through the system's /etc/pam.d/sshd, whose session
-- modules also run: pam_motd rewrites /run/motd.dynamic and shows the
-- motd in pty sessions; without PAM keyboard-interactive always fails),
-- StrictModes on, no DNS, limits for 200+ concurrent sessions, LogLevel
-- VERBOSE into srv.log.
-- opts: `user` (from S.user: the only user allowed in; its processes are
-- stopped with the server), `force_command` (ForceCommand), `pam`,
-- `extra` (config lines; they come first, and sshd takes the first value
-- of a keyword, so they override the defaults here; a "Match" line and
-- what follows go last), `sftp_server` (the command of the sftp
-- subsystem instead of internal-sftp: sshd refuses a second Subsystem
-- line for a name, so `extra` cannot replace it), `keep_dir` (stop()
-- leaves the folder, for a look at the log; remove it yourself).
-- Returns {kind="sshd", host, hosts, port, pid, dir, log, config,
-- hostkeys={ed25519=, ecdsa=, rsa=} (private key paths), pubkeys (type
-- -> "keytype base64"), known_hosts (all host keys as "[127.0.0.1]:PORT
-- keytype base64" lines, as ssh writes them for a port other than 22),
-- known_hosts_wrong (a foreign ed25519 key under the same names),
-- fingerprints={ed25519="SHA256:...", ...}, user, log_text(), stop()}.
function S.sshd(opts)
  opts = opts or {}
  local srv = {kind = "sshd", user = opts.user}
  srv.dir = H.tmpdir()
  srv.log = srv.dir .. "/sshd.log"
  -- sshd's privilege separation folder: must exist, root's, not writable
  -- by others (the package makes it only when its service starts)
  must("mkdir -p /run/sshd && chmod 755 /run/sshd")
  srv.hostkeys, srv.pubfiles = {}, {}
  for _, t in ipairs(KEYTYPES) do
    local path = srv.dir .. "/ssh_host_" .. t .. "_key"
    must(("ssh-keygen -q -N '' -t %s -C '' -f %s </dev/null"):format(t, H.shquote(path)),
      "ssh-keygen host key")
    srv.hostkeys[t], srv.pubfiles[t] = path, path .. ".pub"
  end
  srv.port = free_port(opts.ipv6)
  local first, last = {}, {}
  local into = first
  for _, l in ipairs(opts.extra or {}) do
    if l:match("^%s*[Mm]atch%s") then into = last end
    into[#into + 1] = l
  end
  local lines = {}
  for _, l in ipairs(first) do lines[#lines + 1] = l end
  for _, l in ipairs {
    "Port " .. srv.port,
    "ListenAddress 127.0.0.1",
    opts.ipv6 and "ListenAddress ::1" or false,
    "HostKey " .. srv.hostkeys.ed25519,
    "HostKey " .. srv.hostkeys.ecdsa,
    "HostKey " .. srv.hostkeys.rsa,
    "PidFile none",
    "UsePAM " .. (opts.pam and "yes" or "no"),
    "PasswordAuthentication yes",
    "KbdInteractiveAuthentication yes",
    "PubkeyAuthentication yes",
    "PermitEmptyPasswords no",
    "PermitRootLogin no",
    opts.user and ("AllowUsers " .. opts.user.name) or false,
    -- the user's own file, which S.user writes; StrictModes checks its
    -- modes up to the home folder (whose parents are /tmp's)
    "AuthorizedKeysFile %h/.ssh/authorized_keys",
    "StrictModes yes",
    "MaxAuthTries 10",
    "UseDNS no",
    "AcceptEnv LANG LC_* NETLUA_*",
    -- 200 and more sessions at once, from one address: no early drops
    -- (200 parallel `ssh` logins all got in; on 2 busy CPUs that took
    -- 30 s, so a bench needs a generous handshake timeout)
    "MaxStartups 1000:30:1000",
    "MaxSessions 1000",
    "LoginGraceTime 60",
    "PrintMotd no",
    "PrintLastLog no",
    "X11Forwarding no",
    "AllowTcpForwarding yes",
    "Subsystem sftp " .. (opts.sftp_server or "internal-sftp"),
    "LogLevel VERBOSE",
    opts.force_command and ("ForceCommand " .. opts.force_command) or false,
  } do
    if l then lines[#lines + 1] = l end  -- false: an option not asked for
  end
  for _, l in ipairs(last) do lines[#lines + 1] = l end
  srv.config = srv.dir .. "/sshd_config"
  H.write_file(srv.config, table.concat(lines, "\n") .. "\n")
  local bin = "/usr/sbin/sshd"
  must(bin .. " -t -f " .. H.shquote(srv.config), "sshd config")
  finish(srv, opts)
  srv.pid = H.spawn(bin .. " -D -e -f " .. H.shquote(srv.config), {log = srv.log})
  return started(srv)
end

--- Starts dropbear in the foreground (`dropbear -F -E -p
-- 127.0.0.1:PORT -r KEY... -P PIDFILE`) with fresh ed25519, ecdsa and
-- rsa (2048 bits, dropbearkey's default) host keys, on a free port
-- (opts.ipv6: on [::1] too).  Root logins and the motd are off (-w, -m).
-- opts: `user` (its processes are stopped with the server),
-- `force_command` (dropbear -c: what every login runs, the client's
-- command in SSH_ORIGINAL_COMMAND; the way to the router CLI, as
-- dropbear rejects a login shell /etc/shells does not list), `args`
-- (more dropbear arguments, a list), `keep_dir`.  dropbear reads
-- ~/.ssh/authorized_keys itself (no option names another file), and
-- drops handshakes beyond 5 at once from one address (see the top).
-- Returns a table like S.sshd's, kind="dropbear".
function S.dropbear(opts)
  opts = opts or {}
  local srv = {kind = "dropbear", user = opts.user}
  srv.dir = H.tmpdir()
  srv.log = srv.dir .. "/dropbear.log"
  srv.hostkeys, srv.pubfiles = {}, {}
  for _, t in ipairs(KEYTYPES) do
    local path = srv.dir .. "/dropbear_" .. t .. "_host_key"
    must(("dropbearkey -t %s -f %s"):format(t, H.shquote(path)), "dropbearkey")
    -- the public line, as `dropbearkey -y` prints it among other lines
    local out = must("dropbearkey -y -f " .. H.shquote(path), "dropbearkey -y")
    local line
    for l in out:gmatch("[^\n]+") do
      if l:match("^ssh%-") or l:match("^ecdsa%-") then line = l end
    end
    assert(line, "no public key from dropbearkey -y: " .. out)
    H.write_file(path .. ".pub", line .. "\n")
    srv.hostkeys[t], srv.pubfiles[t] = path, path .. ".pub"
  end
  srv.port = free_port(opts.ipv6)
  srv.pidfile = srv.dir .. "/dropbear.pid"
  local args = {"-F", "-E", "-w", "-m", "-p", "127.0.0.1:" .. srv.port}
  if opts.ipv6 then
    args[#args + 1] = "-p"
    args[#args + 1] = "[::1]:" .. srv.port
  end
  for _, t in ipairs(KEYTYPES) do
    args[#args + 1] = "-r"
    args[#args + 1] = srv.hostkeys[t]
  end
  args[#args + 1] = "-P"
  args[#args + 1] = srv.pidfile
  if opts.force_command then
    args[#args + 1] = "-c"
    args[#args + 1] = opts.force_command
  end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  for i, a in ipairs(args) do args[i] = H.shquote(a) end
  finish(srv, opts)
  srv.pid = H.spawn("/usr/sbin/dropbear " .. table.concat(args, " "), {log = srv.log})
  return started(srv)
end

-- a one-shot SSH_ASKPASS program printing secret, in a folder of its
-- own; returns its path and the folder
local function askpass(secret)
  local dir = H.tmpdir()
  local path = dir .. "/askpass"
  H.write_file(path, "#!/bin/sh\nprintf '%s\\n' " .. H.shquote(secret) .. "\n")
  must("chmod 700 " .. H.shquote(path))
  return path, dir
end

--- The ssh command line S.ssh_cli runs, without the command (for specs
-- that pipe into it or time it themselves).  Same arguments as S.ssh_cli.
function S.ssh_command(srv, user, key, opts)
  opts = opts or {}
  local name = type(user) == "table" and user.name or user
  local o = {
    "-F", "/dev/null",  -- no ~/.ssh/config or /etc/ssh/ssh_config
    "-p", tostring(srv.port),
    "-o", "StrictHostKeyChecking=" .. (opts.strict or "yes"),
    "-o", "UserKnownHostsFile=" .. (opts.known_hosts or srv.known_hosts),
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "UpdateHostKeys=no",
    "-o", "IdentityAgent=none",
    "-o", "ControlMaster=no", "-o", "ControlPath=none",
    "-o", "ConnectTimeout=" .. (opts.connect_timeout or 10),
    "-o", "LogLevel=" .. (opts.loglevel or "ERROR"),
  }
  local function add(...) for _, a in ipairs {...} do o[#o + 1] = a end end
  if opts.password then
    -- the password goes through SSH_ASKPASS (see S.ssh_cli); nothing else
    add("-o", "BatchMode=no", "-o", "PubkeyAuthentication=no",
      "-o", "PreferredAuthentications=" .. (opts.method or "password"),
      "-o", "NumberOfPasswordPrompts=1")
  else
    add("-o", "BatchMode=" .. (opts.passphrase and "no" or "yes"),
      "-o", "IdentitiesOnly=yes", "-o", "PreferredAuthentications=publickey")
    if key then add("-i", key) end
  end
  if opts.tty then add("-tt") end
  for _, x in ipairs(opts.options or {}) do add("-o", x) end
  add(name .. "@" .. (opts.host or srv.host))
  for i, a in ipairs(o) do o[i] = H.shquote(a) end
  return "ssh " .. table.concat(o, " ")
end

--- Runs the OpenSSH client non-interactively against srv as user (a
-- name or S.user's table) with private key `key`: BatchMode, -i key,
-- StrictHostKeyChecking=yes against srv.known_hosts, no agent, no config
-- files.  cmd is the remote command (nil: the login shell).  opts:
-- `tty` (ssh -tt: a pty even though stdin is no terminal), `stdin` (a
-- string fed to ssh; else /dev/null), `password` (password login, given
-- through SSH_ASKPASS with SSH_ASKPASS_REQUIRE=force, publickey off;
-- `method` = "keyboard-interactive" answers that way instead),
-- `passphrase` (of key, the same way), `known_hosts`, `strict`, `host`
-- (another address of srv), `options` (more -o values), `timeout`
-- (seconds for the whole run, default 30, ended by timeout(1)).
-- Returns the output (stdout and stderr) and true when ssh exited 0.
function S.ssh_cli(srv, user, key, cmd, opts)
  opts = opts or {}
  local line = S.ssh_command(srv, user, key, opts)
  if cmd then line = line .. " " .. H.shquote(cmd) end
  local env, dirs = "", {}
  local secret = opts.password or opts.passphrase
  if secret then
    local path, dir = askpass(secret)
    dirs[#dirs + 1] = dir
    env = "SSH_ASKPASS=" .. H.shquote(path) .. " SSH_ASKPASS_REQUIRE=force DISPLAY=:0 "
  end
  local input = "/dev/null"
  if opts.stdin then
    local dir = H.tmpdir()
    dirs[#dirs + 1] = dir
    input = dir .. "/stdin"
    H.write_file(input, opts.stdin)
  end
  local out, ok = sh(("%stimeout -k 2 %d %s <%s"):format(env, opts.timeout or 30, line,
    H.shquote(input)))
  for _, d in ipairs(dirs) do H.rm_rf(d) end
  return out, ok
end

--- Starts the hostile peer spec/servers/ssh_stall.lua on 127.0.0.1 at a
-- free port.  mode: "stall" (default: a valid version line
-- "SSH-2.0-stall\r\n", then silence, so the key exchange never starts),
-- "garbage" (64 KiB of lines that are no version line, then silence),
-- "close" (the version line, then the connection closes).  Returns
-- {host, port, pid, mode, stop=function}.
function S.stall_server(mode)
  local srv = {host = "127.0.0.1", mode = mode or "stall"}
  srv.port = H.free_port()
  srv.pid = H.lua_server("ssh_stall", srv.port, srv.mode)
  --- Stops the peer (its connections end with it: one process).
  function srv.stop()
    if srv.stopped then return end
    srv.stopped = true
    H.kill(srv.pid)
  end
  return srv
end

return S
