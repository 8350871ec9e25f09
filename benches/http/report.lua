-- wrk script: prints one machine-readable line after the run.
--   RESULT requests=N seconds=S rps=R p50_us=A p90_us=B p99_us=C max_us=D non2xx=E errors=F
-- non2xx counts answers outside 2xx/3xx (a 503 from a failing readiness probe lands here);
-- errors counts connect, read, write and timeout errors.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
