-- wrk script: POST a small, realistic OpenAI chat body with a bearer key.
--
-- Environment (set by bench/run.py):
--   BENCH_KEY     the gateway master key (sent as "Authorization: Bearer ...")
--   BENCH_STREAM  "1" to ask for a streamed answer ("stream": true + include_usage)
--   BENCH_MODEL   model name (default bench-model)
--   BENCH_VARY    "1" to make every request's question unique (a response cache misses)
--
-- done() prints one line "BENCH_JSON {...}" with exact percentiles (microseconds) and the
-- error counters; bench/run.py prefers it to parsing wrk's human-readable summary.

local key = os.getenv("BENCH_KEY") or "sk-bench-master"
local stream = os.getenv("BENCH_STREAM") == "1"
local model = os.getenv("BENCH_MODEL") or "bench-model"
local vary = os.getenv("BENCH_VARY") == "1"

local stream_part = ""
if stream then
  stream_part = '"stream": true, "stream_options": {"include_usage": true}, '
end

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
local head = '{"model": "' .. model .. '", ' .. stream_part
  .. '"messages": ['
  .. '{"role": "system", "content": "You are a concise assistant for an internal platform team."}, '
  .. '{"role": "user", "content": "Summarise in one sentence why connection pooling matters '
  .. 'for an HTTP gateway'
local tail = '."}], "temperature": 0.2, "max_tokens": 64, "user": "bench-user"}'
wrk.body = head .. tail

-- With BENCH_VARY each thread numbers its questions after a tag of its own (the time, its
-- number and a random draw), so no two requests of any run are the same.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

local tag = ""
local sent = 0
function init(args)
  math.randomseed(os.time() + (thread_number or 0) * 7919)
  tag = os.time() .. "-" .. (thread_number or 0) .. "-" .. math.random(1, 1000000000)
end

if vary then
  function request()
    sent = sent + 1
    return wrk.format(nil, nil, nil, head .. " (" .. tag .. "-" .. sent .. ")" .. tail)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, '
      .. '"mean_us": %.1f, "max_us": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
