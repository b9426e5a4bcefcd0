-- wrk script: POSTs signed GitHub push deliveries read from the file named by REQUESTS
-- (lines "signature<TAB>body", written by `doraflow-bench requests`), each with a unique
-- X-GitHub-Delivery, and counts answers by status.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  bodies, sigs = {}, {}
  for line in io.lines(os.getenv("REQUESTS")) do
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    table.insert(sigs, sig)
    table.insert(bodies, body)
  end
  n, i = 0, 0
  statuses = {}
end

function request()
  i = i % #bodies + 1
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Hook-ID"] = "1",
    ["X-GitHub-Delivery"] = tid .. "-" .. n .. "-" .. os.time(),
    ["X-Hub-Signature-256"] = "sha256=" .. sigs[i],
  }
  return wrk.format("POST", "/webhooks/github", headers, bodies[i])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for status, count in pairs(s) do counts[status] = (counts[status] or 0) + count end
  end
  for status, count in pairs(counts) do io.write(string.format("status %d: %d\n", status, count)) end
  io.write(string.format("p50 %.2f ms, p99 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
