-- A chat server with coroutines: every client's task reads lines and
-- broadcasts them to the others. Three scripted clients chat, then leave.
--   lua5.4 chat_server.lua [port]
local async = require("async")

local clients = {}

local server = assert(async.listen("127.0.0.1", tonumber(arg[1]) or 0, function(stream)
  local name = stream:read_line():await()
  if not name then return stream:close() end
  name = name:gsub("\n$", "")
  clients[stream] = name
  for other in pairs(clients) do
    if other ~= stream then other:write(name .. " joined\n") end
  end
  while true do
    local line = stream:read_line():await()
    if not line or line == "/quit\n" then break end
    for other in pairs(clients) do
      if other ~= stream then other:write(name .. ": " .. line) end
    end
  end
  clients[stream] = nil
  stream:close()
end))
print("chat server on port " .. server:port())

-- A scripted client: joins, says its lines, prints what it hears.
local function client(name, lines, hear)
  return async.spawn(function()
    local conn = assert(async.connect("127.0.0.1", server:port()):await())
    conn:write(name .. "\n")
    async.sleep(20):await() -- let everyone join
    for _, line in ipairs(lines) do
      conn:write(line .. "\n")
      async.sleep(5):await()
    end
    for _ = 1, hear do
      io.write("[" .. name .. "] ", conn:read_line():await())
    end
    conn:write("/quit\n")
    conn:close()
  end)
end

async.spawn(function()
  local done = async.all({
    client("ada", { "hello all" }, 2),
    client("bob", { "hi ada" }, 2),
    client("cy", {}, 2),
  })
  done:await()
  server:close()
end)

async.run()
