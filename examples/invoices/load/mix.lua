-- wrk script: 9 in 10 requests GET a random seeded invoice, 1 in 10 POSTs a
-- new one with a unique number. done() prints one JSON line with the
-- latency percentiles and the responses by status, summed over threads.
local threads = {}
local seeded = tonumber(os.getenv("SEEDED") or "1000")
local counter = 0

function setup(thread)
    thread:set("tid", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
    math.randomseed(os.time() + tid * 7919)
end

function request()
    counter = counter + 1
    if counter % 10 == 0 then
        local body = string.format(
            '{"number":"L-%d-%d-%d","customer":"load","total_cents":%d}',
            tid, os.time(), counter, counter % 100000)
        return wrk.format("POST", "/invoices", {["Content-Type"] = "application/json"}, body)
    end
    return wrk.format("GET", "/invoices/" .. math.random(1, seeded))
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local by_status = {}
    for _, thread in ipairs(threads) do
        local counts = thread:get("statuses")
        for status, n in pairs(counts) do
            by_status[status] = (by_status[status] or 0) + n
        end
    end
    local parts = {}
    for status, n in pairs(by_status) do
        table.insert(parts, string.format('"%d":%d', status, n))
    end
    local e = summary.errors
    io.write(string.format(
        'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
        '"max_us":%d,"socket_errors":%d,"timeouts":%d,"statuses":{%s}}\n',
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max,
        e.connect + e.read + e.write, e.timeout, table.concat(parts, ",")))
end
