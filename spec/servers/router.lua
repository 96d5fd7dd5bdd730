-- router.lua PORT DELAY [MODE] - many router-like Telnet logins at once.
--
-- Serves every connection concurrently (it runs on netlua.run itself):
-- asks "login: " and "Password: ", then offers a "rN> " prompt where N is
-- the connection's number; each answer comes DELAY seconds after the
-- request.  Commands: "hostname" -> "rN", "echo X" -> "X", "show version"
-- -> two lines, "exit" closes.  The password is "pw"; anything else gets
-- "Login incorrect".  MODE "die" closes every connection after the first
-- command; MODE "stall" stops answering after the login.  Prints "ready".
local netlua = require "netlua"
local tcp = require "netlua.tcp"

local port, delay, mode = tonumber(arg[1]), tonumber(arg[2]) or 0, arg[3] or "ok"
local srv = assert(tcp.listen("127.0.0.1", port, {backlog = 1024}))
local count = 0

local function answer(c, text)
  if delay > 0 then netlua.sleep(delay) end
  return c:write(text)
end

local function session(c, n)
  c:settimeout(60)
  if not answer(c, "\r\nrouter login: ") then return end
  local user = c:read("l")
  if not user then return end
  answer(c, "Password: ")
  local pw = c:read("l")
  if not pw then return end
  if pw:gsub("\r$", "") ~= "pw" then
    answer(c, "\r\nLogin incorrect\r\n")
    return
  end
  local prompt = ("r%d> "):format(n)
  answer(c, "\r\nWelcome " .. user:gsub("\r$", "") .. "\r\n" .. prompt)
  if mode == "stall" then netlua.sleep(60) return end
  while true do
    local line = c:read("l")
    if not line then return end
    line = line:gsub("\r$", "")
    if line == "exit" then return end
    local out
    if line == "hostname" then out = ("r%d\r\n"):format(n)
    elseif line:match("^echo ") then out = line:sub(6) .. "\r\n"
    elseif line == "show version" then out = "Version 1.2.3\r\nUptime 5 days\r\n"
    else out = "% unknown command\r\n" end
    if mode == "die" then return end
    answer(c, line .. "\r\n" .. out .. prompt)
  end
end

netlua.spawn(function()
  print("ready")
  io.stdout:flush()
  while true do
    local c = srv:accept()
    if c then
      count = count + 1
      local n = count
      netlua.spawn(function() session(c, n) c:close() end)
    end
  end
end)
netlua.run()
