-- wrk script: POST one pre-built body on every connection (closed loop), count every status.
--
--   wrk -t1 -c64 -d8s -s benchmarks/lua/post.lua URL -- BODY_FILE CONTENT_TYPE [HEADER_LENGTH]
--
-- BODY_FILE holds the exact request body; HEADER_LENGTH, when given and not empty, is sent as
-- Inference-Header-Content-Length (KServe v2 binary tensors). The request is built once (wrk's
-- static request), so the per-request cost in wrk is the response hook only. done() prints one
-- line, "WRK_JSON {...}": requests, duration, socket errors, responses by status and latency
-- percentiles in microseconds (wrk measures from writing a request to reading its response).

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1], "rb"), "cannot open body file " .. tostring(args[1]))
   wrk.method = "POST"
   wrk.body = file:read("*a")
   file:close()
   wrk.headers["Content-Type"] = args[2]
   if args[3] ~= nil and args[3] ~= "" then
      wrk.headers["Inference-Header-Content-Length"] = args[3]
   end
   statuses = {}
   if init_hook ~= nil then
      init_hook(args)
   end
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

local function json_object(map)
   local parts = {}
   for key, value in pairs(map) do
      table.insert(parts, string.format('"%s": %d', tostring(key), value))
   end
   return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
   local by_status = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + count
      end
   end
   local errors = summary.errors
   local percentiles = {}
   for _, p in ipairs({50, 90, 95, 99, 99.9}) do
      table.insert(percentiles, string.format('"p%s": %d', tostring(p), latency:percentile(p)))
   end
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
         .. '"non_2xx_3xx": %d, "statuses": %s, '
         .. '"latency_us": {%s, "mean": %.1f, "stdev": %.1f, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.timeout, errors.status,
      json_object(by_status), table.concat(percentiles, ", "),
      latency.mean, latency.stdev, latency.max))
end
