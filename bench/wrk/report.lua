-- What every `make bench` wrk script shares: a number per thread, answers counted by kind,
-- and one JSON line at the end for the harness to read.
--
-- wrk seeds every thread's math.random alike and shares nothing between threads, so
-- `setup` hands each thread its own number: the scripts make their bodies unique with it.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

answers = { ok = 0, conflict = 0, client_error = 0, server_error = 0, other = 0 }
-- Requests written, which each script's request() counts: wrk stops with up to one request
-- per connection unanswered, which the service may still have carried out.
sent = 0

function response(status, headers, body)
  if status >= 200 and status < 300 then
    answers.ok = answers.ok + 1
  elseif status == 409 then
    answers.conflict = answers.conflict + 1
  elseif status >= 500 then
    answers.server_error = answers.server_error + 1
  elseif status >= 400 then
    answers.client_error = answers.client_error + 1
  else
    answers.other = answers.other + 1
  end
end

function bearer_headers(token)
  local headers = { ["Content-Type"] = "application/json" }
  if token ~= nil and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  return headers
end

function done(summary, latency, requests)
  local total = { ok = 0, conflict = 0, client_error = 0, server_error = 0, other = 0 }
  local written = 0
  for _, thread in ipairs(threads) do
    written = written + thread:get("sent")
    local counted = thread:get("answers")
    for kind, count in pairs(counted) do
      total[kind] = total[kind] + count
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '\nBENCH-JSON {"requests":%d,"sent":%d,"duration_us":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"answers":{"ok":%d,"conflict":%d,"client_error":%d,"server_error":%d,"other":%d}}\n',
    summary.requests, written, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean,
    errors.connect, errors.read, errors.write, errors.timeout,
    total.ok, total.conflict, total.client_error, total.server_error, total.other))
end
