-- The benchmark workloads, written once for each event loop library:
--   lua5.4 workloads.lua async|luv chain|fanout|timers|echo [arg]
-- Prints one line: RESULT lib=... bench=... ops=N secs=T rate=R rss_mib=M
-- (echo: serves 127.0.0.1:PORT until SIGTERM... is not possible in plain
-- Lua, so it serves until the load generator's connections are all closed
-- after it printed READY).
local lib, bench, extra = arg[1], arg[2], arg[3]

local function peak_rss_mib()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
  return 0
end

local clock = os.clock -- CPU time of this process: the benches are CPU bound
local function report(ops, secs)
  print(string.format("RESULT lib=%s bench=%s ops=%d secs=%.4f rate=%.0f rss_mib=%.1f", lib, bench, ops, secs,
    ops / secs, peak_rss_mib()))
end

-- N=100000 in the environment for callgrind runs (docs/bindings.md counts
-- instructions per hop as the difference with N=1).
local N = tonumber(os.getenv("N")) or 1000000
-- fanout: N callbacks in rounds of 10,000 (at least one round)
local ROUNDS = math.max(1, N // 10000)

local impl = {}

-- chain: each callback hands the loop the next one (call_soon; luv: see below).
-- idle: one callback per loop iteration, started once (async: an idle hook;
--   luv: an idle handle): the same work on both sides.
-- fanout: N callbacks in rounds of 10,000 queued at once.
-- timers: 1M timers with timeouts spread over 0..999 ms, all fire.
-- echo: a TCP echo server (data written back as it comes).
impl.async = function()
  local async = require("async")
  local loop = async.default_loop()
  if bench == "chain" then
    local n = 0
    local function hop()
      n = n + 1
      if n < N then loop:call_soon(hop) end
    end
    local t0 = clock()
    loop:call_soon(hop)
    loop:run()
    report(n, clock() - t0)
  elseif bench == "idle" then
    local n = 0
    local h = loop:hook("idle")
    local t0 = clock()
    h:start(function()
      n = n + 1
      if n >= N then h:close() end
    end)
    loop:run()
    report(n, clock() - t0)
  elseif bench == "fanout" then
    local n = 0
    local function cb() n = n + 1 end
    local t0 = clock()
    for _ = 1, ROUNDS do
      for _ = 1, 10000 do loop:call_soon(cb) end
      loop:run()
    end
    report(n, clock() - t0)
  elseif bench == "timers" then
    local n = 0
    local function fired(t) n = n + 1; t:close() end
    local t0 = clock()
    for i = 1, N do loop:timer():start(i % 1000, fired) end
    loop:run()
    report(n, clock() - t0)
  elseif bench == "echo" then
    local srv = assert(loop:listen("127.0.0.1", tonumber(extra), {
      data_received = function(s, data) s:write(data) end,
      connection_lost = function() end,
    }))
    local stop = loop:signal()
    stop:start(15, function() srv:close(); stop:close() end)
    io.write("READY\n"); io.flush()
    local t0 = clock()
    loop:run()
    print(string.format("CPU %.6f MAXRSS_MIB %.1f", clock() - t0, peak_rss_mib()))
  end
end

impl.luv = function()
  local uv = require("luv")
  if bench == "chain" then
    -- luv has no call_soon: the nearest ways for a callback to hand the
    -- loop the next function are an idle handle started again with it
    -- (luv takes a new reference to the function) and a timer(0) started
    -- again with it; the faster counts. (A plain idle callback schedules
    -- nothing: it is the idle row.) "idle" or "timer" as third argument
    -- runs that one only (callgrind).
    local n = extra == "timer" and N - 1 or 0
    local idle = uv.new_idle()
    local function idle_hop()
      n = n + 1
      if n < N then idle:start(idle_hop) else idle:stop(); idle:close() end
    end
    local t0 = clock()
    idle:start(idle_hop)
    uv.run()
    local idle_secs = clock() - t0
    local m = extra == "idle" and N - 1 or 0
    local tm = uv.new_timer()
    local function hop()
      m = m + 1
      if m < N then tm:start(0, 0, hop) else tm:close() end
    end
    t0 = clock()
    tm:start(0, 0, hop)
    uv.run()
    local timer_secs = clock() - t0
    io.stderr:write(string.format("luv chain: idle %.0f/s, timer(0) %.0f/s\n", n / idle_secs, m / timer_secs))
    report(N, math.min(idle_secs, timer_secs))
  elseif bench == "idle" then
    -- a callback per loop iteration, nothing scheduled: an idle handle
    local n = 0
    local idle = uv.new_idle()
    local t0 = clock()
    idle:start(function()
      n = n + 1
      if n >= N then idle:stop(); idle:close() end
    end)
    uv.run()
    report(n, clock() - t0)
  elseif bench == "fanout" then
    -- 10,000 timer(0) handles started at once, 100 rounds
    local n = 0
    local timers = {}
    local function cb() n = n + 1 end
    for i = 1, 10000 do timers[i] = uv.new_timer() end
    local t0 = clock()
    for _ = 1, ROUNDS do
      for i = 1, 10000 do timers[i]:start(0, 0, cb) end
      uv.run()
    end
    report(n, clock() - t0)
    for i = 1, 10000 do timers[i]:close() end
    uv.run()
  elseif bench == "timers" then
    local n = 0
    local function fired(t) n = n + 1; t:close() end
    local t0 = clock()
    for i = 1, N do
      local t = uv.new_timer()
      t:start(i % 1000, 0, function() fired(t) end)
    end
    uv.run()
    report(n, clock() - t0)
  elseif bench == "echo" then
    local srv = uv.new_tcp()
    assert(srv:bind("127.0.0.1", tonumber(extra)))
    assert(srv:listen(511, function()
      local c = uv.new_tcp()
      srv:accept(c)
      c:nodelay(true)
      c:read_start(function(err, data)
        if data then c:write(data) else c:close() end
      end)
    end))
    local stop = uv.new_signal()
    stop:start(15, function() srv:close(); stop:close() end)
    io.write("READY\n"); io.flush()
    local t0 = clock()
    uv.run()
    print(string.format("CPU %.6f MAXRSS_MIB %.1f", clock() - t0, peak_rss_mib()))
  end
end

impl[lib]()
