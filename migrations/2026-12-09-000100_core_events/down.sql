DROP TABLE event_cursors;
DROP TABLE events;
