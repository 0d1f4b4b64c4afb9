local async = require("async")
local t = require("testlib")

t.test("a handler task per connection (coroutines)", function(loop)
  local served = 0
  local srv = assert(loop:listen("127.0.0.1", 0, function(s)
    while true do
      local line = s:read_line():await()
      if not line then break end
      s:write(line:upper())
    end
    served = served + 1
    s:close()
  end))
  t.eq(srv:count() >= 1, true)
  t.ok(srv:sockname(1):find("127.0.0.1", 1, true))
  t.fails("ERANGE", srv:sockname(99))
  local clients = {}
  for i = 1, 3 do
    clients[i] = loop:spawn(function()
      local c = loop:connect("127.0.0.1", srv:port()):await()
      c:write("hi " .. i .. "\n")
      local r = c:read_line():await()
      c:close()
      return r
    end)
  end
  local all = loop:all(clients):await()
  t.eq(all[2], "HI 2\n")
  t.run_until(loop, function() return served == 3 end)
  t.eq(srv:connection_count(), 0)
  srv:close()
  loop:run()
end)

t.test("close_connections, counts, handler errors", function(loop, errors)
  local srv = assert(loop:listen("127.0.0.1", 0, function(s)
    s:read(1):await()
    error("handler failed")
  end))
  t.eq(type(srv:handler()), "function")
  local c = loop:connect("127.0.0.1", srv:port()):await()
  t.run_until(loop, function() return srv:connection_count() == 1 end)
  c:write("x")
  t.run_until(loop, function() return #errors == 1 end)
  t.ok(srv:close_connections(true))
  local rest = c:read_some():await()
  t.ok(rest == nil or rest == "", "reset or end of file")
  c:close()
  srv:close()
  loop:run()
end)

t.test("listen errors and bad input", function(loop)
  local srv = assert(loop:listen("127.0.0.1", 0, function() end))
  t.fails("EADDRINUSE", loop:listen("127.0.0.1", srv:port(), function() end))
  t.raises("port out of range", loop.listen, loop, "127.0.0.1", -1, function() end)
  t.raises("data_received and connection_lost", loop.listen, loop, "127.0.0.1", 0, {})
  t.fails("EINVAL", loop:listen("not an address", 0, function() end))
  srv:close()
  t.fails("ECLOSED", srv:port())
  loop:run()
  t.fails("ECLOSED", srv:count())
end)

t.test("listen_addrinfo from a lookup", function(loop)
  local f = loop:getaddrinfo("127.0.0.1", "0", { socktype = "stream", passive = true })
  t.ok(f:await())
  local ai = f:addrinfo()
  t.eq(ai:count(), 1)
  local srv = assert(loop:listen_addrinfo(ai, function(s) s:write("hey"); s:close() end, { backlog = 8 }))
  local c = loop:connect("127.0.0.1", srv:port()):await()
  t.eq(c:read(3):await(), "hey")
  c:close()
  srv:close()
  loop:run()
end)

t.test("a protocol-table server; a Lua error in the factory path", function(loop, errors)
  local got
  local srv = assert(loop:listen("127.0.0.1", 0, {
    connection_made = function(s) s:write("welcome") end,
    data_received = function(s, d) got = d; s:close() end,
    connection_lost = function() end,
  }, { reuseport = true }))
  local c = loop:connect("127.0.0.1", srv:port()):await()
  t.eq(c:read(7):await(), "welcome")
  c:write("bye")
  t.run_until(loop, function() return got == "bye" end)
  c:close()
  srv:close()
  loop:run()
end)

t.run()
