-- The Telnet protocol engine on its own (no socket): exact data, replies
-- and events for every case DESIGN.md lists, at every chunk boundary.
local telnet = require "netlua.telnet"

local function b(...) return string.char(...) end
local IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240

-- feeds a list of chunks; returns all data, all replies, all events
local function feed(e, chunks)
  local data, replies, events = {}, {}, {}
  for _, c in ipairs(chunks) do
    local d, r, ev = e:feed(c)
    data[#data + 1], replies[#replies + 1] = d, r
    for _, x in ipairs(ev) do events[#events + 1] = x end
  end
  return table.concat(data), table.concat(replies), events
end

local function kinds(events, kind)
  local out = {}
  for _, ev in ipairs(events) do if ev.kind == kind then out[#out + 1] = ev end end
  return out
end

-- every hostile case in one stream
local HOSTILE = table.concat {
  "start\r\n",
  b(IAC, DO, 24), b(IAC, WILL, 1), b(IAC, WILL, 3),           -- TTYPE, ECHO, SGA
  "a", b(IAC, IAC), "b", b(IAC, IAC, IAC, IAC),                  -- escaped 0xFF
  b(IAC, SB, 24, 1, IAC, SE),                                    -- TTYPE SEND
  b(IAC, SB, 24, 1, 0xff, 7, IAC, IAC, IAC, SE),                 -- 0xFF in SB
  b(IAC, SB, 86), ("z"):rep(5000), b(IAC, SE),                   -- over-long SB
  b(IAC, SB, 86, IAC, SE), "compressed?",                        -- uninvited COMPRESS2
  b(IAC, WILL, 86), b(IAC, WILL, 86), b(IAC, DO, 86), b(IAC, DO, 86),
  b(IAC, 241, IAC, 249, IAC, 246, IAC, 242, IAC, 243, IAC, 244, IAC, 239, IAC, 7),
  "bare\r", b(0), "cr\r\nend", b(IAC),                            -- CR NUL, lone IAC
}
local HOSTILE_DATA = "start\r\na\255b\255\255compressed?bare\rcr\r\nend"

describe("telnet engine", function()
  it("passes plain data and keeps CR LF, turns CR NUL into CR", function()
    local e = telnet.engine()
    local d, r = feed(e, {"hello\r\nworld\r", b(0), "x\r", "\n"})
    assert.equal("hello\r\nworld\rx\r\n", d)
    assert.equal("", r)
  end)

  it("keeps DC1 and a NUL that does not follow CR (unlike telnetlib)", function()
    local e = telnet.engine()
    assert.equal("a\17b\0c\r\0", (feed(e, {"a\17b\0c\r\0\0"})))
    assert.equal("\r", (feed(e, {"\r" .. b(IAC, 241), "\0"})))
  end)

  it("turns IAC IAC into one 0xFF, also split across chunks", function()
    local e = telnet.engine()
    assert.equal("a\255b\255", (feed(e, {"a" .. b(IAC), b(IAC) .. "b" .. b(IAC), b(IAC)})))
  end)

  it("delivers the same bytes and replies whatever the chunking", function()
    local whole_d, whole_r, whole_ev = feed(telnet.engine({terminal = "XTERM"}), {HOSTILE})
    assert.equal(HOSTILE_DATA, whole_d)
    assert.equal(b(IAC, WILL, 24, IAC, DO, 1, IAC, DO, 3)
      .. b(IAC, SB, 24, 0) .. "XTERM" .. b(IAC, SE)
      .. b(IAC, SB, 24, 0) .. "XTERM" .. b(IAC, SE)
      .. b(IAC, DONT, 86, IAC, WONT, 86), whole_r)
    assert.equal(1, #kinds(whole_ev, "overflow"))
    assert.equal(5000, kinds(whole_ev, "overflow")[1].len)
    -- one byte at a time
    local chunks = {}
    for i = 1, #HOSTILE do chunks[i] = HOSTILE:sub(i, i) end
    local d, r = feed(telnet.engine({terminal = "XTERM"}), chunks)
    assert.equal(whole_d, d)
    assert.equal(whole_r, r)
    -- every two-way split point
    for i = 1, #HOSTILE - 1, 7 do
      local d2, r2 = feed(telnet.engine({terminal = "XTERM"}), {HOSTILE:sub(1, i), HOSTILE:sub(i + 1)})
      assert.equal(whole_d, d2, "split at " .. i)
      assert.equal(whole_r, r2, "split at " .. i)
    end
  end)

  it("reports NOP/GA/AYT/DM/BRK/IP/EOR and unknown commands, answers none", function()
    local d, r, ev = feed(telnet.engine(), {b(IAC, 241, IAC, 249, IAC, 246, IAC, 242, IAC, 243, IAC, 244, IAC, 239, IAC, 7) .. "x"})
    assert.equal("x", d)
    assert.equal("", r)
    local cmds = {}
    for _, x in ipairs(kinds(ev, "command")) do cmds[#cmds + 1] = x.cmd end
    assert.same({241, 249, 246, 242, 243, 244, 239, 7}, cmds)
  end)

  it("holds a lone IAC at the end of input without leaking it", function()
    local e = telnet.engine()
    assert.equal("end", (e:feed("end" .. b(IAC))))
    assert.equal("\255", (e:feed(b(IAC))))
  end)

  it("refuses an unknown option once, however often it is asked (RFC 1143)", function()
    local e = telnet.engine()
    local stream = (b(IAC, DO, 86) .. b(IAC, WILL, 86)):rep(1000)
    local d, r = feed(e, {stream})
    assert.equal("", d)
    assert.equal(b(IAC, WONT, 86, IAC, DONT, 86), r)
    assert.same({"no", "no"}, {e:option(86)})
  end)

  it("answers accepted options once and tracks their state", function()
    local e = telnet.engine()
    local _, r = feed(e, {b(IAC, WILL, 1, IAC, WILL, 1, IAC, WILL, 3, IAC, DO, 1)})
    assert.equal(b(IAC, DO, 1, IAC, DO, 3, IAC, WONT, 1), r)
    assert.same({"no", "yes"}, {e:option("ECHO")})
    _, r = feed(e, {b(IAC, WONT, 1)})
    assert.equal(b(IAC, DONT, 1), r)
    assert.same({"no", "no"}, {e:option(1)})
  end)

  it("follows the Q method for our own requests", function()
    local e = telnet.engine()
    local sent, r = e:request("do", "ECHO")
    assert.is_true(sent)
    assert.equal(b(IAC, DO, 1), r)
    assert.same({"no", "wantyes"}, {e:option(1)})
    assert.is_false((e:request("do", 1)))          -- already asked
    local _, r2 = e:feed(b(IAC, WILL, 1))
    assert.equal("", r2)                             -- the answer: no reply
    assert.same({"no", "yes"}, {e:option(1)})
    local _, r3 = e:request("dont", 1)
    assert.equal(b(IAC, DONT, 1), r3)
    assert.same({"no", "wantno"}, {e:option(1)})
    local _, r4 = e:feed(b(IAC, WONT, 1))
    assert.equal("", r4)
    assert.same({"no", "no"}, {e:option(1)})
    -- the peer refuses what we ask: no reply, back to no
    e:request("will", "NAWS")
    local _, r5 = e:feed(b(IAC, DONT, 31))
    assert.equal("", r5)
    assert.same({"no", "no"}, {e:option(31)})
  end)

  it("cycles through the terminal list on repeated TTYPE SEND", function()
    local e = telnet.engine({terminal = {"XTERM", "VT100"}})
    local send = b(IAC, SB, 24, 1, IAC, SE)
    local _, r = feed(e, {b(IAC, DO, 24), send, send, send, send})
    local function is(t) return b(IAC, SB, 24, 0) .. t .. b(IAC, SE) end
    assert.equal(b(IAC, WILL, 24) .. is("XTERM") .. is("VT100") .. is("VT100") .. is("XTERM"), r)
  end)

  it("refuses TTYPE and does not answer SEND without a terminal", function()
    local _, r = feed(telnet.engine(), {b(IAC, DO, 24, IAC, SB, 24, 1, IAC, SE)})
    assert.equal(b(IAC, WONT, 24), r)
  end)

  it("sends NAWS when asked and on set_window, doubling 255", function()
    local e = telnet.engine({window = {80, 24}})
    local _, r = feed(e, {b(IAC, DO, 31)})
    assert.equal(b(IAC, WILL, 31, IAC, SB, 31, 0, 80, 0, 24, IAC, SE), r)
    local r2 = e:set_window(255, 300)
    assert.equal(b(IAC, SB, 31, 0, 255, 255, 1, 44, IAC, SE), r2)
  end)

  it("answers NEW-ENVIRON SEND with the variables asked for", function()
    local e = telnet.engine({env = {USER = "bob", FOO = "x\1y"}})
    local _, r = feed(e, {b(IAC, DO, 39)})
    assert.equal(b(IAC, WILL, 39), r)
    _, r = feed(e, {b(IAC, SB, 39, 1, 0) .. "USER" .. b(IAC, SE)})
    assert.equal(b(IAC, SB, 39, 0, 0) .. "USER" .. b(1) .. "bob" .. b(IAC, SE), r)
    _, r = feed(e, {b(IAC, SB, 39, 1, 3) .. "FOO" .. b(IAC, SE)})
    assert.equal(b(IAC, SB, 39, 0, 3) .. "FOO" .. b(1) .. "x" .. b(2, 1) .. "y" .. b(IAC, SE), r)
    _, r = feed(e, {b(IAC, SB, 39, 1, 0) .. "NOPE" .. b(IAC, SE)})
    assert.equal(b(IAC, SB, 39, 0, IAC, SE), r)
  end)

  it("drops an over-long SB up to IAC SE and keeps the data after it", function()
    local d, r, ev = feed(telnet.engine(), {b(IAC, SB, 24) .. ("\255\1"):rep(3000) .. b(IAC, SE) .. "after"})
    assert.equal("after", d)
    assert.equal("", r)
    assert.equal(6000, kinds(ev, "overflow")[1].len)
    assert.equal(0, #kinds(ev, "subnegotiation"))
  end)

  it("keeps a stray 0xFF inside SB as SB data", function()
    local d, _, ev = feed(telnet.engine(), {b(IAC, SB, 24, 1, 255, 5, IAC, IAC, IAC, SE) .. "x"})
    assert.equal("x", d)
    assert.equal(b(1, 255, 5, 255), kinds(ev, "subnegotiation")[1].data)
  end)

  it("ends an SB cut by a command and lets the command through", function()
    local d, r, ev = feed(telnet.engine(), {b(IAC, SB, 31, 1, 2, IAC, WILL, 1) .. "data"})
    assert.equal("data", d)
    assert.equal(b(IAC, DO, 1), r)
    assert.equal(1, #kinds(ev, "aborted"))
  end)

  it("ignores an uninvited COMPRESS2 and never inflates", function()
    local d, r = feed(telnet.engine(), {b(IAC, SB, 86, IAC, SE) .. "x\156\1plain text"})
    assert.equal("x\156\1plain text", d)
    assert.equal("", r)
  end)

  it("keeps NUL and CR untouched when the peer sends BINARY", function()
    local e = telnet.engine()
    local d, r = feed(e, {b(IAC, WILL, 0) .. "a\r" .. b(0, 17) .. "\r\n"})
    assert.equal(b(IAC, DO, 0), r)
    assert.equal("a\r" .. b(0, 17) .. "\r\n", d)
  end)

  it("escapes IAC and bare CR on output, not in binary mode", function()
    local e = telnet.engine()
    assert.equal("a\r\0b\255\255c\r\n", e:escape("a\rb\255c\r\n"))
    assert.equal("x\r\0", e:escape("x\r"))
    feed(e, {b(IAC, DO, 0)})
    assert.same({"yes", "no"}, {e:option("BINARY")})
    assert.equal("a\rb\255\255\0", e:escape("a\rb\255\0"))
  end)

  it("answers nothing in manual mode but reports negotiation", function()
    local e = telnet.engine({manual = true})
    local _, r, ev = feed(e, {b(IAC, DO, 24, IAC, WILL, 1)})
    assert.equal("", r)
    local neg = kinds(ev, "negotiation")
    assert.equal(2, #neg)
    assert.same({DO, 24}, {neg[1].cmd, neg[1].opt})
  end)

  it("rejects bad arguments", function()
    assert.has_error(function() telnet.engine("x") end)
    assert.has_error(function() telnet.engine({terminal = "a\0b"}) end)
    assert.has_error(function() telnet.engine({terminal = 5}) end)
    assert.has_error(function() telnet.engine({window = {0, 24}}) end)
    assert.has_error(function() telnet.engine({window = "80x24"}) end)
    assert.has_error(function() telnet.engine({env = {USER = 5}}) end)
    assert.has_error(function() telnet.engine({env = {X = ("y"):rep(5000)}}) end)
    local e = telnet.engine()
    assert.has_error(function() e:feed(nil) end)
    assert.has_error(function() e:option(256) end)
    assert.has_error(function() e:option("NOSUCH") end)
    assert.has_error(function() e:request("maybe", 1) end)
    assert.has_error(function() e:set_window(1, 0) end)
  end)
end)
