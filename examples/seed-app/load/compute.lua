-- wrk: each request asks /compute/{x} for the next of 1000 values, so the
-- first 1000 requests of a run are 1000 different values. Thread t of n
-- takes t, t + n, t + 2n, ... (mod 1000). Run with `-- <threads>`.
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  sent = 0
  stride = tonumber(args[1]) or 1
end

function request()
  local x = (offset + sent * stride) % 1000
  sent = sent + 1
  return wrk.format("GET", "/compute/" .. x)
end
