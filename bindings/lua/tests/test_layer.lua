local async = require("async")
local t = require("testlib")

local function echo_server(loop)
  return assert(loop:listen("127.0.0.1", 0, {
    data_received = function(s, data) s:write(data) end,
    connection_lost = function() end,
  }))
end

-- A protocol table that collects what it receives.
local function collector()
  local c = { got = {}, lost = nil, made = 0 }
  c.proto = {
    connection_made = function() c.made = c.made + 1 end,
    data_received = function(_, data) c.got[#c.got + 1] = data end,
    connection_lost = function(_, err) c.lost = err or "clean" end,
  }
  function c.text() return table.concat(c.got) end
  return c
end

t.test("push_rate_limit: a stream above the limiter, with a protocol table", function(loop)
  local srv = echo_server(loop)
  local low = loop:connect("127.0.0.1", srv:port(), collector().proto):await()
  local c = collector()
  local up = assert(low:push_rate_limit(0, 0, c.proto))
  t.eq(getmetatable(up).__name, "async.stream")
  t.eq(up:is_layered(), true)
  t.eq(low:is_layered(), false)
  t.ok(up:write("hello"))
  t.run_until(loop, function() return c.text() == "hello" end)
  t.eq(c.made, 1)
  t.ok(up:peername():find("127.0.0.1", 1, true), "socket queries answer for the bottom")
  up:close()
  t.run_until(loop, function() return c.lost ~= nil end)
  t.eq(c.lost, "clean")
  srv:close()
  loop:run()
end)

t.test("the limiter holds the write rate; bytes intact", function(loop)
  local srv = echo_server(loop)
  local low = loop:connect("127.0.0.1", srv:port(), collector().proto):await()
  local c = collector()
  local up = assert(low:push_rate_limit(0, 100000, c.proto))
  local chunk = string.rep("0123456789", 2000) -- 20000 bytes
  loop:now_update()
  local start = loop:now()
  up:write(chunk)
  t.run_until(loop, function() return #c.text() == #chunk end, 10000)
  -- 20000 bytes at 100000 B/s with a bucket of 5000: at least 150 ms
  t.ok(loop:now() - start >= 140, "too fast: " .. (loop:now() - start) .. " ms")
  t.eq(c.text(), chunk)
  up:close()
  srv:close()
  loop:run()
end)

t.test("reader mode above the layer; pop to a protocol table", function(loop)
  local srv = echo_server(loop)
  local low = loop:connect("127.0.0.1", srv:port(), collector().proto):await()
  local up = assert(low:push_rate_limit(1000000, 1000000))
  up:write("abc\n")
  t.eq(up:read_line():await(), "abc\n")
  local c = collector()
  local below = assert(up:pop(c.proto))
  t.eq(below, low, "pop returns the stream below")
  t.run_until(loop, function() return up:is_layered() == nil end)
  t.fails("ECLOSED", up:write("late"))
  low:write("after pop")
  t.run_until(loop, function() return c.text() == "after pop" end)
  t.eq(c.made, 0, "a pop hands over, no connection_made")
  low:close()
  t.run_until(loop, function() return c.lost ~= nil end)
  srv:close()
  loop:run()
end)

t.test("pop with no protocol: the stream below in reader mode", function(loop)
  local srv = echo_server(loop)
  local low = loop:connect("127.0.0.1", srv:port(), collector().proto):await()
  local c = collector()
  local up = assert(low:push_rate_limit(0, 0, c.proto))
  local below = assert(up:pop())
  t.eq(below, low)
  t.run_until(loop, function() return c.lost ~= nil end)
  low:write("plain\n")
  t.eq(low:read_line():await(), "plain\n")
  low:close()
  srv:close()
  loop:run()
end)

t.test("bad input and closed streams", function(loop)
  local srv = echo_server(loop)
  local low = loop:connect("127.0.0.1", srv:port(), collector().proto):await()
  t.raises("must not be negative", low.push_rate_limit, low, -1, 0)
  t.raises("number expected", low.push_rate_limit, low, "fast", 0)
  t.raises("the protocol needs data_received", low.push_rate_limit, low, 0, 0, {})
  t.raises("protocol table or reader", low.push_rate_limit, low, 0, 0, 42)
  t.raises("async.stream expected", low.push_rate_limit, {}, 0, 0)
  t.fails("EINVAL", low:pop()) -- not a layer's stream
  local up = assert(low:push_rate_limit(0, 0, collector().proto))
  t.raises("the protocol needs connection_lost", up.pop, up, { data_received = function() end })
  t.raises("table expected", up.pop, up, 42)
  up:abort()
  loop:run("nowait")
  t.fails("ECLOSED", up:pop())
  t.fails("ECLOSED", up:is_layered())
  t.fails("ECLOSED", up:push_rate_limit(0, 0))
  t.fails("ECLOSED", low:push_rate_limit(0, 0)) -- the abort went down the stack
  srv:close()
  loop:run()
end)

t.test("an error in a callback above the layer goes to the error handler", function(loop, errors)
  local srv = echo_server(loop)
  local low = loop:connect("127.0.0.1", srv:port(), collector().proto):await()
  local lost = false
  local up = assert(low:push_rate_limit(0, 0, {
    connection_made = function(s) s:write("x") end,
    data_received = function() error("boom") end,
    connection_lost = function() lost = true end,
  }))
  t.run_until(loop, function() return #errors == 1 end)
  t.ok(errors[1]:find("boom", 1, true))
  up:close()
  t.run_until(loop, function() return lost end)
  srv:close()
  loop:run()
end)

t.test("layers stack; an unreachable stack is closed with the loop", function(loop)
  local srv = echo_server(loop)
  local c = collector()
  do
    local low = loop:connect("127.0.0.1", srv:port(), collector().proto):await()
    local mid = assert(low:push_rate_limit(0, 0))
    local up = assert(mid:push_rate_limit(0, 0, c.proto))
    up:write("two layers")
  end
  collectgarbage()
  t.run_until(loop, function() return c.text() == "two layers" end)
  srv:close()
  loop:shutdown()
  loop:run()
  t.eq(c.lost ~= nil, true)
end)

t.run()
