DROP TABLE event_cursors;
DROP TABLE events;
DROP FUNCTION events_commit_draft();
