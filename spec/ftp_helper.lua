--- spec/ftp_helper.lua: real FTP servers for the FTP specs, the tour and the bench.
--
-- vsftpd (plain, IPv6, TLS) runs standalone in the foreground as a child
-- process with a temporary config, a temporary root and a throwaway local
-- user made with useradd/chpasswd (deleted again by stop); pyftpdlib runs
-- with the system python.  Everything binds 127.0.0.1 or ::1 at free
-- ports and is stopped by PID.  proftpd runs in the foreground with a
-- config of its own (never /etc/proftpd's) and a user that exists only
-- in its AuthUserFile.  This file starts servers; it tests nothing.
local H = require "helper"
local netlua = require "netlua"

local F = {}

-- Shell commands run without the ASan runtime preloaded (ps hangs with it).
local function sh(cmd)
  return H.sh("env -u LD_PRELOAD -u ASAN_OPTIONS sh -c " .. H.shquote(cmd))
end
F.sh = sh

local function rand_name()
  local r = H.read_file("/proc/sys/kernel/random/uuid") or tostring(os.time())
  return "nlftp" .. r:gsub("[^%x]", ""):sub(1, 8)
end

--- Makes a self-signed certificate for 127.0.0.1 (and ::1) in dir;
-- returns cert path, key path.
function F.make_cert(dir, cn)
  cn = cn or "127.0.0.1"
  local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
  local out, ok = sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=%s"
    .. " -addext subjectAltName=IP:127.0.0.1,IP:::1 -keyout %s -out %s")
    :format(cn, H.shquote(key), H.shquote(cert)))
  assert(ok, out)
  return cert, key
end

-- Gives a started server its path, connections and opts functions;
-- `opened` is the log line the server writes per control connection.
local function with_methods(srv, tls, opened)
  --- Path on disk of a name under the server root.
  function srv.path(p) return srv.root .. "/" .. p end
  --- Number of control connections the server saw.
  function srv.connections()
    local n = 0
    for _ in (H.read_file(srv.log) or ""):gmatch(opened) do n = n + 1 end
    return n
  end
  --- Session options for netlua.ftp.new.
  function srv.opts(extra)
    local o = {host = srv.host, port = srv.port, user = srv.user,
      password = srv.password, timeout = 10}
    if tls then o.tls = "explicit"; o.cafile = srv.cert end
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
  return srv
end

