local async = require("async")
local t = require("testlib")

t.test("hooks: prepare, check, idle run per iteration", function(loop)
  local counts = { prepare = 0, check = 0, idle = 0 }
  local hooks = {}
  for kind in pairs(counts) do
    local h = loop:hook(kind)
    t.eq(h:kind(), kind)
    h:start(function(self)
      counts[kind] = counts[kind] + 1
      if counts.idle >= 5 then
        for _, x in pairs(hooks) do x:stop() end
      end
    end)
    hooks[kind] = h
  end
  loop:run()
  t.ok(counts.idle >= 3 and counts.prepare >= 3 and counts.check >= 3)
  for _, h in pairs(hooks) do h:close() end
  loop:run()
end)

t.test("hook: bad kind, error in callback, close inside", function(loop, errors)
  t.raises("invalid option", loop.hook, loop, "sometimes")
  local h = loop:hook("idle")
  h:start(function(self) self:close(); error("hook error") end)
  loop:run()
  t.eq(#errors, 1)
  t.fails("ECLOSED", h:start(function() end))
end)

t.test("watcher: readable pipe end", function(loop)
  -- a readable fd: the read end of a pipe we write into via a stream
  -- a UDP socket's fd, made readable by a datagram
  local got, s
  local d = loop:udp_open({ family = "inet", ["local"] = "127.0.0.1:0" },
    { datagram_received = function() end, connection_lost = function() end })
  d:pause_reading()
  local w = loop:watcher(d:fd())
  t.eq(w:fd(), d:fd())
  t.ok(w:start("r", function(self, revents) got = revents; self:stop(); d:close(); s:close() end))
  t.ok(w:set_events("r"))
  s = loop:udp_open({ family = "inet" },
    { datagram_received = function() end, connection_lost = function() end })
  s:send("x", d:sockname())
  loop:run()
  t.eq(got, 1)
  t.raises("events", w.start, w, "x", function() end)
  t.raises("fd out of range", loop.watcher, loop, 2 ^ 40)
  w:close()
  loop:run()
end)

t.test("watcher: a bad fd", function(loop)
  local w, msg, name = loop:watcher(-1)
  if w then
    t.fails("EBADF", w:start("r", function() end))
    w:close()
    loop:run()
  else
    t.eq(name, "EINVAL") -- a negative fd is refused at creation
  end
end)

t.test("signal: SIGUSR1 delivered to the loop", function(loop)
  local sig = loop:signal()
  local got
  t.ok(sig:start(10, function(self, signum) got = signum; self:close() end))
  t.eq(sig:signum(), 10)
  loop:call_soon(function() os.execute("kill -USR1 " .. io.open("/proc/self/stat"):read("*l"):match("^(%d+)")) end)
  loop:run()
  t.eq(got, 10)
end)

t.test("signal: out-of-range signal number", function(loop)
  local sig = loop:signal()
  t.fails("EINVAL", sig:start(100000, function() end))
  t.fails("EINVAL", sig:start(-7, function() end))
  sig:close()
  loop:run()
end)

t.test("generic handle methods refuse other objects", function(loop)
  local f = loop:future()
  local tm = loop:timer()
  t.raises("async handle expected", tm.close, f)
  t.raises("async handle expected", tm.ref, {})
  tm:close()
  f:free()
  loop:run()
end)

t.run()
