local async = require("async")
local t = require("testlib")

t.test("one-shot timer fires once, after its timeout", function(loop)
  local tm = loop:timer()
  local fired, start = 0, loop:now()
  t.ok(tm:start(20, function(self) fired = fired + 1; t.eq(self, tm) end))
  t.ok(tm:is_active())
  loop:run()
  t.eq(fired, 1)
  t.ok(loop:now() - start >= 20, "fired early")
  t.eq(tm:is_active(), false)
  tm:close()
  loop:run()
end)

t.test("repeating timer, stopped from its callback", function(loop)
  local tm = loop:timer()
  local n = 0
  tm:start(1, 1, function(self)
    n = n + 1
    if n == 3 then self:stop() end
  end)
  loop:run()
  t.eq(n, 3)
  t.eq(tm:get_repeat(), 1)
  t.ok(tm:set_repeat(5))
  t.eq(tm:get_repeat(), 5)
  t.ok(tm:again())
  t.ok(tm:due_in() <= 5)
  tm:stop()
  tm:close()
  loop:run()
end)

t.test("close inside its own callback; the close callback runs once", function(loop)
  local tm = loop:timer()
  local closed = 0
  tm:start(0, 1, function(self)
    t.ok(self:close(function(h) closed = closed + 1; t.eq(h, tm) end))
    t.fails("ECLOSED", self:close())
    t.fails("ECLOSED", self:start(1, function() end))
    t.eq(self:is_closing(), true)
  end)
  loop:run()
  t.eq(closed, 1)
  t.fails("ECLOSED", tm:stop())
  t.fails("ECLOSED", tm:is_active())
  t.fails("ECLOSED", tm:get_repeat())
end)

t.test("a Lua error in a timer callback and in a close callback", function(loop, errors)
  local tm = loop:timer()
  tm:start(0, function() error("in timer") end)
  loop:run()
  tm:close(function() error("in close") end)
  loop:run()
  t.eq(#errors, 2)
  t.ok(errors[1]:find("in timer", 1, true))
  t.ok(errors[2]:find("in close", 1, true))
end)

t.test("bad input", function(loop)
  local tm = loop:timer()
  t.raises("must not be negative", tm.start, tm, -1, function() end)
  t.raises("function expected", tm.start, tm, 1)
  t.raises("number expected", tm.start, tm, "x", function() end)
  t.raises("async.timer expected", tm.start, loop:hook("idle"), 1, function() end)
  t.raises("must not be negative", tm.set_repeat, tm, -5)
  t.fails("ESTATE", tm:again())
  tm:close()
  loop:run()
end)

t.test("ref/unref: an unreferenced timer does not keep run going", function(loop)
  local tm = loop:timer()
  tm:start(10000, function() end)
  t.ok(tm:unref())
  t.eq(tm:has_ref(), false)
  local start = loop:now()
  loop:run()
  t.ok(loop:now() - start < 5000)
  t.ok(tm:ref())
  t.eq(tm:has_ref(), true)
  t.eq(tm:loop(), loop)
  tm:close()
  loop:run()
end)

t.test("<close> variables close the timer", function(loop)
  local ref
  do
    local tm <close> = loop:timer()
    tm:start(1000, function() end)
    ref = tm
  end
  t.eq(ref:is_closing(), true)
  loop:run()
  t.fails("ECLOSED", ref:is_active())
end)

t.test("an unreachable stopped timer is closed by its finalizer", function(loop)
  do loop:timer() end
  collectgarbage()
  collectgarbage()
  loop:run()
  t.eq(loop:walk(function() end), 0)
end)

t.test("a started timer stays alive without a Lua reference", function(loop)
  local fired = false
  do loop:timer():start(5, function(self) fired = true; self:close() end) end
  collectgarbage()
  loop:run()
  t.ok(fired)
end)

t.test("timers with the same timeout fire in start order", function(loop)
  local order = {}
  for i = 1, 10 do
    local tm = loop:timer()
    tm:start(2, function(self) order[#order + 1] = i; self:close() end)
  end
  loop:run()
  t.eq(table.concat(order, ","), "1,2,3,4,5,6,7,8,9,10")
end)

t.run()
