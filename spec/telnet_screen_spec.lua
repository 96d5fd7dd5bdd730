-- netlua.screen.clean (telnet.clean): device bytes as a terminal shows them.
local telnet = require "netlua.telnet"
local screen = require "netlua.screen"

describe("screen.clean", function()
  local clean = screen.clean

  it("is telnet.clean", function()
    assert.equal(clean, telnet.clean)
  end)

  it("ends lines in LF and drops NUL, leaving plain text alone", function()
    assert.equal("a\nb\nc\n", clean("a\r\nb\nc\r\r\n"))
    assert.equal("x\255y\n", clean("x\255y\0\r\n"))
    assert.equal("  indented  \n", clean("  indented  \r\n"))
  end)

  it("removes colours, modes, titles and character sets", function()
    assert.equal("R1 uptime\n", clean("\27[1;32mR1\27[0m uptime\r\n"))
    assert.equal("up", clean("\155" .. "32mup\155" .. "0m"))               -- 8-bit CSI
    assert.equal("dev1:~# ", clean("\27]0;dev1: ~\7dev1:~# "))              -- OSC ... BEL
    assert.equal("t", clean("\27]2;title\27\\t"))                           -- OSC ... ST
    assert.equal("ok", clean("\27[?25l\27(Bo\27=k\27[?25h"))
  end)

  it("applies backspaces: overstrike and erase", function()
    assert.equal("aXc", clean("abc\b\bX"))
    assert.equal("hello", clean("h\bhe\bel\bll\blo\bo"))
    assert.equal("show", clean("shwo\b\b\bhow"))
    assert.equal("ab", clean("abc\b \b"))       -- trailing blank of an edited line trimmed
    assert.equal("é!", clean("é?\b!"))           -- a UTF-8 character is one cell
  end)

  it("applies CR, erase-line and cursor moves within a line", function()
    assert.equal("R1#show version\n", clean("show version\rR1#show version\r\n"))
    assert.equal(" next\n", clean("--More--\r\27[K next\r\n"))
    assert.equal("ab\n", clean("--More--\27[8D\27[Kab\r\n"))
    assert.equal("new\n", clean("old text\r\27[2Knew\r\n"))
    assert.equal("    xy", clean("abcd\27[1Kxy"))  -- erase to the start, cursor stays
    assert.equal("aXc", clean("abc\27[2GX"))
    assert.equal("aXc", clean("abc\27[24;2HX"))    -- the row is ignored
    assert.equal("a  b", clean("a\27[2Cb"))
  end)

  it("keeps a lone ESC out of the text", function()
    assert.equal("a", clean("a\27"))
    assert.equal("ab", clean("a\27\rab"))
  end)

  it("raises on a non-string", function()
    assert.has_error(function() clean(5) end, "bad argument #1 to 'clean' (string expected, got number)")
  end)
end)
