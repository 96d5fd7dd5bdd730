--- netlua.udp: plain UDP sockets (the object netlua.multicast builds on).
--
--     local udp = require "netlua.udp"
--     local s = assert(udp.socket{family = "inet", timeout = 2})
--     assert(s:bind("127.0.0.1", 0))
--     s:sendto("hello", "127.0.0.1", 9999)
--
-- Every method of a `netlua.udp` socket is described in doc/multicast.md;
-- the multicast constructors live in netlua.multicast.
-- @module netlua.udp
local multicast = require "netlua.multicast"

local M = {}

--- A new UDP socket; opts: `family` ("inet" | "inet6"), `timeout`.
-- @return socket, or nil, message, code
M.socket = multicast.socket

return M
