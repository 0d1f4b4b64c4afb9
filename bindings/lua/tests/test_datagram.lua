local async = require("async")
local t = require("testlib")

local function sink() return { datagram_received = function() end, connection_lost = function() end } end

t.test("UDP echo between two transports, every callback", function(loop)
  local events = {}
  local a = assert(loop:udp_open({ ["local"] = "127.0.0.1:0" }, {
    connection_made = function(d) events[#events + 1] = "made" end,
    datagram_received = function(d, data, from) d:send(data:upper(), from) end,
    connection_lost = function(d, err) events[#events + 1] = "lost" end,
  }))
  local got, from
  local b = assert(loop:udp_open({ remote = a:sockname() }, {
    datagram_received = function(d, data, addr) got, from = data, addr; d:close() end,
    connection_lost = function() end,
  }))
  t.eq(b:peername(), a:sockname())
  t.ok(b:send("hello"))
  t.run_until(loop, function() return got end)
  t.eq(got, "HELLO")
  t.eq(from, a:sockname())
  a:close()
  loop:run()
  t.eq(table.concat(events, ","), "made,lost")
  t.fails("ECLOSED", a:send("x", "127.0.0.1:9"))
end)

t.test("settings and queries", function(loop)
  local d = assert(loop:udp_open({ family = "inet", broadcast = true, reuse_port = true,
    send_buffer = 65536, receive_buffer = 65536 }, sink()))
  t.ok(d:fd() >= 0)
  t.eq(d:loop(), loop)
  t.ok(d:set_broadcast(false))
  t.ok(d:set_multicast_ttl(2))
  t.ok(d:set_multicast_loop(true))
  local ok = d:join_multicast("239.255.0.1")
  if ok then t.ok(d:leave_multicast("239.255.0.1")) end
  t.fails("EINVAL", d:join_multicast("10.0.0.1"))
  local mi = d:set_multicast_interface("127.0.0.1")
  t.ok(mi or true)
  t.fails("EINVAL", d:set_multicast_ttl(1000))
  t.ok(d:set_write_limits(100, 10))
  local h, l = d:get_write_limits()
  t.eq(h, 100); t.eq(l, 10)
  t.eq(d:write_buffer_size(), 0)
  t.ok(d:pause_reading())
  t.eq(d:is_reading(), false)
  t.ok(d:resume_reading())
  t.fails("EINVAL", d:send("x")) -- unconnected: an address is required
  t.fails("EINVAL", d:send("x", "nonsense"))
  t.ok(d:send("x", async.addr_parse("127.0.0.1:9")))
  t.ok(d:abort())
  loop:run()
end)

t.test("bad input and open errors", function(loop)
  t.fails("EINVAL", loop:udp_open({}, sink())) -- no family, no address
  t.fails("EINVAL", loop:udp_open({ ["local"] = "bogus" }, sink()))
  t.raises("connection_lost", loop.udp_open, loop, { family = "inet" }, { datagram_received = function() end })
  t.raises("table expected", loop.udp_open, loop, "inet", sink())
  local a = assert(loop:udp_open({ ["local"] = "127.0.0.1:0" }, sink()))
  t.fails("EADDRINUSE", loop:udp_open({ ["local"] = a:sockname() }, sink()))
  t.fails("EBADF", loop:datagram_adopt(100000, sink()))
  a:close()
  loop:run()
end)

t.test("Unix datagram sockets; errors in callbacks", function(loop, errors)
  local path = os.tmpname()
  os.remove(path)
  local got
  local server = assert(loop:unix_datagram_open(path, nil, {
    datagram_received = function(d, data) got = data; error("in received") end,
    connection_lost = function() error("in lost") end,
  }))
  local client = assert(loop:unix_datagram_open(nil, path, sink()))
  client:send("over unix")
  t.run_until(loop, function() return got end)
  t.eq(got, "over unix")
  server:close()
  client:close()
  loop:run()
  t.eq(#errors, 2)
  os.remove(path)
end)

t.test("an unreachable transport stays open while it can receive; close ends it", function(loop)
  local n = 0
  local addr
  do
    local d = loop:udp_open({ ["local"] = "127.0.0.1:0" }, {
      datagram_received = function(d) n = n + 1; d:close() end,
      connection_lost = function() end,
    })
    addr = d:sockname()
  end
  collectgarbage()
  local c = loop:udp_open({ remote = addr }, sink())
  c:send("x")
  t.run_until(loop, function() return n == 1 end)
  c:close()
  loop:run()
end)

t.run()
