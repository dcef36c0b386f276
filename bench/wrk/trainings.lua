-- B3: `POST /v1/enterprises/{id}/trainings` on enterprises drawn at random from a few, so
-- that several connections write to one aggregate at once. Arguments: a run label, a token,
-- a file of "<enterprise id> <enrolment id>" lines.
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local headers
local targets = {}

function init(args)
  headers = bearer_headers(args[2])
  for line in io.lines(args[3]) do
    local enterprise, enrolment = line:match("^(%S+)%s+(%S+)$")
    if enterprise then
      table.insert(targets, { enterprise = enterprise, enrolment = enrolment })
    end
  end
  -- Every thread's generator starts alike: give each its own sequence, and each run.
  local seed = thread_number * 7919
  for i = 1, #args[1] do
    seed = (seed * 31 + args[1]:byte(i)) % 2147483647
  end
  math.randomseed(seed)
end

function request()
  sent = sent + 1
  local target = targets[math.random(#targets)]
  local body = string.format(
    '{"enrolment_id":"%s","managers":{"women":1,"men":1},"workers":{"women":2,"men":1}}',
    target.enrolment)
  return wrk.format("POST", "/v1/enterprises/" .. target.enterprise .. "/trainings", headers,
    body)
end
