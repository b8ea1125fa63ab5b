-- wrk script of the Envoy peer benchmark: one `Authorization: Bearer` token per request.
--
--   wrk -t T -c C -d 10s --latency -s bearer.lua http://127.0.0.1:PORT/ -- TOKENS_FILE [START [T]]
--
-- TOKENS_FILE `none` sends no Authorization header at all.
-- TOKENS_FILE holds one token per line. With one line ("repeated" mix) the request is static and
-- wrk sends the same bytes every time. With N lines ("distinct" mix) every request takes the next
-- token; thread k of T starts at START + k*N/T (0-based, modulo N) so threads never send the same
-- token at the same time, and wraps around after N requests.
--
-- done() prints one line `WRKJSON {...}` with the totals and latency percentiles (microseconds)
-- that run.sh records; `status_errors` is wrk's count of responses with a status > 399.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local tokens, n, pos, prefix, suffix

function init(args)
  local path = args[1]
  if path == nil then
    error("bearer.lua: pass the token file after `--`")
  end
  if path == "none" then
    -- No credential at all: the cheapest deny path (every answer is a 401).
    request = nil
    return
  end
  local start = tonumber(args[2] or "0")
  tokens, n = {}, 0
  for line in io.lines(path) do
    if #line > 0 then
      n = n + 1
      tokens[n] = line
    end
  end
  if n == 0 then
    error("bearer.lua: no tokens in " .. path)
  end
  local nthreads = tonumber(args[3] or "1")
  pos = (start + math.floor(tid * n / nthreads)) % n
  if n == 1 then
    -- Static request: no request() callback, wrk reuses one buffer.
    wrk.headers["Authorization"] = "Bearer " .. tokens[1]
    request = nil
    return
  end
  -- Split the formatted request around a marker once, then concatenate per request.
  local marker = "@@BENCH_TOKEN@@"
  local req = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. marker })
  local i = string.find(req, marker, 1, true)
  prefix = string.sub(req, 1, i - 1)
  suffix = string.sub(req, i + #marker)
end

function request()
  pos = pos + 1
  if pos > n then
    pos = 1
  end
  return prefix .. tokens[pos] .. suffix
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"lat_mean_us":%.1f,"lat_stdev_us":%.1f,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
