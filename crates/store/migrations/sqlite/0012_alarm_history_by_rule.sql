-- One rule's history in a time range (what the dashboard's detail page and
-- `alarm-histories?alarm_id=...&from=...&to=...` ask for) without reading
-- every record of the project.
CREATE INDEX alarm_history_rule ON alarm_history (alarm_id, trigger_ms);
