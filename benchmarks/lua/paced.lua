-- wrk script: as post.lua, but each connection waits a random delay after every response, so
-- that the offered rate is about CONNECTIONS / (DELAY + latency): an open-ish load below
-- saturation (used for "p99 at half of saturation").
--
--   wrk -t1 -c16 -d8s -s benchmarks/lua/paced.lua URL -- BODY_FILE CONTENT_TYPE HEADER_LENGTH DELAY_MS
--
-- Delays are exponential with mean DELAY_MS (Poisson-like arrivals per connection, so that the
-- connections do not fall into lock-step); wrk takes whole milliseconds, so each draw is rounded.
-- wrk starts a request's clock when the request is written, after the delay: the delay is not
-- part of the latency.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

function init_hook(args)
   mean_delay_ms = tonumber(args[4] or "0")
   math.randomseed(os.time() * 1000 + (id or 0))
end

dofile(here .. "post.lua")

function delay()
   return math.floor(-mean_delay_ms * math.log(1 - math.random()) + 0.5)
end
