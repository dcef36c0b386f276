-- B1, B2: `POST /v1/enterprises`, every body with a tax id of its own (a repeated one is
-- refused with 409 by SCORE Cases). Arguments: a run label unique to the run, a token.
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local run, headers

function init(args)
  run = args[1] or "run"
  headers = bearer_headers(args[2])
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"name":"Bench %d","tax_id":"%s-%d-%d","region":"la_paz","sector":"manufacturing",' ..
    '"chamber":"CNI","workforce":{"women":50,"men":50}}',
    sent, run, thread_number, sent)
  return wrk.format("POST", "/v1/enterprises", headers, body)
end
