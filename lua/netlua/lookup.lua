--- netlua.lookup (placeholder until this part lands).
local M = {}
return M