--- Starts vsftpd.  opts: `ipv6` (listen on ::1), `tls` (explicit FTPS with a
-- fresh certificate), `extra` (more config lines).  Returns a server table:
-- {host, port, user, password, root, log, pid, cert, stop=function}.
function F.vsftpd(opts)
  opts = opts or {}
  local srv = {}
  srv.dir = H.tmpdir()
  srv.root = srv.dir .. "/home"
  srv.empty = srv.dir .. "/empty"
  srv.log = srv.dir .. "/vsftpd.log"
  sh("mkdir -p " .. H.shquote(srv.root) .. " " .. H.shquote(srv.empty))
  sh("chmod 755 " .. H.shquote(srv.dir))
  srv.user = rand_name()
  srv.password = "pw" .. srv.user:sub(6) .. "X!"
  local out, ok = sh(("useradd -M -d %s -s /bin/sh %s && echo %s | chpasswd && chown %s %s")
    :format(H.shquote(srv.root), srv.user, H.shquote(srv.user .. ":" .. srv.password),
      srv.user, H.shquote(srv.root)))
  assert(ok, "useradd: " .. out)
  local family = opts.ipv6 and "inet6" or "inet"
  srv.host = opts.ipv6 and "::1" or "127.0.0.1"
  srv.port = H.free_port(family)
  local pasv = H.free_port("inet")
  local lines = {
    "background=NO",
    "listen_port=" .. srv.port,
    "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
    "local_umask=022", "chroot_local_user=NO",
    "pasv_enable=YES", "pasv_address=127.0.0.1",
    "pasv_min_port=" .. pasv, "pasv_max_port=" .. (pasv + 40),
    "port_enable=YES", "connect_from_port_20=NO",
    "seccomp_sandbox=NO",
    "log_ftp_protocol=YES", "xferlog_enable=YES", "xferlog_std_format=NO",
    "vsftpd_log_file=" .. srv.log,
    "secure_chroot_dir=" .. srv.empty,
    "userlist_enable=NO", "pam_service_name=vsftpd",
    "idle_session_timeout=600", "data_connection_timeout=600",
    "max_per_ip=0", "max_clients=0",
  }
  if opts.ipv6 then
    lines[#lines + 1] = "listen=NO"
    lines[#lines + 1] = "listen_ipv6=YES"
    lines[#lines + 1] = "listen_address6=::1"
  else
    lines[#lines + 1] = "listen=YES"
    lines[#lines + 1] = "listen_address=127.0.0.1"
  end
  if opts.tls then
    srv.cert, srv.key = F.make_cert(srv.dir)
    for _, l in ipairs {
      "ssl_enable=YES", "rsa_cert_file=" .. srv.cert,
      "rsa_private_key_file=" .. srv.key,
      "force_local_logins_ssl=YES", "force_local_data_ssl=YES",
      "require_ssl_reuse=YES", "ssl_ciphers=HIGH",
    } do lines[#lines + 1] = l end
  end
  for _, l in ipairs(opts.extra or {}) do lines[#lines + 1] = l end
  srv.conf = srv.dir .. "/vsftpd.conf"
  H.write_file(srv.conf, table.concat(lines, "\n") .. "\n")
  srv.pid = H.spawn("/usr/sbin/vsftpd " .. H.shquote(srv.conf), {log = srv.dir .. "/stderr"})
  local okp, err = pcall(H.wait_port, srv.host, srv.port, 10)
  if not okp then
    H.kill(srv.pid)
    sh("userdel " .. srv.user)
    error(tostring(err) .. "\n" .. (H.read_file(srv.dir .. "/stderr") or ""))
  end
  function srv.stop()
    if srv.stopped then return end
    srv.stopped = true
    H.kill(srv.pid)
    -- sessions are separate processes run as the test user: stop each of
    -- them by PID so none outlives the test, then drop the user
    local pids = sh("ps -o pid= -u " .. srv.user)
    for pid in pids:gmatch("%d+") do sh("kill -KILL " .. pid) end
    sh("userdel -f " .. srv.user)
    H.rm_rf(srv.dir)
  end
  return with_methods(srv, opts.tls, "CONNECT: Client")
end

--- Starts proftpd (`proftpd -n`, in the foreground) with a temporary
-- config, root and log folder.  The user exists only in a generated
-- AuthUserFile, with a uid no system account has, so nothing in /etc
-- changes.  opts: `tls` (explicit FTPS required on control and data, with
-- a fresh certificate), `extra` (more config lines).  Returns a server
-- table like F.vsftpd's.
function F.proftpd(opts)
  opts = opts or {}
  local srv = {}
  srv.dir = H.tmpdir()
  srv.root = srv.dir .. "/home"
  srv.log = srv.dir .. "/proftpd.log"
  srv.cmdlog = srv.dir .. "/commands.log"
  sh("mkdir -p " .. H.shquote(srv.root))
  sh("chmod 755 " .. H.shquote(srv.dir))
  srv.user = rand_name()
  srv.password = "pw" .. srv.user:sub(6) .. "X!"
  -- a uid outside the range any account here uses
  srv.uid = 200000 + tonumber(srv.user:sub(6), 16) % 100000
  local hash, ok = sh("openssl passwd -6 -stdin <<'EOF'\n" .. srv.password .. "\nEOF")
  hash = hash:gsub("%s+$", "")
  assert(ok and hash:match("^%$6%$"), "openssl passwd: " .. hash)
  H.write_file(srv.dir .. "/passwd", ("%s:%s:%d:%d::%s:/bin/sh\n")
    :format(srv.user, hash, srv.uid, srv.uid, srv.root))
  H.write_file(srv.dir .. "/group", ("%s:x:%d:\n"):format(srv.user, srv.uid))
  sh(("chmod 600 %s/passwd %s/group && chown %d:%d %s")
    :format(H.shquote(srv.dir), H.shquote(srv.dir), srv.uid, srv.uid, H.shquote(srv.root)))
  srv.host = "127.0.0.1"
  srv.port = H.free_port("inet")
  local pasv = H.free_port("inet")
  local q = function(v) return '"' .. v .. '"' end
  local lines = {
    "ServerName " .. q("netlua spec"),
    "ServerType standalone",
    "DefaultServer on",
    -- bind 127.0.0.1 only, never the wildcard
    "DefaultAddress 127.0.0.1",
    "SocketBindTight on",
    "UseIPv6 off",
    "Port " .. srv.port,
    "PassivePorts " .. pasv .. " " .. (pasv + 40),
    "User nobody", "Group nogroup",
    "PidFile " .. srv.dir .. "/proftpd.pid",
    "ScoreboardFile " .. srv.dir .. "/proftpd.scoreboard",
    "SystemLog " .. srv.log,
    "TransferLog " .. srv.dir .. "/xfer.log",
    "LogFormat cmds \"%a %m %J -> %r %s\"",
    "ExtendedLog " .. srv.cmdlog .. " ALL cmds",
    "WtmpLog off",
    "UseReverseDNS off",
    "<IfModule mod_ident.c>", "IdentLookups off", "</IfModule>",
    "<IfModule mod_delay.c>", "DelayEngine off", "</IfModule>",
    "<IfModule mod_ctrls.c>", "ControlsEngine off", "</IfModule>",
    "<IfModule mod_auth_pam.c>", "AuthPAM off", "</IfModule>",
    "AuthOrder mod_auth_file.c",
    "AuthUserFile " .. srv.dir .. "/passwd",
    "AuthGroupFile " .. srv.dir .. "/group",
    "RequireValidShell off",
    "MaxInstances 100", "MaxClientsPerHost none", "MaxLoginAttempts 10",
    "TimeoutIdle 600", "TimeoutNoTransfer 600", "TimeoutStalled 600",
    "Umask 022",
    "AllowOverwrite on", "AllowStoreRestart on", "AllowRetrieveRestart on",
  }
  if opts.tls then
    srv.cert, srv.key = F.make_cert(srv.dir)
    for _, l in ipairs {
      "<IfModule !mod_tls.c>", "LoadModule mod_tls.c", "</IfModule>",
      "<IfModule mod_tls.c>",
      "TLSEngine on",
      "TLSLog " .. srv.dir .. "/tls.log",
      "TLSProtocol TLSv1.2 TLSv1.3",
      "TLSRSACertificateFile " .. srv.cert,
      "TLSRSACertificateKeyFile " .. srv.key,
      "TLSVerifyClient off",
      -- both channels encrypted; data connections must reuse the
      -- control connection's TLS session (proftpd's default)
      "TLSRequired on",
      "TLSRenegotiate none",
      "</IfModule>",
    } do lines[#lines + 1] = l end
  end
  for _, l in ipairs(opts.extra or {}) do lines[#lines + 1] = l end
  srv.conf = srv.dir .. "/proftpd.conf"
  -- unpacked by scripts/deps.sh (the package would replace vsftpd)
  local base = H.root .. "/.deps/proftpd/usr"
  H.write_file(srv.conf, "ModulePath " .. base .. "/lib/proftpd\n"
    .. table.concat(lines, "\n") .. "\n")
  local bin = base .. "/sbin/proftpd"
  local out, okc = sh(bin .. " -t -c " .. H.shquote(srv.conf))
  if not okc then
    H.rm_rf(srv.dir)
    error("proftpd config: " .. out)
  end
  srv.pid = H.spawn(bin .. " -n -q -c " .. H.shquote(srv.conf),
    {log = srv.dir .. "/stderr"})
  local okp, err = pcall(H.wait_port, srv.host, srv.port, 10)
  if not okp then
    H.kill(srv.pid)
    local msg = tostring(err) .. "\n" .. (H.read_file(srv.dir .. "/stderr") or "")
      .. (H.read_file(srv.log) or "")
    H.rm_rf(srv.dir)
    error(msg)
  end
  function srv.stop()
    if srv.stopped then return end
    srv.stopped = true
    -- each session is a child process of the daemon (running as nobody
    -- before login, as the test uid after): stop those left by PID
    local pids = sh("ps -o pid= --ppid " .. srv.pid)
    H.kill(srv.pid)
    pids = pids .. " " .. sh("ps -o pid= -u " .. srv.uid)
    for pid in pids:gmatch("%d+") do
      if H.alive(tonumber(pid)) then sh("kill -KILL " .. pid) end
    end
    H.rm_rf(srv.dir)
  end
  return with_methods(srv, opts.tls, "FTP session opened")
end

--- Starts pyftpdlib (has MLSD) with a writable temp root.  Returns a server
-- table like F.vsftpd's.
function F.pyftpd()
  local srv = {}
  srv.dir = H.tmpdir()
  srv.root = srv.dir
  srv.user, srv.password = "tester", "secret"
  srv.host = "127.0.0.1"
  srv.port = H.free_port("inet")
  -- its log (one line per command and transfer) lives outside the root
  srv.logdir = H.tmpdir()
  srv.log = srv.logdir .. "/pyftpd.log"
  srv.pid = H.spawn(("/usr/bin/python3 -m pyftpdlib -i 127.0.0.1 -p %d -w -d %s -u %s -P %s")
    :format(srv.port, H.shquote(srv.dir), srv.user, srv.password),
    {log = srv.log})
  H.wait_port(srv.host, srv.port, 15)
  function srv.stop()
    if srv.stopped then return end
    srv.stopped = true
    H.kill(srv.pid)
    H.rm_rf(srv.dir)
    H.rm_rf(srv.logdir)
  end
  function srv.path(p) return srv.root .. "/" .. p end
  function srv.opts(extra)
    local o = {host = srv.host, port = srv.port, user = srv.user,
      password = srv.password, timeout = 10}
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
  return srv
end

--- An FTP server of this process, as netlua tasks on a free loopback port
-- (call it inside netlua.run or before it): it greets (unless greet is
-- false), logs each of `clients` clients (default 1) in, and then, by
-- mode, never answers another command ("mute"), waits 5 s and drops the
-- connection ("stall") or drops it at once ("die").  Returns the port.
function F.task_server(mode, clients, greet)
  return (H.serve(clients or 1, function(c)
    c:settimeout(10)
    if greet ~= false then c:write("220 task server\r\n") end
    while true do
      local line = c:read("l")
      if not line then break end
      local verb = line:match("^(%u+)")
      if verb == "USER" then c:write("331 password\r\n")
      elseif verb == "PASS" then c:write("230 in\r\n")
      elseif verb == "PWD" then c:write('257 "/"\r\n')
      elseif mode == "stall" then netlua.sleep(5) break
      elseif mode == "die" then break end
    end
  end))
end

--- Random bytes of length n (all 256 values appear).
function F.random_bytes(n)
  local t, seed = {}, n
  for i = 1, n do
    -- seed * 1103515245 + 12345 modulo 2^31, in parts: the whole product
    -- would lose its low bits in a double (5.1, LuaJIT)
    seed = ((seed * 16838) % 32768 * 65536 + seed * 20077 + 12345) % 2147483648
    t[i] = string.char(math.floor(seed / 65536) % 256)
  end
  return table.concat(t)
end

F.monotime = netlua.monotime
return F
