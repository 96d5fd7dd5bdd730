--- netlua.ftp (placeholder until this part lands).
local M = {}
return M
