-- examples/tour.lua: a walk through netlua against local servers.
--
-- Run it with `make demo` (which builds netlua, installs what is missing
-- and runs this inside a private network namespace, so the multicast part
-- cannot reach any real network).  Each part lives in its own file,
-- examples/tour_<part>.lua, and can be run on its own the same way.
local root = (arg and arg[0] or ""):match("^(.*)/examples/[^/]*$") or "."
package.path = table.concat({root .. "/lua/?.lua", root .. "/lua/?/init.lua",
  root .. "/spec/?.lua", package.path}, ";")
package.cpath = root .. "/" .. (os.getenv("NETLUA_BUILD") or "build") .. "/?.so;" .. package.cpath

local netlua = require "netlua"
print(("netlua %s tour\n"):format(netlua.version))

local parts = {"lookup", "tcp", "tasks", "multicast", "ftp", "telnet", "device"}
local failed = 0
for _, part in ipairs(parts) do
  local file = root .. "/examples/tour_" .. part .. ".lua"
  local f = io.open(file)
  if f then
    f:close()
    print(("== %s %s"):format(part, string.rep("=", 60 - #part)))
    local ok, err = pcall(dofile, file)
    if not ok then
      failed = failed + 1
      print("!! " .. part .. " part failed: " .. tostring(err))
    end
    print()
  end
end
if failed > 0 then os.exit(1) end
print("tour complete")
