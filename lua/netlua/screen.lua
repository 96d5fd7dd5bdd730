--- netlua.screen: device output as a terminal would show it.
--
-- Network devices and shells colour their output, move the cursor, erase
-- what they wrote (a pager's `--More--`, a redrawn command line) and
-- overstrike with backspaces.  `clean` turns such bytes into the text a
-- person would read on the screen: lines end in LF, colours and other
-- escape sequences are gone, and CR, backspace, erase-line and cursor
-- moves are applied within each line.  It does not model rows (cursor
-- moves up or down, scrolling regions): device CLIs only use them to
-- redraw the line they are on.  Used by netlua.telnet's `cmd`; the read
-- methods stay byte-exact.
-- @module netlua.screen
local M = {}

local byte, char, concat = string.byte, string.char, table.concat

-- the CSI finals applied to the line; every other CSI (colours, modes)
-- has no effect on the text and is dropped
local KEEP = {K = true, J = true, D = true, C = true, G = true, H = true, f = true}

local function num(p, i, dflt)
  local n = 0
  for v in (p .. ";"):gmatch("([^;]*);") do
    n = n + 1
    if n == i then return tonumber(v) or dflt end
  end
  return dflt
end

-- Applies CR, BS and the kept CSI sequences to one line (no LF in it).
-- Trailing blanks left by erasing are trimmed; a line that was never
-- moved back over keeps its bytes as they were.
local function emulate(line)
  local cells, col, i, n = {}, 1, 1, #line
  while i <= n do
    local s, e = line:find("[\r\b\27]", i)
    local stop = s and s - 1 or n
    for k = i, stop do  -- text: one cell per character (UTF-8 aware)
      local b = byte(line, k)
      if b >= 0x80 and b < 0xC0 and col > 1 and cells[col - 1] then
        cells[col - 1] = cells[col - 1] .. char(b)
      else
        for g = #cells + 1, col - 1 do cells[g] = " " end
        cells[col] = char(b)
        col = col + 1
      end
    end
    if not s then break end
    local c = line:sub(s, s)
    i = e + 1
    if c == "\r" then
      col = 1
    elseif c == "\b" then
      if col > 1 then col = col - 1 end
    else
      local p, f, e2 = line:match("^%[([%d;]*)(%a)()", s + 1)
      if not p then  -- a lone ESC: drop it
        i = s + 1
      else
        i = e2
        if f == "K" or f == "J" then
          local m = num(p, 1, 0)
          if m == 0 then
            for g = #cells, col, -1 do cells[g] = nil end
          elseif m == 1 then
            for g = 1, math.min(col, #cells) do cells[g] = " " end
          else
            for g = 1, #cells do cells[g] = " " end
          end
        elseif f == "D" then
          col = math.max(1, col - math.max(1, num(p, 1, 1)))
        elseif f == "C" then
          col = col + math.max(1, num(p, 1, 1))
        elseif f == "G" then
          col = math.max(1, num(p, 1, 1))
        else  -- H, f: row;col, the row is ignored
          col = math.max(1, num(p, 2, 1))
        end
      end
    end
  end
  return (concat(cells):gsub(" +$", ""))
end

--- The text a terminal would show for `bytes`: CR LF and bare LF end
-- lines (as LF), NUL is dropped, escape sequences (colours, modes,
-- titles, character sets) are removed, and CR, backspace, erase-line and
-- cursor moves are applied within each line (`"abc\b\bX"` -> `"aXc"`,
-- `"--More--\r\27[K next"` -> `" next"`).
-- @usage screen.clean("\27[1;32mR1\27[0m uptime\r\n")  --> "R1 uptime\n"
function M.clean(bytes)
  if type(bytes) ~= "string" then
    error("bad argument #1 to 'clean' (string expected, got " .. type(bytes) .. ")", 2)
  end
  local s = bytes:gsub("\r+\n", "\n")
  if s:find("\0", 1, true) then s = s:gsub("%z", "") end
  if not s:find("[\r\b\27\155]") then return s end
  s = s:gsub("\155", "\27[")                         -- 8-bit CSI
    :gsub("\27%][^\7\27]*\7", "")                    -- OSC ... BEL (window titles)
    :gsub("\27%][^\7\27]*\27\\", "")                 -- OSC ... ST
    :gsub("\27[P_%^][^\27]*\27\\", "")               -- DCS, APC, PM
    :gsub("\27%[([%d;?<=>]*)[ -/]*([@-~])", function(p, f)
      if KEEP[f] and not p:find("[?<=>]") then return nil end  -- kept for emulate
      return ""
    end)
    :gsub("\27[%(%)%*%+%-%./#%%].", "")             -- character sets, DEC line modes
    :gsub("\27[ -Z\\-~]", "")                         -- ESC 7, ESC =, ESC M, ... (not ESC [)
  if not s:find("[\r\b\27]") then return s end
  return (s:gsub("[^\n]*[\r\b\27][^\n]*", emulate))
end

return M
