-- Every node hears at once of monitors created or deleted through any node
-- (LISTEN vpnmon_monitors; the payload is the monitor's id). Notifications
-- are sent when the transaction commits, in commit order; a node that
-- misses some (its listening connection dropped) reads every monitor again.
CREATE FUNCTION vpnmon_monitor_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('vpnmon_monitors', OLD.id);
    ELSE
        PERFORM pg_notify('vpnmon_monitors', NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER connection_monitors_changed
    AFTER INSERT OR DELETE ON connection_monitors
    FOR EACH ROW EXECUTE FUNCTION vpnmon_monitor_changed();
