-- tour_tasks.lua: many conversations at once from one script.  A server
-- task answers each line after 0.2 s; five client tasks look "localhost"
-- up, connect, ask and wait, all at the same time; join collects what
-- each one got, and an event tells the server it can stop.
local netlua = require "netlua"
local tcp = require "netlua.tcp"

local DELAY, CLIENTS = 0.2, 5

local t0 = netlua.monotime()
assert(netlua.run(function()
  local server = assert(tcp.listen("127.0.0.1", 0))
  local _, port = server:getsockname()
  local stop = netlua.event()

  netlua.spawn(function()
    while not stop:is_set() do
      local c = server:accept(0.1)
      if c then
        netlua.spawn(function()
          local line = c:read("l")
          netlua.sleep(DELAY)          -- a slow device
          if line then c:write(line:upper(), "\n") end
          c:close()
        end)
      end
    end
    server:close()
  end)

  local clients = {}
  for i = 1, CLIENTS do
    clients[i] = netlua.spawn(function()
      -- the name lookup, the connect and the reads all yield
      local s = assert(tcp.connect("localhost", port, {timeout = 5, family = "inet"}))
      s:write("hello from client ", i, "\n")
      local answer = assert(s:read("l"))
      s:close()
      return answer
    end)
  end
  for i, co in ipairs(clients) do
    local ok, answer = netlua.join(co, 5)
    print(("client %d: %s"):format(i, ok and answer or "failed"))
  end
  print(("%d conversations, each answered after %.1f s: %.2f s in all"):format(
    CLIENTS, DELAY, netlua.monotime() - t0))
  stop:set()
end))
