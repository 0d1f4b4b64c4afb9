local async = require("async")
local t = require("testlib")

-- valgrind 3.19 (Debian 12's) does not know pidfd_open: under it the library
-- has no pidfds and refuses to spawn (ENOTSUP); that contract is what the
-- valgrind leg checks, with the bad-input tests.
local preload = os.getenv("LD_PRELOAD") or ""
local under_valgrind = preload:find("vgpreload", 1, true) ~= nil

-- references the test's loop holds (its error handler)
local function refs_at_start() return async.debug_refs() end

t.test("bad input raises; refusals return nil, msg, name", function(loop)
  local refs = refs_at_start()
  t.raises("bad argument", loop.process, loop, "echo")
  t.raises("non-empty list", loop.process, loop, {})
  t.raises("strings expected", loop.process, loop, { "echo", 42 })
  t.raises("invalid option", loop.process, loop, { "true" }, { stdout = "bogus" })
  t.raises("option 'stdin'", loop.process, loop, { "true" }, { stdin = true })
  t.raises("option 'stdout': an fd", loop.process, loop, { "true" }, { stdout = -2 })
  t.raises("option 'uid'", loop.process, loop, { "true" }, { uid = -1 })
  t.raises("option 'env'", loop.process, loop, { "true" }, { env = { A = 1 } })
  t.raises("the protocol needs data_received", loop.process, loop, { "true" }, { stdout = {} })
  t.raises("must not be negative", loop.process_run, loop, { "true" }, nil, -1)
  t.raises("non-empty list", loop.process_run, loop, {})
  t.eq(async.debug_refs(), refs, "a raising call left a reference")
  -- refused by the library: nothing made, nothing pinned
  t.fails("EINVAL", loop:process({ "true" }, { new_group = true, new_session = true, stdout = "pipe" }))
  t.fails("EINVAL", loop:process({ "" }))
  t.eq(async.debug_refs(), refs)
end)

if under_valgrind then
  t.test("no pidfds (valgrind): spawn and run refuse with ENOTSUP, nothing left", function(loop)
    local refs = refs_at_start()
    local lost = false
    t.fails("ENOTSUP", loop:process({ "cat" }, {
      stdout = { data_received = function() end, connection_lost = function() lost = true end },
      stdin = "pipe",
    }))
    t.fails("ENOTSUP", loop:process_run({ "true" }))
    loop:run("nowait")
    t.ok(not lost, "a refused spawn called a protocol")
    t.eq(async.debug_refs(), refs)
  end)
  t.run()
  return
end

t.test("stdout to a protocol table; wait() gives the exit", function(loop)
  local got, lost = {}, nil
  local p = assert(loop:process({ "/bin/sh", "-c", "echo hello; exit 3" }, {
    stdout = {
      data_received = function(s, data) got[#got + 1] = data end,
      connection_lost = function(s, err) lost = err or "clean" end,
    },
  }))
  t.ok(p:pid() > 0)
  local r = p:wait():await()
  t.eq(r.exit_code, 3)
  t.eq(r.signal, 0)
  t.eq(r.stdout, "", "a wait result holds no output")
  t.run_until(loop, function() return lost ~= nil end)
  t.eq(table.concat(got), "hello\n")
  t.eq(lost, "clean")
  t.fails("ESTATE", p:kill())
  t.ok(p:free())
end)

t.test("stdin and stdout pipes in reader mode, from a task", function(loop, errors)
  local out
  local task = loop:spawn(function()
    local p = assert(loop:process({ "cat" }, { stdin = "pipe", stdout = "pipe" }))
    t.eq(getmetatable(p:stdin()).__name, "async.stream")
    t.eq(p:stream(0), p:stdin())
    assert(p:stdin():write("line one\n", "line two\n"))
    assert(p:stdin():close())
    out = p:stdout():read_line():await() .. p:stdout():read_line():await()
    t.eq(p:stdout():read_some():await(), "") -- end of file
    return p:wait():await().exit_code
  end)
  t.eq(task:await(), 0)
  t.eq(out, "line one\nline two\n")
  t.eq(#errors, 0, "stdin closed before its connection_made is no error: " .. tostring(errors[1]))
end)

t.test("\"pipe\" is a socketpair, \"fifo\" a pipe that /dev/stdin opens", function(loop)
  local probe = "test -S /dev/stdin && echo socket; test -p /dev/stdin && echo fifo; "
    .. "cat /dev/stdin 2>/dev/null || echo refused"
  local want = { pipe = "socket\nrefused\n", fifo = "fifo\nin\n" }
  for _, mode in ipairs({ "pipe", "fifo" }) do
    local task = loop:spawn(function()
      local p = assert(loop:process({ "/bin/sh", "-c", probe }, { stdin = mode, stdout = mode }))
      assert(p:stdin():write("in\n"))
      assert(p:stdin():close())
      local got = {}
      repeat
        local chunk = p:stdout():read_some():await()
        got[#got + 1] = chunk
      until chunk == ""
      p:stdout():close()
      t.eq(p:wait():await().exit_code, 0)
      return table.concat(got)
    end)
    t.eq(task:await(), want[mode], mode)
  end
end)

t.test("kill: the signal that ended the child", function(loop)
  local p = assert(loop:process({ "sleep", "10" }))
  local w = p:wait()
  t.ok(p:kill(0), "signal 0 checks the child")
  t.ok(p:kill(9))
  local r = w:await()
  t.eq(r.exit_code, -1)
  t.eq(r.signal, 9)
  t.fails("ESTATE", p:kill())
  t.fails("EINVAL", p:kill(65))
  p:free()
end)

t.test("exec failures come back as errors, not exit code 127", function(loop)
  local refs = refs_at_start()
  t.fails("ENOENT", loop:process({ "/nonexistent/program" }))
  t.fails("ENOENT", loop:process({ "true" }, { cwd = "/nonexistent" }))
  t.fails("EACCES", loop:process({ "/etc/passwd" })) -- not executable
  local path = os.tmpname()
  local fh = assert(io.open(path, "wb"))
  fh:write("\0\1\2\3 not a program")
  fh:close()
  os.execute("chmod +x " .. path)
  t.fails("ENOEXEC", loop:process({ path }))
  os.remove(path)
  t.fails("EBADF", loop:process({ "true" }, { stdout = 999, stderr = { data_received = function() end,
    connection_lost = function() end } }))
  t.eq(async.debug_refs(), refs, "a refused spawn left its pipe's stream pinned")
end)

t.test("options: env (map and list), cwd, null", function(loop)
  local r = loop:process_run({ "/bin/sh", "-c", "echo $A$B; pwd; echo x >&2" }):await()
  t.eq(r.exit_code, 0)
  for _, env in ipairs({ { A = "1", B = "2" }, { "A=1", "B=2" } }) do
    local got = {}
    local p = assert(loop:process({ "/bin/sh", "-c", "echo $A$B; pwd; echo x >&2" }, {
      env = env, cwd = "/", stderr = "null", stdin = "null",
      stdout = { data_received = function(_, d) got[#got + 1] = d end, connection_lost = function() end },
    }))
    t.fails("ESTATE", p:stderr())
    t.fails("EINVAL", p:stream(3))
    t.eq(p:wait():await().exit_code, 0)
    t.run_until(loop, function() return table.concat(got):find("/\n", 1, true) ~= nil end)
    t.eq(table.concat(got), "12\n/\n")
    p:free()
  end
end)

t.test("process_run: input, stdout, stderr, exit; the limit", function(loop)
  local r = assert(loop:process_run({ "/bin/sh", "-c", "cat; echo err >&2; exit 7" }, "abc"):await())
  t.eq(r.stdout, "abc")
  t.eq(r.stderr, "err\n")
  t.eq(r.exit_code, 7)
  t.fails("ENOBUFS", loop:process_run({ "/bin/sh", "-c", "yes | head -c 1000" }, nil, 10):await())
  t.fails("ENOENT", loop:process_run({ "/nonexistent/program" }))
  -- dropping the future of a running child cancels it: the child is killed
  local f = loop:process_run({ "sleep", "10" })
  f:cancel()
  t.fails("ECANCELED", f:result())
end)

t.test("closed objects: a freed process, a closed loop", function(loop)
  local p = assert(loop:process({ "true" }))
  local w = p:wait()
  t.ok(p:free())
  t.fails("ECLOSED", p:free())
  t.fails("ECLOSED", p:pid())
  t.fails("ECLOSED", p:wait())
  t.fails("ECLOSED", p:kill())
  t.fails("ECLOSED", p:stdout())
  t.eq(w:await().exit_code, 0, "the wait future outlives free")
  t.raises("async.process expected", p.pid, {})
  local l2 = async.new_loop()
  local p2 = assert(l2:process({ "true" }))
  t.ok(l2:close(), "close waits for the child and frees the process")
  t.fails("ECLOSED", p2:pid())
  t.fails("ECLOSED", l2:process({ "true" }))
  t.fails("ECLOSED", l2:process_run({ "true" }))
end)

t.test("a <close> variable frees the process; its streams live on", function(loop)
  local out, w
  do
    local p <close> = assert(loop:process({ "echo", "closed" }, { stdout = "pipe" }))
    out = p:stdout()
    w = p:wait()
  end
  t.eq(w:await().exit_code, 0)
  t.eq(out:read_line():await(), "closed\n")
  out:close()
end)

t.test("an unreachable process is freed; the loop still reaps its child", function(loop)
  local w
  do
    local p = assert(loop:process({ "/bin/sh", "-c", "sleep 0.1" }))
    w = p:wait()
  end
  collectgarbage()
  collectgarbage()
  t.eq(w:await().exit_code, 0)
end)

t.test("an error in a pipe's callback goes to the error handler", function(loop, errors)
  local lost = false
  local p = assert(loop:process({ "echo", "hi" }, {
    stdout = { data_received = function() error("boom") end, connection_lost = function() lost = true end },
  }))
  p:wait():await()
  t.run_until(loop, function() return lost end)
  t.eq(#errors, 1)
  t.ok(errors[1]:find("boom", 1, true))
end)

t.test("after_fork in a process that did not fork: the loop goes on", function(loop)
  t.ok(loop:after_fork())
  local fired = false
  loop:timer():start(1, function(tm) fired = true; tm:close() end)
  loop:run()
  t.ok(fired)
  local res
  loop:call_soon(function() res = { loop:after_fork() } end)
  loop:run()
  t.fails("EBUSY", table.unpack(res, 1, 3))
end)

t.run()
