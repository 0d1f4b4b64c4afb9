-- A small in-tree test runner: t.test(name, fn) registers a test, t.run()
-- runs them in order, each on a fresh loop that must end with no object
-- left, and checks that every registry reference the binding took was
-- freed (async.debug_refs()). Exit status 1 on any failure.
local async = require("async")

local t = { tests = {} }

function t.test(name, fn)
  t.tests[#t.tests + 1] = { name = name, fn = fn }
end

local function fmt(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function t.eq(got, want, what)
  if got ~= want then
    error(string.format("%s: got %s, want %s", what or "value", fmt(got), fmt(want)), 2)
  end
end

function t.ok(v, what)
  if not v then error((what or "expected a true value") .. ", got " .. fmt(v), 2) end
  return v
end

-- f(...) must fail the luv way: nil, "NAME: ...", "NAME".
function t.fails(name, ...)
  local v, msg, got = ...
  if v ~= nil or got ~= name then
    error(string.format("expected failure %s, got %s, %s, %s", name, fmt(v), fmt(msg), fmt(got)), 2)
  end
  if type(msg) ~= "string" or msg:sub(1, #name + 1) ~= name .. ":" then
    error("bad failure message: " .. fmt(msg), 2)
  end
end

-- fn must raise an error whose message contains pattern (plain).
function t.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error matching " .. pattern, 2) end
  if not tostring(err):find(pattern, 1, true) then
    error("error " .. fmt(tostring(err)) .. " does not contain " .. fmt(pattern), 2)
  end
end

-- Runs the loop until cond() is true, at most limit_ms (a bounded wait).
function t.run_until(loop, cond, limit_ms)
  local deadline = loop:now() + (limit_ms or 5000)
  while not cond() do
    if loop:now() > deadline then error("timed out waiting", 2) end
    loop:run("once")
    loop:now_update()
  end
end

-- A free TCP port on 127.0.0.1.
function t.free_port(loop)
  local srv = assert(loop:listen("127.0.0.1", 0, { data_received = function() end,
    connection_lost = function() end }))
  local port = srv:port()
  srv:close()
  loop:run("nowait")
  return port
end

-- cleanup (optional) runs after the tests, before the exit.
function t.run(cleanup)
  local failed = 0
  for _, case in ipairs(t.tests) do
    local loop = assert(async.new_loop())
    local errors = {}
    loop:set_error_handler(function(e) errors[#errors + 1] = e end)
    local ok, err = xpcall(case.fn, debug.traceback, loop, errors)
    if ok then
      -- no unclosed objects: the loop frees once everything is closed
      local closed, cmsg = loop:close()
      if not closed then ok, err = false, "loop:close() failed: " .. tostring(cmsg) end
    else
      loop:close()
    end
    loop = nil
    collectgarbage()
    collectgarbage()
    if ok and async.debug_refs() ~= 0 then
      ok, err = false, "registry references left: " .. async.debug_refs()
    end
    if ok then
      print("ok - " .. case.name)
    else
      failed = failed + 1
      print("not ok - " .. case.name .. "\n# " .. tostring(err):gsub("\n", "\n# "))
    end
  end
  print(string.format("# %d tests, %d failed", #t.tests, failed))
  if cleanup then cleanup() end
  os.exit(failed == 0 and 0 or 1)
end

return t
