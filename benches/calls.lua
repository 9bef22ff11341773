-- The HTTP scenario's load: `tools/call` of the echo tool over open MCP sessions, for wrk.
--
--   wrk -t1 -c C -d SECONDS --latency -s benches/calls.lua URL -- SESSIONS_FILE TOOL PROTOCOL_VERSION
--
-- SESSIONS_FILE holds one `Mcp-Session-Id` a line (`-` for a target without sessions), opened and
-- initialized by the benchmark (`benches/proxy.rs`). Every request is formatted in `init`;
-- `request` only takes the next, round-robin over the sessions: a Streamable HTTP session is not
-- tied to a TCP connection. `response` counts what is not a successful answer, and `done` prints
-- one line for the benchmark to parse:
--
--   wrk-calls requests=N seconds=S calls_per_second=X p50_us=.. p99_us=.. errors=E bad_answers=B
--     socket_errors=K
--
-- calls/s counts good answers only; errors = bad answers (a status other than 200, or a body
-- that is not a JSON-RPC result, or a result with "isError": true) + socket errors (connect,
-- read, write, timeout).

-- Requests formatted per session. Ids start above those of the benchmark's own setup requests and
-- are unique over ROUNDS turns of every session, then repeat: MCP asks that a session never reuse
-- an id, but formatting each request anew would cost the load generator more than the targets.
-- The servers measured refuse only an id still in flight, which would take a request left
-- unanswered while ROUNDS × sessions others are sent, and would show as an error.
local ROUNDS = 64
local FIRST_ID = 1000

local requests = {}
local next_request = 0
bad_answers = 0

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local file, tool, protocol_version = args[1], args[2], args[3]
   if not (file and tool and protocol_version) then
      error("usage: wrk ... -s calls.lua URL -- SESSIONS_FILE TOOL PROTOCOL_VERSION")
   end
   local sessions = {}
   for line in io.lines(file) do
      if line ~= "" then
         table.insert(sessions, line)
      end
   end
   if #sessions == 0 then
      error("no sessions in " .. file)
   end
   local id = FIRST_ID
   for _ = 1, ROUNDS do
      for _, session in ipairs(sessions) do
         id = id + 1
         local headers = {
            ["Content-Type"] = "application/json",
            ["Accept"] = "application/json, text/event-stream",
         }
         if session ~= "-" then
            headers["Mcp-Session-Id"] = session
            headers["MCP-Protocol-Version"] = protocol_version
         end
         local body = string.format(
            '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":{"message":"hello"}}}',
            id, tool)
         table.insert(requests, wrk.format("POST", wrk.path, headers, body))
      end
   end
end

function request()
   next_request = next_request % #requests + 1
   return requests[next_request]
end

-- The JSON-RPC answer in a body: the body itself, or the `data:` line of an SSE stream that
-- carries one (an SSE answer may start with a priming event whose data is empty).
local function answer(headers, body)
   local content_type = ""
   for name, value in pairs(headers) do
      if string.lower(name) == "content-type" then
         content_type = string.lower(value)
      end
   end
   if string.find(content_type, "text/event-stream", 1, true) == nil then
      return body
   end
   for line in string.gmatch(body, "[^\r\n]+") do
      local data = string.match(line, "^data:%s*(.*)$")
      if data and string.find(data, '"jsonrpc"', 1, true) then
         return data
      end
   end
   return ""
end

function response(status, headers, body)
   if status ~= 200 then
      bad_answers = bad_answers + 1
      return
   end
   local message = answer(headers, body)
   if not string.find(message, '"result"%s*:')
      or string.find(message, '"error"%s*:')
      or string.find(message, '"isError"%s*:%s*true') then
      bad_answers = bad_answers + 1
   end
end

function done(summary, latency, _)
   local bad = 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("bad_answers")
   end
   local e = summary.errors
   local socket_errors = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   io.write(string.format(
      "wrk-calls requests=%d seconds=%.3f calls_per_second=%.1f p50_us=%.0f p99_us=%.0f errors=%d bad_answers=%d socket_errors=%d\n",
      summary.requests, seconds, (summary.requests - bad) / seconds,
      latency:percentile(50), latency:percentile(99),
      bad + socket_errors, bad, socket_errors))
end
