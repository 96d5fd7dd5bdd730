-- dns_slow.lua DELAY: a DNS server on 127.0.0.1:53 (run it only inside a
-- private network namespace, where that port is free and reaches
-- nothing else) that answers every A query with 127.0.0.1, every PTR
-- query with "slowhost.netlua.test" and any other query with no records,
-- DELAY seconds late; DELAY "never" keeps quiet.  It is the slow or dead resolver a name lookup must not let
-- block other tasks or outlast its timeout.
local netlua = require "netlua"
local udp = require "netlua.udp"
local H = require "helper"

-- string.pack and string.unpack are 5.3+; spec/helper.lua has a stand-in
local pack, unpack = string.pack or H.pack, string.unpack or H.unpack

-- port 53 and the datagrams it sends belong to the private namespace only
assert(os.getenv("NETLUA_NETNS") == "1", "run me through scripts/netns.sh (make test)")

local delay = arg[1] == "never" and math.huge or assert(tonumber(arg[1]), "DELAY")
local s = assert(udp.socket())
assert(s:bind("127.0.0.1", 53))
s:settimeout(nil)

-- The question ends after its labels (a zero length byte) and 4 bytes of
-- type and class.
local function question_end(q)
  local i = 13
  while true do
    local n = q:byte(i)
    if not n then return nil end
    if n == 0 then return i + 4 end
    i = i + 1 + n
  end
end

local function answer(q)
  local qend = question_end(q)
  if not qend or #q < qend then return nil end
  local qtype = unpack(">I2", q, qend - 3)
  local rdata
  if qtype == 1 then
    rdata = "\127\0\0\1"
  elseif qtype == 12 then
    rdata = "\8slowhost\6netlua\4test\0"
  end
  local head = q:sub(1, 2) .. pack(">I2I2I2I2I2", 0x8180, 1, rdata and 1 or 0, 0, 0)
  local rr = rdata and pack(">I2I2I2I4s2", 0xC00C, qtype, 1, 60, rdata) or ""
  return head .. q:sub(13, qend) .. rr
end

print("ready") io.stdout:flush()
netlua.run(function()
  while true do
    local q, ip, port = s:receivefrom()
    if q and delay < math.huge then
      local r = answer(q)
      if r then
        netlua.spawn(function()
          netlua.sleep(delay)
          s:sendto(r, ip, port)
        end)
      end
    end
  end
end)
