local async = require("async")
local t = require("testlib")

t.test("keeps a connection up: reconnects after the server drops it", function(loop)
  local accepted = 0
  local srv = assert(loop:listen("127.0.0.1", 0, {
    connection_made = function(s) accepted = accepted + 1; if accepted == 1 then s:close() end end,
    data_received = function() end,
    connection_lost = function() end,
  }))
  local made, lost, stopped = 0, 0, nil
  local rc = assert(loop:reconnector("127.0.0.1", srv:port(), {
    connection_made = function(s) made = made + 1 end,
    data_received = function() end,
    connection_lost = function() lost = lost + 1 end,
  }, { initial_delay = 1, jitter = -1, stopped = function(r, err) stopped = err or "clean" end }))
  t.ok(rc:state() == "connecting")
  t.run_until(loop, function() return made == 2 end)
  t.eq(rc:state(), "connected")
  local s = rc:stream()
  t.eq(getmetatable(s).__name, "async.stream")
  t.ok(s:write("hi"))
  t.ok(rc:reconnect())
  t.run_until(loop, function() return made == 3 end)
  t.ok(rc:stop())
  loop:run_until(loop:sleep(5))
  t.eq(stopped, "clean")
  t.fails("ECLOSED", rc:state())
  srv:close()
  loop:run()
end)

t.test("gives up after max_attempts; connect_failed each time", function(loop)
  local port = t.free_port(loop)
  local failures, stopped = {}, nil
  local rc = assert(loop:reconnector("127.0.0.1", port, {
    data_received = function() end, connection_lost = function() end,
  }, {
    initial_delay = 1, max_delay = 2, multiplier = 1.5, jitter = -1, max_attempts = 3,
    connect = { timeout = 1000 },
    connect_failed = function(r, msg, name, n, retry) failures[#failures + 1] = name end,
    stopped = function(r, msg, name) stopped = name end,
  }))
  loop:run()
  t.eq(#failures, 3)
  t.eq(failures[1], "ECONNREFUSED")
  t.eq(stopped, "ECONNREFUSED")
  t.fails("ECLOSED", rc:stop())
end)

t.test("bad input; errors in callbacks", function(loop, errors)
  t.raises("table expected", loop.reconnector, loop, "127.0.0.1", 1, nil)
  t.raises("port out of range", loop.reconnector, loop, "127.0.0.1", 1e6, {})
  t.fails("EINVAL", loop:reconnector("127.0.0.1", 1, { data_received = function() end,
    connection_lost = function() end }, { multiplier = 0.5 }))
  local port = t.free_port(loop)
  local rc = loop:reconnector("127.0.0.1", port, { data_received = function() end,
    connection_lost = function() end }, { max_attempts = 1, jitter = -1,
    connect_failed = function() error("in failed") end, stopped = function() error("in stopped") end })
  loop:run()
  t.eq(#errors, 2)
end)

t.run()
