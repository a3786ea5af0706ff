-- wrk script: ping many checks round robin and print the figures as one JSON line.
--
--   wrk -t2 -c32 -d12s -s bench/pings.lua http://127.0.0.1:8101 -- bench/var/tokens.txt GET
--
-- Arguments after "--": the file of ping tokens (one UUID a line) and the method (GET or POST;
-- POST sends a short body, as a job that posts its output would).

local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  local tokens_file = args[1]
  method = args[2] or "GET"
  paths = {}
  for line in io.lines(tokens_file) do
    if line ~= "" then
      paths[#paths + 1] = "/ping/" .. line
    end
  end
  -- Threads start at different places so that they do not ping the same check in lockstep.
  position = (thread_id * 7919) % #paths
  if method == "POST" then
    body = "backup finished: 1234 files, 0 errors\n"
  end
end

function request()
  position = position % #paths + 1
  return wrk.format(method, paths[position], nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout))
end
