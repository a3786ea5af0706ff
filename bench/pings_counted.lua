-- wrk script: ping every check exactly N times, round robin, as fast as the server answers.
--
--   wrk -t2 -c32 -d600s -s bench/pings_counted.lua http://127.0.0.1:8101 -- tokens.txt 22 2
--
-- Arguments after "--": the file of ping tokens, the pings per check and wrk's thread count
-- (-t; a thread cannot see how many others there are). Thread i sends its share of whole
-- cycles over all the tokens, so every check gets exactly N pings over the run, then stops.
-- wrk's main thread only ends at -d (or on SIGINT): bench/run.py watches the Ping rows and
-- interrupts it once they are all written. Requests a connection still had to send after its
-- thread's share are sent to a token no check has (404, nothing written).

local thread_count = 0

function setup(thread)
  thread:set("thread_id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = "/ping/" .. line
    end
  end
  local per_check = tonumber(args[2])
  local threads = tonumber(args[3])
  local cycles = math.floor(per_check / threads)
  if thread_id < per_check % threads then
    cycles = cycles + 1
  end
  quota = cycles * #paths
  sent = 0
  answered = 0
  position = (thread_id * 7919) % #paths
  nowhere = "/ping/00000000-0000-4000-8000-000000000000"
end

function request()
  if sent >= quota then
    return wrk.format("GET", nowhere)
  end
  sent = sent + 1
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end

function response(status, headers, body)
  answered = answered + 1
  if answered >= quota then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "status_errors": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect, errors.read, errors.timeout))
end
