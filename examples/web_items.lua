-- wrk script for examples/web.rs: each request asks for one of 1000 items,
-- at random, so a run has misses (each item's first request) and hits.
--   wrk -t2 -c32 -d10s --latency -s examples/web_items.lua http://127.0.0.1:3000
--   WEB_PATH=/uncached/price/ wrk ... (the same requests, uncached)
local path = os.getenv("WEB_PATH") or "/price/"
request = function()
  return wrk.format("GET", path .. math.random(1, 1000) .. "?region=eu")
end
