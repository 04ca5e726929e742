-- wrk script: replay pre-signed raw HTTP requests from a file, each exactly once, in order.
-- File format (written by benchmarks/loadgen.py): "<byte length> <webhook-id>\n<raw request>", repeated.
-- When the requests run out the thread stops, so a fast target ends early instead of resending
-- (a resent request would be a duplicate and take another code path in the service).
-- Run with one thread (-t 1): each thread would replay the whole file.
-- wrk's own duration is always its -d (its main thread sleeps that long even when the threads
-- stop early), so the rate is counted here: responses / (last response - first request).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")

local function now()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  reqs = {}
  local f = assert(io.open(args[1], "rb"))
  while true do
    local line = f:read("*l")
    if line == nil then break end
    local len = tonumber(string.match(line, "^(%d+)"))
    reqs[#reqs + 1] = f:read(len)
  end
  f:close()
  nreqs = #reqs
  sent = 0
  statuses = {}
  first_sent = 0
  last_answer = 0
end

function request()
  if sent == 0 then first_sent = now() end
  sent = sent + 1
  if sent > nreqs then
    -- Out of requests: stop; the loop ends before this last one is answered and counted.
    wrk.thread:stop()
    return reqs[nreqs]
  end
  return reqs[sent]
end

function response(status, headers, body)
  last_answer = now()
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  local first, last = nil, 0
  for _, thread in ipairs(threads) do
    local t0, t1 = thread:get("first_sent"), thread:get("last_answer")
    if first == nil or t0 < first then first = t0 end
    if t1 > last then last = t1 end
    local counts = thread:get("statuses") or {}
    for status, n in pairs(counts) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    parts[#parts + 1] = string.format('"%s": %d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"completed": %d, "duration_s": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, '
      .. '"max_ms": %.3f, "statuses": {%s}, "socket_errors": %d}\n',
    summary.requests, last - first, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, table.concat(parts, ", "),
    e.connect + e.read + e.write + e.timeout))
end
