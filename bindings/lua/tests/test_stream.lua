local t = require("testlib")
t.run()
