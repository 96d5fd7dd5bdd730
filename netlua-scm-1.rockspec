rockspec_format = "3.0"
package = "netlua"
version = "scm-1"
source = {
  -- where the project is to be published; until then `make rock` packs
  -- the local tree (see README, Installing)
  url = "git+https://github.com/netlua/netlua",
}
description = {
  summary = "Multicast sockets, name lookup, FTP/FTPS (libcurl), Telnet and SSH (libssh) for Lua 5.1-5.4 and LuaJIT",
  detailed = [[
netlua gives Lua scripts what Python has in socket, ftplib and telnetlib:
IPv4/IPv6 multicast (any-source and source-specific), getaddrinfo and
friends, TCP sockets with io-style reads and makefile(), an FTP/FTPS client
built on libcurl, a Telnet client with its own RFC 1143 protocol engine,
and SSH (remote commands, shells with the Telnet session's device helpers)
built on libssh.
]],
  license = "MIT",
  labels = { "network", "multicast", "ftp", "telnet", "ssh", "socket" },
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  -- library only: Debian keeps curl.h in a multiarch include dir that
  -- luarocks does not search, while the compiler finds it by itself
  CURL = { library = "curl" },
  -- libssh 0.10 or later (Debian libssh-dev): rsa-sha2 signatures that
  -- OpenSSH 8.8+ requires, known_hosts, non-blocking mode
  LIBSSH = { library = "ssh" },
}
build = {
  type = "make",
  build_target = "all",
  install_target = "install",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA = "$(LUA)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CURL_INCDIR = "$(CURL_INCDIR)",
    CURL_LIBDIR = "$(CURL_LIBDIR)",
    SSH_INCDIR = "$(LIBSSH_INCDIR)",
    SSH_LIBDIR = "$(LIBSSH_LIBDIR)",
  },
  install_variables = {
    LUA = "$(LUA)",
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    CURL_INCDIR = "$(CURL_INCDIR)",
    CURL_LIBDIR = "$(CURL_LIBDIR)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
}
