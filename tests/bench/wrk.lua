-- wrk script: one Authorization header per request from a token file.
--
-- Environment (set by bench.py):
--   BENCH_TOKENS   file with one token per line; with BENCH_AUTH=dpop, one
--                  "<token> <DPoP proof>" per line
--   BENCH_AUTH     "bearer" (default): Authorization: Bearer <token>
--                  "dpop": Authorization: DPoP <token> and DPoP: <proof>
--   BENCH_MODE     "shared": every thread cycles through all tokens (steady, junk)
--                  "unique": thread i takes lines i, i+T, i+2T ... so each token is
--                            sent once per pass (cold, attack); if a thread runs out
--                            it starts again and the report says "wrapped"
--   BENCH_THREADS  wrk's -t value (T)
--   BENCH_PATH     request path (default /payments/1)
--   BENCH_REPORT   where done() writes its JSON summary
--
-- Requests are formatted once in init(), so request() only picks the next string.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = os.getenv("BENCH_TOKENS")
  local mode = os.getenv("BENCH_MODE") or "shared"
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local path = os.getenv("BENCH_PATH") or "/payments/1"
  local dpop = os.getenv("BENCH_AUTH") == "dpop"
  local tokens = {}
  for line in io.lines(file) do
    if line ~= "" then tokens[#tokens + 1] = line end
  end
  reqs = {}
  local headers = {}
  local function format(line)
    if dpop then
      local token, proof = line:match("^(%S+) (%S+)$")
      headers["Authorization"] = "DPoP " .. token
      headers["DPoP"] = proof
    else
      headers["Authorization"] = "Bearer " .. line
    end
    return wrk.format("GET", path, headers)
  end
  if mode == "unique" then
    for i = id + 1, #tokens, nthreads do
      reqs[#reqs + 1] = format(tokens[i])
    end
    idx = 0
  else
    for i = 1, #tokens do
      reqs[#reqs + 1] = format(tokens[i])
    end
    idx = math.floor(#tokens * id / nthreads)
  end
  nreqs = #reqs
  sent = 0
  tokens = nil
  collectgarbage()
end

function request()
  sent = sent + 1
  idx = idx + 1
  if idx > nreqs then idx = 1 end
  return reqs[idx]
end

function done(summary, latency, requests)
  local total_sent, wrapped, pool = 0, false, 0
  for _, t in ipairs(threads) do
    local s, n = t:get("sent"), t:get("nreqs")
    total_sent = total_sent + s
    pool = pool + n
    if s > n then wrapped = true end
  end
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_REPORT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}, ' ..
    '"sent": %d, "pool": %d, "wrapped": %s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    total_sent, pool, tostring(wrapped)))
  out:close()
end
