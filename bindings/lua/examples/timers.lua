-- Timers three ways: a callback timer, sleep in a coroutine, and a timeout
-- on a future that never completes.
local async = require("async")

local ticks = 0
local ticker = async.timer()
ticker:start(10, 10, function(self)
  ticks = ticks + 1
  print("tick " .. ticks)
  if ticks == 3 then self:close() end
end)

async.spawn(function()
  local start = async.now()
  async.sleep(25):await()
  print(string.format("slept at least 25 ms: %s", async.now() - start >= 25))
  local never = async.future()
  local _, msg = never:timeout(20):await()
  print("timeout: " .. msg)
end)

async.run()
