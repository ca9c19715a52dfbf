-- wrk script for scripts/bench-wrk.sh: one new payment per request.
math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
local run = tostring(math.random(1, 2 ^ 31))
local key = os.getenv("PURSER_BENCH_KEY")
local body = '{"amount":"0.01","currency":"USD","merchant_id":"bench.example","merchant_category":"cloud","rail":"card"}'
local n = 0

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/payments", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
    ["Idempotency-Key"] = "wrk-" .. run .. "-" .. n,
  }, body)
end
