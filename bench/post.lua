-- wrk script for pyexecd: POSTs the body in $BENCH_BODY_FILE to /execute, counts answers
-- whose status is not $BENCH_EXPECT (default 200), and prints one JSON line of results.
-- Latencies are in microseconds.

local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.path = "/execute"
wrk.headers["Content-Type"] = "application/json"
wrk.body = f:read("*a")
f:close()

local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")

-- BENCH_PAUSE_MS: think time between a connection's requests (not part of the latency
-- wrk records), so that a sequential client finds the warm pool refilled.
local pause = tonumber(os.getenv("BENCH_PAUSE_MS") or "0")
if pause > 0 then
        function delay()
                return pause
        end
end
local threads = {}

function setup(thread)
        table.insert(threads, thread)
end

function init(args)
        bad = 0
end

function response(status, headers, body)
        if status ~= expect then
                bad = bad + 1
        end
end

function done(summary, latency, requests)
        local b = 0
        for _, t in ipairs(threads) do
                b = b + t:get("bad")
        end
        local e = summary.errors
        io.write(string.format(
                '{"requests":%d,"duration_us":%d,"bad_status":%d,"socket_errors":%d,' ..
                '"p50":%d,"p90":%d,"p99":%d,"max":%d}\n',
                summary.requests, summary.duration, b,
                e.connect + e.read + e.write + e.timeout,
                latency:percentile(50), latency:percentile(90), latency:percentile(99),
                latency.max))
end
