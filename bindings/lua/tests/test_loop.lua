local async = require("async")
local t = require("testlib")

t.test("call_soon runs FIFO, never inside the call", function(loop)
  local order = {}
  for i = 1, 5 do loop:call_soon(function() order[#order + 1] = i end) end
  t.eq(#order, 0, "ran inside call_soon")
  loop:run()
  t.eq(table.concat(order, ","), "1,2,3,4,5")
end)

t.test("post runs on the loop", function(loop)
  local ran = false
  t.ok(loop:post(function() ran = true end))
  loop:run()
  t.ok(ran)
end)

t.test("a Lua error in a callback goes to the error handler, the loop goes on", function(loop, errors)
  local after = false
  loop:call_soon(function() error("boom") end)
  loop:call_soon(function() after = true end)
  loop:run()
  t.ok(after, "the next callback did not run")
  t.eq(#errors, 1)
  t.ok(errors[1]:find("boom", 1, true), "message")
  t.ok(errors[1]:find("traceback", 1, true), "traceback")
end)

t.test("an error handler that fails falls back to the log hook", function(loop)
  local logged = {}
  loop:set_log(function(level, msg) logged[#logged + 1] = { level, msg } end)
  loop:set_error_handler(function() error("handler broke") end)
  loop:call_soon(function() error("first") end)
  loop:run()
  t.eq(#logged, 2)
  t.eq(logged[1][1], 3, "ASYNC_LOG_ERROR")
  t.ok(logged[2][2]:find("first", 1, true))
  loop:set_log(nil)
end)

t.test("the default error path is the log hook", function(loop)
  local logged = {}
  loop:set_error_handler(nil)
  loop:set_log(function(level, msg) logged[#logged + 1] = msg end)
  loop:call_soon(function() error({}) end) -- a non-string error object
  loop:run()
  t.eq(#logged, 1)
  t.ok(logged[1]:find("table value", 1, true), logged[1])
end)

t.test("bad arguments raise, runtime refusals return nil, msg, name", function(loop)
  t.raises("function expected", loop.call_soon, loop, 42)
  t.raises("invalid option", loop.run, loop, "sometimes")
  t.raises("must not be negative", loop.set_slow_callback, loop, -1)
  t.fails("ESTATE", loop:unhold())
  t.raises("invalid option", loop.metric, loop, "nope")
end)

t.test("nested run from a callback is refused", function(loop)
  local res
  loop:call_soon(function() res = { loop:run() } end)
  loop:run()
  t.fails("EBUSY", table.unpack(res, 1, 3))
end)

t.test("close from inside a callback is refused, shutdown is not", function(loop)
  local res, sres
  local tm = loop:timer()
  tm:start(1000, function() end)
  loop:call_soon(function()
    res = { loop:close() }
    sres = loop:shutdown()
  end)
  loop:run()
  t.fails("EBUSY", table.unpack(res, 1, 3))
  t.ok(sres)
  t.ok(not tm:is_active() or true)
end)

t.test("loop queries", function(loop)
  t.eq(type(loop:now()), "number")
  t.ok(loop:now_update())
  t.eq(loop:timeout(), -1)
  loop:call_soon(function() end)
  t.eq(loop:timeout(), 0)
  t.eq(loop:alive(), true)
  loop:run()
  t.eq(loop:alive(), false)
  t.ok(loop:metric("callbacks") >= 1)
  t.eq(type(loop:metric("iterations")), "number")
  t.eq(type(loop:metric("poll_time")), "number")
  t.ok(loop:set_slow_callback(1000))
  t.ok(loop:set_thread_check(true))
  t.ok(loop:set_thread_check(false))
  t.ok(loop:wakeup())
  t.ok(loop:hold())
  t.ok(loop:alive())
  t.ok(loop:unhold())
  t.ok(loop:stop())
  t.eq(loop:run(), false)
end)

t.test("walk reports every object; the pinned ones as objects", function(loop, errors)
  local tm = loop:timer()
  tm:start(1000, function() end)
  local f = loop:future()
  local kinds = {}
  local n = loop:walk(function(kind, obj) kinds[#kinds + 1] = kind; if kind == "timer" then t.eq(obj, tm) end end)
  t.eq(n, 2)
  t.eq(table.concat(kinds, ","), "timer,future")
  loop:walk(function() error("boom") end) -- the walk stops, the error is reported
  t.eq(#errors, 1)
  tm:close()
  f:free()
  loop:run()
end)

t.test("a closed loop refuses everything", function()
  local l2 = async.new_loop()
  t.ok(l2:close())
  t.fails("ECLOSED", l2:run())
  t.fails("ECLOSED", l2:call_soon(function() end))
  t.fails("ECLOSED", l2:timer())
  t.fails("ECLOSED", l2:future())
  t.ok(l2:is_closed())
  t.ok(l2:close(), "close is idempotent")
end)

t.test("an unreachable loop is closed by its finalizer, queued callbacks run", function()
  local ran = false
  do
    local l2 = async.new_loop()
    l2:timer() -- stopped: nothing pins it
    l2:future()
    l2:call_soon(function() ran = true end)
  end
  collectgarbage()
  collectgarbage()
  t.ok(ran, "the queued callback did not run")
end)

t.test("version and errors", function()
  local s, n = async.version()
  t.eq(type(s), "string")
  t.ok(n > 0)
  t.eq(async.err_name(-1), "EINVAL")
  t.eq(async.strerror("EINVAL"), async.strerror(-1))
  t.eq(async.errno.ECANCELED, -5)
  t.raises("unknown error name", async.strerror, "ENOPE")
end)

t.test("the default loop: module-level functions", function()
  local ran = false
  async.call_soon(function() ran = true end)
  async.run()
  t.ok(ran)
  t.eq(getmetatable(async.default_loop()).__name, "async.loop")
end)

t.test("fd: a host loop drives the loop through its fd", function(loop)
  local fd, _, name = loop:fd()
  if name == "ENOTSUP" then -- the select and poll backends have no fd to give
    t.ok(os.getenv("LIBEV_FLAGS"), "ENOTSUP under the default backend")
    return
  end
  t.ok(fd >= 0)
  t.eq(loop:fd(), fd, "the same fd every time")
  local host = assert(async.new_loop())
  local w = host:watcher(fd)
  local fired, order = false, {}
  loop:timer():start(20, function(tm) fired = true; tm:close() end)
  loop:call_soon(function() order[#order + 1] = "soon" end)
  w:start("r", function() loop:run("nowait") end)
  local deadline = host:now() + 5000
  while not fired and host:now() < deadline do
    host:run("once")
    host:now_update()
  end
  t.ok(fired, "the timer did not fire through the host")
  t.eq(order[1], "soon")
  w:close()
  host:run()
  t.ok(host:close())
end)

t.test("run_for: a time slice, the rest left queued in order", function(loop)
  local ran = {}
  for i = 1, 200 do
    loop:call_soon(function()
      ran[#ran + 1] = i
      local t0 = os.clock()
      while os.clock() - t0 < 0.0005 do end -- 0.5 ms of work each
    end)
  end
  t.eq(loop:run_for(5000), true, "callbacks left")
  local first = #ran
  t.ok(first >= 1 and first < 200, "ran " .. first .. " of 200 in 5 ms")
  for _ = 1, 1000 do
    if not loop:run_for(5000) then break end
  end
  t.eq(#ran, 200)
  for i = 1, 200 do t.eq(ran[i], i, "order") end
  t.eq(loop:run_for(1000), false, "nothing queued")
  t.raises("must not be negative", loop.run_for, loop, -1)
  t.raises("number expected", loop.run_for, loop, "soon")
  t.fails("EINVAL", loop:run_for(0))
  local res
  loop:call_soon(function() res = { loop:run_for(1000) } end)
  loop:run()
  t.fails("EBUSY", table.unpack(res, 1, 3))
  local l2 = async.new_loop()
  l2:close()
  t.fails("ECLOSED", l2:run_for(1000))
  t.fails("ECLOSED", l2:fd())
  t.fails("ECLOSED", l2:after_fork())
end)

t.run()
