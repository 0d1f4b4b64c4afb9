-- DNS lookups as futures, awaited from a task; all lookups run at once.
--   lua5.4 dns_lookup.lua [name ...]   (default: localhost ::1 127.0.0.1)
-- Names other than literals and localhost need a resolver (/etc/resolv.conf).
local async = require("async")

local names = #arg > 0 and arg or { "localhost", "::1", "127.0.0.1" }

async.spawn(function()
  local lookups = {}
  for i, name in ipairs(names) do
    lookups[i] = async.getaddrinfo(name, "80", { socktype = "stream" }):timeout(5000)
  end
  async.all(lookups):await() -- wait for every lookup, whatever its outcome
  for i, name in ipairs(names) do
    local list, err = lookups[i]:result()
    if list then
      for _, entry in ipairs(list) do
        print(string.format("%-12s %-6s %s (port %d)", name, entry.family, entry.ip, entry.port))
      end
    else
      print(string.format("%-12s failed: %s", name, err))
    end
  end
end)

async.run()
