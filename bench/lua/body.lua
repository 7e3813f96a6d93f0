-- Sends every request with a body read from a file: wrk -s body.lua URL -- METHOD CONTENT-TYPE FILE
-- (the bench writes the file and sends the same bytes itself to check both servers' answers first).
function init(args)
  local f = assert(io.open(args[3], "rb"))
  wrk.method = args[1]
  wrk.headers["Content-Type"] = args[2]
  wrk.body = f:read("*a")
  f:close()
end
