local async = require("async")
local t = require("testlib")

-- Certificates made fresh by the C tests' tls_certs.sh (the openssl command).
local certs = os.tmpname()
os.remove(certs)
assert(os.execute("mkdir " .. certs), "mkdir")
local script = os.getenv("ASYNC_LUA_SOURCE") .. "/../../tests/tls_certs.sh"
assert(os.execute("sh " .. script .. " " .. certs), "tls_certs.sh failed")
local function cert(name) return certs .. "/" .. name end

local function server_ctx(extra)
  local o = { mode = "server", cert_file = cert("server.pem"), key_file = cert("server.key") }
  for k, v in pairs(extra or {}) do o[k] = v end
  return assert(async.tls_context(o))
end

-- A server whose connections speak TLS and echo; srv.lost gets the errors.
-- The handshake futures are kept: collecting one pending cancels its
-- handshake, as for any future.
local function tls_echo_server(loop, ctx)
  local srv = { lost = {}, handshakes = {} }
  srv.listener = assert(loop:listen("127.0.0.1", 0, {
    connection_made = function(s)
      local _, hs = assert(s:tls(ctx, nil, {
        data_received = function(up, data) up:write(data) end,
        connection_lost = function(_, err) srv.lost[#srv.lost + 1] = err or "clean" end,
      }))
      srv.handshakes[#srv.handshakes + 1] = hs
    end,
    data_received = function() end,
    connection_lost = function() end,
  }))
  return srv
end

local function collector()
  local c = { got = {}, lost = nil }
  c.proto = {
    data_received = function(_, data) c.got[#c.got + 1] = data end,
    connection_lost = function(s, err, name)
      c.lost = name or "clean"
      c.verify = { s:tls_verify_error() }
    end,
  }
  function c.text() return table.concat(c.got) end
  return c
end

t.test("a handshake over local TCP: ALPN, version, data both ways", function(loop)
  local sctx = server_ctx({ alpn = { "h2", "http/1.1" } })
  local srv = tls_echo_server(loop, sctx)
  local cctx <close> = assert(async.tls_context({ mode = "client", ca_file = cert("ca.pem"), alpn = "http/1.1" }))
  t.eq(getmetatable(cctx).__name, "async.tls_context")
  local low = loop:connect("127.0.0.1", srv.listener:port(), collector().proto):await()
  local c = collector()
  local up, hs = low:tls(cctx, "localhost", c.proto)
  t.eq(getmetatable(up).__name, "async.stream")
  t.eq(getmetatable(hs).__name, "async.future")
  t.ok(up:write("early")) -- waits in the layer until the handshake is done
  local v, msg = hs:await()
  t.eq(v, nil)
  t.eq(msg, nil, "handshake error")
  t.eq(up:tls_alpn(), "http/1.1")
  local version = up:tls_version()
  t.ok(version == 0x0303 or version == 0x0304, "version " .. tostring(version))
  t.eq(up:tls_resumed(), false)
  local code, reason = up:tls_verify_error()
  t.eq(code, 0)
  t.eq(reason, "ok")
  t.eq(up:is_layered(), true)
  up:write(" and late")
  t.run_until(loop, function() return c.text() == "early and late" end)
  up:close()
  t.run_until(loop, function() return c.lost ~= nil and #srv.lost == 1 end)
  t.eq(c.lost, "clean")
  sctx:close()
  sctx:close() -- twice is harmless
  srv.listener:close()
  loop:run()
end)

t.test("reader mode above TLS; no ALPN agreed gives nil", function(loop)
  local sctx <close> = server_ctx()
  local srv = tls_echo_server(loop, sctx)
  local cctx <close> = assert(async.tls_context({ ca_file = cert("ca.pem") }))
  local low = loop:connect("127.0.0.1", srv.listener:port(), collector().proto):await()
  local up, hs = low:tls(cctx, "127.0.0.1")
  up:write("line\n")
  t.eq(up:read_line():await(), "line\n")
  t.eq(select(2, hs:await()), nil)
  t.eq(up:tls_alpn(), nil)
  up:close()
  srv.listener:close()
  loop:run()
end)

local function verify_fails(loop, cctx, name, want_reason)
  local sctx <close> = server_ctx()
  local srv = tls_echo_server(loop, sctx)
  local low = loop:connect("127.0.0.1", srv.listener:port(), collector().proto):await()
  local c = collector()
  local _, hs = low:tls(cctx, name, c.proto)
  t.fails("ECERT", hs:await())
  t.run_until(loop, function() return c.lost ~= nil and #srv.lost == 1 end)
  t.eq(c.lost, "ECERT")
  t.ok(c.verify[1] > 0, "an X509_V_ERR code")
  t.ok(c.verify[2]:find(want_reason, 1, true), "reason " .. tostring(c.verify[2]))
  srv.listener:close()
  loop:run()
end

t.test("a certificate from an unknown CA: ECERT with the reason", function(loop)
  local cctx <close> = assert(async.tls_context({ ca_file = cert("other-ca.pem") }))
  verify_fails(loop, cctx, "localhost", "local issuer")
end)

t.test("a name the certificate does not carry: ECERT, hostname mismatch", function(loop)
  local cctx <close> = assert(async.tls_context({ ca_file = cert("ca.pem") }))
  verify_fails(loop, cctx, "wrong.example", "hostname mismatch")
end)

t.test("no_verify accepts the unknown CA without a name", function(loop)
  local sctx <close> = server_ctx()
  local srv = tls_echo_server(loop, sctx)
  local cctx <close> = assert(async.tls_context({ mode = "client", no_verify = true, no_session_cache = true,
    handshake_timeout = 5000 }))
  local low = loop:connect("127.0.0.1", srv.listener:port(), collector().proto):await()
  local c = collector()
  local up, hs = low:tls(cctx, nil, c.proto)
  t.eq(select(2, hs:await()), nil)
  up:close()
  t.run_until(loop, function() return c.lost ~= nil end)
  srv.listener:close()
  loop:run()
end)

t.test("bad input", function(loop)
  t.raises("invalid option", async.tls_context, { mode = "bogus" })
  t.raises("table expected", async.tls_context, "client")
  t.raises("alpn[2]", async.tls_context, { alpn = { "h2", {} } })
  t.fails("EINVAL", async.tls_context({ mode = "server" })) -- a server needs a certificate
  t.fails("EINVAL", async.tls_context({ ca_file = cert("missing.pem") }))
  t.fails("EINVAL", async.tls_context({ mode = "server", cert_file = cert("server.pem"), key_file = cert("client.key") }))
  local sctx <close> = server_ctx()
  local srv = tls_echo_server(loop, sctx)
  local cctx = assert(async.tls_context({ ca_file = cert("ca.pem") }))
  local lc = collector()
  local low = loop:connect("127.0.0.1", srv.listener:port(), lc.proto):await()
  t.fails("EINVAL", low:tls(cctx, nil)) -- a verifying client needs the server's name
  t.fails("EINVAL", low:tls(cctx, string.rep("a", 300)))
  t.raises("async.tls_context expected", low.tls, low, {}, "localhost")
  t.fails("EINVAL", low:tls_version()) -- not above TLS
  t.fails("EINVAL", low:tls_alpn())
  t.fails("EINVAL", low:tls_resumed())
  t.fails("EINVAL", low:tls_verify_error())
  cctx:close()
  t.raises("closed TLS context", low.tls, low, cctx, "localhost")
  low:close()
  t.run_until(loop, function() return lc.lost ~= nil end)
  t.fails("ECLOSED", low:tls(sctx))
  srv.listener:close()
  loop:run()
end)

-- A tiny SOCKS5 server over the binding (no authentication, CONNECT): it
-- records the request and then echoes, as if the target were an echo server.
local function socks5_server(loop, want_user)
  local px = {}
  px.listener = assert(loop:listen("127.0.0.1", 0, function(s)
    local head = s:read(2):await()
    local methods = s:read(head:byte(2)):await()
    if want_user then
      px.methods = methods
      s:write("\5\2")
      local ver_ulen = s:read(2):await()
      px.user = s:read(ver_ulen:byte(2)):await()
      px.pass = s:read(s:read(1):await():byte()):await()
      s:write("\1\0")
    else
      s:write("\5\0")
    end
    local req = s:read(4):await()
    local atyp = req:byte(4)
    if atyp == 3 then
      px.host = s:read(s:read(1):await():byte()):await()
    elseif atyp == 1 then
      px.host = s:read(4):await()
    else
      px.host = s:read(16):await()
    end
    px.port = string.unpack(">I2", s:read(2):await())
    s:write("\5\0\0\1\127\0\0\1\0\80")
    while true do
      local data = s:read_some():await()
      if not data or data == "" then break end
      s:write(data)
    end
    s:close()
  end))
  return px
end

t.test("connect with tls = ctx; a server with set_tls; SNI; a reconnector resumes", function(loop)
  local sctx <close> = assert(async.tls_context({ mode = "server", cert_file = cert("wronghost.pem"),
    key_file = cert("wronghost.key") }))
  local named <close> = server_ctx()
  t.ok(sctx:add_server_name("localhost", named)) -- SNI "localhost": server.pem
  t.fails("EINVAL", sctx:add_server_name("localhost", named))
  local versions = {}
  local srv = assert(loop:listen("127.0.0.1", 0, {
    connection_made = function(s)
      versions[#versions + 1] = s:tls_version() -- the handshake came first
      s:write("x")
      s:close()
    end,
    data_received = function() end,
    connection_lost = function() end,
  }))
  local cctx <close> = assert(async.tls_context({ ca_file = cert("ca.pem") }))
  t.fails("EINVAL", srv:set_tls(cctx))
  t.ok(srv:set_tls(sctx))
  local c = collector()
  local up = loop:connect("127.0.0.1", srv:port(), c.proto, { tls = cctx, server_name = "localhost" }):await()
  t.eq(getmetatable(up).__name, "async.stream")
  t.ok(up:tls_version() >= 0x0303)
  t.run_until(loop, function() return c.lost ~= nil end)
  t.eq(c.text(), "x")
  t.eq(c.lost, "clean")
  t.ok(versions[1] >= 0x0303)
  -- the default certificate names wrong.example: "localhost" came by SNI
  local v, _, name = loop:connect("127.0.0.1", srv:port(), collector().proto,
    { tls = cctx, server_name = "other.example" }):await()
  t.eq(v, nil)
  t.eq(name, "ECERT")
  t.eq(#versions, 1) -- a failed handshake never reached the protocol
  t.fails("EINVAL", loop:connect("127.0.0.1", srv:port(), collector().proto, { server_name = "localhost" }))

  local resumed = {}
  local rctx <close> = assert(async.tls_context({ ca_file = cert("ca.pem") })) -- no session yet
  local rc = assert(loop:reconnector("127.0.0.1", srv:port(), {
    connection_made = function(s) resumed[#resumed + 1] = s:tls_resumed() end,
    data_received = function() end,
    connection_lost = function() end,
  }, { initial_delay = 1, jitter = -1, connect = { tls = rctx, server_name = "localhost" } }))
  t.run_until(loop, function() return #resumed == 2 end)
  t.eq(resumed[1], false)
  t.eq(resumed[2], true)
  t.ok(rc:stop())
  t.ok(srv:set_tls(nil))
  srv:close()
  loop:run()
end)

t.test("socks5: a tunnel through a SOCKS5 server, by name and by address", function(loop)
  local px = socks5_server(loop)
  local low = loop:connect("127.0.0.1", px.listener:port(), collector().proto):await()
  local c = collector()
  local f = low:socks5("example.test", 8443, c.proto)
  t.eq(getmetatable(f).__name, "async.future")
  local up = f:await()
  t.eq(getmetatable(up).__name, "async.stream")
  t.eq(px.host, "example.test")
  t.eq(px.port, 8443)
  t.eq(up:is_layered(), true)
  up:write("through")
  t.run_until(loop, function() return c.text() == "through" end)
  up:close()
  t.run_until(loop, function() return c.lost ~= nil end)

  local low2 = loop:connect("127.0.0.1", px.listener:port(), collector().proto):await()
  local up2 = low2:socks5_addr(async.addr_parse("10.1.2.3", 99)):await() -- reader mode
  t.eq(px.host, "\10\1\2\3")
  t.eq(px.port, 99)
  up2:write("x\n")
  t.eq(up2:read_line():await(), "x\n")
  up2:close()
  px.listener:close()
  loop:run()
end)

t.test("socks5: username and password (RFC 1929)", function(loop)
  local px = socks5_server(loop, true)
  local low = loop:connect("127.0.0.1", px.listener:port(), collector().proto):await()
  local up = low:socks5("h.test", 1, "alice", "secret"):await()
  t.eq(px.user, "alice")
  t.eq(px.pass, "secret")
  t.ok(px.methods:find("\2", 1, true), "offers user/password")
  up:close()
  px.listener:close()
  loop:run()
end)

t.test("socks5: a proxy that closes fails the future", function(loop)
  local srv = assert(loop:listen("127.0.0.1", 0, function(s) s:close() end))
  local low = loop:connect("127.0.0.1", srv:port(), collector().proto):await()
  local v, _, name = low:socks5("h.test", 80):await()
  t.eq(v, nil)
  t.ok(name ~= nil, "an error name")
  srv:close()
  loop:run()
end)

t.test("socks5: bad input", function(loop)
  local srv = assert(loop:listen("127.0.0.1", 0, function(s) s:close() end))
  local lc = collector()
  local low = loop:connect("127.0.0.1", srv:port(), lc.proto):await()
  t.fails("EINVAL", low:socks5(string.rep("h", 256), 80))
  t.fails("EINVAL", low:socks5("h.test", 80, string.rep("u", 256), "p"))
  t.fails("EINVAL", low:socks5("h.test", 80, nil, "p")) -- a password without a username
  t.fails("EINVAL", low:socks5_addr("not an address"))
  t.raises("port out of range", low.socks5, low, "h.test", 70000)
  t.raises("protocol table or reader", low.socks5, low, "h.test", 80, 5)
  low:close()
  t.run_until(loop, function() return lc.lost ~= nil end)
  t.fails("ECLOSED", low:socks5("h.test", 80))
  srv:close()
  loop:run()
end)

t.run(function() os.execute("rm -rf " .. certs) end)
