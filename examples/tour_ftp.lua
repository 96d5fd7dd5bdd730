--- examples/tour_ftp.lua: a short walk through netlua.ftp against a
-- local vsftpd started for the occasion (and stopped again at the end).
-- Run on its own:
--   sh scripts/netns.sh env LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/tour_ftp.lua
local H = require "helper"
local F = require "ftp_helper"
local ftp = require "netlua.ftp"

print("== FTP: starting a private vsftpd on 127.0.0.1 ==")
local srv = F.vsftpd()
local work = H.tmpdir()

local ok, err = pcall(function()
  local s = assert(ftp.new{host = srv.host, port = srv.port, user = srv.user,
                           password = srv.password, timeout = 10})
  print("connected; the server says: " .. s:getwelcome())
  print("we start in " .. s:pwd())

  print("making a folder 'reports 2024' and going there")
  assert(s:mkd("reports 2024"))
  assert(s:cwd("reports 2024"))

  local text = "quarter,revenue\nQ1,100\nQ2,140\n"
  print("uploading summary.csv (" .. #text .. " bytes) and a 1 MiB binary file")
  assert(s:put(text, "summary.csv", {data = true}))
  local blob = F.random_bytes(1024 * 1024)
  local last = 0
  assert(s:put(blob, "data.bin", {data = true, progress = function(done, total)
    local pct = math.floor(done * 100 / total)
    if pct >= last + 50 then last = pct; print(("  upload %3d%%"):format(pct)) end
  end}))

  print("listing the folder:")
  for _, e in ipairs(assert(s:list())) do
    print(("  %-4s %9d  %s  %s"):format(e.type, e.size or 0,
      os.date("!%Y-%m-%d %H:%M", e.modify), e.name))
  end

  print("downloading both back and comparing")
  assert(s:get("summary.csv", work .. "/summary.csv"))
  assert(s:get("data.bin", work .. "/data.bin"))
  assert(H.read_file(work .. "/summary.csv") == text, "summary differs")
  assert(H.read_file(work .. "/data.bin") == blob, "data.bin differs")
  print("  identical, byte for byte")

  print("reading summary.csv line by line with retrlines:")
  s:retrlines("RETR summary.csv", function(line) print("  | " .. line) end)

  print("mirroring the folder with 4 parallel connections")
  local r = assert(s:mirror(".", work .. "/mirror", {parallel = 4}))
  print(("  fetched %d files, %d bytes"):format(r.files, r.bytes))
  r = assert(s:mirror(".", work .. "/mirror", {parallel = 4}))
  print(("  again: %d fetched, %d unchanged (sizes and times match)"):format(r.files, r.skipped))

  print("CR/LF in a command is refused before anything is sent:")
  print("  " .. select(2, pcall(s.sendcmd, s, "NOOP\r\nDELE summary.csv")))

  print("cleaning up on the server")
  assert(s:delete("summary.csv"))
  assert(s:delete("data.bin"))
  assert(s:cwd(".."))
  assert(s:rmd("reports 2024"))
  print("goodbye: " .. s:quit())
end)

H.rm_rf(work)
srv.stop()
print("vsftpd stopped, temporary files removed")
if not ok then error(err, 0) end
