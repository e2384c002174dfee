-- wrk script: GET $API_PATH<id> with an id drawn at random from $IDS_FILE (one per line).
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do
  ids[#ids + 1] = line
end
local path = os.getenv("API_PATH")
math.randomseed(42)

request = function()
  return wrk.format("GET", path .. ids[math.random(#ids)])
end
