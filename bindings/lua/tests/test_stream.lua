local async = require("async")
local t = require("testlib")

-- An echo server with a protocol table; returns the server.
local function echo_server(loop)
  return assert(loop:listen("127.0.0.1", 0, {
    data_received = function(s, data) s:write(data) end,
    connection_lost = function() end,
  }))
end

t.test("protocol table: every callback, in order", function(loop)
  local srv = echo_server(loop)
  local events = {}
  local f = loop:connect("127.0.0.1", srv:port(), {
    connection_made = function(s) events[#events + 1] = "made"; s:write("hello") end,
    data_received = function(s, data)
      events[#events + 1] = "data:" .. data
      s:close()
    end,
    connection_lost = function(s, err) events[#events + 1] = "lost:" .. tostring(err) end,
  })
  local s = f:await()
  t.eq(getmetatable(s).__name, "async.stream")
  loop:run_until(loop:sleep(1)) -- let the data arrive
  t.run_until(loop, function() return #events >= 3 end)
  t.eq(table.concat(events, ","), "made,data:hello,lost:nil")
  t.fails("ECLOSED", s:write("late"))
  srv:close()
  loop:run()
end)

t.test("data_received returning a count keeps the rest; deliver_each", function(loop)
  local srv = echo_server(loop)
  local chunks = {}
  local proto = {
    deliver_each = true,
    connection_made = function(s) s:write("aaabbbccc") end,
    data_received = function(s, data)
      if #data < 3 then return 0 end
      chunks[#chunks + 1] = data:sub(1, 3)
      if #chunks == 3 then s:close() end
      return 3
    end,
    connection_lost = function() end,
  }
  local f = loop:connect("127.0.0.1", srv:port(), proto) -- dropping the future would cancel the connect
  t.run_until(loop, function() return #chunks == 3 end)
  t.eq(f:state(), "done")
  t.eq(table.concat(chunks, ","), "aaa,bbb,ccc")
  srv:close()
  loop:run()
end)

t.test("stream queries and settings", function(loop)
  local srv = echo_server(loop)
  local s = loop:connect("localhost", srv:port()):await()
  t.ok(s:fd() >= 0)
  t.eq(s:loop(), loop)
  t.ok(s:sockname():find("127.0.0.1", 1, true) or s:sockname():find("::1", 1, true))
  t.ok(s:peername():find(tostring(srv:port()), 1, true))
  t.ok(s:set_nodelay(true))
  t.ok(s:set_keepalive(true, 30))
  t.ok(s:set_write_limits(1000, 100))
  local h, l = s:get_write_limits()
  t.eq(h, 1000); t.eq(l, 100)
  t.eq(s:write_buffer_size(), 0)
  t.ok(s:set_read_limit(4096))
  t.ok(s:set_idle_timeout(0))
  t.ok(s:pause_reading())
  t.eq(s:is_reading(), false)
  t.ok(s:resume_reading())
  t.eq(s:is_reading(), true)
  t.ok(s:write("a", "b", "c")) -- writev
  t.eq(s:read(3):await(), "abc")
  t.ok(s:write_eof())
  t.fails("ESTATE", s:write("x"))
  t.raises("must not be negative", s.set_write_limits, s, -1, 0)
  t.raises("string expected", s.write, s, {})
  t.fails("EINVAL", s:set_write_limits(10, 100))
  s:close()
  srv:close()
  loop:run()
end)

t.test("errors in each stream callback reach the handler; the stream goes on", function(loop, errors)
  local srv = echo_server(loop)
  local lost = false
  local f = loop:connect("127.0.0.1", srv:port(), {
    connection_made = function(s) s:write("x"); error("made") end,
    data_received = function(s) s:close(); error("data") end,
    connection_lost = function() lost = true; error("lost") end,
  })
  t.run_until(loop, function() return lost end)
  t.ok(f)
  t.eq(#errors, 3)
  srv:close()
  loop:run()
end)

t.test("connect failures: refused, bad host, bad port, bad protocol", function(loop)
  local port = t.free_port(loop)
  t.fails("ECONNREFUSED", loop:connect("127.0.0.1", port):await())
  t.raises("port out of range", loop.connect, loop, "127.0.0.1", 70000)
  t.raises("data_received", loop.connect, loop, "127.0.0.1", 1, { connection_lost = function() end })
  t.raises("protocol table or reader", loop.connect, loop, "127.0.0.1", 1, 42)
  t.fails("EINVAL", loop:connect("", 1))
  t.raises("option 'attempt_delay'", loop.connect, loop, "127.0.0.1", 1, nil, { attempt_delay = -2 })
  local failed = {}
  local f = loop:connect("127.0.0.1", port, nil, { attempt_failed = function(addr, msg, name) failed[#failed + 1] = name end })
  t.fails("ECONNREFUSED", f:await())
end)

t.test("cancelling a connect", function(loop)
  local srv = echo_server(loop)
  local f = loop:connect("127.0.0.1", srv:port())
  t.eq(f:cancel(), true)
  t.fails("ECANCELED", f:await())
  srv:close()
  loop:run()
end)

t.test("set_protocol: from a reader stream to a table and back in protocol mode", function(loop)
  local srv = echo_server(loop)
  local s = loop:connect("127.0.0.1", srv:port()):await()
  s:write("one")
  t.eq(s:read(3):await(), "one")
  local got
  t.ok(s:set_protocol({ data_received = function(_, d) got = d end, connection_lost = function() end }))
  t.fails("ESTATE", s:read(1))
  s:write("two")
  t.run_until(loop, function() return got == "two" end)
  t.ok(s:set_protocol({ deliver_each = true, data_received = function(_, d) got = d .. "!" end, connection_lost = function() end }))
  s:write("three")
  t.run_until(loop, function() return got == "three!" end)
  s:abort()
  srv:close()
  loop:run()
end)

t.test("adopt: a bad fd; unix sockets", function(loop)
  t.fails("EBADF", loop:adopt(100000, { data_received = function() end, connection_lost = function() end }))
  local path = os.tmpname()
  os.remove(path)
  local srv = assert(loop:unix_listen(path, function(s)
    local line = s:read_line():await()
    s:write(line)
    s:close()
  end))
  local c = loop:unix_connect(path):await()
  c:write("over unix\n")
  t.eq(c:read_line():await(), "over unix\n")
  t.eq(c:read_some():await(), "") -- end of file
  c:close()
  srv:close()
  loop:run()
  os.remove(path)
end)

t.test("an unreachable reader-mode stream is closed by its finalizer", function(loop)
  local lost = false
  local srv = assert(loop:listen("127.0.0.1", 0, {
    data_received = function() end,
    connection_lost = function() lost = true end,
  }))
  do loop:connect("127.0.0.1", srv:port()):await() end
  collectgarbage()
  collectgarbage()
  t.run_until(loop, function() return lost end)
  srv:close()
  loop:run()
end)

t.test("errors in eof_received, idle_timeout and write events", function(loop, errors)
  local srv = assert(loop:listen("127.0.0.1", 0, function(s) s:write("x"); s:close() end))
  local lost = false
  local idle = 0
  local f = loop:connect("127.0.0.1", srv:port(), {
    connection_made = function(s) s:set_idle_timeout(1); s:set_write_limits(0, 0) end,
    data_received = function() end,
    eof_received = function() error("in eof") end, -- its error counts as false: closed
    idle_timeout = function(s) idle = idle + 1; error("in idle") end,
    pause_writing = function() error("in pause") end,
    connection_lost = function() lost = true end,
  })
  t.run_until(loop, function() return lost end)
  t.ok(f)
  local all = table.concat(errors, "\n")
  t.ok(all:find("in eof", 1, true), all)
  srv:close()
  loop:run()
end)

t.test("dropping a pending connect future cancels the connect", function(loop)
  local released = false
  local srv = assert(loop:listen("127.0.0.1", 0, function(s) s:close() end))
  local made = false
  do
    loop:connect("127.0.0.1", srv:port(), {
      connection_made = function() made = true end,
      data_received = function() end,
      connection_lost = function() end,
    })
  end
  collectgarbage()
  collectgarbage()
  loop:run_until(loop:sleep(20))
  t.eq(made, false)
  srv:close()
  loop:run()
end)

t.run()

