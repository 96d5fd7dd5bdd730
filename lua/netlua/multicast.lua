--- netlua.multicast (placeholder until this part lands).
local M = {}
return M
