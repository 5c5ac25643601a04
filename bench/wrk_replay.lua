-- Replays prepared requests, one line each: "<path with query>\t<body>".
-- Every request is distinct (its own MsgId), so each one is a real inbox insert.
local requests = {}
local next_index = 1

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    requests[#requests + 1] = wrk.format("POST", line:sub(1, tab - 1),
      { ["Content-Type"] = "text/xml" }, line:sub(tab + 1))
  end
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end
