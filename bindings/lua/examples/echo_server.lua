-- An echo server written with coroutines: one task per connection reads a
-- line and writes it back. A client task talks to it, then everything stops.
--   lua5.4 echo_server.lua [port]     (port 0, the default, picks a free one)
local async = require("async")

local server = assert(async.listen("127.0.0.1", tonumber(arg[1]) or 0, function(stream)
  while true do
    local line = stream:read_line():await()
    if not line or line == "" then break end -- end of file or error
    stream:write(line)
  end
  stream:close()
end))
print("echo server on port " .. server:port())

async.spawn(function()
  local conn = assert(async.connect("127.0.0.1", server:port()):await())
  for _, word in ipairs({ "hello", "from", "a coroutine" }) do
    conn:write(word .. "\n")
    io.write("echoed: ", conn:read_line():await())
  end
  conn:close()
  server:close()
end)

async.run()
