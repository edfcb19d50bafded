-- Which process holds a node's lease, as `linux:<boot id>:<pid namespace>:
-- <pid>:<start time in clock ticks>`: a node restarted on the same host
-- removes the lease of a predecessor whose process has ended (after a
-- crash or kill -9) instead of leaving its monitors unprobed until that
-- lease runs out. NULL for nodes of older versions (judged by lease only).
ALTER TABLE nodes ADD COLUMN process TEXT;
