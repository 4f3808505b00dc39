-- Spread requests over the generated table: a random one of @N@ hosts and one
-- of its three paths (Prefix /, Prefix /api/v1, Exact /healthz).
local paths = {"/", "/api/v1/users/42", "/healthz"}
local n = @N@
math.randomseed(@SEED@)
request = function()
  local i = math.random(0, n - 1)
  return wrk.format("GET", paths[math.random(1, 3)], {["Host"] = "host-" .. i .. ".example.com"})
end
